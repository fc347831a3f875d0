"""The per-process application service used by the routes and triggers (one per event loop: the storage and Azure
clients are async and belong to the loop that made them)."""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING

from shared.settings import get_settings

if TYPE_CHECKING:
    from shared.service import Service

_SERVICES: dict[int, tuple[asyncio.AbstractEventLoop, Service]] = {}
_LOCK: dict[int, asyncio.Lock] = {}


async def get_service() -> Service:
    from shared.service import Service
    from shared.store.runs import RunStore

    loop = asyncio.get_running_loop()
    entry = _SERVICES.get(id(loop))
    if entry is not None and entry[0] is loop:
        return entry[1]
    lock = _LOCK.setdefault(id(loop), asyncio.Lock())
    async with lock:
        entry = _SERVICES.get(id(loop))
        if entry is not None and entry[0] is loop:
            return entry[1]
        # azure-core logs each HTTP request at INFO: at a SOC's volume that is noise and cost in Application Insights.
        logging.getLogger("azure.core.pipeline.policies.http_logging_policy").setLevel(logging.WARNING)
        store = RunStore()
        await store.ensure()
        service = Service(get_settings(), store)
        _SERVICES[id(loop)] = (loop, service)
        return service
