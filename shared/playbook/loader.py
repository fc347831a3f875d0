"""Loads playbooks/*.yaml and checks them against the schema, the action registry and CEL."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Annotated, Any

import yaml
from pydantic import ValidationError
from pydantic.fields import FieldInfo

from shared.playbook.conditions import ConditionError, compile_expression, evaluate
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
        fields = {**entry.spec.params.model_fields}
        fields |= {f.alias: f for f in entry.spec.params.model_fields.values() if f.alias}
        for key, value in params.items():
            field = fields.get(key)
            if field is None:
                problems.append(PlaybookProblem(origin, f"{where}.with.{key}", f"{name} has no parameter {key!r}"))
            items = value.items() if isinstance(value, dict) else [("", value)]
            for sub, item in items:
                if isinstance(item, str):
                    check_cel(f"{where}.with.{key}" + (f".{sub}" if sub else ""), item)
            if field is not None and playbook_text(field):
                problem = check_playbook_text(field, value)
                if problem:
                    problems.append(PlaybookProblem(origin, f"{where}.with.{key}", problem))

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
    for i, rule in enumerate(playbook.score):
        check_cel(f"score[{i}].when", rule.when)
    return problems


def playbook_text(field: FieldInfo) -> bool:
    """A parameter whose value must be written in the playbook, never computed from the incident (query text)."""
    extra = field.json_schema_extra
    return isinstance(extra, dict) and bool(extra.get("playbookText"))


def check_playbook_text(field: FieldInfo, value: Any) -> str | None:
    """Why `value` is not acceptable playbook text for `field`, or None. A CEL expression that reads no variable
    evaluates without any; one that reads the incident, an entity or a finding cannot, and is refused."""
    from pydantic import TypeAdapter

    try:
        text = evaluate(value, {}) if isinstance(value, str) else value
    except ConditionError:
        return "must be text written in the playbook (a CEL string literal), not computed from the incident"
    if not isinstance(text, str):
        return "must be a string"
    try:
        annotation: Any = Annotated[field.annotation, *field.metadata] if field.metadata else field.annotation
        TypeAdapter(annotation).validate_python(text)
    except ValidationError as exc:
        return str(exc.errors()[0]["msg"])
    return None


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
