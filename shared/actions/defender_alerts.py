"""Defender for Cloud alert state: resolve or dismiss an alert, or activate it again, each recording the status it
replaced so undo puts that status back.

An alert is addressed by its ARM id at resource group level (an incident from a Defender alert carries it as its
armId); alerts Defender keeps at subscription level are not handled. The status is Active, InProgress, Resolved or
Dismissed, and the API refuses no transition, so undo is exact: it sets the recorded status again."""

from __future__ import annotations

from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict, Field, field_validator
from pydantic.alias_generators import to_camel

from shared.actions.context import ActionContext
from shared.actions.executor import ActionError
from shared.actions.model import Outcome, Plan, Target
from shared.actions.registry import responder
from shared.actions.roles import defender_alerts
from shared.armid import ArmId
from shared.azure.errors import NotFound

ALERT_TYPE = "Microsoft.Security/locations/alerts"
STATUSES = ("Active", "InProgress", "Resolved", "Dismissed")


class AlertParams(BaseModel):
    model_config = ConfigDict(frozen=True, alias_generator=to_camel, validate_by_name=True)

    alert_id: str = Field(description="The alert's ARM id (incident.armId of a Defender alert's run)")

    @field_validator("alert_id")
    @classmethod
    def _alert(cls, value: str) -> str:
        try:
            return str(ArmId.parse(value, ALERT_TYPE))
        except ValueError:
            raise ValueError("must be the ARM id of a Defender for Cloud alert at resource group level") from None


async def read_alert(ctx: ActionContext, alert_id: str) -> tuple[dict[str, Any], Target]:
    try:
        alert: dict[str, Any] = await ctx.azure.security.get_alert(alert_id)
    except NotFound:
        raise ActionError(f"no Defender for Cloud alert {alert_id}") from None
    props = alert.get("properties") or {}
    entity = str(props.get("compromisedEntity") or "")
    title = str(props.get("alertDisplayName") or ArmId.parse(alert_id).name)
    target = Target(
        kind="alert", id=str(alert.get("id") or alert_id), display=f"{title} ({entity})" if entity else title
    )
    return alert, target


def status_of(alert: dict[str, Any]) -> str:
    return str((alert.get("properties") or {}).get("status") or "Active")


class SetAlertState:
    """A responder that moves an alert to one status; the subclasses say which."""

    status: ClassVar[str]

    async def plan(self, ctx: ActionContext, params: AlertParams) -> Plan:
        alert, target = await read_alert(ctx, params.alert_id)
        current = status_of(alert)
        noop = current == self.status
        return Plan(
            target=target,
            prior={"status": current},
            intended={"status": self.status},
            noop=noop,
            reason=f"the alert is already {current}" if noop else f"would set the alert {self.status} (was {current})",
        )

    async def apply(self, ctx: ActionContext, plan: Plan, key: str) -> dict[str, Any]:
        # Setting the status it has is harmless, so a retry after a lost response writes the same thing.
        await ctx.azure.security.set_alert_state(plan.target.id, self.status)
        return {"alertId": plan.target.id, "status": self.status}

    async def undo(self, ctx: ActionContext, outcome: Outcome) -> dict[str, Any]:
        prior = outcome.prior.get("status")
        if outcome.target is None or prior not in STATUSES:
            raise ActionError("the alert's prior status was not recorded")
        alert, _ = await read_alert(ctx, outcome.target.id)
        if status_of(alert) == prior:
            return {"alertId": outcome.target.id, "status": prior, "changed": False}
        await ctx.azure.security.set_alert_state(outcome.target.id, str(prior))
        return {"alertId": outcome.target.id, "status": prior, "changed": True}


@responder(
    "defender.resolve_alert",
    summary="Resolve a Defender for Cloud alert (the threat was handled); undo sets its previous status again",
    params=AlertParams,
    permissions=defender_alerts("read", "resolve/action", "activate/action", "dismiss/action"),
    target="Incident",
    reversible=True,
    destructive=False,
)
class ResolveAlert(SetAlertState):
    status = "Resolved"


@responder(
    "defender.dismiss_alert",
    summary="Dismiss a Defender for Cloud alert (a false positive); undo sets its previous status again",
    params=AlertParams,
    permissions=defender_alerts("read", "dismiss/action", "activate/action", "resolve/action"),
    target="Incident",
    reversible=True,
    destructive=False,
)
class DismissAlert(SetAlertState):
    status = "Dismissed"


@responder(
    "defender.activate_alert",
    summary="Set a Defender for Cloud alert Active again; undo sets its previous status again",
    params=AlertParams,
    permissions=defender_alerts("read", "activate/action", "resolve/action", "dismiss/action"),
    target="Incident",
    reversible=True,
    destructive=False,
)
class ActivateAlert(SetAlertState):
    status = "Active"
