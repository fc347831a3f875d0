"""The one comment a run writes back to its incident: findings, actions taken, skipped and why, how to undo.

Sentinel renders a subset of HTML in comments. Every value that came from an incident, a finding or an API is escaped
here; only the structure (tables, headings) is ours."""

from __future__ import annotations

import html
import json
from datetime import UTC, datetime
from typing import Any

from shared.engine.model import Run, StepStatus

_MAX_CELL = 300
_STATUS_WORDS = {
    "done": "done",
    "already_done": "already in place",
    "dry_run": "dry run: would act",
    "skipped": "skipped",
    "failed": "FAILED",
}


def _cell(value: Any) -> str:
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, default=str)
    if len(text) > _MAX_CELL:
        text = text[: _MAX_CELL - 1] + "…"
    return html.escape(text)


def _target(step: Any) -> str:
    outcome = step.outcome or {}
    target = outcome.get("target") or {}
    entity = step.entity or {}
    return str(target.get("display") or target.get("id") or entity.get("friendlyName") or entity.get("id") or "")


def _finding_line(data: dict[str, Any]) -> str:
    shown = {k: v for k, v in data.items() if v not in (None, "", [], {})}
    return ", ".join(f"{k}: {v if isinstance(v, str) else json.dumps(v, default=str)}" for k, v in list(shown.items())[:8])


def summary_html(run: Run, now: float) -> str:
    when = datetime.fromtimestamp(now, UTC).strftime("%Y-%m-%d %H:%M UTC")
    mode = " (dry run: nothing was changed)" if run.dry_run else ""
    parts = [
        f"<h3>Riposte: {_cell(run.playbook)}{mode}</h3>",
        f"<p>Run <code>{_cell(run.id)}</code>, {when}.</p>",
    ]
    enrichments = [s for s in run.steps if s.kind == "enrich"]
    if enrichments:
        rows = []
        for step in enrichments:
            if step.status is StepStatus.DONE:
                detail = _finding_line((step.finding or {}).get("data", {}))
            else:
                detail = f"{step.status.value}: {step.reason}"
            rows.append(f"<tr><td>{_cell(step.uses)}</td><td>{_cell(_target(step))}</td><td>{_cell(detail)}</td></tr>")
        parts.append("<p><b>Findings</b></p><table><tr><th>lookup</th><th>on</th><th>result</th></tr>")
        parts.extend(rows)
        parts.append("</table>")
    actions = [s for s in run.steps if s.kind == "action"]
    if actions:
        parts.append("<p><b>Actions</b></p><table><tr><th>action</th><th>on</th><th>outcome</th><th>why</th></tr>")
        for step in actions:
            status = (step.outcome or {}).get("status") or step.status.value
            word = _STATUS_WORDS.get(status, status)
            parts.append(
                f"<tr><td>{_cell(step.uses)}</td><td>{_cell(_target(step))}</td><td>{_cell(word)}</td>"
                f"<td>{_cell(step.reason)}</td></tr>"
            )
        parts.append("</table>")
    reversible = [s for s in actions if (s.outcome or {}).get("status") == "done"]
    if reversible and not run.dry_run:
        parts.append(
            f"<p><b>Undo</b>: <code>POST /api/runs/{_cell(run.id)}/rollback</code> or "
            f"<code>riposte rollback {_cell(run.id)}</code> reverses every reversible action above, newest first.</p>"
        )
    return "".join(parts)
