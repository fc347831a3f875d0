"""notify.send_webhook against the emulated cloud's webhook sink (/_sink/{name}, which answers like a Teams incoming
webhook): the Adaptive Card as Teams takes it, untrusted text kept out of Markdown, the webhook's secret kept out of
records, one post per idempotency key, dry run, and throttling absorbed."""

from __future__ import annotations

import time
from typing import Any

import pytest

from shared.actions import executor
from shared.actions.context import MemoryLedger
from shared.actions.model import Status
from tests.actions.conftest import WORKSPACE, ContextFactory
from tests.conftest import CloudHandle

INCIDENT = f"{WORKSPACE}/providers/Microsoft.SecurityInsights/Incidents/3f6c2a9e-1b7d-4c5e-8a2f-0d9e8c7b6a51"
SECRET = "webhookb2/0f1e2d3c@6f1d3c2e/IncomingWebhook/4a5b6c7d8e9f/secret-part"


def webhook_url(cloud: CloudHandle, name: str = "teams") -> str:
    return f"{cloud.url}/_sink/{name}?sig=s3cr3t&{SECRET.replace('/', '-')}=1"


def received(cloud: CloudHandle, name: str = "teams") -> list[dict[str, Any]]:
    response = cloud.admin.get(f"/sink/{name}")
    response.raise_for_status()
    posts: list[dict[str, Any]] = response.json()["value"]
    return posts


def card_texts(card: dict[str, Any]) -> list[str]:
    return [run["text"] for block in card["body"] for run in block["inlines"]]


PARAMS = {
    "title": "Riposte disabled adele.vance@contoso.com",
    "severity": "High",
    "text": "Impossible travel, then a risky sign-in. See [details](https://evil.example/phish) **now**",
    "facts": {"Incident": "#1042", "Run": "run-7", "Owner": "<b>nobody</b> _x_"},
    "incidentId": INCIDENT,
}


async def test_posts_one_teams_adaptive_card(make_context: ContextFactory, cloud: CloudHandle):
    ctx = make_context(notify_webhook_url=webhook_url(cloud))
    ctx.run_id = "run-7"
    outcome = await executor.respond(ctx, "notify.send_webhook", PARAMS, key="run-7/notify")
    assert outcome.status is Status.DONE, outcome.reason
    [post] = received(cloud)
    assert post["contentType"].startswith("application/json")
    message = post["body"]
    assert message["type"] == "message"
    [attachment] = message["attachments"]
    assert attachment["contentType"] == "application/vnd.microsoft.card.adaptive"
    card = attachment["content"]
    assert (card["type"], card["version"]) == ("AdaptiveCard", "1.4")
    assert card["actions"] == [
        {
            "type": "Action.OpenUrl",
            "title": "Open incident",
            "url": f"https://portal.azure.com/#asset/Microsoft_Azure_Security_Insights/Incident{INCIDENT}".replace(
                "/Incidents/", "/incidents/"
            ),
        }
    ]
    # Untrusted text only ever sits in TextRuns, which Adaptive Cards never read as Markdown.
    assert {block["type"] for block in card["body"]} == {"RichTextBlock"}
    assert {run["type"] for block in card["body"] for run in block["inlines"]} == {"TextRun"}
    texts = card_texts(card)
    assert texts[:4] == ["Riposte disabled adele.vance@contoso.com", "Severity: ", "High", PARAMS["text"]]
    assert texts[8:10] == ["Owner: ", "<b>nobody</b> _x_"] and texts[-1] == "Riposte run run-7"
    # The webhook URL's secret is not in the record.
    assert outcome.target is not None and outcome.target.kind == "webhook"
    recorded = outcome.model_dump_json()
    assert "s3cr3t" not in recorded and "secret-part" not in recorded
    assert outcome.result["destination"].endswith("/…")


async def test_the_same_key_posts_once(make_context: ContextFactory, cloud: CloudHandle):
    ledger = MemoryLedger()
    ctx = make_context(notify_webhook_url=webhook_url(cloud), ledger=ledger)
    first = await executor.respond(ctx, "notify.send_webhook", PARAMS, key="k")
    again = await executor.respond(ctx, "notify.send_webhook", PARAMS, key="k")
    assert first.status is Status.DONE and again == first
    assert len(received(cloud)) == 1
    other = await executor.respond(ctx, "notify.send_webhook", PARAMS, key="other-step")
    assert other.status is Status.DONE and len(received(cloud)) == 2


async def test_dry_run_posts_nothing_and_shows_the_card(make_context: ContextFactory, cloud: CloudHandle):
    ctx = make_context(notify_webhook_url=webhook_url(cloud), dry_run=True)
    outcome = await executor.respond(ctx, "notify.send_webhook", PARAMS, key="k")
    assert outcome.status is Status.DRY_RUN
    assert outcome.intended["message"]["attachments"][0]["content"]["type"] == "AdaptiveCard"
    assert outcome.permissions == ()  # an outbound webhook needs no Azure role
    assert received(cloud) == []


async def test_only_the_configured_https_webhook_is_used(make_context: ContextFactory, cloud: CloudHandle):
    outcome = await executor.respond(make_context(), "notify.send_webhook", PARAMS, key="k")
    assert outcome.status is Status.FAILED and "RIPOSTE_NOTIFY_WEBHOOK_URL" in outcome.reason
    plain_http = webhook_url(cloud).replace("https://", "http://")
    outcome = await executor.respond(
        make_context(notify_webhook_url=plain_http), "notify.send_webhook", PARAMS, key="k"
    )
    assert outcome.status is Status.FAILED and "https" in outcome.reason
    elsewhere = {**PARAMS, "url": "https://attacker.example/hook"}
    outcome = await executor.respond(
        make_context(notify_webhook_url=webhook_url(cloud)), "notify.send_webhook", elsewhere, key="k"
    )
    assert outcome.status is Status.FAILED and "url" in outcome.reason  # no parameter names a destination
    assert cloud.admin.get("/sink").json()["value"] == []


async def test_a_card_without_an_incident_has_no_button(make_context: ContextFactory, cloud: CloudHandle):
    ctx = make_context(notify_webhook_url=webhook_url(cloud))
    outcome = await executor.respond(ctx, "notify.send_webhook", {"title": "Daily digest", "text": "3 runs"}, key="k")
    assert outcome.status is Status.DONE, outcome.reason
    card = received(cloud)[0]["body"]["attachments"][0]["content"]
    assert "actions" not in card
    assert card_texts(card) == ["Daily digest", "3 runs", "Riposte run test-run"]


async def test_long_text_is_cut(make_context: ContextFactory, cloud: CloudHandle):
    ctx = make_context(notify_webhook_url=webhook_url(cloud))
    params = {"title": "t", "text": "x" * 10_000, "facts": {"k": "v" * 2_000}}
    outcome = await executor.respond(ctx, "notify.send_webhook", params, key="k")
    assert outcome.status is Status.DONE, outcome.reason
    texts = card_texts(received(cloud)[0]["body"]["attachments"][0]["content"])
    assert len(texts[1]) == 4000 and texts[1].endswith("…") and len(texts[3]) == 500


@pytest.mark.parametrize("retry_after", [1, None])
async def test_throttling_is_absorbed(make_context: ContextFactory, cloud: CloudHandle, retry_after: int | None):
    throttled = 1 if retry_after else 2  # honouring Retry-After costs a second per 429
    spec: dict[str, Any] = {"match": "POST /_sink/teams", "status": 429, "count": throttled}
    if retry_after:
        spec["retryAfter"] = retry_after
    cloud.add_fault(**spec)
    started = time.monotonic()
    ctx = make_context(notify_webhook_url=webhook_url(cloud))
    outcome = await executor.respond(ctx, "notify.send_webhook", PARAMS, key="k")
    assert outcome.status is Status.DONE, outcome.reason
    assert [r["status"] for r in cloud.requests(service="sink")] == [429] * throttled + [200]
    assert len(received(cloud)) == 1
    if retry_after:
        assert time.monotonic() - started >= retry_after


async def test_a_webhook_that_keeps_failing_is_a_recorded_failure(make_context: ContextFactory, cloud: CloudHandle):
    cloud.add_fault(match="POST /_sink/teams", status=503)
    ctx = make_context(notify_webhook_url=webhook_url(cloud), max_retries=2)
    outcome = await executor.respond(ctx, "notify.send_webhook", PARAMS, key="k")
    assert outcome.status is Status.FAILED and "after 3 attempts" in outcome.reason
    assert "s3cr3t" not in outcome.reason
    assert len(cloud.requests(service="sink")) == 3


async def test_an_approval_request_pages_with_a_button_to_the_run_in_the_console(
    make_context: ContextFactory, cloud: CloudHandle
):
    from shared.actions.model import IncidentNote
    from shared.actions.port import ExecutorPort

    ctx = make_context(notify_webhook_url=webhook_url(cloud), console_url="https://riposte.example/api/console/")
    ctx.run_id = "run-9"
    port = ExecutorPort(ctx, {"dialect": "security_alert", "severity": "High"})  # nowhere to comment: the card only
    note = IncidentNote(text="Riposte run run-9 is waiting for approval.", page="Approval needed: network.isolate_vm")
    assert await port.write_back(note, "run-9:isolate.0:approval-request") is None
    [post] = received(cloud)
    card = post["body"]["attachments"][0]["content"]
    assert card["actions"] == [
        {
            "type": "Action.OpenUrl",
            "title": "Review in Riposte",
            "url": "https://riposte.example/api/console/#/runs/run-9",
        }
    ]
    assert "Approval needed: network.isolate_vm" in card_texts(card)
    await port.write_back(note, "run-9:isolate.0:approval-request")  # a replay pages once
    assert len(received(cloud)) == 1
