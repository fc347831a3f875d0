"""Sentinel SecurityAlert entities: the items of an incident's properties.alerts or of the .../alerts response."""

from __future__ import annotations

from typing import Any

from pydantic import Field

from shared.intake import model
from shared.intake.dialects.common import InputModel, SeverityIn, Timestamp, identifiers, resource_ids, validate


class _SentinelAlertProperties(InputModel):
    systemAlertId: str | None = None
    alertDisplayName: str | None = None
    alertType: str | None = None
    severity: SeverityIn | None = None
    status: str | None = None
    productName: str | None = None
    tactics: list[str] = Field(default_factory=list)
    techniques: list[str] = Field(default_factory=list)
    compromisedEntity: str | None = None
    resourceIdentifiers: list[dict[str, Any]] = Field(default_factory=list)
    startTimeUtc: Timestamp = None
    endTimeUtc: Timestamp = None


class _SentinelAlert(InputModel):
    id: str | None = None
    name: str | None = None
    properties: _SentinelAlertProperties


def sentinel_alert(raw: Any, target: str) -> model.Alert:
    alert = validate(_SentinelAlert, raw, target)
    p = alert.properties
    return model.Alert(
        id=alert.id or p.systemAlertId or target,
        system_alert_id=p.systemAlertId,
        title=p.alertDisplayName or "",
        alert_type=p.alertType,
        severity=p.severity,
        status=p.status,
        product_name=p.productName,
        tactics=tuple(p.tactics),
        techniques=tuple(p.techniques),
        compromised_entity=p.compromisedEntity,
        resource_ids=resource_ids(identifiers(p.resourceIdentifiers, f"{target}.properties.resourceIdentifiers")),
        start_time=p.startTimeUtc,
        end_time=p.endTimeUtc,
    )
