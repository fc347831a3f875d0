"""The PascalCase SecurityAlert: the legacy Sentinel alert trigger and Defender for Cloud workflow automation."""

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


class _SecurityAlert(InputModel):
    SystemAlertId: str
    AlertDisplayName: str
    AlertType: str | None = None
    Description: str | None = None
    Severity: SeverityIn
    Status: str | None = None
    Intent: str | None = None
    ProductName: str | None = None
    VendorName: str | None = None
    CompromisedEntity: str | None = None
    AzureResourceId: str | None = None
    WorkspaceId: str | None = None
    WorkspaceSubscriptionId: str | None = None
    WorkspaceResourceGroup: str | None = None
    Entities: RawItems = None
    ResourceIdentifiers: list[dict[str, Any]] = Field(default_factory=list)
    StartTimeUtc: Timestamp = None
    EndTimeUtc: Timestamp = None
    TimeGenerated: Timestamp = None


def from_security_alert(payload: Any, max_entities: int) -> model.Incident:
    alert = validate(_SecurityAlert, payload)
    found = identifiers(alert.ResourceIdentifiers, "ResourceIdentifiers")
    ids = resource_ids(found)
    if alert.AzureResourceId and alert.AzureResourceId not in ids:
        ids = (alert.AzureResourceId, *ids)
    workspace = workspace_from_identifiers(found)
    if alert.WorkspaceId:
        workspace = model.Workspace(
            subscription_id=alert.WorkspaceSubscriptionId,
            resource_group=alert.WorkspaceResourceGroup,
            customer_id=alert.WorkspaceId,
        )
    tactics = split_intent((alert.Intent,) if alert.Intent and alert.Intent.lower() != "unknown" else ())
    return model.Incident(
        dialect=model.Dialect.SECURITY_ALERT,
        delivery_id=None,
        arm_id=None,
        name=alert.SystemAlertId,
        workspace=workspace,
        title=alert.AlertDisplayName,
        description=alert.Description or "",
        severity=alert.Severity,
        status=alert.Status or "New",
        tactics=tactics,
        provider=alert.ProductName or alert.VendorName or "",
        created_time=alert.TimeGenerated or alert.StartTimeUtc,
        alerts=(
            model.Alert(
                id=alert.SystemAlertId,
                system_alert_id=alert.SystemAlertId,
                title=alert.AlertDisplayName,
                alert_type=alert.AlertType,
                severity=alert.Severity,
                status=alert.Status,
                product_name=alert.ProductName,
                tactics=tactics,
                compromised_entity=alert.CompromisedEntity,
                resource_ids=ids,
                start_time=alert.StartTimeUtc,
                end_time=alert.EndTimeUtc,
            ),
        ),
        entities=alert_entities(alert.Entities, ids, target="Entities", max_entities=max_entities),
        raw=payload,
    )
