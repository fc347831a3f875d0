"""A Defender for Cloud alert as an Activity Log event (a flat string map of properties)."""

from __future__ import annotations

import json
from typing import Any

from pydantic import Field

from shared.intake import model
from shared.intake.dialects.common import InputModel, SeverityOnly, Timestamp, validate


class _Localized(InputModel):
    value: str


class _ActivityLogAlert(InputModel):
    eventDataId: str
    id: str | None = None
    resourceId: str | None = None
    description: str | None = None
    eventName: _Localized
    operationName: _Localized
    status: _Localized | None = None
    subscriptionId: str | None = None
    eventTimestamp: Timestamp = None
    properties: dict[str, str] = Field(default_factory=dict)


def _json_string_list(value: str | None) -> tuple[str, ...]:
    """Activity Log properties are a flat string map; list-valued ones are JSON-encoded strings."""
    if not value:
        return ()
    try:
        decoded = json.loads(value)
    except ValueError:
        return (value,)
    if isinstance(decoded, list):
        return tuple(str(v) for v in decoded)
    return (str(decoded),)


def from_activity_log(payload: Any, max_entities: int) -> model.Incident:
    event = validate(_ActivityLogAlert, payload)
    props = {k.lower(): v for k, v in event.properties.items()}
    severity = validate(SeverityOnly, {"severity": props.get("severity", "Informational")}, "properties").severity
    alert_id = event.resourceId or event.id or event.eventDataId
    tactics = _json_string_list(props.get("intent"))
    return model.Incident(
        dialect=model.Dialect.DEFENDER_ACTIVITY_LOG,
        arm_id=event.resourceId,
        name=event.eventDataId,
        title=event.eventName.value,
        description=event.description or "",
        severity=severity,
        status=event.status.value if event.status else "Active",
        tactics=tactics,
        provider="Microsoft Defender for Cloud",
        created_time=event.eventTimestamp,
        alerts=(
            model.Alert(
                id=alert_id,
                system_alert_id=event.eventDataId,
                title=event.eventName.value,
                severity=severity,
                status=event.status.value if event.status else None,
                tactics=tactics,
                compromised_entity=props.get("compromisedentity"),
            ),
        ),
        entities=(),
        raw=payload,
    )
