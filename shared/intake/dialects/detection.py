"""Which dialect a payload is, from its shape alone."""

from __future__ import annotations

from typing import Any

from shared.intake.errors import IntakeError


def _has(payload: dict[str, Any], *keys: str) -> bool:
    lowered = {k.lower() for k in payload}
    return all(k.lower() in lowered for k in keys)


def detect(payload: Any) -> str:
    """Names the dialect of a payload from its shape, or raises UnknownSchema."""
    if isinstance(payload, dict):
        type_name = str(payload.get("type", "")).lower()
        if "object" in payload and (_has(payload, "objectSchemaType") or _has(payload, "workspaceInfo")):
            return "sentinel.incident_trigger"
        if isinstance(payload.get("Entity"), dict) and (
            _has(payload, "IncidentArmID") or _has(payload, "WorkspaceInfo") or _has(payload, "EntityType")
        ):
            return "sentinel.entity_trigger"
        if isinstance(payload.get("incident"), dict):
            return "sentinel.incident_bundle"
        if type_name.endswith("securityinsights/incidents"):
            return "sentinel.incident_resource"
        if type_name.endswith("microsoft.security/locations/alerts"):
            return "defender.alert_resource"
        if "SystemAlertId" in payload or "AlertDisplayName" in payload:
            return "security_alert"
        if "eventDataId" in payload and "operationName" in payload:
            return "defender.activity_log"
        if "specversion" in payload:
            return "cloudevents"
    if isinstance(payload, list) and payload and all(isinstance(e, dict) and "eventType" in e for e in payload):
        return "eventgrid"
    raise IntakeError(
        "UnknownSchema",
        "The payload is none of the supported shapes: a Sentinel incident or entity trigger body, an ARM incident "
        "resource "
        "(optionally as {incident, entities, alerts}), a SecurityAlert (Sentinel alert trigger or Defender workflow "
        "automation), a Defender for Cloud alert resource, or an Activity Log alert event.",
        "body",
    )
