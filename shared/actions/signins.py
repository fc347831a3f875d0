"""Microsoft Graph's sign-in logs and Identity Protection's risky workload identities.

entra.list_signins reads a user's interactive sign-ins (/auditLogs/signIns) and summarises them; the risk fields of
a sign-in are filled only in tenants with Entra ID P2 (elsewhere they read `hidden` or `none`).
identity.list_risky_signins keeps the sign-ins Identity Protection rated risky during the sign-in or still holds at
risk. identity.get_risky_service_principal reads a service principal's risk (Workload Identities Premium for the
detail). The log's own retention (30 days with P1 or P2) bounds the lookback."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from pydantic import Field

from shared.actions.context import ActionContext
from shared.actions.entra import AccountParams, ObjectId
from shared.actions.identity import RISK_ORDER
from shared.actions.identity import _Result as Result
from shared.actions.model import graph_permission
from shared.actions.registry import enricher

SIGNIN_RETENTION_HOURS = 30 * 24
SIGNIN_PERMISSIONS = (graph_permission("AuditLog.Read.All"), graph_permission("Directory.Read.All"))
RISKY_LEVELS = frozenset({"low", "medium", "high"})
RISKY_STATES = frozenset({"atRisk", "confirmedCompromised"})


class SigninsParams(AccountParams):
    lookback_hours: int = Field(24, ge=1, le=SIGNIN_RETENTION_HOURS, description="How far back to look")
    max_signins: int = Field(50, ge=1, le=500, description="Most sign-ins to list, newest first")


class Signin(Result):
    id: str
    created_date_time: datetime | None = None
    app_display_name: str | None = None
    ip_address: str | None = None
    country_or_region: str | None = None
    city: str | None = None
    error_code: int | None = None
    failure_reason: str | None = None
    client_app_used: str | None = None
    conditional_access_status: str | None = None
    risk_level_during_sign_in: str | None = None
    risk_state: str | None = None
    risk_event_types: list[str] = Field(default_factory=list)


class Signins(Result):
    user_id: str
    lookback_hours: int
    count: int
    failures: int
    distinct_ips: list[str]
    countries: list[str]
    apps: list[str]
    highest_risk: str = Field(description="The highest risk level during a sign-in: none, low, medium or high")
    truncated: bool = Field(description="More sign-ins than max_signins: only the newest are listed")
    signins: list[Signin]


def _signin(item: dict[str, Any]) -> Signin:
    status = item.get("status") or {}
    location = item.get("location") or {}
    return Signin(
        id=str(item.get("id") or ""),
        created_date_time=item.get("createdDateTime"),
        app_display_name=item.get("appDisplayName"),
        ip_address=item.get("ipAddress"),
        country_or_region=location.get("countryOrRegion"),
        city=location.get("city"),
        error_code=status.get("errorCode"),
        failure_reason=status.get("failureReason"),
        client_app_used=item.get("clientAppUsed"),
        conditional_access_status=item.get("conditionalAccessStatus"),
        risk_level_during_sign_in=item.get("riskLevelDuringSignIn"),
        risk_state=item.get("riskState"),
        risk_event_types=[str(t) for t in item.get("riskEventTypes_v2") or []],
    )


def _unique(values: list[str | None]) -> list[str]:
    return sorted({v for v in values if v})


def summarise(params: SigninsParams, found: list[dict[str, Any]]) -> Signins:
    signins = [_signin(item) for item in found]
    levels = [s.risk_level_during_sign_in for s in signins if s.risk_level_during_sign_in in RISK_ORDER]
    return Signins(
        user_id=params.aad_user_id,
        lookback_hours=params.lookback_hours,
        count=len(signins),
        failures=sum(1 for s in signins if s.error_code not in (None, 0)),
        distinct_ips=_unique([s.ip_address for s in signins]),
        countries=_unique([s.country_or_region for s in signins]),
        apps=_unique([s.app_display_name for s in signins]),
        highest_risk=max(levels, key=RISK_ORDER.index, default="none"),
        truncated=len(signins) > params.max_signins,
        signins=signins[: params.max_signins],
    )


async def _read(ctx: ActionContext, params: SigninsParams) -> list[dict[str, Any]]:
    since = datetime.now(UTC) - timedelta(hours=params.lookback_hours)
    found: list[dict[str, Any]] = await ctx.azure.graph.list_signins(params.aad_user_id, since)
    return found


@enricher(
    "entra.list_signins",
    summary="A user's sign-ins from Entra ID's sign-in log: failures, addresses, countries, apps, risk (Graph)",
    params=SigninsParams,
    permissions=SIGNIN_PERMISSIONS,
    target="Account",
)
async def list_signins(ctx: ActionContext, params: SigninsParams) -> Signins:
    return summarise(params, await _read(ctx, params))


@enricher(
    "identity.list_risky_signins",
    summary="A user's sign-ins that Identity Protection rated risky or still holds at risk (Graph)",
    params=SigninsParams,
    permissions=SIGNIN_PERMISSIONS,
    target="Account",
)
async def list_risky_signins(ctx: ActionContext, params: SigninsParams) -> Signins:
    risky = [
        item
        for item in await _read(ctx, params)
        if item.get("riskLevelDuringSignIn") in RISKY_LEVELS or item.get("riskState") in RISKY_STATES
    ]
    return summarise(params, risky)


class ServicePrincipalParams(Result):
    service_principal_id: ObjectId = Field(description="The service principal's object id")


class RiskyServicePrincipal(Result):
    service_principal_id: str
    found: bool = Field(description="Identity Protection has a record of it")
    display_name: str | None = None
    app_id: str | None = None
    risk_level: str = "none"
    risk_state: str = "none"
    risk_detail: str = "none"
    risk_last_updated_date_time: datetime | None = None
    at_risk: bool = False


@enricher(
    "identity.get_risky_service_principal",
    summary="Identity Protection's risk level, state and detail of a service principal (workload identity)",
    params=ServicePrincipalParams,
    permissions=(graph_permission("IdentityRiskyServicePrincipal.Read.All"),),
)
async def get_risky_service_principal(ctx: ActionContext, params: ServicePrincipalParams) -> RiskyServicePrincipal:
    found = await ctx.azure.graph.get_risky_service_principal(params.service_principal_id)
    if found is None:
        return RiskyServicePrincipal(service_principal_id=params.service_principal_id, found=False)
    return RiskyServicePrincipal(
        service_principal_id=params.service_principal_id,
        found=True,
        display_name=found.get("displayName"),
        app_id=found.get("appId"),
        risk_level=str(found.get("riskLevel") or "none"),
        risk_state=str(found.get("riskState") or "none"),
        risk_detail=str(found.get("riskDetail") or "none"),
        risk_last_updated_date_time=found.get("riskLastUpdatedDateTime"),
        at_risk=found.get("riskState") in RISKY_STATES,
    )
