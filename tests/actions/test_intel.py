"""loganalytics.lookup_threat_intel and loganalytics.lookup_watchlist against the emulated Log Analytics (real KQL on
the demo tenant's logs: both threat intelligence tables, and watchlists through an emulated _GetWatchlist), through
the real azure-monitor-query client: the findings' shape, what must not match, failures and time-outs."""

from __future__ import annotations

import asyncio

import pytest

from local.cloud.loggen.intel import PAYLOAD_SHA256, PHISHING_DOMAIN
from shared.actions import executor
from tests.actions.conftest import ADELE, BREAKGLASS, ContextFactory
from tests.actions.test_loganalytics import SPRAY_IP, queries
from tests.conftest import CloudHandle


async def test_the_attacker_ip_is_in_both_threat_intelligence_tables(make_context: ContextFactory):
    finding = await executor.enrich(make_context(), "loganalytics.lookup_threat_intel", {"ip": SPRAY_IP})
    assert finding.ok, finding.error
    data = finding.data
    assert data["matched"] and data["kind"] == "ip" and data["indicator"] == SPRAY_IP
    assert [m["table"] for m in data["matches"]] == ["ThreatIntelIndicators", "ThreatIntelligenceIndicator"]
    stix, legacy = data["matches"]
    # The latest version of the STIX indicator (an older one carries half the confidence)
    assert stix["confidence"] == data["maxConfidence"] == 90 and stix["tlp"] == "amber"
    assert stix["indicatorId"].startswith("indicator--") and stix["threatTypes"] == "malicious-activity"
    assert legacy["confidence"] == 80 and legacy["threatTypes"] == "Botnet" and legacy["validUntil"]


@pytest.mark.parametrize(
    ("params", "description"),
    [
        ({"domain": PHISHING_DOMAIN.upper()}, "Credential phishing site imitating Contoso sign-in"),
        ({"fileHash": PAYLOAD_SHA256.upper()}, "Loader dropped after web server compromise"),
    ],
)
async def test_domains_and_hashes_match_ignoring_case(make_context: ContextFactory, params, description):
    finding = await executor.enrich(make_context(), "loganalytics.lookup_threat_intel", params)
    assert finding.ok, finding.error
    [match] = finding.data["matches"]
    assert match["description"] == description


@pytest.mark.parametrize(
    "ip",
    [
        "198.51.100.201",  # its indicator expired two days ago
        "203.0.113.101",  # its indicator was deactivated
        "192.0.2.10",  # never named
    ],
)
async def test_expired_deactivated_and_unknown_indicators_do_not_match(make_context: ContextFactory, ip: str):
    finding = await executor.enrich(make_context(), "loganalytics.lookup_threat_intel", {"ip": ip})
    assert finding.ok, finding.error
    assert finding.data == {**finding.data, "matched": False, "matches": [], "maxConfidence": None}


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({}, "give exactly one of"),
        ({"ip": SPRAY_IP, "domain": PHISHING_DOMAIN}, "give exactly one of"),
        ({"ip": "203.0.113.66/32"}, "not an IPv4 or IPv6 address"),
        ({"domain": "evil.example' or 1==1"}, "not a host name"),
        ({"fileHash": "abc"}, "not an MD5, SHA1 or SHA256"),
        ({"ip": SPRAY_IP, "lookback": "forever"}, "Kusto timespan"),
    ],
)
async def test_threat_intel_refuses_bad_values_before_any_query(
    make_context: ContextFactory, cloud: CloudHandle, params, message
):
    finding = await executor.enrich(make_context(), "loganalytics.lookup_threat_intel", params)
    assert not finding.ok and message in finding.error, finding.error
    assert queries(cloud) == []


async def test_the_victim_is_a_vip_and_a_former_vip_is_not(make_context: ContextFactory):
    ctx = make_context()
    vip = await executor.enrich(
        ctx, "loganalytics.lookup_watchlist", {"alias": "VIPUsers", "key": "Adele.Vance@contoso.com"}
    )
    assert vip.ok, vip.error
    assert vip.data["matched"] and vip.data["alias"] == "VIPUsers"
    assert vip.data["items"] == [
        {"UserPrincipalName": "adele.vance@contoso.com", "Name": "Adele Vance", "Reason": "Finance approver"}
    ]
    former = await executor.enrich(
        ctx, "loganalytics.lookup_watchlist", {"alias": "VIPUsers", "key": "megan.bowen@contoso.com"}
    )
    assert former.ok and not former.data["matched"] and former.data["items"] == []  # her item was deleted
    protected = await executor.enrich(
        ctx, "loganalytics.lookup_watchlist", {"alias": "ProtectedAccounts", "key": "breakglass-01@contoso.com"}
    )
    assert protected.ok and protected.data["matched"]
    unknown = await executor.enrich(ctx, "loganalytics.lookup_watchlist", {"alias": "NoSuchList", "key": "x"})
    assert unknown.ok and not unknown.data["matched"]


async def test_a_watchlist_query_runs_without_a_time_range(make_context: ContextFactory, cloud: CloudHandle):
    params = {"alias": "TrustedNetworks", "key": "192.0.2.10"}
    finding = await executor.enrich(make_context(), "loganalytics.lookup_watchlist", params)
    assert finding.ok and finding.data["items"][0]["Site"] == "Amsterdam office"
    [request] = queries(cloud)
    assert "_GetWatchlist('TrustedNetworks')" in request["body"]["query"]
    assert request["body"]["timespan"] is None  # items are as old as the list, not as the lookback


@pytest.mark.parametrize(
    "params",
    [
        {"alias": "VIP Users", "key": "x"},
        {"alias": "VIPUsers') | union (SigninLogs", "key": "x"},
        {"alias": "VIPUsers"},
    ],
)
async def test_a_watchlist_alias_is_checked_before_any_query(make_context: ContextFactory, cloud: CloudHandle, params):
    finding = await executor.enrich(make_context(), "loganalytics.lookup_watchlist", params)
    assert not finding.ok
    assert queries(cloud) == []


@pytest.mark.parametrize(
    ("action", "params"),
    [
        ("loganalytics.lookup_threat_intel", {"ip": SPRAY_IP}),
        ("loganalytics.lookup_watchlist", {"alias": "VIPUsers", "key": "adele.vance@contoso.com"}),
    ],
)
async def test_a_failing_service_and_a_slow_one_are_recorded_findings(
    make_context: ContextFactory, cloud: CloudHandle, action: str, params
):
    cloud.add_fault(match="POST /v1/workspaces/*/query", status=500, count=10)
    failed = await executor.enrich(make_context(max_retries=0), action, params)
    assert not failed.ok and "500" in failed.error and failed.retryable
    cloud.admin.delete("/faults").raise_for_status()
    cloud.add_fault(match="POST /v1/workspaces/*/query", latency={"fixedMs": 1500})
    slow = await executor.enrich(make_context(), action, params, time_limit_s=0.3)
    assert not slow.ok and slow.error == "timed out after 0.3 s"
    await asyncio.sleep(1.3)  # the abandoned query ends before the next test's request log starts


async def test_a_protected_accounts_watchlist_is_a_guardrail(make_context: ContextFactory, cloud: CloudHandle):
    ctx = make_context(protected_users=(), protected_watchlist="ProtectedAccounts")
    guarded = await executor.respond(ctx, "entra.disable_user", {"aadUserId": BREAKGLASS}, key="wl-1")
    assert guarded.status.value == "skipped"
    assert guarded.reason == (
        "guardrail: user breakglass-01@contoso.com is on the ProtectedAccounts watchlist (RIPOSTE_PROTECTED_WATCHLIST)"
    )
    dry = make_context(protected_users=(), protected_watchlist="ProtectedAccounts", dry_run=True)
    other = await executor.respond(dry, "entra.disable_user", {"aadUserId": ADELE}, key="wl-2")
    assert other.status.value == "dry_run"  # adele is not on it: the action goes ahead
    assert not [w for w in cloud.changes() if w["service"] == "graph"]


async def test_an_unreadable_protected_watchlist_stops_the_action(make_context: ContextFactory, cloud: CloudHandle):
    cloud.add_fault(match="POST /v1/workspaces/*/query", status=503, count=20)
    ctx = make_context(protected_users=(), protected_watchlist="ProtectedAccounts", max_retries=0)
    outcome = await executor.respond(ctx, "entra.disable_user", {"aadUserId": ADELE}, key="wl-3")
    assert outcome.status.value == "failed" and outcome.retryable and "503" in outcome.reason
    assert not [w for w in cloud.changes() if w["service"] == "graph"]
