"""compute.get_vm_context and the VM power actions against the emulated cloud, through the real azure-mgmt-compute /
azure-mgmt-network async clients built by the adapters."""

from __future__ import annotations

import sys
import time

import pytest

from shared.actions import executor
from shared.actions.context import MemoryLedger
from shared.actions.model import Status
from shared.armid import ArmId
from tests.actions.conftest import SUBSCRIPTION, VM_DEV, VM_WEB
from tests.conftest import CloudHandle

NETWORK = f"/subscriptions/{SUBSCRIPTION}/resourceGroups/rg-prod-web/providers/Microsoft.Network"
WATCHER = (
    f"/subscriptions/{SUBSCRIPTION}/resourceGroups/NetworkWatcherRG/providers/Microsoft.Network/networkWatchers/"
    "NetworkWatcher_westeurope"
)


def arm_settings(cloud: CloudHandle, **values: float) -> None:
    cloud.admin.patch("/arm/settings", json=values).raise_for_status()


@pytest.fixture(autouse=True)
def operations_without_retry_after(cloud: CloudHandle) -> None:
    """The SDK then polls at settings.lro_poll_seconds (50 ms here); the Retry-After path has its own test."""
    arm_settings(cloud, retryAfterSeconds=0)


def power(cloud: CloudHandle, vm_id: str) -> str:
    for found in cloud.tenant()["arm"]["resources"]:
        if found["id"].lower() == vm_id.lower():
            statuses = found["properties"]["instanceView"]["statuses"]
            return str(next(s["code"] for s in statuses if s["code"].startswith("PowerState/")).split("/", 1)[1])
    raise AssertionError(f"{vm_id} is not in the tenant")


def arm_writes(cloud: CloudHandle) -> list[tuple[str, str, int]]:
    return [
        (r["method"], r["path"].rsplit("/", 1)[-1], r["status"])
        for r in cloud.requests(service="arm")
        if r["method"] in ("PUT", "PATCH", "POST", "DELETE")
        and not r["path"].endswith("/effectiveNetworkSecurityGroups")
    ]


# ---- compute.get_vm_context ---------------------------------------------------------------------------------------


async def test_vm_context_of_the_web_server(cloud, make_context):
    finding = await executor.enrich(make_context(), "compute.get_vm_context", {"vm": VM_WEB})

    assert finding.ok, finding.error
    data = finding.data
    assert (data["id"], data["name"], data["location"], data["powerState"]) == (
        VM_WEB,
        "vm-web-01",
        "westeurope",
        "running",
    )
    assert data["tags"]["environment"] == "production"
    assert (data["vmSize"], data["osType"], data["computerName"]) == ("Standard_D2s_v5", "Linux", "vm-web-01")
    [nic] = data["nics"]
    assert nic["id"] == f"{NETWORK}/networkInterfaces/nic-web-01"
    assert nic["privateIps"] == ["10.10.1.4"]
    assert nic["publicIps"] == [
        {"id": f"{NETWORK}/publicIPAddresses/pip-web-01", "address": "20.61.15.33", "allocation": "Static"}
    ]
    assert nic["nsgId"] == f"{NETWORK}/networkSecurityGroups/nsg-web"
    [effective] = data["effectiveNsgs"]
    assert (effective["nsgId"], effective["associatedTo"]) == (nic["nsgId"], "networkInterface")
    https = next(r for r in effective["rules"] if r["name"] == "securityRules/AllowHttpsInbound")
    assert (https["access"], https["priority"], https["destinationPorts"]) == ("Allow", 100, ["443-443"])
    assert data["networkWatcherId"] == WATCHER
    # The emulator models no virtual networks: the subnet's NSG is reported as unknown, not guessed.
    assert nic["subnetIds"] and nic["subnetNsgIds"] == {}
    assert any("snet-web could not be read" in note for note in data["notes"])


async def test_vm_context_of_a_vm_with_two_nics_one_without_nsg(cloud, make_context):
    finding = await executor.enrich(make_context(), "compute.get_vm_context", {"vm": VM_DEV.upper()})

    assert finding.ok, finding.error
    assert finding.data["id"] == VM_DEV  # the id as ARM spells it, whatever casing the entity carried
    nics = {n["name"]: n for n in finding.data["nics"]}
    assert nics["nic-dev-02a"]["nsgId"].endswith("/networkSecurityGroups/nsg-dev")
    assert nics["nic-dev-02b"]["nsgId"] is None
    assert (nics["nic-dev-02a"]["privateIps"], nics["nic-dev-02b"]["privateIps"]) == (["10.20.1.4"], ["10.20.2.4"])
    assert nics["nic-dev-02b"]["publicIps"] == []
    assert [g["nicId"].rsplit("/", 1)[-1] for g in finding.data["effectiveNsgs"]] == ["nic-dev-02a"]


async def test_vm_context_failures_are_recorded_not_raised(cloud, make_context):
    missing = await executor.enrich(make_context(), "compute.get_vm_context", {"vm": VM_WEB.replace("web-01", "gone")})
    assert not missing.ok and "was not found" in missing.error
    not_an_id = await executor.enrich(make_context(), "compute.get_vm_context", {"vm": "vm-web-01"})
    assert not not_an_id.ok and "parameter vm" in not_an_id.error
    cloud.add_fault(match="GET */virtualMachines/vm-web-01", latency={"fixedMs": 600})
    slow = await executor.enrich(make_context(enrichment_timeout_seconds=0.3), "compute.get_vm_context", {"vm": VM_WEB})
    assert not slow.ok and "timed out" in slow.error


async def test_vm_context_reads_only(cloud, make_context):
    await executor.enrich(make_context(), "compute.get_vm_context", {"vm": VM_DEV})
    assert arm_writes(cloud) == []


# ---- power actions ------------------------------------------------------------------------------------------------


async def test_power_off_records_running_and_undo_starts_the_vm_again(cloud, make_context):
    ctx = make_context()
    outcome = await executor.respond(ctx, "compute.power_off_vm", {"vm": VM_DEV}, key="k")

    assert outcome.status is Status.DONE, outcome.reason
    assert outcome.prior == {"powerState": "running"}
    assert power(cloud, VM_DEV) == "stopped"
    cloud.clear_requests()
    again = await executor.respond(ctx, "compute.power_off_vm", {"vm": VM_DEV}, key="other")
    assert again.status is Status.ALREADY_DONE
    assert arm_writes(cloud) == []

    undone = await executor.undo(ctx, outcome)
    assert undone.status is Status.UNDONE, undone.reason
    assert power(cloud, VM_DEV) == "running"
    assert [(m, p) for m, p, _ in arm_writes(cloud)] == [("POST", "start")]
    cloud.clear_requests()
    assert (await executor.undo(ctx, outcome)).result["alreadyDone"] is True
    assert arm_writes(cloud) == []


async def test_deallocate_then_undo_starts_only_a_vm_that_was_running(cloud, make_context):
    ctx = make_context()
    from_running = await executor.respond(ctx, "compute.deallocate_vm", {"vm": VM_DEV}, key="a")
    assert from_running.status is Status.DONE and power(cloud, VM_DEV) == "deallocated"
    await executor.undo(ctx, from_running)
    assert power(cloud, VM_DEV) == "running"

    await executor.respond(ctx, "compute.power_off_vm", {"vm": VM_DEV}, key="b")
    from_stopped = await executor.respond(ctx, "compute.deallocate_vm", {"vm": VM_DEV}, key="c")
    assert from_stopped.prior == {"powerState": "stopped"}
    assert power(cloud, VM_DEV) == "deallocated"
    cloud.clear_requests()
    undone = await executor.undo(ctx, from_stopped)
    assert undone.status is Status.UNDONE
    assert power(cloud, VM_DEV) == "deallocated"  # it was not running: undo starts nothing
    assert arm_writes(cloud) == []


async def test_start_vm_and_undo_return_to_the_recorded_state(cloud, make_context):
    ctx = make_context()
    await executor.respond(ctx, "compute.deallocate_vm", {"vm": VM_DEV}, key="off")
    started = await executor.respond(ctx, "compute.start_vm", {"vm": VM_DEV}, key="on")
    assert started.status is Status.DONE and started.prior == {"powerState": "deallocated"}
    assert power(cloud, VM_DEV) == "running"
    await executor.undo(ctx, started)
    assert power(cloud, VM_DEV) == "deallocated"

    await executor.respond(ctx, "compute.start_vm", {"vm": VM_DEV}, key="on-again")
    await executor.respond(ctx, "compute.power_off_vm", {"vm": VM_DEV}, key="stop")
    from_stopped = await executor.respond(ctx, "compute.start_vm", {"vm": VM_DEV}, key="on-3")
    await executor.undo(ctx, from_stopped)
    assert power(cloud, VM_DEV) == "stopped"

    cloud.clear_requests()
    running = await executor.respond(ctx, "compute.start_vm", {"vm": VM_WEB}, key="web")
    assert running.status is Status.ALREADY_DONE
    assert arm_writes(cloud) == []


async def test_power_actions_in_dry_run_write_nothing(cloud, make_context):
    ctx = make_context(dry_run=True)
    for action in ("compute.power_off_vm", "compute.deallocate_vm"):
        outcome = await executor.respond(ctx, action, {"vm": VM_DEV}, key=action)
        assert outcome.status is Status.DRY_RUN
        assert outcome.prior == {"powerState": "running"}
        assert any(p.permission.name == "Riposte VM Responder" for p in outcome.permissions)
    assert arm_writes(cloud) == []
    assert power(cloud, VM_DEV) == "running"


async def test_a_protected_vm_is_not_powered_off(cloud, make_context):
    cloud.set_tags(VM_DEV, {"Riposte-Protected": "true"})
    cloud.clear_requests()
    outcome = await executor.respond(make_context(), "compute.power_off_vm", {"vm": VM_DEV}, key="k")
    assert outcome.status is Status.SKIPPED and "protected tag" in outcome.reason
    assert power(cloud, VM_DEV) == "running"
    assert arm_writes(cloud) == []


async def test_the_destructive_cap_stops_the_third_power_off(cloud, make_context):
    ctx = make_context(destructive_actions_per_hour=2)
    results = [
        await executor.respond(ctx, action, {"vm": vm}, key=action + vm)
        for action, vm in (("compute.power_off_vm", VM_DEV), ("compute.deallocate_vm", VM_DEV))
    ]
    third = await executor.respond(ctx, "compute.power_off_vm", {"vm": VM_WEB}, key="third")
    assert [r.status for r in results] == [Status.DONE, Status.DONE]
    assert third.status is Status.SKIPPED and "cap" in third.reason
    assert power(cloud, VM_WEB) == "running"
    # the intent written beside the refused budget is closed, so no replay or rollback has it to judge
    entry = await ctx.ledger.get("third")
    assert entry is not None and entry["state"] == "done" and entry["outcome"]["status"] == "skipped"


async def test_power_off_absorbs_429_with_and_without_retry_after(cloud, make_context):
    cloud.add_fault(match="POST */virtualMachines/vm-dev-02/powerOff", status=429, retryAfter=1, count=1)
    cloud.add_fault(match="POST */virtualMachines/vm-dev-02/start", status=429, count=1)  # no Retry-After
    ctx = make_context()

    started = time.monotonic()
    outcome = await executor.respond(ctx, "compute.power_off_vm", {"vm": VM_DEV}, key="k")
    waited = time.monotonic() - started
    undone = await executor.undo(ctx, outcome)

    assert outcome.status is Status.DONE and undone.status is Status.UNDONE, (outcome.reason, undone.reason)
    assert [(p, s) for _, p, s in arm_writes(cloud)] == [
        ("powerOff", 429),
        ("powerOff", 202),
        ("start", 429),
        ("start", 202),
    ]
    assert power(cloud, VM_DEV) == "running"
    assert waited >= 1.0  # the Retry-After the service sent


async def test_a_vm_operation_that_keeps_failing_is_a_failed_outcome(cloud, make_context):
    cloud.add_fault(match="POST */virtualMachines/vm-dev-02/deallocate", status=409, code="OperationNotAllowed")
    outcome = await executor.respond(make_context(), "compute.deallocate_vm", {"vm": VM_DEV}, key="k")
    assert outcome.status is Status.FAILED
    assert "409 OperationNotAllowed" in outcome.reason
    assert power(cloud, VM_DEV) == "running"


async def test_power_off_completes_at_the_pace_the_service_asks(cloud, make_context):
    arm_settings(cloud, operationSeconds=0.3, retryAfterSeconds=1)
    started = time.monotonic()
    outcome = await executor.respond(make_context(), "compute.power_off_vm", {"vm": VM_DEV}, key="k")
    elapsed = time.monotonic() - started
    print(f"\ncompute.power_off_vm, 0.3 s operation with Retry-After: 1: {elapsed:.3f} s")
    assert outcome.status is Status.DONE
    assert 1.0 <= elapsed < 5.0  # one Retry-After wait, not the SDK's 30 s default


def test_importing_the_adapters_and_actions_imports_no_sdk():
    code = (
        "import sys, shared.azure.compute, shared.azure.network, shared.actions.compute, shared.actions.network;"
        "print([m for m in sys.modules if m.startswith(('azure.mgmt', 'azure.core', 'azure.identity'))])"
    )
    import subprocess

    found = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert found == "[]"


def test_arm_ids_parse_and_compare_case_insensitively():
    parsed = ArmId.parse(
        VM_DEV.upper().replace("/SUBSCRIPTIONS/", "/subscriptions/"), "microsoft.compute/VIRTUALMACHINES"
    )
    assert parsed.name == "VM-DEV-02" and parsed.same(VM_DEV)
    capture = ArmId.parse(f"{WATCHER}/packetCaptures/pc1")
    assert capture.type == "Microsoft.Network/networkWatchers/packetCaptures" and capture.parent.same(WATCHER)
    for bad in ("vm-web-01", "/subscriptions/x/resourceGroups/g", f"{VM_DEV}/extra", VM_DEV.replace("vm-dev-02", "..")):
        with pytest.raises(ValueError):
            ArmId.parse(bad, "Microsoft.Compute/virtualMachines")


async def test_the_ledger_makes_a_replayed_power_off_a_no_op(cloud, make_context):
    ledger = MemoryLedger()
    first = await executor.respond(make_context(ledger=ledger), "compute.power_off_vm", {"vm": VM_DEV}, key="k")
    await executor.respond(make_context(), "compute.start_vm", {"vm": VM_DEV}, key="someone-else")
    cloud.clear_requests()
    replay = await executor.respond(make_context(ledger=ledger), "compute.power_off_vm", {"vm": VM_DEV}, key="k")
    assert replay == first
    assert arm_writes(cloud) == []
    assert power(cloud, VM_DEV) == "running"
