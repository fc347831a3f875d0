"""entra.list_signins, identity.list_risky_signins and identity.get_risky_service_principal against the emulated
Microsoft Graph (the sign-in log is the demo workspace's SigninLogs in Graph's shape) through the real msgraph-sdk
client: the findings, paging within the window, refusals, failures and time-outs."""

from __future__ import annotations

import asyncio
from typing import Any
from urllib.parse import unquote

import pytest

from shared.actions import executor
from tests.actions.conftest import ADELE, LEE, ContextFactory
from tests.conftest import CloudHandle

SPRAY_IP = "203.0.113.66"
CI_DEPLOY = "7d3e9a41-2c5b-4f8e-9a6d-1b0c2e3f4a51"


def signin_requests(cloud: CloudHandle) -> list[dict[str, Any]]:
    return [r for r in cloud.requests(service="graph") if "/auditlogs/signins" in r["path"].lower()]


async def test_the_sprayed_users_signins(make_context: ContextFactory, cloud: CloudHandle):
    params = {"aadUserId": ADELE, "lookbackHours": 24, "maxSignins": 10}
    finding = await executor.enrich(make_context(), "entra.list_signins", params)
    assert finding.ok, finding.error
    data = finding.data
    assert data["count"] > data["failures"] > 10 and SPRAY_IP in data["distinctIps"] and "RU" in data["countries"]
    assert data["highestRisk"] == "high" and len(data["signins"]) == 10 and data["truncated"]
    times = [s["createdDateTime"] for s in data["signins"]]
    assert times == sorted(times, reverse=True)  # newest first
    [request] = signin_requests(cloud)
    assert f"userId eq '{ADELE}' and createdDateTime ge " in unquote(request["query"])


async def test_only_the_risky_signins(make_context: ContextFactory):
    finding = await executor.enrich(make_context(), "identity.list_risky_signins", {"aadUserId": ADELE})
    assert finding.ok, finding.error
    signins = finding.data["signins"]
    assert signins and all(s["riskLevelDuringSignIn"] in ("low", "medium", "high") or s["riskState"] in
                           ("atRisk", "confirmedCompromised") for s in signins)  # fmt: skip
    assert any("anonymizedIPAddress" in s["riskEventTypes"] for s in signins)


async def test_an_admin_without_risky_signins(make_context: ContextFactory):
    finding = await executor.enrich(make_context(), "identity.list_risky_signins", {"aadUserId": LEE})
    assert finding.ok and finding.data["count"] == 0 and finding.data["highestRisk"] == "none"


async def test_the_risky_service_principal(make_context: ContextFactory):
    ctx = make_context()
    found = await executor.enrich(ctx, "identity.get_risky_service_principal", {"servicePrincipalId": CI_DEPLOY})
    assert found.ok, found.error
    assert found.data == {**found.data, "found": True, "displayName": "ci-deploy-prod", "riskLevel": "high",
                          "riskState": "atRisk", "atRisk": True}  # fmt: skip
    unknown = await executor.enrich(ctx, "identity.get_risky_service_principal", {"servicePrincipalId": ADELE})
    assert unknown.ok and not unknown.data["found"] and unknown.data["riskLevel"] == "none"


@pytest.mark.parametrize(
    ("action", "params", "message"),
    [
        ("entra.list_signins", {"aadUserId": "adele' or userId ne '"}, "aadUserId"),
        ("entra.list_signins", {"aadUserId": ADELE, "lookbackHours": 24 * 31}, "lookbackHours"),
        ("identity.get_risky_service_principal", {"servicePrincipalId": "ci-deploy"}, "servicePrincipalId"),
    ],
)
async def test_bad_values_are_refused_before_any_request(
    make_context: ContextFactory, cloud: CloudHandle, action, params, message
):
    cloud.clear_requests()
    finding = await executor.enrich(make_context(), action, params)
    assert not finding.ok and message in finding.error, finding.error
    assert [r for r in cloud.requests(service="graph") if "/v1.0/" in r["path"]] == []


async def test_without_the_permission_it_is_a_recorded_failure(make_context: ContextFactory, cloud: CloudHandle):
    doc = cloud.tenant()
    doc["tenant"]["riposteIdentity"]["graphPermissions"].remove("AuditLog.Read.All")
    cloud.admin.put("/tenant", json=doc).raise_for_status()
    finding = await executor.enrich(make_context(), "entra.list_signins", {"aadUserId": ADELE})
    assert not finding.ok and "403" in finding.error and not finding.retryable


async def test_a_slow_graph_is_a_recorded_timeout(make_context: ContextFactory, cloud: CloudHandle):
    cloud.add_fault(match="GET /v1.0/auditLogs/*", latency={"fixedMs": 1500})
    finding = await executor.enrich(make_context(), "entra.list_signins", {"aadUserId": ADELE}, time_limit_s=0.3)
    assert not finding.ok and finding.error == "timed out after 0.3 s"
    await asyncio.sleep(1.3)
