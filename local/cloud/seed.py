"""Turns a tenant document into the live state: fills derived fields, so a seed can stay short and readable.

expand(doc) runs on every load, PUT /_admin/tenant and reset, and must be idempotent: expanding an expanded doc
(what GET /_admin/tenant returns) gives the same doc, so the tenant round-trips.

Order: tenant → graph (here) → ARM and Sentinel (local/cloud/arm_seed.py `expand(doc)`, owned by the ARM engineer,
imported lazily and skipped only while it does not exist). Log rows are NOT expanded here: the Log Analytics service
calls local/cloud/loggen `generate(doc)` itself when it builds its database for a tenant generation, so generated
rows never enter the document (see loggen's docstring)."""

from __future__ import annotations

import hashlib
import importlib
import json
import re
import uuid
from datetime import UTC, date, datetime, timedelta
from types import ModuleType
from typing import Any

# The top-level sections a tenant document may have; anything else is a typo the admin API rejects.
SECTIONS = ("tenant", "graph", "arm", "sentinel", "logAnalytics", "mde")


class SeedError(ValueError):
    """The tenant document has the wrong shape; the message says where."""


# Built-in Entra role template ids (identical in every tenant) and their descriptions.
ROLE_TEMPLATES: dict[str, tuple[str, str]] = {
    "Global Administrator": (
        "62e90394-69f5-4237-9190-012177145e10",
        "Can manage all aspects of Microsoft Entra ID and Microsoft services that use Microsoft Entra identities.",
    ),
    "Security Administrator": (
        "194ae4cb-b126-40b2-bd5b-6091b380977d",
        "Can read security information and reports, and manage configuration in Microsoft Entra ID and Office 365.",
    ),
    "User Administrator": (
        "fe930be7-5e62-47db-91af-98c3a49a38b1",
        "Can manage all aspects of users and groups, including resetting passwords for limited admins.",
    ),
    "Privileged Authentication Administrator": (
        "7be44c8a-adaf-4e2a-84d6-ab2649e08a13",
        "Can access to view, set and reset authentication method information for any user (admin or non-admin).",
    ),
    "Security Reader": (
        "5d6b6bb7-de71-4623-b4af-96380a352509",
        "Can read security information and reports in Microsoft Entra ID and Office 365.",
    ),
    "Helpdesk Administrator": (
        "729827e3-9c14-49f7-bb1b-9608f156bbb8",
        "Can reset passwords for non-administrators and Helpdesk Administrators.",
    ),
}

_RELATIVE = re.compile(r"^now(?P<parts>(?:\s*[+-]\s*\d+(?:\.\d+)?\s*[smhd])*)$", re.IGNORECASE)
_PART = re.compile(r"([+-])\s*(\d+(?:\.\d+)?)\s*([smhd])", re.IGNORECASE)
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def graph_time(moment: datetime) -> str:
    """Graph's timestamp format: UTC, 7 fractional digits, 'Z'."""
    moment = moment.astimezone(UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond:06d}0Z"


def resolve_time(value: Any, now: datetime) -> Any:
    """'now-3h' style values become Graph timestamps; anything else is returned unchanged."""
    if not isinstance(value, str):
        return value
    m = _RELATIVE.match(value.strip())
    if m is None:
        return value
    offset = 0.0
    for sign, amount, unit in _PART.findall(m.group("parts")):
        offset += (1 if sign == "+" else -1) * float(amount) * _UNITS[unit.lower()]
    return graph_time(now + timedelta(seconds=offset))


def _plain_times(node: Any) -> Any:
    """YAML reads unquoted timestamps as datetime objects; the document must stay JSON, so they become strings."""
    if isinstance(node, datetime):
        moment = node if node.tzinfo else node.replace(tzinfo=UTC)
        return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")
    if isinstance(node, date):
        return node.isoformat()
    if isinstance(node, dict):
        return {k: _plain_times(v) for k, v in node.items()}
    if isinstance(node, list):
        return [_plain_times(v) for v in node]
    return node


def _resolve_times(node: Any, now: datetime) -> Any:
    if isinstance(node, dict):
        return {
            k: (resolve_time(v, now) if k.endswith("DateTime") else _resolve_times(v, now)) for k, v in node.items()
        }
    if isinstance(node, list):
        return [_resolve_times(v, now) for v in node]
    return node


def _items(section: dict[str, Any], key: str, where: str) -> list[dict[str, Any]]:
    items = section.get(key)
    if items is None:
        section[key] = []
        return []
    if not isinstance(items, list) or not all(isinstance(i, dict) for i in items):
        raise SeedError(f"{where}.{key} must be a list of objects")
    return items


def expand(doc: dict[str, Any], now: datetime | None = None) -> dict[str, Any]:
    if not isinstance(doc, dict):
        raise SeedError("the tenant document must be a mapping of sections")
    unknown = [k for k in doc if k not in SECTIONS]
    if unknown:
        raise SeedError(f"unknown top-level section(s): {', '.join(map(str, unknown))} (known: {', '.join(SECTIONS)})")
    for name, section in doc.items():
        if section is not None and not isinstance(section, dict):
            raise SeedError(f"section '{name}' must be a mapping")
    now = now or datetime.now(UTC)
    for name in list(doc):
        doc[name] = _plain_times(doc[name])
    _expand_tenant(doc)
    _expand_graph(doc, now)

    # ARM derived fields (ids, etags, provisioningState...): local/cloud/arm_seed.py, by the ARM engineer.
    arm_seed = _optional_module("local.cloud.arm_seed")
    if arm_seed is not None:
        arm_seed.expand(doc)
    # Defender for Endpoint's machines and machine actions: local/cloud/mde.py, imported as arm_seed is.
    mde = _optional_module("local.cloud.mde")
    if mde is not None:
        mde.expand(doc, now)

    return doc


def _optional_module(name: str) -> ModuleType | None:
    try:
        return importlib.import_module(name)
    except ModuleNotFoundError as exc:
        if exc.name != name:  # the module exists but one of its imports is missing: that must be loud
            raise
        return None


# ------------------------------------------------------------------------------------------------ tenant


def _expand_tenant(doc: dict[str, Any]) -> None:
    tenant = doc.get("tenant")
    if tenant is None:
        tenant = doc["tenant"] = {}
    tenant.setdefault("id", "00000000-0000-0000-0000-000000000000")
    tenant.setdefault("domain", "contoso.com")
    tenant.setdefault("displayName", tenant["domain"])
    identity = tenant.get("riposteIdentity")
    if identity is None:
        identity = tenant["riposteIdentity"] = {}
    if not isinstance(identity, dict):
        raise SeedError("tenant.riposteIdentity must be a mapping")
    # graphPermissions stays absent when absent: that turns Graph's permission checks off (graph.py).
    for key in ("directoryRoles", "roleAssignments", "roleDefinitions"):
        if identity.get(key) is None:
            identity[key] = []
    for key in ("graphPermissions", "directoryRoles", "roleAssignments", "roleDefinitions"):
        if key in identity and not isinstance(identity[key], list):
            raise SeedError(f"tenant.riposteIdentity.{key} must be a list")


def stable_id(tenant_id: str, kind: str, name: str) -> str:
    """A GUID derived from the tenant and the object's natural key, so ids survive a reset."""
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"riposte:{tenant_id}:{kind}:{name.lower()}"))


# ------------------------------------------------------------------------------------------------ graph


def _expand_graph(doc: dict[str, Any], now: datetime) -> None:
    graph = doc.get("graph")
    if graph is None:
        graph = doc["graph"] = {}
    resolved = _resolve_times(graph, now)
    graph.clear()
    graph.update(resolved)
    tenant_id = doc["tenant"]["id"]
    users = _expand_users(_items(graph, "users", "graph"), tenant_id, doc["tenant"]["domain"], now)
    by_upn = {u["userPrincipalName"].lower(): u for u in users}
    by_id = {u["id"]: u for u in users}
    _expand_groups(_items(graph, "groups", "graph"), tenant_id, now, by_upn, by_id)
    _expand_roles(_items(graph, "directoryRoles", "graph"), tenant_id, by_upn, by_id)
    for risky in _items(graph, "riskyUsers", "graph"):
        _expand_risky_user(risky, _user_ref(risky, "id", by_upn, by_id, "graph.riskyUsers"), now)
    for detection in _items(graph, "riskDetections", "graph"):
        user = _user_ref(detection, "userId", by_upn, by_id, "graph.riskDetections")
        _expand_risk_detection(detection, user, tenant_id, now)


def _expand_users(users: list[dict[str, Any]], tenant_id: str, domain: str, now: datetime) -> list[dict[str, Any]]:
    for user in users:
        upn = user.get("userPrincipalName")
        if not upn:
            raise SeedError(f"graph.users: every user needs a userPrincipalName ({user.get('id', '?')})")
        user.setdefault("id", stable_id(tenant_id, "user", upn))
        user.setdefault("displayName", upn.split("@")[0])
        user.setdefault("accountEnabled", True)
        user.setdefault("userType", "Member")
        user.setdefault("businessPhones", [])
        user.setdefault("createdDateTime", graph_time(now - timedelta(days=365)))
        user.setdefault(
            "identities",
            [{"signInType": "userPrincipalName", "issuer": domain, "issuerAssignedId": upn}],
        )
    return users


def _expand_groups(
    groups: list[dict[str, Any]],
    tenant_id: str,
    now: datetime,
    by_upn: dict[str, dict[str, Any]],
    by_id: dict[str, dict[str, Any]],
) -> None:
    for group in groups:
        name = group.get("displayName")
        if not name:
            raise SeedError("graph.groups: every group needs a displayName")
        group.setdefault("id", stable_id(tenant_id, "group", name))
        group.setdefault("description", None)
        group.setdefault("securityEnabled", True)
        group.setdefault("mailEnabled", False)
        group.setdefault("mailNickname", re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-"))
        group.setdefault("mail", None)
        group.setdefault("groupTypes", [])
        group.setdefault("visibility", None)
        group.setdefault("createdDateTime", graph_time(now - timedelta(days=700)))
    group_ids = {g["id"] for g in groups}
    for group in groups:
        group["members"] = _member_ids(group, by_upn, by_id, group_ids, f"group '{group['displayName']}'")


def _expand_roles(
    roles: list[dict[str, Any]], tenant_id: str, by_upn: dict[str, dict[str, Any]], by_id: dict[str, dict[str, Any]]
) -> None:
    for role in roles:
        name = role.get("displayName")
        if not name:
            raise SeedError("graph.directoryRoles: every role needs a displayName")
        template, description = ROLE_TEMPLATES.get(name, (stable_id(tenant_id, "roleTemplate", name), name))
        role.setdefault("roleTemplateId", template)
        role.setdefault("id", stable_id(tenant_id, "directoryRole", role["roleTemplateId"]))
        role.setdefault("description", description)
        role["members"] = _member_ids(role, by_upn, by_id, set(), f"directory role '{name}'")


def _expand_risky_user(risky: dict[str, Any], user: dict[str, Any], now: datetime) -> None:
    risky["id"] = user["id"]
    risky.setdefault("isDeleted", False)
    risky.setdefault("isProcessing", False)
    risky.setdefault("riskLevel", "none")
    risky.setdefault("riskState", "none")
    risky.setdefault("riskDetail", "none")
    risky.setdefault("riskLastUpdatedDateTime", graph_time(now))
    risky["userDisplayName"] = user.get("displayName")
    risky["userPrincipalName"] = user["userPrincipalName"]


def _expand_risk_detection(detection: dict[str, Any], user: dict[str, Any], tenant_id: str, now: datetime) -> None:
    detection["userId"] = user["id"]
    detection["userDisplayName"] = user.get("displayName")
    detection["userPrincipalName"] = user["userPrincipalName"]
    activity_time = detection.setdefault("activityDateTime", graph_time(now))
    key = f"{user['id']}|{detection.get('riskEventType')}|{activity_time}|{detection.get('ipAddress')}"
    detection.setdefault("id", hashlib.sha256(key.encode()).hexdigest())
    detection.setdefault("requestId", stable_id(tenant_id, "request", detection["id"]))
    detection.setdefault("correlationId", stable_id(tenant_id, "correlation", detection["id"]))
    detection.setdefault("riskEventType", "unfamiliarFeatures")
    detection.setdefault("riskState", "atRisk")
    detection.setdefault("riskLevel", "medium")
    detection.setdefault("riskDetail", "none")
    detection.setdefault("source", "IdentityProtection")
    detection.setdefault("detectionTimingType", "realtime")
    detection.setdefault("activity", "signin")
    detection.setdefault("tokenIssuerType", "AzureAD")
    detection.setdefault("ipAddress", None)
    detection.setdefault("location", None)
    detection.setdefault("detectedDateTime", activity_time)
    detection.setdefault("lastUpdatedDateTime", detection["detectedDateTime"])
    info = detection.get("additionalInfo", [])
    # Graph sends additionalInfo as a JSON-encoded string; the YAML may give the list for readability.
    detection["additionalInfo"] = info if isinstance(info, str) else json.dumps(info, separators=(",", ":"))


def _member_ids(
    owner: dict[str, Any],
    by_upn: dict[str, dict[str, Any]],
    by_id: dict[str, dict[str, Any]],
    group_ids: set[str],
    where: str,
) -> list[str]:
    members = owner.get("members") or []
    if not isinstance(members, list):
        raise SeedError(f"{where}: members must be a list of user (or group) ids")
    resolved = []
    for member in members:
        member = str(member)
        if member in by_id or member in group_ids:
            resolved.append(member)
        elif member.lower() in by_upn:  # a UPN is accepted for readability; stored as the object id
            resolved.append(by_upn[member.lower()]["id"])
        else:
            raise SeedError(f"{where}: member '{member}' is not a user or group of this tenant")
    return resolved


def _user_ref(
    item: dict[str, Any],
    key: str,
    by_upn: dict[str, dict[str, Any]],
    by_id: dict[str, dict[str, Any]],
    where: str,
) -> dict[str, Any]:
    ref = item.get(key) or item.get("userPrincipalName")
    if ref is None:
        raise SeedError(f"{where}: each entry needs '{key}' (a user object id) or 'userPrincipalName'")
    user = by_id.get(str(ref)) or by_upn.get(str(ref).lower())
    if user is None:
        raise SeedError(f"{where}: '{ref}' is not a user of this tenant")
    return user
