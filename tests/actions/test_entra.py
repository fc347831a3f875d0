"""entra.* against the emulated Graph through the real msgraph-sdk client built by shared.azure.graph: the effect in
the tenant, idempotent replays, exact undo, honest dry runs, guardrails, and 429/503 absorbed by the SDK's retries."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from shared.actions import executor, registry
from shared.actions.context import MemoryLedger
from shared.actions.model import Status
from tests.actions.conftest import ADELE, BREAKGLASS, LEE, ContextFactory
from tests.conftest import CloudHandle

GRADY = "1c9f2b8e-4a3d-4e6f-8b1c-2d3e4f5a6b13"  # disabled in the demo tenant (left the company)
BREAK_GLASS_GROUP = "5e0a7c3d-2b1f-4a6e-9c8d-7f6e5d4c3b01"
TIER0_GROUP = "5e0a7c3d-2b1f-4a6e-9c8d-7f6e5d4c3b04"  # holds the Break Glass group (nested) and Lee Gu
GLOBAL_ADMIN_TEMPLATE = "62e90394-69f5-4237-9190-012177145e10"
ROOT = Path(__file__).resolve().parents[2]


def tenant_user(cloud: CloudHandle, user_id: str) -> dict[str, Any]:
    users: list[dict[str, Any]] = cloud.tenant()["graph"]["users"]
    return next(u for u in users if u["id"] == user_id)


def graph_writes(cloud: CloudHandle) -> list[dict[str, Any]]:
    return [w for w in cloud.writes() if w["service"] == "graph"]


def account(user_id: str, upn: str | None = None) -> dict[str, Any]:
    return {"aadUserId": user_id, "upn": upn}


# ------------------------------------------------------------------------------------------------------ entra.get_user


async def test_get_user_reports_profile_groups_and_privileged_roles(make_context: ContextFactory, cloud: CloudHandle):
    ctx = make_context()
    finding = await executor.enrich(ctx, "entra.get_user", account(LEE))
    assert finding.ok, finding.error
    profile = finding.data
    assert profile["userPrincipalName"] == "lee.gu@contoso.com"
    assert profile["accountEnabled"] is True
    assert profile["department"] == "IT"
    assert profile["isPrivileged"] is True
    assert profile["privilegedRoles"] == ["Global Administrator"]
    assert profile["directoryRoles"] == [
        {
            "id": "8d3f6a1b-0c2e-4b7d-9e5f-1a2b3c4d5e01",
            "displayName": "Global Administrator",
            "roleTemplateId": GLOBAL_ADMIN_TEMPLATE,
            "privileged": True,
        }
    ]
    assert [g["id"] for g in profile["groups"]] == [TIER0_GROUP]
    user_reads = cloud.requests(service="graph", path=f"/v1.0/users/{LEE}")
    assert "accountEnabled" in user_reads[0]["query"] and "signInSessionsValidFromDateTime" in user_reads[0]["query"]
    assert cloud.writes() == []


async def test_get_user_of_an_ordinary_user_is_not_privileged(make_context: ContextFactory):
    finding = await executor.enrich(make_context(), "entra.get_user", account(ADELE, "someone-else@contoso.com"))
    assert finding.ok, finding.error
    assert finding.data["userPrincipalName"] == "adele.vance@contoso.com"  # Entra's UPN, not the payload's
    assert finding.data["isPrivileged"] is False
    assert finding.data["directoryRoles"] == []
    assert finding.data["createdDateTime"].startswith("2021-03-14T09:12:44")


async def test_get_user_finds_nested_groups(make_context: ContextFactory):
    finding = await executor.enrich(make_context(), "entra.get_user", account(BREAKGLASS))
    assert finding.ok, finding.error
    assert {g["id"] for g in finding.data["groups"]} == {BREAK_GLASS_GROUP, TIER0_GROUP}


async def test_get_user_of_an_unknown_id_is_a_recorded_error(make_context: ContextFactory):
    finding = await executor.enrich(make_context(), "entra.get_user", account("00000000-0000-0000-0000-00000000dead"))
    assert not finding.ok
    assert "no Entra user with object id 00000000-0000-0000-0000-00000000dead" in finding.error


async def test_get_user_refuses_a_upn_where_an_object_id_belongs(make_context: ContextFactory, cloud: CloudHandle):
    finding = await executor.enrich(make_context(), "entra.get_user", account("adele.vance@contoso.com"))
    assert not finding.ok
    assert "aadUserId" in finding.error or "aad_user_id" in finding.error
    assert cloud.requests(service="graph") == []  # never looked up by anything but an object id


async def test_get_user_times_out_into_a_recorded_error(make_context: ContextFactory, cloud: CloudHandle):
    cloud.add_fault(match="GET /v1.0/users/*", latency={"fixedMs": 2000})
    finding = await executor.enrich(make_context(enrichment_timeout_seconds=0.3), "entra.get_user", account(ADELE))
    assert not finding.ok
    assert finding.error == "timed out after 0.3 s"
    assert finding.elapsed_ms < 1500


# -------------------------------------------------------------------------------------------------- entra.disable_user


async def test_disable_user_disables_records_prior_and_undo_restores(make_context: ContextFactory, cloud: CloudHandle):
    ctx = make_context()
    outcome = await executor.respond(ctx, "entra.disable_user", account(ADELE), key="run-1/disable")
    assert outcome.status is Status.DONE, outcome.reason
    assert outcome.prior == {"accountEnabled": True}
    assert outcome.intended == {"accountEnabled": False}
    assert outcome.target is not None and outcome.target.upn == "adele.vance@contoso.com"
    assert tenant_user(cloud, ADELE)["accountEnabled"] is False
    writes = graph_writes(cloud)
    assert [(w["method"], w["path"], w["status"]) for w in writes] == [("PATCH", f"/v1.0/users/{ADELE}", 204)]
    assert writes[0]["body"] == {"@odata.type": "#microsoft.graph.user", "accountEnabled": False}

    undone = await executor.undo(ctx, outcome)
    assert undone.status is Status.UNDONE, undone.reason
    assert tenant_user(cloud, ADELE)["accountEnabled"] is True
    assert graph_writes(cloud)[-1]["body"]["accountEnabled"] is True
    assert len(graph_writes(cloud)) == 2

    again = await executor.undo(ctx, outcome)  # the state is already the prior one: read, no write
    assert again.status is Status.UNDONE
    assert again.result == {"accountEnabled": True, "changed": False}
    assert len(graph_writes(cloud)) == 2


async def test_disable_user_replayed_or_repeated_writes_once(make_context: ContextFactory, cloud: CloudHandle):
    ledger = MemoryLedger()
    ctx = make_context(ledger=ledger)
    first = await executor.respond(ctx, "entra.disable_user", account(ADELE), key="run-1/disable")
    replay = await executor.respond(ctx, "entra.disable_user", account(ADELE), key="run-1/disable")
    assert replay == first  # the same key gives back the recorded outcome without touching Graph
    repeat = await executor.respond(ctx, "entra.disable_user", account(ADELE), key="run-2/disable")
    assert repeat.status is Status.ALREADY_DONE
    assert repeat.reason == "the account is already disabled"
    assert len(graph_writes(cloud)) == 1


async def test_disable_user_of_a_disabled_account_writes_nothing(make_context: ContextFactory, cloud: CloudHandle):
    ctx = make_context()
    outcome = await executor.respond(ctx, "entra.disable_user", account(GRADY), key="k")
    assert outcome.status is Status.ALREADY_DONE
    assert outcome.prior == {"accountEnabled": False}
    assert (await executor.undo(ctx, outcome)).status is Status.SKIPPED  # nothing was changed, so nothing to undo
    assert cloud.writes() == []
    assert tenant_user(cloud, GRADY)["accountEnabled"] is False


async def test_disable_user_dry_run_reports_and_writes_nothing(make_context: ContextFactory, cloud: CloudHandle):
    outcome = await executor.respond(make_context(dry_run=True), "entra.disable_user", account(ADELE), key="k")
    assert outcome.status is Status.DRY_RUN
    assert outcome.reason == "would change"
    assert outcome.prior == {"accountEnabled": True} and outcome.intended == {"accountEnabled": False}
    assert {c.permission.name for c in outcome.permissions} == {
        "User.EnableDisableAccount.All",
        "User.Read.All",
        "GroupMember.Read.All",
        "RoleManagement.Read.Directory",
    }
    assert cloud.writes() == []
    assert tenant_user(cloud, ADELE)["accountEnabled"] is True


async def test_breakglass_is_protected_by_object_id(make_context: ContextFactory, cloud: CloudHandle):
    outcome = await executor.respond(make_context(), "entra.disable_user", account(BREAKGLASS), key="k")
    assert outcome.status is Status.SKIPPED
    assert outcome.reason == ("guardrail: user Emergency Access 01 is protected by object id (RIPOSTE_PROTECTED_USERS)")
    assert cloud.writes() == []
    assert tenant_user(cloud, BREAKGLASS)["accountEnabled"] is True


async def test_breakglass_is_protected_by_its_group(make_context: ContextFactory, cloud: CloudHandle):
    ctx = make_context(protected_users=(), protected_groups=(BREAK_GLASS_GROUP,))
    outcome = await executor.respond(ctx, "entra.disable_user", account(BREAKGLASS), key="k")
    assert outcome.status is Status.SKIPPED
    assert outcome.reason == (
        f"guardrail: user breakglass-01@contoso.com is a member of protected group {BREAK_GLASS_GROUP}"
    )
    assert cloud.writes() == []


async def test_a_protected_group_guards_members_of_nested_groups(make_context: ContextFactory, cloud: CloudHandle):
    ctx = make_context(protected_users=(), protected_groups=(TIER0_GROUP,))
    nested = await executor.respond(ctx, "entra.revoke_sessions", account(BREAKGLASS), key="k1")
    direct = await executor.respond(ctx, "entra.revoke_sessions", account(LEE), key="k2")
    ordinary = await executor.respond(ctx, "entra.revoke_sessions", account(ADELE), key="k3")
    assert nested.status is Status.SKIPPED and TIER0_GROUP in nested.reason
    assert direct.status is Status.SKIPPED and TIER0_GROUP in direct.reason
    assert ordinary.status is Status.DONE
    assert [w["path"] for w in graph_writes(cloud)] == [f"/v1.0/users/{ADELE}/revokeSignInSessions"]


async def test_protected_upn_is_matched_on_entras_upn_not_the_payloads(
    make_context: ContextFactory, cloud: CloudHandle
):
    ctx = make_context(protected_users=("BreakGlass-01@Contoso.com",))
    outcome = await executor.respond(ctx, "entra.disable_user", account(BREAKGLASS, "innocent@contoso.com"), key="k")
    assert outcome.status is Status.SKIPPED
    assert outcome.reason == "guardrail: user breakglass-01@contoso.com is protected by UPN (RIPOSTE_PROTECTED_USERS)"
    assert cloud.writes() == []


async def test_disabling_an_admin_is_refused_by_graph_and_said_so(make_context: ContextFactory, cloud: CloudHandle):
    preview = await executor.respond(make_context(dry_run=True), "entra.disable_user", account(LEE), key="k0")
    assert preview.status is Status.DRY_RUN
    assert "Global Administrator" in preview.reason
    assert preview.target is not None and preview.target.privileged_roles == ("Global Administrator",)

    outcome = await executor.respond(make_context(), "entra.disable_user", account(LEE), key="k1")
    assert outcome.status is Status.FAILED
    assert outcome.reason.startswith("graph 403 Authorization_RequestDenied")
    assert tenant_user(cloud, LEE)["accountEnabled"] is True


async def test_disable_user_of_an_unknown_id_fails_without_writing(make_context: ContextFactory, cloud: CloudHandle):
    unknown = "00000000-0000-0000-0000-00000000beef"
    outcome = await executor.respond(make_context(), "entra.disable_user", account(unknown), key="k")
    assert outcome.status is Status.FAILED
    assert outcome.reason == f"no Entra user with object id {unknown}"
    assert cloud.writes() == []


# ----------------------------------------------------------------------------------------------------------- 429 / 503


async def test_429_with_retry_after_is_waited_out(make_context: ContextFactory, cloud: CloudHandle):
    cloud.add_fault(match="PATCH /v1.0/users/*", status=429, retryAfter=1, count=1)
    outcome = await executor.respond(make_context(), "entra.disable_user", account(ADELE), key="k")
    assert outcome.status is Status.DONE, outcome.reason
    patches = [r for r in cloud.requests(service="graph") if r["method"] == "PATCH"]
    assert [p["status"] for p in patches] == [429, 204]
    assert patches[1]["time"] - patches[0]["time"] >= 0.95  # Retry-After: 1 honoured
    assert tenant_user(cloud, ADELE)["accountEnabled"] is False


async def test_429_without_retry_after_is_retried_with_backoff(make_context: ContextFactory, cloud: CloudHandle):
    cloud.add_fault(match="PATCH /v1.0/users/*", status=429, count=2)
    outcome = await executor.respond(make_context(), "entra.disable_user", account(ADELE), key="k")
    assert outcome.status is Status.DONE, outcome.reason
    patches = [r for r in cloud.requests(service="graph") if r["method"] == "PATCH"]
    assert [p["status"] for p in patches] == [429, 429, 204]
    assert tenant_user(cloud, ADELE)["accountEnabled"] is False


async def test_a_lost_response_is_retried_and_the_patch_stays_idempotent(
    make_context: ContextFactory, cloud: CloudHandle
):
    # The write happens, then the answer is a 503: the SDK sends the same PATCH again, which changes nothing more.
    cloud.add_fault(match="PATCH /v1.0/users/*", status=503, retryAfter=1, count=1, after=True)
    outcome = await executor.respond(make_context(), "entra.disable_user", account(ADELE), key="k")
    assert outcome.status is Status.DONE, outcome.reason
    assert outcome.prior == {"accountEnabled": True}
    patches = [r for r in cloud.requests(service="graph") if r["method"] == "PATCH"]
    assert [p["status"] for p in patches] == [503, 204]
    assert patches[0]["body"] == patches[1]["body"]
    assert tenant_user(cloud, ADELE)["accountEnabled"] is False


async def test_retries_give_up_after_max_retries(make_context: ContextFactory, cloud: CloudHandle):
    cloud.add_fault(match="PATCH /v1.0/users/*", status=503, retryAfter=1)
    outcome = await executor.respond(make_context(max_retries=1), "entra.disable_user", account(ADELE), key="k")
    assert outcome.status is Status.FAILED
    assert outcome.reason.startswith("graph 503")
    assert len([r for r in cloud.requests(service="graph") if r["method"] == "PATCH"]) == 2


# --------------------------------------------------------------------------------------------------- entra.enable_user


async def test_enable_user_enables_and_undo_disables_again(make_context: ContextFactory, cloud: CloudHandle):
    ctx = make_context()
    outcome = await executor.respond(ctx, "entra.enable_user", account(GRADY), key="k")
    assert outcome.status is Status.DONE, outcome.reason
    assert outcome.prior == {"accountEnabled": False}
    assert tenant_user(cloud, GRADY)["accountEnabled"] is True
    undone = await executor.undo(ctx, outcome)
    assert undone.status is Status.UNDONE, undone.reason
    assert tenant_user(cloud, GRADY)["accountEnabled"] is False
    assert [w["body"]["accountEnabled"] for w in graph_writes(cloud)] == [True, False]


async def test_enable_user_of_an_enabled_account_writes_nothing(make_context: ContextFactory, cloud: CloudHandle):
    outcome = await executor.respond(make_context(), "entra.enable_user", account(ADELE), key="k")
    assert outcome.status is Status.ALREADY_DONE
    assert outcome.reason == "the account is already enabled"
    assert cloud.writes() == []


# ----------------------------------------------------------------------------------------------- entra.revoke_sessions


async def test_revoke_sessions_revokes_once(make_context: ContextFactory, cloud: CloudHandle):
    ctx = make_context()
    before = datetime.now().astimezone() - timedelta(seconds=5)
    outcome = await executor.respond(ctx, "entra.revoke_sessions", account(ADELE), key="run-1/revoke")
    assert outcome.status is Status.DONE, outcome.reason
    assert outcome.prior == {"signInSessionsValidFromDateTime": None}
    assert outcome.result == {"value": True}
    valid_from = tenant_user(cloud, ADELE)["signInSessionsValidFromDateTime"]
    assert datetime.fromisoformat(valid_from.replace("Z", "+00:00")) >= before

    replay = await executor.respond(ctx, "entra.revoke_sessions", account(ADELE), key="run-1/revoke")
    assert replay == outcome
    later_run = await executor.respond(
        ctx, "entra.revoke_sessions", {**account(ADELE), "unlessRevokedSince": before.isoformat()}, key="run-2/revoke"
    )
    assert later_run.status is Status.ALREADY_DONE
    assert later_run.reason == f"sessions were already revoked at {later_run.prior['signInSessionsValidFromDateTime']}"
    assert [w["path"] for w in graph_writes(cloud)] == [f"/v1.0/users/{ADELE}/revokeSignInSessions"]


async def test_revoke_sessions_cannot_be_undone_and_says_why(make_context: ContextFactory, cloud: CloudHandle):
    ctx = make_context()
    outcome = await executor.respond(ctx, "entra.revoke_sessions", account(ADELE), key="k")
    undone = await executor.undo(ctx, outcome)
    assert undone.status is Status.SKIPPED
    assert undone.reason.startswith("Revoked sessions cannot be restored: the user signs in again")
    assert len(graph_writes(cloud)) == 1


async def test_revoke_sessions_dry_run_writes_nothing(make_context: ContextFactory, cloud: CloudHandle):
    outcome = await executor.respond(make_context(dry_run=True), "entra.revoke_sessions", account(ADELE), key="k")
    assert outcome.status is Status.DRY_RUN
    assert "User.RevokeSessions.All" in {c.permission.name for c in outcome.permissions}
    assert cloud.writes() == []
    assert tenant_user(cloud, ADELE).get("signInSessionsValidFromDateTime") is None


# ----------------------------------------------------------------------------------------------------------- catalogue


def test_importing_the_adapter_and_the_actions_loads_no_sdk():
    code = (
        "import json, sys, shared.azure.graph, shared.actions.entra, shared.actions.identity; "
        "print(json.dumps(sorted(sys.modules)))"
    )
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    loaded = json.loads(result.stdout)
    assert "shared.azure.graph" in loaded
    assert [m for m in loaded if m.startswith(("msgraph", "kiota", "azure", "httpx"))] == []


def test_catalogue_describes_the_entra_actions():
    catalogue = registry.catalogue()
    disable, enable, revoke = (
        catalogue[n].spec for n in ("entra.disable_user", "entra.enable_user", "entra.revoke_sessions")
    )
    assert (disable.reversible, disable.destructive) == (True, True)
    assert (enable.reversible, enable.destructive) == (True, False)
    assert (revoke.reversible, revoke.destructive) == (False, True) and revoke.undo_hint
    assert disable.permissions[0].name == "User.EnableDisableAccount.All"
    assert revoke.permissions[0].name == "User.RevokeSessions.All"
    assert catalogue["entra.get_user"].spec.kind == "enrich"
