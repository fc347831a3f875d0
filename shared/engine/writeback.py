"""The one comment a run writes back to its incident: the risk score, findings and their details, actions taken,
skipped and why, how to undo. The details' tables are trimmed, largest first, to keep the comment within Sentinel's
limit (shared/engine/sections.py).

Built with SafeHtml, whose constructors escape every value: titles, entity names and API results never become
markup; only the structure (heading, tables) is ours."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from shared.engine.model import Run, StepState, StepStatus
from shared.engine.sections import Section, cell, detail_sections, fit, score_section
from shared.safehtml import MAX_COMMENT_CHARS, SafeHtml

_MAX_CELL = 300
_STATUS_WORDS = {
    "done": "done",
    "already_done": "already in place",
    "dry_run": "dry run: would act",
    "skipped": "skipped",
    "failed": "FAILED",
}


def _short(value: Any) -> str:
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, default=str)
    return text if len(text) <= _MAX_CELL else text[: _MAX_CELL - 1] + "…"


def _target(step: StepState) -> str:
    target = (step.outcome or {}).get("target") or {}
    entity = step.entity or {}
    return str(target.get("display") or target.get("id") or entity.get("friendlyName") or entity.get("name") or "")


def _table(section: Section, level: int = 5) -> SafeHtml:
    content = SafeHtml.heading(section.title, level)
    if not section.rows and section.total == 0:
        return content + SafeHtml.text("No scoring rule held.")
    content += SafeHtml.table(section.headers, section.rows)
    return content + (SafeHtml.text(section.note) if section.note else SafeHtml())


def _finding_line(data: dict[str, Any]) -> str:
    shown = {
        k: v
        for k, v in data.items()
        if v not in (None, "", [], {})
        and not isinstance(v, dict)
        and not (isinstance(v, list) and any(isinstance(i, dict | list) for i in v))
    }
    return ", ".join(f"{k}: {cell(v)}" for k, v in list(shown.items())[:8])


def summary(run: Run, now: float, scored: dict[str, Any] | None = None) -> SafeHtml:
    when = datetime.fromtimestamp(now, UTC).strftime("%Y-%m-%d %H:%M UTC")
    mode = " (dry run: nothing was changed)" if run.dry_run else ""
    content = SafeHtml.heading(f"Riposte: {run.playbook}{mode}") + SafeHtml.text(f"Run {run.id}, {when}.")
    if scored is not None:
        content += _table(score_section(scored), 4)
    enrichments = [s for s in run.steps if s.kind == "enrich"]
    if enrichments:
        findings = [
            (
                s.uses,
                _target(s),
                _short(_finding_line((s.finding or {}).get("data", {})))
                if s.status is StepStatus.DONE
                else f"{s.status.value}: {_short(s.reason)}",
            )
            for s in enrichments
        ]
        content += SafeHtml.heading("Findings", 4) + SafeHtml.table(("lookup", "on", "result"), findings)
    tail = _actions(run)
    details = detail_sections([s.model_dump(mode="json", by_alias=True) for s in enrichments])
    if details:
        budget = MAX_COMMENT_CHARS - len(str(content)) - len(str(tail)) - 500
        content += SafeHtml.heading("Details", 4)
        for section in fit(details, budget, lambda section: len(str(_table(section)))):
            content += _table(section)
    return content + tail


def _actions(run: Run) -> SafeHtml:
    content = SafeHtml()
    actions = [s for s in run.steps if s.kind == "action"]
    if actions:
        rows: list[tuple[str, ...]] = []
        for step in actions:
            status = (step.outcome or {}).get("status") or step.status.value
            rows.append((step.uses, _target(step), str(_STATUS_WORDS.get(status, status)), _short(step.reason)))
        content += SafeHtml.heading("Actions", 4) + SafeHtml.table(("action", "on", "outcome", "why"), rows)
    if not run.dry_run and any((s.outcome or {}).get("status") == "done" for s in actions):
        content += SafeHtml.text(
            f"Undo: POST /api/runs/{run.id}/rollback (or riposte rollback {run.id}) reverses every reversible "
            "action above, newest first."
        )
    return content
