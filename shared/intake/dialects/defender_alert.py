"""A Defender for Cloud alert as its REST resource (Microsoft.Security/locations/alerts)."""

from __future__ import annotations

from typing import Any

from pydantic import Field

from shared.intake import model
from shared.intake.dialects.common import (
    InputModel,
    RawItems,
    SeverityIn,
    Timestamp,
    alert_entities,
    identifiers,
    resource_ids,
    split_intent,
    validate,
    workspace_from_identifiers,
)


class _DefenderAlertProperties(InputModel):
    systemAlertId: str | None = None
    alertDisplayName: str
    alertType: str | None = None
    description: str | None = None
    severity: SeverityIn
    status: str | None = None
    intent: str | None = None
    productName: str | None = None
    compromisedEntity: str | None = None
    techniques: list[str] = Field(default_factory=list)
    resourceIdentifiers: list[dict[str, Any]] = Field(default_factory=list)
    entities: RawItems = None
    startTimeUtc: Timestamp = None
    endTimeUtc: Timestamp = None
    timeGeneratedUtc: Timestamp = None


class _DefenderAlertResource(InputModel):
    id: str
    name: str | None = None
    type: str | None = None
    properties: _DefenderAlertProperties


def from_defender_resource(payload: Any, max_entities: int) -> model.Incident:
    alert = validate(_DefenderAlertResource, payload)
    p = alert.properties
    found = identifiers(p.resourceIdentifiers, "properties.resourceIdentifiers")
    ids = resource_ids(found)
    tactics = split_intent((p.intent,) if p.intent and p.intent.lower() != "unknown" else ())
    return model.Incident(
        dialect=model.Dialect.DEFENDER_ALERT_RESOURCE,
        arm_id=alert.id,
        name=alert.name,
        workspace=workspace_from_identifiers(found),
        title=p.alertDisplayName,
        description=p.description or "",
        severity=p.severity,
        status=p.status or "Active",
        tactics=tactics,
        techniques=tuple(p.techniques),
        provider=p.productName or "Microsoft Defender for Cloud",
        created_time=p.timeGeneratedUtc or p.startTimeUtc,
        alerts=(
            model.Alert(
                id=alert.id,
                system_alert_id=p.systemAlertId or alert.name,
                title=p.alertDisplayName,
                alert_type=p.alertType,
                severity=p.severity,
                status=p.status,
                product_name=p.productName,
                tactics=tactics,
                techniques=tuple(p.techniques),
                compromised_entity=p.compromisedEntity,
                resource_ids=ids,
                start_time=p.startTimeUtc,
                end_time=p.endTimeUtc,
            ),
        ),
        entities=alert_entities(p.entities, ids, target="properties.entities", max_entities=max_entities),
        raw=payload,
    )
