"""The ledger under races and interruptions, with real parts: Azure Table storage (Azurite) for the conditional intent,
the emulated Graph for what an interrupted attempt did.

- Of two attempts racing to record an intent under one key, only one passes (insert-if-absent, then ETag).
- settle (what rollback reads) judges an intent without an outcome from the target's state: applied -> DONE, with
  the prior state recorded before the write, so undo restores it; never applied -> SKIPPED, and recorded, so no
  later attempt under that key writes."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator

import pytest

from shared.actions import executor
from shared.actions.context import MemoryLedger
from shared.actions.model import Plan, Status, Target
from shared.azure.storage import RUNS_TABLE, StorageConnection, TableStore
from shared.store.runs import TableLedger
from tests.actions.conftest import ADELE, ContextFactory
from tests.conftest import CloudHandle
from tests.e2e.conftest import running_azurite

PLAN = Plan(target=Target(kind="user", id=ADELE), prior={"accountEnabled": True}, intended={"accountEnabled": False})


@pytest.fixture(scope="module")
def azurite_connection() -> Iterator[str]:
    with running_azurite() as connection:
        yield connection


@pytest.fixture
async def table(azurite_connection: str) -> AsyncIterator[TableStore]:
    store = TableStore(StorageConnection(azurite_connection, None, None), RUNS_TABLE)
    await store.ensure()
    yield store
    await store.close()


def enabled(cloud: CloudHandle) -> bool:
    return bool(next(u for u in cloud.tenant()["graph"]["users"] if u["id"] == ADELE)["accountEnabled"])


async def test_an_interrupted_write_that_happened_is_settled_done_and_undone(
    make_context: ContextFactory, cloud: CloudHandle
) -> None:
    ctx = make_context(ledger=MemoryLedger())
    cloud.add_fault(match="PATCH /v1.0/users/*", status=500, after=True, count=1)  # applied, the answer lost
    lost = await executor.respond(ctx, "entra.disable_user", {"aadUserId": ADELE}, key="run-1:disable.0")
    assert lost.status is Status.FAILED and not enabled(cloud)
    settled = await executor.settle(ctx, "run-1:disable.0")
    assert settled is not None
    outcome, _ = settled
    assert (outcome.status, outcome.prior.get("accountEnabled")) == (Status.DONE, True)
    assert (await executor.undo(ctx, outcome)).status is Status.UNDONE and enabled(cloud)


async def test_an_interrupted_write_that_never_happened_is_settled_skipped_and_fenced(
    make_context: ContextFactory, cloud: CloudHandle
) -> None:
    ctx = make_context(ledger=MemoryLedger(), replay_settle_seconds=1.0)
    cloud.add_fault(match="PATCH /v1.0/users/*", status=500, count=1)  # refused before the handler: not applied
    refused = await executor.respond(ctx, "entra.disable_user", {"aadUserId": ADELE}, key="run-2:disable.0")
    assert refused.status is Status.FAILED and enabled(cloud)
    settled = await executor.settle(ctx, "run-2:disable.0")
    assert settled is not None and settled[0].status is Status.SKIPPED
    later = await executor.respond(ctx, "entra.disable_user", {"aadUserId": ADELE}, key="run-2:disable.0")
    assert later.status is Status.SKIPPED and enabled(cloud)  # the rollback's verdict stands: nothing writes
    assert await executor.settle(ctx, "run-3:disable.0") is None


async def test_a_retry_waits_for_a_write_still_on_its_way(make_context: ContextFactory, cloud: CloudHandle) -> None:
    """An attempt whose worker stalled past its lease (so another took the run over) still has its request on the
    way, and it lands. The retry under the same key must not make the write a second time."""
    ctx = make_context(ledger=MemoryLedger(), replay_settle_seconds=5.0)
    cloud.add_fault(match="PATCH /v1.0/users/*", latency={"fixedMs": 2500}, count=1)
    stalled = asyncio.create_task(executor.respond(ctx, "entra.disable_user", {"aadUserId": ADELE}, key="run-4:d"))
    await asyncio.sleep(1.5)  # its intent is recorded and its PATCH is on its way
    retry = await executor.respond(ctx, "entra.disable_user", {"aadUserId": ADELE}, key="run-4:d")
    await stalled
    patches = [r for r in cloud.requests(service="graph") if r["method"] == "PATCH" and 200 <= r["status"] < 300]
    assert retry.status is Status.DONE and len(patches) == 1, (retry, patches)


async def test_of_two_attempts_racing_for_an_intent_only_one_records_it(table: TableStore) -> None:
    ledger = TableLedger(table, "run-race")
    params = {"aad_user_id": ADELE}
    first = await asyncio.gather(
        *(ledger.put_intent("k", "entra.disable_user", PLAN, params=params, previous=None) for _ in range(2))
    )
    assert sorted(first) == [False, True]
    # a retry over an interrupted intent: both read the same entry, only one may replace it
    read = await ledger.get("k")
    assert read is not None and read["params"] == params
    again = await asyncio.gather(
        *(ledger.put_intent("k", "entra.disable_user", PLAN, params=params, previous=read) for _ in range(2))
    )
    assert sorted(again) == [False, True]
