"""Dry runs say whether the identity holds what each action needs: Graph permissions from the token's roles claim,
Azure roles from the effective permissions at the target's resource group (the emulated tenant's riposteIdentity)."""

from __future__ import annotations

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
