"""Advances a run as far as it can go now, checkpointing after every step.

The runner is pure orchestration: actions are reached through `ActionPort`, storage through `checkpoint`. It names no
particular action: what it tells the incident (approval requests, the summary, rollbacks) goes through the port's
`write_back`, which decides where the incident's source wants it. It never blocks on a wait: a step waiting for an
approval or for a poll leaves the run WAITING with `resume_at` set, and the worker schedules a continuation for then."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any, Protocol

from shared import telemetry
from shared.actions.model import Finding, IncidentNote, Outcome, Status
from shared.engine.model import ApprovalState, PollState, Run, RunStatus, StepState, StepStatus
from shared.engine.planner import WRITEBACK
from shared.engine.scoring import score
from shared.engine.writeback import summary
from shared.playbook.conditions import ConditionError, evaluate, is_true
from shared.playbook.model import ActionStep, Playbook, duration_seconds


class ActionPort(Protocol):
    async def enrich(self, name: str, params: dict[str, Any], time_limit_s: float | None = None) -> Finding: ...

    async def respond(self, name: str, params: dict[str, Any], key: str) -> Outcome: ...

    async def preview(self, name: str, params: dict[str, Any], key: str) -> Outcome: ...

    async def undo(self, outcome: Outcome) -> Outcome: ...

    async def write_back(self, note: IncidentNote, key: str) -> list[Outcome] | None:
        """Writes the note to wherever the run's incident takes it, exactly once per key: the outcome of each write,
        or None when the incident has nowhere to write back to."""
        ...

    async def settle(self, key: str) -> tuple[Outcome, float] | None:
        """What the ledger says the attempt under `key` did (an interrupted one judged from the target's state),
        with the time of its intent; None when nothing was attempted."""
        ...


Checkpoint = Callable[[Run], Awaitable[None]]

# A step that failed on throttling or a transient error is tried again later rather than failing the run: the
# services' 429s are the backstop of our client-side limiters once workers scale out. Back-off doubles from 2 s.
MAX_STEP_RETRIES = 7

_DONE_STATUSES = (Status.DONE, Status.ALREADY_DONE, Status.DRY_RUN)
log = logging.getLogger("riposte.engine")


class Runner:
    def __init__(
        self,
        playbook: Playbook,
        actions: ActionPort,
        checkpoint: Checkpoint,
        clock: Callable[[], float] = time.time,
        console_url: str = "",
        *,
        save_at_end: bool = True,  # False: the caller saves the run once advance returns (the worker does)
    ) -> None:
        self.save_at_end = save_at_end
        self.playbook = playbook
        self.console_url = console_url  # approval requests link to the run's page there
        self.actions = actions
        self.checkpoint = checkpoint
        self.clock = clock
        self._save_lock = asyncio.Lock()
        self._group: asyncio.TaskGroup | None = None
        self._flusher: asyncio.Task[None] | None = None
        self._dirty = False
        self._closing = False
        self._steps = {s.id: s for s in (*playbook.enrich, *playbook.actions)}

    # --- the loop ------------------------------------------------------------------------------------------------

    async def advance(self, run: Run) -> Run:
        if run.rollback_requested:
            return await self.rollback(run)
        if not run.status.active:
            return run
        if run.status is not RunStatus.RUNNING or run.resume_at is not None:
            run.status = RunStatus.RUNNING
            run.resume_at = None
            await self._save(run)
        await self._run_ready(run)
        if run.rollback_requested:
            return await self.rollback(run)
        self._settle(run)
        if self.save_at_end:
            await self._save(run)
        return run

    async def _run_ready(self, run: Run) -> None:
        """Starts each step as soon as the steps it needs have finished, not wave by wave, until nothing more is
        ready; a rollback asked for meanwhile starts nothing new. A step that changed nothing (an approval still
        awaited) is not run again until another step changes something. A TaskGroup, not gather: if one step fails
        (a lost lease), its siblings and the checkpoint in flight are cancelled rather than left acting for an
        invocation that no longer owns the run."""
        try:
            async with asyncio.TaskGroup() as group:
                self._group = group
                running: dict[str, asyncio.Task[bool]] = {}
                quiet: set[str] = set()
                while True:
                    now = self.clock()
                    for step in run.steps:
                        if run.rollback_requested or step.id in running or step.id in quiet:
                            continue
                        if self._ready(run, step, now):
                            running[step.id] = group.create_task(self._run_step(run, step))
                    if not running:
                        self._closing = True  # the run's own save after this covers what is left to write
                        break
                    done, _ = await asyncio.wait(running.values(), return_when=asyncio.FIRST_COMPLETED)
                    for step_id, task in list(running.items()):
                        if task in done:
                            del running[step_id]
                            if task.result():
                                quiet.clear()
                            else:
                                quiet.add(step_id)
        finally:
            self._group, self._closing = None, False

    def _save_soon(self, run: Run) -> None:
        """A finished step's checkpoint, off the critical path: the steps after it start while it is written, and
        checkpoints requested meanwhile are written as one. Safe because the ledger, not the run, is what keeps an
        action from happening twice, and a failed save (a lost lease) cancels every step of the group."""
        self._dirty = True
        if self._group is None:
            raise RuntimeError("_save_soon outside _run_ready")
        if self._flusher is None or self._flusher.done():
            self._flusher = self._group.create_task(self._flush(run))

    async def _flush(self, run: Run) -> None:
        while self._dirty and not self._closing:
            self._dirty = False
            await self._save(run)

    def _ready(self, run: Run, step: StepState, now: float) -> bool:
        if step.status is StepStatus.POLLING:
            return step.poll is not None and step.poll.next_at <= now
        if step.status is StepStatus.AWAITING_APPROVAL:
            return True
        if step.status not in (StepStatus.PENDING, StepStatus.APPROVED):
            return False
        if step.not_before is not None and step.not_before > now:
            return False
        return all(run.step(need).status.finished for need in step.needs)

    def _settle(self, run: Run) -> None:
        unfinished = [s for s in run.steps if not s.status.finished]
        if unfinished:
            wake = [s.approval.deadline for s in unfinished if s.approval and s.status is StepStatus.AWAITING_APPROVAL]
            wake += [s.poll.next_at for s in unfinished if s.poll and s.status is StepStatus.POLLING]
            wake += [s.not_before for s in unfinished if s.not_before is not None]
            run.status = RunStatus.WAITING
            run.resume_at = min(wake) if wake else self.clock()
            return
        failed = [s for s in run.steps if s.kind != "enrich" and s.status is StepStatus.FAILED]
        run.status = RunStatus.FAILED if failed else RunStatus.SUCCEEDED
        run.reason = "; ".join(f"{s.id} ({s.uses}) failed: {s.reason}" for s in failed)
        run.finished_at = self.clock()
        run.resume_at = None

    async def _save(self, run: Run) -> None:
        async with self._save_lock:
            run.updated_at = self.clock()
            await self.checkpoint(run)

    async def _retry_later(self, run: Run, step: StepState, reason: str) -> bool | None:
        """Puts a transiently failed step back to wait, or None when it has been retried enough."""
        if step.retries >= MAX_STEP_RETRIES:
            return None
        step.retries += 1
        delay = min(2.0**step.retries, 120.0)
        step.not_before = self.clock() + delay
        step.reason = f"retrying in {delay:g} s (attempt {step.retries + 1}): {reason}"
        await self._save(run)
        return True

    async def _finish(self, run: Run, step: StepState, status: StepStatus, reason: str = "") -> bool:
        step.status = status
        step.reason = reason or step.reason
        step.ended_at = self.clock()
        if self._group is not None:
            self._save_soon(run)
        else:
            await self._save(run)
        return True

    # --- one step ------------------------------------------------------------------------------------------------

    async def _run_step(self, run: Run, step: StepState) -> bool:
        """One step under its own span; every log line inside carries the step's id."""
        with telemetry.step_scope(step.id, uses=step.uses, kind=step.kind) as scope:
            changed = await self._advance_step(run, step)
            failed = step.status is StepStatus.FAILED
            scope.finished(step.status.value, step.reason, failed=failed)
            if changed and step.status.finished:
                level = logging.WARNING if failed else logging.INFO
                log.log(level, "step %s (%s) %s%s", step.id, step.uses, step.status.value, _because(step.reason))
            elif changed:
                log.info("step %s (%s) is %s%s", step.id, step.uses, step.status.value, _because(step.reason))
            return changed

    async def _advance_step(self, run: Run, step: StepState) -> bool:
        if step.started_at is None:
            step.started_at = self.clock()
        step.attempts += 1
        if step.kind == "enrich":
            return await self._enrich(run, step)
        if step.kind == "writeback":
            return await self._writeback(run, step)
        if step.status is StepStatus.POLLING:
            return await self._poll(run, step)
        return await self._act(run, step)

    def variables(self, run: Run, step: StepState) -> dict[str, Any]:
        """What CEL sees: incident, entity, findings and results of other steps (same entity where they share a
        for_each kind), errors of failed enrichments, and the run."""
        own = self._steps.get(step.step)
        own_kind = own.for_each if own is not None else None
        index = step.id.rsplit(".", 1)[1] if "." in step.id else None
        findings: dict[str, Any] = {}
        results: dict[str, Any] = {}
        errors: dict[str, str] = {}
        for other in run.steps:
            if other.kind == "writeback":
                continue
            kind = self._steps[other.step].for_each
            target = findings if other.kind == "enrich" else results
            if kind is None or (kind == own_kind and index is not None):
                if kind is not None and other.id != f"{other.step}.{index}":
                    continue  # another entity's instance
                target[other.step] = _value_of(other)
                if other.kind == "enrich" and other.status is StepStatus.FAILED:
                    errors[other.step] = other.reason
            else:  # a step over another kind of entity: all of its instances, as a list
                target.setdefault(other.step, []).append(_value_of(other))
        return {
            "incident": run.incident,
            "entity": step.entity or {},
            "findings": findings,
            "results": results,
            "errors": errors,
            "run": {"id": run.id, "dryRun": run.dry_run, "playbook": run.playbook},
            "score": score(self.playbook, run),
        }

    def _params(self, spec: dict[str, Any], variables: dict[str, Any]) -> dict[str, Any]:
        """Strings are CEL, other values literals; a map's values likewise (one level)."""
        evaluated: dict[str, Any] = {}
        for key, value in spec.items():
            if isinstance(value, dict):
                evaluated[key] = self._params(value, variables)
            else:
                evaluated[key] = evaluate(value, variables) if isinstance(value, str) else value
        return evaluated

    async def _enrich(self, run: Run, step: StepState) -> bool:
        definition = self._steps[step.step]
        variables = self.variables(run, step)
        try:
            if not is_true(definition.when, variables):
                return await self._finish(run, step, StepStatus.SKIPPED, f"condition false: {definition.when}")
            step.params = self._params(definition.with_, variables)
        except ConditionError as exc:
            return await self._finish(run, step, StepStatus.FAILED, f"parameters: {exc}")
        finding = await self.actions.enrich(step.uses, step.params, duration_seconds(definition.timeout))
        step.finding = finding.model_dump(mode="json", by_alias=True)
        if finding.ok:
            step.not_before = None
            return await self._finish(run, step, StepStatus.DONE)
        if finding.retryable:
            retried = await self._retry_later(run, step, finding.error)
            if retried is not None:
                return retried
        return await self._finish(run, step, StepStatus.FAILED, finding.error)

    async def _act(self, run: Run, step: StepState) -> bool:
        definition = self._steps[step.step]
        assert isinstance(definition, ActionStep)
        variables = self.variables(run, step)
        if step.status is StepStatus.PENDING:
            try:
                if not is_true(definition.when, variables):
                    return await self._finish(run, step, StepStatus.SKIPPED, f"condition false: {definition.when}")
            except ConditionError as exc:  # unsure means do not act
                return await self._finish(run, step, StepStatus.SKIPPED, f"condition could not be evaluated: {exc}")
        try:
            step.params = self._params(definition.with_, variables)
        except ConditionError as exc:
            return await self._finish(run, step, StepStatus.SKIPPED, f"parameters could not be evaluated: {exc}")
        gate = await self._approval_gate(run, step, definition, variables)
        if gate is not None:
            return gate
        outcome = await self.actions.respond(step.uses, step.params, f"{run.id}:{step.id}")
        step.outcome = outcome.model_dump(mode="json", by_alias=True)
        if outcome.status in _DONE_STATUSES:
            if definition.wait_until is not None and outcome.status is not Status.DRY_RUN:
                wait = definition.wait_until
                now = self.clock()
                step.status = StepStatus.POLLING
                step.poll = PollState(
                    next_at=now + duration_seconds(wait.every), deadline=now + duration_seconds(wait.timeout)
                )
                await self._save(run)
                return True
            return await self._finish(run, step, StepStatus.DONE, outcome.reason)
        if outcome.retryable:
            retried = await self._retry_later(run, step, outcome.reason)
            if retried is not None:
                return retried
        status = StepStatus.SKIPPED if outcome.status is Status.SKIPPED else StepStatus.FAILED
        return await self._finish(run, step, status, outcome.reason)

    async def _approval_gate(
        self, run: Run, step: StepState, definition: ActionStep, variables: dict[str, Any]
    ) -> bool | None:
        """None when the action may proceed now; True/False (changed or not) when it is waiting or was decided."""
        approval = definition.approval
        if approval is None or step.status is StepStatus.APPROVED:
            return None
        if step.status is StepStatus.PENDING:
            try:
                needed = is_true(approval.when, variables)
            except ConditionError as exc:  # unsure means ask
                needed, step.reason = True, f"approval required (condition could not be evaluated: {exc})"
            if not needed:
                return None
            # Do not ask an analyst to approve what a guardrail will refuse, or what is already done.
            preview = await self.actions.preview(step.uses, step.params, f"{run.id}:{step.id}")
            if preview.status is Status.SKIPPED:
                step.outcome = preview.model_dump(mode="json", by_alias=True)
                return await self._finish(run, step, StepStatus.SKIPPED, preview.reason)
            if preview.status is Status.FAILED:
                step.outcome = preview.model_dump(mode="json", by_alias=True)
                return await self._finish(run, step, StepStatus.FAILED, preview.reason)
            if run.dry_run:
                groups = self.playbook.approver_groups(definition)
                by = f" from a member of group {' or '.join(groups)}" if groups else ""
                step.reason = f"would wait for approval{by} ({approval.when})"
                return None
            step.status = StepStatus.AWAITING_APPROVAL
            step.preview = preview.model_dump(mode="json", by_alias=True)
            step.approval = ApprovalState(
                quorum=approval.quorum,
                deadline=self.clock() + duration_seconds(approval.timeout),
                on_timeout=approval.on_timeout,
                approver_groups=list(self.playbook.approver_groups(definition)),
            )
            step.reason = step.reason or f"waiting for approval ({approval.when})"
            await self._save(run)
            await self._notify_approval(run, step)
            return True
        assert step.approval is not None
        state = step.approval
        rejections = [d for d in state.decisions if d.decision == "reject"]
        if rejections:
            first = rejections[0]
            reason = f"rejected by {first.by}" + (f": {first.comment}" if first.comment else "")
            return await self._finish(run, step, StepStatus.SKIPPED, reason)
        if len(state.approvers()) >= state.quorum:
            step.status = StepStatus.APPROVED
            step.reason = f"approved by {', '.join(state.approver_names())}"
            await self._save(run)
            return None
        if self.clock() >= state.deadline:
            if state.on_timeout == "approve":
                step.status = StepStatus.APPROVED
                step.reason = "approval timed out; the playbook approves on time-out"
                await self._save(run)
                return None
            return await self._finish(run, step, StepStatus.SKIPPED, "approval timed out; rejected")
        return False

    async def _notify_approval(self, run: Run, step: StepState) -> None:
        target = (step.entity or {}).get("friendlyName") or (step.entity or {}).get("id") or ""
        message = (
            f"Riposte run {run.id} is waiting for approval of {step.uses} on {target} (step {step.id}). "
            f'Approve: POST /api/runs/{run.id}/approve {{"step": "{step.id}"}} or `riposte approve {run.id}`.'
        )
        if self.console_url:  # the page shows the plan and asks; opening the link decides nothing
            message += f" Review and decide in the console: {self.console_url}#/runs/{run.id}"
        page = f"Approval needed: {step.uses} on {target}"[:200]
        await self.actions.write_back(IncidentNote(text=message, page=page), f"{run.id}:{step.id}:approval-request")

    async def _poll(self, run: Run, step: StepState) -> bool:
        definition = self._steps[step.step]
        assert isinstance(definition, ActionStep) and definition.wait_until is not None and step.poll is not None
        wait = definition.wait_until
        variables = self.variables(run, step)
        variables["result"] = (step.outcome or {}).get("result", {})
        try:
            params = self._params(wait.with_, variables)
        except ConditionError as exc:
            return await self._finish(run, step, StepStatus.FAILED, f"wait parameters: {exc}")
        finding = await self.actions.enrich(wait.uses, params)
        step.poll.polls += 1
        step.poll.last = finding.data
        variables["result"] = finding.data
        try:
            finished = finding.ok and is_true(wait.until, variables)
        except ConditionError:
            finished = False
        if finished:
            if definition.then_comment:
                try:
                    message = str(evaluate(definition.then_comment, variables))
                except ConditionError as exc:
                    message = f"{step.uses} finished ({exc})"
                await self.actions.write_back(IncidentNote(text=message), f"{run.id}:{step.id}:finished")
            return await self._finish(run, step, StepStatus.DONE, f"finished after {step.poll.polls} polls")
        now = self.clock()
        if now >= step.poll.deadline:
            return await self._finish(run, step, StepStatus.FAILED, f"did not finish within {wait.timeout}")
        step.poll.next_at = min(now + duration_seconds(wait.every), step.poll.deadline)
        await self._save(run)
        return True

    async def _writeback(self, run: Run, step: StepState) -> bool:
        writeback = self.playbook.writeback
        try:
            change_status = is_true(writeback.when, self.variables(run, step))
        except ConditionError:
            change_status = False
        scored = score(self.playbook, run) if self.playbook.score else None
        note = IncidentNote(
            html=summary(run, self.clock(), scored) if writeback.comment else None,
            add_labels=tuple(writeback.labels),
            status=writeback.status if change_status else None,
            severity=writeback.severity if change_status else None,
        )
        writes = await self.actions.write_back(note, f"{run.id}:{WRITEBACK}")
        if writes is None:
            return await self._finish(run, step, StepStatus.SKIPPED, "the incident has nowhere to write back to")
        results = [outcome.model_dump(mode="json", by_alias=True) for outcome in writes]
        step.outcome = {"writes": results, **({"score": scored} if scored is not None else {})}
        failed = [r for r in results if r.get("status") == Status.FAILED.value]
        if failed and all(r.get("retryable") for r in failed):
            retried = await self._retry_later(run, step, "; ".join(r.get("reason", "") for r in failed))
            if retried is not None:
                return retried
        if failed:
            return await self._finish(run, step, StepStatus.FAILED, "; ".join(r.get("reason", "") for r in failed))
        return await self._finish(run, step, StepStatus.DONE)

    # --- rollback ------------------------------------------------------------------------------------------------

    async def _undo(self, run: Run, step: StepState) -> None:
        with telemetry.step_scope(step.id, uses=step.uses, kind="undo") as scope:
            undone = await self.actions.undo(Outcome.model_validate(step.outcome))
            step.undo = undone.model_dump(mode="json", by_alias=True)
            undo_failed = undone.status is Status.FAILED
            scope.finished(undone.status.value, undone.reason, failed=undo_failed)
            log.log(
                logging.WARNING if undo_failed else logging.INFO,
                "undo of step %s (%s) %s%s",
                step.id,
                step.uses,
                undone.status.value,
                _because(undone.reason),
            )
            await self._save(run)

    async def rollback(self, run: Run) -> Run:
        """Undo every action the run did, newest first. What it did is read from the ledger, not from the run's
        steps: an action whose worker stopped before checkpointing it is undone too. Idempotent: an undone step is not
        undone again. The caller holds the run's lease, so no attempt of this run is acting meanwhile."""
        run.status = RunStatus.ROLLING_BACK
        run.rollback_started_at = self.clock()
        await self._save(run)
        done: list[tuple[float, int, StepState]] = []
        for index, step in enumerate(run.steps):
            if step.kind != "action" or (step.undo is not None and step.undo.get("status") != Status.FAILED.value):
                continue
            settled = await self.actions.settle(f"{run.id}:{step.id}")
            if settled is None:
                continue
            outcome, at = settled
            step.outcome = outcome.model_dump(mode="json", by_alias=True)
            if outcome.status is Status.FAILED:  # the ledger cannot tell whether it acted: never claim it undone
                step.undo = outcome.model_dump(mode="json", by_alias=True)
            elif outcome.status is Status.DONE:
                if not step.status.finished:
                    step.status, step.reason, step.ended_at = StepStatus.DONE, outcome.reason, self.clock()
                done.append((at, index, step))
        for _, _, step in sorted(done, key=lambda item: (item[0], item[1]), reverse=True):
            await self._undo(run, step)
        failed = [s for s in run.steps if s.undo and s.undo.get("status") == Status.FAILED.value]
        run.status = RunStatus.FAILED if failed else RunStatus.ROLLED_BACK
        run.reason = "; ".join(f"undo of {s.id} failed: {s.undo.get('reason')}" for s in failed if s.undo)
        run.rollback_requested = False
        run.finished_at = self.clock()
        if not run.dry_run:
            undone_steps = [s.id for s in run.steps if s.undo and s.undo.get("status") == Status.UNDONE.value]
            message = f"Riposte rolled back run {run.id}: undid {', '.join(undone_steps) or 'nothing'}." + (
                f" Problems: {run.reason}" if run.reason else ""
            )
            await self.actions.write_back(IncidentNote(text=message), f"{run.id}:rollback")
        await self._save(run)
        return run


def _because(reason: str) -> str:
    return f": {reason}" if reason else ""


def _value_of(step: StepState) -> Any:
    if step.kind == "enrich":
        return (step.finding or {}).get("data", {}) if step.status is StepStatus.DONE else {}
    outcome = step.outcome or {}
    return {
        "status": outcome.get("status", step.status.value),
        "result": outcome.get("result", {}),
        "stepStatus": step.status.value,
    }
