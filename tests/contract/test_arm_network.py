"""Microsoft.Network against the real azure-mgmt-network clients (sync and .aio): NSGs and rules as long-running
operations with the provider's lock (429 RetryableErrorDueToAnotherOperation), priorities, etags, NIC <-> NSG
association, public IPs, network watchers and packet captures."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
from azure.core.exceptions import HttpResponseError, ResourceNotFoundError
from azure.identity import DefaultAzureCredential
from azure.identity.aio import DefaultAzureCredential as AsyncDefaultAzureCredential
from azure.mgmt.network import NetworkManagementClient
from azure.mgmt.network.aio import NetworkManagementClient as AsyncNetworkManagementClient
from azure.mgmt.network.models import (
    NetworkSecurityGroup,
    NetworkSecurityGroupPropertiesFormat,
    PacketCapture,
    PacketCaptureFilter,
    PacketCaptureParameters,
    PacketCaptureStorageLocation,
    SecurityRule,
    SecurityRulePropertiesFormat,
    SubResource,
)

from tests.contract.arm_helpers import (
    STORAGE,
    SUB,
    SUBSCRIPTION,
    VM_WEB,
    arm_http,
    arm_settings,
    error_code,
    fast_operations,
    mgmt_options,
    published,
    same_shape,
)

NSG_WEB = f"{SUB}/resourceGroups/rg-prod-web/providers/Microsoft.Network/networkSecurityGroups/nsg-web"
NSG_DEV = f"{SUB}/resourceGroups/rg-dev/providers/Microsoft.Network/networkSecurityGroups/nsg-dev"
NIC_DEV_B = f"{SUB}/resourceGroups/rg-dev/providers/Microsoft.Network/networkInterfaces/nic-dev-02b"
WATCHER_RG, WATCHER = "NetworkWatcherRG", "NetworkWatcher_westeurope"
API = {"api-version": "2024-07-01"}


@pytest.fixture
def network(cloud: Any) -> Iterator[NetworkManagementClient]:
    fast_operations(cloud)
    client = NetworkManagementClient(DefaultAzureCredential(), SUBSCRIPTION, **mgmt_options(cloud))
    yield client
    client.close()


def deny_rule(name: str, priority: int, source: str = "203.0.113.66", direction: str = "Inbound") -> SecurityRule:
    return SecurityRule(
        name=name,
        properties=SecurityRulePropertiesFormat(
            protocol="*",
            source_address_prefix=source,
            source_port_range="*",
            destination_address_prefix="*",
            destination_port_range="*",
            access="Deny",
            priority=priority,
            direction=direction,
        ),
    )


def nsg_with(*rules: SecurityRule) -> NetworkSecurityGroup:
    return NetworkSecurityGroup(
        location="westeurope", properties=NetworkSecurityGroupPropertiesFormat(security_rules=list(rules))
    )


def capture(target: str = VM_WEB, limit: int = 60) -> PacketCapture:
    return PacketCapture(
        properties=PacketCaptureParameters(
            target=target,
            time_limit_in_seconds=limit,
            storage_location=PacketCaptureStorageLocation(storage_id=STORAGE),
            filters=[PacketCaptureFilter(protocol="TCP", local_port="443")],
        )
    )


# ---- network security groups ------------------------------------------------------------------------------------


def test_nsg_get_has_the_published_shape_with_default_rules(cloud, network):
    nsg = network.network_security_groups.get("rg-prod-web", "nsg-web")
    assert [r.name for r in nsg.security_rules] == ["AllowHttpsInbound", "AllowSshFromJumpHost"]
    assert sorted(r.priority for r in nsg.default_security_rules) == [65000, 65000, 65001, 65001, 65500, 65500]
    assert nsg.network_interfaces[0].id.endswith("/networkInterfaces/nic-web-01")
    assert nsg.etag.startswith('W/"')
    assert {r.etag for r in nsg.security_rules + nsg.default_security_rules} == {nsg.etag}

    with arm_http(cloud) as http:
        raw = http.get(NSG_WEB, params=API).json()
    example = published("network/networksecuritygroups_createorupdate_withrule_2024-07-01.json")
    assert same_shape(raw, example["responses"]["200"]["body"]) == []


def test_nsg_create_runs_as_a_long_running_operation(cloud, network):
    body = nsg_with(deny_rule("DenyAttacker", 100))
    result = network.network_security_groups.begin_create_or_update("rg-prod-web", "nsg-quarantine", body).result()
    assert result.provisioning_state == "Succeeded"
    assert [r.name for r in result.security_rules] == ["DenyAttacker"]
    assert len(result.default_security_rules) == 6
    calls = [(r["method"], r["status"], r["pattern"].rsplit("/", 1)[-1]) for r in cloud.requests(service="arm")]
    assert calls[0] == ("PUT", 201, "{nsg}")
    assert ("GET", 200, "{operation_id}") in calls
    assert calls[-1] == ("GET", 200, "{nsg}")
    created = cloud.tenant()["arm"]["resources"]
    assert any(r["id"].endswith("/networkSecurityGroups/nsg-quarantine") for r in created)


def test_nsg_put_protocol_headers_status_and_updating_body(cloud):
    arm_settings(cloud, operationSeconds=0.3, retryAfterSeconds=2)
    with arm_http(cloud) as http:
        current = http.get(NSG_DEV, params=API).json()
        current["properties"]["securityRules"].append(
            {
                "name": "DenyAll",
                "properties": {
                    "protocol": "*",
                    "sourcePortRange": "*",
                    "destinationPortRange": "*",
                    "sourceAddressPrefix": "*",
                    "destinationAddressPrefix": "*",
                    "access": "Deny",
                    "priority": 4096,
                    "direction": "Inbound",
                },
            }
        )
        put = http.put(NSG_DEV.upper().replace("/SUBSCRIPTIONS/", "/subscriptions/"), params=API, json=current)
        assert put.status_code == 200  # an update; 201 is for a new NSG
        assert put.headers["retry-after"] == "2"
        assert put.json()["properties"]["provisioningState"] == "Updating"
        assert put.json()["name"] == "nsg-dev"  # answered with the stored casing
        status_url = put.headers["azure-asyncoperation"]
        assert "/providers/Microsoft.Network/locations/westeurope/operations/" in status_url
        assert http.get(status_url).json()["status"] == "InProgress"
        time.sleep(0.35)
        assert http.get(status_url).json()["status"] == "Succeeded"
        after = http.get(NSG_DEV, params=API).json()
    assert after["properties"]["provisioningState"] == "Succeeded"
    assert after["etag"] != put.json()["etag"]  # the provider stamps a new etag when the write completes
    assert [r["name"] for r in after["properties"]["securityRules"]] == ["AllowSshFromCorp", "DenyAll"]


def test_nsg_put_replaces_the_rules_but_keeps_default_rules_and_associations(cloud, network):
    body = nsg_with(deny_rule("OnlyRule", 500))
    result = network.network_security_groups.begin_create_or_update("rg-prod-web", "nsg-web", body).result()
    assert [r.name for r in result.security_rules] == ["OnlyRule"]
    assert len(result.default_security_rules) == 6
    assert result.network_interfaces[0].id.endswith("/nic-web-01")


def test_write_while_an_operation_holds_the_nsg_gets_429_with_retry_after(cloud):
    arm_settings(cloud, operationSeconds=5, retryAfterSeconds=3)
    with arm_http(cloud) as http:
        rule = {
            "properties": {
                "protocol": "*",
                "sourcePortRange": "*",
                "destinationPortRange": "*",
                "sourceAddressPrefix": "198.51.100.99",
                "destinationAddressPrefix": "*",
                "access": "Deny",
                "priority": 150,
                "direction": "Inbound",
            }
        }
        first = http.put(f"{NSG_WEB}/securityRules/Block1", params=API, json=rule)
        rule["properties"]["priority"] = 151
        second = http.put(f"{NSG_WEB}/securityRules/Block2", params=API, json=rule)
        whole = http.put(NSG_WEB, params=API, json=http.get(NSG_WEB, params=API).json())
    assert first.status_code == 201
    for blocked in (second, whole):
        assert blocked.status_code == 429
        assert blocked.headers["retry-after"] == "3"
        error = blocked.json()["error"]
        assert error["code"] == "RetryableError"
        assert error["details"][0]["code"] == "RetryableErrorDueToAnotherOperation"
        assert "PutSecurityRuleOperation" in error["details"][0]["message"]


def test_concurrent_rule_writes_one_gets_429_and_the_sdk_retry_succeeds(cloud, network):
    arm_settings(cloud, operationSeconds=0.3, retryAfterSeconds=1)
    results: dict[str, Any] = {}
    start = threading.Barrier(2)

    def write(name: str, priority: int) -> None:
        start.wait()
        poller = network.security_rules.begin_create_or_update(
            "rg-prod-web", "nsg-web", name, deny_rule(name, priority)
        )
        results[name] = poller.result()

    threads = [threading.Thread(target=write, args=(n, p)) for n, p in (("BlockA", 120), ("BlockB", 121))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert set(results) == {"BlockA", "BlockB"}
    puts = [r for r in cloud.requests(service="arm") if r["method"] == "PUT"]
    statuses = [r["status"] for r in puts]
    assert statuses.count(201) == 2 and statuses.count(429) >= 1  # one was turned away, then retried
    nsg = network.network_security_groups.get("rg-prod-web", "nsg-web")
    assert {"BlockA", "BlockB"} <= {r.name for r in nsg.security_rules}
    assert {r.provisioning_state for r in nsg.security_rules} == {"Succeeded"}


async def test_async_concurrent_nsg_writes_are_serialized_by_429_retries(cloud):
    arm_settings(cloud, operationSeconds=0.2, retryAfterSeconds=1)
    async with (
        AsyncDefaultAzureCredential() as credential,
        AsyncNetworkManagementClient(credential, SUBSCRIPTION, **mgmt_options(cloud)) as network,
    ):

        async def write(name: str, priority: int) -> Any:
            poller = await network.security_rules.begin_create_or_update(
                "rg-network", "nsg-perimeter", name, deny_rule(name, priority, source=f"203.0.113.{priority - 100}")
            )
            return await poller.result()

        created = await asyncio.gather(write("Block-1", 120), write("Block-2", 121), write("Block-3", 122))
        nsg = await network.network_security_groups.get("rg-network", "nsg-perimeter")
    assert [r.provisioning_state for r in created] == ["Succeeded"] * 3
    assert {"Block-1", "Block-2", "Block-3"} <= {r.name for r in nsg.security_rules}
    statuses = [r["status"] for r in cloud.requests(service="arm") if r["method"] == "PUT"]
    assert statuses.count(429) >= 2 and statuses.count(201) == 3


async def test_async_rule_create_update_delete(cloud):
    fast_operations(cloud)
    async with (
        AsyncDefaultAzureCredential() as credential,
        AsyncNetworkManagementClient(credential, SUBSCRIPTION, **mgmt_options(cloud)) as network,
    ):
        poller = await network.security_rules.begin_create_or_update(
            "rg-network", "nsg-perimeter", "Block-203.0.113.66", deny_rule("Block-203.0.113.66", 120)
        )
        created = await poller.result()
        assert created.provisioning_state == "Succeeded"
        assert str(created.id).endswith("/networkSecurityGroups/nsg-perimeter/securityRules/Block-203.0.113.66")
        updated_rule = deny_rule("Block-203.0.113.66", 130)
        updated = await (await network.security_rules.begin_create_or_update(
            "rg-network", "nsg-perimeter", "Block-203.0.113.66", updated_rule
        )).result()  # fmt: skip
        assert updated.priority == 130
        fetched = await network.security_rules.get("rg-network", "nsg-perimeter", "block-203.0.113.66")
        assert fetched.name == "Block-203.0.113.66" and fetched.etag == updated.etag
        await (await network.security_rules.begin_delete("rg-network", "nsg-perimeter", "Block-203.0.113.66")).result()
        names = [r.name async for r in network.security_rules.list("rg-network", "nsg-perimeter")]
        defaults = [r.name async for r in network.default_security_rules.list("rg-network", "nsg-perimeter")]
    assert "Block-203.0.113.66" not in names
    assert len(names) == 3 and len(defaults) == 6
    delete = next(r for r in cloud.requests(service="arm") if r["method"] == "DELETE")
    assert delete["status"] == 202


def test_priority_must_be_unique_per_direction(cloud, network):
    with pytest.raises(HttpResponseError) as conflict:
        network.security_rules.begin_create_or_update("rg-prod-web", "nsg-web", "Dup", deny_rule("Dup", 100)).result()
    assert conflict.value.status_code == 400
    assert error_code(conflict.value) == "SecurityRuleConflict"
    assert "Rules cannot have the same Priority and Direction" in str(conflict.value)
    outbound = deny_rule("SamePriorityOutbound", 100, direction="Outbound")
    created = network.security_rules.begin_create_or_update("rg-prod-web", "nsg-web", outbound.name, outbound).result()
    assert created.priority == 100 and created.direction == "Outbound"


@pytest.mark.parametrize("priority", [99, 4097])
def test_priority_outside_100_to_4096_is_rejected(cloud, network, priority):
    with pytest.raises(HttpResponseError) as invalid:
        network.security_rules.begin_create_or_update(
            "rg-prod-web", "nsg-web", "Bad", deny_rule("Bad", priority)
        ).result()
    assert invalid.value.status_code == 400
    assert error_code(invalid.value) == "SecurityRuleInvalidPriority"


def test_rule_without_protocol_is_rejected(cloud):
    with arm_http(cloud) as http:
        response = http.put(
            f"{NSG_WEB}/securityRules/NoProtocol",
            params=API,
            json={"properties": {"access": "Deny", "direction": "Inbound", "priority": 300}},
        )
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "InvalidRequestFormat"


def test_if_match_with_a_stale_etag_is_412(cloud):
    fast_operations(cloud)
    with arm_http(cloud) as http:
        nsg = http.get(NSG_WEB, params=API).json()
        stale = http.put(
            NSG_WEB, params=API, json=nsg, headers={"If-Match": 'W/"00000000-0000-0000-0000-000000000000"'}
        )
        current = http.put(NSG_WEB, params=API, json=nsg, headers={"If-Match": nsg["etag"]})
        rule = http.get(f"{NSG_WEB}/securityRules/AllowHttpsInbound", params=API)
        stale_rule = http.delete(
            f"{NSG_WEB}/securityRules/AllowHttpsInbound", params=API, headers={"If-Match": rule.json()["etag"] + "x"}
        )
    assert stale.status_code == 412
    assert stale.json()["error"]["code"] == "PreconditionFailed"
    assert current.status_code == 200
    assert stale_rule.status_code == 412


def test_nsg_in_use_cannot_be_deleted_but_an_unused_one_can(cloud, network):
    with pytest.raises(HttpResponseError) as in_use:
        network.network_security_groups.begin_delete("rg-prod-web", "nsg-web").result()
    assert error_code(in_use.value) == "InUseNetworkSecurityGroupCannotBeDeleted"
    network.network_security_groups.begin_create_or_update(
        "rg-dev", "nsg-temp", NetworkSecurityGroup(location="westeurope")
    ).result()
    network.network_security_groups.begin_delete("rg-dev", "nsg-temp").result()
    with pytest.raises(ResourceNotFoundError):
        network.network_security_groups.get("rg-dev", "nsg-temp")
    names = [n.name for n in network.network_security_groups.list_all()]
    assert sorted(names) == ["nsg-dev", "nsg-perimeter", "nsg-web"]


def test_missing_nsg_and_missing_resource_group_are_404_like_arm(cloud, network):
    with pytest.raises(ResourceNotFoundError) as missing:
        network.network_security_groups.get("rg-prod-web", "nsg-nope")
    assert error_code(missing.value) == "ResourceNotFound"
    with pytest.raises(ResourceNotFoundError) as no_group:
        network.network_security_groups.get("rg-nope", "nsg-web")
    assert error_code(no_group.value) == "ResourceGroupNotFound"
    with pytest.raises(ResourceNotFoundError) as no_rule:
        network.security_rules.get("rg-prod-web", "nsg-web", "NoSuchRule")
    assert error_code(no_rule.value) == "NotFound"


def test_ids_and_segments_are_case_insensitive(cloud):
    with arm_http(cloud) as http:
        response = http.get(
            f"/SUBSCRIPTIONS/{SUBSCRIPTION.upper()}/resourcegroups/RG-PROD-WEB/providers/microsoft.network/"
            "NETWORKSECURITYGROUPS/NSG-WEB",
            params=API,
        )
    assert response.status_code == 200
    assert response.json()["id"] == NSG_WEB


# ---- network interfaces and public IPs --------------------------------------------------------------------------


def test_nic_get_has_the_published_shape_and_vm_back_reference(cloud, network):
    nic = network.network_interfaces.get("rg-prod-web", "nic-web-01")
    assert nic.ip_configurations[0].private_ip_address == "10.10.1.4"
    assert nic.ip_configurations[0].public_ip_address.id.endswith("/publicIPAddresses/pip-web-01")
    assert nic.network_security_group.id == NSG_WEB
    assert nic.virtual_machine.id == VM_WEB
    with arm_http(cloud) as http:
        raw = http.get(nic.id, params=API).json()
    example = published("network/networkinterfaces_get_2024-07-01.json")["responses"]["200"]["body"]
    unrealistic = frozenset({"properties.dscpConfiguration", "properties.disableTcpStateTracking"})
    assert same_shape(raw, example, unrealistic) == []


def test_attaching_an_nsg_to_a_nic_updates_both_sides(cloud, network):
    nic = network.network_interfaces.get("rg-dev", "nic-dev-02b")
    assert nic.network_security_group is None
    nic.network_security_group = SubResource(id=NSG_DEV)
    updated = network.network_interfaces.begin_create_or_update("rg-dev", "nic-dev-02b", nic).result()
    assert updated.network_security_group.id == NSG_DEV
    assert updated.provisioning_state == "Succeeded"
    assert updated.virtual_machine.id.endswith("/virtualMachines/vm-dev-02")
    assert updated.ip_configurations[0].private_ip_address == "10.20.2.4"
    nsg = network.network_security_groups.get("rg-dev", "nsg-dev")
    assert sorted(i.id.rsplit("/", 1)[-1] for i in nsg.network_interfaces) == ["nic-dev-02a", "nic-dev-02b"]

    updated.network_security_group = None
    detached = network.network_interfaces.begin_create_or_update("rg-dev", "nic-dev-02b", updated).result()
    assert detached.network_security_group is None
    nsg = network.network_security_groups.get("rg-dev", "nsg-dev")
    assert [i.id.rsplit("/", 1)[-1] for i in nsg.network_interfaces] == ["nic-dev-02a"]


def test_nic_referencing_a_missing_or_far_away_nsg_is_rejected(cloud, network):
    nic = network.network_interfaces.get("rg-dev", "nic-dev-02b")
    nic.network_security_group = SubResource(id=NSG_DEV.replace("nsg-dev", "nsg-ghost"))
    with pytest.raises(HttpResponseError) as invalid:
        network.network_interfaces.begin_create_or_update("rg-dev", "nic-dev-02b", nic).result()
    assert invalid.value.status_code == 400
    assert error_code(invalid.value) == "InvalidResourceReference"


def test_nic_write_referencing_an_nsg_being_updated_gets_429(cloud):
    arm_settings(cloud, operationSeconds=5)
    with arm_http(cloud) as http:
        nsg = http.get(NSG_DEV, params=API).json()
        assert http.put(NSG_DEV, params=API, json=nsg).status_code == 200
        nic = http.get(NIC_DEV_B, params=API).json()
        nic["properties"]["networkSecurityGroup"] = {"id": NSG_DEV}
        blocked = http.put(NIC_DEV_B, params=API, json=nic)
    assert blocked.status_code == 429
    assert blocked.json()["error"]["details"][0]["code"] == "ReferencedResourceNotProvisioned"


def test_effective_security_rules_of_a_nic(cloud, network):
    result = network.network_interfaces.begin_list_effective_network_security_groups(
        "rg-prod-web", "nic-web-01"
    ).result()
    [group] = result.value
    assert group.network_security_group.id == NSG_WEB
    https = next(r for r in group.effective_security_rules if r.name == "securityRules/AllowHttpsInbound")
    assert (https.destination_port_range, https.access, https.priority) == ("443-443", "Allow", 100)
    assert len(group.effective_security_rules) == 8


def test_public_ip_address(cloud, network):
    address = network.public_ip_addresses.get("rg-prod-web", "pip-web-01")
    assert address.ip_address == "20.61.15.33"
    assert address.ip_configuration.id.endswith("/networkInterfaces/nic-web-01/ipConfigurations/ipconfig1")
    assert [a.name for a in network.public_ip_addresses.list_all()] == ["pip-web-01"]


def test_network_watchers_per_subscription_and_group(cloud, network):
    assert [w.name for w in network.network_watchers.list_all()] == [WATCHER]
    [watcher] = list(network.network_watchers.list(WATCHER_RG))
    assert watcher.location == "westeurope" and watcher.provisioning_state == "Succeeded"


# ---- packet captures ------------------------------------------------------------------------------------------------


def test_packet_capture_lifecycle_matches_the_published_examples(cloud, network):
    created = network.packet_captures.begin_create(WATCHER_RG, WATCHER, "pc-web-01", capture()).result()
    assert created.provisioning_state == "Succeeded"
    assert created.target == VM_WEB
    assert created.storage_location.storage_path.startswith("https://stcontosocaptures.blob.core.windows.net/")
    status = network.packet_captures.begin_get_status(WATCHER_RG, WATCHER, "pc-web-01").result()
    assert status.packet_capture_status == "Running"
    assert [c.name for c in network.packet_captures.list(WATCHER_RG, WATCHER)] == ["pc-web-01"]

    capture_id = created.id
    with arm_http(cloud) as http:
        raw_get = http.get(capture_id, params=API).json()
        raw_status = http.post(f"{capture_id}/queryStatus", params=API).json()
    get_example = published("network/packetcaptures_get_2024-07-01.json")["responses"]["200"]["body"]
    status_example = published("network/packetcaptures_getstatus_2024-07-01.json")["responses"]["200"]["body"]
    client_chosen = frozenset({"properties.storageLocation.filePath", "properties.filters"})
    assert same_shape(raw_get, get_example, client_chosen) == []
    assert same_shape(raw_status, status_example) == []
    assert "properties" not in raw_status  # queryStatus is flat

    network.packet_captures.begin_stop(WATCHER_RG, WATCHER, "pc-web-01").result()
    stopped = network.packet_captures.begin_get_status(WATCHER_RG, WATCHER, "pc-web-01").result()
    assert (stopped.packet_capture_status, stopped.stop_reason) == ("Stopped", "ManualStop")
    network.packet_captures.begin_delete(WATCHER_RG, WATCHER, "pc-web-01").result()
    with pytest.raises(ResourceNotFoundError):
        network.packet_captures.get(WATCHER_RG, WATCHER, "pc-web-01")


def test_packet_capture_stops_when_its_time_limit_passes(cloud, network):
    network.packet_captures.begin_create(WATCHER_RG, WATCHER, "pc-short", capture(limit=1)).result()
    running = network.packet_captures.begin_get_status(WATCHER_RG, WATCHER, "pc-short").result()
    assert running.packet_capture_status == "Running"
    time.sleep(1.05)
    stopped = network.packet_captures.begin_get_status(WATCHER_RG, WATCHER, "pc-short").result()
    assert (stopped.packet_capture_status, stopped.stop_reason) == ("Stopped", "TimeExceeded")
    assert stopped.capture_start_time is not None


def test_packet_capture_create_answers_201_updating_with_async_operation(cloud):
    fast_operations(cloud)
    path = (
        f"{SUB}/resourceGroups/{WATCHER_RG}/providers/Microsoft.Network/networkWatchers/{WATCHER}/packetCaptures/pc-raw"
    )
    body = {"properties": {"target": VM_WEB, "timeLimitInSeconds": 100, "storageLocation": {"storageId": STORAGE}}}
    with arm_http(cloud) as http:
        created = http.put(path, params=API, json=body)
        again = http.put(path, params=API, json=body)
    assert created.status_code == 201
    assert created.json()["properties"]["provisioningState"] == "Updating"
    assert "azure-asyncoperation" in created.headers
    example = published("network/packetcaptures_create_2024-07-01.json")["responses"]["201"]["body"]
    client_chosen = frozenset({"properties.storageLocation.filePath", "properties.filters"})
    assert same_shape(created.json(), example, client_chosen) == []
    assert again.status_code == 409


@pytest.mark.parametrize(
    ("body", "code"),
    [
        (
            {"target": VM_WEB.replace("vm-web-01", "vm-ghost"), "storageLocation": {"storageId": STORAGE}},
            "InvalidResourceReference",
        ),
        ({"target": VM_WEB}, "InvalidRequestFormat"),
        (
            {"target": VM_WEB, "storageLocation": {"storageId": STORAGE.replace("captures", "nope")}},
            "InvalidResourceReference",
        ),
        (
            {"target": VM_WEB, "storageLocation": {"filePath": "/tmp/x.cap"}, "timeLimitInSeconds": 18001},
            "InvalidRequestFormat",
        ),
    ],
)
def test_packet_capture_validation(cloud, body, code):
    path = f"{SUB}/resourceGroups/{WATCHER_RG}/providers/Microsoft.Network/networkWatchers/{WATCHER}/packetCaptures/bad"
    with arm_http(cloud) as http:
        response = http.put(path, params=API, json={"properties": body})
    assert response.status_code == 400
    assert response.json()["error"]["code"] == code


async def test_async_packet_capture_on_a_stopped_vm_is_refused(cloud):
    fast_operations(cloud)
    with arm_http(cloud) as http:
        http.post(f"{VM_WEB}/deallocate", params={"api-version": "2024-07-01"}).raise_for_status()
    async with (
        AsyncDefaultAzureCredential() as credential,
        AsyncNetworkManagementClient(credential, SUBSCRIPTION, **mgmt_options(cloud)) as network,
    ):
        with pytest.raises(HttpResponseError) as refused:
            poller = await network.packet_captures.begin_create(WATCHER_RG, WATCHER, "pc-off", capture())
            await poller.result()
    assert error_code(refused.value) == "VmNotRunning"


def test_nic_create_and_delete_and_a_nic_in_use_cannot_be_deleted(cloud, network):
    with pytest.raises(HttpResponseError) as in_use:
        network.network_interfaces.begin_delete("rg-dev", "nic-dev-02b").result()
    assert error_code(in_use.value) == "NicInUse"
    spare = network.network_interfaces.get("rg-dev", "nic-dev-02b")
    spare.network_security_group = SubResource(id=NSG_DEV)
    spare.ip_configurations[0].private_ip_address = "10.20.2.9"
    created = network.network_interfaces.begin_create_or_update("rg-dev", "nic-spare", spare).result()
    assert cloud.requests(service="arm")[-3]["status"] == 201  # PUT, operation poll, final GET
    assert created.virtual_machine is None and created.mac_address
    assert created.ip_configurations[0].id.endswith("/networkInterfaces/nic-spare/ipConfigurations/ipconfig1")
    assert len(network.network_security_groups.get("rg-dev", "nsg-dev").network_interfaces) == 2
    network.network_interfaces.begin_delete("rg-dev", "nic-spare").result()
    assert len(network.network_security_groups.get("rg-dev", "nsg-dev").network_interfaces) == 1
    with pytest.raises(ResourceNotFoundError):
        network.network_interfaces.get("rg-dev", "nic-spare")


def test_update_tags_is_synchronous_with_a_new_etag(cloud, network):
    before = network.network_security_groups.get("rg-prod-web", "nsg-web")
    updated = network.network_security_groups.update_tags(
        "rg-prod-web", "nsg-web", {"tags": {"environment": "production", "riposte": "isolation"}}
    )
    assert updated.tags == {"environment": "production", "riposte": "isolation"}
    assert updated.etag != before.etag
    nic = network.network_interfaces.update_tags("rg-prod-web", "nic-web-01", {"tags": {"quarantined": "true"}})
    assert nic.tags == {"quarantined": "true"}


def test_by_default_the_lock_lasts_until_the_first_poll_or_the_abandon_time(cloud):
    arm_settings(cloud, abandonedOperationSeconds=0.3)  # operationSeconds stays 0: done at the first poll
    rule = {
        "properties": {
            "protocol": "*",
            "sourcePortRange": "*",
            "destinationPortRange": "*",
            "sourceAddressPrefix": "198.51.100.7",
            "destinationAddressPrefix": "*",
            "access": "Deny",
            "priority": 170,
            "direction": "Inbound",
        }
    }
    with arm_http(cloud) as http:
        first = http.put(f"{NSG_WEB}/securityRules/R1", params=API, json=rule)
        rule["properties"]["priority"] = 171
        locked = http.put(f"{NSG_WEB}/securityRules/R2", params=API, json=rule)
        assert http.get(first.headers["azure-asyncoperation"]).json()["status"] == "Succeeded"  # the first poll
        after_poll = http.put(f"{NSG_WEB}/securityRules/R2", params=API, json=rule)
        rule["properties"]["priority"] = 172
        unpolled = http.put(f"{NSG_WEB}/securityRules/R3", params=API, json=rule)  # nobody polls this one
        time.sleep(0.35)
        rule["properties"]["priority"] = 173
        after_abandon = http.put(f"{NSG_WEB}/securityRules/R4", params=API, json=rule)
    assert [r.status_code for r in (first, locked, after_poll, unpolled, after_abandon)] == [201, 429, 201, 429, 201]
