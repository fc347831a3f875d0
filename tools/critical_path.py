"""A playbook's critical path in call rounds: the calls a run must make one after another, from the playbook's
dependency graph and each action's necessary calls, never from the timings of the run being judged.

`CALLS` declares, for each action the benches run, the rounds of calls it must make: each round is a set of calls
that can go together (`read:<object>`, `write:<object>`, or `reread:<object>`, a read that always counts; the object
relative to the step's entity). A read is free
when a step the step waits for (transitively), or an earlier round of the same step, already read or wrote that
object: the run's read cache holds it. The write-back is the comment and the incident update, concurrent. A step's
weight is its rounds left; the critical path is the heaviest dependency chain."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

Rounds = tuple[tuple[str, ...], ...]

CALLS: dict[str, Rounds] = {
    "entra.get_user": (("read:user", "read:memberships"),),
    "identity.get_risky_user": (("read:riskyUser",),),
    "identity.list_risk_detections": (("read:detections",),),
    "loganalytics.get_signin_summary": (("read:signins",),),
    "loganalytics.lookup_watchlist": (("read:watchlist",),),
    "entra.disable_user": (("read:user", "read:memberships"), ("write:user",)),
    "entra.revoke_sessions": (("read:user", "read:memberships"), ("write:user",)),
    "identity.confirm_compromised": (("read:user", "read:memberships", "read:riskyUser"), ("write:riskyUser",)),
    "entra.require_password_change": (("read:user", "read:memberships"), ("write:user",)),
    # Graph replaces the whole list, so the apply reads it again under the write lock: a read that always counts
    "entra.block_ip_in_named_location": (("read:namedLocation",), ("reread:namedLocation",), ("write:namedLocation",)),
    "sentinel.add_comment": (("read:incident", "read:comment"), ("write:comment",)),
    "sentinel.update_incident": (("read:incident",), ("write:incident",)),
}
WRITEBACK_ACTIONS = ("sentinel.add_comment", "sentinel.update_incident")


def _object(call: str) -> str:
    return call.split(":", 1)[1]


def step_rounds(uses: str, known: set[str]) -> tuple[int, set[str]]:
    """The rounds a step of `uses` must make when `known` objects are already held; and the objects it leaves known."""
    actions = WRITEBACK_ACTIONS if uses == "writeback" else (uses,)
    longest = 0
    after = set(known)
    for action in actions:
        if action not in CALLS:
            raise KeyError(f"no declared calls for {action}: add it to tools/critical_path.py CALLS")
        held = set(known)
        rounds = 0
        for calls in CALLS[action]:
            if any(c.startswith(("write:", "reread:")) or _object(c) not in held for c in calls):
                rounds += 1
            held.update(_object(c) for c in calls)
        longest = max(longest, rounds)
        after |= held
    return longest, after


def critical_path(steps: Sequence[Mapping[str, Any]]) -> tuple[int, list[str], dict[str, int]]:
    """(rounds on the heaviest chain, that chain's step ids, each step's rounds) for planned steps ({id, uses,
    needs}, as the planner or GET /api/runs gives them). An entity's objects are told apart by the step id's index."""
    by_id = {str(s["id"]): s for s in steps}
    ancestors: dict[str, set[str]] = {}

    def all_needs(step_id: str) -> set[str]:
        if step_id not in ancestors:
            found: set[str] = set()
            for need in by_id[step_id]["needs"]:
                found |= {need} | all_needs(need)
            ancestors[step_id] = found
        return ancestors[step_id]

    def entity(step_id: str) -> str:
        return step_id.rsplit(".", 1)[1] if "." in step_id else "*"

    weights: dict[str, int] = {}
    leaves: dict[str, set[str]] = {}
    for step_id in _topological(by_id):
        known: set[str] = set()
        for before in all_needs(step_id):
            known |= {o for o in leaves[before] if entity(before) in (entity(step_id), "*") or entity(step_id) == "*"}
        weights[step_id], leaves[step_id] = step_rounds(str(by_id[step_id]["uses"]), known)
    best: dict[str, tuple[int, list[str]]] = {}
    for step_id in _topological(by_id):
        rounds, chain = 0, list[str]()
        for need in by_id[step_id]["needs"]:
            if best[need][0] > rounds:
                rounds, chain = best[need]
        best[step_id] = (rounds + weights[step_id], [*chain, step_id])
    total, chain = max(best.values(), key=lambda item: item[0])
    return total, chain, weights


def _topological(by_id: Mapping[str, Mapping[str, Any]]) -> Iterable[str]:
    done: list[str] = []
    seen: set[str] = set()

    def visit(step_id: str) -> None:
        if step_id in seen:
            return
        seen.add(step_id)
        for need in by_id[step_id]["needs"]:
            visit(need)
        done.append(step_id)

    for step_id in by_id:
        visit(step_id)
    return done


def observed_rounds(intervals: Sequence[tuple[float, float]]) -> int:
    """The longest chain of calls each starting after the previous one ended: the sequential rounds a run made."""
    ordered = sorted(intervals, key=lambda i: i[1])
    depth: list[tuple[float, int]] = []  # (end, chain length ending there), by end
    best = 0
    for start, end in ordered:
        before = max((n for e, n in depth if e <= start), default=0)
        depth.append((end, before + 1))
        best = max(best, before + 1)
    return best


def uncovered_s(intervals: Sequence[tuple[float, float]], start: float, end: float) -> float:
    """Time between start and end when no call was in flight: CPU, storage checkpoints, queues."""
    covered = 0.0
    cursor = start
    for begin, finish in sorted(intervals):
        begin, finish = max(begin, cursor), min(finish, end)
        if finish > begin:
            covered += finish - begin
            cursor = finish
    return max(0.0, (end - start) - covered)
