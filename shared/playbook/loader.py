"""Loads playbooks/*.yaml and checks them against the schema, the action registry and CEL."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from shared.playbook.conditions import ConditionError, compile_expression
from shared.playbook.model import ActionStep, Playbook

PLAYBOOKS_DIR = Path(__file__).resolve().parents[2] / "playbooks"


@dataclass(frozen=True)
class PlaybookProblem:
    file: str
    where: str
    message: str

    def __str__(self) -> str:
        return f"{self.file}: {self.where}: {self.message}" if self.where else f"{self.file}: {self.message}"


class PlaybookError(ValueError):
    def __init__(self, problems: list[PlaybookProblem]) -> None:
        super().__init__("; ".join(map(str, problems)))
        self.problems = problems


def parse_playbook(source: str, origin: str) -> Playbook:
    """Parses and fully checks one playbook; raises PlaybookError listing every problem found."""
    try:
        data: Any = yaml.safe_load(source)
    except yaml.YAMLError as exc:
        raise PlaybookError([PlaybookProblem(origin, "", f"not valid YAML: {exc}")]) from None
    try:
        playbook = Playbook.model_validate(data)
    except ValidationError as exc:
        problems = [PlaybookProblem(origin, ".".join(str(p) for p in e["loc"]), e["msg"]) for e in exc.errors()]
        raise PlaybookError(problems) from None
    problems = check_references(playbook, origin)
    if problems:
        raise PlaybookError(problems)
    return playbook


def check_references(playbook: Playbook, origin: str) -> list[PlaybookProblem]:
    """Action names exist with the right kind and parameters; every CEL expression compiles."""
    from shared.actions import registry

    problems: list[PlaybookProblem] = []
    catalogue = registry.catalogue()

    def check_cel(where: str, source: str | None) -> None:
        if source is None:
            return
        try:
            compile_expression(source)
        except ConditionError as exc:
            problems.append(PlaybookProblem(origin, where, str(exc)))

    def check_uses(where: str, name: str, kind: str, params: dict[str, Any]) -> None:
        entry = catalogue.get(name)
        if entry is None:
            problems.append(PlaybookProblem(origin, where, f"no action named {name!r}"))
            return
        if entry.spec.kind != kind:
            problems.append(PlaybookProblem(origin, where, f"{name} is a {entry.spec.kind} action, not {kind}"))
        fields = set(entry.spec.params.model_fields)
        aliases = {f.alias for f in entry.spec.params.model_fields.values() if f.alias}
        for key, value in params.items():
            if key not in fields | aliases:
                problems.append(PlaybookProblem(origin, f"{where}.with.{key}", f"{name} has no parameter {key!r}"))
            if isinstance(value, str):
                check_cel(f"{where}.with.{key}", value)

    check_cel("match.condition", playbook.match.condition)
    for i, step in enumerate(playbook.enrich):
        check_uses(f"enrich[{i}] ({step.id})", step.uses, "enrich", step.with_)
        check_cel(f"enrich[{i}].when", step.when)
    for i, action in enumerate(playbook.actions):
        where = f"actions[{i}] ({action.id})"
        check_uses(where, action.uses, "respond", action.with_)
        check_cel(f"{where}.when", action.when)
        _check_action_extras(action, where, check_cel, check_uses)
    check_cel("writeback.when", playbook.writeback.when)
    return problems


def _check_action_extras(action: ActionStep, where: str, check_cel: Any, check_uses: Any) -> None:
    approval = action.approval
    if approval is not None:
        check_cel(f"{where}.requires_approval", approval.when)
    if action.wait_until is not None:
        check_uses(f"{where}.wait_until", action.wait_until.uses, "enrich", action.wait_until.with_)
        check_cel(f"{where}.wait_until.until", action.wait_until.until)
    check_cel(f"{where}.then_comment", action.then_comment)


def load_playbooks(directory: Path = PLAYBOOKS_DIR) -> dict[str, Playbook]:
    playbooks: dict[str, Playbook] = {}
    problems: list[PlaybookProblem] = []
    for path in sorted(directory.glob("*.yaml")):
        try:
            playbook = parse_playbook(path.read_text(encoding="utf-8"), path.name)
        except PlaybookError as exc:
            problems.extend(exc.problems)
            continue
        if playbook.name in playbooks:
            problems.append(PlaybookProblem(path.name, "name", f"another playbook is named {playbook.name}"))
        playbooks[playbook.name] = playbook
    if problems:
        raise PlaybookError(problems)
    return playbooks


@cache
def bundled_playbooks() -> dict[str, Playbook]:
    return load_playbooks()
