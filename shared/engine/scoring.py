"""The risk score: a playbook's rules applied to its findings, every point naming the finding it came from.

Each rule reads one enrichment step; it is evaluated for every instance of that step that finished with a finding
(`finding` is the instance's data, `entity` its entity, `incident` the run's incident). A rule that holds adds its
points (negative points lower the score: a trusted network); one that does not hold, or cannot be evaluated (a
finding without the field), adds nothing. Pure: computed from the run whenever CEL or the write-back needs it."""

from __future__ import annotations

from typing import Any

from shared.engine.model import Run, StepState, StepStatus
from shared.playbook.conditions import ConditionError, is_true
from shared.playbook.model import Playbook


def _on(step: StepState) -> str:
    entity = step.entity or {}
    for key in ("friendlyName", "name", "address", "upn", "hostName", "id"):
        if entity.get(key):
            return str(entity[key])
    return ""


def score(playbook: Playbook, run: Run) -> dict[str, Any]:
    """{total, points: [{points, reason, finding (the step instance), on (its entity)}]}, in rule order."""
    points: list[dict[str, Any]] = []
    for rule in playbook.score:
        for step in run.steps:
            if step.kind != "enrich" or step.step != rule.finding or step.status is not StepStatus.DONE:
                continue
            variables = {
                "finding": (step.finding or {}).get("data", {}),
                "entity": step.entity or {},
                "incident": run.incident,
            }
            try:
                held = is_true(rule.when, variables)
            except ConditionError:
                held = False
            if held:
                points.append({"points": rule.points, "reason": rule.reason, "finding": step.id, "on": _on(step)})
    return {"total": sum(p["points"] for p in points), "points": points}
