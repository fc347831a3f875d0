"""The Azure roles the actions need, and the exact ARM operations each action performs under them.

Virtual Machine Contributor would let Riposte's identity run code on every VM of a resource group (Run Command), and
Storage Account Contributor can list the account keys. Riposte's own custom roles (infra/modules/roles.bicep) grant
exactly the operations listed here instead; tests/infra checks the Bicep grants each role precisely the operations
the actions declare under its name. Sentinel and Log Analytics keep their built-in roles, which are narrow already.

A dry run checks each operation at the target's resource group (Microsoft.Authorization/permissions), never a role
name, so an equivalent role of the operator's own works as well."""

from __future__ import annotations

from shared.actions.model import Permission, azure_role

VM_RESPONDER = "Riposte VM Responder"
NETWORK_RESPONDER = "Riposte Network Responder"
CAPTURE_STORAGE = "Riposte Capture Storage"
DEFENDER_RESPONDER = "Riposte Defender Responder"
STORAGE_RESPONDER = "Riposte Storage Responder"
CUSTOM_ROLES = (VM_RESPONDER, NETWORK_RESPONDER, CAPTURE_STORAGE, DEFENDER_RESPONDER, STORAGE_RESPONDER)


def vm(*operations: str) -> tuple[Permission, ...]:
    return tuple(azure_role(VM_RESPONDER, f"Microsoft.Compute/virtualMachines{op}") for op in operations)


def defender_alerts(*operations: str) -> tuple[Permission, ...]:
    """Operations on Defender for Cloud alerts, checked at the alert's resource group."""
    return tuple(azure_role(DEFENDER_RESPONDER, f"Microsoft.Security/locations/alerts/{op}") for op in operations)


def storage_account(*operations: str) -> tuple[Permission, ...]:
    """Operations on the storage accounts of the target resource groups (never listKeys: write cannot read keys)."""
    return tuple(azure_role(STORAGE_RESPONDER, f"Microsoft.Storage/storageAccounts/{op}") for op in operations)


def network(*operations: str) -> tuple[Permission, ...]:
    return tuple(azure_role(NETWORK_RESPONDER, f"Microsoft.Network/{op}") for op in operations)


# Writing a NIC makes Resource Manager check "join" on everything its IP configurations reference, even unchanged.
NIC_WRITE = network(
    "networkInterfaces/read",
    "networkInterfaces/write",
    "virtualNetworks/subnets/join/action",
    "publicIPAddresses/join/action",
    "applicationSecurityGroups/joinIpConfiguration/action",
    "loadBalancers/backendAddressPools/join/action",
    "loadBalancers/inboundNatRules/join/action",
)

# Network Watcher writes the capture file with a user delegation SAS: no account key is involved.
CAPTURE_STORAGE_OPERATIONS = tuple(
    azure_role(CAPTURE_STORAGE, f"Microsoft.Storage/storageAccounts/{op}", at_setting="capture_storage_account_id")
    for op in ("read", "blobServices/generateUserDelegationKey/action")
)
