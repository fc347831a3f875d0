"""Microsoft Defender for Cloud posture: a resource's open recommendations and their severity, and the
subscription's secure score by control (learn.microsoft.com's operations guidance: prioritise by secure score and
recommendations). Read through azure-mgmt-security; Security Reader grants both reads."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator
from pydantic.alias_generators import to_camel

from shared.actions.context import ActionContext
from shared.actions.executor import ActionError
from shared.actions.model import Permission, azure_role
from shared.actions.registry import enricher
from shared.armid import ArmId

SEVERITIES = ("High", "Medium", "Low")


def _reader(operation: str) -> tuple[Permission, ...]:
    return (azure_role("Security Reader", operation),)


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, alias_generator=to_camel, validate_by_name=True)


class PostureParams(_Model):
    resource_id: str = Field(description="The resource's ARM id: a VM, a storage account...")
    max_recommendations: int = Field(20, ge=1, le=100)

    @field_validator("resource_id")
    @classmethod
    def _arm_id(cls, value: str) -> str:
        return str(ArmId.parse(value))


class Recommendation(_Model):
    name: str
    display_name: str
    severity: str
    status: str
    categories: list[str]
    description: str
    remediation: str


class ResourcePosture(_Model):
    resource_id: str
    assessed: int = Field(description="Recommendations that apply to the resource (healthy or not)")
    healthy: int
    unhealthy: int
    unhealthy_by_severity: dict[str, int]
    recommendations: list[Recommendation] = Field(description="The open ones, most severe first")


def _recommendation(item: dict[str, Any], metadata: dict[str, dict[str, Any]]) -> Recommendation:
    props = item.get("properties") or {}
    defined = (metadata.get(str(item.get("name")).lower()) or {}).get("properties") or {}
    status = props.get("status") or {}
    return Recommendation(
        name=str(item.get("name")),
        display_name=str(props.get("displayName") or defined.get("displayName") or item.get("name")),
        severity=str(defined.get("severity") or "Unknown"),
        status=str(status.get("code") or ""),
        categories=[str(c) for c in defined.get("categories") or []],
        description=str(status.get("description") or status.get("cause") or ""),
        remediation=str(defined.get("remediationDescription") or ""),
    )


@enricher(
    "defender.get_resource_posture",
    summary="Defender for Cloud's open recommendations for a resource (a VM, a storage account) and their severity",
    params=PostureParams,
    permissions=_reader("Microsoft.Security/assessments/read"),
)
async def get_resource_posture(ctx: ActionContext, params: PostureParams) -> ResourcePosture:
    subscription = ArmId.parse(params.resource_id).subscription
    assessments, metadata = await asyncio.gather(
        ctx.azure.security.list_assessments(params.resource_id),
        ctx.azure.security.assessment_metadata(subscription),
    )
    found = [_recommendation(item, metadata) for item in assessments]
    applicable = [r for r in found if r.status in ("Healthy", "Unhealthy")]
    open_ = [r for r in applicable if r.status == "Unhealthy"]
    rank = {s: i for i, s in enumerate(SEVERITIES)}
    open_.sort(key=lambda r: (rank.get(r.severity, len(SEVERITIES)), r.display_name))
    return ResourcePosture(
        resource_id=params.resource_id,
        assessed=len(applicable),
        healthy=len(applicable) - len(open_),
        unhealthy=len(open_),
        unhealthy_by_severity={s: sum(1 for r in open_ if r.severity == s) for s in SEVERITIES},
        recommendations=open_[: params.max_recommendations],
    )


class SecureScoreParams(_Model):
    subscription_id: str | None = Field(None, description="The subscription; the configured one when omitted")
    max_controls: int = Field(10, ge=1, le=50)

    @field_validator("subscription_id")
    @classmethod
    def _guid(cls, value: str | None) -> str | None:
        return None if value is None else str(uuid.UUID(value))


class ScoreControl(_Model):
    display_name: str
    current: float
    max: int
    percentage: float
    unhealthy_resources: int
    healthy_resources: int
    potential_gain: float = Field(description="Points the control would add to the score if fully remediated")


class SecureScore(_Model):
    subscription_id: str
    current: float
    max: int
    percentage: float
    controls: list[ScoreControl] = Field(description="The controls with the most to gain first")


def _control(item: dict[str, Any]) -> ScoreControl:
    props = item.get("properties") or {}
    score = props.get("score") or {}
    current, maximum = float(score.get("current") or 0), int(score.get("max") or 0)
    return ScoreControl(
        display_name=str(props.get("displayName") or item.get("name")),
        current=current,
        max=maximum,
        percentage=float(score.get("percentage") or 0),
        unhealthy_resources=int(props.get("unhealthyResourceCount") or 0),
        healthy_resources=int(props.get("healthyResourceCount") or 0),
        potential_gain=round(maximum - current, 2),
    )


@enricher(
    "defender.get_secure_score",
    summary="The subscription's Defender for Cloud secure score and its controls, those with the most to gain first",
    params=SecureScoreParams,
    permissions=_reader("Microsoft.Security/secureScores/read"),
)
async def get_secure_score(ctx: ActionContext, params: SecureScoreParams) -> SecureScore:
    subscription = params.subscription_id or ctx.settings.subscription_id
    if not subscription:
        raise ActionError("no subscription: set RIPOSTE_SUBSCRIPTION_ID or pass subscriptionId")
    score, controls = await asyncio.gather(
        ctx.azure.security.get_secure_score(subscription),
        ctx.azure.security.list_secure_score_controls(subscription),
    )
    overall = (score.get("properties") or {}).get("score") or {}
    ranked = sorted((_control(c) for c in controls), key=lambda c: (-c.potential_gain, c.display_name))
    return SecureScore(
        subscription_id=subscription,
        current=float(overall.get("current") or 0),
        max=int(overall.get("max") or 0),
        percentage=float(overall.get("percentage") or 0),
        controls=ranked[: params.max_controls],
    )
