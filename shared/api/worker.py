"""The queue triggers: the work queue drives runs forward; the poison queue ends runs whose message kept failing."""

from __future__ import annotations

import json
import logging

import azure.functions as func

from shared.api.context import get_service

log = logging.getLogger("riposte.worker")


def _run_id(msg: func.QueueMessage) -> str | None:
    try:
        body = json.loads(msg.get_body().decode("utf-8"))
    except (ValueError, UnicodeDecodeError):
        log.error("discarding unreadable work item %s", msg.id)
        return None
    run_id = body.get("runId") if isinstance(body, dict) else None
    return run_id if isinstance(run_id, str) else None


async def on_work_item(msg: func.QueueMessage) -> None:
    run_id = _run_id(msg)
    if run_id:
        await (await get_service()).process(run_id)


async def on_poison_item(msg: func.QueueMessage) -> None:
    run_id = _run_id(msg)
    if run_id:
        log.error("run %s ended in the poison queue", run_id)
        await (await get_service()).poisoned(run_id)
