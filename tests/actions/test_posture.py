"""defender.get_resource_posture and defender.get_secure_score against the emulated Defender for Cloud
(Microsoft.Security) through the real azure-mgmt-security client: the findings, refusals, failures and time-outs."""

from __future__ import annotations

import asyncio

import pytest

from shared.actions import executor
from tests.actions.conftest import CAPTURE_STORAGE, SUBSCRIPTION, VM_DEV, VM_WEB, ContextFactory
from tests.conftest import CloudHandle


async def test_the_web_servers_open_recommendations_most_severe_first(make_context: ContextFactory):
    finding = await executor.enrich(make_context(), "defender.get_resource_posture", {"resourceId": VM_WEB})
    assert finding.ok, finding.error
    data = finding.data
    assert (data["assessed"], data["healthy"], data["unhealthy"]) == (5, 1, 4)
    assert data["unhealthyBySeverity"] == {"High": 2, "Medium": 1, "Low": 1}
    severities = [r["severity"] for r in data["recommendations"]]
    assert severities == ["High", "High", "Medium", "Low"]
    [jit] = [r for r in data["recommendations"] if r["displayName"].startswith("Management ports of virtual machines")]
    assert jit["description"] == "SSH (22) and RDP (3389) are open to the internet" and jit["categories"] == [
        "Networking"
    ]


async def test_a_storage_account_and_a_resource_without_assessments(make_context: ContextFactory):
    ctx = make_context()
    storage = await executor.enrich(ctx, "defender.get_resource_posture", {"resourceId": CAPTURE_STORAGE})
    assert storage.ok and storage.data["unhealthyBySeverity"] == {"High": 0, "Medium": 1, "Low": 0}
    quiet = await executor.enrich(ctx, "defender.get_resource_posture", {"resourceId": VM_DEV})
    assert quiet.ok and quiet.data["assessed"] == 0 and quiet.data["recommendations"] == []


async def test_the_secure_score_by_control(make_context: ContextFactory):
    finding = await executor.enrich(make_context(), "defender.get_secure_score", {})
    assert finding.ok, finding.error
    data = finding.data
    assert (data["subscriptionId"], data["current"], data["max"]) == (SUBSCRIPTION, 19.5, 30)
    assert data["percentage"] == pytest.approx(0.65)
    gains = [c["potentialGain"] for c in data["controls"]]
    assert gains == sorted(gains, reverse=True) and data["controls"][0]["displayName"] == "Secure management ports"
    assert sum(c["current"] for c in data["controls"]) == pytest.approx(data["current"])


@pytest.mark.parametrize(
    ("action", "params", "message"),
    [
        ("defender.get_resource_posture", {"resourceId": "vm-web-01"}, "is not an Azure resource id"),
        ("defender.get_resource_posture", {"resourceId": VM_WEB + "/../../x"}, "is not an Azure resource id"),
        ("defender.get_secure_score", {"subscriptionId": "contoso"}, "subscriptionId"),
    ],
)
async def test_bad_values_are_refused_before_any_request(
    make_context: ContextFactory, cloud: CloudHandle, action, params, message
):
    cloud.clear_requests()
    finding = await executor.enrich(make_context(), action, params)
    assert not finding.ok and message in finding.error, finding.error
    assert [r for r in cloud.requests(service="arm")] == []


async def test_an_unknown_resource_and_a_failing_service_are_recorded(make_context: ContextFactory, cloud: CloudHandle):
    missing = VM_WEB.replace("vm-web-01", "vm-gone")
    finding = await executor.enrich(make_context(), "defender.get_resource_posture", {"resourceId": missing})
    assert not finding.ok and "404" in finding.error and not finding.retryable
    cloud.add_fault(match="GET /subscriptions/*/providers/Microsoft.Security/*", status=503, count=10)
    failed = await executor.enrich(make_context(max_retries=0), "defender.get_secure_score", {})
    assert not failed.ok and "503" in failed.error and failed.retryable


async def test_a_slow_service_is_a_recorded_timeout(make_context: ContextFactory, cloud: CloudHandle):
    cloud.add_fault(match="GET /subscriptions/*/providers/Microsoft.Security/*", latency={"fixedMs": 1500})
    finding = await executor.enrich(make_context(), "defender.get_secure_score", {}, time_limit_s=0.3)
    assert not finding.ok and finding.error == "timed out after 0.3 s"
    await asyncio.sleep(1.3)
