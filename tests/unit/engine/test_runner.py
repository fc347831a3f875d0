"""The Runner without the stack: an in-memory action port and run store (tests/unit/engine/memory.py), a clock moved
by hand. Planning, approvals, retries of transient failures, a lost lease, rollback and the incident write-back."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from shared.actions.model import Status
from shared.engine.model import Decision, Run, RunStatus, StepStatus
from shared.engine.planner import plan_steps
from shared.engine.runner import MAX_STEP_RETRIES, Runner
from shared.playbook.model import Playbook
from shared.store.runs import LostLease
from tests.unit.engine.memory import PAGE, PROGRESS, READ, SET, Clock, MemoryActions, MemoryStore

INCIDENT: dict[str, Any] = {
    "dialect": "sentinel.incident_trigger",
    "armId": "/subscriptions/s/resourceGroups/g/providers/Microsoft.OperationalInsights/workspaces/w/providers/"
    "Microsoft.SecurityInsights/Incidents/i-1",
    "title": "Suspicious sign-in",
    "severity": "High",
    "entities": [
        {"kind": "Account", "id": "a1", "friendlyName": "adele", "aadUserId": "u1"},
        {"kind": "Account", "id": "a2", "friendlyName": "megan", "aadUserId": "u2"},
        {"kind": "Ip", "id": "i1", "address": "203.0.113.7"},
    ],
}


def playbook(**body: Any) -> Playbook:
    return Playbook.model_validate({"name": "test-book", **body})


# Look up each account, set it to "off" unless it already is, page the SOC once.
ACCOUNTS = playbook(
    enrich=[{"id": "lookup", "uses": READ, "for_each": "Account", "with": {"target": "entity.aadUserId"}}],
    actions=[
        {
            "id": "switch_off",
            "uses": SET,
            "for_each": "Account",
            "needs": ["lookup"],
            "when": 'findings.lookup.value != "off"',
            "with": {"target": "entity.aadUserId", "value": '"off"'},
        },
        {"id": "page", "uses": PAGE, "needs": ["switch_off"], "with": {"to": '"soc"'}},
    ],
    writeback={"labels": ["riposte"], "status": "Active", "when": 'incident.severity == "High"'},
)


class Harness:
    """A run of `book` over INCIDENT, checkpointed into a MemoryStore under its ETag, as the worker does."""

    def __init__(self, book: Playbook, *, dry_run: bool = False, incident: dict[str, Any] = INCIDENT) -> None:
        self.book = book
        self.clock = Clock()
        self.actions = MemoryActions()
        self.console_url = ""
        self.store = MemoryStore(self.clock)
        now = self.clock()
        steps = plan_steps(book, incident)
        self.run = Run(
            id="run-1", playbook=book.name, dry_run=dry_run, incident=incident, created_at=now, updated_at=now,
            steps=steps,
        )  # fmt: skip
        self.etag = "1"
        self.store.documents[self.run.id] = (self.run.model_dump_json(by_alias=True), 1)

    async def checkpoint(self, run: Run) -> None:
        self.etag = await self.store.save(run, self.etag)

    def runner(self) -> Runner:
        return Runner(self.book, self.actions, self.checkpoint, self.clock, self.console_url)

    async def advance(self) -> Run:
        self.run = await self.runner().advance(self.run)
        return self.run

    async def stored(self) -> Run:
        loaded = await self.store.load(self.run.id)
        assert loaded is not None
        return loaded[0]

    async def decide(self, step: str, by: str, decision: str = "approve", comment: str = "") -> bool:
        """An analyst's decision, recorded beside the run; the next advance reads it, as after a queue message."""
        recorded = Decision(by=by, decision=decision, comment=comment, at=self.clock())
        added = await self.store.add_decision(self.run.id, step, recorded)
        self.run = await self.stored()
        return added

    def status(self, step: str) -> StepStatus:
        return self.run.step(step).status


# --------------------------------------------------------------------------------------------------------- planning


async def test_plan_expands_per_entity_and_runs_in_dependency_order() -> None:
    harness = Harness(ACCOUNTS)
    harness.actions.world["u2"] = "off"  # megan is already off: her step is skipped on its condition
    steps = {s.id: s for s in harness.run.steps}
    assert list(steps) == ["lookup.0", "lookup.1", "switch_off.0", "switch_off.1", "page", "writeback"]
    assert steps["switch_off.1"].needs == ["lookup.0", "lookup.1"]  # actions read every finding
    assert steps["page"].needs == ["lookup.0", "lookup.1", "switch_off.0", "switch_off.1"]
    assert set(steps["writeback"].needs) == set(steps) - {"writeback"}
    assert (steps["lookup.1"].entity or {})["aadUserId"] == "u2"

    run = await harness.advance()

    assert run.status is RunStatus.SUCCEEDED, run.reason
    assert harness.actions.world == {"u1": "off", "u2": "off"}
    assert harness.status("switch_off.1") is StepStatus.SKIPPED
    assert harness.run.step("switch_off.1").reason == 'condition false: findings.lookup.value != "off"'
    assert harness.actions.writes == [(SET, {"target": "u1", "value": "off"}), (PAGE, {"to": "soc"})]
    # every enrichment before any action, the page after the switches, the write-back last
    calls = harness.actions.calls
    assert calls.index(f"respond {SET}") > max(i for i, c in enumerate(calls) if c.startswith("enrich"))
    assert calls[-2:] == [f"respond {PAGE}", "write_back"]
    assert (await harness.stored()).status is RunStatus.SUCCEEDED  # the last checkpoint is the final state


async def test_one_summary_note_per_run_with_the_labels_and_the_status_change() -> None:
    harness = Harness(ACCOUNTS)
    await harness.advance()
    assert list(harness.actions.notes) == ["run-1:writeback"]
    note = harness.actions.notes["run-1:writeback"]
    assert note.add_labels == ("riposte",) and note.status == "Active" and note.severity is None
    assert note.html is not None
    html, _ = note.html.render()
    assert "Riposte: test-book" in html and "Undo: POST /api/runs/run-1/rollback" in html
    assert harness.status("writeback") is StepStatus.DONE
    await harness.advance()  # a finished run is left alone
    assert harness.actions.calls.count("write_back") == 1


async def test_the_status_change_waits_for_its_condition() -> None:
    harness = Harness(ACCOUNTS, incident=dict(INCIDENT, severity="Medium"))
    await harness.advance()
    note = harness.actions.notes["run-1:writeback"]
    assert note.add_labels == ("riposte",) and note.status is None  # labels always, status only when `when` holds


async def test_an_incident_with_nowhere_to_write_back_skips_the_write_back_only() -> None:
    harness = Harness(ACCOUNTS)
    harness.actions.writes_back = False
    run = await harness.advance()
    assert run.status is RunStatus.SUCCEEDED
    assert harness.status("writeback") is StepStatus.SKIPPED
    assert harness.run.step("writeback").reason == "the incident has nowhere to write back to"
    assert harness.actions.world == {"u1": "off", "u2": "off"}


async def test_a_worker_that_dies_mid_run_resumes_from_its_checkpoint_and_repeats_no_write() -> None:
    harness = Harness(ACCOUNTS)
    harness.actions.world["u2"] = "on"
    harness.actions.crash = RuntimeError("worker died")
    with pytest.raises(ExceptionGroup) as raised:
        await harness.advance()
    assert raised.group_contains(RuntimeError, match="worker died")
    harness.run = await harness.stored()  # the next delivery starts from what was checkpointed
    assert {s.id: s.status for s in harness.run.steps if s.kind == "enrich"} == {
        "lookup.0": StepStatus.DONE,
        "lookup.1": StepStatus.DONE,
    }
    assert harness.status("switch_off.0") is StepStatus.PENDING
    run = await harness.advance()
    assert run.status is RunStatus.SUCCEEDED
    assert harness.actions.calls.count(f"enrich {READ}") == 2  # not looked up again
    # the sibling that was mid-write when the worker died is answered from the ledger, not written twice
    assert sorted(w[1]["target"] for w in harness.actions.writes if w[0] == SET) == ["u1", "u2"]
    assert harness.actions.world == {"u1": "off", "u2": "off"}


# -------------------------------------------------------------------------------------------------------- approvals

GATED = playbook(
    actions=[
        {
            "id": "switch_off",
            "uses": SET,
            "with": {"target": '"vm-1"', "value": '"isolated"'},
            "requires_approval": {"when": "true", "quorum": 2, "timeout": "1h", "on_timeout": "reject"},
        }
    ],
)


async def test_an_approval_waits_for_its_quorum_of_distinct_approvers() -> None:
    harness = Harness(GATED)
    run = await harness.advance()
    step = run.step("switch_off")
    assert run.status is RunStatus.WAITING and step.status is StepStatus.AWAITING_APPROVAL
    assert step.approval is not None and run.resume_at == step.approval.deadline == harness.clock() + 3600
    assert harness.actions.calls[:2] == [f"preview {SET}", "write_back"]  # checked, then asked for
    assert list(harness.actions.notes) == ["run-1:switch_off:approval-request"]
    assert "waiting for approval" in harness.actions.notes["run-1:switch_off:approval-request"].text
    assert "console" not in harness.actions.notes["run-1:switch_off:approval-request"].text
    assert harness.actions.writes == []
    assert step.preview is not None  # what the approver is shown: the preview taken before asking

    assert await harness.decide("switch_off", "alice@contoso.com")
    assert not await harness.decide("switch_off", "ALICE@contoso.com")  # one person, one vote
    run = await harness.advance()
    assert harness.status("switch_off") is StepStatus.AWAITING_APPROVAL and harness.actions.writes == []

    assert await harness.decide("switch_off", "bob@contoso.com")
    run = await harness.advance()
    assert run.status is RunStatus.SUCCEEDED
    assert harness.run.step("switch_off").reason == "approved by alice@contoso.com, bob@contoso.com"
    assert harness.actions.world == {"vm-1": "isolated"}
    assert list(harness.actions.notes) == ["run-1:switch_off:approval-request", "run-1:writeback"]


async def test_a_rejection_skips_the_action() -> None:
    harness = Harness(GATED)
    await harness.advance()
    await harness.decide("switch_off", "alice@contoso.com")
    await harness.decide("switch_off", "carol@contoso.com", "reject", "not in business hours")
    run = await harness.advance()
    assert run.status is RunStatus.SUCCEEDED
    assert harness.status("switch_off") is StepStatus.SKIPPED
    assert harness.run.step("switch_off").reason == "rejected by carol@contoso.com: not in business hours"
    assert harness.actions.writes == []


@pytest.mark.parametrize(("on_timeout", "acted"), [("reject", False), ("approve", True)])
async def test_an_approval_that_times_out_follows_the_playbook(on_timeout: str, acted: bool) -> None:
    approval = {"when": "true", "quorum": 1, "timeout": "30m", "on_timeout": on_timeout}
    book = playbook(actions=[{"id": "switch_off", "uses": SET, "with": {"target": '"vm-1"', "value": '"isolated"'},
                              "requires_approval": approval}])  # fmt: skip
    harness = Harness(book)
    await harness.advance()
    harness.clock.advance(29 * 60)
    await harness.advance()
    assert harness.status("switch_off") is StepStatus.AWAITING_APPROVAL  # not yet
    harness.clock.advance(60)
    run = await harness.advance()
    assert run.status is RunStatus.SUCCEEDED
    assert harness.actions.world == ({"vm-1": "isolated"} if acted else {})
    step = run.step("switch_off")
    if acted:
        assert step.status is StepStatus.DONE
        assert step.reason == "approval timed out; the playbook approves on time-out"
    else:
        assert (step.status, step.reason) == (StepStatus.SKIPPED, "approval timed out; rejected")


async def test_no_analyst_is_asked_to_approve_what_a_guardrail_refuses() -> None:
    harness = Harness(GATED)
    harness.actions.guarded.add("vm-1")
    run = await harness.advance()
    assert run.status is RunStatus.SUCCEEDED
    assert harness.status("switch_off") is StepStatus.SKIPPED
    assert harness.run.step("switch_off").reason == "guardrail: vm-1 is protected"
    assert "run-1:switch_off:approval-request" not in harness.actions.notes


# ---------------------------------------------------------------------------------------------------------- retries

ONE_SWITCH = playbook(actions=[{"id": "switch_off", "uses": SET, "with": {"target": '"u1"', "value": '"off"'}}])


async def test_a_transient_failure_is_retried_later_with_a_doubling_back_off() -> None:
    harness = Harness(ONE_SWITCH)
    harness.actions.fail(SET, "429 Too Many Requests", retryable=True, times=2)
    run = await harness.advance()
    step = run.step("switch_off")
    assert run.status is RunStatus.WAITING and step.status is StepStatus.PENDING
    assert step.not_before == run.resume_at == harness.clock() + 2
    assert step.reason == "retrying in 2 s (attempt 2): 429 Too Many Requests"

    harness.clock.advance(1)
    await harness.advance()  # too early: nothing is tried
    assert harness.actions.calls.count(f"respond {SET}") == 1

    harness.clock.advance(1)
    run = await harness.advance()
    assert run.step("switch_off").not_before == harness.clock() + 4  # 2 s, then 4 s
    harness.clock.advance(4)
    run = await harness.advance()
    assert run.status is RunStatus.SUCCEEDED and harness.actions.world == {"u1": "off"}
    assert run.step("switch_off").retries == 2 and harness.actions.calls.count(f"respond {SET}") == 3


async def test_a_transient_failure_that_persists_fails_the_step_after_the_last_retry() -> None:
    harness = Harness(ONE_SWITCH)
    harness.actions.fail(SET, "503 Service Unavailable", retryable=True, times=100)
    run = await harness.advance()
    while run.status is RunStatus.WAITING:
        assert run.resume_at is not None
        harness.clock.now = run.resume_at
        run = await harness.advance()
    assert harness.actions.calls.count(f"respond {SET}") == MAX_STEP_RETRIES + 1
    assert run.status is RunStatus.FAILED
    assert run.reason == "switch_off (mem.set_value) failed: 503 Service Unavailable"


async def test_a_refusal_is_not_retried() -> None:
    harness = Harness(ONE_SWITCH)
    harness.actions.fail(SET, "403 Forbidden", retryable=False)
    run = await harness.advance()
    assert run.status is RunStatus.FAILED and run.step("switch_off").retries == 0
    assert harness.actions.calls.count(f"respond {SET}") == 1


async def test_a_transiently_failed_enrichment_is_retried_then_its_finding_is_used() -> None:
    harness = Harness(ACCOUNTS)
    harness.actions.fail(READ, "timed out after 30 s", retryable=True)
    harness.actions.world.update(u1="off", u2="off")
    run = await harness.advance()
    assert run.status is RunStatus.WAITING and harness.status("switch_off.0") is StepStatus.PENDING
    harness.clock.advance(2)
    run = await harness.advance()
    assert run.status is RunStatus.SUCCEEDED
    assert {harness.status("switch_off.0"), harness.status("switch_off.1")} == {StepStatus.SKIPPED}


async def test_a_transiently_failed_write_back_is_retried_under_the_same_key() -> None:
    harness = Harness(ONE_SWITCH)
    harness.actions.fail("write_back", "429 Too Many Requests", retryable=True)
    run = await harness.advance()
    assert run.status is RunStatus.WAITING and harness.status("writeback") is StepStatus.PENDING
    harness.clock.advance(2)
    run = await harness.advance()
    assert run.status is RunStatus.SUCCEEDED and list(harness.actions.notes) == ["run-1:writeback"]


# ------------------------------------------------------------------------------------------------------- lost lease

TWO_SWITCHES = playbook(
    actions=[
        {"id": "first", "uses": SET, "with": {"target": '"a"', "value": '"off"'}},
        {"id": "second", "uses": SET, "with": {"target": '"b"', "value": '"off"'}},
        {"id": "page", "uses": PAGE, "needs": ["first", "second"], "with": {"to": '"soc"'}},
    ]
)


class Interrupted(MemoryActions):
    """Someone else saves the run (a rollback request, a worker after our lease ran out) during its first write."""

    def __init__(self, store: MemoryStore) -> None:
        super().__init__()
        self.store = store
        self.interrupted = False

    async def respond(self, name: str, params: dict[str, Any], key: str) -> Any:
        outcome = await super().respond(name, params, key)
        if params.get("target") == "a" and not self.interrupted:
            self.interrupted = True
            self.store.touch("run-1")
        return outcome


async def test_a_lost_lease_stops_the_run_without_saving_over_the_new_owner_who_repeats_no_write() -> None:
    harness = Harness(TWO_SWITCHES)
    harness.actions = actions = Interrupted(harness.store)
    with pytest.raises(ExceptionGroup) as raised:
        await harness.advance()
    assert raised.group_contains(LostLease)
    assert f"respond {PAGE}" not in actions.calls  # nothing more is started for a run this worker lost
    stored = await harness.stored()
    assert {stored.step(s).status for s in ("first", "second")} == {StepStatus.PENDING}  # nothing saved over it

    harness.run, harness.etag = stored, str(harness.store.documents["run-1"][1])  # the new owner takes over
    run = await harness.advance()
    assert run.status is RunStatus.SUCCEEDED
    assert sorted(w[1].get("target", "") for w in actions.writes) == ["", "a", "b"]  # each write once: a, b, page
    assert actions.calls.count(f"respond {SET}") == 4  # a and b were asked again and answered from the ledger


# --------------------------------------------------------------------------------------------------------- rollback

CHAIN = playbook(
    actions=[
        {"id": "first", "uses": SET, "with": {"target": '"a"', "value": '"off"'}},
        {"id": "second", "uses": SET, "needs": ["first"], "with": {"target": '"b"', "value": '"off"'}},
        {"id": "page", "uses": PAGE, "needs": ["second"], "with": {"to": '"soc"'}},
    ]
)


async def rolled_back(harness: Harness) -> Run:
    harness.run.rollback_requested = True
    return await harness.advance()


async def test_rollback_undoes_every_action_newest_first_and_says_so_once() -> None:
    harness = Harness(CHAIN)
    harness.actions.world["a"] = "on"
    await harness.advance()
    assert harness.actions.world == {"a": "off", "b": "off"}
    harness.clock.advance(60)

    run = await rolled_back(harness)

    assert run.status is RunStatus.ROLLED_BACK and not run.rollback_requested
    assert harness.actions.world == {"a": "on"}  # exactly the prior state: b did not exist
    undos = [c for c in harness.actions.calls if c.startswith("undo")]
    assert undos == [f"undo {PAGE}", f"undo {SET}", f"undo {SET}"]
    undone = {s: (run.step(s).undo or {}).get("status") for s in ("page", "second", "first")}
    assert undone == {"page": "skipped", "second": "undone", "first": "undone"}  # a page cannot be unsent
    note = harness.actions.notes["run-1:rollback"]
    assert note.text == "Riposte rolled back run run-1: undid first, second."

    again = await rolled_back(harness)  # idempotent: nothing is undone twice, the note is not repeated
    assert again.status is RunStatus.ROLLED_BACK
    assert [c for c in harness.actions.calls if c.startswith("undo")] == undos
    assert list(harness.actions.notes) == ["run-1:writeback", "run-1:rollback"]  # asked again, written once


async def test_a_failed_undo_fails_the_rollback_and_a_second_rollback_retries_only_it() -> None:
    harness = Harness(CHAIN)
    await harness.advance()
    harness.actions.fail(f"undo {SET}", "409 Conflict", retryable=False)
    run = await rolled_back(harness)
    assert run.status is RunStatus.FAILED
    assert run.reason == "undo of second failed: undo failed: 409 Conflict"
    assert harness.actions.world == {"b": "off"}
    run = await rolled_back(harness)
    assert run.status is RunStatus.ROLLED_BACK and harness.actions.world == {}
    assert [c for c in harness.actions.calls if c.startswith("undo")] == [f"undo {PAGE}"] + [f"undo {SET}"] * 3


class DiesAfterWriting(MemoryActions):
    """The worker dies right after the write to `b` (recorded in the ledger), before it checkpoints the step."""

    async def respond(self, name: str, params: dict[str, Any], key: str) -> Any:
        outcome = await super().respond(name, params, key)
        if params.get("target") == "b":
            raise RuntimeError("worker died")
        return outcome


async def test_rollback_reads_the_ledger_so_a_write_never_checkpointed_is_undone_too() -> None:
    harness = Harness(CHAIN)
    harness.actions = DiesAfterWriting()
    with pytest.raises(ExceptionGroup):
        await harness.advance()
    harness.run = await harness.stored()
    assert harness.status("first") is StepStatus.DONE and harness.status("second") is StepStatus.PENDING
    assert harness.actions.world == {"a": "off", "b": "off"}  # the run does not know about b; the ledger does

    run = await rolled_back(harness)

    assert run.status is RunStatus.ROLLED_BACK and harness.actions.world == {}
    assert (run.step("second").undo or {}).get("status") == "undone"
    assert harness.status("page") is StepStatus.PENDING and f"respond {PAGE}" not in harness.actions.calls
    assert harness.actions.notes["run-1:rollback"].text == "Riposte rolled back run run-1: undid first, second."


async def test_a_dry_run_changes_nothing_and_writes_no_rollback_note() -> None:
    harness = Harness(CHAIN, dry_run=True)

    class DryRun(MemoryActions):
        async def respond(self, name: str, params: dict[str, Any], key: str) -> Any:
            return await self.preview(name, params, key)

    harness.actions = DryRun()
    run = await harness.advance()
    assert run.status is RunStatus.SUCCEEDED and harness.actions.world == {}
    assert {run.step(s).outcome["status"] for s in ("first", "second")} == {Status.DRY_RUN.value}  # type: ignore[index]
    run = await rolled_back(harness)
    assert run.status is RunStatus.ROLLED_BACK and "run-1:rollback" not in harness.actions.notes


# ---------------------------------------------------------------------------------------------------------- polling

CAPTURE = playbook(
    actions=[
        {
            "id": "capture",
            "uses": SET,
            "with": {"target": '"capture"', "value": '"running"'},
            "wait_until": {"uses": PROGRESS, "with": {"job": '"capture"'}, "until": "result.done", "every": "30s"},
            "then_comment": '"capture finished after polling"',
        }
    ]
)


async def test_a_wait_polls_until_done_then_tells_the_incident_once() -> None:
    harness = Harness(CAPTURE)
    run = await harness.advance()
    assert harness.status("capture") is StepStatus.POLLING and run.resume_at == harness.clock() + 30
    harness.clock.advance(30)
    await harness.advance()
    assert harness.status("capture") is StepStatus.POLLING and harness.actions.polls == {"capture": 1}
    harness.clock.advance(30)
    run = await harness.advance()
    assert run.status is RunStatus.SUCCEEDED
    assert run.step("capture").reason == "finished after 2 polls"
    assert harness.actions.notes["run-1:capture:finished"].text == "capture finished after polling"


async def test_the_approval_request_links_to_the_runs_page_in_the_console() -> None:
    harness = Harness(GATED)
    harness.console_url = "https://riposte.example/api/console/"
    await harness.advance()
    text = harness.actions.notes["run-1:switch_off:approval-request"].text
    assert "https://riposte.example/api/console/#/runs/run-1" in text


# -------------------------------------------------------------------------------------------------------- scheduling

CHAINED = playbook(
    enrich=[
        {"id": "lookup", "uses": READ, "for_each": "Account", "with": {"target": "entity.aadUserId"}},
        {"id": "again", "uses": READ, "for_each": "Account", "needs": ["lookup"], "with": {"target": '"again"'}},
    ]
)


class SlowFor(MemoryActions):
    """Reads of u2 take a while; every read's start and end is recorded."""

    def __init__(self) -> None:
        super().__init__()
        self.events: list[str] = []

    async def enrich(self, name: str, params: dict[str, Any], time_limit_s: float | None = None) -> Any:
        target = str(params.get("target"))
        self.events.append(f"start {target}")
        if target == "u2":
            for _ in range(20):
                await asyncio.sleep(0)
        found = await super().enrich(name, params, time_limit_s)
        self.events.append(f"end {target}")
        return found


async def test_a_step_starts_when_its_own_needs_finish_not_when_the_wave_does() -> None:
    harness = Harness(CHAINED)
    harness.actions = actions = SlowFor()
    run = await harness.advance()
    assert run.status is RunStatus.SUCCEEDED
    assert actions.events.index("start again") < actions.events.index("end u2")
    assert (await harness.stored()).status is RunStatus.SUCCEEDED  # the checkpoints written meanwhile end saved
