"""Storage lockdown through azure-mgmt-storage against the emulated Microsoft.Storage: each action records the account's
prior setting and undo writes exactly it back; the firewall's allow-only model is respected, not papered over."""

from __future__ import annotations

from typing import Any

import pytest

from shared.actions import executor
from shared.actions.model import Status
from shared.actions.permissions import IdentityPermissions
from tests.actions.conftest import SUBSCRIPTION, ContextFactory
from tests.conftest import CloudHandle

ACCOUNT = (
    f"/subscriptions/{SUBSCRIPTION}/resourceGroups/rg-prod-web/providers/Microsoft.Storage/storageAccounts/"
    "stcontosostorefront"
)


def props(cloud: CloudHandle) -> dict[str, Any]:
    found: dict[str, Any] = next(r for r in cloud.tenant()["arm"]["resources"] if r["id"] == ACCOUNT)["properties"]
    return found


def rules(cloud: CloudHandle) -> list[str]:
    return [r["value"] for r in props(cloud)["networkAcls"]["ipRules"]]


def patches(cloud: CloudHandle) -> list[dict[str, Any]]:
    return [r for r in cloud.requests(service="arm") if r["method"] == "PATCH"]


@pytest.mark.parametrize(
    ("action", "wire"),
    [("storage.block_public_access", "allowBlobPublicAccess"), ("storage.disable_shared_key", "allowSharedKeyAccess")],
)
async def test_a_flag_is_turned_off_and_undo_restores_it(cloud, make_context: ContextFactory, action, wire):
    ctx = make_context()
    outcome = await executor.respond(ctx, action, {"account": ACCOUNT}, key="k")
    assert outcome.status is Status.DONE, outcome.reason
    assert (outcome.prior, outcome.intended) == ({wire: True}, {wire: False})
    assert props(cloud)[wire] is False
    [patch] = patches(cloud)
    assert set(patch["body"]["properties"]) == {wire}  # nothing else on the account is touched
    again = await executor.respond(make_context(), action, {"account": ACCOUNT}, key="k2")
    assert again.status is Status.ALREADY_DONE

    assert (await executor.undo(ctx, outcome)).status is Status.UNDONE
    assert props(cloud)[wire] is True


async def test_deny_ip_removes_its_own_allow_rule_and_undo_puts_it_back(cloud, make_context: ContextFactory):
    ctx = make_context()
    outcome = await executor.respond(ctx, "storage.deny_ip", {"account": ACCOUNT, "ip": "95.173.136.70"}, key="k")
    assert outcome.status is Status.DONE, outcome.reason
    assert rules(cloud) == ["20.61.15.33", "198.51.100.0/24"]
    assert props(cloud)["networkAcls"]["bypass"] == "AzureServices"  # the rest of the rule set is kept
    assert (await executor.undo(ctx, outcome)).status is Status.UNDONE
    assert sorted(rules(cloud)) == sorted(["20.61.15.33", "198.51.100.0/24", "95.173.136.70"])


async def test_deny_ip_says_what_a_firewall_cannot_do(cloud, make_context: ContextFactory):
    wide = await executor.respond(
        make_context(), "storage.deny_ip", {"account": ACCOUNT, "ip": "198.51.100.9"}, key="a"
    )
    assert wide.status is Status.FAILED and "through the range 198.51.100.0/24" in wide.reason
    absent = await executor.respond(make_context(), "storage.deny_ip", {"account": ACCOUNT, "ip": "1.2.3.4"}, key="b")
    assert absent.status is Status.ALREADY_DONE and "not allowed by the firewall" in absent.reason
    doc = cloud.tenant()
    next(r for r in doc["arm"]["resources"] if r["id"] == ACCOUNT)["properties"]["networkAcls"]["defaultAction"] = (
        "Allow"
    )
    cloud.admin.put("/tenant", json=doc).raise_for_status()
    open_account = await executor.respond(
        make_context(), "storage.deny_ip", {"account": ACCOUNT, "ip": "95.173.136.70"}, key="c"
    )
    assert open_account.status is Status.FAILED and "defaultAction Allow" in open_account.reason
    assert patches(cloud) == []


async def test_storage_dry_run_and_guardrails(cloud, make_context: ContextFactory):
    ctx = make_context(dry_run=True)
    ctx.permissions = IdentityPermissions(ctx.azure)
    outcome = await executor.respond(ctx, "storage.block_public_access", {"account": ACCOUNT}, key="k")
    assert outcome.status is Status.DRY_RUN and outcome.reason == "would turn anonymous blob access off"
    assert all(check.held for check in outcome.permissions), outcome.permissions
    cloud.set_tags(ACCOUNT, {"riposte-protected": "true"})
    guarded = await executor.respond(make_context(), "storage.disable_shared_key", {"account": ACCOUNT}, key="k2")
    assert guarded.status is Status.SKIPPED and "riposte-protected" in guarded.reason
    assert patches(cloud) == []
