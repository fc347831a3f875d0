"""The engine's action port on the real executor, for one run.

Besides enrich, respond, preview and undo, the port owns incident write-back: the engine says what to tell the incident
(an IncidentNote) and under which idempotency key; the incident's source decides where it goes. A Sentinel incident
gets the comment from sentinel.add_comment (under the key) and its labels, status and severity from
sentinel.update_incident (under the key + "-update"), so a replay writes nothing twice. A Defender for Cloud alert that
came without a Sentinel incident gets the outcome in its own state (a status change the playbook asks for: Closed
resolves it, New or Active activates it) and the summary as a notification to RIPOSTE_NOTIFY_WEBHOOK_URL, when one is
configured. Anything else (a Sentinel alert without an incident) has nowhere to write back, and write_back answers
None."""

from __future__ import annotations

import asyncio
import html
import re
from collections.abc import Awaitable
from typing import Any

from shared.actions import executor
from shared.actions.context import ActionContext
from shared.actions.model import Finding, IncidentNote, Outcome
from shared.armid import ArmId
from shared.intake.model import SENTINEL_INCIDENT_DIALECTS, Dialect

COMMENT = "sentinel.add_comment"
UPDATE = "sentinel.update_incident"
NOTIFY = "notify.send_webhook"
# What a playbook's write-back status means for a Defender for Cloud alert.
ALERT_STATE_ACTIONS = {
    "Closed": "defender.resolve_alert",
    "New": "defender.activate_alert",
    "Active": "defender.activate_alert",
}
_TAG = re.compile(r"<[^>]+>")


PAGE = "notify.send_webhook"


def write_back_actions(*, comment: bool, updates: bool) -> tuple[str, ...]:
    """The actions a write-back may use (for the catalogue: their permissions are the identity's to hold)."""
    return ((COMMENT,) if comment else ()) + ((UPDATE,) if updates else ())


def sentinel_incident_id(incident: dict[str, Any]) -> str | None:
    """The ARM id of the Sentinel incident an incident summary stands for, or None when it is not one."""
    if incident.get("dialect") not in SENTINEL_INCIDENT_DIALECTS:
        return None
    arm_id = incident.get("armId")
    return str(arm_id) if arm_id else None


def defender_alert_id(incident: dict[str, Any]) -> str | None:
    """The ARM id of the Defender for Cloud alert an incident summary stands for (resource group level), or None."""
    if incident.get("dialect") != Dialect.DEFENDER_ALERT_RESOURCE.value:
        return None
    try:
        return str(ArmId.parse(str(incident.get("armId") or ""), "Microsoft.Security/locations/alerts"))
    except ValueError:
        return None


def plain_text(markup: str) -> str:
    """A summary's markup as the plain text a notification carries (block ends become line breaks)."""
    spaced = re.sub(r"</(p|h\d|li|tr|table)>", "\n", markup)
    return html.unescape(_TAG.sub(" ", spaced)).strip()


class ExecutorPort:
    """shared.engine.runner.ActionPort for one run: `incident` is the run's incident summary."""

    def __init__(self, ctx: ActionContext, incident: dict[str, Any]) -> None:
        self.ctx = ctx
        self.incident = incident

    async def enrich(self, name: str, params: dict[str, Any], time_limit_s: float | None = None) -> Finding:
        return await executor.enrich(self.ctx, name, params, time_limit_s=time_limit_s)

    async def respond(self, name: str, params: dict[str, Any], key: str) -> Outcome:
        return await executor.respond(self.ctx, name, params, key=key)

    async def preview(self, name: str, params: dict[str, Any], key: str) -> Outcome:
        return await executor.respond(self.ctx, name, params, key=key, preview=True)

    async def undo(self, outcome: Outcome) -> Outcome:
        return await executor.undo(self.ctx, outcome)

    async def settle(self, key: str) -> tuple[Outcome, float] | None:
        return await executor.settle(self.ctx, key)

    async def _page(self, note: IncidentNote, key: str) -> None:
        """A Teams card for the note (its button opens the run in the console); a failed post is logged by the
        executor and does not keep the incident from hearing it."""
        severity = self.incident.get("severity")
        params: dict[str, Any] = {"title": note.page, "text": note.text}
        if severity in ("High", "Medium", "Low", "Informational"):
            params["severity"] = severity
        await self.respond(PAGE, params, f"{key}:page")

    async def write_back(self, note: IncidentNote, key: str) -> list[Outcome] | None:
        """The outcome of every write the note took (comment first; both at once), or None when the incident has
        nowhere to take it."""
        if note.page and self.ctx.settings.notify_webhook_url and not self.ctx.dry_run:
            await self._page(note, key)
        incident_id = sentinel_incident_id(self.incident)
        if incident_id is None:
            alert_id = defender_alert_id(self.incident)
            return await self._write_back_alert(alert_id, note, key) if alert_id else None
        writes: list[Awaitable[Outcome]] = []
        if note.html is not None:
            writes.append(self.respond(COMMENT, {"incident_id": incident_id, "html": note.html}, key))
        elif note.text:
            writes.append(self.respond(COMMENT, {"incident_id": incident_id, "text": note.text}, key))
        changes: dict[str, Any] = {}
        if note.add_labels:
            changes["add_labels"] = list(note.add_labels)
        if note.status:
            changes["status"] = note.status
        if note.severity:
            changes["severity"] = note.severity
        if changes:
            writes.append(self.respond(UPDATE, {"incident_id": incident_id, **changes}, f"{key}-update"))
        # One wave: the comment and the update plan from one read of the incident and write side by side (the update
        # re-reads and re-applies should the comment have moved the incident's etag).
        return list(await asyncio.gather(*writes))

    async def _write_back_alert(self, alert_id: str, note: IncidentNote, key: str) -> list[Outcome]:
        """A Defender alert without a Sentinel incident: its state, and the summary as a notification."""
        writes: list[Outcome] = []
        text = plain_text(str(note.html)) if note.html is not None else note.text
        if text and self.ctx.settings.notify_webhook_url:
            title = str(self.incident.get("title") or "Defender for Cloud alert")
            params: dict[str, Any] = {"title": f"Riposte: {title}"[:200], "text": text}
            if self.incident.get("severity") in ("High", "Medium", "Low", "Informational"):
                params["severity"] = self.incident["severity"]
            writes.append(await self.respond(NOTIFY, params, key))
        state = ALERT_STATE_ACTIONS.get(note.status or "")
        if state is not None:
            writes.append(await self.respond(state, {"alert_id": alert_id}, f"{key}-state"))
        return writes
