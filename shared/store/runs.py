"""Runs, steps, ledger and dedup records in Azure Table storage; work items on an Azure Storage queue.

Layout (one partition per run, so a checkpoint is one atomic table transaction):
    RiposteRuns   PK=<run id>  RK="run"            the run without its steps, ETag-guarded
                               RK="step|<id>"      one entity per step
                               RK="ledger|<key>"   each action's intent, then its outcome
                               RK="control|rollback"  a rollback asked for and not yet done
                               RK="decision|<step>|<who>"  an analyst's decision
                  PK="index" RK=<inverted creation time>|<run id>  what listing shows, newest first
    RiposteDedup  PK=<sha256 of the delivery key>  the runs a delivery created
                  PK="active|<sha256 of incident|playbook>"  the one active run of a playbook for an incident
    RiposteBudget PK="destructive" RK=<hour>       destructive actions counted per hour
Large JSON is split across properties (a table property holds at most 64 KiB)."""

from __future__ import annotations

import hashlib
import json
import re
import time
from typing import Any

from shared.actions.model import Outcome, Plan
from shared.azure.errors import NotFound, PreconditionFailed
from shared.azure.storage import (
    BUDGET_TABLE,
    DEDUP_TABLE,
    ETAG,
    POISON_QUEUE,
    RUNS_TABLE,
    WORK_QUEUE,
    EntityExists,
    StorageConnection,
    TableStore,
    WorkQueue,
    managed_identity_credential,
)
from shared.engine.model import Decision, Run, RunStatus, StepState

ROLLBACK_ROW = "control|rollback"
INDEX_PARTITION = "index"
INDEX_EPOCH_MS = 10**15  # creation times in ms counted down from this sort newest first
_ACTIVE = {s.value for s in RunStatus if s.active}
_CHUNK = 30_000  # UTF-16 code units per property (60 KB), under the 64 KiB limit
_BAD_KEY_CHARS = re.compile(r"[/\\#?\x00-\x1f\x7f]")


class LostLease(Exception):
    """Someone else changed the run since we read it: stop, the other writer owns it now."""


def pack(document: Any) -> dict[str, Any]:
    text = json.dumps(document, separators=(",", ":"), ensure_ascii=False)
    parts = _utf16_parts(text) or [""]
    packed: dict[str, Any] = {f"doc{i}": part for i, part in enumerate(parts)}
    packed["parts"] = len(parts)
    return packed


def _utf16_parts(text: str) -> list[str]:
    """`text` in pieces of at most _CHUNK UTF-16 code units. The table limit counts UTF-16: a character past U+FFFF
    (an emoji) takes two units, so 30,000 of them in one piece would be 120 KB and refused."""
    parts = []
    start = 0
    while start < len(text):
        end = min(len(text), start + _CHUNK)
        units = len(text[start:end].encode("utf-16-le", "surrogatepass")) // 2
        if units > _CHUNK:
            end -= units - _CHUNK  # a character is at least one unit: dropping one per unit over is enough
        parts.append(text[start:end])
        start = end
    return parts


def unpack(entity: dict[str, Any]) -> Any:
    return json.loads("".join(entity[f"doc{i}"] for i in range(int(entity["parts"]))))


def row_key(text: str) -> str:
    return _BAD_KEY_CHARS.sub("_", text)[:1000]


class RunStore:
    def __init__(self, connection: StorageConnection | None = None, credential: Any = None) -> None:
        connection = connection or StorageConnection.from_env()
        self._credential = None
        if credential is None and connection.connection_string is None:
            # Identity-based storage (as deployed): without a credential every request would be refused.
            credential = self._credential = managed_identity_credential()
        self.runs = TableStore(connection, RUNS_TABLE, credential)
        self.dedup = TableStore(connection, DEDUP_TABLE, credential)
        self.budget_table = TableStore(connection, BUDGET_TABLE, credential)
        self.queue = WorkQueue(connection, WORK_QUEUE, credential)
        self.poison = WorkQueue(connection, POISON_QUEUE, credential)
        self._saved: dict[str, dict[str, str]] = {}
        self._indexed: dict[str, str] = {}  # run id -> the listing last written, while the run is active

    async def ensure(self) -> None:
        for table in (self.runs, self.dedup, self.budget_table):
            await table.ensure()
        await self.queue.ensure()
        await self.poison.ensure()

    async def close(self) -> None:
        for resource in (self.runs, self.dedup, self.budget_table):
            await resource.close()
        await self.queue.close()
        await self.poison.close()
        if self._credential is not None:
            await self._credential.close()

    # --- runs --------------------------------------------------------------------------------------------------

    @staticmethod
    def _header(run: Run) -> dict[str, Any]:
        body = run.model_dump(mode="json", by_alias=True, exclude={"steps"})
        return {
            "PartitionKey": run.id,
            "RowKey": "run",
            "Status": run.status.value,
            "Playbook": run.playbook,
            "CreatedAt": run.created_at,
            **pack(body),
        }

    @staticmethod
    def _step_entity(run_id: str, order: int, step: StepState) -> dict[str, Any]:
        return {
            "PartitionKey": run_id,
            "RowKey": row_key(f"step|{step.id}"),
            "Order": order,
            **pack(step.model_dump(mode="json", by_alias=True)),
        }

    async def create(self, run: Run) -> bool:
        """Creates the run, with its steps if it has any (intake leaves planning them to the worker); False when a
        run with that id already exists (a redelivery)."""
        steps = [self._step_entity(run.id, i, s) for i, s in enumerate(run.steps)]
        try:
            await self.runs.transaction(self._header(run), None, steps, create=True)
        except EntityExists:
            return False
        if run.steps:
            self._saved[run.id] = {s.id: json.dumps(s.model_dump(mode="json", by_alias=True)) for s in run.steps}
        await self._index(run)
        return True

    @staticmethod
    def _listed(run: Run) -> dict[str, Any]:
        return {
            "id": run.id,
            "playbook": run.playbook,
            "status": run.status.value,
            "dryRun": run.dry_run,
            "createdAt": run.created_at,
            "finishedAt": run.finished_at,
            "reason": run.reason[:2000],
            "incidentArmId": run.incident_arm_id,
            "title": run.incident.get("title"),
        }

    async def _index(self, run: Run) -> None:
        """The run's row in the listing index, newest first by key; rewritten only when what it shows changed."""
        listed = self._listed(run)
        text = json.dumps(listed, sort_keys=True)
        if self._indexed.get(run.id) == text:
            return
        inverted = INDEX_EPOCH_MS - int(run.created_at * 1000)
        entity = {"PartitionKey": INDEX_PARTITION, "RowKey": f"{inverted:015d}|{run.id}", "Status": run.status.value}
        await self.runs.replace({**entity, **pack(listed)}, None)
        if run.status.active:
            self._indexed[run.id] = text
        else:
            self._indexed.pop(run.id, None)

    async def load(self, run_id: str) -> tuple[Run, str] | None:
        header: dict[str, Any] | None = None
        decisions: list[dict[str, Any]] = []
        rollback: dict[str, Any] | None = None
        etag = ""
        steps: list[tuple[int, dict[str, Any]]] = []
        # Everything in the run's partition but the ledger ("decision|" < "ledger|" < "run" < "step|"): ledger entries
        # can hold whole comments and are read one by one, by the executor, when it needs them.
        query = "PartitionKey eq @pk and (RowKey lt 'ledger|' or RowKey ge 'run')"
        async for entity in self.runs.query(query, {"pk": run_id}):
            if entity["RowKey"] == "run":
                header = entity
            elif str(entity["RowKey"]).startswith("step|"):
                steps.append((int(entity["Order"]), unpack(entity)))
            elif str(entity["RowKey"]).startswith("decision|"):
                decisions.append(unpack(entity))
            elif entity["RowKey"] == ROLLBACK_ROW:
                rollback = unpack(entity)
        if header is None:
            return None
        etag = str(header[ETAG])
        body = unpack(header)
        body["steps"] = [s for _, s in sorted(steps, key=lambda item: item[0])]
        run = Run.model_validate(body)
        _merge_decisions(run, decisions)
        if rollback is not None and rollback_pending(run, rollback):
            run.rollback_requested = True
            run.status = RunStatus.ROLLING_BACK  # active again: GET answers 202 until the undo is done
            run.reason = f"rollback requested by {rollback.get('by', '')}"
        if rollback is not None:  # who asked may not approve what the run still does (shared/approvers.py)
            run.rollback_requested_by_id = run.rollback_requested_by_id or str(rollback.get("byId", ""))
        self._saved[run_id] = {s.id: json.dumps(s.model_dump(mode="json", by_alias=True)) for s in run.steps}
        return run, etag

    async def save(self, run: Run, etag: str) -> str:
        """Writes the header and every step changed since the last save, atomically, if nobody else wrote first."""
        saved = self._saved.setdefault(run.id, {})
        changed: list[dict[str, Any]] = []
        serialized: dict[str, str] = {}
        for order, step in enumerate(run.steps):
            text = json.dumps(step.model_dump(mode="json", by_alias=True))
            serialized[step.id] = text
            if saved.get(step.id) != text:
                changed.append(self._step_entity(run.id, order, step))
        try:
            new_etag = await self.runs.transaction(self._header(run), etag, changed)
        except PreconditionFailed as exc:
            raise LostLease(run.id) from exc
        if run.status.active:
            self._saved[run.id] = serialized
        else:
            self._saved.pop(run.id, None)  # a long-lived worker must not keep every finished run in memory
        await self._index(run)
        return new_etag

    async def add_decision(self, run_id: str, step_id: str, decision: Decision) -> bool:
        """Records an analyst's decision beside the run (not in it: the worker may be writing the run meanwhile).
        False when this identity (by object id) already decided on this step."""
        row = row_key(f"decision|{step_id}|{decision.decider}")
        document = {"step": step_id, **decision.model_dump(mode="json", by_alias=True)}
        try:
            await self.runs.create({"PartitionKey": run_id, "RowKey": row, **pack(document)})
        except EntityExists:
            return False
        return True

    async def request_rollback(self, run_id: str, by: str, by_id: str = "") -> None:
        """Records a rollback request beside the run (not in it, like a decision: a worker may be acting on the run
        meanwhile, and must finish its step and record it rather than lose its lease). It stays: a rollback that
        started after it (Run.rollback_started_at) has covered it."""
        document = {"by": by, "byId": by_id, "at": time.time()}
        await self.runs.replace({"PartitionKey": run_id, "RowKey": ROLLBACK_ROW, **pack(document)}, None)

    async def rollback_request(self, run_id: str) -> dict[str, Any] | None:
        """The latest rollback request for the run ({"by", "byId", "at"}), or None."""
        found = await self.runs.get(run_id, ROLLBACK_ROW)
        if found is None:
            return None
        request: dict[str, Any] = unpack(found[0])
        return request

    async def list_runs(self, limit: int = 50, status: str | None = None) -> list[dict[str, Any]]:
        """The newest runs first, read from the index partition in key order, at most `limit` (asked of the
        service, which stops there)."""
        query = "PartitionKey eq @pk" + (" and Status eq @status" if status else "")
        parameters = {"pk": INDEX_PARTITION} | ({"status": status} if status else {})
        found: list[dict[str, Any]] = []
        async for entity in self.runs.query(query, parameters, page_size=limit):
            found.append(unpack(entity))
            if len(found) >= limit:
                break
        return found

    # --- one active run per playbook per incident --------------------------------------------------------------------

    def _active_partition(self, incident: str, playbook: str) -> str:
        return "active|" + self._dedup_partition(f"{incident}|{playbook}")

    async def claim_active(self, incident: str, playbook: str, run_id: str) -> str:
        """Makes `run_id` the active run of `playbook` for `incident`, unless another run holds that place: returns
        the run that holds it. Insert-if-absent, so of two intakes racing only one creates a run. A place whose run
        has ended (its release was lost), or whose run was never created within a minute, is taken over (ETag)."""
        partition = self._active_partition(incident, playbook)
        entity = {"PartitionKey": partition, "RowKey": "active", "RunId": run_id, "ClaimedAt": time.time()}
        for _ in range(10):
            try:
                await self.dedup.create(entity)
                return run_id
            except EntityExists:
                pass
            found = await self.dedup.get(partition, "active")
            if found is None:
                continue
            holder = str(found[0]["RunId"])
            if holder == run_id:
                return run_id
            header = await self.runs.get(holder, "run")
            if header is not None and str(header[0].get("Status")) in _ACTIVE:
                return holder
            if header is None and time.time() - float(found[0].get("ClaimedAt", 0)) < 60:
                return holder  # being created by the intake that claimed it
            try:
                await self.dedup.replace(entity, found[1])
                return run_id
            except (PreconditionFailed, NotFound):  # taken over, or released, since we read it: look again
                continue
        raise PreconditionFailed("storage", 412, "UpdateConditionNotSatisfied", partition)

    async def release_active(self, incident: str, playbook: str, run_id: str) -> None:
        """The run has ended: the incident may get a new run of this playbook."""
        partition = self._active_partition(incident, playbook)
        found = await self.dedup.get(partition, "active")
        if found is None or str(found[0]["RunId"]) != run_id:
            return
        try:
            await self.dedup.delete(partition, "active", found[1])
        except PreconditionFailed:
            pass  # already taken over by a newer run

    # --- work queue -----------------------------------------------------------------------------------------------

    async def enqueue(self, run_id: str, delay_s: float = 0, reason: str = "") -> None:
        await self.queue.send(json.dumps({"runId": run_id, "reason": reason}), delay_s)

    # --- dedup ------------------------------------------------------------------------------------------------------

    @staticmethod
    def _dedup_partition(key: str) -> str:
        return hashlib.sha256(key.encode()).hexdigest()[:48]

    async def claim_delivery(self, key: str, runs: list[dict[str, str]]) -> tuple[bool, list[dict[str, str]]]:
        """Records the runs a delivery creates. (True, runs) for a first delivery; (False, the first delivery's runs)
        for a redelivery."""
        entity = {
            "PartitionKey": self._dedup_partition(key),
            "RowKey": "delivery",
            "Key": key[:1000],
            "CreatedAt": time.time(),
            **pack(runs),
        }
        try:
            await self.dedup.create(entity)
        except EntityExists:
            found = await self.dedup.get(entity["PartitionKey"], "delivery")
            assert found is not None
            existing: list[dict[str, str]] = unpack(found[0])
            return False, existing
        return True, runs

    async def delivery(self, key: str) -> list[dict[str, str]] | None:
        found = await self.dedup.get(self._dedup_partition(key), "delivery")
        if found is None:
            return None
        runs: list[dict[str, str]] = unpack(found[0])
        return runs

    # --- ledger and budget -------------------------------------------------------------------------------------------

    def ledger(self, run_id: str) -> TableLedger:
        return TableLedger(self.runs, run_id)

    def destructive_budget(self, limit: int) -> TableBudget:
        return TableBudget(self.budget_table, limit)


def rollback_pending(run: Run, request: dict[str, Any]) -> bool:
    """Whether a rollback request still waits for a rollback: none has started since it was made."""
    if run.rollback_requested:
        return False  # already known
    return run.rollback_started_at is None or float(request.get("at", 0)) > run.rollback_started_at


def _merge_decisions(run: Run, decisions: list[dict[str, Any]]) -> None:
    for document in sorted(decisions, key=lambda d: float(d.get("at", 0))):
        try:
            step = run.step(str(document["step"]))
        except KeyError:
            continue
        if step.approval is None:
            continue
        decision = Decision.model_validate(document)
        if all(d.decider != decision.decider for d in step.approval.decisions):
            step.approval.decisions.append(decision)


class TableLedger:
    """shared.actions.context.Ledger on the run's partition: intent before the write, outcome after."""

    def __init__(self, table: TableStore, run_id: str) -> None:
        self.table = table
        self.run_id = run_id

    def _row(self, key: str) -> str:
        return row_key(f"ledger|{key}")

    async def get(self, key: str) -> dict[str, Any] | None:
        found = await self.table.get(self.run_id, self._row(key))
        if found is None:
            return None
        entry: dict[str, Any] = unpack(found[0])
        entry["etag"] = str(found[1])
        return entry

    async def put_intent(
        self, key: str, action: str, plan: Plan, *, params: dict[str, Any], previous: dict[str, Any] | None
    ) -> bool:
        """Insert-if-absent for a first attempt, replace-if-unchanged (ETag) for a retry: False when another
        attempt wrote first."""
        document = {
            "action": action,
            "state": "intent",
            "plan": plan.model_dump(mode="json", by_alias=True),
            "params": params,
            "at": time.time(),
        }
        entity = {"PartitionKey": self.run_id, "RowKey": self._row(key), **pack(document)}
        try:
            if previous is None:
                await self.table.create(entity)
            else:
                await self.table.replace(entity, str(previous["etag"]))
        except (EntityExists, PreconditionFailed):
            return False
        return True

    async def put_outcome(self, key: str, outcome: Outcome) -> None:
        existing = await self.get(key) or {"action": outcome.action}
        existing.pop("etag", None)
        existing.update(state="done", outcome=outcome.model_dump(mode="json", by_alias=True), doneAt=time.time())
        await self.table.replace({"PartitionKey": self.run_id, "RowKey": self._row(key), **pack(existing)}, None)


class TableBudget:
    """At most `limit` destructive actions per clock hour, counted across every worker (ETag-guarded counter)."""

    def __init__(self, table: TableStore, limit: int) -> None:
        self.table = table
        self.limit = limit

    async def try_consume(self, action: str) -> bool:
        hour = time.strftime("%Y%m%d%H", time.gmtime())
        for _ in range(20):
            found = await self.table.get("destructive", hour)
            if found is None:
                try:
                    await self.table.create({"PartitionKey": "destructive", "RowKey": hour, "Count": 1})
                    return self.limit >= 1
                except EntityExists:
                    continue
            entity, etag = found
            if int(entity["Count"]) >= self.limit:
                return False
            try:
                await self.table.replace(
                    {"PartitionKey": "destructive", "RowKey": hour, "Count": int(entity["Count"]) + 1}, etag
                )
                return True
            except PreconditionFailed:
                continue
        return False
