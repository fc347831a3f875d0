"""A run and its steps, as stored (one JSON document per run, checkpointed after every step)."""

from __future__ import annotations

from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel


class _Model(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, validate_by_name=True, validate_assignment=False)


class RunStatus(StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    WAITING = "waiting"  # for an approval or a poll (packet capture); a continuation message is scheduled
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    ROLLING_BACK = "rolling_back"
    ROLLED_BACK = "rolled_back"

    @property
    def active(self) -> bool:
        return self in (RunStatus.QUEUED, RunStatus.RUNNING, RunStatus.WAITING, RunStatus.ROLLING_BACK)


class StepStatus(StrEnum):
    PENDING = "pending"
    AWAITING_APPROVAL = "awaiting_approval"
    APPROVED = "approved"  # approved, not yet executed
    POLLING = "polling"  # the action ran; its wait_until is being polled
    DONE = "done"
    SKIPPED = "skipped"
    FAILED = "failed"

    @property
    def finished(self) -> bool:
        return self in (StepStatus.DONE, StepStatus.SKIPPED, StepStatus.FAILED)


class Decision(_Model):
    by: str  # who, as recorded: "name (object id)"
    decision: str  # approve | reject
    comment: str = ""
    at: float
    object_id: str = ""  # the decider's Entra object id, from the validated token; "" for the function key alone

    @property
    def decider(self) -> str:
        """Who decided, for counting: the object id (a name can differ between two tokens of one identity)."""
        return self.object_id.lower() or self.by.lower()


class ApprovalState(_Model):
    quorum: int = 1
    deadline: float
    on_timeout: str = "reject"
    decisions: list[Decision] = Field(default_factory=list)
    approver_groups: list[str] = Field(default_factory=list)  # who may decide; empty: any Riposte.Approve holder

    def approvers(self) -> set[str]:
        """The distinct identities that approved (the quorum counts these)."""
        return {d.decider for d in self.decisions if d.decision == "approve"}

    def approver_names(self) -> list[str]:
        names = {d.decider: d.by for d in self.decisions if d.decision == "approve"}
        return sorted(names.values())


class PollState(_Model):
    next_at: float
    deadline: float
    polls: int = 0
    last: dict[str, Any] = Field(default_factory=dict)


class StepState(_Model):
    id: str  # instance id: "<step>" or "<step>.<n>" for the n-th entity of its for_each kind
    step: str  # the playbook step id
    kind: str  # enrich | action | writeback
    uses: str
    entity: dict[str, Any] | None = None
    needs: list[str] = Field(default_factory=list)
    status: StepStatus = StepStatus.PENDING
    params: dict[str, Any] = Field(default_factory=dict)
    finding: dict[str, Any] | None = None
    outcome: dict[str, Any] | None = None
    undo: dict[str, Any] | None = None
    approval: ApprovalState | None = None
    # What an approver is shown: the action's dry-run preview (plan, guardrails, permission checks) taken when asked
    preview: dict[str, Any] | None = None
    poll: PollState | None = None
    reason: str = ""
    attempts: int = 0
    retries: int = 0  # transient failures retried so far
    not_before: float | None = None  # a retried step waits until then
    started_at: float | None = None
    ended_at: float | None = None


class Lease(_Model):
    owner: str
    until: float


class Run(_Model):
    id: str
    playbook: str
    playbook_version: int = 1
    status: RunStatus = RunStatus.QUEUED
    dry_run: bool = False
    incident: dict[str, Any]
    incident_arm_id: str | None = None
    delivery_key: str | None = None
    requested_by: str = ""
    requested_by_id: str = ""  # the requester's Entra object id: may not approve this run's steps
    rollback_requested_by_id: str = ""  # likewise whoever asked for the rollback
    created_at: float
    updated_at: float
    finished_at: float | None = None
    reason: str = ""
    steps: list[StepState] = Field(default_factory=list)
    lease: Lease | None = None
    rollback_requested: bool = False
    rollback_started_at: float | None = None  # a rollback requested before this is covered by the one that ran
    resume_at: float | None = None
    continuation_at: float | None = None  # the resume time a queued continuation message is already scheduled for
    last_error: str = ""  # the last exception a worker hit on this run; the poison handler reports it

    def step(self, instance_id: str) -> StepState:
        for step in self.steps:
            if step.id == instance_id:
                return step
        raise KeyError(instance_id)

    def public(self) -> dict[str, Any]:
        body = self.model_dump(mode="json", by_alias=True, exclude={"lease"})
        return body
