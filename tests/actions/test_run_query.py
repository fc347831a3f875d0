"""loganalytics.run_query against the emulated Log Analytics (real KQL on the demo tenant's logs), through the real
azure-monitor-query client: named and playbook-written queries, typed parameters and columns, the row and size caps,
the explicit time range, failures and time-outs recorded as findings, and the shared concurrency limit."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from shared.actions import executor
from shared.playbook.loader import PlaybookError, parse_playbook
from tests.actions.conftest import ContextFactory
from tests.actions.test_loganalytics import SPRAY_IP, _max_in_flight, queries
from tests.conftest import CloudHandle

PROBES = """// param ip: ip
// param lookback: timespan
CommonSecurityLog
| where TimeGenerated > ago({lookback})
| where SourceIP == {ip} and DeviceAction == "deny"
| project TimeGenerated, DestinationPort, DeviceAction, SentBytes
| order by TimeGenerated asc"""


async def test_a_named_query_with_typed_parameters(make_context: ContextFactory, cloud: CloudHandle):
    params = {"query": "ip_signins", "parameters": {"ip": SPRAY_IP}, "lookback": "2d"}
    finding = await executor.enrich(make_context(), "loganalytics.run_query", params)
    assert finding.ok, finding.error
    data = finding.data
    assert data["query"] == "ip_signins" and data["lookback"] == "2d"
    assert data["rowCount"] == 1 and not data["truncated"]
    columns = {c["name"]: c["type"] for c in data["columns"]}
    assert columns["SignIns"] == "long" and columns["Accounts"] == "dynamic" and columns["LastSeen"] == "datetime"
    [row] = data["rows"]
    assert row["SignIns"] > 0 and "adele.vance@contoso.com" in row["Accounts"]
    [request] = queries(cloud)
    assert f"IPAddress == '{SPRAY_IP}'" in request["body"]["query"] and "ago(2d)" in request["body"]["query"]
    assert request["body"]["timespan"] == "PT172800.0S"  # the lookback is the service-side range too


async def test_a_playbook_query_capped_in_rows(make_context: ContextFactory, cloud: CloudHandle):
    params = {"kql": PROBES, "parameters": {"ip": SPRAY_IP}, "maxRows": 5}
    finding = await executor.enrich(make_context(), "loganalytics.run_query", params)
    assert finding.ok, finding.error
    data = finding.data
    assert data["query"] == "inline" and data["rowCount"] == 5
    assert data["truncated"] and data["truncatedReason"] == "more than 5 rows"
    assert [c["name"] for c in data["columns"]] == ["TimeGenerated", "DestinationPort", "DeviceAction", "SentBytes"]
    assert all(r["DeviceAction"] == "deny" and isinstance(r["DestinationPort"], int) for r in data["rows"])
    [request] = queries(cloud)
    assert request["body"]["query"].endswith("\n| take 6") and "ago(1d)" in request["body"]["query"]


async def test_a_query_capped_in_size(make_context: ContextFactory):
    params = {"kql": PROBES, "parameters": {"ip": SPRAY_IP}, "maxRows": 1000, "maxBytes": 1000}
    finding = await executor.enrich(make_context(), "loganalytics.run_query", params)
    assert finding.ok, finding.error
    assert finding.data["truncatedReason"] == "more than 1000 bytes"
    assert 0 < finding.data["rowCount"] < 30


async def test_a_complete_answer_is_not_truncated(make_context: ContextFactory):
    params = {"kql": PROBES, "parameters": {"ip": "192.0.2.250"}}
    finding = await executor.enrich(make_context(), "loganalytics.run_query", params)
    assert finding.ok, finding.error
    assert finding.data["rows"] == [] and not finding.data["truncated"]
    assert len(finding.data["columns"]) == 4  # an empty answer still says what it would hold


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"kql": PROBES, "parameters": {"ip": "203.0.113.66' or 1==1 //"}}, "not an IPv4 or IPv6 address"),
        ({"kql": PROBES, "parameters": {"ip": SPRAY_IP, "host": "x"}}, "not a parameter of query inline"),
        ({"kql": PROBES}, "required by query inline"),
        ({"query": "no_such_query"}, "no named query 'no_such_query'"),
        ({}, "give exactly one of query"),
        ({"query": "ip_signins", "kql": PROBES}, "give exactly one of query"),
        ({"kql": "SigninLogs | where UserPrincipalName == {upn}"}, "is not a declared parameter"),
        ({"query": "ip_signins", "parameters": {"ip": SPRAY_IP}, "lookback": "1d) or (1d"}, "Kusto timespan"),
        ({"query": "ip_signins", "parameters": {"ip": SPRAY_IP}, "maxRows": 5000}, "less than or equal to 1000"),
    ],
)
async def test_bad_parameters_are_refused_before_any_query(
    make_context: ContextFactory, cloud: CloudHandle, params: dict[str, Any], message: str
):
    finding = await executor.enrich(make_context(), "loganalytics.run_query", params)
    assert not finding.ok and message in finding.error, finding.error
    assert queries(cloud) == []


async def test_a_query_the_service_refuses_is_a_recorded_failure(make_context: ContextFactory):
    finding = await executor.enrich(make_context(), "loganalytics.run_query", {"kql": "SigninLogs | where"})
    assert not finding.ok and "400" in finding.error and not finding.retryable


async def test_a_slow_query_is_a_recorded_timeout(make_context: ContextFactory, cloud: CloudHandle):
    cloud.add_fault(match="POST /v1/workspaces/*/query", latency={"fixedMs": 1500})
    ctx = make_context(enrichment_timeout_seconds=0.3)
    params = {"query": "ip_signins", "parameters": {"ip": SPRAY_IP}}
    finding = await executor.enrich(ctx, "loganalytics.run_query", params)
    assert not finding.ok and finding.error == "timed out after 0.3 s" and finding.retryable
    for _ in range(50):  # let the service finish the abandoned query before the next test's log starts
        if queries(cloud):
            break
        await asyncio.sleep(0.1)


async def test_queries_share_the_concurrency_limit(make_context: ContextFactory, cloud: CloudHandle):
    cloud.admin.post("/limits", json={"preset": "real"}).raise_for_status()
    cloud.add_fault(match="POST /v1/workspaces/*/query", latency={"fixedMs": 200})
    ctx = make_context(loganalytics_concurrency=2)
    params = {"query": "ip_signins", "parameters": {"ip": SPRAY_IP}}
    findings = await asyncio.gather(*(executor.enrich(ctx, "loganalytics.run_query", params) for _ in range(6)))
    assert all(f.ok for f in findings), [f.error for f in findings if not f.ok]
    assert _max_in_flight(queries(cloud)) == 2


PLAYBOOK = """name: hunt
enrich:
  - id: probes
    uses: loganalytics.run_query
    for_each: Ip
    with:
      kql: {kql}
      parameters: {{ip: entity.address, lookback: '"2d"'}}
actions:
  - {{id: note, uses: sentinel.add_comment, with: {{text: '"x"'}}}}
"""


def test_playbook_query_text_must_be_written_in_the_playbook() -> None:
    written = PLAYBOOK.format(kql="'''" + PROBES.replace("\n", "\\n") + "'''")
    playbook = parse_playbook(written, "hunt.yaml")
    assert playbook.enrich[0].with_["parameters"] == {"ip": "entity.address", "lookback": '"2d"'}
    computed = PLAYBOOK.format(kql='\'"CommonSecurityLog | where SourceIP == \\x27" + entity.address + "\\x27"\'')
    with pytest.raises(PlaybookError, match="must be text written in the playbook"):
        parse_playbook(computed, "hunt.yaml")
    undeclared = PLAYBOOK.format(kql="'\"SigninLogs | where IPAddress == {ip}\"'")
    with pytest.raises(PlaybookError, match="is not a declared parameter"):
        parse_playbook(undeclared, "hunt.yaml")
    bad_value = PLAYBOOK.format(kql="x").replace("entity.address", "entity.address +")
    with pytest.raises(PlaybookError, match="cannot parse"):
        parse_playbook(bad_value, "hunt.yaml")
