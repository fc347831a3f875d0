"""Who may decide a step that waits for approval: separation of duties and approver groups.

- Whoever started a run (the manual run's requester, the rollback's requester) may not approve its steps. Identities
  are compared by Entra object id, from the validated token, never by name or by anything in the request body.
- A playbook (or one gated step) can name Entra groups: only their members, nested membership included, may decide
  (approve or reject). Membership is read from Microsoft Graph (the user's transitiveMemberOf) and reused for
  RIPOSTE_APPROVER_GROUP_CACHE_SECONDS, so a burst of decisions costs one Graph call per approver.
- The quorum counts distinct object ids (shared/engine/model.py ApprovalState.approvers).

A refusal is a 403 whose error code says why: SelfApproval, NotInApproverGroup, or ApproverIdentityRequired when the
caller brought no identity to check (the function key alone, RIPOSTE_AUTH_MODE=function_key)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from shared.actions.model import Permission, graph_permission
from shared.engine.model import ApprovalState, Run

# What the approver group check needs of Microsoft Graph (reading a user's transitive group memberships).
GRAPH_PERMISSIONS: tuple[Permission, ...] = (
    graph_permission("User.Read.All"),
    graph_permission("GroupMember.Read.All"),
)
USED_BY = "approver groups (approvals)"  # how docs/permissions.md names this use of the permissions


class ApprovalRefused(Exception):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code, self.message = code, message


def initiators(run: Run) -> set[str]:
    """The object ids of whoever started the run or asked for its rollback."""
    return {i.lower() for i in (run.requested_by_id, run.rollback_requested_by_id) if i}


def check_separation(run: Run, decision: str, object_id: str) -> None:
    """ApprovalRefused when `object_id` started this run (or its rollback) and wants to approve one of its steps.
    Rejecting stays open to them: withdrawing one's own request never makes Riposte act."""
    if decision == "approve" and object_id and object_id.lower() in initiators(run):
        raise ApprovalRefused(
            "SelfApproval",
            "Separation of duties: the identity that started this run (or asked for its rollback) cannot approve its "
            "steps; another approver must.",
        )


GroupLookup = Callable[[str], Awaitable[set[str]]]


@dataclass
class ApproverGroups:
    """Each approver's transitive group ids, from `lookup` (Graph), cached for `ttl_s`. Failures are not cached."""

    lookup: GroupLookup
    ttl_s: float
    clock: Callable[[], float] = time.monotonic
    _cache: dict[str, tuple[float, frozenset[str]]] = field(default_factory=dict)
    _locks: dict[str, asyncio.Lock] = field(default_factory=dict)
    lookups: int = 0

    async def groups_of(self, object_id: str) -> frozenset[str]:
        key = object_id.lower()
        async with self._locks.setdefault(key, asyncio.Lock()):  # concurrent decisions by one approver: one call
            cached = self._cache.get(key)
            if cached is not None and self.clock() - cached[0] < self.ttl_s:
                return cached[1]
            self.lookups += 1
            groups = frozenset(g.lower() for g in await self.lookup(key))
            self._cache[key] = (self.clock(), groups)
            if len(self._cache) > 10_000:  # a bound, not a policy: approvers are a small population
                self._cache.pop(next(iter(self._cache)))
            return groups

    async def check(self, state: ApprovalState, object_id: str) -> None:
        """ApprovalRefused unless the step names no approver group or `object_id` is in one of them."""
        if not state.approver_groups:
            return
        wanted = ", ".join(state.approver_groups)
        if not object_id:
            raise ApprovalRefused(
                "ApproverIdentityRequired",
                f"Only members of the approver group {wanted} may decide this step, and the caller brought no Entra "
                "identity to check.",
            )
        if not {g.lower() for g in state.approver_groups} & await self.groups_of(object_id):
            raise ApprovalRefused(
                "NotInApproverGroup",
                f"Only members of the approver group {wanted} may decide this step; the caller is not one.",
            )
