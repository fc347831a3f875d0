"""A Sentinel incident as an ARM resource (a GET of .../incidents/{id}), alone or bundled with the POST .../entities
and .../alerts responses as a relay may forward them. The resource model is also the `object` of the trigger."""

from __future__ import annotations

from typing import Any

from pydantic import Field

from shared.armid import ArmId
from shared.intake import model
from shared.intake.dialects.common import InputModel, RawItems, SeverityIn, Timestamp, validate
from shared.intake.dialects.sentinel_alert import sentinel_alert
from shared.intake.entities import parse_entities


class _AdditionalData(InputModel):
    tactics: list[str] = Field(default_factory=list)
    techniques: list[str] = Field(default_factory=list)
    alertProductNames: list[str] = Field(default_factory=list)


class _Label(InputModel):
    labelName: str


class _IncidentProperties(InputModel):
    title: str
    description: str | None = None
    severity: SeverityIn
    status: str
    incidentNumber: int | None = None
    labels: list[_Label] = Field(default_factory=list)
    createdTimeUtc: Timestamp = None
    additionalData: _AdditionalData = Field(default_factory=_AdditionalData)
    relatedAnalyticRuleIds: list[str] = Field(default_factory=list)
    providerName: str | None = None
    alerts: RawItems = None
    relatedEntities: RawItems = None


class IncidentResource(InputModel):
    id: str
    name: str | None = None
    type: str | None = None
    properties: _IncidentProperties


class _EntitiesList(InputModel):
    entities: list[Any]


class _AlertsList(InputModel):
    value: list[Any]


class _IncidentBundle(InputModel):
    incident: IncidentResource
    entities: _EntitiesList | None = None
    alerts: _AlertsList | None = None


def incident_from_resource(
    resource: IncidentResource,
    *,
    dialect: model.Dialect,
    target: str,
    max_entities: int,
    workspace: model.Workspace | None,
    delivery_id: str | None,
    raw: dict[str, Any],
    entities: list[Any] | None = None,
    alerts: list[Any] | None = None,
    entities_target: str | None = None,
    alerts_target: str | None = None,
) -> model.Incident:
    p = resource.properties
    entity_items = entities if entities is not None else p.relatedEntities
    alert_items = alerts if alerts is not None else p.alerts
    entities_at = entities_target or f"{target}.properties.relatedEntities"
    alerts_at = alerts_target or f"{target}.properties.alerts"
    return model.Incident(
        dialect=dialect,
        delivery_id=delivery_id,
        arm_id=resource.id,
        name=resource.name,
        incident_number=p.incidentNumber,
        workspace=workspace or workspace_from_arm_id(resource.id),
        title=p.title,
        description=p.description or "",
        severity=p.severity,
        status=p.status,
        tactics=tuple(p.additionalData.tactics),
        techniques=tuple(p.additionalData.techniques),
        provider=p.providerName or "",
        analytic_rule_ids=tuple(p.relatedAnalyticRuleIds),
        labels=tuple(label.labelName for label in p.labels),
        created_time=p.createdTimeUtc,
        alerts=tuple(sentinel_alert(a, f"{alerts_at}[{i}]") for i, a in enumerate(alert_items or [])),
        entities=tuple(parse_entities(entity_items, target=entities_at, max_entities=max_entities)),
        raw=raw,
    )


WORKSPACE_TYPE = "Microsoft.OperationalInsights/workspaces"


def workspace_from_arm_id(arm_id: str) -> model.Workspace | None:
    """The Log Analytics workspace an id is in or on (a Sentinel incident, alert or rule extends its workspace)."""
    try:
        workspace = ArmId.parse(arm_id).within(WORKSPACE_TYPE)
    except ValueError:
        return None
    if workspace is None:
        return None
    return model.Workspace(
        subscription_id=workspace.subscription, resource_group=workspace.resource_group, name=workspace.name
    )


def from_resource(payload: Any, max_entities: int) -> model.Incident:
    resource = validate(IncidentResource, payload)
    return incident_from_resource(
        resource,
        dialect=model.Dialect.SENTINEL_INCIDENT_RESOURCE,
        target="",
        max_entities=max_entities,
        workspace=None,
        delivery_id=None,
        raw=payload,
        entities_target="properties.relatedEntities",
        alerts_target="properties.alerts",
    )


def from_bundle(payload: Any, max_entities: int) -> model.Incident:
    bundle = validate(_IncidentBundle, payload)
    return incident_from_resource(
        bundle.incident,
        dialect=model.Dialect.SENTINEL_INCIDENT_RESOURCE,
        target="incident",
        max_entities=max_entities,
        workspace=None,
        delivery_id=None,
        raw=payload,
        entities=bundle.entities.entities if bundle.entities else None,
        alerts=bundle.alerts.value if bundle.alerts else None,
        entities_target="entities.entities" if bundle.entities else None,
        alerts_target="alerts.value" if bundle.alerts else None,
    )
