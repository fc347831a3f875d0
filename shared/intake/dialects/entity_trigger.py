"""The body of the Logic Apps "Microsoft Sentinel entity" trigger, which an analyst starts from an entity in the
portal ("Run playbook" on an account, host or IP): the one entity (an ARM entity, {id, kind, properties}), the incident
it was run from (IncidentArmID, absent when run from hunting or an entity page) and the workspace.

The relay forwards it as is; it becomes an incident of that one entity, written back to the incident it came from."""

from __future__ import annotations

from typing import Any

from pydantic import Field

from shared.intake import model
from shared.intake.dialects.arm_incident import workspace_from_arm_id
from shared.intake.dialects.common import InputModel, validate
from shared.intake.entities import parse_entities
from shared.intake.errors import IntakeError


class _WorkspaceInfo(InputModel):
    SubscriptionId: str | None = None
    ResourceGroupName: str | None = None
    WorkspaceName: str | None = None


class EntityTrigger(InputModel):
    Entity: dict[str, Any]
    EntityType: str | None = None
    IncidentArmID: str | None = Field(default=None, max_length=1024)
    WorkspaceInfo: _WorkspaceInfo | None = None
    WorkspaceId: str | None = None


def from_entity_trigger(payload: Any, max_entities: int) -> model.Incident:
    body = validate(EntityTrigger, payload)
    item = dict(body.Entity)
    # An ARM entity's "type" is its resource type (Microsoft.SecurityInsights/Entities), not its kind: without a
    # kind, the kind is the one the trigger names beside the entity.
    arm_typed = str(item.get("type", "")).lower().startswith("microsoft.securityinsights")
    if "kind" not in item and "Kind" not in item and (arm_typed or body.EntityType):
        if not body.EntityType:
            raise IntakeError("MissingField", "The entity names no kind, and neither does EntityType.", "Entity")
        item.pop("type", None)
        item["kind"] = body.EntityType
    [entity] = parse_entities([item], target="Entity", max_entities=max(1, max_entities))
    info = body.WorkspaceInfo
    workspace = (
        model.Workspace(
            subscription_id=info.SubscriptionId,
            resource_group=info.ResourceGroupName,
            name=info.WorkspaceName,
            customer_id=body.WorkspaceId,
        )
        if info is not None
        else None
    )
    name = entity.friendly_name or entity.id
    return model.Incident(
        dialect=model.Dialect.SENTINEL_ENTITY_TRIGGER,
        arm_id=body.IncidentArmID or None,
        workspace=workspace or (workspace_from_arm_id(body.IncidentArmID) if body.IncidentArmID else None),
        title=f"{entity.kind} {name}, run from Microsoft Sentinel",
        severity=model.Severity.MEDIUM,
        status="Active",
        provider="Azure Sentinel",
        entities=(entity,),
        raw=payload,
    )
