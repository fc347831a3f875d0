"""loganalytics.* against the emulated Log Analytics query API (real KQL on the demo tenant's generated logs) through
the real azure-monitor-query client built by shared.azure.loganalytics: the named queries' results, typed values,
the concurrency limiter, 429s absorbed, errors and timeouts recorded as findings."""

from __future__ import annotations

import asyncio
import time
from datetime import datetime, timedelta
from typing import Any

import pytest

from shared.actions import executor
from shared.azure.errors import AzureError, NotFound
from tests.actions.conftest import WORKSPACE_ID, ContextFactory
from tests.conftest import CloudHandle

QUERY_PATH = f"/v1/workspaces/{WORKSPACE_ID}/query"
SPRAY_IP = "203.0.113.66"  # the demo's password-spray source (see local/cloud/loggen/stories.py)


def queries(cloud: CloudHandle) -> list[dict[str, Any]]:
    return cloud.requests(service="loganalytics", method="POST")


def seed_rows(cloud: CloudHandle, table: str, rows: list[dict[str, Any]]) -> None:
    doc = cloud.tenant()
    doc.setdefault("logAnalytics", {}).setdefault("tables", {}).setdefault(table, []).extend(rows)
    cloud.admin.put("/tenant", json=doc).raise_for_status()


async def test_signin_summary_of_the_sprayed_user(make_context: ContextFactory, cloud: CloudHandle):
    finding = await executor.enrich(
        make_context(), "loganalytics.get_signin_summary", {"upn": "adele.vance@contoso.com"}
    )
    assert finding.ok, finding.error
    data = finding.data
    assert data["total"] > data["failures"] > 10  # the spray, then one success
    assert {SPRAY_IP, "198.51.100.23"} <= set(data["ips"])
    assert data["distinctIps"] == len(data["ips"]) and data["distinctCountries"] == len(data["countries"])
    assert "RU" in data["countries"]
    last_success = datetime.fromisoformat(data["lastSuccess"])
    assert timedelta(0) < datetime.now(last_success.tzinfo) - last_success < timedelta(days=1)
    [request] = queries(cloud)
    assert request["path"] == QUERY_PATH
    assert "UserPrincipalName =~ 'adele.vance@contoso.com'" in request["body"]["query"]
    assert request["body"]["timespan"] == "PT86400.0S"  # the lookback, also as the service-side bound


async def test_signin_summary_of_a_user_without_signins_is_all_zero(make_context: ContextFactory):
    finding = await executor.enrich(make_context(), "loganalytics.get_signin_summary", {"upn": "nobody@contoso.com"})
    assert finding.ok, finding.error
    assert finding.data["total"] == finding.data["failures"] == finding.data["distinctIps"] == 0
    assert finding.data["ips"] == [] and finding.data["lastSuccess"] is None


async def test_signin_summary_refuses_a_value_that_is_not_a_upn(make_context: ContextFactory, cloud: CloudHandle):
    finding = await executor.enrich(
        make_context(), "loganalytics.get_signin_summary", {"upn": "x' or 1==1 //@contoso.com"}
    )
    assert not finding.ok
    assert "not a user principal name" in finding.error
    assert queries(cloud) == []


async def test_ip_context_lists_the_other_accounts_and_firewall_events(make_context: ContextFactory):
    params = {"ip": SPRAY_IP, "knownUpn": "Adele.Vance@contoso.com"}
    finding = await executor.enrich(make_context(), "loganalytics.get_ip_context", params)
    assert finding.ok, finding.error
    data = finding.data
    signins, network = data["signins"], data["network"]
    assert set(signins["accounts"]) == {"adele.vance@contoso.com", "megan.bowen@contoso.com", "alex.wilber@contoso.com"}
    assert sorted(data["otherAccounts"]) == ["alex.wilber@contoso.com", "megan.bowen@contoso.com"]
    assert signins["signIns"] == signins["failures"] > 0 and signins["distinctAccounts"] == 3
    assert network["events"] >= network["denied"] > 0
    assert "3389" in network["destinationPorts"] and network["devices"] == ["Palo Alto Networks"]


async def test_ip_context_of_an_ipv6_address_is_normalised(make_context: ContextFactory, cloud: CloudHandle):
    finding = await executor.enrich(make_context(), "loganalytics.get_ip_context", {"ip": "2001:DB8:0:0::1"})
    assert finding.ok, finding.error
    assert finding.data["signins"]["signIns"] == 0
    assert all("'2001:db8::1'" in q["body"]["query"] for q in queries(cloud))


async def test_host_activity_of_the_attacked_vm(make_context: ContextFactory):
    finding = await executor.enrich(make_context(), "loganalytics.get_host_activity", {"host": "vm-web-01"})
    assert finding.ok, finding.error
    data = finding.data
    assert data["failedLogons"] > 0 and SPRAY_IP in data["sourceIps"]
    assert data["lastHeartbeat"] is not None and data["osTypes"] == ["Linux"]


async def test_account_logons_match_exactly_the_seeded_account(make_context: ContextFactory, cloud: CloudHandle):
    seed_rows(
        cloud,
        "SecurityEvent",
        [
            {"TimeGenerated": "ago(2h)", "Account": "CONTOSO\\svc-backup", "EventID": 4625, "Computer": "dc01",
             "IpAddress": "10.0.0.7"},
            {"TimeGenerated": "ago(1h)", "Account": "contoso\\SVC-BACKUP", "EventID": 4624, "Computer": "dc02",
             "IpAddress": "10.0.0.8"},
            {"TimeGenerated": "ago(1h)", "Account": "CONTOSO\\svc-backup2", "EventID": 4625, "Computer": "dc03"},
        ],
    )  # fmt: skip
    finding = await executor.enrich(
        make_context(), "loganalytics.get_account_logons", {"account": "CONTOSO\\svc-backup"}
    )
    assert finding.ok, finding.error
    data = finding.data
    assert (data["failedLogons"], data["successfulLogons"]) == (1, 1)
    assert sorted(data["computers"]) == ["dc01", "dc02"]  # not dc03: svc-backup2 is another account
    assert sorted(data["accounts"]) == ["CONTOSO\\svc-backup", "contoso\\SVC-BACKUP"]


async def test_the_workspace_must_be_known(make_context: ContextFactory, cloud: CloudHandle):
    finding = await executor.enrich(
        make_context(workspace_id=None), "loganalytics.get_signin_summary", {"upn": "a@b.com"}
    )
    assert not finding.ok and "RIPOSTE_WORKSPACE_ID" in finding.error
    by_name = {"upn": "a@b.com", "workspaceId": "law-sentinel"}
    finding = await executor.enrich(make_context(), "loganalytics.get_signin_summary", by_name)
    assert not finding.ok and "workspace GUID" in finding.error
    other = {"upn": "a@b.com", "workspaceId": "00000000-0000-4000-8000-000000000001"}
    finding = await executor.enrich(make_context(), "loganalytics.get_signin_summary", other)
    assert not finding.ok and "404" in finding.error


async def test_query_errors_carry_the_service_detail(make_context: ContextFactory):
    logs = make_context().azure.logs
    with pytest.raises(AzureError) as raised:
        await logs.query(WORKSPACE_ID, "SigninLogs | where", None)
    assert raised.value.status == 400 and "could not be parsed" in raised.value.message
    with pytest.raises(NotFound):
        await logs.query("00000000-0000-4000-8000-000000000001", "SigninLogs | take 1", None)


async def test_rows_are_typed(make_context: ContextFactory):
    kql = (
        "print Count = 42, Ratio = 0.5, Flag = true, Bag = dynamic({'a': [1, 2]}), When = datetime(2024-05-01), "
        "Id = toguid('6f1c2a9e-1b7d-4c5e-8a2f-0d9e8c7b6a51'), Name = 'x'"
    )
    [row] = await make_context().azure.logs.query(WORKSPACE_ID, kql, None)
    assert row["Count"] == 42 and isinstance(row["Count"], int)
    assert row["Ratio"] == 0.5 and row["Flag"] is True and row["Bag"] == {"a": [1, 2]}
    assert row["When"] == datetime.fromisoformat("2024-05-01T00:00:00+00:00")
    assert row["Id"] == "6f1c2a9e-1b7d-4c5e-8a2f-0d9e8c7b6a51" and row["Name"] == "x"


@pytest.mark.parametrize("retry_after", [1, None])
async def test_queries_absorb_429(make_context: ContextFactory, cloud: CloudHandle, retry_after: int | None):
    throttled = 1 if retry_after else 2  # honouring Retry-After costs a second per 429
    spec: dict[str, Any] = {"match": "POST /v1/workspaces/*/query", "status": 429, "count": throttled}
    if retry_after:
        spec["retryAfter"] = retry_after
    cloud.add_fault(**spec)
    started = time.monotonic()
    finding = await executor.enrich(
        make_context(), "loganalytics.get_signin_summary", {"upn": "adele.vance@contoso.com"}
    )
    assert finding.ok, finding.error
    assert [q["status"] for q in queries(cloud)] == [429] * throttled + [200]
    if retry_after:
        assert time.monotonic() - started >= retry_after


async def test_a_slow_query_is_a_recorded_timeout(make_context: ContextFactory, cloud: CloudHandle):
    cloud.add_fault(match="POST /v1/workspaces/*/query", latency={"fixedMs": 1500})
    started = time.monotonic()
    ctx = make_context(enrichment_timeout_seconds=0.3)
    finding = await executor.enrich(ctx, "loganalytics.get_host_activity", {"host": "vm-web-01"})
    assert not finding.ok and finding.error == "timed out after 0.3 s"
    assert time.monotonic() - started < 1.0
    for _ in range(100):  # let the service finish the abandoned queries before the next test's log starts
        if len(queries(cloud)) == 2:
            break
        await asyncio.sleep(0.1)


def _max_in_flight(entries: list[dict[str, Any]]) -> int:
    edges = sorted(
        [(e["time"], 1) for e in entries] + [(e["time"] + e["durationMs"] / 1000, -1) for e in entries],
        key=lambda edge: (edge[0], edge[1]),
    )
    running = peak = 0
    for _, step in edges:
        running += step
        peak = max(peak, running)
    return peak


@pytest.mark.parametrize("concurrency", [2, 5])
async def test_at_most_the_configured_number_of_queries_run_at_once(
    make_context: ContextFactory, cloud: CloudHandle, concurrency: int
):
    """12 enrichments at once (24 queries), each query held 200 ms by the service, with the service's own
    concurrency limit of 5 enforced: never more than `concurrency` in flight, and never a 429."""
    cloud.admin.post("/limits", json={"preset": "real"}).raise_for_status()
    cloud.add_fault(match="POST /v1/workspaces/*/query", latency={"fixedMs": 200})
    ctx = make_context(loganalytics_concurrency=concurrency)
    findings = await asyncio.gather(
        *(executor.enrich(ctx, "loganalytics.get_ip_context", {"ip": f"198.51.100.{i}"}) for i in range(12))
    )
    assert all(f.ok for f in findings), [f.error for f in findings if not f.ok]
    logged = queries(cloud)
    assert len(logged) == 24 and {q["status"] for q in logged} == {200}
    assert _max_in_flight(logged) == concurrency


async def test_a_step_timeout_ends_a_slow_lookup_as_a_recorded_error(
    make_context: ContextFactory, cloud: CloudHandle
) -> None:
    cloud.admin.post("/faults", json={"match": "POST /v1/*", "latency": {"fixedMs": 1500}}).raise_for_status()
    finding = await executor.enrich(
        make_context(), "loganalytics.get_signin_summary", {"upn": "adele.vance@contoso.com"}, time_limit_s=0.3
    )
    assert not finding.ok and finding.error == "timed out after 0.3 s"
    assert finding.elapsed_ms < 1200
