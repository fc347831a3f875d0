"""The queue triggers: the work queue drives runs forward; the poison queue ends runs whose message kept failing."""

from __future__ import annotations

import json
import logging
from typing import Any

import azure.functions as func

from shared.api.context import get_service

log = logging.getLogger("riposte.worker")


def _body(msg: func.QueueMessage) -> dict[str, Any]:
    try:
        body = json.loads(msg.get_body().decode("utf-8"))
    except (ValueError, UnicodeDecodeError):
        log.error("discarding unreadable work item %s", msg.id)
        return {}
    return body if isinstance(body, dict) else {}


def _run_id(msg: func.QueueMessage) -> str | None:
    run_id = _body(msg).get("runId")
    return run_id if isinstance(run_id, str) else None


async def on_work_item(msg: func.QueueMessage) -> None:
    body = _body(msg)
    run_id, reason = body.get("runId"), body.get("reason")
    if isinstance(run_id, str):
        await (await get_service()).process(run_id, reason if isinstance(reason, str) else "")


async def on_poison_item(msg: func.QueueMessage) -> None:
    run_id = _run_id(msg)
    if run_id:
        log.error("run %s ended in the poison queue", run_id)
        await (await get_service()).poisoned(run_id)
