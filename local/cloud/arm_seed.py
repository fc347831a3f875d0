"""Fills the derived fields of the tenant document's `arm:` and `sentinel:` sections, so a seed can stay short and
readable: ids of sub-resources, etags, provisioning states, default NSG rules, the VM instance view, back-references
(NIC -> VM, NSG -> NICs, public IP -> ipConfiguration), incident numbers, entity ids, relative times ('now-2h').

Idempotent: expanding an already expanded document (GET /_admin/tenant then PUT it back) changes nothing."""

from __future__ import annotations

import time
from typing import Any

from local.cloud import arm_compute, arm_network, arm_resources, arm_sentinel
from local.cloud.arm_resources import ArmId, Json, group_id, key
from local.cloud.seed import SeedError

GENERIC_DEFAULTS: dict[str, Json] = {
    arm_resources.WORKSPACE_TYPE.lower(): {
        "provisioningState": "Succeeded",
        "sku": {"name": "PerGB2018"},
        "retentionInDays": 90,
        "publicNetworkAccessForIngestion": "Enabled",
        "publicNetworkAccessForQuery": "Enabled",
    },
    arm_resources.STORAGE_TYPE.lower(): {
        "provisioningState": "Succeeded",
        "supportsHttpsTrafficOnly": True,
        "minimumTlsVersion": "TLS1_2",
        "allowBlobPublicAccess": False,
    },
}


def expand(doc: dict[str, Any]) -> dict[str, Any]:
    now = time.time()
    if isinstance(doc.get("arm"), dict):
        expand_arm(doc)
    arm_sentinel.expand(doc, now)
    return doc


def expand_arm(doc: Json) -> None:
    section = doc["arm"]
    tenant_id = (doc.get("tenant") or {}).get("id")
    for subscription in section.setdefault("subscriptions", []):
        subscription.setdefault("tenantId", tenant_id)
        subscription.setdefault("state", "Enabled")
        subscription.setdefault("displayName", subscription["subscriptionId"])
    for group in section.setdefault("resourceGroups", []):
        group.setdefault("id", group_id(group["subscriptionId"], group["name"]))
        group.setdefault("location", "westeurope")
        group.setdefault("properties", {"provisioningState": "Succeeded"})
    locations = {key(g["id"]): g["location"] for g in section["resourceGroups"]}
    resources: list[Json] = section.setdefault("resources", [])
    for resource in resources:
        parsed = ArmId.parse(resource.get("id"))
        if parsed is None:
            raise SeedError(f"arm.resources: '{resource.get('id')}' is not a resource id")
        resource.setdefault("name", parsed.name)
        resource.setdefault("type", parsed.resource_type)
        if len(parsed.types) == 1:  # child resources (packet captures) carry no location
            resource.setdefault(
                "location", locations.get(key(group_id(parsed.subscription, parsed.resource_group)), "westeurope")
            )
        expand_resource(resource)
    link_compute(resources)
    arm_network.link_network(resources)


def expand_resource(resource: Json) -> None:
    resource_type = str(resource["type"]).lower()
    if resource_type == arm_network.NSG_TYPE.lower():
        arm_network.expand_nsg(resource)
    elif resource_type == arm_network.NIC_TYPE.lower():
        arm_network.expand_nic(resource)
    elif resource_type == arm_network.PUBLIC_IP_TYPE.lower():
        arm_network.expand_public_ip(resource)
    elif resource_type == arm_network.CAPTURE_TYPE.lower():
        arm_network.expand_capture(resource)
    elif resource_type == arm_compute.VM_TYPE.lower():
        arm_compute.expand_vm(resource)
    else:
        props = resource.setdefault("properties", {})
        for name, value in GENERIC_DEFAULTS.get(resource_type, {"provisioningState": "Succeeded"}).items():
            props.setdefault(name, value)
        if resource_type.startswith("microsoft.network/"):
            resource.setdefault("etag", f'W/"{arm_network.deterministic_guid(resource["id"], "etag")}"')


def link_compute(resources: list[Json]) -> None:
    """NIC.virtualMachine from each VM's networkProfile."""
    nics = {key(r["id"]): r for r in resources if str(r.get("type", "")).lower() == arm_network.NIC_TYPE.lower()}
    for vm in resources:
        if str(vm.get("type", "")).lower() != arm_compute.VM_TYPE.lower():
            continue
        for reference in (vm.get("properties", {}).get("networkProfile") or {}).get("networkInterfaces", []):
            nic = nics.get(key(reference.get("id", "")))
            if nic is not None:
                nic.setdefault("properties", {})["virtualMachine"] = {"id": vm["id"]}
