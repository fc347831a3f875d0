"""Microsoft Graph's sign-in log (/auditLogs/signIns) and Identity Protection's risky service principals.

The sign-ins are the tenant's SigninLogs rows (the emulated workspace's, so Graph and the logs tell one story) in
Graph's signIn shape, plus any the document lists under graph.signIns; newest first, as the service returns them.
Risky service principals come from graph.riskyServicePrincipals. $filter takes the operators the service documents
for these resources; the rest answer 400 as Graph does."""

from __future__ import annotations

import json
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from local.cloud.errors import GraphError
from local.cloud.graph import (
    _EQ_OPS,
    _STRING_OPS,
    _TIME_OPS,
    GraphProvider,
    _context,
    _graph_json,
    _page,
    _project,
    _select,
)
from local.cloud.loganalytics import Window, database_for
from local.cloud.odata import FilterRules
from local.cloud.provider import Provider, route
from local.cloud.state import Cloud

RUNTIME_KEY = "graph_signins"
READ_SIGNINS = ("AuditLog.Read.All",)
READ_RISKY_PRINCIPALS = ("IdentityRiskyServicePrincipal.Read.All", "IdentityRiskyServicePrincipal.ReadWrite.All")
SIGNIN_PROPERTIES = (
    "id", "createdDateTime", "userDisplayName", "userPrincipalName", "userId", "appId", "appDisplayName",
    "ipAddress", "clientAppUsed", "correlationId", "conditionalAccessStatus", "isInteractive", "riskDetail",
    "riskLevelAggregated", "riskLevelDuringSignIn", "riskState", "riskEventTypes_v2", "resourceDisplayName",
    "resourceId", "status", "deviceDetail", "location", "appliedConditionalAccessPolicies",
)  # fmt: skip
SIGNIN_FILTER = FilterRules(
    properties={
        **{p: _EQ_OPS for p in ("id", "userId", "appId", "correlationId", "conditionalAccessStatus")},
        **{p: _STRING_OPS for p in ("userPrincipalName", "userDisplayName", "appDisplayName", "ipAddress")},
        **{p: _EQ_OPS for p in ("riskLevelDuringSignIn", "riskLevelAggregated", "riskState", "riskDetail")},
        "status/errorCode": _EQ_OPS,
        "isInteractive": frozenset({"eq"}),
        "createdDateTime": _TIME_OPS,
    }
)
RISKY_PRINCIPAL_PROPERTIES = (
    "id", "appId", "displayName", "servicePrincipalType", "isEnabled", "isProcessing", "riskLastUpdatedDateTime",
    "riskLevel", "riskState", "riskDetail",
)  # fmt: skip
RISKY_PRINCIPAL_FILTER = FilterRules(
    properties={
        **{p: _EQ_OPS for p in ("id", "appId", "displayName", "riskLevel", "riskState", "riskDetail")},
        "riskLastUpdatedDateTime": _TIME_OPS,
    }
)


def _bag(value: Any) -> Any:
    if isinstance(value, str) and value[:1] in "[{":
        try:
            return json.loads(value)
        except ValueError:
            return value
    return value


def _location(details: Any) -> dict[str, Any]:
    found = _bag(details) if details else {}
    return found if isinstance(found, dict) else {}


def signin_of(row: dict[str, Any]) -> dict[str, Any]:
    """A SigninLogs row (as the workspace answers it) in Graph's signIn shape."""
    status = _bag(row.get("Status")) or {}
    risk_types = _bag(row.get("RiskEventTypes_V2")) or []
    return {
        "id": row.get("Id"),
        "createdDateTime": row.get("CreatedDateTime") or row.get("TimeGenerated"),
        "userDisplayName": row.get("UserDisplayName"),
        "userPrincipalName": row.get("UserPrincipalName"),
        "userId": row.get("UserId"),
        "appId": row.get("AppId"),
        "appDisplayName": row.get("AppDisplayName"),
        "ipAddress": row.get("IPAddress"),
        "clientAppUsed": row.get("ClientAppUsed"),
        "correlationId": row.get("CorrelationId"),
        "conditionalAccessStatus": row.get("ConditionalAccessStatus"),
        "isInteractive": bool(row.get("IsInteractive")),
        "riskDetail": row.get("RiskDetail") or "none",
        "riskLevelAggregated": row.get("RiskLevelAggregated") or "none",
        "riskLevelDuringSignIn": row.get("RiskLevelDuringSignIn") or "none",
        "riskState": row.get("RiskState") or "none",
        "riskEventTypes_v2": risk_types if isinstance(risk_types, list) else [],
        "resourceDisplayName": row.get("ResourceDisplayName"),
        "resourceId": row.get("ResourceIdentity"),
        "status": {
            "errorCode": int(str(row.get("ResultType") or 0)) if str(row.get("ResultType") or "0").isdigit() else 0,
            "failureReason": status.get("failureReason") if isinstance(status, dict) else None,
            "additionalDetails": status.get("additionalDetails") if isinstance(status, dict) else None,
        },
        "deviceDetail": _bag(row.get("DeviceDetail")) or {},
        "location": _location(row.get("LocationDetails")),
        "appliedConditionalAccessPolicies": _bag(row.get("ConditionalAccessPolicies")) or [],
    }


class GraphSigninsProvider(Provider):
    """GET /v1.0/auditLogs/signIns[/{id}], GET /v1.0/identityProtection/riskyServicePrincipals[/{id}]."""

    service = "graph"

    def __init__(self, cloud: Cloud) -> None:
        super().__init__(cloud)
        self.graph = GraphProvider(cloud)  # its permission check and $filter handling, not its routes

    def signins(self) -> list[dict[str, Any]]:
        cached = self.cloud.runtime.get(RUNTIME_KEY)
        if isinstance(cached, tuple) and cached[0] == self.cloud.generation:
            found: list[dict[str, Any]] = cached[1]
            return found
        result = database_for(self.cloud).run("SigninLogs", Window(), None)
        names = [name for name, _ in result.columns]
        found = [signin_of(dict(zip(names, row, strict=True))) for row in result.rows]
        found += [dict(s) for s in (self.cloud.doc.get("graph") or {}).get("signIns") or [] if isinstance(s, dict)]
        found.sort(key=lambda s: str(s.get("createdDateTime") or ""), reverse=True)
        self.cloud.runtime[RUNTIME_KEY] = (self.cloud.generation, found)
        return found

    @route("GET", "/v1.0/auditLogs/signIns")
    async def list_signins(self, request: Request) -> Response:
        self.graph.require(*READ_SIGNINS)
        selected = _select(request, SIGNIN_PROPERTIES, "microsoft.graph.signIn")
        items = self.graph.filtered(request, self.signins(), SIGNIN_FILTER, "signIn", ("createdDateTime",))
        return _page(
            request,
            items,
            _context("auditLogs/signIns", selected),
            lambda s: _project(s, selected or SIGNIN_PROPERTIES),
        )

    @route("GET", "/v1.0/auditLogs/signIns/{signin_id}")
    async def get_signin(self, request: Request, signin_id: str) -> Response:
        self.graph.require(*READ_SIGNINS)
        found = next((s for s in self.signins() if str(s.get("id")).lower() == signin_id.lower()), None)
        if found is None:
            raise GraphError(404, "Request_ResourceNotFound", f"Resource '{signin_id}' does not exist.")
        body = {
            "@odata.context": _context("auditLogs/signIns", None, single=True),
            **_project(found, SIGNIN_PROPERTIES),
        }
        return _graph_json(body, request)

    def principals(self) -> list[dict[str, Any]]:
        found: list[dict[str, Any]] = (self.cloud.doc.get("graph") or {}).get("riskyServicePrincipals") or []
        return found

    @route("GET", "/v1.0/identityProtection/riskyServicePrincipals")
    async def list_risky_principals(self, request: Request) -> Response:
        self.graph.require(*READ_RISKY_PRINCIPALS)
        selected = _select(request, RISKY_PRINCIPAL_PROPERTIES, "microsoft.graph.riskyServicePrincipal")
        items = self.graph.filtered(
            request, self.principals(), RISKY_PRINCIPAL_FILTER, "riskyServicePrincipal", (), identity_protection=True
        )
        context = _context("identityProtection/riskyServicePrincipals", selected)
        return _page(request, items, context, lambda p: _project(p, selected or RISKY_PRINCIPAL_PROPERTIES))

    @route("GET", "/v1.0/identityProtection/riskyServicePrincipals/{principal_id}")
    async def get_risky_principal(self, request: Request, principal_id: str) -> Response:
        self.graph.require(*READ_RISKY_PRINCIPALS)
        found = next((p for p in self.principals() if str(p.get("id")).lower() == principal_id.lower()), None)
        if found is None:
            raise GraphError(404, "NotFound", f"The risky service principal '{principal_id}' was not found.")
        context = _context("identityProtection/riskyServicePrincipals", None, single=True)
        return _graph_json({"@odata.context": context, **_project(found, RISKY_PRINCIPAL_PROPERTIES)}, request)
