"""Microsoft Sentinel incidents, their entities, alerts and comments, on azure-mgmt-securityinsight (.aio).

The SDK (1.0.0) is an autorest client pinned to api-version 2021-10-01; its models predate fields the service returns
today (ownerType, techniques, providerIncidentId...), so reads hand back the response body as the service sent it
rather than the models' reduced view. Writes go through the models (the SDK serialises the body), which also drops
what the service treats as read-only (a label's labelType).

One client per subscription, taken from the incident's ARM id. Every PUT passes the Sentinel write limiter first
(Microsoft guarantees 75 incident and 75 comment writes per 5 minutes). The read-only POSTs (.../entities,
.../alerts) are retried on 429 like GETs: azure-core retries a POST only when the service sends Retry-After.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from shared.armid import ArmId
from shared.azure.arm import admission_policy, arm_client_kwargs
from shared.azure.errors import AzureError, NotFound, from_sdk
from shared.azure.limits import Limits
from shared.settings import Settings

if TYPE_CHECKING:
    from azure.mgmt.securityinsight.aio import SecurityInsights

SERVICE = "sentinel"
# Properties a PUT carries; everything else (number, times, counts, provider...) belongs to the service.
WRITABLE = (
    "title",
    "description",
    "severity",
    "status",
    "classification",
    "classificationReason",
    "classificationComment",
    "owner",
    "labels",
)
CLASSIFICATION_FIELDS = ("classification", "classificationReason", "classificationComment")
MAX_CONCURRENCY_RETRIES = 5  # re-read and re-apply after 412/409 at most this many times
# Read-only POSTs (entities, alerts) retry on 429/5xx like GETs; azure-core retries a POST only on Retry-After.
_RETRY_METHODS = frozenset({"HEAD", "GET", "PUT", "DELETE", "OPTIONS", "TRACE", "POST"})
INCIDENT_TYPE = "Microsoft.SecurityInsights/incidents"
WORKSPACE_TYPE = "Microsoft.OperationalInsights/workspaces"
_NOT_AN_INCIDENT = (
    "not a Sentinel incident ARM id (/subscriptions/<id>/resourceGroups/<rg>/providers/"
    "Microsoft.OperationalInsights/workspaces/<ws>/providers/Microsoft.SecurityInsights/incidents/<id>)"
)


class InvalidIncidentId(ValueError):
    pass


@dataclass(frozen=True)
class IncidentRef:
    """A Sentinel incident's ARM id, taken apart (ARM ids compare case-insensitively)."""

    subscription: str
    resource_group: str
    workspace: str
    name: str

    @classmethod
    def parse(cls, arm_id: str) -> IncidentRef:
        try:
            incident = ArmId.parse(arm_id, INCIDENT_TYPE)
        except ValueError:
            raise InvalidIncidentId(_NOT_AN_INCIDENT) from None
        workspace = incident.scope  # the workspace the incident extends
        if workspace is None or workspace.scope is not None or workspace.type.lower() != WORKSPACE_TYPE.lower():
            raise InvalidIncidentId(_NOT_AN_INCIDENT)
        return cls(incident.subscription, incident.resource_group, workspace.name, incident.name)

    @property
    def id(self) -> str:
        return (
            f"/subscriptions/{self.subscription}/resourceGroups/{self.resource_group}/providers/"
            f"Microsoft.OperationalInsights/workspaces/{self.workspace}/providers/Microsoft.SecurityInsights/"
            f"incidents/{self.name}"
        )

    @property
    def portal_url(self) -> str:
        return f"https://portal.azure.com/#asset/Microsoft_Azure_Security_Insights/Incident{self.id}"


# ---------------------------------------------------------------------------------------------------------------------
# The change an update makes, as a pure function so it can be planned, re-applied after a 412 and undone.


def _label_names(labels: Any) -> list[str]:
    return [str(label.get("labelName")) for label in labels or [] if isinstance(label, dict) and label.get("labelName")]


def _owner_id(owner: Any) -> str | None:
    value = owner.get("objectId") if isinstance(owner, dict) else None
    return str(value).lower() if value else None


def writable(properties: Mapping[str, Any]) -> dict[str, Any]:
    """The part of an incident's properties a PUT sends back."""
    return {name: properties[name] for name in WRITABLE if properties.get(name) is not None}


def merge_incident(
    properties: Mapping[str, Any],
    changes: Mapping[str, Any],
    *,
    add_labels: Iterable[str] = (),
    remove_labels: Iterable[str] = (),
) -> dict[str, Any]:
    """The writable properties after the change: `changes` sets fields (None clears one; `owner` is compared by
    objectId), labels are added or removed by name (case-insensitively) and every other label is kept."""
    merged = writable(properties)
    for name, value in changes.items():
        if name not in WRITABLE or name == "labels":
            raise ValueError(f"{name} is not a field an incident update sets")
        if name == "owner" and _owner_id(value) == _owner_id(merged.get("owner")):
            continue  # same owner: keep the details the service filled in
        if value is None:
            merged.pop(name, None)
        else:
            merged[name] = value
    if merged.get("owner") is not None and _owner_id(merged["owner"]) is None:
        merged.pop("owner")  # unassigned
    removed = {name.lower() for name in remove_labels}
    labels = [dict(label) for label in merged.get("labels", []) if str(label["labelName"]).lower() not in removed]
    present = {str(label["labelName"]).lower() for label in labels}
    for name in add_labels:
        if name.lower() not in present and name.lower() not in removed:
            labels.append({"labelName": name, "labelType": "User"})
            present.add(name.lower())
    merged["labels"] = labels
    return merged


def same_incident(left: Mapping[str, Any], right: Mapping[str, Any]) -> bool:
    """Whether two sets of writable properties mean the same incident state (owners by objectId, labels by name)."""
    for name in WRITABLE:
        a, b = left.get(name), right.get(name)
        if name == "owner":
            if _owner_id(a) != _owner_id(b):
                return False
        elif name == "labels":
            if [n.lower() for n in _label_names(a)] != [n.lower() for n in _label_names(b)]:
                return False
        elif (a or None) != (b or None):
            return False
    return True


def _body(properties: Mapping[str, Any], etag: str | None) -> dict[str, Any]:
    props = dict(properties)
    if "labels" in props:
        # labelType is read-only: the service keeps it for labels it knows and makes new ones "User"
        props["labels"] = [{"labelName": name} for name in _label_names(props["labels"])]
    # Always sent: an owner without an objectId (an empty object) is how an incident is unassigned.
    owner: dict[str, Any] = props["owner"] if isinstance(props.get("owner"), dict) else {}
    props["owner"] = {k: v for k, v in owner.items() if v is not None and k != "ownerType"}
    body: dict[str, Any] = {"properties": props}
    if etag:
        body["etag"] = etag
    return body


def _raw_json(pipeline_response: Any, deserialized: Any, headers: Any) -> Any:
    """`cls=` hook: the response body as the service sent it (not the 2021-10-01 model's view of it)."""
    text = pipeline_response.http_response.text()
    return json.loads(text) if text else None


def _object(value: Any) -> dict[str, Any]:
    """A response body that must be a JSON object."""
    if not isinstance(value, dict):
        raise AzureError(SERVICE, None, "InvalidResponse", f"expected a JSON object, got {type(value).__name__}")
    return value


class SentinelAdapter:
    def __init__(self, settings: Settings, credential: Any, limits: Limits) -> None:
        self.settings = settings
        self.credential = credential
        self.limits = limits
        self._clients: dict[str, SecurityInsights] = {}

    def _client(self, ref: IncidentRef) -> SecurityInsights:
        key = ref.subscription.lower()
        if key not in self._clients:
            from azure.mgmt.securityinsight.aio import SecurityInsights

            # Every PUT this client sends is an incident or comment write: its retries are admitted by the Sentinel
            # write limiter too, and its 429s pause it.
            writes = admission_policy(self.limits.sentinel_writes, frozenset({"PUT"}))
            kwargs = arm_client_kwargs(self.settings, per_retry=[writes])
            self._clients[key] = SecurityInsights(self.credential, ref.subscription, **kwargs)
        return self._clients[key]

    async def close(self) -> None:
        for client in self._clients.values():
            await client.close()
        self._clients.clear()

    # ---- incidents --------------------------------------------------------------------------------------------------

    async def get_incident(self, arm_id: str) -> dict[str, Any]:
        """The incident resource (id, name, etag, properties). Raises NotFound."""
        ref = IncidentRef.parse(arm_id)
        try:
            incident: Any = await self._client(ref).incidents.get(
                ref.resource_group, ref.workspace, ref.name, cls=_raw_json
            )
        except Exception as error:
            raise from_sdk(SERVICE, error) from error
        return _object(incident)

    async def update_incident(
        self,
        arm_id: str,
        changes: Mapping[str, Any],
        etag: str | None = None,
        *,
        add_labels: Iterable[str] = (),
        remove_labels: Iterable[str] = (),
        current: Mapping[str, Any] | None = None,
    ) -> dict[str, Any]:
        """Applies the change with optimistic concurrency: the PUT carries the etag (If-Match and in the body); when
        the incident changed meanwhile (412, or 409 from the body etag) it is read again and the change re-applied
        to what is there now, a bounded number of times. Writes nothing when the incident is already as asked.
        `current` is the incident as the caller read it (the PUT then needs no GET first); without it, it is read."""
        ref = IncidentRef.parse(arm_id)
        added, removed = tuple(add_labels), tuple(remove_labels)
        incident = dict(current) if current is not None else await self.get_incident(arm_id)
        etag = etag or incident.get("etag")
        for attempt in range(MAX_CONCURRENCY_RETRIES + 1):
            properties = incident.get("properties") or {}
            wanted = merge_incident(properties, changes, add_labels=added, remove_labels=removed)
            if same_incident(wanted, writable(properties)):
                return _object(incident)
            try:
                return await self._put_incident(ref, wanted, etag)
            except AzureError as error:
                if error.status not in (409, 412) or attempt == MAX_CONCURRENCY_RETRIES:
                    raise
            incident = await self.get_incident(arm_id)
            etag = incident.get("etag")
        raise AssertionError("unreachable")  # the loop returns or raises

    async def _put_incident(self, ref: IncidentRef, properties: Mapping[str, Any], etag: str | None) -> dict[str, Any]:
        headers = {"If-Match": etag} if etag else {}
        body: Any = _body(properties, etag)  # the SDK serialises it through its Incident model
        await self.limits.sentinel_writes.acquire()
        try:
            updated: Any = await self._client(ref).incidents.create_or_update(
                ref.resource_group, ref.workspace, ref.name, body, headers=headers, cls=_raw_json
            )
        except Exception as error:
            raise from_sdk(SERVICE, error) from error
        return _object(updated)

    async def find_incident(self, workspace_arm_id: str, number: int) -> str | None:
        """The ARM id of the incident numbered `number` in the workspace, or None (the list, filtered, top 1)."""
        try:
            workspace = ArmId.parse(workspace_arm_id, WORKSPACE_TYPE)
        except ValueError:
            raise InvalidIncidentId(f"{workspace_arm_id[:200]!r} is not a Log Analytics workspace id.") from None
        ref = IncidentRef(workspace.subscription, workspace.resource_group, workspace.name, "")
        try:
            pages: Any = self._client(ref).incidents.list(
                workspace.resource_group, workspace.name, filter=f"properties/incidentNumber eq {int(number)}", top=1
            )
            async for incident in pages:
                return str(incident.id)
        except Exception as error:
            raise from_sdk(SERVICE, error) from error
        return None

    async def incident_bundle(self, arm_id: str) -> dict[str, Any]:
        """What a relay would forward for the incident: {"incident", "entities", "alerts"}, read now (intake reads
        it as the sentinel.incident_bundle dialect)."""
        incident = await self.get_incident(arm_id)
        entities = await self.list_entities(arm_id)
        alerts = await self.list_alerts(arm_id)
        return {"incident": incident, "entities": entities, "alerts": {"value": alerts}}

    async def list_entities(self, arm_id: str) -> dict[str, Any]:
        """POST .../entities: {"entities": [...], "metaData": [{"entityKind", "count"}]}."""
        ref = IncidentRef.parse(arm_id)
        try:
            found: Any = await self._client(ref).incidents.list_entities(
                ref.resource_group, ref.workspace, ref.name, cls=_raw_json, retry_on_methods=_RETRY_METHODS
            )
        except Exception as error:
            raise from_sdk(SERVICE, error) from error
        return _object(found)

    async def list_alerts(self, arm_id: str) -> list[dict[str, Any]]:
        """POST .../alerts: the incident's SecurityAlert entities."""
        ref = IncidentRef.parse(arm_id)
        try:
            found: Any = await self._client(ref).incidents.list_alerts(
                ref.resource_group, ref.workspace, ref.name, cls=_raw_json, retry_on_methods=_RETRY_METHODS
            )
        except Exception as error:
            raise from_sdk(SERVICE, error) from error
        alerts: list[dict[str, Any]] = found.get("value") or []
        return alerts

    # ---- comments ---------------------------------------------------------------------------------------------------

    async def get_comment(self, arm_id: str, comment_id: str) -> dict[str, Any] | None:
        ref = IncidentRef.parse(arm_id)
        try:
            comment: Any = await self._client(ref).incident_comments.get(
                ref.resource_group, ref.workspace, ref.name, comment_id, cls=_raw_json
            )
        except Exception as error:
            translated = from_sdk(SERVICE, error)
            if isinstance(translated, NotFound):
                return None
            raise translated from error
        return _object(comment)

    async def create_or_update_comment(self, arm_id: str, comment_id: str, message: str) -> dict[str, Any]:
        """PUT .../comments/{comment_id}: the same id again updates the one comment, never adds a second."""
        from azure.mgmt.securityinsight.models import IncidentComment

        ref = IncidentRef.parse(arm_id)
        await self.limits.sentinel_writes.acquire()
        try:
            comment: Any = await self._client(ref).incident_comments.create_or_update(
                ref.resource_group, ref.workspace, ref.name, comment_id, IncidentComment(message=message), cls=_raw_json
            )
        except Exception as error:
            raise from_sdk(SERVICE, error) from error
        return _object(comment)

    async def list_comments(self, arm_id: str) -> list[dict[str, Any]]:
        ref = IncidentRef.parse(arm_id)
        comments: list[dict[str, Any]] = []
        try:
            async for comment in self._client(ref).incident_comments.list(ref.resource_group, ref.workspace, ref.name):
                serialized: dict[str, Any] = comment.serialize(keep_readonly=True)  # type: ignore[no-untyped-call]
                comments.append(serialized)
        except Exception as error:
            raise from_sdk(SERVICE, error) from error
        return comments


ADAPTER = SentinelAdapter
