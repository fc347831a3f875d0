"""Microsoft.Compute virtual machines against the real azure-mgmt-compute clients (sync and .aio): get with the
instance view, list, and powerOff / deallocate / start as long-running operations."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest
from azure.core.exceptions import HttpResponseError, ResourceNotFoundError
from azure.identity import DefaultAzureCredential
from azure.identity.aio import DefaultAzureCredential as AsyncDefaultAzureCredential
from azure.mgmt.compute import ComputeManagementClient
from azure.mgmt.compute.aio import ComputeManagementClient as AsyncComputeManagementClient
from azure.mgmt.compute.models import VirtualMachineUpdate

from tests.contract.arm_helpers import (
    SUBSCRIPTION,
    VM_WEB,
    arm_http,
    arm_settings,
    error_code,
    error_message,
    fast_operations,
    mgmt_options,
    published,
    same_shape,
)

API = {"api-version": "2024-07-01"}


@pytest.fixture
def compute(cloud: Any) -> Iterator[ComputeManagementClient]:
    fast_operations(cloud)
    client = ComputeManagementClient(DefaultAzureCredential(), SUBSCRIPTION, **mgmt_options(cloud))
    yield client
    client.close()


def power_state(view: Any) -> str:
    return str(next(s.code for s in view.statuses if s.code.startswith("PowerState/")))


def test_vm_get_with_instance_view(cloud, compute):
    vm = compute.virtual_machines.get("rg-prod-web", "vm-web-01", expand="instanceView")
    assert vm.id == VM_WEB
    assert vm.tags["environment"] == "production"
    assert vm.location == "westeurope"
    assert vm.hardware_profile.vm_size == "Standard_D2s_v5"
    assert vm.storage_profile.os_disk.os_type == "Linux"
    assert [n.id.rsplit("/", 1)[-1] for n in vm.network_profile.network_interfaces] == ["nic-web-01"]
    assert power_state(vm.instance_view) == "PowerState/running"
    assert vm.instance_view.computer_name == "vm-web-01"
    plain = compute.virtual_machines.get("rg-prod-web", "vm-web-01")
    assert plain.instance_view is None  # only with $expand=instanceView, like ARM


def test_vm_get_has_the_published_shape(cloud):
    with arm_http(cloud) as http:
        raw = http.get(VM_WEB, params=API).json()
    example = published("compute/virtualmachines_get_2024-07-01.json")["responses"]["200"]["body"]
    # The example's VM sits in an availability set and a scale set, with gallery apps and user data: not ours.
    not_ours = frozenset(
        {
            "properties.availabilitySet",
            "properties.proximityPlacementGroup",
            "properties.applicationProfile",
            "properties.userData",
            "properties.extensionsTimeBudget",
            "properties.osProfile.windowsConfiguration",
            "properties.storageProfile.dataDisks",
            "properties.diagnosticsProfile.bootDiagnostics.storageUri",
            "managedBy",
            "tags.myTag1",
            "resources[].tags",
            "resources[].properties.settings",
        }
    )
    assert same_shape(raw, example, not_ours) == []
    assert raw["etag"] == '"1"'


def test_instance_view_and_lists(cloud, compute):
    view = compute.virtual_machines.instance_view("rg-dev", "vm-dev-02")
    assert power_state(view) == "PowerState/running"
    assert [v.name for v in compute.virtual_machines.list("rg-dev")] == ["vm-dev-02"]
    everything = list(compute.virtual_machines.list_all())
    assert sorted(v.name for v in everything) == ["vm-dev-02", "vm-jump-01", "vm-web-01"]
    assert all(v.instance_view is None for v in everything)
    with_status = list(compute.virtual_machines.list_all(status_only="true"))
    assert {power_state(v.instance_view) for v in with_status} == {"PowerState/running"}
    dev = compute.virtual_machines.get("rg-dev", "vm-dev-02")
    assert dev.tags["environment"] == "dev"
    assert [n.id.rsplit("/", 1)[-1] for n in dev.network_profile.network_interfaces] == ["nic-dev-02a", "nic-dev-02b"]


def test_power_off_then_start(cloud, compute):
    compute.virtual_machines.begin_power_off("rg-prod-web", "vm-web-01", skip_shutdown=True).result()
    assert power_state(compute.virtual_machines.instance_view("rg-prod-web", "vm-web-01")) == "PowerState/stopped"
    compute.virtual_machines.begin_start("rg-prod-web", "vm-web-01").result()
    assert power_state(compute.virtual_machines.instance_view("rg-prod-web", "vm-web-01")) == "PowerState/running"
    power_off = next(r for r in cloud.requests(service="arm") if r["method"] == "POST")
    assert power_off["status"] == 202 and "skipShutdown=true" in power_off["query"]


async def test_async_deallocate_and_power_off_refused_when_deallocated(cloud):
    fast_operations(cloud)
    async with (
        AsyncDefaultAzureCredential() as credential,
        AsyncComputeManagementClient(credential, SUBSCRIPTION, **mgmt_options(cloud)) as compute,
    ):
        await (await compute.virtual_machines.begin_deallocate("rg-dev", "vm-dev-02")).result()
        view = await compute.virtual_machines.instance_view("rg-dev", "vm-dev-02")
        assert power_state(view) == "PowerState/deallocated"
        with pytest.raises(HttpResponseError) as refused:
            await (await compute.virtual_machines.begin_power_off("rg-dev", "vm-dev-02")).result()
        assert refused.value.status_code == 409
        assert error_code(refused.value) == "OperationNotAllowed"
        await (await compute.virtual_machines.begin_start("rg-dev", "vm-dev-02")).result()
        vm = await compute.virtual_machines.get("rg-dev", "vm-dev-02", expand="instanceView")
    assert power_state(vm.instance_view) == "PowerState/running"
    assert vm.provisioning_state == "Succeeded"


def test_power_action_protocol_202_location_and_transitional_state(cloud):
    arm_settings(cloud, operationSeconds=0.3, retryAfterSeconds=1)
    with arm_http(cloud) as http:
        accepted = http.post(f"{VM_WEB}/powerOff", params=API)
        assert accepted.status_code == 202
        assert accepted.content == b""
        assert accepted.headers["retry-after"] == "1"
        location = accepted.headers["location"]
        status_url = accepted.headers["azure-asyncoperation"]
        assert "/providers/Microsoft.Compute/locations/westeurope/" in status_url
        during = http.get(f"{VM_WEB}/instanceView", params=API).json()
        assert [s["code"] for s in during["statuses"]] == ["ProvisioningState/updating", "PowerState/stopping"]
        assert http.get(location).status_code == 202
        assert http.get(status_url).json()["status"] == "InProgress"
        time.sleep(0.35)
        done = http.get(status_url).json()
        assert done["status"] == "Succeeded" and "endTime" in done
        assert http.get(location).status_code == 200
        after = http.get(VM_WEB, params={**API, "$expand": "instanceView"}).json()
    assert after["properties"]["provisioningState"] == "Succeeded"
    codes = [s["code"] for s in after["properties"]["instanceView"]["statuses"]]
    assert codes == ["ProvisioningState/succeeded", "PowerState/stopped"]
    example = published("compute/virtualmachines_poweroff_2024-07-01.json")["responses"]["202"]
    assert set(example["headers"]) <= {k.lower() for k in accepted.headers}


def test_sdk_honours_the_retry_after_header(cloud):
    """An operation still running at the first poll: the poller then waits the server's Retry-After (1 s), not its
    own polling_interval (0 here, 30 s by default)."""
    arm_settings(cloud, operationSeconds=0.2, retryAfterSeconds=1)
    with ComputeManagementClient(DefaultAzureCredential(), SUBSCRIPTION, **mgmt_options(cloud)) as compute:
        started = time.monotonic()
        compute.virtual_machines.begin_power_off("rg-soc", "vm-jump-01").result()
        elapsed = time.monotonic() - started
    assert 0.9 < elapsed < 4
    polls = [r for r in cloud.requests(service="arm") if r["pattern"].endswith("/operations/{operation_id}")]
    assert len(polls) == 2


def test_vm_update_merges_tags_as_an_operation(cloud, compute):
    update = VirtualMachineUpdate(tags={"environment": "production", "riposte": "isolated"})
    updated = compute.virtual_machines.begin_update("rg-prod-web", "vm-web-01", update).result()
    assert updated.tags == {"environment": "production", "riposte": "isolated"}
    assert updated.provisioning_state == "Succeeded"
    assert updated.etag == '"2"'
    assert updated.hardware_profile.vm_size == "Standard_D2s_v5"  # untouched parts stay


def test_missing_vm_is_404_resource_not_found(cloud, compute):
    with pytest.raises(ResourceNotFoundError) as missing:
        compute.virtual_machines.get("rg-prod-web", "vm-nope")
    assert error_code(missing.value) == "ResourceNotFound"
    assert "Microsoft.Compute/virtualMachines/vm-nope" in error_message(missing.value)
