"""sentinel.* against the emulated Sentinel through the real azure-mgmt-securityinsight client built by
shared.azure.sentinel: incident context, comments that never duplicate, escaped and within the limit, incident updates
with ETags and a retry on 412, exact undo, honest dry runs, guardrails, 429s absorbed and the write limiter held."""

from __future__ import annotations

import asyncio
import re
import time
from typing import Any

import pytest

from shared.actions import executor
from shared.actions.context import MemoryLedger
from shared.actions.model import Status
from shared.actions.sentinel import AddCommentParams, comment_id_for
from shared.azure.errors import PreconditionFailed
from shared.azure.limits import WindowLimiter
from shared.safehtml import MAX_COMMENT_CHARS, SafeHtml
from tests.actions.conftest import ADELE, MEGAN, WORKSPACE, ContextFactory
from tests.conftest import CloudHandle

INCIDENTS = f"{WORKSPACE}/providers/Microsoft.SecurityInsights/Incidents"
SIGNIN_INCIDENT = f"{INCIDENTS}/3f6c2a9e-1b7d-4c5e-8a2f-0d9e8c7b6a51"  # adele.vance, label identity (AutoAssigned)
MALWARE_INCIDENT = f"{INCIDENTS}/3f6c2a9e-1b7d-4c5e-8a2f-0d9e8c7b6a52"
CLOSED_INCIDENT = f"{INCIDENTS}/3f6c2a9e-1b7d-4c5e-8a2f-0d9e8c7b6a50"
UNKNOWN_INCIDENT = f"{INCIDENTS}/00000000-0000-4000-8000-000000000000"


def tenant_incident(cloud: CloudHandle, arm_id: str) -> dict[str, Any]:
    name = arm_id.rsplit("/", 1)[1]
    incidents: list[dict[str, Any]] = cloud.tenant()["sentinel"]["incidents"]
    return next(i for i in incidents if i["name"] == name)


def comments(cloud: CloudHandle, arm_id: str) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = tenant_incident(cloud, arm_id)["comments"]
    return found


def state(cloud: CloudHandle, arm_id: str) -> dict[str, Any]:
    """What update_incident may touch, exactly as the tenant holds it."""
    props = tenant_incident(cloud, arm_id)["properties"]
    fields = ("severity", "status", "owner", "labels", "classification", "classificationReason")
    return {name: props.get(name) for name in (*fields, "classificationComment", "title", "description")}


def sentinel_puts(cloud: CloudHandle) -> list[dict[str, Any]]:
    return [r for r in cloud.requests(method="PUT") if "/Microsoft.SecurityInsights/" in r["path"]]


# ------------------------------------------------------------------------------------------------ sentinel.get_incident


async def test_get_incident_returns_incident_entities_and_alerts(make_context: ContextFactory, cloud: CloudHandle):
    ctx = make_context()
    ctx.incident_id = SIGNIN_INCIDENT  # the run's incident: no parameter needed
    finding = await executor.enrich(ctx, "sentinel.get_incident", {})
    assert finding.ok, finding.error
    data = finding.data
    assert data["title"] == "Suspicious sign-in activity for adele.vance"
    assert (data["number"], data["severity"], data["status"]) == (1042, "High", "New")
    assert data["labels"] == ["identity"] and data["owner"] is None
    assert [e["kind"] for e in data["entities"]] == ["Account", "Ip"]
    assert data["entities"][0]["properties"]["aadUserId"] == ADELE
    assert data["entityCounts"] == {"Account": 1, "Ip": 1}
    assert [a["properties"]["alertDisplayName"] for a in data["alerts"]] == ["Impossible travel activity"]
    assert data["techniques"] == ["T1078"]
    # the entities and alerts lists are read-only POSTs: nothing else is sent
    assert {(w["method"], w["path"].rsplit("/", 1)[1]) for w in cloud.writes()} == {
        ("POST", "entities"),
        ("POST", "alerts"),
    }


async def test_get_incident_of_an_unknown_incident_is_a_recorded_error(make_context: ContextFactory):
    finding = await executor.enrich(make_context(), "sentinel.get_incident", {"incidentId": UNKNOWN_INCIDENT})
    assert not finding.ok
    assert "not found" in finding.error


async def test_get_incident_refuses_an_id_that_is_not_an_incident(make_context: ContextFactory, cloud: CloudHandle):
    finding = await executor.enrich(make_context(), "sentinel.get_incident", {"incidentId": WORKSPACE})
    assert not finding.ok
    assert "incident ARM id" in finding.error
    assert cloud.requests(service="arm") == []


async def test_get_incident_absorbs_429_on_the_read_only_posts(make_context: ContextFactory, cloud: CloudHandle):
    cloud.add_fault(match="POST */entities", status=429, retryAfter=1, count=1)
    cloud.add_fault(match="POST */alerts", status=429, count=1)  # no Retry-After: retried on our backoff
    finding = await executor.enrich(make_context(), "sentinel.get_incident", {"incidentId": SIGNIN_INCIDENT})
    assert finding.ok, finding.error
    statuses = [(r["path"].rsplit("/", 1)[1], r["status"]) for r in cloud.requests(method="POST")]
    assert sorted(statuses) == [("alerts", 200), ("alerts", 429), ("entities", 200), ("entities", 429)]


# ------------------------------------------------------------------------------------------------ sentinel.add_comment


async def test_add_comment_writes_one_escaped_comment_with_the_deterministic_id(
    make_context: ContextFactory, cloud: CloudHandle
):
    ctx = make_context()
    text = "<script>alert('x')</script> & \"quotes\"\nsecond line"
    outcome = await executor.respond(
        ctx, "sentinel.add_comment", {"incidentId": SIGNIN_INCIDENT, "text": text}, key="run-1/step-comment"
    )
    assert outcome.status is Status.DONE, outcome.reason
    expected_id = comment_id_for(SIGNIN_INCIDENT, "run-1/step-comment")
    assert outcome.result["commentId"] == expected_id
    [comment] = comments(cloud, SIGNIN_INCIDENT)
    assert comment["name"] == expected_id
    message = comment["properties"]["message"]
    assert message == (
        "<p>&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt; &amp; &quot;quotes&quot;<br>second line</p>"
    )
    assert "<script>" not in message
    assert outcome.target is not None and outcome.target.display == "#1042 Suspicious sign-in activity for adele.vance"


async def test_add_comment_replayed_with_the_same_key_writes_nothing(make_context: ContextFactory, cloud: CloudHandle):
    ledger = MemoryLedger()
    params = {"incidentId": SIGNIN_INCIDENT, "text": "Riposte disabled adele.vance."}
    first = await executor.respond(make_context(ledger=ledger), "sentinel.add_comment", params, key="k1")
    assert first.status is Status.DONE
    cloud.admin.delete("/requests").raise_for_status()
    again = await executor.respond(make_context(ledger=ledger), "sentinel.add_comment", params, key="k1")
    assert again == first
    # the ledger answered: nothing written (its plan's reads run beside the ledger read, so a replay may read)
    assert [r for r in cloud.requests() if r["method"] != "GET"] == []
    assert len(comments(cloud, SIGNIN_INCIDENT)) == 1


async def test_add_comment_retried_after_a_lost_outcome_does_not_duplicate(
    make_context: ContextFactory, cloud: CloudHandle
):
    """A worker wrote the comment and crashed before recording it (its intent alone is in the ledger): the retry
    finds the comment by its id. A first attempt does not look for it."""
    params = {"incidentId": SIGNIN_INCIDENT, "text": "Riposte disabled adele.vance."}
    ledger = MemoryLedger()
    await executor.respond(make_context(ledger=ledger), "sentinel.add_comment", params, key="k1")
    assert [r["method"] for r in cloud.requests() if "/comments/" in r["path"]] == ["PUT"]
    ledger.entries["k1"].update(state="intent", at=time.time() - 60)  # the outcome was lost
    ledger.entries["k1"].pop("outcome")
    cloud.admin.delete("/requests").raise_for_status()
    retry = await executor.respond(make_context(ledger=ledger), "sentinel.add_comment", params, key="k1")
    assert retry.status is Status.DONE and retry.result["written"] is False
    assert sentinel_puts(cloud) == []
    assert len(comments(cloud, SIGNIN_INCIDENT)) == 1
    # a retry whose text changed (a re-rendered summary) updates the same comment: still one
    changed = {**params, "text": "Riposte disabled adele.vance and revoked her sessions."}
    await executor.respond(make_context(), "sentinel.add_comment", changed, key="k1")  # a new ledger: no lookup
    [comment] = comments(cloud, SIGNIN_INCIDENT)
    assert comment["properties"]["message"] == "<p>Riposte disabled adele.vance and revoked her sessions.</p>"
    assert len(sentinel_puts(cloud)) == 1


async def test_add_comment_with_other_keys_adds_other_comments(make_context: ContextFactory, cloud: CloudHandle):
    for key in ("run-1/a", "run-1/b", "run-2/a"):
        params = {"incidentId": SIGNIN_INCIDENT, "text": key}
        assert (await executor.respond(make_context(), "sentinel.add_comment", params, key=key)).status is Status.DONE
    assert len({c["name"] for c in comments(cloud, SIGNIN_INCIDENT)}) == 3
    assert comment_id_for(SIGNIN_INCIDENT, "k") != comment_id_for(MALWARE_INCIDENT, "k")
    assert comment_id_for(SIGNIN_INCIDENT, "k") == comment_id_for(SIGNIN_INCIDENT.lower(), "k")


async def test_add_comment_html_from_the_builder_escapes_every_value(make_context: ContextFactory, cloud: CloudHandle):
    summary = (
        SafeHtml.heading("Actions <taken>")
        + SafeHtml.table(["Action", "Target"], [["entra.disable_user", "<img src=x onerror=alert(1)>"]])
        + SafeHtml.bullets(["a & b"])
        + SafeHtml.link("Run", "https://riposte.contoso.com/runs/1?a=1&b=2")
    )
    params = AddCommentParams(incident_id=SIGNIN_INCIDENT, text="Summary:", html=summary)
    outcome = await executor.respond(make_context(), "sentinel.add_comment", params, key="summary")
    assert outcome.status is Status.DONE, outcome.reason
    [comment] = comments(cloud, SIGNIN_INCIDENT)
    assert comment["properties"]["message"] == (
        "<p>Summary:</p><h3>Actions &lt;taken&gt;</h3>"
        "<table><tr><th>Action</th><th>Target</th></tr>"
        "<tr><td>entra.disable_user</td><td>&lt;img src=x onerror=alert(1)&gt;</td></tr></table>"
        "<ul><li>a &amp; b</li></ul>"
        '<p><a href="https://riposte.contoso.com/runs/1?a=1&amp;b=2">Run</a></p>'
    )


async def test_add_comment_refuses_markup_passed_as_a_string(make_context: ContextFactory, cloud: CloudHandle):
    params = {"incidentId": SIGNIN_INCIDENT, "html": "<img src=x onerror=alert(1)>"}
    outcome = await executor.respond(make_context(), "sentinel.add_comment", params, key="k")
    assert outcome.status is Status.FAILED
    assert "instance of SafeHtml" in outcome.reason
    with pytest.raises(ValueError, match="https"):
        SafeHtml.link("x", "javascript:alert(1)")
    assert cloud.writes() == []


async def test_add_comment_over_the_limit_is_cut_between_elements_with_a_note(
    make_context: ContextFactory, cloud: CloudHandle
):
    long_text = "A&B " * 12_000  # 48,000 characters before escaping
    rows = [[f"row {i}", "<td>" * 5] for i in range(2_000)]
    params = AddCommentParams(
        incident_id=SIGNIN_INCIDENT, text=long_text[:9_000], html=SafeHtml.table(["n", "raw"], rows)
    )
    outcome = await executor.respond(make_context(), "sentinel.add_comment", params, key="long")
    assert outcome.status is Status.DONE, outcome.reason
    message = comments(cloud, SIGNIN_INCIDENT)[0]["properties"]["message"]
    assert len(message) <= MAX_COMMENT_CHARS
    assert outcome.intended["truncatedCharacters"] > 0
    body, note = message.rsplit("<p><em>", 1)
    assert note.startswith("Truncated to Sentinel's 30,000-character comment limit")
    assert body.endswith("</table>")  # cut between rows: every element closed
    assert body.count("<tr>") == body.count("</tr>") > 1
    entities = ("&amp;", "&lt;", "&gt;", "&quot;", "&#x27;")
    assert all(body.startswith(entities, m.start()) for m in re.finditer("&", body))  # no entity cut in half

    plain = await executor.respond(
        make_context(),
        "sentinel.add_comment",
        {"incidentId": MALWARE_INCIDENT, "text": long_text},
        key="long-text",
    )
    assert plain.status is Status.DONE
    message = comments(cloud, MALWARE_INCIDENT)[0]["properties"]["message"]
    assert MAX_COMMENT_CHARS - 300 < len(message) <= MAX_COMMENT_CHARS
    assert message.startswith("<p>A&amp;B A&amp;B") and "</p><p><em>Truncated" in message


async def test_add_comment_dry_run_writes_nothing_and_reports_the_role(
    make_context: ContextFactory, cloud: CloudHandle
):
    params = {"incidentId": SIGNIN_INCIDENT, "text": "would be written"}
    outcome = await executor.respond(make_context(dry_run=True), "sentinel.add_comment", params, key="k")
    assert outcome.status is Status.DRY_RUN
    assert outcome.intended["message"] == "<p>would be written</p>"
    [check] = outcome.permissions
    assert check.permission.name == "Microsoft Sentinel Responder"
    assert check.permission.operation == "Microsoft.SecurityInsights/incidents/comments/write"
    assert cloud.writes() == []
    assert comments(cloud, SIGNIN_INCIDENT) == []


async def test_add_comment_on_a_protected_workspace_is_skipped(make_context: ContextFactory, cloud: CloudHandle):
    ctx = make_context(protected_resource_prefixes=(WORKSPACE.upper(),))
    outcome = await executor.respond(ctx, "sentinel.add_comment", {"incidentId": SIGNIN_INCIDENT, "text": "x"}, key="k")
    assert outcome.status is Status.SKIPPED
    assert "protected prefix" in outcome.reason
    assert cloud.writes() == []


@pytest.mark.parametrize("retry_after", [1, None])
async def test_add_comment_absorbs_429(make_context: ContextFactory, cloud: CloudHandle, retry_after: int | None):
    throttled = 1 if retry_after else 2  # honouring Retry-After costs a second per 429
    spec: dict[str, Any] = {"match": "PUT */comments/*", "status": 429, "count": throttled}
    if retry_after:
        spec["retryAfter"] = retry_after
    cloud.add_fault(**spec)
    started = time.monotonic()
    params = {"incidentId": SIGNIN_INCIDENT, "text": "after throttling"}
    outcome = await executor.respond(make_context(), "sentinel.add_comment", params, key="k")
    assert outcome.status is Status.DONE, outcome.reason
    assert [r["status"] for r in sentinel_puts(cloud)] == [429] * throttled + [201]
    assert len(comments(cloud, SIGNIN_INCIDENT)) == 1
    if retry_after:
        assert time.monotonic() - started >= retry_after  # Retry-After honoured


async def test_comment_writes_wait_for_the_sentinel_write_limiter(make_context: ContextFactory, cloud: CloudHandle):
    ctx = make_context(sentinel_writes_per_5min=2)
    calls = [
        executor.respond(ctx, "sentinel.add_comment", {"incidentId": SIGNIN_INCIDENT, "text": f"c{i}"}, key=f"k{i}")
        for i in range(3)
    ]
    tasks = [asyncio.ensure_future(call) for call in calls]
    # Two go through as soon as the cloud answers (however busy the machine); the third waits for the 5-minute
    # window, so it is still waiting well after the other two finished.
    done: set[asyncio.Future[Any]] = set()
    pending: set[asyncio.Future[Any]] = set(tasks)
    async with asyncio.timeout(20):
        while len(done) < 2:
            finished, pending = await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
            done |= finished
    late, pending = await asyncio.wait(pending, timeout=1.0)
    assert len(done) == 2 and not late and len(pending) == 1
    assert len(sentinel_puts(cloud)) == 2
    for task in pending:
        task.cancel()
    await asyncio.gather(*pending, return_exceptions=True)


async def test_write_limiter_holds_its_rate(make_context: ContextFactory, cloud: CloudHandle):
    """75 per 5 minutes cannot be waited out in a test; the same limiter at 3 per 0.5 s shows the behaviour."""
    ctx = make_context()
    ctx.azure.limits.sentinel_writes = WindowLimiter(3, 0.5)
    started = time.monotonic()
    outcomes = await asyncio.gather(
        *(
            executor.respond(ctx, "sentinel.add_comment", {"incidentId": SIGNIN_INCIDENT, "text": f"c{i}"}, key=f"{i}")
            for i in range(9)
        )
    )
    elapsed = time.monotonic() - started
    assert all(o.status is Status.DONE for o in outcomes)
    times = sorted(r["time"] for r in sentinel_puts(cloud))
    assert len(times) == 9
    # The limiter counts a write when it starts; the service when it arrives, a few ms later: allow 50 ms.
    busiest = max(sum(1 for t in times if start <= t < start + 0.45) for start in times)
    assert busiest <= 3
    assert elapsed >= 1.0  # 9 writes at 3 per half second: two full waits


# --------------------------------------------------------------------------------------------- sentinel.update_incident


async def test_update_incident_sets_fields_keeps_labels_and_undo_restores(
    make_context: ContextFactory, cloud: CloudHandle
):
    before = state(cloud, SIGNIN_INCIDENT)
    ctx = make_context()
    params = {
        "incidentId": SIGNIN_INCIDENT,
        "severity": "Medium",
        "status": "Active",
        "ownerObjectId": ADELE,
        "addLabels": ["riposte", "identity"],
    }
    outcome = await executor.respond(ctx, "sentinel.update_incident", params, key="upd")
    assert outcome.status is Status.DONE, outcome.reason
    after = state(cloud, SIGNIN_INCIDENT)
    assert (after["severity"], after["status"]) == ("Medium", "Active")
    assert after["owner"]["objectId"] == ADELE and after["owner"]["userPrincipalName"] == "adele.vance@contoso.com"
    assert after["labels"] == [
        {"labelName": "identity", "labelType": "AutoAssigned"},
        {"labelName": "riposte", "labelType": "User"},
    ]
    assert outcome.prior["properties"]["severity"] == "High"
    assert [r["status"] for r in sentinel_puts(cloud)] == [200]

    undone = await executor.undo(ctx, outcome)
    assert undone.status is Status.UNDONE, undone.reason
    assert state(cloud, SIGNIN_INCIDENT) == before
    assert undone.result["restored"] == ["owner", "severity", "status"] and undone.result["keptChangedSince"] == []
    assert undone.result["removedLabels"] == ["riposte"]  # identity was there before: it stays


async def test_update_incident_already_as_asked_is_a_noop(make_context: ContextFactory, cloud: CloudHandle):
    params = {"incidentId": SIGNIN_INCIDENT, "severity": "High", "addLabels": ["IDENTITY"]}
    outcome = await executor.respond(make_context(), "sentinel.update_incident", params, key="k")
    assert outcome.status is Status.ALREADY_DONE
    assert sentinel_puts(cloud) == []
    # after a real change, the same change again (another key) writes nothing either
    change = {"incidentId": SIGNIN_INCIDENT, "severity": "Low"}
    assert (await executor.respond(make_context(), "sentinel.update_incident", change, key="a")).status is Status.DONE
    again = await executor.respond(make_context(), "sentinel.update_incident", change, key="b")
    assert again.status is Status.ALREADY_DONE
    assert len(sentinel_puts(cloud)) == 1


async def test_update_incident_replayed_with_the_same_key_writes_nothing(
    make_context: ContextFactory, cloud: CloudHandle
):
    ledger = MemoryLedger()
    params = {"incidentId": SIGNIN_INCIDENT, "severity": "Low"}
    first = await executor.respond(make_context(ledger=ledger), "sentinel.update_incident", params, key="k")
    again = await executor.respond(make_context(ledger=ledger), "sentinel.update_incident", params, key="k")
    assert first.status is Status.DONE and again == first
    assert len(sentinel_puts(cloud)) == 1


async def test_update_incident_interrupted_after_its_write_is_done_and_undoable(
    make_context: ContextFactory, cloud: CloudHandle
):
    """The PUT happened, then the worker died before recording the outcome: the retry finds its own change, writes
    nothing, reports DONE with the prior state recorded before the first attempt, and undo restores that."""
    before = state(cloud, SIGNIN_INCIDENT)
    ledger = MemoryLedger()
    params = {"incidentId": SIGNIN_INCIDENT, "severity": "Low", "addLabels": ["riposte"]}
    await executor.respond(make_context(ledger=ledger), "sentinel.update_incident", params, key="k")
    entry = ledger.entries["k"]
    entry["state"] = "intent"  # as the ledger stands when the worker dies between the PUT and put_outcome
    del entry["outcome"]
    retried = await executor.respond(make_context(ledger=ledger), "sentinel.update_incident", params, key="k")
    assert retried.status is Status.DONE and retried.result == {"replayed": True}
    assert len(sentinel_puts(cloud)) == 1
    assert retried.prior["properties"]["severity"] == "High"
    undone = await executor.undo(make_context(), retried)
    assert undone.status is Status.UNDONE, undone.reason
    assert state(cloud, SIGNIN_INCIDENT) == before


async def test_update_incident_closes_with_classification_and_undo_reopens(
    make_context: ContextFactory, cloud: CloudHandle
):
    before = state(cloud, MALWARE_INCIDENT)
    ctx = make_context()
    params = {
        "incidentId": MALWARE_INCIDENT,
        "status": "Closed",
        "classification": "TruePositive",
        "classificationReason": "SuspiciousActivity",
        "classificationComment": "Miner removed; VM isolated by Riposte.",
    }
    outcome = await executor.respond(ctx, "sentinel.update_incident", params, key="close")
    assert outcome.status is Status.DONE, outcome.reason
    closed = state(cloud, MALWARE_INCIDENT)
    assert (closed["status"], closed["classification"], closed["classificationReason"]) == (
        "Closed",
        "TruePositive",
        "SuspiciousActivity",
    )
    assert closed["classificationComment"] == "Miner removed; VM isolated by Riposte."
    undone = await executor.undo(ctx, outcome)
    assert undone.status is Status.UNDONE, undone.reason
    assert state(cloud, MALWARE_INCIDENT) == before


async def test_update_incident_retries_a_412_and_keeps_the_concurrent_change(
    make_context: ContextFactory, cloud: CloudHandle
):
    """The plan reads the etag; an analyst edits the incident; the PUT gets 412, re-reads, and re-applies."""
    from shared.actions.sentinel import UpdateIncident, UpdateIncidentParams

    ctx = make_context()
    responder = UpdateIncident()
    plan = await responder.plan(
        ctx,
        UpdateIncidentParams.model_validate(
            {"incidentId": SIGNIN_INCIDENT, "status": "Active", "addLabels": ["riposte"]}
        ),
    )
    analyst = make_context()
    await analyst.azure.sentinel.update_incident(SIGNIN_INCIDENT, {"severity": "Low"}, add_labels=["analyst"])
    cloud.admin.delete("/requests").raise_for_status()

    result = await responder.apply(ctx, plan, "k")
    log = [(r["method"], r["status"]) for r in cloud.requests(service="arm")]
    assert log == [("PUT", 412), ("GET", 200), ("PUT", 200)]
    after = state(cloud, SIGNIN_INCIDENT)
    assert (after["status"], after["severity"]) == ("Active", "Low")  # ours and the analyst's
    assert [label["labelName"] for label in after["labels"]] == ["identity", "analyst", "riposte"]
    assert result["etag"] == tenant_incident(cloud, SIGNIN_INCIDENT)["etag"]


async def test_update_incident_gives_up_after_bounded_412s(make_context: ContextFactory, cloud: CloudHandle):
    cloud.add_fault(match="PUT */incidents/*", status=412, code="PreconditionFailed", count=50)
    ctx = make_context()
    with pytest.raises(PreconditionFailed):
        await ctx.azure.sentinel.update_incident(SIGNIN_INCIDENT, {"severity": "Low"})
    assert len(sentinel_puts(cloud)) == 6  # the first try and 5 re-reads


async def test_undo_leaves_a_field_someone_changed_since(make_context: ContextFactory, cloud: CloudHandle):
    ctx = make_context()
    params = {"incidentId": SIGNIN_INCIDENT, "severity": "Medium", "status": "Active", "addLabels": ["riposte"]}
    outcome = await executor.respond(ctx, "sentinel.update_incident", params, key="k")
    await make_context().azure.sentinel.update_incident(SIGNIN_INCIDENT, {"severity": "Informational"})
    undone = await executor.undo(ctx, outcome)
    assert undone.status is Status.UNDONE
    after = state(cloud, SIGNIN_INCIDENT)
    assert (after["status"], after["severity"]) == ("New", "Informational")
    assert [label["labelName"] for label in after["labels"]] == ["identity"]
    assert undone.result["keptChangedSince"] == ["severity"]


async def test_update_incident_unassigns_and_undo_reassigns(make_context: ContextFactory, cloud: CloudHandle):
    before = state(cloud, CLOSED_INCIDENT)
    assert before["owner"]["objectId"] is not None
    ctx = make_context()
    outcome = await executor.respond(
        ctx, "sentinel.update_incident", {"incidentId": CLOSED_INCIDENT, "unassignOwner": True}, key="k"
    )
    assert outcome.status is Status.DONE, outcome.reason
    assert state(cloud, CLOSED_INCIDENT)["owner"]["objectId"] is None
    assert (await executor.undo(ctx, outcome)).status is Status.UNDONE
    assert state(cloud, CLOSED_INCIDENT) == before


async def test_update_incident_dry_run_writes_nothing(make_context: ContextFactory, cloud: CloudHandle):
    params = {"incidentId": SIGNIN_INCIDENT, "severity": "Low", "ownerObjectId": MEGAN, "addLabels": ["x"]}
    outcome = await executor.respond(make_context(dry_run=True), "sentinel.update_incident", params, key="k")
    assert outcome.status is Status.DRY_RUN
    assert outcome.intended["changes"] == {"severity": "Low", "owner": {"objectId": MEGAN}}
    assert outcome.intended["addLabels"] == ["x"]
    assert outcome.permissions[0].permission.operation == "Microsoft.SecurityInsights/incidents/write"
    assert cloud.writes() == []


async def test_update_incident_on_a_protected_workspace_is_skipped(make_context: ContextFactory, cloud: CloudHandle):
    ctx = make_context(protected_resource_prefixes=(WORKSPACE,))
    outcome = await executor.respond(
        ctx, "sentinel.update_incident", {"incidentId": SIGNIN_INCIDENT, "severity": "Low"}, key="k"
    )
    assert outcome.status is Status.SKIPPED
    assert cloud.writes() == []


@pytest.mark.parametrize(
    ("params", "reason"),
    [
        ({"status": "Closed"}, "needs a classification"),
        (
            {"status": "Closed", "classification": "FalsePositive", "classificationReason": "SuspiciousActivity"},
            "takes",
        ),
        ({"classification": "TruePositive"}, "belongs to a closed incident"),
        ({"ownerObjectId": "adele.vance@contoso.com"}, "object id"),
        ({}, "nothing to change"),
        ({"severity": "Critical"}, "severity"),
    ],
)
async def test_update_incident_refuses_what_sentinel_would(
    make_context: ContextFactory, cloud: CloudHandle, params: dict[str, Any], reason: str
):
    outcome = await executor.respond(
        make_context(), "sentinel.update_incident", {"incidentId": SIGNIN_INCIDENT, **params}, key="k"
    )
    assert outcome.status is Status.FAILED
    assert reason in outcome.reason
    assert sentinel_puts(cloud) == []


@pytest.mark.parametrize("retry_after", [1, None])
async def test_update_incident_absorbs_429(make_context: ContextFactory, cloud: CloudHandle, retry_after: int | None):
    spec: dict[str, Any] = {"match": "PUT */incidents/*", "status": 429, "count": 1}
    if retry_after:
        spec["retryAfter"] = retry_after
    cloud.add_fault(**spec)
    params = {"incidentId": SIGNIN_INCIDENT, "severity": "Low"}
    outcome = await executor.respond(make_context(), "sentinel.update_incident", params, key="k")
    assert outcome.status is Status.DONE, outcome.reason
    assert [r["status"] for r in sentinel_puts(cloud)] == [429, 200]
    assert state(cloud, SIGNIN_INCIDENT)["severity"] == "Low"
