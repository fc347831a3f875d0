"""Microsoft Graph v1.0: users, groups, directory roles and Identity Protection (risky users, risk detections).

Shapes follow the published examples (tests/fixtures/published/graph): default property sets without $select,
@odata.context on every answer, @odata.nextLink paging, 204 without body for PATCH and the riskyUser actions,
Graph's error bodies and codes. When the tenant lists tenant.riposteIdentity.graphPermissions, requests need one of
the application permissions the real API needs (else 403 Authorization_RequestDenied), and changing sensitive
properties (accountEnabled...) of a user who holds a directory role needs the identity to hold a privileged role."""

from __future__ import annotations

import base64
import binascii
import json
import uuid
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlencode

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from local.cloud.errors import GraphError, graph_headers
from local.cloud.odata import FilterError, FilterRules, UnsupportedFilter, apply_orderby, compile_filter
from local.cloud.provider import Provider, route
from local.cloud.router import request_params
from local.cloud.seed import graph_time
from local.cloud.state import Cloud

METADATA = "https://graph.microsoft.com/v1.0/$metadata"
MAX_PAGE = 999
DEFAULT_PAGE = 100

# ---------------------------------------------------------------------------------------------------- schemas

# What GET /users/{id} returns without $select (v1.0), in Graph's order.
USER_DEFAULT = (
    "businessPhones", "displayName", "givenName", "jobTitle", "mail", "mobilePhone", "officeLocation",
    "preferredLanguage", "surname", "userPrincipalName", "id",
)  # fmt: skip
USER_PROPERTIES = (
    "aboutMe", "accountEnabled", "ageGroup", "assignedLicenses", "assignedPlans", "birthday", "businessPhones",
    "city", "companyName", "consentProvidedForMinor", "country", "createdDateTime", "creationType",
    "deletedDateTime", "department", "displayName", "employeeHireDate", "employeeId", "employeeLeaveDateTime",
    "employeeOrgData", "employeeType", "externalUserState", "externalUserStateChangeDateTime", "faxNumber",
    "givenName", "hireDate", "id", "identities", "imAddresses", "interests", "jobTitle",
    "lastPasswordChangeDateTime", "legalAgeGroupClassification", "licenseAssignmentStates", "mail", "mailNickname",
    "mobilePhone", "mySite", "officeLocation", "onPremisesDistinguishedName", "onPremisesDomainName",
    "onPremisesExtensionAttributes", "onPremisesImmutableId", "onPremisesLastSyncDateTime",
    "onPremisesProvisioningErrors", "onPremisesSamAccountName", "onPremisesSecurityIdentifier",
    "onPremisesSyncEnabled", "onPremisesUserPrincipalName", "otherMails", "passwordPolicies", "passwordProfile",
    "pastProjects", "postalCode", "preferredDataLocation", "preferredLanguage", "preferredName",
    "provisionedPlans", "proxyAddresses", "responsibilities", "schools", "securityIdentifier", "showInAddressList",
    "signInSessionsValidFromDateTime", "skills", "state", "streetAddress", "surname", "usageLocation",
    "userPrincipalName", "userType",
)  # fmt: skip
USER_WRITABLE = frozenset({
    "accountEnabled", "aboutMe", "birthday", "businessPhones", "city", "companyName", "country", "department",
    "displayName", "employeeHireDate", "employeeId", "employeeLeaveDateTime", "employeeOrgData", "employeeType",
    "faxNumber", "givenName", "interests", "jobTitle", "mail", "mailNickname", "mobilePhone", "mySite",
    "officeLocation", "onPremisesImmutableId", "otherMails", "passwordPolicies", "passwordProfile", "pastProjects",
    "postalCode", "preferredDataLocation", "preferredLanguage", "preferredName", "responsibilities", "schools",
    "showInAddressList", "skills", "state", "streetAddress", "surname", "usageLocation", "userPrincipalName",
    "userType", "identities",
})  # fmt: skip
# Changing these on a user who holds an admin role needs a higher-privileged role than the caller's permission.
USER_SENSITIVE = frozenset(
    {
        "accountEnabled",
        "businessPhones",
        "mobilePhone",
        "otherMails",
        "passwordProfile",
        "userPrincipalName",
        "onPremisesImmutableId",
    }
)
PRIVILEGED_CALLER_ROLES = frozenset({"Global Administrator", "Privileged Authentication Administrator"})

GROUP_PROPERTIES = (
    "id", "deletedDateTime", "classification", "createdDateTime", "creationOptions", "description", "displayName",
    "expirationDateTime", "groupTypes", "isAssignableToRole", "mail", "mailEnabled", "mailNickname",
    "membershipRule", "membershipRuleProcessingState", "onPremisesDomainName", "onPremisesLastSyncDateTime",
    "onPremisesNetBiosName", "onPremisesSamAccountName", "onPremisesSecurityIdentifier", "onPremisesSyncEnabled",
    "preferredDataLocation", "preferredLanguage", "proxyAddresses", "renewedDateTime", "resourceBehaviorOptions",
    "resourceProvisioningOptions", "securityEnabled", "securityIdentifier", "theme", "visibility",
    "onPremisesProvisioningErrors", "serviceProvisioningErrors",
)  # fmt: skip
_GROUP_LIST_DEFAULTS: dict[str, Any] = {
    "creationOptions": [], "groupTypes": [], "proxyAddresses": [], "resourceBehaviorOptions": [],
    "resourceProvisioningOptions": [], "onPremisesProvisioningErrors": [], "serviceProvisioningErrors": [],
}  # fmt: skip
ROLE_PROPERTIES = ("id", "deletedDateTime", "description", "displayName", "roleTemplateId")
RISKY_USER_PROPERTIES = (
    "id", "isDeleted", "isProcessing", "riskLevel", "riskState", "riskDetail", "riskLastUpdatedDateTime",
    "userDisplayName", "userPrincipalName",
)  # fmt: skip
RISK_DETECTION_PROPERTIES = (
    "id", "requestId", "correlationId", "riskEventType", "riskState", "riskLevel", "riskDetail", "source",
    "detectionTimingType", "activity", "tokenIssuerType", "ipAddress", "activityDateTime", "detectedDateTime",
    "lastUpdatedDateTime", "userId", "userDisplayName", "userPrincipalName", "additionalInfo", "location",
)  # fmt: skip

_STRING_OPS = frozenset({"eq", "ne", "startswith", "endswith", "in"})
_EQ_OPS = frozenset({"eq", "ne", "in"})
_TIME_OPS = frozenset({"eq", "ne", "gt", "ge", "lt", "le"})

USER_FILTER = FilterRules(
    properties={
        **{
            p: _STRING_OPS
            for p in (
                "id",
                "userPrincipalName",
                "displayName",
                "mail",
                "givenName",
                "surname",
                "department",
                "jobTitle",
                "userType",
                "usageLocation",
                "city",
                "country",
                "companyName",
                "employeeId",
                "officeLocation",
                "mailNickname",
                "state",
            )
        },
        "accountEnabled": frozenset({"eq", "ne"}),
        "createdDateTime": _TIME_OPS | {"in"},
    },
    advanced=frozenset({"ne", "not", "endswith"}),  # need ConsistencyLevel: eventual, as in real Graph
)
GROUP_FILTER = FilterRules(
    properties={
        **{p: _STRING_OPS for p in ("id", "displayName", "mail", "mailNickname", "description")},
        "securityEnabled": frozenset({"eq", "ne"}),
        "mailEnabled": frozenset({"eq", "ne"}),
    },
    advanced=frozenset({"ne", "not", "endswith"}),
)
RISKY_USER_FILTER = FilterRules(
    properties={
        **{p: _EQ_OPS for p in ("id", "userPrincipalName", "userDisplayName", "riskLevel", "riskState", "riskDetail")},
        "isDeleted": frozenset({"eq", "ne"}),
        "isProcessing": frozenset({"eq", "ne"}),
        "riskLastUpdatedDateTime": _TIME_OPS,
    }
)
RISK_DETECTION_FILTER = FilterRules(
    properties={
        **{
            p: _EQ_OPS
            for p in (
                "id",
                "userId",
                "userPrincipalName",
                "userDisplayName",
                "riskLevel",
                "riskState",
                "riskDetail",
                "riskEventType",
                "ipAddress",
                "requestId",
                "correlationId",
                "source",
                "detectionTimingType",
                "activity",
                "tokenIssuerType",
                "location/city",
                "location/countryOrRegion",
                "location/state",
            )
        },
        **{p: _TIME_OPS for p in ("activityDateTime", "detectedDateTime", "lastUpdatedDateTime")},
    }
)

# Any one of these application permissions allows the operation (least privileged first).
READ_USERS = ("User.Read.All", "User.ReadWrite.All", "Directory.Read.All", "Directory.ReadWrite.All")
READ_MEMBERSHIP = (*READ_USERS, "GroupMember.Read.All", "Group.Read.All")
READ_GROUPS = (
    "GroupMember.Read.All",
    "Group.Read.All",
    "Group.ReadWrite.All",
    "Directory.Read.All",
    "Directory.ReadWrite.All",
)
READ_ROLES = (
    "RoleManagement.Read.Directory",
    "RoleManagement.ReadWrite.Directory",
    "Directory.Read.All",
    "Directory.ReadWrite.All",
)
WRITE_USERS = ("User.ReadWrite.All", "Directory.ReadWrite.All")
# The least privileged permission for passwordProfile (forcing a change at next sign-in, or a reset).
WRITE_PASSWORD_PROFILE = ("User-PasswordProfile.ReadWrite.All", "User.ReadWrite.All", "Directory.ReadWrite.All")
REVOKE_SESSIONS = ("User.RevokeSessions.All", "User.ReadWrite.All", "Directory.ReadWrite.All")
READ_RISKY_USERS = ("IdentityRiskyUser.Read.All", "IdentityRiskyUser.ReadWrite.All")
WRITE_RISKY_USERS = ("IdentityRiskyUser.ReadWrite.All",)
READ_RISK_DETECTIONS = ("IdentityRiskEvent.Read.All", "IdentityRiskEvent.ReadWrite.All")


def _not_found(ref: str) -> GraphError:
    return GraphError(
        404,
        "Request_ResourceNotFound",
        f"Resource '{ref}' does not exist or one of its queried reference-property objects are not present.",
    )


def _now() -> str:
    return graph_time(datetime.now(UTC))


# ---------------------------------------------------------------------------------------------------- responses


def _graph_json(body: Any, request: Request, status: int = 200) -> Response:
    return JSONResponse(body, status_code=status, headers=graph_headers(request))


def _no_content(request: Request) -> Response:
    return Response(status_code=204, headers=graph_headers(request))


def _project(item: dict[str, Any], properties: Iterable[str], defaults: dict[str, Any] | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for prop in properties:
        value = item.get(prop, (defaults or {}).get(prop))
        out[prop] = list(value) if isinstance(value, list) else value
    return out


def _select(request: Request, known: Iterable[str], type_name: str) -> list[str] | None:
    """The $select list in canonical case, None without $select; 400 for a property the type does not have."""
    raw = request_params(request).get("$select")
    if raw is None:
        return None
    by_lower = {k.lower(): k for k in known}
    chosen: list[str] = []
    for name in (part.strip() for part in raw.split(",")):
        if not name:
            continue
        canonical = by_lower.get(name.lower())
        if canonical is None:
            raise GraphError(400, "BadRequest", f"Could not find a property named '{name}' on type '{type_name}'.")
        if canonical not in chosen:
            chosen.append(canonical)
    return chosen or None


def _context(entity_set: str, selected: list[str] | None, single: bool = False) -> str:
    base = f"{METADATA}#{entity_set}"
    if selected:
        base += f"({','.join(selected)})"
    return base + ("/$entity" if single else "")


def _encode_skiptoken(offset: int) -> str:
    return base64.urlsafe_b64encode(json.dumps({"offset": offset}).encode()).decode().rstrip("=")


def _decode_skiptoken(token: str) -> int:
    try:
        offset = json.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))["offset"]
    except (ValueError, KeyError, TypeError, binascii.Error) as exc:
        raise GraphError(400, "Request_BadRequest", "Invalid skip token.") from exc
    if not isinstance(offset, int) or offset < 0:
        raise GraphError(400, "Request_BadRequest", "Invalid skip token.")
    return offset


def _page(
    request: Request,
    items: list[dict[str, Any]],
    context: str,
    render: Callable[[dict[str, Any]], dict[str, Any]],
    *,
    unsupported_code: str = "Request_UnsupportedQuery",
) -> Response:
    params = request_params(request)
    top = DEFAULT_PAGE
    if "$top" in params:
        raw = params["$top"]
        if not raw.isdigit() or not 1 <= int(raw) <= MAX_PAGE:
            raise GraphError(
                400,
                unsupported_code,
                f"Invalid page size specified: '{raw}'. Must be between 1 and {MAX_PAGE} inclusive.",
            )
        top = int(raw)
    offset = _decode_skiptoken(params["$skiptoken"]) if "$skiptoken" in params else 0
    body: dict[str, Any] = {"@odata.context": context}
    if params.get("$count", "").lower() == "true":
        if request.headers.get("consistencylevel", "").lower() != "eventual":
            raise GraphError(
                400, "Request_BadRequest", "$count is not currently supported without ConsistencyLevel: eventual."
            )
        body["@odata.count"] = len(items)
    end = offset + top
    if end < len(items):
        kept = [(k, v) for k, v in request.query_params.multi_items() if k.lower() != "$skiptoken"]
        query = urlencode([*kept, ("$skiptoken", _encode_skiptoken(end))], safe="$,'()")
        body["@odata.nextLink"] = f"{request.url.scheme}://{request.url.netloc}{request.url.path}?{query}"
    body["value"] = [render(item) for item in items[offset:end]]
    return _graph_json(body, request)


# ---------------------------------------------------------------------------------------------------- the service


class GraphProvider(Provider):
    service = "graph"

    def __init__(self, cloud: Cloud) -> None:
        super().__init__(cloud)
        self._index_generation = -1
        self._by_id: dict[str, dict[str, Any]] = {}
        self._by_upn: dict[str, dict[str, Any]] = {}

    # ---- tenant data
    @property
    def graph(self) -> dict[str, Any]:
        graph: dict[str, Any] = self.cloud.doc.setdefault("graph", {})
        return graph

    def collection(self, name: str) -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = self.graph.setdefault(name, [])
        return items

    def _reindex(self) -> None:
        users = self.collection("users")
        self._by_id = {u["id"].lower(): u for u in users}
        self._by_upn = {u["userPrincipalName"].lower(): u for u in users}
        self._index_generation = self.cloud.generation

    def find_user(self, ref: str) -> dict[str, Any] | None:
        if self._index_generation != self.cloud.generation:
            self._reindex()
        key = ref.lower()
        return self._by_id.get(key) or self._by_upn.get(key)

    def user(self, ref: str) -> dict[str, Any]:
        found = self.find_user(ref)
        if found is None:
            raise _not_found(ref)
        return found

    def group(self, ref: str) -> dict[str, Any]:
        for group in self.collection("groups"):
            if group["id"].lower() == ref.lower():
                return group
        raise _not_found(ref)

    def role(self, ref: str) -> dict[str, Any]:
        for role in self.collection("directoryRoles"):
            if ref.lower() in (role["id"].lower(), str(role.get("roleTemplateId", "")).lower()):
                return role
        raise _not_found(ref)

    def directory_object(self, object_id: str) -> dict[str, Any] | None:
        """A user or group by id, rendered with its @odata.type, as in directoryObject collections."""
        user = self.find_user(object_id)
        if user is not None:
            return {"@odata.type": "#microsoft.graph.user", **self.render_user(user, None)}
        for group in self.collection("groups"):
            if group["id"].lower() == object_id.lower():
                return {"@odata.type": "#microsoft.graph.group", **self.render_group(group, None)}
        return None

    # ---- permissions
    @property
    def identity(self) -> dict[str, Any]:
        identity: dict[str, Any] = (self.cloud.doc.get("tenant") or {}).get("riposteIdentity") or {}
        return identity

    def require(self, *any_of: str) -> None:
        granted = self.identity.get("graphPermissions")
        if granted is None:  # a tenant that does not describe Riposte's identity: no permission model
            return
        if not set(any_of) & set(granted):
            raise GraphError(403, "Authorization_RequestDenied", "Insufficient privileges to complete the operation.")

    def user_roles(self, user_id: str) -> list[dict[str, Any]]:
        return [r for r in self.collection("directoryRoles") if user_id in r.get("members", [])]

    # ---- rendering
    def render_user(self, user: dict[str, Any], selected: list[str] | None) -> dict[str, Any]:
        return _project(user, selected or USER_DEFAULT)

    def render_group(self, group: dict[str, Any], selected: list[str] | None) -> dict[str, Any]:
        return _project(group, selected or GROUP_PROPERTIES, _GROUP_LIST_DEFAULTS)

    @staticmethod
    def render_role(role: dict[str, Any], selected: list[str] | None) -> dict[str, Any]:
        return _project(role, selected or ROLE_PROPERTIES)

    def filtered(
        self,
        request: Request,
        items: list[dict[str, Any]],
        rules: FilterRules,
        resource: str,
        orderable: Iterable[str],
        *,
        identity_protection: bool = False,
    ) -> list[dict[str, Any]]:
        params = request_params(request)
        advanced = request.headers.get("consistencylevel", "").lower() == "eventual"
        try:
            if "$filter" in params:
                predicate = compile_filter(params["$filter"], rules, advanced_query=advanced)
                items = [i for i in items if predicate(i)]
            if "$orderby" in params:
                items = apply_orderby(items, params["$orderby"], orderable)
        except FilterError as exc:
            message = str(exc) if str(exc).startswith("Invalid") else f"Invalid filter clause: {exc}"
            raise GraphError(400, "BadRequest", message) from exc
        except UnsupportedFilter as exc:
            if identity_protection:
                raise GraphError(
                    400,
                    "BadRequest",
                    f"Invalid filter clause: '{exc.prop}' with '{exc.operator}' is not supported on {resource}.",
                ) from exc
            raise GraphError(
                400,
                "Request_UnsupportedQuery",
                f"Unsupported or invalid query filter clause specified for property '{exc.prop}' of resource "
                f"'{resource}'.",
            ) from exc
        return items

    # ------------------------------------------------------------------------------------------ users
    @route("GET", "/v1.0/users")
    async def list_users(self, request: Request) -> Response:
        self.require(*READ_USERS)
        selected = _select(request, USER_PROPERTIES, "microsoft.graph.user")
        users = self.filtered(request, self.collection("users"), USER_FILTER, "User", USER_PROPERTIES)
        return _page(request, users, _context("users", selected), lambda u: self.render_user(u, selected))

    @route("GET", "/v1.0/users/{user_id}")
    async def get_user(self, request: Request, user_id: str) -> Response:
        self.require(*READ_USERS)
        selected = _select(request, USER_PROPERTIES, "microsoft.graph.user")
        body = {
            "@odata.context": _context("users", selected, single=True),
            **self.render_user(self.user(user_id), selected),
        }
        return _graph_json(body, request)

    @route("PATCH", "/v1.0/users/{user_id}")
    async def update_user(self, request: Request, user_id: str) -> Response:
        user = self.user(user_id)
        changes = await _json_object(request)
        changes.pop("@odata.type", None)
        for name, value in changes.items():
            if name not in USER_WRITABLE:
                if name in USER_PROPERTIES:
                    raise GraphError(400, "Request_BadRequest", f"Property '{name}' is read-only and cannot be set.")
                raise GraphError(
                    400,
                    "Request_BadRequest",
                    f"Property '{name}' does not exist as a declared property or extension property.",
                )
            if name == "accountEnabled" and not isinstance(value, bool):
                raise GraphError(
                    400,
                    "Request_BadRequest",
                    "Invalid value specified for property 'accountEnabled' of resource 'User'.",
                )
        if set(changes) <= {"accountEnabled"}:
            granted = set(self.identity.get("graphPermissions") or ())
            if not {"User.EnableDisableAccount.All", "User.Read.All"} <= granted:
                self.require(*WRITE_USERS)
        elif set(changes) <= {"passwordProfile"}:
            self.require(*WRITE_PASSWORD_PROFILE)
            changes["passwordProfile"] = _password_profile(user, changes["passwordProfile"])
        else:
            self.require(*WRITE_USERS)
        if USER_SENSITIVE & set(changes) and self.user_roles(user["id"]) and self.identity.get("graphPermissions"):
            held = {str(r) for r in self.identity.get("directoryRoles") or ()}
            if not held & PRIVILEGED_CALLER_ROLES:
                # App-only callers need a higher-privileged Entra role to change admins' sensitive properties.
                raise GraphError(
                    403, "Authorization_RequestDenied", "Insufficient privileges to complete the operation."
                )
        if "userPrincipalName" in changes:
            other = self.find_user(str(changes["userPrincipalName"]))
            if other is not None and other is not user:
                raise GraphError(
                    400,
                    "Request_BadRequest",
                    "Another object with the same value for property userPrincipalName already exists.",
                )
        user.update(changes)
        if "userPrincipalName" in changes:
            self._index_generation = -1
        return _no_content(request)

    @route("POST", "/v1.0/users/{user_id}/revokeSignInSessions")
    async def revoke_sessions(self, request: Request, user_id: str) -> Response:
        self.require(*REVOKE_SESSIONS)
        user = self.user(user_id)
        # Refresh tokens and session cookies issued before this instant stop working.
        user["signInSessionsValidFromDateTime"] = _now()
        return _graph_json({"@odata.context": f"{METADATA}#Edm.Boolean", "value": True}, request)

    def _direct_parents(self, object_id: str) -> list[dict[str, Any]]:
        """Groups and roles that list `object_id` as a member, as directoryObjects."""
        parents: list[dict[str, Any]] = [
            {"@odata.type": "#microsoft.graph.group", **self.render_group(g, None)}
            for g in self.collection("groups")
            if object_id in g.get("members", [])
        ]
        parents += [
            {"@odata.type": "#microsoft.graph.directoryRole", **self.render_role(r, None)}
            for r in self.collection("directoryRoles")
            if object_id in r.get("members", [])
        ]
        return parents

    def _transitive_parents(self, object_id: str) -> list[dict[str, Any]]:
        seen: dict[str, dict[str, Any]] = {}
        pending = [object_id]
        while pending:
            for parent in self._direct_parents(pending.pop()):
                if parent["id"] not in seen:
                    seen[parent["id"]] = parent
                    if parent["@odata.type"] == "#microsoft.graph.group":
                        pending.append(parent["id"])
        return list(seen.values())

    @route("GET", "/v1.0/users/{user_id}/memberOf")
    async def member_of(self, request: Request, user_id: str) -> Response:
        self.require(*READ_MEMBERSHIP)
        user = self.user(user_id)
        return self._directory_objects(request, self._direct_parents(user["id"]))

    @route("GET", "/v1.0/users/{user_id}/transitiveMemberOf")
    async def transitive_member_of(self, request: Request, user_id: str) -> Response:
        self.require(*READ_MEMBERSHIP)
        user = self.user(user_id)
        return self._directory_objects(request, self._transitive_parents(user["id"]))

    def _directory_objects(self, request: Request, objects: list[dict[str, Any]]) -> Response:
        raw_select = request_params(request).get("$select")
        selected = [s.strip() for s in raw_select.split(",") if s.strip()] if raw_select else None

        def render(obj: dict[str, Any]) -> dict[str, Any]:
            if not selected:
                return obj
            lowered = {k.lower(): k for k in obj}
            return {"@odata.type": obj["@odata.type"], **{s: obj.get(lowered.get(s.lower(), s)) for s in selected}}

        return _page(request, objects, _context("directoryObjects", selected), render)

    # ------------------------------------------------------------------------------------------ groups and roles
    @route("GET", "/v1.0/groups")
    async def list_groups(self, request: Request) -> Response:
        self.require(*READ_GROUPS)
        selected = _select(request, GROUP_PROPERTIES, "microsoft.graph.group")
        groups = self.filtered(request, self.collection("groups"), GROUP_FILTER, "Group", GROUP_PROPERTIES)
        return _page(request, groups, _context("groups", selected), lambda g: self.render_group(g, selected))

    @route("GET", "/v1.0/groups/{group_id}")
    async def get_group(self, request: Request, group_id: str) -> Response:
        self.require(*READ_GROUPS)
        selected = _select(request, GROUP_PROPERTIES, "microsoft.graph.group")
        body = {
            "@odata.context": _context("groups", selected, single=True),
            **self.render_group(self.group(group_id), selected),
        }
        return _graph_json(body, request)

    def _members(self, member_ids: Iterable[str], transitive: bool) -> list[dict[str, Any]]:
        found: dict[str, dict[str, Any]] = {}
        pending = list(member_ids)
        while pending:
            obj = self.directory_object(pending.pop(0))
            if obj is None or obj["id"] in found:
                continue
            found[obj["id"]] = obj
            if transitive and obj["@odata.type"] == "#microsoft.graph.group":
                pending += self.group(obj["id"]).get("members", [])
        return list(found.values())

    @route("GET", "/v1.0/groups/{group_id}/members")
    async def group_members(self, request: Request, group_id: str) -> Response:
        self.require(*READ_GROUPS)
        return self._directory_objects(request, self._members(self.group(group_id).get("members", []), False))

    @route("GET", "/v1.0/groups/{group_id}/transitiveMembers")
    async def group_transitive_members(self, request: Request, group_id: str) -> Response:
        self.require(*READ_GROUPS)
        return self._directory_objects(request, self._members(self.group(group_id).get("members", []), True))

    @route("GET", "/v1.0/directoryRoles")
    async def list_roles(self, request: Request) -> Response:
        self.require(*READ_ROLES)
        selected = _select(request, ROLE_PROPERTIES, "microsoft.graph.directoryRole")
        roles = self.collection("directoryRoles")
        body = {
            "@odata.context": _context("directoryRoles", selected),
            "value": [self.render_role(r, selected) for r in roles],
        }
        return _graph_json(body, request)

    @route("GET", "/v1.0/directoryRoles/{role_id}")
    async def get_role(self, request: Request, role_id: str) -> Response:
        self.require(*READ_ROLES)
        selected = _select(request, ROLE_PROPERTIES, "microsoft.graph.directoryRole")
        body = {
            "@odata.context": _context("directoryRoles", selected, single=True),
            **self.render_role(self.role(role_id), selected),
        }
        return _graph_json(body, request)

    @route("GET", "/v1.0/directoryRoles/{role_id}/members")
    async def role_members(self, request: Request, role_id: str) -> Response:
        self.require(*READ_ROLES)
        return self._directory_objects(request, self._members(self.role(role_id).get("members", []), False))

    # ------------------------------------------------------------------------------------------ identity protection
    def render_risky_user(self, risky: dict[str, Any], selected: list[str] | None) -> dict[str, Any]:
        return _project(risky, selected or RISKY_USER_PROPERTIES)

    def render_detection(self, detection: dict[str, Any], selected: list[str] | None) -> dict[str, Any]:
        return _project(detection, selected or RISK_DETECTION_PROPERTIES)

    @route("GET", "/v1.0/identityProtection/riskyUsers")
    async def list_risky_users(self, request: Request) -> Response:
        self.require(*READ_RISKY_USERS)
        selected = _select(request, RISKY_USER_PROPERTIES, "microsoft.graph.riskyUser")
        items = self.filtered(
            request,
            self.collection("riskyUsers"),
            RISKY_USER_FILTER,
            "riskyUser",
            RISKY_USER_PROPERTIES,
            identity_protection=True,
        )
        return _page(
            request,
            items,
            _context("identityProtection/riskyUsers", selected),
            lambda r: self.render_risky_user(r, selected),
            unsupported_code="BadRequest",
        )

    def risky_user(self, ref: str) -> dict[str, Any] | None:
        for risky in self.collection("riskyUsers"):
            if risky["id"].lower() == ref.lower():
                return risky
        return None

    @route("GET", "/v1.0/identityProtection/riskyUsers/{risky_user_id}")
    async def get_risky_user(self, request: Request, risky_user_id: str) -> Response:
        self.require(*READ_RISKY_USERS)
        selected = _select(request, RISKY_USER_PROPERTIES, "microsoft.graph.riskyUser")
        risky = self.risky_user(risky_user_id)
        if risky is None:
            raise GraphError(404, "NotFound", f"The risky user '{risky_user_id}' was not found.")
        body = {
            "@odata.context": _context("identityProtection/riskyUsers", selected, single=True),
            **self.render_risky_user(risky, selected),
        }
        return _graph_json(body, request)

    async def _risky_user_ids(self, request: Request) -> list[dict[str, Any]]:
        body = await _json_object(request)
        ids = body.get("userIds")
        if not isinstance(ids, list) or not ids or not all(isinstance(i, str) for i in ids):
            raise GraphError(400, "BadRequest", "The request body must contain a non-empty 'userIds' string array.")
        users = []
        for user_id in ids:
            user = self.find_user(user_id)
            if user is None or user_id.lower() != user["id"].lower():  # object ids only, not UPNs
                raise GraphError(400, "BadRequest", f"Invalid user id '{user_id}': no such user in this tenant.")
            users.append(user)
        return users

    def _risky_entry(self, user: dict[str, Any]) -> dict[str, Any]:
        risky = self.risky_user(user["id"])
        if risky is None:
            risky = {
                "id": user["id"],
                "isDeleted": False,
                "isProcessing": False,
                "riskLevel": "none",
                "riskState": "none",
                "riskDetail": "none",
                "riskLastUpdatedDateTime": _now(),
                "userDisplayName": user.get("displayName"),
                "userPrincipalName": user["userPrincipalName"],
            }
            self.collection("riskyUsers").append(risky)
        return risky

    @route("POST", "/v1.0/identityProtection/riskyUsers/confirmCompromised")
    async def confirm_compromised(self, request: Request) -> Response:
        self.require(*WRITE_RISKY_USERS)
        users = await self._risky_user_ids(request)
        now = _now()
        for user in users:
            risky = self._risky_entry(user)
            risky.update(
                riskState="confirmedCompromised",
                riskLevel="high",
                riskDetail="adminConfirmedUserCompromised",
                riskLastUpdatedDateTime=now,
            )
            # Identity Protection records the admin's confirmation as a detection of its own.
            detection_id = uuid.uuid4().hex + uuid.uuid4().hex
            self.collection("riskDetections").append({
                "id": detection_id, "requestId": str(uuid.uuid4()), "correlationId": str(uuid.uuid4()),
                "riskEventType": "adminConfirmedUserCompromised", "riskState": "confirmedCompromised",
                "riskLevel": "high", "riskDetail": "adminConfirmedUserCompromised", "source": "IdentityProtection",
                "detectionTimingType": "offline", "activity": "user", "tokenIssuerType": "AzureAD",
                "ipAddress": None, "activityDateTime": now, "detectedDateTime": now, "lastUpdatedDateTime": now,
                "userId": user["id"], "userDisplayName": user.get("displayName"),
                "userPrincipalName": user["userPrincipalName"], "additionalInfo": "[]", "location": None,
            })  # fmt: skip
        return _no_content(request)

    @route("POST", "/v1.0/identityProtection/riskyUsers/dismiss")
    async def dismiss(self, request: Request) -> Response:
        self.require(*WRITE_RISKY_USERS)
        users = await self._risky_user_ids(request)
        now = _now()
        for user in users:
            risky = self.risky_user(user["id"])
            if risky is None:
                continue  # nothing to dismiss
            risky.update(
                riskState="dismissed",
                riskLevel="none",
                riskDetail="adminDismissedAllRiskForUser",
                riskLastUpdatedDateTime=now,
            )
            # Dismissing a user's risk closes their open detections too.
            for detection in self.collection("riskDetections"):
                if detection.get("userId") == user["id"] and detection.get("riskState") == "atRisk":
                    detection.update(
                        riskState="dismissed", riskDetail="adminDismissedAllRiskForUser", lastUpdatedDateTime=now
                    )
        return _no_content(request)

    @route("GET", "/v1.0/identityProtection/riskDetections")
    async def list_risk_detections(self, request: Request) -> Response:
        self.require(*READ_RISK_DETECTIONS)
        selected = _select(request, RISK_DETECTION_PROPERTIES, "microsoft.graph.riskDetection")
        items = self.filtered(
            request,
            self.collection("riskDetections"),
            RISK_DETECTION_FILTER,
            "riskDetection",
            RISK_DETECTION_PROPERTIES,
            identity_protection=True,
        )
        return _page(
            request,
            items,
            _context("identityProtection/riskDetections", selected),
            lambda d: self.render_detection(d, selected),
            unsupported_code="BadRequest",
        )

    @route("GET", "/v1.0/identityProtection/riskDetections/{detection_id}")
    async def get_risk_detection(self, request: Request, detection_id: str) -> Response:
        self.require(*READ_RISK_DETECTIONS)
        selected = _select(request, RISK_DETECTION_PROPERTIES, "microsoft.graph.riskDetection")
        for detection in self.collection("riskDetections"):
            if detection["id"].lower() == detection_id.lower():
                body = {
                    "@odata.context": _context("identityProtection/riskDetections", selected, single=True),
                    **self.render_detection(detection, selected),
                }
                return _graph_json(body, request)
        raise GraphError(404, "NotFound", f"The risk detection '{detection_id}' was not found.")


def _password_profile(user: dict[str, Any], value: Any) -> dict[str, Any]:
    """The user's passwordProfile after a PATCH: its flags only, since a password is never kept or returned."""
    if not isinstance(value, dict):
        raise GraphError(400, "Request_BadRequest", "Invalid value specified for property 'passwordProfile'.")
    flags = ("forceChangePasswordNextSignIn", "forceChangePasswordNextSignInWithMfa")
    for flag in flags:
        if flag in value and not isinstance(value[flag], bool):
            raise GraphError(400, "Request_BadRequest", f"Invalid value specified for property '{flag}'.")
    current = user.get("passwordProfile") or {}
    return {flag: bool(value.get(flag, current.get(flag, False))) for flag in flags}


async def _json_object(request: Request) -> dict[str, Any]:
    raw = await request.body()
    try:
        body = json.loads(raw) if raw else None
    except ValueError as exc:
        raise GraphError(400, "BadRequest", "Unable to read JSON request payload.") from exc
    if not isinstance(body, dict):
        raise GraphError(400, "BadRequest", "The request body must be a JSON object.")
    return body
