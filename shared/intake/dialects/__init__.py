"""Normalisers: one module per payload dialect, each validating its input with pydantic and mapping it to
`Incident`; `detection` names the dialect of a payload from its shape."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from pydantic import ValidationError

from shared.intake import model
from shared.intake.dialects.activity_log import from_activity_log
from shared.intake.dialects.arm_incident import from_bundle, from_resource
from shared.intake.dialects.defender_alert import from_defender_resource
from shared.intake.dialects.detection import detect
from shared.intake.dialects.entity_trigger import from_entity_trigger
from shared.intake.dialects.security_alert import from_security_alert
from shared.intake.dialects.sentinel_trigger import from_trigger
from shared.intake.errors import IntakeError, path_to_target

__all__ = ["NORMALISERS", "detect", "normalise", "run_normaliser"]

NORMALISERS: dict[str, Callable[[Any, int], model.Incident]] = {
    "sentinel.incident_trigger": from_trigger,
    "sentinel.incident_resource": from_resource,
    "sentinel.incident_bundle": from_bundle,
    "sentinel.entity_trigger": from_entity_trigger,
    "defender.alert_resource": from_defender_resource,
    "security_alert": from_security_alert,
    "defender.activity_log": from_activity_log,
}


def normalise(payload: Any, *, max_entities: int) -> model.Incident:
    """The single entry point for a payload that is not an Event Grid / CloudEvents envelope."""
    dialect = detect(payload)
    if dialect in ("eventgrid", "cloudevents"):
        raise IntakeError(
            "UseEventsEndpoint", "Event Grid and CloudEvents deliveries go to /api/events, not /api/incidents.", "body"
        )
    return run_normaliser(dialect, payload, max_entities)


def run_normaliser(dialect: str, payload: Any, max_entities: int) -> model.Incident:
    try:
        return NORMALISERS[dialect](payload, max_entities)
    except ValidationError as exc:
        # The input models check what Riposte relies on; this catches a value that only the canonical model refuses.
        error = exc.errors()[0]
        field = path_to_target([p for p in error["loc"] if isinstance(p, str | int)])
        raise IntakeError("InvalidValue", f"A value for '{field}' is not valid: {error['msg']}.", "body") from exc
