"""Event Grid deliveries: the Event Grid schema (a JSON array) and CloudEvents 1.0 (one event or a batch).

A delivery is all-or-nothing: if any event that claims to carry an alert or incident is invalid, the whole delivery is
rejected with the failing event's path, so nothing is half-accepted. Events that carry no alert or incident (a blob
created event on a misconfigured subscription) are acknowledged and reported as ignored: rejecting them would make
Event Grid retry or dead-letter events Riposte will never act on."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from shared.intake import dialects, model
from shared.intake.errors import IntakeError

VALIDATION_EVENT = "Microsoft.EventGrid.SubscriptionValidationEvent"


@dataclass
class Delivery:
    validation_code: str | None = None
    incidents: list[model.Incident] = field(default_factory=list)
    ignored: list[dict[str, str]] = field(default_factory=list)


def _event_fields(event: Any, target: str, schema: model.Envelope) -> tuple[str, str, Any]:
    if not isinstance(event, dict):
        raise IntakeError("InvalidType", "An event must be a JSON object.", target)
    type_key = "eventType" if schema is model.Envelope.EVENT_GRID else "type"
    for key in ("id", type_key):
        if not isinstance(event.get(key), str) or not event[key]:
            raise IntakeError("MissingField", f"'{target}.{key}' is required.", f"{target}.{key}")
    if schema is model.Envelope.CLOUD_EVENTS and event.get("specversion") != "1.0":
        raise IntakeError("InvalidValue", "Only CloudEvents specversion 1.0 is supported.", f"{target}.specversion")
    return event["id"], event[type_key], event.get("data")


def parse_delivery(payload: Any, *, max_entities: int, max_events: int = 5000) -> Delivery:
    if isinstance(payload, dict) and "specversion" in payload:
        events, schema, prefix = [payload], model.Envelope.CLOUD_EVENTS, ""
    elif isinstance(payload, list):
        if not payload:
            raise IntakeError("EmptyDelivery", "The delivery holds no events.", "body")
        schema = (
            model.Envelope.CLOUD_EVENTS
            if all(isinstance(e, dict) and "specversion" in e for e in payload)
            else (model.Envelope.EVENT_GRID)
        )
        events, prefix = payload, ""
    else:
        raise IntakeError(
            "UnknownSchema",
            "An Event Grid delivery is a JSON array of Event Grid events, or CloudEvents 1.0 (one event or an array).",
            "body",
        )
    if len(events) > max_events:
        raise IntakeError("TooManyEvents", f"{len(events)} events; the limit is {max_events}.", "body")
    delivery = Delivery()
    for index, event in enumerate(events):
        target = f"{prefix}[{index}]" if isinstance(payload, list) else "body"
        event_id, event_type, data = _event_fields(event, target, schema)
        if event_type == VALIDATION_EVENT:
            code = data.get("validationCode") if isinstance(data, dict) else None
            if not isinstance(code, str) or not code:
                raise IntakeError("MissingField", "The validation event has no data.validationCode.", f"{target}.data")
            delivery.validation_code = code
            continue
        try:
            dialect = dialects.detect(data)
        except IntakeError:
            delivery.ignored.append({"id": event_id, "eventType": event_type, "reason": "carries no alert or incident"})
            continue
        if dialect in ("eventgrid", "cloudevents"):
            raise IntakeError("NestedEnvelope", "An event's data must not be another envelope.", f"{target}.data")
        try:
            incident = dialects.run_normaliser(dialect, data, max_entities)
        except IntakeError as exc:
            exc.target = f"{target}.data.{exc.target}".rstrip(".") if exc.target != "body" else f"{target}.data"
            raise
        delivery.incidents.append(incident.model_copy(update={"envelope": schema, "delivery_id": event_id}))
    return delivery
