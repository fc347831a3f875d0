"""Dry runs say whether the identity holds what each action needs: Graph permissions from the token's roles claim,
Azure roles from the effective permissions at the target's resource group (the emulated tenant's riposteIdentity)."""

from __future__ import annotations

from typing import Any

from shared.actions import executor
from shared.actions.model import Status
from shared.actions.permissions import IdentityPermissions, allows, token_roles
from tests.actions.conftest import ADELE, SUBSCRIPTION, VM_DEV, VM_WEB, ContextFactory
from tests.conftest import CloudHandle

VM_JUMP = f"/subscriptions/{SUBSCRIPTION}/resourceGroups/rg-soc/providers/Microsoft.Compute/virtualMachines/vm-jump-01"


async def test_dry_run_reports_graph_permissions_from_the_token(make_context: ContextFactory, cloud: CloudHandle):
    ctx = make_context(dry_run=True)
    ctx.permissions = IdentityPermissions(ctx.azure)
    outcome = await executor.respond(ctx, "entra.disable_user", {"aad_user_id": ADELE}, key="perm-1")
    assert outcome.status is Status.DRY_RUN
    checks = {c.permission.name: c for c in outcome.permissions}
    assert checks["User.EnableDisableAccount.All"].held is True
    assert cloud.changes() == []


async def test_a_permission_missing_from_the_tenant_is_reported(make_context: ContextFactory, cloud: CloudHandle):
    doc = cloud.tenant()
    doc["tenant"]["riposteIdentity"]["graphPermissions"].remove("User.EnableDisableAccount.All")
    cloud.admin.put("/tenant", json=doc).raise_for_status()
    ctx = make_context(dry_run=True)
    ctx.permissions = IdentityPermissions(ctx.azure)
    outcome = await executor.respond(ctx, "entra.disable_user", {"aad_user_id": ADELE}, key="perm-2")
    checks = {c.permission.name: c for c in outcome.permissions}
    assert checks["User.EnableDisableAccount.All"].held is False
    assert "not granted" in checks["User.EnableDisableAccount.All"].detail


async def test_dry_run_reports_azure_roles_where_the_action_would_act(make_context: ContextFactory, cloud: CloudHandle):
    ctx = make_context(dry_run=True)
    ctx.permissions = IdentityPermissions(ctx.azure)
    held = await executor.respond(ctx, "compute.power_off_vm", {"vm": VM_DEV}, key="perm-3")
    assert held.status is Status.DRY_RUN
    assert held.permissions and all(c.held is True for c in held.permissions), held.permissions
    # rg-soc only has the Sentinel and Log Analytics roles: powering off its VM is not allowed
    missing = await executor.respond(ctx, "compute.power_off_vm", {"vm": VM_JUMP}, key="perm-4")
    assert any(c.held is False and "rg-soc" in c.detail for c in missing.permissions), missing.permissions
    isolate = await executor.respond(ctx, "network.isolate_vm", {"vm": VM_WEB}, key="perm-5")
    assert isolate.permissions and all(c.held is True for c in isolate.permissions), isolate.permissions
    assert cloud.changes() == []


def test_rbac_matching_and_token_roles() -> None:
    network = [{"actions": ["Microsoft.Network/*"], "notActions": []}]
    assert allows(network, "Microsoft.Network/networkSecurityGroups/write")
    assert not allows(network, "Microsoft.Compute/virtualMachines/powerOff/action")
    responder = [
        {
            "actions": ["Microsoft.SecurityInsights/incidents/*"],
            "notActions": ["Microsoft.SecurityInsights/incidents/delete"],
        }
    ]
    assert allows(responder, "Microsoft.SecurityInsights/incidents/comments/write")
    assert not allows(responder, "Microsoft.SecurityInsights/incidents/delete")
    assert token_roles("not-a-jwt") is None


def _identity(cloud: CloudHandle) -> tuple[dict[str, Any], dict[str, Any]]:
    doc = cloud.tenant()
    return doc, doc["tenant"]["riposteIdentity"]


async def test_dry_run_checks_the_operations_so_any_role_holding_them_will_do(
    make_context: ContextFactory, cloud: CloudHandle
):
    # The operator's own role, under another name, with the same operations as Riposte's custom roles
    doc, identity = _identity(cloud)
    for role in identity["roleDefinitions"]:
        role["roleName"] = role["roleName"].replace("Riposte", "Contoso SecOps")
    for assignment in identity["roleAssignments"]:
        assignment["roleDefinitionName"] = assignment["roleDefinitionName"].replace("Riposte", "Contoso SecOps")
    cloud.admin.put("/tenant", json=doc).raise_for_status()
    ctx = make_context(dry_run=True)
    ctx.permissions = IdentityPermissions(ctx.azure)
    for action, params in (
        ("network.isolate_vm", {"vm": VM_WEB}),
        ("compute.power_off_vm", {"vm": VM_DEV}),
        ("network.start_packet_capture", {"vm": VM_WEB}),
    ):
        outcome = await executor.respond(ctx, action, params, key=f"perm-own-{action}")
        assert outcome.status is Status.DRY_RUN, outcome.reason
        assert outcome.permissions and all(c.held is True for c in outcome.permissions), outcome.permissions
    assert cloud.changes() == []


async def test_capture_storage_is_checked_on_the_storage_account_where_it_is_assigned(
    make_context: ContextFactory, cloud: CloudHandle
):
    ctx = make_context(dry_run=True)
    ctx.permissions = IdentityPermissions(ctx.azure)
    outcome = await executor.respond(ctx, "network.start_packet_capture", {"vm": VM_WEB}, key="perm-capture")
    storage = [c for c in outcome.permissions if c.permission.operation.startswith("Microsoft.Storage/")]
    assert {c.permission.operation for c in storage} == {
        "Microsoft.Storage/storageAccounts/read",
        "Microsoft.Storage/storageAccounts/blobServices/generateUserDelegationKey/action",
    }
    assert all(c.held is True and "stcontosocaptures" in c.detail for c in storage), storage
    # without the assignment on the account, the key operation is not allowed there (rg-soc's readers still read it)
    doc, identity = _identity(cloud)
    identity["roleAssignments"] = [a for a in identity["roleAssignments"] if "Capture" not in a["roleDefinitionName"]]
    cloud.admin.put("/tenant", json=doc).raise_for_status()
    ctx.permissions = IdentityPermissions(ctx.azure)
    outcome = await executor.respond(ctx, "network.start_packet_capture", {"vm": VM_WEB}, key="perm-capture-2")
    [delegation] = [
        c for c in outcome.permissions if c.permission.operation.endswith("generateUserDelegationKey/action")
    ]
    assert delegation.held is False and "not allowed in storageAccounts stcontosocaptures" in delegation.detail


async def test_an_operation_missing_from_a_custom_role_is_named(make_context: ContextFactory, cloud: CloudHandle):
    doc, identity = _identity(cloud)
    network = next(r for r in identity["roleDefinitions"] if r["roleName"].startswith("Riposte Network Responder"))
    network["actions"].remove("Microsoft.Network/virtualNetworks/subnets/join/action")
    cloud.admin.put("/tenant", json=doc).raise_for_status()
    ctx = make_context(dry_run=True)
    ctx.permissions = IdentityPermissions(ctx.azure)
    outcome = await executor.respond(ctx, "network.isolate_vm", {"vm": VM_WEB}, key="perm-missing-op")
    missing = [c for c in outcome.permissions if c.held is False]
    assert [c.permission.operation for c in missing] == ["Microsoft.Network/virtualNetworks/subnets/join/action"]
    assert "subnets/join/action not allowed in resource group rg-prod-web" in missing[0].detail
    assert all(c.held is True for c in outcome.permissions if c not in missing)
