"""KQL enrichers over the Sentinel workspace: sign-ins of a user, what an IP address did, activity on a host, logons
of a Windows account.

Every query is a named query from playbooks/queries/*.kql, and every entity value reaches it only through the
literal builder (shared.kql), which validates the value by its declared type and escapes it: the Log Analytics API
has no query parameters. The service-side timespan is the same lookback the query filters on, so the service never
scans more than the query needs."""

from __future__ import annotations

import asyncio
import re
import uuid
from datetime import datetime, timedelta
from functools import cache
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel

from shared.actions.context import ActionContext
from shared.actions.executor import ActionError
from shared.actions.model import Permission, azure_role
from shared.actions.registry import enricher
from shared.kql import NamedQuery, load_queries

LOG_ANALYTICS_READER: tuple[Permission, ...] = (
    azure_role("Log Analytics Reader", "Microsoft.OperationalInsights/workspaces/query/read"),
)
_LOOKBACK = re.compile(r"^([0-9]{1,6})(d|h|m|s|ms)\Z")  # [0-9]: \d takes any script's digits
_UNIT_SECONDS = {"d": 86400.0, "h": 3600.0, "m": 60.0, "s": 1.0, "ms": 0.001}


def _workspace_guid(value: str | None) -> str | None:
    if value is None:
        return None
    try:
        return str(uuid.UUID(value))
    except ValueError:
        raise ValueError("must be the workspace GUID (its customer id), not its name or ARM id") from None


def _lookback(value: str) -> str:
    if not _LOOKBACK.match(value.strip()):
        raise ValueError("must be a Kusto timespan such as 30m, 12h or 7d")
    return value.strip()


WorkspaceId = Annotated[str | None, AfterValidator(_workspace_guid)]
Lookback = Annotated[str, AfterValidator(_lookback)]


class LogsParams(BaseModel):
    model_config = ConfigDict(frozen=True, alias_generator=to_camel, validate_by_name=True)

    workspace_id: WorkspaceId = Field(None, description="Workspace GUID; the configured workspace when omitted")


class LogsResult(BaseModel):
    model_config = ConfigDict(frozen=True, alias_generator=to_camel, validate_by_name=True)


@cache
def queries() -> dict[str, NamedQuery]:
    return load_queries()


def lookback_delta(lookback: str) -> timedelta:
    match = _LOOKBACK.match(lookback)
    if match is None:
        raise ActionError(f"lookback {lookback!r} is not a Kusto timespan")
    return timedelta(seconds=int(match.group(1)) * _UNIT_SECONDS[match.group(2)])


def workspace_of(ctx: ActionContext, workspace_id: str | None) -> str:
    workspace = workspace_id or ctx.settings.workspace_id
    if not workspace:
        raise ActionError("no Log Analytics workspace: set RIPOSTE_WORKSPACE_ID or pass workspaceId")
    return workspace


async def run_named(ctx: ActionContext, name: str, workspace_id: str | None, **values: Any) -> dict[str, Any]:
    """The single summary row of a named query (its values rendered by the literal builder), {} when it has none."""
    rows = await run_rows(ctx, name, workspace_id, **values)
    first: dict[str, Any] = rows[0] if rows else {}
    return first


async def run_rows(ctx: ActionContext, name: str, workspace_id: str | None, **values: Any) -> list[dict[str, Any]]:
    """Every row of a named query, over its lookback (also the service-side time range; none for a query without
    one, such as a watchlist's, whose items are as old as the list)."""
    workspace = workspace_of(ctx, workspace_id)
    query = queries()[name]
    kql = query.render(**values)
    timespan = lookback_delta(str(values["lookback"])) if "lookback" in values else None
    rows: list[dict[str, Any]] = await ctx.azure.logs.query(workspace, kql, timespan)
    return rows


def _int(row: dict[str, Any], column: str) -> int:
    value = row.get(column)
    return int(value) if value is not None else 0


def _strings(row: dict[str, Any], column: str) -> list[str]:
    value = row.get(column)
    if not isinstance(value, list):
        return []
    return [str(item) for item in value if item not in (None, "")]


def _time(row: dict[str, Any], column: str) -> datetime | None:
    value = row.get(column)
    return value if isinstance(value, datetime) else None


# ---------------------------------------------------------------------------------------------------------------------
# sign-ins of one user


class SigninSummaryParams(LogsParams):
    upn: str = Field(description="The user's UPN as SigninLogs records it")
    lookback: Lookback = "1d"


class SigninSummary(LogsResult):
    upn: str
    lookback: str
    total: int
    failures: int
    distinct_ips: int
    distinct_countries: int
    countries: list[str]
    ips: list[str]
    last_success: datetime | None


@enricher(
    "loganalytics.get_signin_summary",
    summary="A user's sign-ins over the lookback: failures, distinct IPs and countries, the last success (KQL)",
    params=SigninSummaryParams,
    permissions=LOG_ANALYTICS_READER,
    target="Account",
)
async def get_signin_summary(ctx: ActionContext, params: SigninSummaryParams) -> SigninSummary:
    row = await run_named(ctx, "signin_summary", params.workspace_id, upn=params.upn, lookback=params.lookback)
    return SigninSummary(
        upn=params.upn,
        lookback=params.lookback,
        total=_int(row, "Total"),
        failures=_int(row, "Failures"),
        distinct_ips=_int(row, "DistinctIps"),
        distinct_countries=_int(row, "DistinctCountries"),
        countries=_strings(row, "Countries"),
        ips=_strings(row, "Ips"),
        last_success=_time(row, "LastSuccess"),
    )


# ---------------------------------------------------------------------------------------------------------------------
# one IP address: sign-ins from it, network events to and from it


class IpContextParams(LogsParams):
    ip: str = Field(description="IPv4 or IPv6 address")
    lookback: Lookback = "7d"
    known_upn: str | None = Field(None, description="The incident's own account, left out of otherAccounts")


class IpSignins(LogsResult):
    sign_ins: int
    failures: int
    accounts: list[str]
    distinct_accounts: int
    first_seen: datetime | None
    last_seen: datetime | None


class IpNetworkEvents(LogsResult):
    events: int
    denied: int
    destination_ports: list[str]
    devices: list[str]
    last_seen: datetime | None


class IpContext(LogsResult):
    ip: str
    lookback: str
    signins: IpSignins
    network: IpNetworkEvents
    other_accounts: list[str] = Field(description="Accounts that signed in from the IP, other than knownUpn")


@enricher(
    "loganalytics.get_ip_context",
    summary="What an IP address did: sign-ins from it and the accounts that used it, firewall events (KQL)",
    params=IpContextParams,
    permissions=LOG_ANALYTICS_READER,
    target="Ip",
)
async def get_ip_context(ctx: ActionContext, params: IpContextParams) -> IpContext:
    signins, network = await asyncio.gather(
        run_named(ctx, "ip_signins", params.workspace_id, ip=params.ip, lookback=params.lookback),
        run_named(ctx, "ip_network_events", params.workspace_id, ip=params.ip, lookback=params.lookback),
    )
    accounts = _strings(signins, "Accounts")
    known = (params.known_upn or "").lower()
    return IpContext(
        ip=params.ip,
        lookback=params.lookback,
        signins=IpSignins(
            sign_ins=_int(signins, "SignIns"),
            failures=_int(signins, "Failures"),
            accounts=accounts,
            distinct_accounts=_int(signins, "DistinctAccounts"),
            first_seen=_time(signins, "FirstSeen"),
            last_seen=_time(signins, "LastSeen"),
        ),
        network=IpNetworkEvents(
            events=_int(network, "Events"),
            denied=_int(network, "Denied"),
            destination_ports=_strings(network, "DestinationPorts"),
            devices=_strings(network, "Devices"),
            last_seen=_time(network, "LastSeen"),
        ),
        other_accounts=[account for account in accounts if account.lower() != known],
    )


# ---------------------------------------------------------------------------------------------------------------------
# one host: logons on it, its agent's heartbeat


class HostActivityParams(LogsParams):
    host: str = Field(description="Host name (or FQDN) as the agent reports it")
    lookback: Lookback = "1d"


class HostActivity(LogsResult):
    host: str
    lookback: str
    failed_logons: int
    successful_logons: int
    source_ips: list[str]
    accounts: list[str]
    last_event: datetime | None
    last_heartbeat: datetime | None
    computer_ips: list[str]
    os_types: list[str]


@enricher(
    "loganalytics.get_host_activity",
    summary="Activity on a host: failed and successful logons, from where and as whom, the agent's last heartbeat",
    params=HostActivityParams,
    permissions=LOG_ANALYTICS_READER,
    target="Host",
)
async def get_host_activity(ctx: ActionContext, params: HostActivityParams) -> HostActivity:
    events, heartbeat = await asyncio.gather(
        run_named(ctx, "host_security_events", params.workspace_id, host=params.host, lookback=params.lookback),
        run_named(ctx, "host_heartbeat", params.workspace_id, host=params.host, lookback=params.lookback),
    )
    return HostActivity(
        host=params.host,
        lookback=params.lookback,
        failed_logons=_int(events, "FailedLogons"),
        successful_logons=_int(events, "SuccessfulLogons"),
        source_ips=_strings(events, "SourceIps"),
        accounts=_strings(events, "Accounts"),
        last_event=_time(events, "LastEvent"),
        last_heartbeat=_time(heartbeat, "LastHeartbeat"),
        computer_ips=_strings(heartbeat, "ComputerIps"),
        os_types=_strings(heartbeat, "OsTypes"),
    )


# ---------------------------------------------------------------------------------------------------------------------
# one Windows account (DOMAIN\user, which no UPN or host name check accepts): logons across hosts


class AccountLogonsParams(LogsParams):
    account: str = Field(min_length=1, description="The account exactly as Windows logs it, e.g. CONTOSO\\adele")
    lookback: Lookback = "1d"


class AccountLogons(LogsResult):
    account: str
    lookback: str
    failed_logons: int
    successful_logons: int
    computers: list[str]
    source_ips: list[str]
    accounts: list[str] = Field(description="The spellings that matched (the match ignores case)")
    last_event: datetime | None


@enricher(
    "loganalytics.get_account_logons",
    summary="Windows logons of an on-premises account (DOMAIN\\user) across hosts: failures, hosts, source IPs (KQL)",
    params=AccountLogonsParams,
    permissions=LOG_ANALYTICS_READER,
    target="Account",
)
async def get_account_logons(ctx: ActionContext, params: AccountLogonsParams) -> AccountLogons:
    row = await run_named(ctx, "account_logons", params.workspace_id, account=params.account, lookback=params.lookback)
    return AccountLogons(
        account=params.account,
        lookback=params.lookback,
        failed_logons=_int(row, "FailedLogons"),
        successful_logons=_int(row, "SuccessfulLogons"),
        computers=_strings(row, "Computers"),
        source_ips=_strings(row, "SourceIps"),
        accounts=_strings(row, "Accounts"),
        last_event=_time(row, "LastEvent"),
    )
