"""The one comment a run writes back to its incident: findings, actions taken, skipped and why, how to undo.

Built with SafeHtml, whose constructors escape every value: titles, entity names and API results never become
markup; only the structure (heading, tables) is ours."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from shared.engine.model import Run, StepState, StepStatus
from shared.safehtml import SafeHtml

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


def _finding_line(data: dict[str, Any]) -> str:
    shown = {k: v for k, v in data.items() if v not in (None, "", [], {}) and not isinstance(v, dict | list)}
    return ", ".join(f"{k}: {v}" for k, v in list(shown.items())[:8])


def summary(run: Run, now: float) -> SafeHtml:
    when = datetime.fromtimestamp(now, UTC).strftime("%Y-%m-%d %H:%M UTC")
    mode = " (dry run: nothing was changed)" if run.dry_run else ""
    content = SafeHtml.heading(f"Riposte: {run.playbook}{mode}") + SafeHtml.text(f"Run {run.id}, {when}.")
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
