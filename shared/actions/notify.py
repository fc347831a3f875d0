"""Notifications: a Teams-compatible Adaptive Card posted to the configured incoming webhook.

Where it goes: only settings.notify_webhook_url (https). A playbook or a payload cannot name another URL, so incident
details can never be sent to an address an attacker chose, and the webhook's secret (in its path and query) stays in
settings: records show the host only.

What it says: every string is placed in a TextRun, which Adaptive Cards render as plain text (TextBlock and FactSet
values would read Markdown, so an incident title could carry a link). The one button opens the incident in the Azure
portal, a URL derived from the incident's ARM id, never taken from input.

Delivery: 429 and 5xx are retried (Retry-After honoured, jittered backoff when absent), a bounded number of times.
Teams' legacy connectors answer 200 with a text body for some failures ("... HTTP error 429"): read as throttled.
A message cannot be recalled, so it is not reversible; the executor's ledger keeps a retry of the run from sending it
twice (a crash between the POST and the ledger's outcome can, at worst, send it again)."""

from __future__ import annotations

import asyncio
import random
import ssl
from typing import TYPE_CHECKING, Any, Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel

from shared.actions.context import ActionContext
from shared.actions.executor import ActionError
from shared.actions.model import Outcome, Plan, Target
from shared.actions.registry import responder
from shared.azure.sentinel import IncidentRef

if TYPE_CHECKING:
    import httpx

CARD_CONTENT_TYPE = "application/vnd.microsoft.card.adaptive"
CARD_VERSION = "1.4"  # what Teams renders everywhere (desktop, web, mobile)
MAX_TEXT = 4000
MAX_FACT = 500
MAX_FACTS = 20
MAX_RETRY_AFTER_S = 60.0
RETRYABLE = frozenset({408, 429, 500, 502, 503, 504})
SEVERITY_COLOR = {"High": "Attention", "Medium": "Warning", "Low": "Good", "Informational": "Default"}


class WebhookParams(BaseModel):
    # extra="forbid": a playbook that tries to name a URL gets an error, not a silent post to the configured one
    model_config = ConfigDict(frozen=True, alias_generator=to_camel, validate_by_name=True, extra="forbid")

    title: str = Field(min_length=1, max_length=200)
    text: str = Field("", description="Plain text; cut to 4,000 characters")
    severity: Literal["High", "Medium", "Low", "Informational"] | None = None
    facts: dict[str, str] = Field(default_factory=dict, description="Label: value pairs, at most 20")
    incident_id: str | None = Field(None, description="Incident ARM id for the button; the run's incident if omitted")


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _run(text: str, **style: Any) -> dict[str, Any]:
    return {"type": "TextRun", "text": text, **style}


def _rich(*runs: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {"type": "RichTextBlock", "inlines": list(runs), **extra}


def build_card(
    params: WebhookParams, incident_url: str | None, reference: str, run_url: str | None = None
) -> dict[str, Any]:
    """The Teams message: one Adaptive Card whose text is all TextRuns (no Markdown is interpreted)."""
    body: list[dict[str, Any]] = [_rich(_run(_clip(params.title, 200), weight="Bolder", size="Medium"))]
    if params.severity:
        color = SEVERITY_COLOR[params.severity]
        body.append(_rich(_run("Severity: ", weight="Bolder"), _run(params.severity, color=color, weight="Bolder")))
    if params.text.strip():
        body.append(_rich(_run(_clip(params.text, MAX_TEXT)), spacing="Medium"))
    for label, value in list(params.facts.items())[:MAX_FACTS]:
        body.append(_rich(_run(f"{_clip(label, 80)}: ", weight="Bolder"), _run(_clip(value, MAX_FACT)), spacing="None"))
    body.append(_rich(_run(reference, isSubtle=True, size="Small"), spacing="Medium"))
    card: dict[str, Any] = {
        "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
        "type": "AdaptiveCard",
        "version": CARD_VERSION,
        "body": body,
        "msteams": {"width": "Full"},
    }
    actions = [("Open incident", incident_url), ("Review in Riposte", run_url)]
    if incident_url or run_url:  # links open pages; deciding an approval takes a signed-in click there
        card["actions"] = [{"type": "Action.OpenUrl", "title": t, "url": u} for t, u in actions if u]
    return {
        "type": "message",
        "attachments": [{"contentType": CARD_CONTENT_TYPE, "contentUrl": None, "content": card}],
    }


def redacted(url: str) -> str:
    """The webhook's host only: its path and query are the secret."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}/…"


def _webhook_url(ctx: ActionContext) -> str:
    url = ctx.settings.notify_webhook_url
    if not url:
        raise ActionError("no webhook configured: set RIPOSTE_NOTIFY_WEBHOOK_URL")
    parts = urlsplit(url)
    if parts.scheme != "https" or not parts.netloc:
        raise ActionError("RIPOSTE_NOTIFY_WEBHOOK_URL must be an https URL")
    return url


def _retry_after(response: httpx.Response) -> float | None:
    value = response.headers.get("retry-after")
    if value is None:
        return None
    try:
        return min(max(float(value), 0.0), MAX_RETRY_AFTER_S)
    except ValueError:
        return None  # an HTTP date: fall back to backoff


def _throttled_in_body(response: httpx.Response) -> bool:
    return response.status_code == 200 and "429" in response.text and response.text.strip() != "1"


async def post_json(ctx: ActionContext, url: str, payload: dict[str, Any]) -> httpx.Response:
    """POSTs with bounded retries on 408/429/5xx; returns the final response (raises ActionError on failure)."""
    import httpx

    verify: ssl.SSLContext | bool = True
    if ctx.settings.ca_bundle:
        verify = ssl.create_default_context(cafile=ctx.settings.ca_bundle)
    attempts = ctx.settings.max_retries + 1
    async with httpx.AsyncClient(verify=verify, timeout=15.0) as client:
        for attempt in range(attempts):
            try:
                response = await client.post(url, json=payload)
            except httpx.TransportError as error:
                if attempt + 1 == attempts:
                    raise ActionError(f"webhook {redacted(url)} unreachable: {type(error).__name__}") from None
                await asyncio.sleep(_backoff(ctx, attempt))
                continue
            if response.status_code in RETRYABLE or _throttled_in_body(response):
                if attempt + 1 == attempts:
                    break
                delay = _retry_after(response)
                await asyncio.sleep(delay if delay is not None else _backoff(ctx, attempt))
                continue
            if response.status_code >= 400:
                reason = response.text.strip()[:200]
                raise ActionError(f"webhook {redacted(url)} answered {response.status_code}: {reason}")
            return response
    raise ActionError(f"webhook {redacted(url)} still throttled or failing after {attempts} attempts")


def _backoff(ctx: ActionContext, attempt: int) -> float:
    """Exponential with full jitter, so concurrent senders do not retry in step."""
    return random.uniform(0, ctx.settings.retry_backoff_seconds * (2**attempt))


@responder(
    "notify.send_webhook",
    summary="Posts a Teams-compatible Adaptive Card (title, severity, text, facts, a button to the incident)",
    params=WebhookParams,
    permissions=(),
    target="Incident",
    reversible=False,
    destructive=False,
    undo_hint="A posted message cannot be recalled; delete it from the Teams channel if needed",
)
class SendWebhook:
    async def plan(self, ctx: ActionContext, params: WebhookParams) -> Plan:
        url = _webhook_url(ctx)
        if len(params.facts) > MAX_FACTS:
            raise ActionError(f"at most {MAX_FACTS} facts")
        incident = params.incident_id or ctx.incident_id
        incident_url = None
        if incident:
            try:
                incident_url = IncidentRef.parse(incident).portal_url
            except ValueError as error:
                raise ActionError(f"incident id {incident!r}: {error}") from None
        reference = f"Riposte run {ctx.run_id}" if ctx.run_id else "Riposte"
        console = ctx.settings.console_url
        run_url = f"{console}#/runs/{ctx.run_id}" if console and ctx.run_id else None  # from settings, never input
        message = build_card(params, incident_url, reference, run_url)
        target = Target(kind="webhook", id=redacted(url), display=urlsplit(url).netloc)
        return Plan(
            target=target, intended={"message": message}, noop=False, reason=f"a card to {urlsplit(url).netloc}"
        )

    async def apply(self, ctx: ActionContext, plan: Plan, key: str) -> dict[str, Any]:
        url = _webhook_url(ctx)
        response = await post_json(ctx, url, plan.intended["message"])
        return {"status": response.status_code, "destination": redacted(url)}

    async def undo(self, ctx: ActionContext, outcome: Outcome) -> dict[str, Any]:
        raise ActionError("notify.send_webhook is not reversible")
