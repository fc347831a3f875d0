"""Microsoft Graph v1.0, the directory writes a SOC's response needs: group membership references, service principals
(and confirming one compromised; local/cloud/graph_signins.py reads risky service principals) and Conditional Access
IP named locations.

It reads the same tenant as local/cloud/graph.py, through a GraphProvider it keeps for its helpers (users, groups,
permission checks), and answers in Graph's shapes: 204 without a body for $ref writes and PATCH, Graph's error codes.
Group rules as Graph enforces them: a dynamic group's members cannot be written, a role-assignable group's need
RoleManagement.ReadWrite.Directory besides the group permission, adding a member twice is a 400 and removing a
non-member a 404. An IP named location's PATCH must name its @odata.type and replaces the whole ipRanges list."""

from __future__ import annotations

import ipaddress
import re
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from local.cloud.errors import GraphError, graph_headers
from local.cloud.graph import METADATA, GraphProvider, _json_object, _not_found, _now, _project, _select
from local.cloud.provider import Provider, route
from local.cloud.state import Cloud

Json = dict[str, Any]
WRITE_MEMBERS = ("GroupMember.ReadWrite.All", "Group.ReadWrite.All", "Directory.ReadWrite.All")
ROLE_GROUP_MEMBERS = ("RoleManagement.ReadWrite.Directory",)
READ_APPS = ("Application.Read.All", "Application.ReadWrite.All", "Directory.Read.All", "Directory.ReadWrite.All")
WRITE_APPS = ("Application.ReadWrite.All", "Directory.ReadWrite.All")
WRITE_RISKY_SPS = ("IdentityRiskyServicePrincipal.ReadWrite.All",)
READ_POLICIES = ("Policy.Read.All", "Policy.ReadWrite.ConditionalAccess")
WRITE_CONDITIONAL_ACCESS = ("Policy.ReadWrite.ConditionalAccess",)
SERVICE_PRINCIPAL_PROPERTIES = (
    "id", "accountEnabled", "appDisplayName", "appId", "appOwnerOrganizationId", "displayName",
    "servicePrincipalType", "tags", "signInAudience", "appRoleAssignmentRequired",
)  # fmt: skip
NAMED_LOCATION_PROPERTIES = ("id", "displayName", "createdDateTime", "modifiedDateTime", "isTrusted", "ipRanges")
MAX_IP_RANGES = 2000  # per IP named location
_OBJECT_REF = re.compile(r"/directoryObjects/([0-9a-fA-F-]{36})$")


def _no_content(request: Request) -> Response:
    return Response(status_code=204, headers=graph_headers(request))


def _json(body: Json, request: Request) -> Response:
    return JSONResponse(body, headers=graph_headers(request))


class GraphDirectoryProvider(Provider):
    service = "graph"

    def __init__(self, cloud: Cloud) -> None:
        super().__init__(cloud)
        self.graph = GraphProvider(cloud)  # its helpers only: its routes are registered by its own instance

    def find(self, collection: str, object_id: str) -> Json:
        for item in self.graph.collection(collection):
            if str(item.get("id", "")).lower() == object_id.lower():
                return item
        raise _not_found(object_id)

    # ------------------------------------------------------------------------------------------ group members
    def _writable_group(self, group_id: str) -> Json:
        group = self.graph.group(group_id)
        self.graph.require(*WRITE_MEMBERS)
        if group.get("membershipRule") or "DynamicMembership" in (group.get("groupTypes") or []):
            raise GraphError(
                400, "Request_BadRequest", "Insufficient privileges: members of a dynamic group cannot be changed."
            )
        if group.get("isAssignableToRole"):
            self.graph.require(*ROLE_GROUP_MEMBERS)
        return group

    @route("DELETE", "/v1.0/groups/{group_id}/members/{member_id}/$ref")
    async def remove_member(self, request: Request, group_id: str, member_id: str) -> Response:
        group = self._writable_group(group_id)
        members: list[str] = group.setdefault("members", [])
        match = next((m for m in members if m.lower() == member_id.lower()), None)
        if match is None:
            raise _not_found(member_id)
        members.remove(match)
        return _no_content(request)

    @route("POST", "/v1.0/groups/{group_id}/members/$ref")
    async def add_member(self, request: Request, group_id: str) -> Response:
        group = self._writable_group(group_id)
        body = await _json_object(request)
        found = _OBJECT_REF.search(str(body.get("@odata.id") or ""))
        if found is None:
            raise GraphError(400, "Request_BadRequest", "Invalid URL format specified in @odata.id.")
        member = found.group(1).lower()
        if self.graph.directory_object(member) is None:
            raise _not_found(member)
        members: list[str] = group.setdefault("members", [])
        if member in (m.lower() for m in members):
            raise GraphError(
                400,
                "Request_BadRequest",
                "One or more added object references already exist for the following modified properties: 'members'.",
            )
        members.append(member)
        return _no_content(request)

    # ------------------------------------------------------------------------------------------ service principals
    @route("GET", "/v1.0/servicePrincipals/{sp_id}")
    async def get_service_principal(self, request: Request, sp_id: str) -> Response:
        self.graph.require(*READ_APPS)
        selected = _select(request, SERVICE_PRINCIPAL_PROPERTIES, "microsoft.graph.servicePrincipal")
        item = _project(self.find("servicePrincipals", sp_id), selected or SERVICE_PRINCIPAL_PROPERTIES)
        return _json({"@odata.context": f"{METADATA}#servicePrincipals/$entity", **item}, request)

    @route("PATCH", "/v1.0/servicePrincipals/{sp_id}")
    async def update_service_principal(self, request: Request, sp_id: str) -> Response:
        self.graph.require(*WRITE_APPS)
        principal = self.find("servicePrincipals", sp_id)
        changes = await _json_object(request)
        changes.pop("@odata.type", None)
        unknown = set(changes) - {"accountEnabled", "tags", "appRoleAssignmentRequired"}
        if unknown:
            raise GraphError(400, "Request_BadRequest", f"Property '{sorted(unknown)[0]}' cannot be set here.")
        if "accountEnabled" in changes and not isinstance(changes["accountEnabled"], bool):
            raise GraphError(400, "Request_BadRequest", "Invalid value specified for property 'accountEnabled'.")
        principal.update(changes)
        return _no_content(request)

    @route("POST", "/v1.0/identityProtection/riskyServicePrincipals/confirmCompromised")
    async def confirm_compromised(self, request: Request) -> Response:
        self.graph.require(*WRITE_RISKY_SPS)
        body = await _json_object(request)
        ids = body.get("servicePrincipalIds")
        if not isinstance(ids, list) or not ids or not all(isinstance(i, str) for i in ids):
            raise GraphError(400, "BadRequest", "The request body must contain a non-empty 'servicePrincipalIds'.")
        principals = [self.find("servicePrincipals", i) for i in ids]
        for principal in principals:
            self._risky_entry(principal).update(
                riskState="confirmedCompromised",
                riskLevel="high",
                riskDetail="adminConfirmedServicePrincipalCompromised",
                riskLastUpdatedDateTime=_now(),
            )
        return _no_content(request)

    def _risky_entry(self, principal: Json) -> Json:
        for risky in self.graph.collection("riskyServicePrincipals"):
            if risky["id"].lower() == principal["id"].lower():
                return risky
        risky = {
            "id": principal["id"],
            "appId": principal.get("appId"),
            "displayName": principal.get("displayName"),
            "isEnabled": principal.get("accountEnabled", True),
            "isProcessing": False,
            "riskLevel": "none",
            "riskState": "none",
            "riskDetail": "none",
            "servicePrincipalType": principal.get("servicePrincipalType", "Application"),
        }
        self.graph.collection("riskyServicePrincipals").append(risky)
        return risky

    # ------------------------------------------------------------------------------------------ named locations
    @route("GET", "/v1.0/identity/conditionalAccess/namedLocations/{location_id}")
    async def get_named_location(self, request: Request, location_id: str) -> Response:
        self.graph.require(*READ_POLICIES)
        location = self.find("namedLocations", location_id)
        body = {"@odata.type": location.get("@odata.type"), **_project(location, NAMED_LOCATION_PROPERTIES)}
        return _json(
            {"@odata.context": f"{METADATA}#identity/conditionalAccess/namedLocations/$entity", **body}, request
        )

    @route("PATCH", "/v1.0/identity/conditionalAccess/namedLocations/{location_id}")
    async def update_named_location(self, request: Request, location_id: str) -> Response:
        self.graph.require(*WRITE_CONDITIONAL_ACCESS)
        self.graph.require(*READ_POLICIES)
        location = self.find("namedLocations", location_id)
        changes = await _json_object(request)
        if changes.get("@odata.type") != location.get("@odata.type"):
            raise GraphError(400, "BadRequest", "The @odata.type of a named location must be given and cannot change.")
        if "ipRanges" in changes:
            location["ipRanges"] = _ip_ranges(changes["ipRanges"])
        if "displayName" in changes:
            location["displayName"] = str(changes["displayName"])
        location["modifiedDateTime"] = _now()
        return _no_content(request)


def _ip_ranges(value: Any) -> list[Json]:
    if not isinstance(value, list) or not value:
        raise GraphError(400, "BadRequest", "ipRanges must be a non-empty list.")
    if len(value) > MAX_IP_RANGES:
        raise GraphError(400, "BadRequest", f"An IP named location holds at most {MAX_IP_RANGES} ranges.")
    ranges = []
    for item in value:
        kind = item.get("@odata.type") if isinstance(item, dict) else None
        cidr = str(item.get("cidrAddress") or "") if isinstance(item, dict) else ""
        try:
            network = ipaddress.ip_network(cidr, strict=True)
        except ValueError:
            raise GraphError(400, "BadRequest", f"'{cidr}' is not a valid CIDR address.") from None
        expected = "#microsoft.graph.iPv4CidrRange" if network.version == 4 else "#microsoft.graph.iPv6CidrRange"
        if kind != expected:
            raise GraphError(400, "BadRequest", f"'{cidr}' must be an {expected[17:]}.")
        ranges.append({"@odata.type": kind, "cidrAddress": cidr})
    return ranges
