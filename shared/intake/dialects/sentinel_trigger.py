"""The body of Sentinel's incident trigger (an automation rule's playbook call): the ARM incident as `object`, with
the workspace named beside it."""

from __future__ import annotations

from typing import Any

from shared.intake import model
from shared.intake.dialects.arm_incident import IncidentResource, incident_from_resource, workspace_from_arm_id
from shared.intake.dialects.common import InputModel, validate


class _WorkspaceInfo(InputModel):
    SubscriptionId: str | None = None
    ResourceGroupName: str | None = None
    WorkspaceName: str | None = None


class _IncidentTrigger(InputModel):
    eventUniqueId: str | None = None
    objectSchemaType: str | None = None
    objectEventType: str | None = None
    workspaceInfo: _WorkspaceInfo | None = None
    workspaceId: str | None = None
    object: IncidentResource


def from_trigger(payload: Any, max_entities: int) -> model.Incident:
    trigger = validate(_IncidentTrigger, payload)
    info = trigger.workspaceInfo
    workspace = None
    if info is not None or trigger.workspaceId:
        from_id = workspace_from_arm_id(trigger.object.id)
        workspace = model.Workspace(
            subscription_id=(info.SubscriptionId if info else None) or (from_id.subscription_id if from_id else None),
            resource_group=(info.ResourceGroupName if info else None) or (from_id.resource_group if from_id else None),
            name=(info.WorkspaceName if info else None) or (from_id.name if from_id else None),
            customer_id=trigger.workspaceId,
        )
    return incident_from_resource(
        trigger.object,
        dialect=model.Dialect.SENTINEL_INCIDENT_TRIGGER,
        target="object",
        max_entities=max_entities,
        workspace=workspace,
        delivery_id=trigger.eventUniqueId,
        raw=payload,
    )
