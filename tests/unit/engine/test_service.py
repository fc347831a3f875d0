"""The service's worker paths without the stack: a run submitted, leased, advanced and given up on (the poison path)
over the in-memory store and action port of tests/unit/engine/memory.py."""

from __future__ import annotations

from typing import Any

import pytest

from shared.actions.model import Outcome
from shared.azure.storage import MAX_VISIBILITY_S
from shared.engine.model import Lease, RunStatus, StepStatus
from shared.intake.model import AccountEntity, Dialect, Incident, Severity
from shared.playbook.model import Playbook
from shared.service import WATCHDOG, Service
from shared.settings import Settings
from tests.unit.engine.memory import SET, Clock, MemoryActions, MemoryStore

BOOK = Playbook.model_validate(
    {
        "name": "switch-off",
        "match": {"entity_kinds": ["Account"]},
        "actions": [
            {
                "id": "switch_off",
                "uses": SET,
                "for_each": "Account",
                "with": {"target": "entity.aadUserId", "value": '"off"'},
                "requires_approval": {"when": 'entity.aadUserId == "admin"', "quorum": 2},
            }
        ],
    }
)
INCIDENT_ID = (
    "/subscriptions/s/resourceGroups/g/providers/Microsoft.OperationalInsights/workspaces/w/providers/"
    "Microsoft.SecurityInsights/Incidents/i-1"
)


def incident(user: str = "u1") -> Incident:
    return Incident(
        dialect=Dialect.SENTINEL_INCIDENT_TRIGGER,
        arm_id=INCIDENT_ID,
        delivery_id=f"delivery-{user}",
        title="Suspicious sign-in",
        severity=Severity.HIGH,
        status="New",
        entities=(AccountEntity(id="a1", aad_user_id=user, friendly_name=user),),
    )


class World:
    def __init__(self) -> None:
        self.clock = Clock()
        self.store = MemoryStore(self.clock)
        self.actions = MemoryActions()
        self.service = Service(Settings(), self.store, {BOOK.name: BOOK}, ports=lambda run: self.actions)
        self.service.clock = self.clock

    async def submit(self, user: str = "u1") -> str:
        submission = await self.service.submit(incident(user))
        [run] = submission.runs
        return str(run["id"])

    async def run(self, run_id: str) -> tuple[RunStatus, str]:
        loaded = await self.store.load(run_id)
        assert loaded is not None
        return loaded[0].status, loaded[0].reason


async def test_a_submitted_run_is_queued_once_and_processed_to_the_end() -> None:
    world = World()
    run_id = await world.submit()
    assert await world.submit() == run_id  # a redelivery is the same run, queued again while it waits (harmless)
    assert [(delay, reason) for _, delay, reason in world.store.queue] == [
        (0, "submitted"),
        # should the worker holding the message die, the run starts when its lease would end
        (world.service.settings.run_lease_seconds + 0.5, WATCHDOG),
        (0, "redelivered while still queued"),
    ]
    await world.service.process(run_id)
    await world.service.process(run_id)  # the duplicate message finds the run finished
    assert await world.run(run_id) == (RunStatus.SUCCEEDED, "")
    queued = len(world.store.queue)
    assert await world.submit() == run_id and len(world.store.queue) == queued  # a finished run is not queued again
    assert world.actions.calls.count(f"respond {SET}") == 1
    assert world.actions.world == {"u1": "off"}
    loaded = await world.store.load(run_id)
    assert loaded is not None and loaded[0].lease is None  # the lease is handed back


async def test_a_worker_crash_is_recorded_then_the_poisoned_run_is_failed_and_the_incident_told_once() -> None:
    world = World()
    run_id = await world.submit()
    world.actions.crash = RuntimeError("boom")
    with pytest.raises(ExceptionGroup):
        await world.service.process(run_id)  # the runtime retries the message, then moves it to the poison queue
    loaded = await world.store.load(run_id)
    assert loaded is not None
    crashed = loaded[0]
    assert crashed.status.active and crashed.lease is None and crashed.last_error == "RuntimeError: boom"

    await world.service.poisoned(run_id)
    assert await world.run(run_id) == (RunStatus.FAILED, "gave up: RuntimeError: boom")
    note = world.actions.notes[f"{run_id}:poisoned"]
    assert f"Riposte run {run_id} (switch-off) failed and was stopped: RuntimeError: boom." in note.text
    await world.service.poisoned(run_id)  # a second poison message finds the run already finished
    assert list(world.actions.notes) == [f"{run_id}:poisoned"]
    assert world.actions.writes == []


async def test_a_run_leased_by_another_worker_is_queued_for_when_its_lease_ends() -> None:
    world = World()
    run_id = await world.submit()
    loaded = await world.store.load(run_id)
    assert loaded is not None
    run, etag = loaded
    run.lease = Lease(owner="another-worker", until=world.clock() + 120)
    await world.store.save(run, etag)
    await world.service.process(run_id)
    assert world.store.queue[-1] == (run_id, 120.5, "lease held by another worker")  # as itself, when that lease ends
    assert world.actions.calls == []


async def test_a_run_changed_under_its_worker_is_handed_back_and_queued_to_continue() -> None:
    world = World()
    run_id = await world.submit()

    class Interrupting(MemoryActions):
        async def respond(self, name: str, params: dict[str, Any], key: str) -> Outcome:
            outcome = await super().respond(name, params, key)
            world.store.touch(run_id)  # a rollback request lands meanwhile
            return outcome

    world.actions = Interrupting()
    await world.service.process(run_id)  # not an error: another writer owns the run now
    assert world.store.queue[-1] == (run_id, 0, "continue after a concurrent change")
    loaded = await world.store.load(run_id)
    assert loaded is not None and loaded[0].lease is None  # handed back, so the next message need not wait


async def test_approvals_through_the_service_reach_their_quorum_and_the_run_finishes() -> None:
    world = World()
    run_id = await world.submit("admin")
    await world.service.process(run_id)
    assert await world.run(run_id) == (RunStatus.WAITING, "")
    await world.service.decide(run_id, "approve", "alice@contoso.com")
    await world.service.process(run_id)
    assert world.actions.writes == []
    await world.service.decide(run_id, "approve", "bob@contoso.com")
    await world.service.process(run_id)
    loaded = await world.store.load(run_id)
    assert loaded is not None and loaded[0].step("switch_off.0").status is StepStatus.DONE
    assert world.actions.world == {"admin": "off"}


async def test_a_rollback_request_is_carried_out_by_the_worker() -> None:
    world = World()
    run_id = await world.submit()
    await world.service.process(run_id)
    await world.service.request_rollback(run_id, "alice@contoso.com")
    assert world.store.queue[-2] == (run_id, 0, "rollback by alice@contoso.com")
    await world.service.process(run_id)
    assert (await world.run(run_id))[0] is RunStatus.ROLLED_BACK
    assert world.actions.world == {}


async def test_a_wait_longer_than_a_queue_message_can_wait_is_bridged_until_it_ends() -> None:
    """A queue message is invisible for 7 days at most: a 10-day approval timeout is reached through a message at the
    cap that schedules the rest, not left waiting for a message that never comes."""
    slow = BOOK.model_dump(by_alias=True, exclude_defaults=True)
    slow["actions"][0]["requires_approval"] = {"when": "true", "timeout": "10d"}
    book = Playbook.model_validate(slow)
    world = World()
    world.service.playbooks = {book.name: book}
    run_id = await world.submit()

    def continuations() -> list[float]:
        return [delay for queued, delay, reason in world.store.queue if queued == run_id and reason == "continuation"]

    await world.service.process(run_id)
    assert continuations() == [MAX_VISIBILITY_S]
    world.clock.advance(MAX_VISIBILITY_S)
    await world.service.process(run_id)  # the bridging message: not yet timed out, so the next one is queued
    assert continuations() == [MAX_VISIBILITY_S, 3 * 86400]
    assert await world.run(run_id) == (RunStatus.WAITING, "")
    world.clock.advance(3 * 86400)
    await world.service.process(run_id)
    loaded = await world.store.load(run_id)
    assert loaded is not None
    assert loaded[0].step("switch_off.0").status is StepStatus.SKIPPED  # timed out, and rejected as the book says
    assert not loaded[0].status.active and world.actions.writes == []


# --- a message held by a host that died before leasing the run: the watchdog queued beside it brings the run back ----


def watchdogs(world: World, run_id: str) -> list[float]:
    return [delay for queued, delay, reason in world.store.queue if queued == run_id and reason == WATCHDOG]


async def test_decisions_whose_messages_are_lost_are_acted_on_by_the_watchdog() -> None:
    world = World()
    run_id = await world.submit("admin")
    await world.service.process(run_id)
    before = len(watchdogs(world, run_id))
    await world.service.decide(run_id, "approve", "alice@contoso.com", by_id="a1")
    await world.service.decide(run_id, "approve", "bob@contoso.com", by_id="b2")
    # Neither decision's message is processed (the host that took them died); their watchdogs come a lease later.
    assert watchdogs(world, run_id)[before:] == [world.service.settings.run_lease_seconds + 0.5] * 2
    world.clock.advance(world.service.settings.run_lease_seconds + 0.5)
    await world.service.process(run_id, reason=WATCHDOG)
    assert await world.run(run_id) == (RunStatus.SUCCEEDED, "")
    assert world.actions.world == {"admin": "off"}


async def test_a_continuation_whose_message_is_lost_is_acted_on_by_the_watchdog() -> None:
    world = World()
    run_id = await world.submit()
    world.actions.fail(SET, "throttled", retryable=True)
    await world.service.process(run_id)
    loaded = await world.store.load(run_id)
    assert loaded is not None and loaded[0].status is RunStatus.WAITING and loaded[0].resume_at is not None
    wait = loaded[0].resume_at - world.clock()
    assert watchdogs(world, run_id)[-1] == pytest.approx(wait + world.service.settings.run_lease_seconds + 0.5)
    world.clock.advance(wait + world.service.settings.run_lease_seconds + 0.5)
    await world.service.process(run_id, reason=WATCHDOG)  # the continuation never came
    assert await world.run(run_id) == (RunStatus.SUCCEEDED, "")


async def test_a_rollback_whose_message_is_lost_is_acted_on_by_the_watchdog() -> None:
    world = World()
    run_id = await world.submit()
    await world.service.process(run_id)
    await world.service.request_rollback(run_id, "alice@contoso.com")
    assert world.store.queue[-1] == (run_id, world.service.settings.run_lease_seconds + 0.5, WATCHDOG)
    await world.service.process(run_id, reason=WATCHDOG)
    assert (await world.run(run_id))[0] is RunStatus.ROLLED_BACK
    assert world.actions.world == {}


async def test_a_watchdog_leaves_a_released_run_with_nothing_due_alone() -> None:
    world = World()
    run_id = await world.submit("admin")
    await world.service.process(run_id)  # waits for two approvals, for a day
    loaded = await world.store.load(run_id)
    assert loaded is not None
    calls, etag = list(world.actions.calls), loaded[1]
    await world.service.process(run_id, reason=WATCHDOG)
    after = await world.store.load(run_id)
    assert after is not None and after[1] == etag and world.actions.calls == calls
