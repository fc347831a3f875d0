"""What the workspace already knows about an entity, by named KQL queries: UEBA's profile of an account
(IdentityInfo, BehaviorAnalytics), the alerts and incidents that named the entity before, and the traffic analytics of
a VM or an address (AzureNetworkAnalytics_CL and its successor NTANetAnalytics, read together)."""

from __future__ import annotations

import asyncio
import json
import re
from datetime import datetime
from typing import Any

from pydantic import Field, model_validator

from shared.actions.context import ActionContext
from shared.actions.loganalytics import LOG_ANALYTICS_READER, LogsParams, LogsResult, Lookback, run_rows
from shared.actions.registry import enricher
from shared.kql import ParamType, render

# --- UEBA ------------------------------------------------------------------------------------------------------------


class UebaParams(LogsParams):
    upn: str = Field(description="The account's UPN")
    lookback: Lookback = Field("7d", description="How far back UEBA's scored activities are read")


class UnusualActivity(LogsResult):
    time: datetime | None
    activity_type: str
    action_type: str
    source_ip: str
    source_location: str
    investigation_priority: int
    insights: list[str] = Field(description="UEBA's insights that held, e.g. FirstTimeUserConnectedFromCountry")


class UebaProfile(LogsResult):
    upn: str
    found: bool = Field(description="IdentityInfo knows the account")
    display_name: str
    tags: list[str] = Field(description="UEBA's tags: VIP, Sensitive, Administrator...")
    blast_radius: str
    investigation_priority: int | None
    investigation_priority_percentile: int | None
    assigned_roles: list[str]
    groups: list[str]
    is_mfa_registered: bool | None
    risk_level: str
    max_activity_priority: int = Field(description="The highest priority UEBA gave an activity in the lookback")
    unusual_activities: list[UnusualActivity]


def _list(value: Any) -> list[str]:
    if isinstance(value, str):  # IdentityInfo.Tags is a string holding a JSON array
        try:
            value = json.loads(value)
        except ValueError:
            return [value] if value else []
    return [str(item) for item in value] if isinstance(value, list) else []


def _held(insights: Any) -> list[str]:
    if not isinstance(insights, dict):
        return []
    return sorted(key for key, value in insights.items() if value is True or str(value).lower() == "true")


def _activity(row: dict[str, Any]) -> UnusualActivity:
    return UnusualActivity(
        time=row.get("TimeGenerated"),
        activity_type=str(row.get("ActivityType") or ""),
        action_type=str(row.get("ActionType") or ""),
        source_ip=str(row.get("SourceIPAddress") or ""),
        source_location=str(row.get("SourceIPLocation") or ""),
        investigation_priority=int(row.get("InvestigationPriority") or 0),
        insights=_held(row.get("ActivityInsights")),
    )


@enricher(
    "loganalytics.get_ueba_profile",
    summary="UEBA's view of an account: tags (VIP...), blast radius, investigation priority, unusual activity (KQL)",
    params=UebaParams,
    permissions=LOG_ANALYTICS_READER,
    target="Account",
)
async def get_ueba_profile(ctx: ActionContext, params: UebaParams) -> UebaProfile:
    identity, behaviour = await asyncio.gather(
        run_rows(ctx, "ueba_identity", params.workspace_id, upn=params.upn, lookback="14d"),
        run_rows(ctx, "ueba_behavior", params.workspace_id, upn=params.upn, lookback=params.lookback),
    )
    row: dict[str, Any] = identity[0] if identity else {}
    activities = [_activity(r) for r in behaviour]
    return UebaProfile(
        upn=params.upn,
        found=bool(row),
        display_name=str(row.get("AccountDisplayName") or ""),
        tags=_list(row.get("Tags")),
        blast_radius=str(row.get("BlastRadius") or ""),
        investigation_priority=row.get("InvestigationPriority"),
        investigation_priority_percentile=row.get("InvestigationPriorityPercentile"),
        assigned_roles=_list(row.get("AssignedRoles")),
        groups=_list(row.get("GroupMembership")),
        is_mfa_registered=row.get("IsMFARegistered"),
        risk_level=str(row.get("RiskLevel") or ""),
        max_activity_priority=max((a.investigation_priority for a in activities), default=0),
        unusual_activities=activities,
    )


# --- related alerts --------------------------------------------------------------------------------------------------

_ACCOUNT = re.compile(r"^[\w.'!#^~+-]{1,64}\Z")  # a sAMAccountName or a UPN's local part, as alerts name accounts


class RelatedAlertsParams(LogsParams):
    ip: str | None = Field(None, description="An IP address the alerts name")
    host: str | None = Field(None, description="A host name the alerts name")
    aad_user_id: str | None = Field(None, description="An account's Entra object id the alerts name")
    account: str | None = Field(None, description="An account name as alerts record it (adele.vance)")
    lookback: Lookback = "30d"

    @model_validator(mode="after")
    def _one(self) -> RelatedAlertsParams:
        given = [(k, v) for k, v in self.terms().items() if v is not None]
        if len(given) != 1:
            raise ValueError("give exactly one of ip, host, aadUserId or account")
        kind, value = given[0]
        # The query takes any text; the value is still checked as what it claims to be.
        if kind == "account" and not _ACCOUNT.match(value):
            raise ValueError("account: not an account name (letters, digits and . ' ! # ^ ~ + - _, at most 64)")
        render(
            kind,
            {"ip": ParamType.IP, "host": ParamType.HOSTNAME, "aad_user_id": ParamType.GUID}.get(kind, "text"),
            value,
        )
        return self

    def terms(self) -> dict[str, str | None]:
        return {"ip": self.ip, "host": self.host, "aad_user_id": self.aad_user_id, "account": self.account}

    @property
    def term(self) -> str:
        return next(v for v in self.terms().values() if v is not None)


class RelatedAlert(LogsResult):
    time: datetime | None
    alert_name: str
    severity: str
    product: str
    tactics: str
    status: str
    incident_number: int | None
    incident_title: str
    incident_status: str


class RelatedAlerts(LogsResult):
    term: str
    lookback: str
    alerts: int
    high_severity: int
    incidents: int = Field(description="Distinct incidents holding those alerts, the run's own excluded")
    items: list[RelatedAlert]


@enricher(
    "loganalytics.list_related_alerts",
    summary="Alerts and incidents that named the same IP, host or account before, this incident left out (KQL)",
    params=RelatedAlertsParams,
    permissions=LOG_ANALYTICS_READER,
)
async def list_related_alerts(ctx: ActionContext, params: RelatedAlertsParams) -> RelatedAlerts:
    rows = await run_rows(ctx, "related_alerts", params.workspace_id, term=params.term, lookback=params.lookback)
    own = (ctx.incident_id or "").rstrip("/").rsplit("/", 1)[-1].lower()
    kept = [r for r in rows if not own or str(r.get("IncidentName") or "").lower() != own]
    items = [
        RelatedAlert(
            time=r.get("TimeGenerated"),
            alert_name=str(r.get("AlertName") or ""),
            severity=str(r.get("AlertSeverity") or ""),
            product=str(r.get("ProductName") or ""),
            tactics=str(r.get("Tactics") or ""),
            status=str(r.get("AlertStatus") or ""),
            incident_number=r.get("IncidentNumber"),
            incident_title=str(r.get("IncidentTitle") or ""),
            incident_status=str(r.get("IncidentStatus") or ""),
        )
        for r in kept
    ]
    return RelatedAlerts(
        term=params.term,
        lookback=params.lookback,
        alerts=len(items),
        high_severity=sum(1 for i in items if i.severity == "High"),
        incidents=len({str(r.get("IncidentName")) for r in kept if r.get("IncidentName")}),
        items=items,
    )


# --- traffic analytics -----------------------------------------------------------------------------------------------


class FlowSummaryParams(LogsParams):
    vm: str | None = Field(None, description="The VM's name: its flows, by remote address")
    ip: str | None = Field(None, description="An IP address: its flows, by the VM it talked to")
    lookback: Lookback = "1d"
    top: int = Field(10, ge=1, le=50, description="How many peers to list")

    @model_validator(mode="after")
    def _one(self) -> FlowSummaryParams:
        if (self.vm is None) == (self.ip is None):
            raise ValueError("give exactly one of vm or ip")
        return self


class FlowPeer(LogsResult):
    peer: str
    allowed: int
    denied: int
    bytes_out: int
    bytes_in: int
    ports: list[int]
    outbound: bool
    inbound: bool
    malicious: bool = Field(description="Traffic analytics classed the flows as malicious")
    last_seen: datetime | None


class FlowSummary(LogsResult):
    subject: str
    lookback: str
    peers: int
    allowed_flows: int
    denied_flows: int
    bytes_out: int
    bytes_in: int
    malicious_peers: list[str]
    top_peers: list[FlowPeer]


def _peer(row: dict[str, Any]) -> FlowPeer:
    ports = row.get("Ports") if isinstance(row.get("Ports"), list) else []
    return FlowPeer(
        peer=str(row.get("Peer") or ""),
        allowed=int(row.get("Allowed") or 0),
        denied=int(row.get("Denied") or 0),
        bytes_out=int(row.get("BytesOut") or 0),
        bytes_in=int(row.get("BytesIn") or 0),
        ports=sorted(int(p) for p in ports or [] if p is not None),
        outbound=bool(row.get("Outbound")),
        inbound=bool(row.get("Inbound")),
        malicious=bool(row.get("Malicious")),
        last_seen=row.get("LastSeen"),
    )


@enricher(
    "loganalytics.get_flow_summary",
    summary="NSG / VNet flow logs of a VM or an IP: top peers, ports, denied flows, bytes, malicious flows (KQL)",
    params=FlowSummaryParams,
    permissions=LOG_ANALYTICS_READER,
)
async def get_flow_summary(ctx: ActionContext, params: FlowSummaryParams) -> FlowSummary:
    if params.vm is not None:
        rows = await run_rows(ctx, "flows_vm", params.workspace_id, vm=params.vm, lookback=params.lookback)
    else:
        rows = await run_rows(ctx, "flows_ip", params.workspace_id, ip=params.ip, lookback=params.lookback)
    peers = [_peer(r) for r in rows]
    return FlowSummary(
        subject=params.vm or params.ip or "",
        lookback=params.lookback,
        peers=len(peers),
        allowed_flows=sum(p.allowed for p in peers),
        denied_flows=sum(p.denied for p in peers),
        bytes_out=sum(p.bytes_out for p in peers),
        bytes_in=sum(p.bytes_in for p in peers),
        malicious_peers=[p.peer for p in peers if p.malicious],
        top_peers=peers[: params.top],
    )
