"""Microsoft Entra ID Protection: a user's risk state and recent risk detections; confirm compromised, dismiss risk.

Every Identity Protection request goes through the adapter's tenant-wide limiter (1 request/s by default), so these
actions are slower than they look when several run at once. The responders resolve the user through entra.py first:
the guardrails need the same facts (UPN, transitive groups, roles) whichever API the action writes to."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel

from shared.actions.context import ActionContext
from shared.actions.entra import USER_READ_PERMISSIONS, AccountParams, DirectoryUser, resolve_user
from shared.actions.executor import ActionError
from shared.actions.model import Outcome, Plan, graph_permission
from shared.actions.registry import enricher, responder

RISK_ORDER = ("none", "low", "medium", "high")  # hidden and unknownFutureValue rank below none
DETECTION_RETENTION_HOURS = 90 * 24  # Identity Protection keeps risk detections for 90 days
AT_RISK_STATES = frozenset({"atRisk", "confirmedCompromised"})
NOTHING_TO_DISMISS = frozenset({"none", "dismissed", "remediated"})


class _Result(BaseModel):
    model_config = ConfigDict(frozen=True, alias_generator=to_camel, validate_by_name=True)


class RiskyUserState(_Result):
    """identity.get_risky_user: Identity Protection's verdict on the user (found False: no risk ever recorded)."""

    user_id: str
    found: bool
    user_principal_name: str | None = None
    risk_level: str = "none"
    risk_state: str = "none"
    risk_detail: str = "none"
    risk_last_updated_date_time: datetime | None = None
    is_processing: bool | None = None
    is_deleted: bool | None = None
    at_risk: bool = False


class RiskDetectionParams(AccountParams):
    lookback_hours: int = Field(72, ge=1, le=DETECTION_RETENTION_HOURS, description="How far back to look")
    max_detections: int = Field(50, ge=1, le=500, description="Most detections to return, newest first")


class RiskDetectionSummary(_Result):
    id: str
    risk_event_type: str | None = None
    risk_level: str | None = None
    risk_state: str | None = None
    risk_detail: str | None = None
    detection_timing_type: str | None = None
    activity: str | None = None
    source: str | None = None
    ip_address: str | None = None
    city: str | None = None
    state: str | None = None
    country_or_region: str | None = None
    activity_date_time: datetime | None = None
    detected_date_time: datetime | None = None


class RiskDetections(_Result):
    """identity.list_risk_detections: the user's detections since `since`, newest first, and their spread."""

    user_id: str
    since: datetime
    count: int = Field(description="detections in the window (the list may hold fewer: see truncated)")
    truncated: bool = Field(description="more detections than max_detections: only the newest are listed")
    highest_risk_level: str = "none"
    risk_event_types: tuple[str, ...] = ()
    ip_addresses: tuple[str, ...] = ()
    countries: tuple[str, ...] = ()
    detections: tuple[RiskDetectionSummary, ...] = ()


def _risky_state(user_id: str, risky: dict[str, Any] | None) -> RiskyUserState:
    if risky is None:
        return RiskyUserState(user_id=user_id, found=False)
    state = RiskyUserState.model_validate({**risky, "userId": user_id, "found": True})
    return state.model_copy(update={"at_risk": state.risk_state in AT_RISK_STATES})


def _summary(detection: dict[str, Any]) -> RiskDetectionSummary:
    location = detection.get("location") or {}
    return RiskDetectionSummary.model_validate(
        {
            **detection,
            "city": location.get("city"),
            "state": location.get("state"),
            "countryOrRegion": location.get("countryOrRegion"),
        }
    )


def _distinct(values: list[str | None]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(v for v in values if v))


# ---------------------------------------------------------------------------------------------------- enrichers


@enricher(
    "identity.get_risky_user",
    summary="Identity Protection risk level, state and detail of the user, and when it last changed",
    params=AccountParams,
    permissions=(graph_permission("IdentityRiskyUser.Read.All"),),
    target="Account",
)
async def get_risky_user(ctx: ActionContext, params: AccountParams) -> RiskyUserState:
    return _risky_state(params.aad_user_id, await ctx.azure.graph.get_risky_user(params.aad_user_id))


@enricher(
    "identity.list_risk_detections",
    summary="The user's recent risk detections: type, level, IP address, location, time",
    params=RiskDetectionParams,
    permissions=(graph_permission("IdentityRiskEvent.Read.All"),),
    target="Account",
)
async def list_risk_detections(ctx: ActionContext, params: RiskDetectionParams) -> RiskDetections:
    since = datetime.now(UTC) - timedelta(hours=params.lookback_hours)
    found = [_summary(d) for d in await ctx.azure.graph.list_risk_detections(params.aad_user_id, since)]
    levels = [d.risk_level for d in found if d.risk_level in RISK_ORDER]
    # The spread covers every detection in the window; the list keeps the newest max_detections.
    return RiskDetections(
        user_id=params.aad_user_id,
        since=since,
        count=len(found),
        truncated=len(found) > params.max_detections,
        highest_risk_level=max(levels, key=RISK_ORDER.index, default="none"),
        risk_event_types=_distinct([d.risk_event_type for d in found]),
        ip_addresses=_distinct([d.ip_address for d in found]),
        countries=_distinct([d.country_or_region for d in found]),
        detections=tuple(found[: params.max_detections]),
    )


# ---------------------------------------------------------------------------------------------------- responders

RISK_WRITE_PERMISSIONS = (graph_permission("IdentityRiskyUser.ReadWrite.All"), *USER_READ_PERMISSIONS)
CONFIRM_UNDO_HINT = (
    "Identity Protection cannot put a confirmed-compromised user back to the prior risk state. Dismissing the risk "
    "(identity.dismiss_risk) sets the state to dismissed and the level to none, not to what it was, and the "
    "confirmation stays in the user's risk history."
)
DISMISS_UNDO_HINT = (
    "Identity Protection has no way to restore dismissed risk: it returns only with new detections. If the risk was "
    "real, confirm the user compromised (identity.confirm_compromised)."
)


async def _plan_reads(ctx: ActionContext, user_id: str) -> tuple[DirectoryUser, dict[str, Any] | None]:
    """The directory facts for the guardrails and the current risk, read in parallel."""
    user, risky = await asyncio.gather(resolve_user(ctx, user_id), ctx.azure.graph.get_risky_user(user_id))
    return user, risky


def _prior_risk(risky: dict[str, Any] | None) -> dict[str, Any]:
    # None everywhere: Identity Protection had no record of the user.
    fields = ("riskLevel", "riskState", "riskDetail", "riskLastUpdatedDateTime")
    return {name: (risky or {}).get(name) for name in fields}


@responder(
    "identity.confirm_compromised",
    summary="Confirm the user compromised in Identity Protection: risk high, so risk-based Conditional Access applies",
    params=AccountParams,
    permissions=RISK_WRITE_PERMISSIONS,
    target="Account",
    reversible=False,
    destructive=True,
    undo_hint=CONFIRM_UNDO_HINT,
)
class ConfirmCompromised:
    async def plan(self, ctx: ActionContext, params: AccountParams) -> Plan:
        user, risky = await _plan_reads(ctx, params.aad_user_id)
        prior = _prior_risk(risky)
        noop = prior["riskState"] == "confirmedCompromised"
        return Plan(
            target=user.target(),
            prior=prior,
            intended={"riskState": "confirmedCompromised", "riskLevel": "high"},
            noop=noop,
            reason="the user is already confirmed compromised" if noop else "",
        )

    async def apply(self, ctx: ActionContext, plan: Plan, key: str) -> dict[str, Any]:
        result: dict[str, Any] = await ctx.azure.graph.confirm_compromised([plan.target.id])
        return result

    async def undo(self, ctx: ActionContext, outcome: Outcome) -> dict[str, Any]:
        raise ActionError(CONFIRM_UNDO_HINT)


@responder(
    "identity.dismiss_risk",
    summary="Dismiss the user's risk in Identity Protection: risk none, open detections closed",
    params=AccountParams,
    permissions=RISK_WRITE_PERMISSIONS,
    target="Account",
    reversible=False,
    destructive=False,
    undo_hint=DISMISS_UNDO_HINT,
)
class DismissRisk:
    async def plan(self, ctx: ActionContext, params: AccountParams) -> Plan:
        user, risky = await _plan_reads(ctx, params.aad_user_id)
        prior = _prior_risk(risky)
        noop = risky is None or prior["riskState"] in NOTHING_TO_DISMISS
        if risky is None:
            reason = "Identity Protection has no risk recorded for the user"
        elif noop:
            reason = f"nothing to dismiss: the risk state is {prior['riskState']}"
        else:
            reason = ""
        return Plan(
            target=user.target(),
            prior=prior,
            intended={"riskState": "dismissed", "riskLevel": "none"},
            noop=noop,
            reason=reason,
        )

    async def apply(self, ctx: ActionContext, plan: Plan, key: str) -> dict[str, Any]:
        result: dict[str, Any] = await ctx.azure.graph.dismiss_risk([plan.target.id])
        return result

    async def undo(self, ctx: ActionContext, outcome: Outcome) -> dict[str, Any]:
        raise ActionError(DISMISS_UNDO_HINT)
