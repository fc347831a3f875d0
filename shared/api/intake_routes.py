"""POST|OPTIONS /api/events and the native Event Grid trigger: Event Grid deliveries into runs."""

from __future__ import annotations

import logging
from typing import Any

import azure.functions as func

from shared.api.context import get_service
from shared.api.responses import error_response, intake_error_response, json_response
from shared.intake import IntakeError, check_json_value, decode_json_body, parse_delivery
from shared.settings import get_settings

log = logging.getLogger("riposte.intake")


# The CloudEvents webhook spec's abuse protection: the sender names itself in WebHook-Request-Origin and the receiver
# agrees by echoing it. Event Grid's CloudEvents deliveries name eventgrid.azure.net (learn.microsoft.com/azure/
# event-grid/end-point-validation-cloud-events-schema); agreeing to any other origin would let anyone subscribe us.
EVENT_GRID_ORIGIN = "eventgrid.azure.net"


def events_preflight(req: func.HttpRequest) -> func.HttpResponse:
    """CloudEvents 1.0 webhook abuse protection: allow Event Grid as the origin of deliveries, and at any rate."""
    origin = (req.headers.get("webhook-request-origin") or "").strip()
    if not origin:
        return error_response(400, "MissingHeader", "WebHook-Request-Origin is required.", "WebHook-Request-Origin")
    if origin.lower() != EVENT_GRID_ORIGIN:
        return error_response(
            403,
            "OriginNotAllowed",
            f"Deliveries are accepted from Event Grid only: WebHook-Request-Origin must be {EVENT_GRID_ORIGIN}.",
            "WebHook-Request-Origin",
        )
    headers = {"WebHook-Allowed-Origin": EVENT_GRID_ORIGIN, "Allow": "POST, OPTIONS"}
    if req.headers.get("webhook-request-rate"):
        headers["WebHook-Allowed-Rate"] = "*"
    return func.HttpResponse(status_code=200, headers=headers)


async def post_events(req: func.HttpRequest) -> func.HttpResponse:
    settings = get_settings()
    try:
        payload = decode_json_body(
            req.get_body(),
            req.headers.get("content-type"),
            max_bytes=settings.max_body_bytes,
            max_depth=settings.max_json_depth,
        )
        delivery = parse_delivery(
            payload, max_entities=settings.max_entities, max_events=settings.max_events_per_delivery
        )
    except IntakeError as error:
        return intake_error_response(error)
    if delivery.validation_code is not None:
        # Event Grid accepts only 200 (not 202) for the handshake.
        return json_response({"validationResponse": delivery.validation_code}, 200)
    service = await get_service()
    accepted: list[dict[str, Any]] = []
    dry_run = (req.params.get("dryRun") or "").lower() == "true"  # a subscription can be pointed at dry runs
    for incident in delivery.incidents:
        submission = await service.submit(incident, dry_run=dry_run)  # the Event Grid event id is the dedup key
        accepted.append({"incident": incident.summary(), "runs": submission.runs, "duplicate": not submission.created})
    return json_response({"status": "accepted", "incidents": accepted, "ignored": delivery.ignored}, 202)


async def on_event_grid_event(event: func.EventGridEvent | Any) -> None:
    """The native trigger. The binding has done the handshake; a bad event is logged, not retried for ever."""
    event_type = getattr(event, "event_type", None) or getattr(event, "type", "")
    envelope: dict[str, Any] = {"id": event.id, "eventType": event_type, "data": event.get_json()}
    settings = get_settings()
    try:
        check_json_value(envelope, max_depth=settings.max_json_depth)
        delivery = parse_delivery([envelope], max_entities=settings.max_entities)
    except IntakeError as error:
        log.error("rejected Event Grid event %s: %s (%s)", event.id, error.message, error.target)
        return
    if not delivery.incidents:
        log.info("ignored Event Grid event %s of type %s", event.id, event_type)
        return
    service = await get_service()
    submission = await service.submit(delivery.incidents[0])
    log.info("Event Grid event %s: runs %s", event.id, [r["id"] for r in submission.runs])
