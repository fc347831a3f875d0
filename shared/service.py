"""The application service: what the HTTP routes, the queue triggers and the CLI call.

submit: dedup the delivery, choose playbooks, create one run per playbook and queue it (the caller gets 202).
process: a queue message -> claim the run (ETag lease) -> advance it -> schedule a continuation if it waits.
decide / rollback: record an analyst's decision and queue the run. poisoned: mark a run failed after its message
kept failing, and say so on the incident."""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import os
import socket
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

from shared import telemetry
from shared.actions.context import ActionContext, DestructiveBudget, Ledger
from shared.actions.model import IncidentNote
from shared.actions.permissions import IdentityPermissions
from shared.actions.port import ExecutorPort
from shared.actions.reads import RunClients
from shared.approvers import ApprovalRefused, ApproverGroups, check_separation
from shared.azure.errors import AzureError
from shared.azure.storage import MAX_VISIBILITY_S
from shared.engine.model import ApprovalState, Decision, Lease, Run, RunStatus, StepStatus
from shared.engine.planner import plan_steps
from shared.engine.runner import ActionPort, Runner
from shared.intake.model import Incident
from shared.perloop import PerLoop
from shared.playbook.loader import bundled_playbooks, load_playbooks
from shared.playbook.matching import matching
from shared.playbook.model import Playbook
from shared.settings import Settings
from shared.store.runs import LostLease, rollback_pending

if TYPE_CHECKING:
    from shared.azure.graph import GraphAdapter

log = logging.getLogger("riposte.engine")
RUN_NAMESPACE = uuid.UUID("6c1f7f0e-5a9b-4d0a-9a57-2b9c8f3c1a10")
WORKER_ID = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


WATCHDOG = "watchdog"  # the reason of the message that checks on a run when its worker's lease ends


class LeaseLapsing(Exception):
    """The lease could not be renewed and is about to lapse: the work was stopped before another worker may start."""


class ServiceError(Exception):
    def __init__(self, status: int, code: str, message: str, target: str = "") -> None:
        super().__init__(message)
        self.status, self.code, self.message, self.target = status, code, message, target


@dataclass(frozen=True)
class Submission:
    created: bool  # False for a redelivery: the runs are the ones the first delivery created
    runs: list[dict[str, Any]]
    unmatched_reason: str = ""


def delivery_key(incident: Incident, idempotency_key: str | None) -> str:
    """Event Grid event id, the trigger's eventUniqueId, the caller's Idempotency-Key, or the payload's hash."""
    if idempotency_key:
        return f"key:{idempotency_key}"
    if incident.delivery_id:
        return f"delivery:{incident.delivery_id}"
    digest = hashlib.sha256(json.dumps(incident.raw, sort_keys=True, default=str).encode()).hexdigest()
    return f"payload:{digest}"


_E = TypeVar("_E", bound=BaseException)


def _find(error: BaseException, kind: type[_E]) -> _E | None:
    """The first `kind` in an exception, looking inside exception groups (a TaskGroup's failures)."""
    if isinstance(error, BaseExceptionGroup):
        for inner in error.exceptions:
            found = _find(inner, kind)
            if found is not None:
                return found
        return None
    return error if isinstance(error, kind) else None


def run_summary(run: Run) -> dict[str, Any]:
    return {
        "id": run.id,
        "playbook": run.playbook,
        "status": run.status.value,
        "dryRun": run.dry_run,
        "location": f"/api/runs/{run.id}",
    }


_CLIENTS: PerLoop[Any] = PerLoop()


def azure_clients(settings: Settings) -> Any:
    """One AzureClients per event loop for the life of the worker, so tokens and connections are reused."""
    from shared.azure.clients import AzureClients

    clients = _CLIENTS.current()
    if clients is None or clients.settings is not settings:
        clients = _CLIENTS.put(AzureClients(settings))
    return clients


class RunStorage(Protocol):
    """What the service needs of a run store: shared.store.runs.RunStore, or an in-memory one in unit tests."""

    async def create(self, run: Run) -> bool: ...

    async def load(self, run_id: str) -> tuple[Run, str] | None: ...

    async def save(self, run: Run, etag: str) -> str: ...

    async def add_decision(self, run_id: str, step_id: str, decision: Decision) -> bool: ...

    async def enqueue(self, run_id: str, delay_s: float = 0, reason: str = "") -> None: ...

    async def claim_delivery(self, key: str, runs: list[dict[str, str]]) -> tuple[bool, list[dict[str, str]]]: ...

    async def list_runs(self, limit: int = 50, status: str | None = None) -> list[dict[str, Any]]: ...

    async def request_rollback(self, run_id: str, by: str, by_id: str = "") -> None: ...

    async def rollback_request(self, run_id: str) -> dict[str, Any] | None: ...

    async def claim_active(self, incident: str, playbook: str, run_id: str) -> str: ...

    async def release_active(self, incident: str, playbook: str, run_id: str) -> None: ...

    def ledger(self, run_id: str) -> Ledger: ...

    def destructive_budget(self, limit: int) -> DestructiveBudget: ...


class Service:
    def __init__(
        self,
        settings: Settings,
        store: RunStorage,
        playbooks: dict[str, Playbook] | None = None,
        ports: Callable[[Run], ActionPort] | None = None,
    ) -> None:
        """ports: the action port a run's steps go through; the real executor on the Azure clients unless given."""
        self.settings = settings
        self.store = store
        if playbooks is None:
            playbooks = load_playbooks(Path(settings.playbooks_dir)) if settings.playbooks_dir else bundled_playbooks()
        self.playbooks = playbooks
        self.ports = ports or self._executor_port
        self.clock = time.time
        self._approver_groups: ApproverGroups | None = None

    def _executor_port(self, run: Run) -> ActionPort:
        return ExecutorPort(self._action_context(run), run.incident)

    # --- intake -------------------------------------------------------------------------------------------------

    def new_run(
        self,
        playbook: Playbook,
        incident: Incident,
        *,
        key: str | None,
        dry_run: bool,
        requested_by: str,
        requested_by_id: str = "",
        plan: bool = True,
    ) -> Run:
        """plan=False: intake stores the run without its steps, and the worker plans them (see `with_steps`)."""
        summary = incident.summary()
        now = self.clock()
        run_id = str(uuid.uuid5(RUN_NAMESPACE, f"{key}|{playbook.name}|{dry_run}")) if key else str(uuid.uuid4())
        return Run(
            id=run_id,
            playbook=playbook.name,
            playbook_version=playbook.version,
            dry_run=dry_run,
            incident=summary,
            incident_arm_id=incident.arm_id if incident.is_sentinel_incident else None,
            delivery_key=key,
            requested_by=requested_by,
            requested_by_id=requested_by_id.lower(),
            created_at=now,
            updated_at=now,
            steps=plan_steps(playbook, summary) if plan else [],
        )

    async def submit(
        self,
        incident: Incident,
        *,
        playbook: str | None = None,
        dry_run: bool = False,
        idempotency_key: str | None = None,
        requested_by: str = "",
        requested_by_id: str = "",
    ) -> Submission:
        if playbook is not None:
            if playbook not in self.playbooks:
                raise ServiceError(404, "PlaybookNotFound", f"No playbook named {playbook!r}.", "playbook")
            chosen = [self.playbooks[playbook]]
        else:
            chosen = matching(self.playbooks, incident.summary())
        # A dry run, or a run of a named playbook, is a different request from the plain delivery of the same payload.
        key = (
            delivery_key(incident, idempotency_key)
            + (f"|playbook:{playbook}" if playbook else "")
            + ("|dry-run" if dry_run else "")
        )
        runs = [
            self.new_run(
                p,
                incident,
                key=key,
                dry_run=dry_run,
                requested_by=requested_by,
                requested_by_id=requested_by_id,
                plan=False,  # intake does the least before 202: planning is the worker's
            )
            for p in chosen
        ]
        planned = [{"runId": r.id, "playbook": r.playbook} for r in runs]
        # The delivery and each run's place as the incident's active run are claimed at once: a burst's latency is
        # its storage round trips in sequence. The run ids are derived from the key, so a redelivery claims the same.
        claimed = await asyncio.gather(self.store.claim_delivery(key, planned), *(self._join_active(r) for r in runs))
        first, recorded = claimed[0]
        joins = dict(zip((r.id for r in runs), claimed[1:], strict=True))
        if not first:
            # A redelivery: the same runs, never new ones. Finish creating any the first delivery did not get to.
            wanted = {r["runId"] for r in recorded}
            for run in runs:
                if run.id not in wanted and joins[run.id] is None:  # planned now, never by the first delivery
                    await self._ended(run)
            runs = [r for r in runs if r.id in wanted]
        results = await asyncio.gather(*(self._create(run, joins[run.id]) for run in runs))
        summaries = [summary for summary in results if summary is not None]
        reason = "" if recorded else "no playbook matches this incident"
        return Submission(created=first, runs=summaries, unmatched_reason=reason)

    async def _create(self, run: Run, joined: dict[str, Any] | None) -> dict[str, Any] | None:
        """Creates and queues a run that holds its incident's place, or answers the run it joined or found."""
        if joined is not None:
            return joined
        if await self.store.create(run):
            # should a host die holding the work item, the watchdog starts the run regardless
            await asyncio.gather(self.store.enqueue(run.id, reason="submitted"), self._watch(run.id))
            with _context_of(run):
                log.info("run %s of %s queued%s", run.id, run.playbook, " (dry run)" if run.dry_run else "")
            return run_summary(run)
        stored = await self.store.load(run.id)
        if stored is None:
            return None
        if stored[0].status is RunStatus.QUEUED:
            await self.store.enqueue(run.id, reason="redelivered while still queued")  # duplicates are harmless
        return run_summary(stored[0])

    async def _join_active(self, run: Run) -> dict[str, Any] | None:
        """At most one active run per playbook per incident: when another delivery of this incident (under another
        delivery id) already started one, this delivery joins it, and the run that answers is that one."""
        incident = _incident_key(run)
        if incident is None:
            return None
        holder = await self.store.claim_active(incident, run.playbook, run.id)
        if holder == run.id:
            return None
        stored = await self.store.load(holder)
        if stored is None:  # being created by the delivery that claimed the place a moment ago
            return {"id": holder, "playbook": run.playbook, "status": RunStatus.QUEUED.value, "dryRun": run.dry_run,
                    "location": f"/api/runs/{holder}"}  # fmt: skip
        with _context_of(run):
            log.info("delivery joins run %s of %s, already active for this incident", holder, run.playbook)
        return run_summary(stored[0])

    async def _ended(self, run: Run) -> None:
        """A run reached its end: the incident may get a new run of this playbook."""
        incident = _incident_key(run)
        if incident is not None:
            await self.store.release_active(incident, run.playbook, run.id)

    async def get(self, run_id: str) -> Run | None:
        loaded = await self.store.load(run_id)
        return self.with_steps(loaded[0]) if loaded else None

    def with_steps(self, run: Run) -> Run:
        """The run with its steps: a run intake stored without them gets them planned (deterministically, from its
        playbook and incident), as the worker that picks it up will plan and save them."""
        playbook = self.playbooks.get(run.playbook)
        if not run.steps and run.status is RunStatus.QUEUED and playbook is not None:
            run.steps = plan_steps(playbook, run.incident)
        return run

    # --- the worker -----------------------------------------------------------------------------------------------

    async def process(self, run_id: str, reason: str = "") -> None:
        with telemetry.log_context(run_id=run_id):
            loaded = await self.store.load(run_id)
            if loaded is None:
                log.warning("queue message for unknown run %s ignored", run_id)
                return
        run, etag = loaded
        if reason == WATCHDOG and run.lease is None and not _due(run, self.clock()):
            return  # the invocation it watched ended properly, and queued whatever comes next
        run = self.with_steps(run)  # saved with the claim
        with telemetry.run_scope(
            run.id, incident_id=_incident_id(run), playbook=run.playbook, dry_run=run.dry_run
        ) as scope:
            await self._process(run, etag, reason)
            scope.finished(run.status.value, run.reason, failed=run.status is RunStatus.FAILED)

    async def _claim(self, run: Run, etag: str, reason: str) -> tuple[str, str] | None:
        """Takes the run's lease for this invocation: (owner, etag), or None when another worker holds it."""
        now = self.clock()
        if run.lease and run.lease.until > now:
            # What this message came to do (a decision, a continuation) is done once that lease ends; a watchdog
            # looks again then, should the holder have died.
            again = WATCHDOG if reason == WATCHDOG else "lease held by another worker"
            await self.store.enqueue(run.id, run.lease.until - now + 0.5, again)
            return None
        if run.continuation_at is not None and now + 1 >= run.continuation_at:
            run.continuation_at = None  # this is (or supersedes) the scheduled continuation
        # The lease belongs to this invocation, not to the process: two messages for one run can arrive in the same
        # worker (a redelivery beside a continuation), and only one of them may advance it.
        owner = f"{WORKER_ID}:{uuid.uuid4().hex[:8]}"
        run.lease = Lease(owner=owner, until=now + self.settings.run_lease_seconds)
        if run.status in (RunStatus.QUEUED, RunStatus.WAITING) and not run.rollback_requested:
            run.status, run.resume_at = RunStatus.RUNNING, None  # saved with the claim: the runner need not save it
        # If this worker dies, its queue message stays invisible for 10 minutes (the Functions runtime's hold on a
        # message it is running); the watchdog brings the run back as soon as the lease has run out. Queued before
        # the lease is taken, so no moment holds a lease without one.
        await self._watch(run.id)
        try:
            etag = await self.store.save(run, etag)
        except LostLease:
            return None  # another worker claimed it first
        return owner, etag

    async def _watch(self, run_id: str, after_s: float = 0.0) -> None:
        """A watchdog for a message queued `after_s` from now: should the host that takes that message die before it
        takes the lease, the message stays invisible for 10 minutes, and the watchdog brings the run back instead."""
        await self.store.enqueue(run_id, after_s + self.settings.run_lease_seconds + 0.5, WATCHDOG)

    async def _process(self, run: Run, etag: str, reason: str) -> None:
        if not run.status.active and not run.rollback_requested:
            return
        claimed = await self._claim(run, etag, reason)
        if claimed is None:
            return
        owner, etag = claimed
        state = {"etag": etag}
        saving = asyncio.Lock()

        async def checkpoint(current: Run) -> None:
            async with saving:
                if current.lease is not None:
                    # Every checkpoint renews the lease, and so does the heartbeat between checkpoints.
                    current.lease.until = self.clock() + self.settings.run_lease_seconds
                state["etag"] = await self.store.save(current, state["etag"])

        playbook = self.playbooks.get(run.playbook)
        if playbook is None:
            run.status, run.reason = RunStatus.FAILED, f"playbook {run.playbook} no longer exists"
            run.lease = None
            await checkpoint(run)
            await self._ended(run)
            return
        runner = Runner(
            playbook,
            self.ports(run),
            checkpoint,
            self.clock,
            self.settings.console_url or "",
            save_at_end=False,  # _finish_invocation saves the run once
        )
        log.info("run %s %s", run.id, "rolling back" if run.rollback_requested else f"advancing ({run.status.value})")
        try:
            run = await self._advance_leased(runner, run, checkpoint)
        except Exception as raised:
            if _find(raised, LostLease) is not None or _find(raised, LeaseLapsing) is not None:
                # Someone changed the run under us (another worker after our lease ran out), or the lease could not
                # be renewed: this invocation stops, hands its lease back if it still holds it, and queues the run.
                log.info("run %s: this worker no longer holds it safely; handing it back", run.id)
                await self._hand_back(run.id, owner)
                return
            exc = _find(raised, Exception) or raised
            log.exception("run %s: the worker failed; the queue message will be retried", run.id)
            run.last_error = f"{type(exc).__name__}: {exc}"
            run.lease = None
            try:
                await checkpoint(run)
            except LostLease:
                pass
            raise  # the runtime retries the message, then moves it to the poison queue
        await self._finish_invocation(run, checkpoint)

    async def _schedule_continuation(self, run: Run) -> None:
        """Queues the message that wakes a waiting run, unless one is already due for that moment. A queue message
        waits at most 7 days, so a longer wait (an approval timeout of 10d) is bridged by a message at the cap that,
        on arrival, schedules the next."""
        assert run.resume_at is not None
        now = self.clock()
        wake_at = min(run.resume_at, now + MAX_VISIBILITY_S)
        if run.continuation_at == run.resume_at or (wake_at < run.resume_at and run.continuation_at is not None):
            return  # the due message is queued (a bridging one, for a wait past the cap)
        await self.store.enqueue(run.id, max(0.0, wake_at - now), "continuation")
        await self._watch(run.id, max(0.0, wake_at - now))
        run.continuation_at = wake_at

    async def _finish_invocation(self, run: Run, checkpoint: Callable[[Run], Awaitable[None]]) -> None:
        run.lease = None
        if run.status is RunStatus.WAITING and run.resume_at is not None:
            await self._schedule_continuation(run)
        await checkpoint(run)
        if run.status.active:
            log.info("run %s is %s; continues in %.0f s", run.id, run.status.value, _wait(run, self.clock()))
        else:
            await self._ended(run)
            level = logging.WARNING if run.status is RunStatus.FAILED else logging.INFO
            log.log(level, "run %s %s%s", run.id, run.status.value, f": {run.reason}" if run.reason else "")

    async def _advance_leased(self, runner: Runner, run: Run, checkpoint: Callable[[Run], Awaitable[None]]) -> Run:
        """Advances the run while a heartbeat renews its lease every third of the lease, and looks for a rollback
        request. The bound on every action: nothing this invocation runs outlives its lease. If the lease cannot be
        renewed, the work is cancelled a sixth of the lease before it lapses (LeaseLapsing), so another worker that
        takes the run over never acts beside this one."""
        lease_s = self.settings.run_lease_seconds
        loop = asyncio.get_running_loop()

        def fence_at() -> float:  # the lease's end on the event loop's clock, less the margin
            assert run.lease is not None
            return loop.time() + (run.lease.until - self.clock()) - lease_s / 6

        async def heartbeat() -> None:
            while True:
                await asyncio.sleep(lease_s / 3)
                if not run.rollback_requested:
                    request = await self.store.rollback_request(run.id)
                    if request is not None and rollback_pending(run, request):
                        # the runner starts no new step, and undoes once the current ones end
                        run.rollback_requested, run.reason = True, f"rollback requested by {request.get('by', '')}"
                try:
                    await checkpoint(run)
                except LostLease:
                    raise
                except Exception as exc:  # storage unavailable: try again, until the fence stops the work
                    log.warning("run %s: could not renew the lease: %s", run.id, exc)
                    continue
                fence.reschedule(fence_at())

        try:
            async with asyncio.timeout_at(fence_at()) as fence, asyncio.TaskGroup() as group:
                beat = group.create_task(heartbeat())
                advancing = group.create_task(runner.advance(run))
                advancing.add_done_callback(lambda _: beat.cancel())
        except TimeoutError as exc:
            raise LeaseLapsing(run.id) from exc
        return advancing.result()

    def _action_context(self, run: Run) -> ActionContext:
        ctx = ActionContext(
            settings=self.settings,
            azure=RunClients(azure_clients(self.settings)),  # a read cache for this run invocation only
            ledger=self.store.ledger(run.id),
            budget=self.store.destructive_budget(self.settings.destructive_actions_per_hour),
            run_id=run.id,
            incident_id=run.incident_arm_id,
            dry_run=run.dry_run,
        )
        if run.dry_run:  # a dry run says, for every action, whether the identity holds what it needs
            ctx.permissions = IdentityPermissions(ctx.azure)
        return ctx

    async def _hand_back(self, run_id: str, owner: str) -> None:
        for _ in range(5):
            loaded = await self.store.load(run_id)
            if loaded is None:
                return
            run, etag = loaded
            if run.lease is not None and run.lease.owner == owner:
                run.lease = None
                try:
                    await self.store.save(run, etag)
                except LostLease:
                    continue
            break
        await self.store.enqueue(run_id, reason="continue after a concurrent change")

    async def poisoned(self, run_id: str) -> None:
        """The run's message failed too often: mark the run failed with the reason and tell the incident."""
        loaded = await self.store.load(run_id)
        if loaded is None:
            return
        run, etag = loaded
        if not run.status.active:
            return
        with telemetry.run_scope(run.id, incident_id=_incident_id(run), playbook=run.playbook, dry_run=run.dry_run):
            await self._poisoned(run, etag)

    async def _poisoned(self, run: Run, etag: str) -> None:
        reason = run.last_error or "its queue message failed repeatedly"
        run.status, run.reason, run.lease = RunStatus.FAILED, f"gave up: {reason}", None
        run.finished_at = self.clock()
        await self.store.save(run, etag)
        await self._ended(run)
        log.error("run %s failed: its queue message reached the poison queue (%s)", run.id, reason)
        message = (
            f"Riposte run {run.id} ({run.playbook}) failed and was stopped: {reason}. "
            "Actions it completed are listed in the run; roll back with POST /api/runs/{id}/rollback."
        )
        # Said even for a dry run: the analyst who asked for it learns that it stopped.
        port = self.ports(run.model_copy(update={"dry_run": False}) if run.dry_run else run)
        await port.write_back(IncidentNote(text=message), f"{run.id}:poisoned")

    # --- analysts -------------------------------------------------------------------------------------------------

    async def sentinel_incident(self, *, arm_id: str | None, number: int | None, workspace: str | None) -> Any:
        """The incident, its entities and alerts as Sentinel has them now, named by ARM id or by number in a
        workspace (RIPOSTE_SENTINEL_WORKSPACE unless given): the payload a manual run on it starts from."""
        from shared.azure.errors import AzureError, NotFound
        from shared.azure.sentinel import InvalidIncidentId

        sentinel = azure_clients(self.settings).sentinel
        try:
            if arm_id is None:
                workspace = workspace or self.settings.sentinel_workspace
                if not workspace:
                    raise ServiceError(
                        400, "MissingField", "Name the workspace, or set RIPOSTE_SENTINEL_WORKSPACE.", "workspace"
                    )
                arm_id = await sentinel.find_incident(workspace, number or 0)
                if arm_id is None:
                    raise ServiceError(
                        404, "IncidentNotFound", f"No incident {number} in {workspace}.", "incidentNumber"
                    )
            return await sentinel.incident_bundle(arm_id)
        except InvalidIncidentId as error:
            raise ServiceError(
                400, "InvalidValue", str(error), "incidentId" if number is None else "workspace"
            ) from None
        except NotFound:
            raise ServiceError(404, "IncidentNotFound", "Sentinel has no such incident.", "incidentId") from None
        except AzureError as error:
            raise ServiceError(502, "SentinelUnavailable", f"Sentinel did not answer: {error}", "incidentId") from None

    @property
    def approver_groups(self) -> ApproverGroups:
        if self._approver_groups is None:

            async def lookup(object_id: str) -> set[str]:
                graph: GraphAdapter = azure_clients(self.settings).graph
                return await graph.transitive_group_ids(object_id)

            self._approver_groups = ApproverGroups(lookup, self.settings.approver_group_cache_seconds)
        return self._approver_groups

    async def decide(
        self,
        run_id: str,
        decision: str,
        by: str,
        *,
        by_id: str = "",
        step: str | None = None,
        comment: str = "",
    ) -> Run:
        """Records `by`'s decision on a waiting step. `by_id` is the decider's Entra object id from the validated
        token: the quorum counts those, and separation of duties and approver groups are checked on it."""
        loaded = await self.store.load(run_id)
        if loaded is None:
            raise ServiceError(404, "RunNotFound", f"No run {run_id}.", "id")
        run, _ = loaded
        waiting = [s for s in run.steps if s.status is StepStatus.AWAITING_APPROVAL and (step in (None, s.id))]
        if not waiting:
            raise ServiceError(409, "NothingAwaitsApproval", "No step of this run is waiting for approval.", "step")
        target = waiting[0]
        assert target.approval is not None
        await self._may_decide(run, target.approval, decision, by_id)
        recorded = Decision(by=by, decision=decision, comment=comment, at=self.clock(), object_id=by_id.lower())
        if not await self.store.add_decision(run.id, target.id, recorded):
            raise ServiceError(409, "AlreadyDecided", f"{by} already decided on step {target.id}.", "step")
        target.approval.decisions.append(recorded)
        await self.store.enqueue(run.id, reason=f"{decision} by {by}")
        await self._watch(run.id)
        with _context_of(run):
            log.info("run %s: %s by %s on %s", run.id, decision, by, target.id)
        return run

    async def _may_decide(self, run: Run, approval: ApprovalState, decision: str, by_id: str) -> None:
        try:
            check_separation(run, decision, by_id)
            await self.approver_groups.check(approval, by_id)
        except ApprovalRefused as refused:
            with _context_of(run):
                log.warning("run %s: %s refused (%s)", run.id, decision, refused.code)
            raise ServiceError(403, refused.code, refused.message, "step") from None
        except AzureError as error:
            log.error("approver group check failed: %s", error)
            raise ServiceError(
                503,
                "ApproverCheckUnavailable",
                "Approver group membership cannot be read from Microsoft Graph; try again shortly.",
                "step",
            ) from None

    async def request_rollback(self, run_id: str, by: str, by_id: str = "") -> Run:
        """Records the request beside the run and queues it. A worker acting on the run meanwhile keeps its lease: it
        finishes (and records) the step it is in, starts nothing new, and undoes; otherwise the queued message does."""
        loaded = await self.store.load(run_id)
        if loaded is None:
            raise ServiceError(404, "RunNotFound", f"No run {run_id}.", "id")
        run, _ = loaded
        if run.dry_run:
            raise ServiceError(409, "DryRun", "A dry run changed nothing; there is nothing to roll back.", "id")
        if run.status is RunStatus.ROLLED_BACK or run.rollback_requested:
            return run  # done or already asked for: idempotent
        await self.store.request_rollback(run.id, by, by_id.lower())
        run.rollback_requested, run.status, run.reason = True, RunStatus.ROLLING_BACK, f"rollback requested by {by}"
        run.rollback_requested_by_id = run.rollback_requested_by_id or by_id.lower()
        await self.store.enqueue(run.id, reason=f"rollback by {by}")
        await self._watch(run.id)
        with _context_of(run):
            log.info("run %s: rollback requested by %s", run.id, by)
        return run


def _incident_id(run: Run) -> str | None:
    """The Sentinel incident's ARM id, else the id the payload gave (a Defender alert's, a manual run's)."""
    return run.incident_arm_id or run.incident.get("armId") or run.incident.get("name")


def _incident_key(run: Run) -> str | None:
    """What identifies the incident a run is for, whatever delivered it: the Sentinel incident's (or Defender alert's)
    ARM id, else the payload's own id. A dry run never stands in for a real one."""
    found = _incident_id(run)
    if not found:
        return None
    return f"{str(found).lower()}|{'dry-run' if run.dry_run else 'live'}"


def _due(run: Run, now: float) -> bool:
    """Whether a run no invocation holds has work waiting: a watchdog then acts on it, since the message that was to
    bring it (the first one, a decision, a continuation, a rollback) may be held by a host that died before leasing
    the run. A decision short of its quorum makes one needless pass; the lease and the ledger keep it harmless."""
    if run.status is RunStatus.QUEUED or run.rollback_requested:
        return True
    if run.status is not RunStatus.WAITING:
        return False
    if run.resume_at is not None and run.resume_at <= now + 1:
        return True
    return any(s.status is StepStatus.AWAITING_APPROVAL and s.approval and s.approval.decisions for s in run.steps)


def _context_of(run: Run) -> Any:
    return telemetry.log_context(run_id=run.id, incident_id=_incident_id(run), playbook=run.playbook)


def _wait(run: Run, now: float) -> float:
    return max(0.0, (run.resume_at or now) - now)
