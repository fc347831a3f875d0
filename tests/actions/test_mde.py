"""Defender for Endpoint actions against the emulated API, through the adapter's azure-core pipeline: device
resolution from a Host entity, machine actions with their state transitions, exact undo, dry runs, guardrails."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from shared.actions import executor
from shared.actions.context import MemoryLedger
from shared.actions.model import Status
from tests.actions.conftest import SUBSCRIPTION, VM_WEB
from tests.conftest import CloudHandle

WEB = "4f3e2d1c0b0a09f8e7d6c5b4a3928170f6e5d4c3"
LAPTOP = "9a8b7c6d5e4f30211f2e3d4c5b6a79880a1b2c3d"
LAPTOP_AAD = "3d2c1b0a-9f8e-4d7c-8b6a-5f4e3d2c1b0a"
FILE_SERVER = "0c1d2e3f4a5b6c7d8e9f0a1b2c3d4e5f6a7b8c9d"
DC = "7e6d5c4b3a2918f7e6d5c4b3a2918f7e6d5c4b3a"


def actions_of(cloud: CloudHandle, device: str) -> list[dict[str, Any]]:
    return [a for a in cloud.tenant()["mde"]["machineActions"] if a["machineId"] == device]


def mde_writes(cloud: CloudHandle) -> list[str]:
    return [r["path"].rsplit("/", 1)[-1] for r in cloud.requests(service="mde") if r["method"] == "POST"]


async def wait_done(ctx: Any, action_id: str) -> dict[str, Any]:
    for _ in range(60):
        finding = await executor.enrich(ctx, "mde.get_machine_action", {"machine_action_id": action_id})
        assert finding.ok, finding.error
        if finding.data["done"]:
            return finding.data
        await asyncio.sleep(0.1)
    raise AssertionError("the machine action never finished")


# ---- resolution and mde.get_device ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "host",
    [
        {"mdeDeviceId": LAPTOP.upper()},
        {"aadDeviceId": LAPTOP_AAD},
        {"hostName": "ws-adele-01", "dnsDomain": "contoso.com"},
        {"hostName": "WS-ADELE-01"},
        {"fqdn": "ws-adele-01.contoso.com", "azureId": None},
    ],
    ids=["mde-id", "entra-device-id", "host-and-domain", "short-name", "fqdn"],
)
async def test_a_host_entity_resolves_to_its_device_by_any_id(cloud, make_context, host):
    finding = await executor.enrich(make_context(), "mde.get_device", {"host": host})

    assert finding.ok, finding.error
    data = finding.data
    assert (data["id"], data["computerDnsName"], data["riskScore"]) == (LAPTOP, "ws-adele-01.contoso.com", "High")
    assert (data["isServer"], data["isolated"], data["appRestricted"]) == (False, False, False)
    assert [u["accountName"] for u in data["logonUsers"]] == ["adele.vance"]


async def test_an_azure_vm_resolves_through_vm_metadata_not_by_name(cloud, make_context):
    finding = await executor.enrich(make_context(), "mde.get_device", {"host": {"azureId": VM_WEB}})
    assert finding.ok, finding.error
    assert (finding.data["id"], finding.data["azureResourceId"], finding.data["isServer"]) == (WEB, VM_WEB, True)

    # Another VM of the same name in another resource group is not this device.
    other = VM_WEB.replace("rg-prod-web", "rg-dev")
    missing = await executor.enrich(make_context(), "mde.get_device", {"host": {"azureId": other}})
    assert not missing.ok and "no Defender for Endpoint device has Azure resource id" in missing.error


async def test_resolution_refuses_to_guess(cloud, make_context):
    doc = cloud.tenant()
    twin = dict(doc["mde"]["machines"][1], id="1" * 40, aadDeviceId=None)
    doc["mde"]["machines"].append(twin)
    cloud.admin.put("/tenant", json=doc).raise_for_status()

    ambiguous = await executor.enrich(make_context(), "mde.get_device", {"host": {"hostName": "ws-adele-01"}})
    assert not ambiguous.ok and "2 Defender for Endpoint devices" in ambiguous.error
    unknown = await executor.enrich(make_context(), "mde.get_device", {"host": {"hostName": "nowhere"}})
    assert not unknown.ok and "no Defender for Endpoint device has the name nowhere" in unknown.error
    nothing = await executor.enrich(make_context(), "mde.get_device", {"host": {"osFamily": "Windows"}})
    assert not nothing.ok and "names no device" in nothing.error
    injection = await executor.enrich(make_context(), "mde.get_device", {"host": {"hostName": "x' or 1 eq 1"}})
    assert not injection.ok and "must be a host name" in injection.error
    assert not [r for r in cloud.requests(service="mde") if "or 1 eq 1" in r["query"]]


# ---- isolation ------------------------------------------------------------------------------------------------------


async def test_isolate_records_not_isolated_and_undo_releases(cloud, make_context):
    ctx = make_context(run_id="run-1")
    outcome = await executor.respond(
        ctx, "mde.isolate_device", {"host": {"mdeDeviceId": LAPTOP}, "isolation_type": "Selective"}, key="run-1:iso"
    )

    assert outcome.status is Status.DONE, outcome.reason
    assert outcome.prior == {"isolated": False, "isolationScope": None}
    assert outcome.result["status"] == "Pending" and outcome.result["started"] is True
    [action] = actions_of(cloud, LAPTOP)
    assert (action["type"], action["scope"]) == ("Isolate", "Selective")
    assert "[run-1:iso]" in action["requestorComment"]
    done = await wait_done(ctx, outcome.result["machineActionId"])
    assert done["succeeded"] is True
    profile = await executor.enrich(ctx, "mde.get_device", {"host": {"mdeDeviceId": LAPTOP}})
    assert (profile.data["isolated"], profile.data["isolationScope"]) == (True, "Selective")

    # A replay reports the first outcome and starts nothing.
    again = await executor.respond(ctx, "mde.isolate_device", {"host": {"mdeDeviceId": LAPTOP}}, key="run-1:iso")
    assert again == outcome and len(actions_of(cloud, LAPTOP)) == 1

    undone = await executor.undo(ctx, outcome)
    assert undone.status is Status.UNDONE, undone.reason
    await wait_done(ctx, undone.result["machineActionId"])
    profile = await executor.enrich(ctx, "mde.get_device", {"host": {"mdeDeviceId": LAPTOP}})
    assert profile.data["isolated"] is False
    assert [a["type"] for a in actions_of(cloud, LAPTOP)] == ["Isolate", "Unisolate"]


async def test_a_device_isolated_before_stays_isolated(cloud, make_context):
    ctx = make_context()
    outcome = await executor.respond(ctx, "mde.isolate_device", {"host": {"mdeDeviceId": FILE_SERVER}}, key="k")

    assert outcome.status is Status.ALREADY_DONE
    assert outcome.reason == "the device is already isolated (Full)"
    assert (await executor.undo(ctx, outcome)).status is Status.SKIPPED
    assert mde_writes(cloud) == []


async def test_dry_run_writes_nothing_and_reports_the_permissions(cloud, make_context):
    from shared.actions.permissions import IdentityPermissions

    ctx = make_context(dry_run=True)
    ctx.permissions = IdentityPermissions(ctx.azure)
    outcome = await executor.respond(ctx, "mde.isolate_device", {"host": {"azureId": VM_WEB}}, key="k")

    assert outcome.status is Status.DRY_RUN and outcome.reason == "would change"
    held = {c.permission.name: c.held for c in outcome.permissions}
    assert held == {"Machine.Isolate": True, "Machine.Read.All": True}
    assert mde_writes(cloud) == []


async def test_guardrails_protect_tagged_devices_and_protected_vms(cloud, make_context):
    tagged = await executor.respond(make_context(), "mde.isolate_device", {"host": {"mdeDeviceId": DC}}, key="k1")
    assert tagged.status is Status.SKIPPED and "riposte-protected=true" in tagged.reason

    prefix = f"/subscriptions/{SUBSCRIPTION}/resourceGroups/rg-prod-web"
    ctx = make_context(protected_resource_prefixes=(prefix,))
    protected = await executor.respond(ctx, "mde.isolate_device", {"host": {"mdeDeviceId": WEB}}, key="k2")
    assert protected.status is Status.SKIPPED and "protected prefix" in protected.reason
    assert mde_writes(cloud) == []


async def test_a_lost_response_is_not_a_second_isolation(cloud, make_context):
    ctx = make_context(run_id="run-2", max_retries=2)
    cloud.add_fault(match="POST */isolate", status=503, count=1, after=True)
    failed = await executor.respond(ctx, "mde.isolate_device", {"host": {"mdeDeviceId": LAPTOP}}, key="run-2:iso")
    # the 503 came after the action was created: a POST is not retried on it
    assert failed.status is Status.FAILED and failed.retryable
    assert len(actions_of(cloud, LAPTOP)) == 1

    retried = await executor.respond(ctx, "mde.isolate_device", {"host": {"mdeDeviceId": LAPTOP}}, key="run-2:iso")
    assert retried.status is Status.DONE, retried.reason
    assert retried.result["replayed"] is True
    assert len(actions_of(cloud, LAPTOP)) == 1


async def test_release_only_a_device_that_is_isolated_and_undo_isolates_it_again(cloud, make_context):
    ctx = make_context()
    free = await executor.respond(ctx, "mde.release_device", {"host": {"mdeDeviceId": LAPTOP}}, key="k1")
    assert free.status is Status.ALREADY_DONE and free.reason == "the device is not isolated"

    released = await executor.respond(ctx, "mde.release_device", {"host": {"mdeDeviceId": FILE_SERVER}}, key="k2")
    assert released.status is Status.DONE and released.prior == {"isolated": True, "isolationScope": "Full"}
    await wait_done(ctx, released.result["machineActionId"])
    undone = await executor.undo(ctx, released)
    assert undone.status is Status.UNDONE
    isolate = actions_of(cloud, FILE_SERVER)[-1]
    assert (isolate["type"], isolate["scope"]) == ("Isolate", "Full")


# ---- scan, investigation package, app restriction ------------------------------------------------------------------


async def test_av_scan_runs_once_and_is_followed_to_its_end(cloud, make_context):
    ctx = make_context(run_id="run-3")
    outcome = await executor.respond(
        ctx, "mde.run_av_scan", {"host": {"hostName": "vm-web-01"}, "scan_type": "Full"}, key="run-3:scan"
    )
    assert outcome.status is Status.DONE, outcome.reason
    assert (await wait_done(ctx, outcome.result["machineActionId"]))["status"] == "Succeeded"
    assert actions_of(cloud, WEB)[0]["scope"] == "Full"
    assert (await executor.undo(ctx, outcome)).status is Status.SKIPPED


async def test_another_scan_in_progress_is_reported_not_doubled(cloud, make_context):
    doc = cloud.tenant()
    doc["mde"]["settings"]["completeSeconds"] = 60
    cloud.admin.put("/tenant", json=doc).raise_for_status()
    first = await executor.respond(make_context(run_id="a"), "mde.run_av_scan", {"host": {"mdeDeviceId": WEB}}, key="a")
    assert first.status is Status.DONE
    second = await executor.respond(
        make_context(run_id="b"), "mde.run_av_scan", {"host": {"mdeDeviceId": WEB}}, key="b"
    )
    assert second.status is Status.FAILED and "a scan is already running" in second.reason
    assert len(actions_of(cloud, WEB)) == 1


async def test_the_investigation_package_location_comes_without_its_token(cloud, make_context):
    ctx = make_context(run_id="run-4")
    outcome = await executor.respond(
        ctx, "mde.collect_investigation_package", {"host": {"mdeDeviceId": LAPTOP}}, key="run-4:pkg"
    )
    assert outcome.status is Status.DONE, outcome.reason
    done = await wait_done(ctx, outcome.result["machineActionId"])
    assert done["packageLocation"].endswith("/safedownload/WDATP_Investigation_Package.zip")
    assert "token" not in done["packageLocation"]
    package_reads = [r for r in cloud.requests(service="mde") if r["path"].lower().endswith("/getpackageuri")]
    assert len(package_reads) == 1  # 2 calls a minute: read once, when the package is ready


async def test_a_failed_machine_action_is_reported(cloud, make_context):
    doc = cloud.tenant()
    doc["mde"]["machines"][1]["failActions"] = ["RunAntiVirusScan"]
    cloud.admin.put("/tenant", json=doc).raise_for_status()
    ctx = make_context()
    outcome = await executor.respond(ctx, "mde.run_av_scan", {"host": {"mdeDeviceId": LAPTOP}}, key="k")
    done = await wait_done(ctx, outcome.result["machineActionId"])
    assert (done["status"], done["succeeded"]) == ("Failed", False)


async def test_restrict_app_execution_and_undo(cloud, make_context):
    ctx = make_context(ledger=MemoryLedger())
    outcome = await executor.respond(ctx, "mde.restrict_app_execution", {"host": {"mdeDeviceId": LAPTOP}}, key="k")
    assert outcome.status is Status.DONE and outcome.prior == {"appRestricted": False}
    await wait_done(ctx, outcome.result["machineActionId"])
    profile = await executor.enrich(ctx, "mde.get_device", {"host": {"mdeDeviceId": LAPTOP}})
    assert profile.data["appRestricted"] is True

    again = await executor.respond(ctx, "mde.restrict_app_execution", {"host": {"mdeDeviceId": LAPTOP}}, key="k2")
    assert again.status is Status.ALREADY_DONE

    undone = await executor.undo(ctx, outcome)
    assert undone.status is Status.UNDONE, undone.reason
    await wait_done(ctx, undone.result["machineActionId"])
    profile = await executor.enrich(ctx, "mde.get_device", {"host": {"mdeDeviceId": LAPTOP}})
    assert profile.data["appRestricted"] is False


async def test_missing_permission_is_the_api_refusal(cloud, make_context):
    doc = cloud.tenant()
    doc["tenant"]["riposteIdentity"]["mdePermissions"] = ["Machine.Read.All", "User.Read.All"]
    cloud.admin.put("/tenant", json=doc).raise_for_status()
    outcome = await executor.respond(make_context(), "mde.isolate_device", {"host": {"mdeDeviceId": LAPTOP}}, key="k")
    assert outcome.status is Status.FAILED and "403 Forbidden" in outcome.reason and not outcome.retryable
