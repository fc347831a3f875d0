"""Defender for Cloud alert state through azure-mgmt-security's SecurityCenter against the emulated Microsoft.Security,
and the write-back of a Defender alert that has no Sentinel incident: its own state, the summary as a notification."""

from __future__ import annotations

from typing import Any

from shared.actions import executor
from shared.actions.model import IncidentNote, Status
from shared.actions.permissions import IdentityPermissions
from shared.actions.port import ExecutorPort, plain_text
from shared.safehtml import SafeHtml
from tests.actions.conftest import SUBSCRIPTION, ContextFactory
from tests.actions.test_notify import received, webhook_url
from tests.conftest import CloudHandle

ALERT = (
    f"/subscriptions/{SUBSCRIPTION}/resourceGroups/rg-dev/providers/Microsoft.Security/locations/westeurope/alerts/"
    "2517538088322968242_3b4d1f2e-6a5c-4e7d-9f8a-1b2c3d4e5f06"
)
DEFENDER_INCIDENT: dict[str, Any] = {
    "dialect": "defender.alert_resource",
    "armId": ALERT,
    "title": "Suspicious SSH login to vm-dev-02 after brute force",
    "severity": "High",
}


def status(cloud: CloudHandle) -> str:
    [alert] = [a for a in cloud.tenant()["arm"]["security"]["alerts"] if a["id"] == ALERT]
    return str(alert["properties"]["status"])


def state_posts(cloud: CloudHandle) -> list[str]:
    return [r["path"].rsplit("/", 1)[-1] for r in cloud.requests(service="arm") if r["method"] == "POST"]


async def test_resolve_records_the_status_and_undo_restores_it(cloud, make_context: ContextFactory):
    ctx = make_context()
    outcome = await executor.respond(ctx, "defender.resolve_alert", {"alert_id": ALERT}, key="k")

    assert outcome.status is Status.DONE, outcome.reason
    assert (outcome.prior, outcome.intended) == ({"status": "Active"}, {"status": "Resolved"})
    assert status(cloud) == "Resolved" and state_posts(cloud) == ["resolve"]
    again = await executor.respond(make_context(), "defender.resolve_alert", {"alert_id": ALERT}, key="k2")
    assert again.status is Status.ALREADY_DONE and again.reason == "the alert is already Resolved"

    undone = await executor.undo(ctx, outcome)
    assert undone.status is Status.UNDONE and status(cloud) == "Active"
    assert state_posts(cloud) == ["resolve", "activate"]


async def test_dismiss_a_resolved_alert_and_undo_resolves_it_again(cloud, make_context: ContextFactory):
    await executor.respond(make_context(), "defender.resolve_alert", {"alert_id": ALERT}, key="k1")
    ctx = make_context()
    outcome = await executor.respond(ctx, "defender.dismiss_alert", {"alert_id": ALERT}, key="k2")
    assert outcome.status is Status.DONE and outcome.prior == {"status": "Resolved"}
    assert status(cloud) == "Dismissed"
    assert (await executor.undo(ctx, outcome)).status is Status.UNDONE
    assert status(cloud) == "Resolved"


async def test_alert_dry_run_checks_the_operations_and_writes_nothing(cloud, make_context: ContextFactory):
    ctx = make_context(dry_run=True)
    ctx.permissions = IdentityPermissions(ctx.azure)
    outcome = await executor.respond(ctx, "defender.resolve_alert", {"alert_id": ALERT}, key="k")
    assert outcome.status is Status.DRY_RUN and "would set the alert Resolved (was Active)" in outcome.reason
    assert all(check.held for check in outcome.permissions), outcome.permissions
    assert state_posts(cloud) == [] and status(cloud) == "Active"


async def test_bad_alert_ids_are_refused(cloud, make_context: ContextFactory):
    missing = await executor.respond(make_context(), "defender.resolve_alert", {"alert_id": ALERT + "x"}, key="k1")
    assert missing.status is Status.FAILED and "no Defender for Cloud alert" in missing.reason
    subscription_level = ALERT.replace("/resourceGroups/rg-dev", "")
    refused = await executor.respond(
        make_context(), "defender.resolve_alert", {"alert_id": subscription_level}, key="k"
    )
    assert refused.status is Status.FAILED and "resource group level" in refused.reason


async def test_a_defender_alert_gets_its_state_and_a_notification(cloud, make_context: ContextFactory):
    port = ExecutorPort(make_context(notify_webhook_url=webhook_url(cloud)), DEFENDER_INCIDENT)
    note = IncidentNote(html=SafeHtml.heading("Riposte: defender-alert") + SafeHtml.text("isolated vm-dev-02 & co"))
    writes = await port.write_back(note.__class__(html=note.html, status="Closed"), "run-1:writeback")

    assert writes is not None
    assert [(w.action, w.status) for w in writes] == [
        ("notify.send_webhook", Status.DONE),
        ("defender.resolve_alert", Status.DONE),
    ]
    assert status(cloud) == "Resolved"
    [card] = received(cloud)
    assert "isolated vm-dev-02 & co" in str(card)
    # without a webhook configured the summary has nowhere to go, and the state change alone is written
    quiet = ExecutorPort(make_context(), DEFENDER_INCIDENT)
    writes = await quiet.write_back(IncidentNote(text="x", status="Active"), "run-2:writeback")
    assert writes is not None and [w.action for w in writes] == ["defender.activate_alert"]
    assert status(cloud) == "Active"


def test_the_summary_reads_as_plain_text():
    markup = str(SafeHtml.heading("Run <1>") + SafeHtml.bullets(["a & b", "c"]))
    text = plain_text(markup)
    assert "Run <1>" in text and "a & b" in text and "<li>" not in text
