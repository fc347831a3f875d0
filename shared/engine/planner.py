"""Expands a playbook over an incident into concrete steps with deterministic ids and dependencies."""

from __future__ import annotations

from typing import Any

from shared.engine.model import StepState
from shared.playbook.matching import entities_of
from shared.playbook.model import Playbook

WRITEBACK = "writeback"


def _instances(step_id: str, for_each: str | None, incident: dict[str, Any]) -> list[tuple[str, dict[str, Any] | None]]:
    if for_each is None:
        return [(step_id, None)]
    return [(f"{step_id}.{n}", entity) for n, entity in enumerate(entities_of(incident, for_each))]


def plan_steps(playbook: Playbook, incident: dict[str, Any]) -> list[StepState]:
    """Every step instance. An instance that needs a step with the same for_each waits for the instance of the same
    entity; otherwise it waits for all of that step's instances. Actions wait for every enrichment (their
    conditions read the findings); the write-back waits for everything."""
    kinds = {s.id: s.for_each for s in (*playbook.enrich, *playbook.actions)}
    instances: dict[str, list[tuple[str, dict[str, Any] | None]]] = {
        s.id: _instances(s.id, s.for_each, incident) for s in (*playbook.enrich, *playbook.actions)
    }

    def needed(for_each: str | None, index: int | None, needs: tuple[str, ...]) -> list[str]:
        ids: list[str] = []
        for need in needs:
            if for_each is not None and index is not None and kinds[need] == for_each:
                ids.append(f"{need}.{index}")  # the same entity's instance
            else:
                ids.extend(instance_id for instance_id, _ in instances[need])
        return list(dict.fromkeys(ids))

    steps: list[StepState] = []
    enrichment_ids: list[str] = []
    for step in playbook.enrich:
        for n, (instance_id, entity) in enumerate(instances[step.id]):
            index = n if step.for_each else None
            steps.append(
                StepState(
                    id=instance_id,
                    step=step.id,
                    kind="enrich",
                    uses=step.uses,
                    entity=entity,
                    needs=needed(step.for_each, index, step.needs),
                )
            )
            enrichment_ids.append(instance_id)
    action_ids: list[str] = []
    for action in playbook.actions:
        for n, (instance_id, entity) in enumerate(instances[action.id]):
            index = n if action.for_each else None
            own = needed(action.for_each, index, action.needs)
            steps.append(
                StepState(
                    id=instance_id,
                    step=action.id,
                    kind="action",
                    uses=action.uses,
                    entity=entity,
                    needs=list(dict.fromkeys([*enrichment_ids, *own])),
                )
            )
            action_ids.append(instance_id)
    steps.append(
        StepState(
            id=WRITEBACK,
            step=WRITEBACK,
            kind="writeback",
            uses=WRITEBACK,  # the action port chooses the actions, from the incident's source
            needs=[*enrichment_ids, *action_ids],
        )
    )
    return steps
