"""The engine's action port on the real executor and the emulated Sentinel: write-back goes where the incident's
source takes it, each write exactly once per key, and an incident with nowhere to write back gets nothing."""

from __future__ import annotations

from typing import Any

from shared.actions.context import MemoryLedger
from shared.actions.model import IncidentNote, Status
from shared.actions.port import ExecutorPort, sentinel_incident_id, write_back_actions
from shared.safehtml import SafeHtml
from tests.actions.conftest import ContextFactory
from tests.actions.test_sentinel import SIGNIN_INCIDENT, comments, sentinel_puts, state
from tests.conftest import CloudHandle

SENTINEL_INCIDENT = {"dialect": "sentinel.incident_trigger", "armId": SIGNIN_INCIDENT, "title": "sign-in"}


async def test_a_sentinel_incident_gets_one_comment_and_its_changes_once_per_key(
    make_context: ContextFactory, cloud: CloudHandle
):
    ledger = MemoryLedger()
    port = ExecutorPort(make_context(ledger=ledger), SENTINEL_INCIDENT)
    note = IncidentNote(
        html=SafeHtml.heading("Riposte: <summary>") + SafeHtml.text("done"),
        add_labels=("riposte",),
        status="Active",
    )
    writes = await port.write_back(note, "run-1:writeback")
    assert writes is not None
    assert [(w.action, w.status) for w in writes] == [
        ("sentinel.add_comment", Status.DONE),
        ("sentinel.update_incident", Status.DONE),
    ]
    assert [w.idempotency_key for w in writes] == ["run-1:writeback", "run-1:writeback-update"]
    [comment] = comments(cloud, SIGNIN_INCIDENT)
    assert "&lt;summary&gt;" in comment["properties"]["message"]
    after = state(cloud, SIGNIN_INCIDENT)
    assert after["status"] == "Active" and {"labelName": "riposte", "labelType": "User"} in after["labels"]
    puts = len(sentinel_puts(cloud))

    replay = await ExecutorPort(make_context(ledger=ledger), SENTINEL_INCIDENT).write_back(note, "run-1:writeback")
    assert replay == writes  # the ledger answers: the first outcomes, nothing written again
    assert len(comments(cloud, SIGNIN_INCIDENT)) == 1 and len(sentinel_puts(cloud)) == puts


async def test_a_text_note_is_a_plain_comment_and_changes_nothing_else(
    make_context: ContextFactory, cloud: CloudHandle
):
    before = state(cloud, SIGNIN_INCIDENT)
    port = ExecutorPort(make_context(), SENTINEL_INCIDENT)
    writes = await port.write_back(IncidentNote(text="waiting for <approval>"), "run-1:isolate.0:approval-request")
    assert writes is not None and [w.action for w in writes] == ["sentinel.add_comment"]
    [comment] = comments(cloud, SIGNIN_INCIDENT)
    assert comment["properties"]["message"] == "<p>waiting for &lt;approval&gt;</p>"
    assert state(cloud, SIGNIN_INCIDENT) == before


async def test_an_alert_without_a_sentinel_incident_has_nowhere_to_write_back(
    make_context: ContextFactory, cloud: CloudHandle
):
    alerts: list[dict[str, Any]] = [
        {"dialect": "defender.alert_resource", "armId": "/subscriptions/x/providers/Microsoft.Security/alerts/a"},
        {"dialect": "security_alert", "armId": SIGNIN_INCIDENT, "provider": "Azure Sentinel"},
        {"dialect": "sentinel.incident_trigger"},  # an incident that did not say which
    ]
    for incident in alerts:
        port = ExecutorPort(make_context(), incident)
        assert await port.write_back(IncidentNote(text="x", add_labels=("riposte",)), "k") is None
        assert sentinel_incident_id(incident) is None
    assert comments(cloud, SIGNIN_INCIDENT) == [] and sentinel_puts(cloud) == []


def test_the_catalogue_lists_the_update_only_for_a_write_back_that_changes_the_incident():
    assert write_back_actions(comment=True, updates=False) == ("sentinel.add_comment",)
    assert write_back_actions(comment=True, updates=True) == ("sentinel.add_comment", "sentinel.update_incident")
