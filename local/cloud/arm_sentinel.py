"""Microsoft.SecurityInsights (Sentinel) on a Log Analytics workspace: incidents (list with $filter/$orderby/$top,
get, create-or-update with etag checks, delete), incident comments, and the incident's entities, alerts and bookmarks.

Incidents live in the live document's `sentinel.incidents`, each the ARM incident plus the arrays the REST API only
shows through its own calls (`entities`, `alerts`, `comments`, `bookmarks`).

Optimistic concurrency as observed on the real service: a PUT whose body etag is stale gets 409 Conflict
("New version of resource ... exists"), an If-Match header that does not match gets 412 PreconditionFailed."""

from __future__ import annotations

import copy
import re
import uuid
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from local.cloud import arm_resources as arm
from local.cloud.arm_resources import ArmProvider, Json
from local.cloud.errors import ArmError
from local.cloud.provider import route
from local.cloud.router import request_params
from local.cloud.state import Cloud

INCIDENT_TYPE = "Microsoft.SecurityInsights/Incidents"
COMMENT_TYPE = "Microsoft.SecurityInsights/Incidents/Comments"
ENTITY_TYPE = "Microsoft.SecurityInsights/Entities"
PORTAL = "https://portal.azure.com/#asset/Microsoft_Azure_Security_Insights/Incident"
MAX_COMMENT_CHARS = 30000
PAGE_SIZE = 50

SEVERITIES = {s.lower(): s for s in ("High", "Medium", "Low", "Informational")}
STATUSES = {s.lower(): s for s in ("New", "Active", "Closed")}
CLASSIFICATIONS = {c.lower(): c for c in ("Undetermined", "TruePositive", "BenignPositive", "FalsePositive")}
CLASSIFICATION_REASONS = {
    r.lower(): r
    for r in (
        "SuspiciousActivity",
        "SuspiciousButExpected",
        "IncorrectAlertLogic",
        "InaccurateData",
        "Undetermined",
    )
}
# Properties a client sets with a PUT; the service keeps the rest (number, creation time, provider, counts...).
CLIENT_PROPERTIES = (
    "title", "description", "severity", "status", "classification", "classificationReason", "classificationComment",
    "owner", "labels", "firstActivityTimeUtc", "lastActivityTimeUtc", "providerIncidentUrl", "teamInformation",
)  # fmt: skip
TIME_FIELDS = frozenset(
    {
        "createdTimeUtc", "lastModifiedTimeUtc", "firstActivityTimeUtc", "lastActivityTimeUtc", "startTimeUtc",
        "endTimeUtc", "timeGenerated", "processingEndTime",
    }
)  # fmt: skip
RELATIVE_TIME = re.compile(r"^now(?:\s*([+-])\s*(\d+(?:\.\d+)?)\s*([smhd]))?$", re.IGNORECASE)
FRIENDLY_NAME_FIELDS = {
    "account": "accountName", "host": "hostName", "ip": "address", "url": "url", "file": "fileName",
    "filehash": "hashValue", "azureresource": "resourceId", "cloudapplication": "appName",
    "mailbox": "mailboxPrimaryAddress", "process": "commandLine", "dnsresolution": "domainName",
    "malware": "malwareName", "securitygroup": "distinguishedName",
}  # fmt: skip


def bad_request(message: str) -> ArmError:
    return ArmError(400, "BadRequest", message)


def _guid(*parts: str) -> str:
    return str(uuid.uuid5(uuid.NAMESPACE_URL, "/".join(p.lower() for p in parts)))


def resolve_time(value: Any, now: float) -> Any:
    """Seeds may write 'now-2h' / 'now-30m' / 'now-1d' so the demo incidents are always recent."""
    if not isinstance(value, str):
        return value
    match = RELATIVE_TIME.match(value.strip())
    if match is None:
        return value
    sign, amount, unit = match.groups()
    offset = float(amount or 0) * {"s": 1, "m": 60, "h": 3600, "d": 86400}[(unit or "s").lower()]
    return arm.iso(now - offset if sign == "-" else now + offset)


def resolve_times(node: Any, now: float) -> None:
    if isinstance(node, dict):
        for name, value in node.items():
            if name in TIME_FIELDS:
                node[name] = resolve_time(value, now)
            else:
                resolve_times(value, now)
    elif isinstance(node, list):
        for item in node:
            resolve_times(item, now)


def workspace_of(incident_id: str) -> str:
    """The workspace id an incident (or entity, comment) id lives under."""
    lowered = incident_id.lower()
    cut = lowered.find("/providers/microsoft.securityinsights/")
    return incident_id[:cut] if cut >= 0 else incident_id


def find_user(doc: Json, object_id: str | None = None, upn: str | None = None) -> Json | None:
    users: list[Json] = (doc.get("graph") or {}).get("users") or []
    for user in users:
        if object_id and str(user.get("id", "")).lower() == object_id.lower():
            return user
        if upn and str(user.get("userPrincipalName", "")).lower() == upn.lower():
            return user
    return None


def resolve_owner(doc: Json, owner: Any) -> Json:
    """Sentinel fills the owner's details from Entra ID; unassigned means all four fields null."""
    owner = owner if isinstance(owner, dict) else {}
    user = find_user(doc, owner.get("objectId"), owner.get("userPrincipalName") or owner.get("email"))
    if user is None and not any(owner.get(k) for k in ("objectId", "userPrincipalName", "email", "assignedTo")):
        return {
            "objectId": None,
            "email": None,
            "assignedTo": None,
            "userPrincipalName": None,
        }
    resolved = {
        "objectId": owner.get("objectId") or (user or {}).get("id"),
        "email": owner.get("email") or (user or {}).get("mail") or (user or {}).get("userPrincipalName"),
        "assignedTo": owner.get("assignedTo") or (user or {}).get("displayName"),
        "userPrincipalName": owner.get("userPrincipalName") or (user or {}).get("userPrincipalName"),
    }
    if owner.get("ownerType"):
        resolved["ownerType"] = owner["ownerType"]
    return resolved


def normalize_labels(labels: Any) -> list[Json] | None:
    if labels is None:
        return []
    if not isinstance(labels, list) or any(
        not isinstance(label, dict) or not label.get("labelName") for label in labels
    ):
        return None
    return [{"labelName": label["labelName"], "labelType": label.get("labelType") or "User"} for label in labels]


def friendly_name(entity: Json) -> str | None:
    props = entity.get("properties") or {}
    field_name = FRIENDLY_NAME_FIELDS.get(str(entity.get("kind", "")).lower())
    value = props.get(field_name) if field_name else None
    if isinstance(value, str) and str(entity.get("kind", "")).lower() == "azureresource":
        return value.rstrip("/").split("/")[-1]
    return value if isinstance(value, str) else None


# --------------------------------------------------------------------------------------------------------------------
# seed expansion


def expand(doc: Json, now: float) -> None:
    """Fills what a seed may omit for every incident and its entities, alerts and comments."""
    sentinel = doc.get("sentinel")
    if not isinstance(sentinel, dict):
        return
    incidents = sentinel.setdefault("incidents", [])
    resources = (doc.get("arm") or {}).get("resources") or []
    workspaces = {
        arm.key(r["id"]): r for r in resources if str(r.get("type", "")).lower() == arm.WORKSPACE_TYPE.lower()
    }
    numbers = [i.get("properties", {}).get("incidentNumber") for i in incidents]
    next_number = max([n for n in numbers if isinstance(n, int)], default=0) + 1
    for incident in incidents:
        resolve_times(incident, now)
        incident_id = incident["id"]
        workspace_id = workspace_of(incident_id)
        incident.setdefault("name", incident_id.rstrip("/").split("/")[-1])
        incident.setdefault("type", INCIDENT_TYPE)
        incident.setdefault("etag", f'"{_guid(incident_id, "etag")}"')
        props = incident.setdefault("properties", {})
        if not isinstance(props.get("incidentNumber"), int):
            props["incidentNumber"] = next_number
            next_number += 1
        props.setdefault("severity", "Medium")
        props.setdefault("status", "New")
        props.setdefault("createdTimeUtc", arm.iso(now))
        props.setdefault("lastModifiedTimeUtc", props["createdTimeUtc"])
        props.setdefault("firstActivityTimeUtc", props["createdTimeUtc"])
        props.setdefault("lastActivityTimeUtc", props["createdTimeUtc"])
        props["owner"] = resolve_owner(doc, props.get("owner"))
        props["labels"] = normalize_labels(props.get("labels")) or []
        props.setdefault("providerName", "Azure Sentinel")
        props.setdefault("providerIncidentId", str(props["incidentNumber"]))
        props.setdefault("incidentUrl", f"{PORTAL}{incident_id}")
        props.setdefault("relatedAnalyticRuleIds", [])
        props.setdefault("additionalData", {})
        for index, entity in enumerate(incident.setdefault("entities", [])):
            expand_entity(entity, workspace_id, incident_id, index)
        workspace = workspaces.get(arm.key(workspace_id), {})
        for index, alert in enumerate(incident.setdefault("alerts", [])):
            alert.setdefault("kind", "SecurityAlert")
            expand_entity(alert, workspace_id, incident_id, index, purpose="alert")
            expand_alert(alert, incident, workspace)
        for index, comment in enumerate(incident.setdefault("comments", [])):
            expand_comment(doc, comment, incident_id, index)
        incident.setdefault("bookmarks", [])


def expand_entity(
    entity: Json,
    workspace_id: str,
    incident_id: str,
    index: int,
    purpose: str = "entity",
) -> None:
    name = entity.get("name") or _guid(incident_id, purpose, str(index))
    entity["name"] = name
    entity.setdefault("id", f"{workspace_id}/providers/Microsoft.SecurityInsights/Entities/{name}")
    entity.setdefault("type", ENTITY_TYPE)
    props = entity.setdefault("properties", {})
    if "friendlyName" not in props and friendly_name(entity) is not None:
        props["friendlyName"] = friendly_name(entity)


def expand_alert(alert: Json, incident: Json, workspace: Json) -> None:
    props = alert["properties"]
    incident_props = incident["properties"]
    parsed = arm.ArmId.parse(workspace.get("id"))
    props.setdefault("systemAlertId", alert["name"])
    props.setdefault("alertDisplayName", incident_props.get("title"))
    props.setdefault("alertType", props["alertDisplayName"])
    props.setdefault("severity", incident_props.get("severity"))
    props.setdefault("status", "New")
    props.setdefault("confidenceLevel", "Unknown")
    props.setdefault("vendorName", "Microsoft")
    props.setdefault("productName", "Azure Sentinel")
    props.setdefault("tactics", [])
    for field_name in (
        "startTimeUtc",
        "endTimeUtc",
        "timeGenerated",
        "processingEndTime",
    ):
        props.setdefault(field_name, incident_props.get("firstActivityTimeUtc"))
    if parsed is not None:
        props.setdefault(
            "resourceIdentifiers",
            [
                {
                    "type": "LogAnalytics",
                    "workspaceId": (workspace.get("properties") or {}).get("customerId"),
                    "subscriptionId": parsed.subscription,
                    "resourceGroup": parsed.resource_group,
                }
            ],
        )
    props.setdefault("additionalData", {"AlertMessageEnqueueTime": props.get("processingEndTime")})
    props.setdefault("friendlyName", props["alertDisplayName"])


def expand_comment(doc: Json, comment: Json, incident_id: str, index: int) -> None:
    comment.setdefault("name", _guid(incident_id, "comment", str(index)))
    comment.setdefault("id", f"{incident_id}/comments/{comment['name']}")
    comment.setdefault("type", COMMENT_TYPE)
    comment.setdefault("etag", f'"{_guid(comment["id"], "etag")}"')
    props = comment.setdefault("properties", {})
    props.setdefault("createdTimeUtc", arm.utc_now())
    props.setdefault("lastModifiedTimeUtc", props["createdTimeUtc"])
    props.setdefault("author", caller(doc))


def caller(doc: Json) -> Json:
    """Comments written through the API are authored by the calling identity: Riposte's managed identity."""
    identity = (doc.get("tenant") or {}).get("riposteIdentity") or {}
    return {
        "objectId": identity.get("principalId"),
        "email": None,
        "userPrincipalName": None,
        "name": identity.get("displayName", "Riposte"),
    }


# --------------------------------------------------------------------------------------------------------------------
# rendering


def additional_data(incident: Json) -> Json:
    alerts = incident.get("alerts", [])
    stored = copy.deepcopy(incident.get("properties", {}).get("additionalData") or {})
    products = [a.get("properties", {}).get("productName") for a in alerts]
    tactics = [t for a in alerts for t in a.get("properties", {}).get("tactics", [])]
    techniques = [t for a in alerts for t in a.get("properties", {}).get("techniques", [])]
    stored.update(
        alertsCount=len(alerts),
        bookmarksCount=len(incident.get("bookmarks", [])),
        commentsCount=len(incident.get("comments", [])),
        alertProductNames=sorted({p for p in products if p} | set(stored.get("alertProductNames", []))),
        tactics=sorted(set(tactics) | set(stored.get("tactics", []))),
        techniques=sorted(set(techniques) | set(stored.get("techniques", []))),
    )
    return stored


def render_incident(incident: Json) -> Json:
    props = copy.deepcopy(incident["properties"])
    props["additionalData"] = additional_data(incident)
    return {
        "id": incident["id"],
        "name": incident["name"],
        "etag": incident["etag"],
        "type": incident["type"],
        "properties": props,
    }


# --------------------------------------------------------------------------------------------------------------------
# $filter / $orderby over incident properties


class FilterError(ValueError):
    pass


_COMPARISON = re.compile(
    r"^\(?\s*properties/(\w+(?:/\w+)?)\s+(eq|ne|gt|ge|lt|le)\s+(.+?)\s*\)?$",
    re.IGNORECASE,
)


def _literal(text: str) -> Any:
    text = text.strip()
    if text.startswith("'") and text.endswith("'"):
        return text[1:-1].replace("''", "'")
    if text.lower() in ("true", "false"):
        return text.lower() == "true"
    if text.lower() == "null":
        return None
    try:
        return int(text)
    except ValueError:
        pass
    if arm.parse_time(text) is not None:
        return text
    raise FilterError(f"Unsupported literal '{text}'.")


def _field(incident: Json, path: str) -> Any:
    value: Any = render_incident(incident)["properties"]
    for part in path.split("/"):
        value = value.get(part) if isinstance(value, dict) else None
    return value


def _compare(actual: Any, op: str, expected: Any) -> bool:
    actual_time, expected_time = (arm.parse_time(v) if isinstance(v, str) else None for v in (actual, expected))
    if actual_time is not None and expected_time is not None:
        actual, expected = actual_time, expected_time
    elif isinstance(actual, str) and isinstance(expected, str):
        actual, expected = actual.lower(), expected.lower()
    if op == "eq":
        return bool(actual == expected)
    if op == "ne":
        return bool(actual != expected)
    if actual is None or expected is None:
        return False
    try:
        return bool(
            {
                "gt": actual > expected,
                "ge": actual >= expected,
                "lt": actual < expected,
                "le": actual <= expected,
            }[op]
        )
    except TypeError:
        return False


def incident_filter(expression: str) -> Any:
    """A predicate for `properties/x op value` clauses joined by and/or (and binds tighter)."""
    alternatives = []
    for alternative in re.split(r"\s+or\s+", expression.strip(), flags=re.IGNORECASE):
        clauses = []
        for clause in re.split(r"\s+and\s+", alternative, flags=re.IGNORECASE):
            match = _COMPARISON.match(clause.strip())
            if match is None:
                raise FilterError(f"Invalid $filter clause '{clause.strip()}'.")
            clauses.append((match.group(1), match.group(2).lower(), _literal(match.group(3))))
        alternatives.append(clauses)

    def matches(incident: Json) -> bool:
        return any(all(_compare(_field(incident, f), op, v) for f, op, v in clauses) for clauses in alternatives)

    return matches


def order_incidents(incidents: list[Json], expression: str) -> list[Json]:
    ordered = list(incidents)
    for part in reversed([p.strip() for p in expression.split(",") if p.strip()]):
        field_path, _, direction = part.partition(" ")
        path = field_path.strip().removeprefix("properties/")

        def sort_key(incident: Json, path: str = path) -> tuple[int, Any]:
            value = _field(incident, path)
            as_time = arm.parse_time(value) if isinstance(value, str) else None
            comparable = as_time if as_time is not None else value
            return (comparable is None, comparable if comparable is not None else 0)

        ordered.sort(key=sort_key, reverse=direction.strip().lower() == "desc")
    return ordered


# --------------------------------------------------------------------------------------------------------------------
# routes


class Incidents:
    """The `sentinel.incidents` list of the live document, indexed by case-folded id."""

    def __init__(self, doc: Json) -> None:
        self.items: list[Json] = doc.setdefault("sentinel", {}).setdefault("incidents", [])
        self.index = {arm.key(i["id"]): i for i in self.items}

    def in_workspace(self, workspace_id: str) -> list[Json]:
        prefix = arm.key(workspace_id) + "/providers/microsoft.securityinsights/incidents/"
        return [i for i in self.items if arm.key(i["id"]).startswith(prefix)]

    def get(self, workspace_id: str, incident: str) -> Json | None:
        return self.index.get(arm.key(f"{workspace_id}/providers/Microsoft.SecurityInsights/Incidents/{incident}"))

    def add(self, incident: Json) -> None:
        self.items.append(incident)
        self.index[arm.key(incident["id"])] = incident

    def remove(self, incident: Json) -> None:
        self.items.remove(incident)
        self.index.pop(arm.key(incident["id"]), None)


def incidents(cloud: Cloud) -> Incidents:
    current = cloud.runtime.get("sentinel_incidents")
    if current is None:
        current = Incidents(cloud.doc)
        cloud.runtime["sentinel_incidents"] = current
    assert isinstance(current, Incidents)
    return current


def _strip_quotes(etag: Any) -> str:
    text = str(etag or "").strip()
    return text.removeprefix("W/").strip('"')


def validate_incident(props: Json) -> None:
    for required in ("title", "severity", "status"):
        if not props.get(required):
            raise bad_request(f"The {required[0].upper() + required[1:]} field is required.")
    for field_name, table in (("severity", SEVERITIES), ("status", STATUSES)):
        if str(props[field_name]).lower() not in table:
            raise bad_request(
                f"Invalid {field_name} '{props[field_name]}'. Allowed values: {', '.join(table.values())}."
            )
        props[field_name] = table[str(props[field_name]).lower()]
    classification = props.get("classification")
    if props["status"] == "Closed" and not classification:
        raise bad_request("Classification is required when closing an incident (status 'Closed').")
    if classification:
        if str(classification).lower() not in CLASSIFICATIONS:
            raise bad_request(
                f"Invalid classification '{classification}'. Allowed values: {', '.join(CLASSIFICATIONS.values())}."
            )
        props["classification"] = CLASSIFICATIONS[str(classification).lower()]
    reason = props.get("classificationReason")
    if reason:
        if str(reason).lower() not in CLASSIFICATION_REASONS:
            allowed = ", ".join(CLASSIFICATION_REASONS.values())
            raise bad_request(f"Invalid classificationReason '{reason}'. Allowed values: {allowed}.")
        props["classificationReason"] = CLASSIFICATION_REASONS[str(reason).lower()]


BASE = (
    "/subscriptions/{subscription}/resourcegroups/{group}/providers/Microsoft.OperationalInsights/workspaces/"
    "{workspace}/providers/Microsoft.SecurityInsights"
)
INCIDENT = BASE + "/incidents/{incident}"


class SentinelProvider(ArmProvider):
    @property
    def incidents(self) -> Incidents:
        return incidents(self.cloud)

    def _workspace(self, subscription: str, group: str, workspace: str) -> Json:
        return self.find(subscription, group, arm.WORKSPACE_TYPE, workspace)

    def _incident(self, subscription: str, group: str, workspace: str, incident: str) -> Json:
        found = self.incidents.get(self._workspace(subscription, group, workspace)["id"], incident)
        if found is None:
            raise ArmError(404, "NotFound", f"Incident {incident} was not found.")
        return found

    @route("GET", BASE + "/incidents")
    async def list_incidents(self, request: Request, subscription: str, group: str, workspace: str) -> Response:
        found_workspace = self._workspace(subscription, group, workspace)
        params = request_params(request)
        items = self.incidents.in_workspace(found_workspace["id"])
        try:
            if params.get("$filter"):
                items = [i for i in items if incident_filter(params["$filter"])(i)]
        except FilterError as exc:
            raise bad_request(str(exc)) from exc
        if params.get("$orderby"):
            items = order_incidents(items, params["$orderby"])
        top = params.get("$top")
        if top is not None:
            if not top.isdigit():
                raise bad_request(f"Invalid $top '{top}'.")
            return JSONResponse({"value": [render_incident(i) for i in items[: int(top)]]})
        skip = int(params.get("$skiptoken", "0") or 0) if params.get("$skiptoken", "0").isdigit() else 0
        page = items[skip : skip + PAGE_SIZE]
        body: Json = {"value": [render_incident(i) for i in page]}
        if skip + PAGE_SIZE < len(items):
            kept = "&".join(p for p in request.url.query.split("&") if p and not p.lower().startswith("$skiptoken="))
            body["nextLink"] = f"{str(request.url).split('?')[0]}?{kept}&$skipToken={skip + PAGE_SIZE}"
        return JSONResponse(body)

    @route("GET", INCIDENT)
    async def get_incident(
        self, request: Request, subscription: str, group: str, workspace: str, incident: str
    ) -> Response:
        return JSONResponse(render_incident(self._incident(subscription, group, workspace, incident)))

    @route("PUT", INCIDENT)
    async def put_incident(
        self, request: Request, subscription: str, group: str, workspace: str, incident: str
    ) -> Response:
        found_workspace = self._workspace(subscription, group, workspace)
        body = await arm.read_json(request)
        existing = self.incidents.get(found_workspace["id"], incident)
        arm.check_preconditions(request, existing["etag"] if existing else None)
        if existing is not None and body.get("etag") and _strip_quotes(body["etag"]) != _strip_quotes(existing["etag"]):
            raise ArmError(409, "Conflict", f"New version of resource '{existing['id']}' exists. Data was not saved")
        props = _client_properties(body, existing)
        props["owner"] = resolve_owner(self.cloud.doc, props.get("owner"))
        now = arm.utc_now()
        if existing is None:
            record = self._new_incident(found_workspace["id"], incident, now)
            kept: Json = record.pop("properties")
        else:
            record = existing
            kept = {k: v for k, v in existing["properties"].items() if k not in CLIENT_PROPERTIES}
        props.setdefault(
            "firstActivityTimeUtc", (existing or {}).get("properties", {}).get("firstActivityTimeUtc", now)
        )
        props.setdefault("lastActivityTimeUtc", (existing or {}).get("properties", {}).get("lastActivityTimeUtc", now))
        record["properties"] = {**kept, **props, "lastModifiedTimeUtc": now}
        record["etag"] = arm.quoted_etag()
        if existing is None:
            self.incidents.add(record)
        return JSONResponse(render_incident(record), status_code=200 if existing else 201)

    def _new_incident(self, workspace_id: str, incident: str, now: str) -> Json:
        """A new incident's record, its properties the ones the service sets (the next number, the portal link)."""
        numbers = [i["properties"].get("incidentNumber", 0) for i in self.incidents.in_workspace(workspace_id)]
        number = max([n for n in numbers if isinstance(n, int)], default=0) + 1
        incident_id = f"{workspace_id}/providers/Microsoft.SecurityInsights/Incidents/{incident}"
        return {
            "id": incident_id,
            "name": incident,
            "type": INCIDENT_TYPE,
            "entities": [],
            "alerts": [],
            "comments": [],
            "bookmarks": [],
            "properties": {
                "createdTimeUtc": now,
                "incidentNumber": number,
                "providerName": "Azure Sentinel",
                "providerIncidentId": str(number),
                "incidentUrl": f"{PORTAL}{incident_id}",
                "relatedAnalyticRuleIds": [],
                "additionalData": {},
            },
        }

    @route("DELETE", INCIDENT)
    async def delete_incident(
        self, request: Request, subscription: str, group: str, workspace: str, incident: str
    ) -> Response:
        found_workspace = self._workspace(subscription, group, workspace)
        found = self.incidents.get(found_workspace["id"], incident)
        if found is None:
            return Response(status_code=204)
        arm.check_preconditions(request, found["etag"])
        self.incidents.remove(found)
        return Response(status_code=200)

    # ---- the incident's own collections -------------------------------------------------------------------------

    @route("POST", INCIDENT + "/entities")
    async def list_entities(
        self, request: Request, subscription: str, group: str, workspace: str, incident: str
    ) -> Response:
        found = self._incident(subscription, group, workspace, incident)
        entities = [e for e in found.get("entities", []) if str(e.get("kind", "")).lower() != "securityalert"]
        counts: dict[str, int] = {}
        for entity in entities:
            counts[entity["kind"]] = counts.get(entity["kind"], 0) + 1
        return JSONResponse(
            {
                "entities": copy.deepcopy(entities),
                "metaData": [{"entityKind": kind, "count": count} for kind, count in counts.items()],
            }
        )

    @route("POST", INCIDENT + "/alerts", collection="alerts")
    @route("POST", INCIDENT + "/bookmarks", collection="bookmarks")
    async def list_related(
        self, request: Request, subscription: str, group: str, workspace: str, incident: str, collection: str
    ) -> Response:
        found = self._incident(subscription, group, workspace, incident)
        return JSONResponse({"value": copy.deepcopy(found.get(collection, []))})

    @route("GET", BASE + "/entities/{entity}")
    async def get_entity(
        self, request: Request, subscription: str, group: str, workspace: str, entity: str
    ) -> Response:
        found_workspace = self._workspace(subscription, group, workspace)
        for item in self.incidents.in_workspace(found_workspace["id"]):
            for candidate in [*item.get("entities", []), *item.get("alerts", [])]:
                if str(candidate.get("name", "")).lower() == entity.lower():
                    return JSONResponse(copy.deepcopy(candidate))
        raise ArmError(404, "NotFound", f"Entity {entity} was not found.")

    # ---- comments ---------------------------------------------------------------------------------------------------

    @route("GET", INCIDENT + "/comments")
    async def list_comments(
        self, request: Request, subscription: str, group: str, workspace: str, incident: str
    ) -> Response:
        found = self._incident(subscription, group, workspace, incident)
        ordered = sorted(
            found.get("comments", []), key=lambda c: arm.parse_time(c["properties"].get("createdTimeUtc")) or 0
        )
        return JSONResponse({"value": copy.deepcopy(ordered)})

    @route("GET", INCIDENT + "/comments/{comment}")
    async def get_comment(
        self, request: Request, subscription: str, group: str, workspace: str, incident: str, comment: str
    ) -> Response:
        found = self._incident(subscription, group, workspace, incident)
        match = find_comment(found, comment)
        if match is None:
            raise ArmError(404, "NotFound", f"Comment {comment} was not found.")
        return JSONResponse(copy.deepcopy(match))

    @route("PUT", INCIDENT + "/comments/{comment}")
    async def put_comment(
        self, request: Request, subscription: str, group: str, workspace: str, incident: str, comment: str
    ) -> Response:
        found = self._incident(subscription, group, workspace, incident)
        body = await arm.read_json(request)
        message = (body.get("properties") or {}).get("message")
        if not isinstance(message, str) or not message.strip():
            raise bad_request("The Message field is required.")
        if len(message) > MAX_COMMENT_CHARS:
            raise bad_request(
                f"The comment message is {len(message)} characters long; the maximum is {MAX_COMMENT_CHARS}."
            )
        existing = find_comment(found, comment)
        arm.check_preconditions(request, existing["etag"] if existing else None)
        now = arm.utc_now()
        if existing is None:
            record: Json = {
                "id": f"{found['id']}/comments/{comment}",
                "name": comment,
                "type": COMMENT_TYPE,
                "properties": {
                    "message": message,
                    "createdTimeUtc": now,
                    "lastModifiedTimeUtc": now,
                    "author": caller(self.cloud.doc),
                },
            }
            found.setdefault("comments", []).append(record)
        else:
            record = existing
            record["properties"].update(message=message, lastModifiedTimeUtc=now)
        record["etag"] = arm.quoted_etag()
        return JSONResponse(copy.deepcopy(record), status_code=200 if existing else 201)

    @route("DELETE", INCIDENT + "/comments/{comment}")
    async def delete_comment(
        self, request: Request, subscription: str, group: str, workspace: str, incident: str, comment: str
    ) -> Response:
        found = self._incident(subscription, group, workspace, incident)
        match = find_comment(found, comment)
        if match is None:
            return Response(status_code=204)
        found["comments"].remove(match)
        return Response(status_code=200)


def find_comment(incident: Json, comment: str) -> Json | None:
    return next((c for c in incident.get("comments", []) if c["name"].lower() == comment.lower()), None)


def _client_properties(body: Json, existing: Json | None) -> Json:
    """The properties a client sets with a PUT, validated. labelType is read-only (the spec's IncidentLabel): a
    label the incident has keeps its type (AutoAssigned stays AutoAssigned), a new one is "User"."""
    props_in = body.get("properties")
    if not isinstance(props_in, dict):
        raise bad_request("The Properties field is required.")
    props: Json = {k: copy.deepcopy(v) for k, v in props_in.items() if k in CLIENT_PROPERTIES}
    validate_incident(props)
    labels = normalize_labels(props.get("labels"))
    if labels is None:
        raise bad_request("Each label needs a labelName.")
    known = {
        str(label["labelName"]).lower(): label.get("labelType")
        for label in ((existing or {}).get("properties") or {}).get("labels") or []
    }
    props["labels"] = [
        {"labelName": label["labelName"], "labelType": known.get(str(label["labelName"]).lower()) or "User"}
        for label in labels
    ]
    return props
