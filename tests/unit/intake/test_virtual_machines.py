"""VirtualMachine entities are derived in intake from Host.azureID and AzureResource.resourceId, one per VM by ARM id,
and the incident's summary, which matching, planning and the response all read, is made once."""

from __future__ import annotations

from shared.intake import normalise
from shared.intake.model import (
    AzureResourceEntity,
    Dialect,
    HostEntity,
    Incident,
    IpEntity,
    Severity,
    virtual_machine_name,
)
from tests.unit.intake.cases import sample

SUB = "/subscriptions/8c2b5f0e-3d4a-4b6c-9a1e-7f2d3c4b5a60"
VM_WEB = f"{SUB}/resourceGroups/rg-prod-web/providers/Microsoft.Compute/virtualMachines/vm-web-01"
VM_DEV = f"{SUB}/resourceGroups/rg-dev/providers/Microsoft.Compute/virtualMachines/vm-dev-02"


def incident(*entities: HostEntity | AzureResourceEntity | IpEntity) -> Incident:
    return Incident(
        dialect=Dialect.SENTINEL_INCIDENT_TRIGGER, title="t", severity=Severity.HIGH, status="New", entities=entities
    )


def test_the_vm_sample_names_its_vm_twice_and_has_one() -> None:
    vm = normalise(sample("sentinel-incident-compromised-vm.json"), max_entities=500)
    assert [e.kind for e in vm.entities][:2] == ["Host", "AzureResource"]  # both carry the VM's ARM id
    assert vm.summary()["virtualMachines"] == [
        {"kind": "VirtualMachine", "id": VM_WEB, "resourceId": VM_WEB, "name": "vm-web-01"}
    ]


def test_vms_are_distinct_by_arm_id_whatever_the_casing_in_order_of_first_mention() -> None:
    found = incident(
        AzureResourceEntity(id="r1", resource_id=VM_DEV),
        HostEntity(id="h1", azure_id=VM_WEB.lower() + "/"),
        HostEntity(id="h2", azure_id=VM_WEB.upper()),
        AzureResourceEntity(id="r2", resource_id=VM_DEV),
        HostEntity(id="h3"),  # a host with no Azure id (on premises): no VM
        IpEntity(id="i1", address="10.0.0.4"),
    ).virtual_machines
    assert [(vm.id, vm.name) for vm in found] == [(VM_DEV, "vm-dev-02"), (VM_WEB.lower(), "vm-web-01")]


def test_resources_that_are_not_vms_give_none() -> None:
    nsg = f"{SUB}/resourceGroups/rg-network/providers/Microsoft.Network/networkSecurityGroups/nsg-perimeter"
    extension = f"{VM_WEB}/extensions/MDE.Windows"
    found = incident(
        AzureResourceEntity(id="r1", resource_id=nsg),
        AzureResourceEntity(id="r2", resource_id=extension),
        HostEntity(id="h1", azure_id="vm-web-01"),
    ).virtual_machines
    assert found == ()


def test_the_vm_parser_takes_a_vm_id_in_any_casing_and_nothing_else() -> None:
    assert virtual_machine_name(VM_WEB) == "vm-web-01"
    assert virtual_machine_name(VM_WEB.upper() + "/") == "VM-WEB-01"
    assert virtual_machine_name(f" {VM_DEV} ") == "vm-dev-02"
    refused = [
        f"{VM_WEB}/extensions/MDE.Windows",  # a VM's child resource is not the VM
        VM_WEB.replace("Microsoft.Compute", "Microsoft.ClassicCompute"),
        VM_WEB.replace("virtualMachines", "virtualMachineScaleSets"),
        VM_WEB.replace("resourceGroups", "groups"),
        f"{SUB}/resourceGroups//providers/Microsoft.Compute/virtualMachines/vm",  # an empty segment
        "/subscriptions/s/resourceGroups/g/providers/Microsoft.Compute/virtualMachines",
        "",
    ]
    assert [virtual_machine_name(value) for value in refused] == [None] * len(refused)


def test_the_summary_is_made_once_per_incident() -> None:
    vm = normalise(sample("sentinel-incident-compromised-vm.json"), max_entities=500)
    assert vm.summary() is vm.summary()
    assert "raw" not in vm.summary() and vm.summary()["entityCounts"]["Host"] == 1
