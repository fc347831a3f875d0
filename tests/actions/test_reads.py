"""The per-run read cache (shared.actions.reads) on the real Graph adapter against the emulated cloud: one request
per object however many actions and concurrent readers ask, a fresh read after our own write of the object (a plan's
prior state must be current for exact undo) unless the write says what the object now holds, failures not kept, and
nothing shared between run invocations."""

from __future__ import annotations

import asyncio
import dataclasses

from shared.actions import executor
from shared.actions.context import ActionContext
from shared.actions.model import Status
from shared.actions.reads import RunClients
from tests.actions.conftest import ADELE, ContextFactory
from tests.conftest import CloudHandle

NOBODY = "00000000-0000-4000-8000-000000000099"


def run_context(make_context: ContextFactory) -> ActionContext:
    """A context as the engine builds it for one run invocation."""
    ctx = make_context()
    return dataclasses.replace(ctx, azure=RunClients(ctx.azure))


def user_reads(cloud: CloudHandle, user_id: str) -> int:
    return len(cloud.requests(method="GET", path=f"/v1.0/users/{user_id}"))


async def test_enrichment_plans_and_concurrent_readers_share_one_read(
    make_context: ContextFactory, cloud: CloudHandle
) -> None:
    ctx = run_context(make_context)
    cloud.clear_requests()
    await asyncio.gather(
        executor.enrich(ctx, "entra.get_user", {"aadUserId": ADELE}),
        executor.enrich(ctx, "identity.get_risky_user", {"aadUserId": ADELE}),
        executor.respond(ctx, "entra.disable_user", {"aadUserId": ADELE}, key="k1", preview=True),
        executor.respond(ctx, "identity.confirm_compromised", {"aadUserId": ADELE}, key="k2", preview=True),
    )
    assert user_reads(cloud, ADELE) == 1
    assert len(cloud.requests(method="GET", path=f"/v1.0/users/{ADELE}/transitiveMemberOf")) == 1
    assert len(cloud.requests(method="GET", path=f"/v1.0/identityProtection/riskyUsers/{ADELE}")) == 1


async def test_a_read_after_our_write_is_fresh_and_undo_restores_it(
    make_context: ContextFactory, cloud: CloudHandle
) -> None:
    ctx = run_context(make_context)
    profile = await executor.enrich(ctx, "entra.get_user", {"aadUserId": ADELE})
    assert profile.data["accountEnabled"] is True
    disabled = await executor.respond(ctx, "entra.disable_user", {"aadUserId": ADELE}, key="d1")
    assert disabled.status is Status.DONE and disabled.prior == {"accountEnabled": True}
    cloud.clear_requests()
    # the enable plan follows our PATCH, which says what the user holds now: it sees the account disabled unread
    enabled = await executor.respond(ctx, "entra.enable_user", {"aadUserId": ADELE}, key="e1")
    assert enabled.status is Status.DONE and enabled.prior == {"accountEnabled": False}
    again = await executor.enrich(ctx, "entra.get_user", {"aadUserId": ADELE})
    assert again.data["accountEnabled"] is True
    assert user_reads(cloud, ADELE) == 0
    # revoking moves signInSessionsValidFromDateTime to a time only Graph knows: the next reader reads again
    await executor.respond(ctx, "entra.revoke_sessions", {"aadUserId": ADELE}, key="r1")
    await executor.enrich(ctx, "entra.get_user", {"aadUserId": ADELE})
    assert user_reads(cloud, ADELE) == 1
    confirmed = await executor.respond(ctx, "identity.confirm_compromised", {"aadUserId": ADELE}, key="c1")
    assert confirmed.status is Status.DONE
    risk = await executor.enrich(ctx, "identity.get_risky_user", {"aadUserId": ADELE})
    assert risk.data["riskState"] == "confirmedCompromised"


async def test_a_copy_per_reader_and_no_cache_across_invocations(
    make_context: ContextFactory, cloud: CloudHandle
) -> None:
    ctx = run_context(make_context)
    first = await ctx.azure.graph.get_user(ADELE)
    first["accountEnabled"] = "tampered"
    assert (await ctx.azure.graph.get_user(ADELE))["accountEnabled"] is True
    cloud.clear_requests()
    other = dataclasses.replace(ctx, azure=RunClients(ctx.azure._azure))  # the next invocation: a new cache
    await other.azure.graph.get_user(ADELE)
    assert user_reads(cloud, ADELE) == 1


async def test_a_failed_read_is_not_kept(make_context: ContextFactory, cloud: CloudHandle) -> None:
    ctx = run_context(make_context)
    cloud.add_fault(match=f"GET /v1.0/users/{ADELE}", count=1, status=404)
    missing = await executor.enrich(ctx, "entra.get_user", {"aadUserId": ADELE})
    assert not missing.ok
    found = await executor.enrich(ctx, "entra.get_user", {"aadUserId": ADELE})
    assert found.ok and found.data["id"] == ADELE
