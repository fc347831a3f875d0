"""network.isolate_vm, network.block_ip and the packet-capture actions against the emulated cloud, through the real
azure-mgmt-network / azure-mgmt-compute async clients built by the adapters."""

from __future__ import annotations

import asyncio
import ipaddress
import threading
import time
from typing import Any

import pytest

from shared.actions import executor
from shared.actions.context import MemoryLedger
from shared.actions.model import Status
from shared.actions.network import block_rule_name, capture_name, isolation_nsg_name
from tests.actions.conftest import NSG_PERIMETER, SUBSCRIPTION, VM_DEV, VM_WEB, cloud_settings
from tests.conftest import CloudHandle

RG_DEV = f"/subscriptions/{SUBSCRIPTION}/resourceGroups/rg-dev/providers/Microsoft.Network"
NIC_DEV_A = f"{RG_DEV}/networkInterfaces/nic-dev-02a"
NIC_DEV_B = f"{RG_DEV}/networkInterfaces/nic-dev-02b"
NSG_DEV = f"{RG_DEV}/networkSecurityGroups/nsg-dev"
ISOLATION_DEV = f"{RG_DEV}/networkSecurityGroups/riposte-isolate-vm-dev-02"
RG_WEB = f"/subscriptions/{SUBSCRIPTION}/resourceGroups/rg-prod-web/providers/Microsoft.Network"
NSG_WEB = f"{RG_WEB}/networkSecurityGroups/nsg-web"
NIC_WEB = f"{RG_WEB}/networkInterfaces/nic-web-01"
WATCHER = (
    f"/subscriptions/{SUBSCRIPTION}/resourceGroups/NetworkWatcherRG/providers/Microsoft.Network/networkWatchers/"
    "NetworkWatcher_westeurope"
)
READ_ONLY_POSTS = ("/queryStatus", "/effectiveNetworkSecurityGroups")


# ---- helpers ------------------------------------------------------------------------------------------------------


def arm_settings(cloud: CloudHandle, **values: float) -> None:
    """The emulator's LRO timing (reset with the tenant by the `cloud` fixture)."""
    cloud.admin.patch("/arm/settings", json=values).raise_for_status()


@pytest.fixture(autouse=True)
def operations_without_retry_after(cloud: CloudHandle) -> None:
    """Retry-After: 0 on LROs, so the SDK polls at settings.lro_poll_seconds (50 ms here): tests stay fast. The
    Retry-After-honouring path has its own test."""
    arm_settings(cloud, retryAfterSeconds=0)


def resource(cloud: CloudHandle, resource_id: str) -> dict[str, Any] | None:
    for found in cloud.tenant()["arm"]["resources"]:
        if found["id"].lower() == resource_id.lower():
            return dict(found)
    return None


def nic_nsg(cloud: CloudHandle, nic_id: str) -> str | None:
    nic = resource(cloud, nic_id)
    assert nic is not None
    nsg: str | None = ((nic["properties"].get("networkSecurityGroup")) or {}).get("id")
    return nsg


def arm_writes(cloud: CloudHandle) -> list[tuple[str, str, int]]:
    """(method, path, status) of every state-changing ARM call (read-only POSTs left out)."""
    return [
        (r["method"], r["path"], r["status"])
        for r in cloud.requests(service="arm")
        if r["method"] in ("PUT", "PATCH", "POST", "DELETE") and not r["path"].endswith(READ_ONLY_POSTS)
    ]


def rules(cloud: CloudHandle, nsg_id: str) -> dict[str, dict[str, Any]]:
    nsg = resource(cloud, nsg_id)
    assert nsg is not None
    return {r["name"]: r["properties"] for r in nsg["properties"]["securityRules"]}


# ---- network.isolate_vm -------------------------------------------------------------------------------------------


async def test_isolate_vm_moves_every_nic_and_undo_restores_each_previous_nsg_exactly(cloud, make_context):
    ctx = make_context()
    assert (nic_nsg(cloud, NIC_DEV_A), nic_nsg(cloud, NIC_DEV_B)) == (NSG_DEV, None)

    outcome = await executor.respond(ctx, "network.isolate_vm", {"vm": VM_DEV}, key="run-1:isolate")

    assert outcome.status is Status.DONE, outcome.reason
    assert outcome.prior["nics"] == [{"nic": NIC_DEV_A, "nsg": NSG_DEV}, {"nic": NIC_DEV_B, "nsg": None}]
    assert nic_nsg(cloud, NIC_DEV_A) == ISOLATION_DEV
    assert nic_nsg(cloud, NIC_DEV_B) == ISOLATION_DEV
    isolation = resource(cloud, ISOLATION_DEV)
    assert isolation is not None and isolation["location"] == "westeurope"
    assert sorted(i["id"] for i in isolation["properties"]["networkInterfaces"]) == [NIC_DEV_A, NIC_DEV_B]
    created = rules(cloud, ISOLATION_DEV)
    assert created["riposte-allow-management-inbound"]["sourceAddressPrefixes"] == ["10.0.0.0/24"]
    assert created["riposte-allow-management-outbound"]["destinationAddressPrefixes"] == ["10.0.0.0/24"]
    for direction in ("inbound", "outbound"):
        deny = created[f"riposte-deny-all-{direction}"]
        assert (deny["access"], deny["priority"], deny["sourceAddressPrefix"]) == ("Deny", 4096, "*")
    assert resource(cloud, NSG_DEV)["properties"]["networkInterfaces"] == []  # type: ignore[index]

    undone = await executor.undo(ctx, outcome)

    assert undone.status is Status.UNDONE, undone.reason
    assert nic_nsg(cloud, NIC_DEV_A) == NSG_DEV
    assert nic_nsg(cloud, NIC_DEV_B) is None
    assert resource(cloud, ISOLATION_DEV) is None  # deleted once no NIC used it
    assert [i["id"] for i in resource(cloud, NSG_DEV)["properties"]["networkInterfaces"]] == [NIC_DEV_A]  # type: ignore[index]

    cloud.clear_requests()
    again = await executor.undo(ctx, outcome)
    assert again.status is Status.UNDONE
    assert again.result["isolationNsg"] == "already deleted"
    assert arm_writes(cloud) == []  # undo is idempotent too


async def test_second_isolation_writes_nothing_and_a_replay_returns_the_first_outcome(cloud, make_context):
    ledger = MemoryLedger()
    ctx = make_context(ledger=ledger)
    first = await executor.respond(ctx, "network.isolate_vm", {"vm": VM_DEV}, key="run-1:isolate")
    assert first.status is Status.DONE
    cloud.clear_requests()

    replay = await executor.respond(ctx, "network.isolate_vm", {"vm": VM_DEV}, key="run-1:isolate")
    other_run = await executor.respond(ctx, "network.isolate_vm", {"vm": VM_DEV}, key="run-2:isolate")

    assert replay == first
    assert other_run.status is Status.ALREADY_DONE
    assert arm_writes(cloud) == []


async def test_isolation_dry_run_reports_the_change_and_writes_nothing(cloud, make_context):
    outcome = await executor.respond(make_context(dry_run=True), "network.isolate_vm", {"vm": VM_DEV}, key="dry")

    assert outcome.status is Status.DRY_RUN
    assert outcome.intended["isolationNsgId"] == ISOLATION_DEV
    assert outcome.intended["createNsg"] is True
    assert outcome.intended["nicsToMove"] == [NIC_DEV_A, NIC_DEV_B]
    assert {p.permission.operation for p in outcome.permissions} >= {
        "Microsoft.Network/networkSecurityGroups/write",
        "Microsoft.Network/networkInterfaces/write",
    }
    assert arm_writes(cloud) == []
    assert resource(cloud, ISOLATION_DEV) is None


async def test_production_tag_is_not_protection_but_the_protected_tag_and_prefix_are(cloud, make_context):
    web = await executor.respond(make_context(dry_run=True), "network.isolate_vm", {"vm": VM_WEB}, key="web")
    assert web.status is Status.DRY_RUN  # tagged environment=production, which is not a guardrail by default

    by_prefix = await executor.respond(
        make_context(protected_resource_prefixes=(f"/subscriptions/{SUBSCRIPTION}/resourceGroups/RG-PROD-WEB",)),
        "network.isolate_vm",
        {"vm": VM_WEB},
        key="web-prefix",
    )
    assert by_prefix.status is Status.SKIPPED
    assert "protected prefix" in by_prefix.reason

    cloud.set_tags(VM_WEB, {"riposte-protected": "true"})
    cloud.clear_requests()
    by_tag = await executor.respond(make_context(), "network.isolate_vm", {"vm": VM_WEB}, key="web-tag")
    assert by_tag.status is Status.SKIPPED
    assert "riposte-protected=true" in by_tag.reason
    assert arm_writes(cloud) == []
    assert nic_nsg(cloud, NIC_WEB) == NSG_WEB


async def test_a_retry_after_a_crash_midway_finishes_without_redoing_and_keeps_the_first_prior(cloud, make_context):
    ledger = MemoryLedger()
    # The second NIC's write is refused (409 is not retried): the NSG exists and the first NIC has moved.
    cloud.add_fault(match="PUT */networkInterfaces/nic-dev-02b", status=409, code="Conflict", count=1)
    crashed = await executor.respond(make_context(ledger=ledger), "network.isolate_vm", {"vm": VM_DEV}, key="k")
    assert crashed.status is Status.FAILED
    assert ledger.entries["k"]["state"] == "intent"
    assert (nic_nsg(cloud, NIC_DEV_A), nic_nsg(cloud, NIC_DEV_B)) == (ISOLATION_DEV, None)
    cloud.clear_requests()

    finished = await executor.respond(make_context(ledger=ledger), "network.isolate_vm", {"vm": VM_DEV}, key="k")

    assert finished.status is Status.DONE
    assert [(m, p.rsplit("/", 1)[-1]) for m, p, _ in arm_writes(cloud)] == [("PUT", "nic-dev-02b")]  # nothing redone
    assert finished.result["isolationNsg"] == "existed"
    # The prior NSGs are those read before the first attempt, not the half-isolated state read on the retry.
    assert finished.prior["nics"] == [{"nic": NIC_DEV_A, "nsg": NSG_DEV}, {"nic": NIC_DEV_B, "nsg": None}]
    await executor.undo(make_context(), finished)
    assert (nic_nsg(cloud, NIC_DEV_A), nic_nsg(cloud, NIC_DEV_B)) == (NSG_DEV, None)


async def test_undo_leaves_a_nic_moved_since_alone_and_says_so(cloud, make_context):
    ctx = make_context()
    outcome = await executor.respond(ctx, "network.isolate_vm", {"vm": VM_DEV}, key="k")
    nic = await ctx.azure.network.get_nic(NIC_DEV_B)
    nic["properties"]["networkSecurityGroup"] = {"id": NSG_DEV}
    await ctx.azure.network.put_nic(NIC_DEV_B, nic, if_match=nic["etag"])  # an analyst moves it

    undone = await executor.undo(ctx, outcome)

    assert undone.status is Status.FAILED
    assert "nic-dev-02b alone" in undone.reason
    assert (nic_nsg(cloud, NIC_DEV_A), nic_nsg(cloud, NIC_DEV_B)) == (NSG_DEV, NSG_DEV)
    assert resource(cloud, ISOLATION_DEV) is None


async def test_isolation_absorbs_429_with_and_without_retry_after(cloud, make_context):
    cloud.add_fault(match="PUT */networkSecurityGroups/riposte-isolate-*", status=429, retryAfter=1, count=1)
    cloud.add_fault(match="PUT */networkInterfaces/nic-dev-02a", status=429, count=1)  # no Retry-After

    started = time.monotonic()
    outcome = await executor.respond(make_context(), "network.isolate_vm", {"vm": VM_DEV}, key="k")
    elapsed = time.monotonic() - started

    assert outcome.status is Status.DONE, outcome.reason
    puts = [(p.rsplit("/", 1)[-1], s) for m, p, s in arm_writes(cloud) if m == "PUT"]
    assert puts.count(("riposte-isolate-vm-dev-02", 429)) == 1
    assert puts.count(("riposte-isolate-vm-dev-02", 201)) == 1
    assert puts.count(("nic-dev-02a", 429)) == 1 and puts.count(("nic-dev-02a", 200)) == 1
    assert 1.0 <= elapsed < 5.0  # waited the 1 s the service asked for, and no more than a short backoff otherwise


async def test_long_running_operations_poll_at_the_service_retry_after_not_30_s(cloud, make_context):
    """azure-core polls once right away, then waits Retry-After (or settings.lro_poll_seconds without one) while the
    operation is InProgress. The SDK default of 30 s between polls must never show."""

    async def isolate(key: str, **timing: float) -> float:
        arm_settings(cloud, **timing)
        started = time.monotonic()
        outcome = await executor.respond(make_context(), "network.isolate_vm", {"vm": VM_DEV}, key=key)
        elapsed = time.monotonic() - started
        assert outcome.status is Status.DONE, outcome.reason
        arm_settings(cloud, operationSeconds=0, retryAfterSeconds=0)
        assert (await executor.undo(make_context(), outcome)).status is Status.UNDONE
        return elapsed

    done_at_first_poll = await isolate("instant", operationSeconds=0, retryAfterSeconds=0)
    honouring_retry_after = await isolate("retry-after", operationSeconds=0.3, retryAfterSeconds=1)
    own_interval = await isolate("no-retry-after", operationSeconds=0.3, retryAfterSeconds=0)

    print(
        f"\nisolate_vm (NSG create, then 2 NIC updates in parallel): {done_at_first_poll:.3f} s when each operation "
        f"ends at the first poll; {honouring_retry_after:.3f} s for 0.3 s operations with Retry-After: 1; "
        f"{own_interval:.3f} s for 0.3 s operations without Retry-After (polled every 50 ms)"
    )
    assert done_at_first_poll < 1.0
    assert 2.0 <= honouring_retry_after < 6.0  # two rounds of one 1 s wait each, as the service asked
    assert 0.6 <= own_interval < 3.0


async def test_concurrent_writers_contending_for_one_nsg_are_serialised_by_429_retries(cloud, make_context):
    """Two isolations of the same VM from two workers (two event loops: separate in-process locks) at once: the
    provider's RetryableErrorDueToAnotherOperation 429s are absorbed and the end state is exactly one isolation."""
    arm_settings(cloud, operationSeconds=0.2)
    other: dict[str, Any] = {}

    def other_worker() -> None:
        async def run() -> None:
            from shared.actions.context import ActionContext
            from shared.azure.clients import AzureClients

            settings = cloud_settings(cloud)
            async with AzureClients(settings) as azure:
                ctx = ActionContext(settings=settings, azure=azure)
                other["outcome"] = await executor.respond(ctx, "network.isolate_vm", {"vm": VM_DEV}, key="w2")

        asyncio.run(run())

    thread = threading.Thread(target=other_worker)
    thread.start()
    mine = await executor.respond(make_context(), "network.isolate_vm", {"vm": VM_DEV}, key="w1")
    await asyncio.to_thread(thread.join, 30)

    assert {mine.status, other["outcome"].status} <= {Status.DONE, Status.ALREADY_DONE}, (mine, other)
    assert (nic_nsg(cloud, NIC_DEV_A), nic_nsg(cloud, NIC_DEV_B)) == (ISOLATION_DEV, ISOLATION_DEV)
    assert len(rules(cloud, ISOLATION_DEV)) == 4
    statuses = [s for m, _, s in arm_writes(cloud)]
    assert 500 not in statuses


# ---- network.block_ip ---------------------------------------------------------------------------------------------


async def test_block_ip_adds_one_deny_rule_at_the_first_free_priority_and_undo_removes_it(cloud, make_context):
    before = rules(cloud, NSG_PERIMETER)
    ctx = make_context()

    outcome = await executor.respond(ctx, "network.block_ip", {"ip": "203.0.113.66"}, key="k")

    assert outcome.status is Status.DONE, outcome.reason
    assert outcome.target is not None and outcome.target.id == "203.0.113.66"
    after = rules(cloud, NSG_PERIMETER)
    rule = after.pop("riposte-block-203-0-113-66")
    assert after == before  # no other rule touched
    assert (rule["access"], rule["direction"], rule["sourceAddressPrefix"], rule["priority"]) == (
        "Deny",
        "Inbound",
        "203.0.113.66",
        100,  # 110 and 300 are taken inbound; 100 is the first free
    )
    cloud.clear_requests()
    second = await executor.respond(ctx, "network.block_ip", {"ip": "203.0.113.66"}, key="other-run")
    assert second.status is Status.ALREADY_DONE
    assert arm_writes(cloud) == []

    undone = await executor.undo(ctx, outcome)
    assert undone.status is Status.UNDONE
    assert rules(cloud, NSG_PERIMETER) == before
    assert [m for m, _, _ in arm_writes(cloud)] == ["DELETE"]


async def test_block_ip_names_ipv6_rules_deterministically_and_rejects_what_is_not_an_address(cloud, make_context):
    ctx = make_context()
    v6 = await executor.respond(ctx, "network.block_ip", {"ip": "2001:DB8:0::1"}, key="v6")
    assert v6.status is Status.DONE
    assert "riposte-block-2001-db8--1" in rules(cloud, NSG_PERIMETER)
    mapped = await executor.respond(ctx, "network.block_ip", {"ip": "::ffff:198.51.100.7"}, key="mapped")
    assert mapped.target is not None and mapped.target.id == "198.51.100.7"  # an IPv4-mapped address is the IPv4 one
    assert rules(cloud, NSG_PERIMETER)["riposte-block-198-51-100-7"]["sourceAddressPrefix"] == "198.51.100.7"

    unspecified = str(ipaddress.IPv4Address(0))
    for bad in ("203.0.113.0/24", "not-an-ip", unspecified, "127.0.0.1", "203.0.113.66; drop"):
        failed = await executor.respond(ctx, "network.block_ip", {"ip": bad}, key=f"bad-{bad}")
        assert failed.status is Status.FAILED and "parameter ip" in failed.reason, bad
    management = await executor.respond(ctx, "network.block_ip", {"ip": "10.0.0.7"}, key="mgmt")
    assert management.status is Status.FAILED and "management prefix" in management.reason


async def test_concurrent_blocks_of_different_ips_lose_no_rule_and_get_unique_priorities(cloud, make_context):
    """Five blocks at once in this worker (the per-NSG lock) and three in another worker with its own event loop
    (only the provider's 429 lock, If-None-Match and priority conflicts stand between them)."""
    arm_settings(cloud, operationSeconds=0.05)
    before = rules(cloud, NSG_PERIMETER)
    mine = [f"203.0.113.{n}" for n in range(10, 15)]
    theirs = [f"198.51.100.{n}" for n in range(60, 63)]
    results: dict[str, Any] = {}

    def other_worker() -> None:
        async def run() -> None:
            from shared.actions.context import ActionContext
            from shared.azure.clients import AzureClients

            settings = cloud_settings(cloud)
            async with AzureClients(settings) as azure:
                ctx = ActionContext(settings=settings, azure=azure)
                outcomes = await asyncio.gather(
                    *(executor.respond(ctx, "network.block_ip", {"ip": ip}, key=f"t-{ip}") for ip in theirs)
                )
                results.update(zip(theirs, outcomes, strict=True))

        asyncio.run(run())

    thread = threading.Thread(target=other_worker)
    thread.start()
    ctx = make_context()
    outcomes = await asyncio.gather(
        *(executor.respond(ctx, "network.block_ip", {"ip": ip}, key=f"m-{ip}") for ip in mine)
    )
    results.update(zip(mine, outcomes, strict=True))
    await asyncio.to_thread(thread.join, 60)

    assert {ip: o.status for ip, o in results.items()} == {ip: Status.DONE for ip in mine + theirs}
    after = rules(cloud, NSG_PERIMETER)
    blocks = {name: props for name, props in after.items() if name.startswith("riposte-block-")}
    assert sorted(blocks) == sorted(block_rule_name(ip) for ip in mine + theirs)
    inbound = [p["priority"] for p in after.values() if p["direction"] == "Inbound"]
    assert len(inbound) == len(set(inbound))  # unique priorities
    assert {k: v for k, v in after.items() if k in before} == before
    statuses = [s for m, _, s in arm_writes(cloud) if m == "PUT"]
    print(
        f"\n8 concurrent block_ip on one NSG: {len(statuses)} PUTs, {statuses.count(429)} answered 429, "
        f"{statuses.count(400)} priority conflicts, {statuses.count(412)} precondition failures"
    )


async def test_block_ip_dry_run_writes_nothing_and_a_protected_nsg_stops_it(cloud, make_context):
    dry = await executor.respond(make_context(dry_run=True), "network.block_ip", {"ip": "203.0.113.66"}, key="d")
    assert dry.status is Status.DRY_RUN
    assert dry.intended["priorities"] == {NSG_PERIMETER: 100}

    cloud.set_tags(NSG_PERIMETER, {"riposte-protected": "true"})
    cloud.clear_requests()
    guarded = await executor.respond(make_context(), "network.block_ip", {"ip": "203.0.113.66"}, key="g")
    assert guarded.status is Status.SKIPPED
    assert "riposte-protected" in guarded.reason
    assert arm_writes(cloud) == []
    assert "riposte-block-203-0-113-66" not in rules(cloud, NSG_PERIMETER)


async def test_block_ip_waits_out_another_operation_holding_the_nsg(cloud, make_context):
    """Microsoft.Network's own lock: while someone else's write to the NSG runs, ours gets 429
    RetryableErrorDueToAnotherOperation with Retry-After, and azure-core's retry policy waits and tries again."""
    from tests.contract.arm_helpers import arm_http

    arm_settings(cloud, operationSeconds=0.5, retryAfterSeconds=1)
    ctx = make_context()
    await ctx.azure.network.get_nsg(NSG_PERIMETER)  # clients and token ready, so our write comes within the 0.5 s
    rule = {
        "properties": {
            "protocol": "Tcp",
            "access": "Allow",
            "direction": "Inbound",
            "priority": 400,
            "sourceAddressPrefix": "10.30.1.4",
            "sourcePortRange": "*",
            "destinationAddressPrefix": "*",
            "destinationPortRange": "22",
        }
    }
    with arm_http(cloud) as http:  # another tool's write, left running
        other = http.put(
            f"{NSG_PERIMETER}/securityRules/AllowJumpHostSsh", params={"api-version": "2024-07-01"}, json=rule
        )
    assert other.status_code == 201

    started = time.monotonic()
    outcome = await executor.respond(ctx, "network.block_ip", {"ip": "203.0.113.66"}, key="k")
    waited = time.monotonic() - started

    assert outcome.status is Status.DONE, outcome.reason
    ours = [r["status"] for r in cloud.requests(service="arm", method="PUT") if "riposte-block" in r["path"]]
    assert ours[0] == 429 and ours[-1] == 201 and set(ours[:-1]) == {429}, ours
    assert waited >= 1.0
    assert {"AllowJumpHostSsh", "riposte-block-203-0-113-66"} <= set(rules(cloud, NSG_PERIMETER))


async def test_block_ip_absorbs_429_on_the_rule_write(cloud, make_context):
    cloud.add_fault(match="PUT */securityRules/riposte-block-*", status=429, count=2)  # without Retry-After
    outcome = await executor.respond(make_context(), "network.block_ip", {"ip": "203.0.113.66"}, key="k")
    assert outcome.status is Status.DONE, outcome.reason
    statuses = [s for m, _, s in arm_writes(cloud) if m == "PUT"]
    assert statuses == [429, 429, 201]


# ---- packet captures ----------------------------------------------------------------------------------------------


async def test_packet_capture_runs_then_stops_at_its_time_limit_checked_by_polling(cloud, make_context):
    ctx = make_context()
    started = time.monotonic()
    params = {"vm": VM_WEB, "durationSeconds": 1, "filters": [{"protocol": "TCP", "remoteIPAddress": "95.173.136.70"}]}
    outcome = await executor.respond(ctx, "network.start_packet_capture", params, key="run-7:capture")
    start_latency = time.monotonic() - started

    assert outcome.status is Status.DONE, outcome.reason
    capture_id = outcome.result["captureId"]
    assert capture_id == f"{WATCHER}/packetCaptures/{capture_name('vm-web-01', 'run-7:capture')}"
    assert start_latency < 1.0  # the step does not wait for the capture
    stored = resource(cloud, capture_id)
    assert stored is not None
    assert stored["properties"]["timeLimitInSeconds"] == 1
    assert stored["properties"]["totalBytesPerSession"] == ctx.settings.capture_max_bytes
    assert stored["properties"]["storageLocation"]["storageId"].endswith("/stcontosocaptures")
    assert stored["properties"]["filters"] == [{"protocol": "TCP", "remoteIPAddress": "95.173.136.70"}]
    assert outcome.result["storagePath"].startswith("https://stcontosocaptures.blob.core.windows.net/")

    running = await executor.enrich(ctx, "network.get_packet_capture", {"capture": capture_id})
    assert running.ok, running.error
    assert (running.data["status"], running.data["done"]) == ("Running", False)
    await asyncio.sleep(1.1)
    stopped = await executor.enrich(ctx, "network.get_packet_capture", {"capture": capture_id})
    assert (stopped.data["status"], stopped.data["stopReason"], stopped.data["done"]) == (
        "Stopped",
        "TimeExceeded",
        True,
    )

    cloud.clear_requests()  # the same step again, even with its ledger lost, finds the session it started
    again = await executor.respond(make_context(), "network.start_packet_capture", params, key="run-7:capture")
    assert again.status is Status.DONE and again.result["started"] is False
    assert arm_writes(cloud) == []


async def test_stop_packet_capture_and_undo_of_start_stop_it_once(cloud, make_context):
    ctx = make_context()
    first = await executor.respond(ctx, "network.start_packet_capture", {"vm": VM_WEB}, key="a")
    second = await executor.respond(ctx, "network.start_packet_capture", {"vm": VM_WEB}, key="b")
    assert first.result["timeLimitInSeconds"] == ctx.settings.capture_default_seconds
    assert first.result["captureId"] != second.result["captureId"]

    stop = await executor.respond(ctx, "network.stop_packet_capture", {"capture": first.result["captureId"]}, key="s")
    assert stop.status is Status.DONE
    status = await executor.enrich(ctx, "network.get_packet_capture", {"capture": first.result["captureId"]})
    assert (status.data["status"], status.data["stopReason"]) == ("Stopped", "ManualStop")
    cloud.clear_requests()
    again = await executor.respond(ctx, "network.stop_packet_capture", {"capture": first.result["captureId"]}, key="t")
    assert again.status is Status.ALREADY_DONE
    assert arm_writes(cloud) == []

    undone = await executor.undo(ctx, second)
    assert undone.status is Status.UNDONE and undone.result["stopped"] is True
    status = await executor.enrich(ctx, "network.get_packet_capture", {"capture": second.result["captureId"]})
    assert status.data["status"] == "Stopped"
    assert (await executor.undo(ctx, second)).result["stopped"] is False  # already ended: nothing written


async def test_packet_capture_bounds_and_preconditions(cloud, make_context):
    ctx = make_context(capture_max_seconds=600, capture_max_bytes=1_000_000)
    too_long = await executor.respond(
        ctx, "network.start_packet_capture", {"vm": VM_WEB, "durationSeconds": 601}, key="1"
    )
    too_big = await executor.respond(
        ctx, "network.start_packet_capture", {"vm": VM_WEB, "maxBytes": 1_000_001}, key="2"
    )
    assert too_long.status is Status.FAILED and "over the limit of 600" in too_long.reason
    assert too_big.status is Status.FAILED and "over the limit of 1000000" in too_big.reason
    nowhere = await executor.respond(
        make_context(capture_storage_account_id=None), "network.start_packet_capture", {"vm": VM_WEB}, key="3"
    )
    assert nowhere.status is Status.FAILED and "CAPTURE_STORAGE_ACCOUNT_ID" in nowhere.reason

    await executor.respond(ctx, "compute.deallocate_vm", {"vm": VM_WEB}, key="off")
    cloud.clear_requests()
    stopped_vm = await executor.respond(ctx, "network.start_packet_capture", {"vm": VM_WEB}, key="4")
    assert stopped_vm.status is Status.FAILED and "needs a running VM" in stopped_vm.reason
    assert arm_writes(cloud) == []

    dry = await executor.respond(make_context(dry_run=True), "network.start_packet_capture", {"vm": VM_DEV}, key="5")
    assert dry.status is Status.DRY_RUN
    assert dry.intended["properties"]["timeLimitInSeconds"] == ctx.settings.capture_default_seconds
    assert arm_writes(cloud) == []


async def test_get_packet_capture_of_a_missing_capture_is_a_recorded_error(cloud, make_context):
    finding = await executor.enrich(
        make_context(), "network.get_packet_capture", {"capture": f"{WATCHER}/packetCaptures/nope"}
    )
    assert not finding.ok
    assert "404" in finding.error


def test_names_are_deterministic_and_within_arm_limits():
    assert isolation_nsg_name("vm-dev-02") == "riposte-isolate-vm-dev-02"
    long = isolation_nsg_name("v" * 64)
    assert len(long) <= 80 and long == isolation_nsg_name("v" * 64)
    assert capture_name("vm-web-01", "k") == capture_name("vm-web-01", "k") != capture_name("vm-web-01", "k2")
    assert len(capture_name("x" * 64, "k")) <= 80
