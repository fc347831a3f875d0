"""In-memory implementations of the engine's ports, so the Runner and the Service run without the stack.

They are real implementations, not recordings: MemoryActions keeps a small world of named values that its responders
change and its undo restores, answers a replayed idempotency key with the first outcome without writing again (the
executor's contract), and writes incident notes exactly once per key. MemoryStore keeps runs as JSON documents under
an ETag and refuses a save over someone else's (LostLease), as the table store does."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from shared.actions.context import MemoryLedger, SlidingWindowBudget
from shared.actions.model import Finding, IncidentNote, Outcome, Status, Target
from shared.engine.model import Decision, Run, RunStatus
from shared.store.runs import LostLease, rollback_pending

SET = "mem.set_value"  # params {target, value}: reversible
PAGE = "mem.send_page"  # params {to}: not reversible
READ = "mem.get_value"  # params {target}: data {value}
PROGRESS = "mem.get_progress"  # params {job}: data {done} once the job has been polled `polls_to_finish` times


class Clock:
    """Time the tests move by hand."""

    def __init__(self, now: float = 1_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@dataclass
class Fault:
    reason: str
    retryable: bool
    times: int


@dataclass
class MemoryActions:
    """shared.engine.runner.ActionPort over an in-memory world."""

    world: dict[str, str] = field(default_factory=dict)
    guarded: set[str] = field(default_factory=set)  # targets a guardrail protects
    writes_back: bool = True  # False: the incident has nowhere to write back (a Defender alert)
    polls_to_finish: int = 2
    outcomes: dict[str, tuple[Outcome, float]] = field(default_factory=dict)  # the ledger: key -> (outcome, when)
    notes: dict[str, IncidentNote] = field(default_factory=dict)  # by key: what the incident was told
    writes: list[tuple[str, dict[str, Any]]] = field(default_factory=list)  # every write that changed the world
    calls: list[str] = field(default_factory=list)  # every call, in order: "respond mem.set_value", ...
    faults: dict[str, Fault] = field(default_factory=dict)
    crash: BaseException | None = None  # raised by the next respond: a worker bug, not an outcome
    polls: dict[str, int] = field(default_factory=dict)

    async def _io(self, call: str) -> None:
        """Every call gives the event loop a turn, as a request does: concurrent steps interleave as in a worker."""
        self.calls.append(call)
        await asyncio.sleep(0)

    def fail(self, name: str, reason: str, *, retryable: bool, times: int = 1) -> None:
        """The next `times` calls of `name` fail, transiently or not."""
        self.faults[name] = Fault(reason, retryable, times)

    def _fault(self, name: str) -> Fault | None:
        fault = self.faults.get(name)
        if fault is None or fault.times <= 0:
            return None
        fault.times -= 1
        return fault

    async def enrich(self, name: str, params: dict[str, Any], time_limit_s: float | None = None) -> Finding:
        await self._io(f"enrich {name}")
        fault = self._fault(name)
        if fault is not None:
            return Finding(enricher=name, ok=False, error=fault.reason, retryable=fault.retryable)
        if name == READ:
            return Finding(enricher=name, ok=True, data={"value": self.world.get(str(params["target"]))})
        if name == PROGRESS:
            job = str(params["job"])
            self.polls[job] = self.polls.get(job, 0) + 1
            return Finding(enricher=name, ok=True, data={"done": self.polls[job] >= self.polls_to_finish})
        return Finding(enricher=name, ok=False, error=f"no enricher {name}")

    def _plan(self, name: str, params: dict[str, Any], key: str) -> Outcome:
        target = str(params.get("target") or params.get("to") or "")
        common: dict[str, Any] = {"action": name, "idempotency_key": key, "target": Target(kind="value", id=target)}
        if name not in (SET, PAGE):
            return Outcome(**common, status=Status.FAILED, reason=f"no responder {name}")
        if target in self.guarded:
            return Outcome(**common, status=Status.SKIPPED, reason=f"guardrail: {target} is protected")
        prior = {"value": self.world.get(target)}
        return Outcome(**common, status=Status.DRY_RUN, prior=prior, intended={"value": params.get("value")})

    async def preview(self, name: str, params: dict[str, Any], key: str) -> Outcome:
        await self._io(f"preview {name}")
        return self._plan(name, params, key)

    async def respond(self, name: str, params: dict[str, Any], key: str) -> Outcome:
        await self._io(f"respond {name}")
        if self.crash is not None:
            crash, self.crash = self.crash, None
            raise crash
        if key in self.outcomes:
            return self.outcomes[key][0]  # a replay: the first outcome, nothing written again
        fault = self._fault(name)
        if fault is not None:
            return Outcome(action=name, status=Status.FAILED, reason=fault.reason, retryable=fault.retryable)
        planned = self._plan(name, params, key)
        if planned.status is not Status.DRY_RUN:
            return planned
        if name == SET:
            assert planned.target is not None
            self.world[planned.target.id] = str(params["value"])
        self.writes.append((name, dict(params)))
        done = planned.model_copy(update={"status": Status.DONE})
        self.outcomes[key] = (done, float(len(self.writes)))  # the order of the writes stands in for their time
        return done

    async def settle(self, key: str) -> tuple[Outcome, float] | None:
        await self._io("settle")
        return self.outcomes.get(key)

    async def undo(self, outcome: Outcome) -> Outcome:
        await self._io(f"undo {outcome.action}")
        fault = self._fault(f"undo {outcome.action}")
        if fault is not None:
            return outcome.model_copy(update={"status": Status.FAILED, "reason": f"undo failed: {fault.reason}"})
        if outcome.action != SET:
            return outcome.model_copy(update={"status": Status.SKIPPED, "reason": "cannot be undone"})
        assert outcome.target is not None
        prior = outcome.prior.get("value")
        if prior is None:
            self.world.pop(outcome.target.id, None)
        else:
            self.world[outcome.target.id] = prior
        return outcome.model_copy(update={"status": Status.UNDONE, "reason": "restored the prior state"})

    async def write_back(self, note: IncidentNote, key: str) -> list[Outcome] | None:
        await self._io("write_back")
        if not self.writes_back:
            return None
        fault = self._fault("write_back")
        if fault is not None:
            return [Outcome(action="note", status=Status.FAILED, reason=fault.reason, retryable=fault.retryable)]
        status = Status.ALREADY_DONE if key in self.notes else Status.DONE
        self.notes.setdefault(key, note)
        return [Outcome(action="note", status=status, idempotency_key=key)]


class MemoryStore:
    """The run store in memory: runs as JSON under an ETag, decisions beside them, the queue as a list."""

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self.clock = clock  # the service's: a rollback request is compared with when a rollback started
        self.documents: dict[str, tuple[str, int]] = {}  # run id -> (JSON, version)
        self.decisions: dict[str, dict[str, Decision]] = {}  # run id -> "<step>|<decider>" -> decision
        self.rollbacks: dict[str, dict[str, Any]] = {}  # run id -> the rollback request beside it
        self.active: dict[str, str] = {}  # "<incident>|<playbook>" -> the run holding that place
        self.queue: list[tuple[str, float, str]] = []  # (run id, delay, reason)
        self.deliveries: dict[str, list[dict[str, str]]] = {}
        self.ledgers: dict[str, MemoryLedger] = {}
        self.budget = SlidingWindowBudget(1000)

    async def create(self, run: Run) -> bool:
        if run.id in self.documents:
            return False
        self.documents[run.id] = (run.model_dump_json(by_alias=True), 1)
        return True

    async def load(self, run_id: str) -> tuple[Run, str] | None:
        if run_id not in self.documents:
            return None
        document, version = self.documents[run_id]
        run = Run.model_validate_json(document)
        for key, decision in sorted(self.decisions.get(run_id, {}).items(), key=lambda item: item[1].at):
            step = run.step(key.split("|", 1)[0])
            if step.approval is not None and all(d.decider != decision.decider for d in step.approval.decisions):
                step.approval.decisions.append(decision)
        request = self.rollbacks.get(run_id)
        if request is not None and rollback_pending(run, request):
            run.rollback_requested, run.status = True, RunStatus.ROLLING_BACK
            run.reason = f"rollback requested by {request['by']}"
        if request is not None:
            run.rollback_requested_by_id = run.rollback_requested_by_id or request["byId"]
        return run, str(version)

    async def save(self, run: Run, etag: str) -> str:
        _, version = self.documents[run.id]
        if str(version) != etag:
            raise LostLease(run.id)
        self.documents[run.id] = (run.model_dump_json(by_alias=True), version + 1)
        return str(version + 1)

    def touch(self, run_id: str) -> None:
        """Someone else saves the run (another worker, a rollback request): its ETag moves on."""
        document, version = self.documents[run_id]
        self.documents[run_id] = (document, version + 1)

    async def add_decision(self, run_id: str, step_id: str, decision: Decision) -> bool:
        decided = self.decisions.setdefault(run_id, {})
        key = f"{step_id}|{decision.decider}"  # one decision per identity and step
        if key in decided:
            return False
        decided[key] = decision
        return True

    async def request_rollback(self, run_id: str, by: str, by_id: str = "") -> None:
        self.rollbacks[run_id] = {"by": by, "byId": by_id, "at": self.clock()}

    async def rollback_request(self, run_id: str) -> dict[str, Any] | None:
        return self.rollbacks.get(run_id)

    async def claim_active(self, incident: str, playbook: str, run_id: str) -> str:
        """The run holding the place of playbook's active run for the incident; this one unless another, still
        active, holds it."""
        place = f"{incident}|{playbook}"
        holder = self.active.get(place)
        if holder is not None and holder != run_id and holder in self.documents:
            status = RunStatus(json.loads(self.documents[holder][0])["status"])
            if status.active:
                return holder
        self.active[place] = run_id
        return run_id

    async def release_active(self, incident: str, playbook: str, run_id: str) -> None:
        place = f"{incident}|{playbook}"
        if self.active.get(place) == run_id:
            del self.active[place]

    async def enqueue(self, run_id: str, delay_s: float = 0, reason: str = "") -> None:
        self.queue.append((run_id, delay_s, reason))

    async def claim_delivery(self, key: str, runs: list[dict[str, str]]) -> tuple[bool, list[dict[str, str]]]:
        if key in self.deliveries:
            return False, self.deliveries[key]
        self.deliveries[key] = runs
        return True, runs

    async def delivery(self, key: str) -> list[dict[str, str]] | None:
        return self.deliveries.get(key)

    async def list_runs(self, limit: int = 50, status: str | None = None) -> list[dict[str, Any]]:
        bodies = [json.loads(document) for document, _ in self.documents.values()]
        found = [b for b in bodies if status is None or b["status"] == status]
        return sorted(found, key=lambda b: b["createdAt"], reverse=True)[:limit]

    def ledger(self, run_id: str) -> MemoryLedger:
        return self.ledgers.setdefault(run_id, MemoryLedger())

    def destructive_budget(self, limit: int) -> SlidingWindowBudget:
        return self.budget
