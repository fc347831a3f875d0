"""loganalytics.get_ueba_profile, list_related_alerts and get_flow_summary against the emulated Log Analytics (real
KQL over the demo tenant's IdentityInfo, BehaviorAnalytics, SecurityAlert/SecurityIncident and both traffic
analytics tables) through the real azure-monitor-query client: the findings, failures and time-outs."""

from __future__ import annotations

import asyncio

import pytest

from shared.actions import executor
from tests.actions.conftest import ADELE, ContextFactory
from tests.actions.test_loganalytics import SPRAY_IP, queries
from tests.conftest import CloudHandle

INCIDENT_1042 = (
    "/subscriptions/8c2b5f0e-3d4a-4b6c-9a1e-7f2d3c4b5a60/resourceGroups/rg-soc/providers/"
    "Microsoft.OperationalInsights/workspaces/law-sentinel/providers/Microsoft.SecurityInsights/Incidents/"
    "3f6c2a9e-1b7d-4c5e-8a2f-0d9e8c7b6a51"
)


async def test_the_victims_ueba_profile(make_context: ContextFactory):
    finding = await executor.enrich(make_context(), "loganalytics.get_ueba_profile", {"upn": "Adele.Vance@contoso.com"})
    assert finding.ok, finding.error
    data = finding.data
    assert data["found"] and data["displayName"] == "Adele Vance" and data["tags"] == ["VIP"]
    assert (data["blastRadius"], data["investigationPriority"], data["isMfaRegistered"]) == ("Medium", 8, False)
    assert data["groups"] == ["All Staff", "Finance Approvers"] and data["assignedRoles"] == []
    assert data["maxActivityPriority"] == 9
    first, second = data["unusualActivities"]
    assert first["actionType"] == "Sign-in" and "FirstTimeUserConnectedFromCountry" in first["insights"]
    assert second["actionType"] == "User registered security info" and second["investigationPriority"] == 6


async def test_an_account_ueba_does_not_know(make_context: ContextFactory):
    finding = await executor.enrich(make_context(), "loganalytics.get_ueba_profile", {"upn": "nobody@contoso.com"})
    assert finding.ok, finding.error
    assert not finding.data["found"] and finding.data["tags"] == [] and finding.data["unusualActivities"] == []


async def test_an_admin_has_a_high_blast_radius_and_nothing_unusual(make_context: ContextFactory):
    finding = await executor.enrich(make_context(), "loganalytics.get_ueba_profile", {"upn": "lee.gu@contoso.com"})
    assert finding.ok and finding.data["blastRadius"] == "High"
    assert finding.data["assignedRoles"] == ["Global Administrator"] and finding.data["maxActivityPriority"] == 0


async def test_related_alerts_of_the_attacker_ip(make_context: ContextFactory):
    finding = await executor.enrich(make_context(), "loganalytics.list_related_alerts", {"ip": SPRAY_IP})
    assert finding.ok, finding.error
    data = finding.data
    assert data["alerts"] == len(data["items"]) >= 1 and data["incidents"] >= 1
    assert any(i["incidentTitle"] == "Connection from known malicious IP 203.0.113.66" for i in data["items"])


async def test_related_alerts_leave_out_the_runs_own_incident(make_context: ContextFactory):
    params = {"aadUserId": ADELE}
    everything = await executor.enrich(make_context(), "loganalytics.list_related_alerts", params)
    assert everything.ok and any(i["incidentNumber"] == 1042 for i in everything.data["items"])
    ctx = make_context()
    ctx.incident_id = INCIDENT_1042
    others = await executor.enrich(ctx, "loganalytics.list_related_alerts", params)
    assert others.ok and all(i["incidentNumber"] != 1042 for i in others.data["items"])
    assert others.data["alerts"] < everything.data["alerts"]


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({}, "give exactly one of"),
        ({"ip": SPRAY_IP, "host": "vm-web-01"}, "give exactly one of"),
        ({"ip": "not-an-ip"}, "not an IPv4 or IPv6 address"),
        ({"aadUserId": "adele"}, "not a GUID"),
        ({"host": "vm web 01"}, "not a host name"),
    ],
)
async def test_related_alerts_refuse_bad_values(make_context: ContextFactory, cloud: CloudHandle, params, message):
    finding = await executor.enrich(make_context(), "loganalytics.list_related_alerts", params)
    assert not finding.ok and message in finding.error, finding.error
    assert queries(cloud) == []


async def test_flows_of_the_compromised_vm_show_it_talking_to_the_attacker(make_context: ContextFactory):
    finding = await executor.enrich(make_context(), "loganalytics.get_flow_summary", {"vm": "vm-web-01"})
    assert finding.ok, finding.error
    data = finding.data
    assert data["maliciousPeers"] == [SPRAY_IP]
    attacker = data["topPeers"][0]
    assert attacker["peer"] == SPRAY_IP and attacker["outbound"] and attacker["inbound"]
    assert attacker["denied"] == 48 and attacker["allowed"] == 10  # knocking (classic table), calling out (VNet)
    assert attacker["ports"] == [22, 3389, 4444] and attacker["bytesOut"] > 20_000_000
    assert data["peers"] == 8 and len(data["topPeers"]) == 8
    assert data["deniedFlows"] == 48 and data["bytesOut"] >= attacker["bytesOut"]


async def test_flows_of_the_attacker_ip_name_the_vm(make_context: ContextFactory):
    finding = await executor.enrich(make_context(), "loganalytics.get_flow_summary", {"ip": SPRAY_IP, "top": 1})
    assert finding.ok, finding.error
    [vm] = finding.data["topPeers"]
    assert vm["peer"] == "rg-prod-web/vm-web-01" and vm["malicious"]


async def test_flows_of_a_quiet_address_are_empty(make_context: ContextFactory):
    finding = await executor.enrich(make_context(), "loganalytics.get_flow_summary", {"ip": "192.0.2.250"})
    assert finding.ok and finding.data["peers"] == 0 and finding.data["topPeers"] == []


@pytest.mark.parametrize(
    ("action", "params"),
    [
        ("loganalytics.get_ueba_profile", {"upn": "adele.vance@contoso.com"}),
        ("loganalytics.list_related_alerts", {"ip": SPRAY_IP}),
        ("loganalytics.get_flow_summary", {"vm": "vm-web-01"}),
    ],
)
async def test_a_failing_service_and_a_slow_one_are_recorded_findings(
    make_context: ContextFactory, cloud: CloudHandle, action: str, params
):
    cloud.add_fault(match="POST /v1/workspaces/*/query", status=503, count=10)
    failed = await executor.enrich(make_context(max_retries=0), action, params)
    assert not failed.ok and "503" in failed.error and failed.retryable
    cloud.admin.delete("/faults").raise_for_status()
    cloud.add_fault(match="POST /v1/workspaces/*/query", latency={"fixedMs": 1500})
    slow = await executor.enrich(make_context(), action, params, time_limit_s=0.3)
    assert not slow.ok and slow.error == "timed out after 0.3 s"
    await asyncio.sleep(1.3)  # the abandoned queries end before the next test's request log starts
