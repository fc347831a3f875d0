"""Normalisers: one per payload dialect, each validating its input with pydantic and mapping it to `Incident`.

Input models are lenient about extra fields (the services add fields over time) and strict about what Riposte relies
on; a validation failure becomes an IntakeError naming the field."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Annotated, Any, TypeVar

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError

from shared.intake import model
from shared.intake.entities import parse_entities
from shared.intake.errors import IntakeError, path_to_target
from shared.intake.timestamps import parse_timestamp

_SEVERITIES = {s.value.lower(): s for s in model.Severity}


def _severity(value: Any) -> Any:
    if isinstance(value, str):
        return _SEVERITIES.get(value.strip().lower(), value)
    return value


def _timestamp(value: Any) -> Any:
    if isinstance(value, str):
        return parse_timestamp(value)
    return value


SeverityIn = Annotated[model.Severity, BeforeValidator(_severity)]
Timestamp = Annotated[datetime | None, BeforeValidator(_timestamp)]
RawItems = list[Any] | None


class _In(BaseModel):
    model_config = ConfigDict(extra="allow", frozen=True)


# --- Sentinel incident (ARM resource, also the `object` of the trigger) ---------------------------------------------


class _AdditionalData(_In):
    tactics: list[str] = Field(default_factory=list)
    techniques: list[str] = Field(default_factory=list)
    alertProductNames: list[str] = Field(default_factory=list)


class _Label(_In):
    labelName: str


class _IncidentProperties(_In):
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


class _IncidentResource(_In):
    id: str
    name: str | None = None
    type: str | None = None
    properties: _IncidentProperties


class _WorkspaceInfo(_In):
    SubscriptionId: str | None = None
    ResourceGroupName: str | None = None
    WorkspaceName: str | None = None


class _IncidentTrigger(_In):
    eventUniqueId: str | None = None
    objectSchemaType: str | None = None
    objectEventType: str | None = None
    workspaceInfo: _WorkspaceInfo | None = None
    workspaceId: str | None = None
    object: _IncidentResource


class _EntitiesList(_In):
    entities: list[Any]


class _AlertsList(_In):
    value: list[Any]


class _IncidentBundle(_In):
    """An ARM incident GET plus the POST .../entities and .../alerts responses, as a relay may forward them."""

    incident: _IncidentResource
    entities: _EntitiesList | None = None
    alerts: _AlertsList | None = None


# --- Sentinel SecurityAlert entity (items of properties.alerts / the .../alerts response) ---------------------------


class _SentinelAlertProperties(_In):
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


class _SentinelAlert(_In):
    id: str | None = None
    name: str | None = None
    properties: _SentinelAlertProperties


# --- Defender for Cloud alert, REST resource -------------------------------------------------------------------------


class _DefenderAlertProperties(_In):
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


class _DefenderAlertResource(_In):
    id: str
    name: str | None = None
    type: str | None = None
    properties: _DefenderAlertProperties


# --- PascalCase SecurityAlert (legacy Sentinel alert trigger, Defender workflow automation) --------------------------


class _SecurityAlert(_In):
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


# --- Defender alert as an Activity Log event ------------------------------------------------------------------------


class _Localized(_In):
    value: str


class _ActivityLogAlert(_In):
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


# --- detection ------------------------------------------------------------------------------------------------------


def _has(payload: dict[str, Any], *keys: str) -> bool:
    lowered = {k.lower() for k in payload}
    return all(k.lower() in lowered for k in keys)


def detect(payload: Any) -> str:
    """Names the dialect of a payload from its shape, or raises UnknownSchema."""
    if isinstance(payload, dict):
        type_name = str(payload.get("type", "")).lower()
        if "object" in payload and (_has(payload, "objectSchemaType") or _has(payload, "workspaceInfo")):
            return "sentinel.incident_trigger"
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
        "The payload is none of the supported shapes: a Sentinel incident trigger body, an ARM incident resource "
        "(optionally as {incident, entities, alerts}), a SecurityAlert (Sentinel alert trigger or Defender workflow "
        "automation), a Defender for Cloud alert resource, or an Activity Log alert event.",
        "body",
    )


_M = TypeVar("_M", bound=BaseModel)


def _validate(cls: type[_M], payload: Any, prefix: str = "") -> _M:
    try:
        return cls.model_validate(payload)
    except ValidationError as exc:
        error = exc.errors()[0]
        loc = [p for p in error["loc"] if isinstance(p, str | int)]
        target = ".".join(filter(None, [prefix, path_to_target(loc)]))
        code = "MissingField" if error["type"] == "missing" else "InvalidValue"
        what = "is required" if code == "MissingField" else error["msg"].lower()
        raise IntakeError(code, f"'{target or 'body'}' {what}.", target or "body") from exc


# --- normalisers ----------------------------------------------------------------------------------------------------


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


def _sentinel_alert(raw: Any, target: str) -> model.Alert:
    alert = _validate(_SentinelAlert, raw, target)
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
        resource_ids=_resource_ids(_identifiers(p.resourceIdentifiers, f"{target}.properties.resourceIdentifiers")),
        start_time=p.startTimeUtc,
        end_time=p.endTimeUtc,
    )


_IDENTIFIER_KEYS = (
    "type",
    "azureresourceid",
    "resourceid",
    "workspaceid",
    "workspacesubscriptionid",
    "workspaceresourcegroup",
    "subscriptionid",
    "resourcegroup",
)


def _identifiers(raw: list[dict[str, Any]], target: str) -> list[dict[str, str]]:
    """resourceIdentifiers with lower-cased keys (the dialects disagree on casing) and string values checked."""
    cleaned: list[dict[str, str]] = []
    for index, identifier in enumerate(raw):
        lowered = {str(k).lower(): (k, v) for k, v in identifier.items()}
        item: dict[str, str] = {}
        for key in _IDENTIFIER_KEYS:
            if key not in lowered or lowered[key][1] is None:
                continue
            original, value = lowered[key]
            if not isinstance(value, str):
                raise IntakeError("InvalidType", "Expected a string.", f"{target}[{index}].{original}")
            item[key] = value
        cleaned.append(item)
    return cleaned


def _resource_ids(identifiers: list[dict[str, str]]) -> tuple[str, ...]:
    ids = [i.get("azureresourceid") or i.get("resourceid") or "" for i in identifiers]
    return tuple(i for i in ids if i)


def _incident(
    resource: _IncidentResource,
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
        alerts=tuple(_sentinel_alert(a, f"{alerts_at}[{i}]") for i, a in enumerate(alert_items or [])),
        entities=tuple(parse_entities(entity_items, target=entities_at, max_entities=max_entities)),
        raw=raw,
    )


def workspace_from_arm_id(arm_id: str) -> model.Workspace | None:
    """/subscriptions/S/resourceGroups/R/providers/Microsoft.OperationalInsights/workspaces/W/... (any casing)."""
    parts = arm_id.strip("/").split("/")
    lowered = [p.lower() for p in parts]
    try:
        sub = parts[lowered.index("subscriptions") + 1]
        group = parts[lowered.index("resourcegroups") + 1]
        name = parts[lowered.index("workspaces") + 1]
    except (ValueError, IndexError):
        return None
    return model.Workspace(subscription_id=sub, resource_group=group, name=name)


def _from_trigger(payload: Any, max_entities: int) -> model.Incident:
    trigger = _validate(_IncidentTrigger, payload)
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
    return _incident(
        trigger.object,
        dialect=model.Dialect.SENTINEL_INCIDENT_TRIGGER,
        target="object",
        max_entities=max_entities,
        workspace=workspace,
        delivery_id=trigger.eventUniqueId,
        raw=payload,
    )


def _from_resource(payload: Any, max_entities: int) -> model.Incident:
    resource = _validate(_IncidentResource, payload)
    return _incident(
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


def _from_bundle(payload: Any, max_entities: int) -> model.Incident:
    bundle = _validate(_IncidentBundle, payload)
    return _incident(
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


def _alert_entities(
    entity_items: list[Any] | None,
    resource_ids: tuple[str, ...],
    *,
    target: str,
    max_entities: int,
) -> tuple[model.Entity, ...]:
    """Entities of an alert plus an AzureResource entity for each resource identifier not already named by one."""
    entities = parse_entities(entity_items, target=target, max_entities=max_entities)
    known = {getattr(e, "resource_id", None) or getattr(e, "azure_id", None) for e in entities}
    known_lower = {k.lower() for k in known if isinstance(k, str)}
    for index, resource_id in enumerate(resource_ids):
        if resource_id.lower() not in known_lower:
            entities.append(
                model.AzureResourceEntity(
                    id=f"resourceIdentifiers[{index}]",
                    resource_id=resource_id,
                    subscription_id=_subscription_of(resource_id),
                    friendly_name=resource_id.rsplit("/", 1)[-1],
                )
            )
            known_lower.add(resource_id.lower())
    if len(entities) > max_entities:
        raise IntakeError("TooManyEntities", f"{len(entities)} entities; the limit is {max_entities}.", target)
    return tuple(entities)


def _subscription_of(resource_id: str) -> str | None:
    parts = resource_id.strip("/").split("/")
    return parts[1] if len(parts) > 1 and parts[0].lower() == "subscriptions" else None


def _from_defender_resource(payload: Any, max_entities: int) -> model.Incident:
    alert = _validate(_DefenderAlertResource, payload)
    p = alert.properties
    identifiers = _identifiers(p.resourceIdentifiers, "properties.resourceIdentifiers")
    resource_ids = _resource_ids(identifiers)
    workspace = _workspace_from_identifiers(identifiers)
    tactics = (p.intent,) if p.intent and p.intent.lower() != "unknown" else ()
    return model.Incident(
        dialect=model.Dialect.DEFENDER_ALERT_RESOURCE,
        arm_id=alert.id,
        name=alert.name,
        workspace=workspace,
        title=p.alertDisplayName,
        description=p.description or "",
        severity=p.severity,
        status=p.status or "Active",
        tactics=_split_intent(tactics),
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
                tactics=_split_intent(tactics),
                techniques=tuple(p.techniques),
                compromised_entity=p.compromisedEntity,
                resource_ids=resource_ids,
                start_time=p.startTimeUtc,
                end_time=p.endTimeUtc,
            ),
        ),
        entities=_alert_entities(p.entities, resource_ids, target="properties.entities", max_entities=max_entities),
        raw=payload,
    )


def _split_intent(values: tuple[str, ...]) -> tuple[str, ...]:
    """Defender's intent is one string that may list several tactics: 'PreAttack, Execution'."""
    return tuple(part.strip() for value in values for part in value.split(",") if part.strip())


def _workspace_from_identifiers(identifiers: list[dict[str, str]]) -> model.Workspace | None:
    for identifier in identifiers:
        if identifier.get("type", "").lower() == "loganalytics":
            return model.Workspace(
                subscription_id=identifier.get("workspacesubscriptionid") or identifier.get("subscriptionid"),
                resource_group=identifier.get("workspaceresourcegroup") or identifier.get("resourcegroup"),
                customer_id=identifier.get("workspaceid"),
            )
    return None


def _from_security_alert(payload: Any, max_entities: int) -> model.Incident:
    alert = _validate(_SecurityAlert, payload)
    identifiers = _identifiers(alert.ResourceIdentifiers, "ResourceIdentifiers")
    resource_ids = _resource_ids(identifiers)
    if alert.AzureResourceId and alert.AzureResourceId not in resource_ids:
        resource_ids = (alert.AzureResourceId, *resource_ids)
    workspace = _workspace_from_identifiers(identifiers)
    if alert.WorkspaceId:
        workspace = model.Workspace(
            subscription_id=alert.WorkspaceSubscriptionId,
            resource_group=alert.WorkspaceResourceGroup,
            customer_id=alert.WorkspaceId,
        )
    tactics = _split_intent((alert.Intent,) if alert.Intent and alert.Intent.lower() != "unknown" else ())
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
                resource_ids=resource_ids,
                start_time=alert.StartTimeUtc,
                end_time=alert.EndTimeUtc,
            ),
        ),
        entities=_alert_entities(alert.Entities, resource_ids, target="Entities", max_entities=max_entities),
        raw=payload,
    )


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


def _from_activity_log(payload: Any, max_entities: int) -> model.Incident:
    event = _validate(_ActivityLogAlert, payload)
    props = {k.lower(): v for k, v in event.properties.items()}
    severity = _validate(_SeverityOnly, {"severity": props.get("severity", "Informational")}, "properties").severity
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


class _SeverityOnly(_In):
    severity: SeverityIn


NORMALISERS = {
    "sentinel.incident_trigger": _from_trigger,
    "sentinel.incident_resource": _from_resource,
    "sentinel.incident_bundle": _from_bundle,
    "defender.alert_resource": _from_defender_resource,
    "security_alert": _from_security_alert,
    "defender.activity_log": _from_activity_log,
}
