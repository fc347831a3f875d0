"""The identity response set against the emulated Graph, through the real msgraph-sdk client: password change,
group membership, workload identities and the Conditional Access named location, each with its guardrails, dry run
and (where Graph allows it) exact undo."""

from __future__ import annotations

from typing import Any

import pytest

from shared.actions import executor
from shared.actions.model import Status
from shared.actions.permissions import IdentityPermissions
from tests.actions.conftest import ADELE, ALEX, BREAKGLASS, LEE, MEGAN, ContextFactory
from tests.conftest import CloudHandle

VPN = "5e0a7c3d-2b1f-4a6e-9c8d-7f6e5d4c3b06"
HELPDESK = "5e0a7c3d-2b1f-4a6e-9c8d-7f6e5d4c3b07"
FINANCE = "5e0a7c3d-2b1f-4a6e-9c8d-7f6e5d4c3b03"
TIER0 = "5e0a7c3d-2b1f-4a6e-9c8d-7f6e5d4c3b04"
BREAK_GLASS_GROUP = "5e0a7c3d-2b1f-4a6e-9c8d-7f6e5d4c3b01"
SYNC_APP = "6b2d4f8a-1c3e-4a5b-9d7f-0e1a2b3c4d01"
RIPOSTE_SP = "0d7c3b2a-8e4f-4a1b-9c6d-5e4f3a2b1c0d"
RIPOSTE_CLIENT = "3f8a2c1d-7b6e-4d5c-a9b8-1e2f3a4b5c6d"
MS_GRAPH_SP = "6b2d4f8a-1c3e-4a5b-9d7f-0e1a2b3c4d03"
LOCATION = "8d1f3b5c-7e9a-4b2d-8f6e-1a3c5e7b9d01"


def graph_of(cloud: CloudHandle) -> dict[str, Any]:
    graph: dict[str, Any] = cloud.tenant()["graph"]
    return graph


def members(cloud: CloudHandle, group_id: str) -> list[str]:
    return next(g["members"] for g in graph_of(cloud)["groups"] if g["id"] == group_id)


def graph_writes(cloud: CloudHandle) -> list[str]:
    return [f"{r['method']} {r['path']}" for r in cloud.requests(service="graph") if r["method"] != "GET"]


def ranges(cloud: CloudHandle) -> list[str]:
    location = next(n for n in graph_of(cloud)["namedLocations"] if n["id"] == LOCATION)
    return [r["cidrAddress"] for r in location["ipRanges"]]


def sp(cloud: CloudHandle, sp_id: str) -> dict[str, Any]:
    return next(s for s in graph_of(cloud)["servicePrincipals"] if s["id"] == sp_id)


# ---- entra.require_password_change --------------------------------------------------------------------------------


async def test_password_change_is_required_without_any_password(cloud, make_context: ContextFactory):
    ctx = make_context()
    outcome = await executor.respond(ctx, "entra.require_password_change", {"aad_user_id": ADELE}, key="k")

    assert outcome.status is Status.DONE, outcome.reason
    [patch] = [r for r in cloud.requests(service="graph") if r["method"] == "PATCH"]
    assert patch["body"]["passwordProfile"] == {"forceChangePasswordNextSignIn": True}  # and no password
    user = next(u for u in graph_of(cloud)["users"] if u["id"] == ADELE)
    assert user["passwordProfile"]["forceChangePasswordNextSignIn"] is True
    assert "password" not in user["passwordProfile"] and "password" not in str(outcome.result).lower().replace(
        "forcechangepassword", ""
    )
    undone = await executor.undo(ctx, outcome)
    assert undone.status is Status.SKIPPED and "cannot be withdrawn" in undone.reason


async def test_password_change_guardrails_and_privileged_users(cloud, make_context: ContextFactory):
    protected = await executor.respond(
        make_context(), "entra.require_password_change", {"aad_user_id": BREAKGLASS}, key="k1"
    )
    assert protected.status is Status.SKIPPED and "protected" in protected.reason
    admin = await executor.respond(make_context(), "entra.require_password_change", {"aad_user_id": LEE}, key="k2")
    # Graph refuses an admin's passwordProfile to an app without a higher role: the refusal is the outcome
    assert admin.status is Status.FAILED and "403" in admin.reason
    assert graph_writes(cloud) == [f"PATCH /v1.0/users/{LEE}"]


# ---- entra.remove_group_member -------------------------------------------------------------------------------------


async def test_remove_a_member_and_undo_adds_them_back(cloud, make_context: ContextFactory):
    ctx = make_context()
    params = {"aad_user_id": ADELE, "group_id": VPN}
    outcome = await executor.respond(ctx, "entra.remove_group_member", params, key="k")

    assert outcome.status is Status.DONE, outcome.reason
    assert outcome.prior == {"groupId": VPN, "groupName": "Remote Access VPN", "member": True}
    assert ADELE not in members(cloud, VPN) and ALEX in members(cloud, VPN)
    again = await executor.respond(make_context(), "entra.remove_group_member", params, key="k2")
    assert again.status is Status.ALREADY_DONE and again.reason == "the user is not a member of Remote Access VPN"

    undone = await executor.undo(ctx, outcome)
    assert undone.status is Status.UNDONE and undone.result == {"groupId": VPN, "added": True}
    assert sorted(members(cloud, VPN)) == sorted([ADELE, ALEX])
    assert (await executor.undo(ctx, outcome)).result["added"] is False  # a second undo writes nothing


async def test_group_rules_are_reported_not_fought(cloud, make_context: ContextFactory):
    role_group = await executor.respond(
        make_context(), "entra.remove_group_member", {"aad_user_id": MEGAN, "group_id": HELPDESK}, key="k1"
    )
    assert role_group.status is Status.FAILED and "role-assignable" in role_group.reason
    nested = await executor.respond(
        make_context(protected_users=()), "entra.remove_group_member", {"aad_user_id": BREAKGLASS, "group_id": TIER0},
        key="k2",
    )  # fmt: skip
    assert nested.status is Status.FAILED and "only through a nested group" in nested.reason
    protected = await executor.respond(
        make_context(), "entra.remove_group_member", {"aad_user_id": BREAKGLASS, "group_id": BREAK_GLASS_GROUP},
        key="k3",
    )  # fmt: skip
    assert protected.status is Status.SKIPPED and "guardrail" in protected.reason
    assert graph_writes(cloud) == []


async def test_dry_run_reports_the_write_permission(cloud, make_context: ContextFactory):
    ctx = make_context(dry_run=True)
    ctx.permissions = IdentityPermissions(ctx.azure)
    outcome = await executor.respond(ctx, "entra.remove_group_member", {"aad_user_id": ADELE, "group_id": VPN}, key="k")
    assert outcome.status is Status.DRY_RUN and outcome.reason == "would remove the user from Remote Access VPN"
    assert all(check.held for check in outcome.permissions)
    assert graph_writes(cloud) == []


# ---- workload identities ------------------------------------------------------------------------------------------


async def test_disable_a_service_principal_and_undo(cloud, make_context: ContextFactory):
    ctx = make_context()
    outcome = await executor.respond(
        ctx, "entra.disable_service_principal", {"service_principal_id": SYNC_APP}, key="k"
    )
    assert outcome.status is Status.DONE and outcome.prior == {"accountEnabled": True}
    assert sp(cloud, SYNC_APP)["accountEnabled"] is False
    undone = await executor.undo(ctx, outcome)
    assert undone.status is Status.UNDONE and sp(cloud, SYNC_APP)["accountEnabled"] is True


@pytest.mark.parametrize(
    ("sp_id", "overrides", "expected"),
    [
        (RIPOSTE_SP, {"managed_identity_client_id": RIPOSTE_CLIENT}, "Riposte's own identity"),
        (MS_GRAPH_SP, {}, "Microsoft first-party application"),
        ("6b2d4f8a-1c3e-4a5b-9d7f-0e1a2b3c4d99", {}, "no service principal"),
    ],
    ids=["itself", "first-party", "missing"],
)
async def test_service_principals_riposte_never_disables(cloud, make_context, sp_id, overrides, expected):
    outcome = await executor.respond(
        make_context(**overrides), "entra.disable_service_principal", {"service_principal_id": sp_id}, key="k"
    )
    assert outcome.status is Status.FAILED and expected in outcome.reason
    assert graph_writes(cloud) == []


async def test_a_protected_service_principal_is_skipped(cloud, make_context: ContextFactory):
    ctx = make_context(protected_users=(SYNC_APP,))
    outcome = await executor.respond(
        ctx, "entra.disable_service_principal", {"service_principal_id": SYNC_APP}, key="k"
    )
    assert outcome.status is Status.SKIPPED and "protected by object id" in outcome.reason


async def test_confirm_a_service_principal_compromised(cloud, make_context: ContextFactory):
    ctx = make_context()
    params = {"service_principal_id": SYNC_APP}
    outcome = await executor.respond(ctx, "identity.confirm_service_principal_compromised", params, key="k")
    assert outcome.status is Status.DONE and outcome.prior == {"riskState": "none", "riskLevel": "none"}
    risky = next(r for r in graph_of(cloud)["riskyServicePrincipals"] if r["id"] == SYNC_APP)
    assert (risky["riskState"], risky["riskLevel"]) == ("confirmedCompromised", "high")
    again = await executor.respond(make_context(), "identity.confirm_service_principal_compromised", params, key="k2")
    assert again.status is Status.ALREADY_DONE
    assert (await executor.undo(ctx, outcome)).status is Status.SKIPPED


# ---- entra.block_ip_in_named_location -----------------------------------------------------------------------------


async def test_block_an_ip_and_undo_removes_exactly_it(cloud, make_context: ContextFactory):
    ctx = make_context(blocked_ips_named_location_id=LOCATION)
    first = await executor.respond(ctx, "entra.block_ip_in_named_location", {"ip": "95.173.136.70"}, key="k1")
    assert first.status is Status.DONE, first.reason
    assert ranges(cloud) == ["95.173.136.70/32"]  # the placeholder goes once a real address is there
    second = await executor.respond(ctx, "entra.block_ip_in_named_location", {"ip": "2001:db8::1"}, key="k2")
    assert second.status is Status.SKIPPED and "not a public internet address" in second.reason
    third = await executor.respond(ctx, "entra.block_ip_in_named_location", {"ip": "203.0.113.66"}, key="k3")
    assert third.status is Status.SKIPPED  # TEST-NET-3 is documentation space, not an attacker
    fourth = await executor.respond(ctx, "entra.block_ip_in_named_location", {"ip": "185.220.101.47"}, key="k4")
    assert fourth.status is Status.DONE and ranges(cloud) == ["95.173.136.70/32", "185.220.101.47/32"]
    again = await executor.respond(ctx, "entra.block_ip_in_named_location", {"ip": "185.220.101.47"}, key="k5")
    assert again.status is Status.ALREADY_DONE

    assert (await executor.undo(ctx, first)).status is Status.UNDONE
    assert ranges(cloud) == ["185.220.101.47/32"]
    assert (await executor.undo(ctx, fourth)).status is Status.UNDONE
    assert ranges(cloud) == ["192.0.2.0/32"]  # a named location cannot be empty: the placeholder comes back


async def test_protected_ranges_are_never_blocked(cloud, make_context: ContextFactory):
    ctx = make_context(blocked_ips_named_location_id=LOCATION, protected_ip_ranges=("95.173.136.0/24",))
    outcome = await executor.respond(ctx, "entra.block_ip_in_named_location", {"ip": "95.173.136.70"}, key="k")
    assert outcome.status is Status.SKIPPED and "guardrail" in outcome.reason
    assert "protected range 95.173.136.0/24" in outcome.reason
    private = await executor.respond(ctx, "entra.block_ip_in_named_location", {"ip": "10.0.0.8"}, key="k2")
    assert private.status is Status.SKIPPED and "not a public internet address" in private.reason
    unset = await executor.respond(make_context(), "entra.block_ip_in_named_location", {"ip": "1.2.3.4"}, key="k3")
    assert unset.status is Status.SKIPPED and "not applicable: RIPOSTE_BLOCKED_IPS_NAMED_LOCATION_ID" in unset.reason
    assert graph_writes(cloud) == []


async def test_named_location_dry_run_writes_nothing(cloud, make_context: ContextFactory):
    ctx = make_context(dry_run=True, blocked_ips_named_location_id=LOCATION)
    ctx.permissions = IdentityPermissions(ctx.azure)
    outcome = await executor.respond(ctx, "entra.block_ip_in_named_location", {"ip": "95.173.136.70"}, key="k")
    assert outcome.status is Status.DRY_RUN and "would add 95.173.136.70/32" in outcome.reason
    assert {c.permission.name: c.held for c in outcome.permissions} == {
        "Policy.ReadWrite.ConditionalAccess": True,
        "Policy.Read.All": True,
    }
    assert graph_writes(cloud) == [] and ranges(cloud) == ["192.0.2.0/32"]
