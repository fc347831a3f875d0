"""identity.* (Entra ID Protection) against the emulated Graph through the real msgraph-sdk client: risky-user state,
risk detections, confirm compromised and dismiss, with their no-ops, dry runs, guardrails and 429s without
Retry-After (the way Identity Protection throttles)."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Any

from shared.actions import executor, registry
from shared.actions.model import Status
from tests.actions.conftest import ADELE, ALEX, BREAKGLASS, MEGAN, ContextFactory
from tests.conftest import CloudHandle

UNLIKELY_TRAVEL = "c4e6a8b0d2f4a6c8e0b2d4f6a8c0e2b4d6f8a0c2e4b6d8f0a2c4e6b8d0f2a4c6"  # Adele, detected 25 min ago


def risky_user(cloud: CloudHandle, user_id: str) -> dict[str, Any] | None:
    risky: list[dict[str, Any]] = cloud.tenant()["graph"]["riskyUsers"]
    return next((r for r in risky if r["id"] == user_id), None)


def parse_time(value: str) -> datetime:
    # Graph writes 7 fractional digits; fromisoformat takes at most 6.
    return datetime.fromisoformat(re.sub(r"(\.\d{6})\d+", r"\1", value).replace("Z", "+00:00"))


def graph_writes(cloud: CloudHandle) -> list[dict[str, Any]]:
    return [w for w in cloud.writes() if w["service"] == "graph"]


def account(user_id: str) -> dict[str, Any]:
    return {"aadUserId": user_id}


# ----------------------------------------------------------------------------------------------------------- enrichers


async def test_get_risky_user_reports_level_state_and_time(make_context: ContextFactory, cloud: CloudHandle):
    finding = await executor.enrich(make_context(), "identity.get_risky_user", account(ADELE))
    assert finding.ok, finding.error
    data = finding.data
    assert (data["found"], data["riskLevel"], data["riskState"], data["riskDetail"]) == (True, "high", "atRisk", "none")
    assert data["atRisk"] is True
    assert data["userPrincipalName"] == "adele.vance@contoso.com"
    recorded = risky_user(cloud, ADELE)["riskLastUpdatedDateTime"]  # type: ignore[index]
    assert parse_time(data["riskLastUpdatedDateTime"]) == parse_time(recorded)


async def test_get_risky_user_without_a_record_is_a_clean_result(make_context: ContextFactory, cloud: CloudHandle):
    finding = await executor.enrich(make_context(), "identity.get_risky_user", account(MEGAN))
    assert finding.ok, finding.error
    assert finding.data["found"] is False
    assert (finding.data["riskLevel"], finding.data["riskState"], finding.data["atRisk"]) == ("none", "none", False)
    assert [r["status"] for r in cloud.requests(service="graph")] == [404]


async def test_list_risk_detections_newest_first_with_their_spread(make_context: ContextFactory, cloud: CloudHandle):
    params = {**account(ADELE), "lookbackHours": 24}
    finding = await executor.enrich(make_context(), "identity.list_risk_detections", params)
    assert finding.ok, finding.error
    data = finding.data
    assert data["count"] == 3 and data["truncated"] is False
    assert [d["riskEventType"] for d in data["detections"]] == [
        "unlikelyTravel",
        "anonymizedIPAddress",
        "unfamiliarFeatures",
    ]
    first = data["detections"][0]
    assert (first["id"], first["ipAddress"], first["city"], first["countryOrRegion"], first["riskLevel"]) == (
        UNLIKELY_TRAVEL,
        "95.173.136.70",
        "Moscow",
        "RU",
        "high",
    )
    assert data["highestRiskLevel"] == "high"
    assert data["countries"] == ["RU", "DE", "NL"]
    assert data["ipAddresses"] == ["95.173.136.70", "185.220.101.47", "185.107.56.203"]
    query = cloud.requests(service="graph", path="/v1.0/identityProtection/riskDetections")[0]["query"]
    assert f"userId%20eq%20%27{ADELE}%27" in query and "detectedDateTime%20ge%20" in query


async def test_list_risk_detections_honours_the_lookback_and_the_cap(make_context: ContextFactory):
    ctx = make_context()
    recent = await executor.enrich(ctx, "identity.list_risk_detections", {**account(ADELE), "lookbackHours": 1})
    assert recent.ok, recent.error
    assert [d["id"] for d in recent.data["detections"]] == [UNLIKELY_TRAVEL]
    capped = await executor.enrich(
        ctx, "identity.list_risk_detections", {**account(ADELE), "lookbackHours": 24, "maxDetections": 2}
    )
    assert capped.ok, capped.error
    assert capped.data["count"] == 3 and capped.data["truncated"] is True
    assert [d["riskEventType"] for d in capped.data["detections"]] == ["unlikelyTravel", "anonymizedIPAddress"]
    assert capped.data["highestRiskLevel"] == "high"


async def test_list_risk_detections_reads_every_page_and_keeps_the_newest(
    make_context: ContextFactory, cloud: CloudHandle
):
    # riskDetections cannot be ordered by the service: 600 detections, oldest first, span two pages of 500, and the
    # newest are all on the second page.
    doc = cloud.tenant()
    now = datetime.now(UTC)
    for minutes in range(600, 0, -1):
        doc["graph"]["riskDetections"].append(
            {
                "userId": MEGAN,
                "riskEventType": "unfamiliarFeatures",
                "riskLevel": "low",
                "ipAddress": f"203.0.113.{minutes % 200}",
                "activityDateTime": (now - timedelta(minutes=minutes)).strftime("%Y-%m-%dT%H:%M:%SZ"),
            }
        )
    cloud.admin.put("/tenant", json=doc).raise_for_status()
    finding = await executor.enrich(
        make_context(), "identity.list_risk_detections", {**account(MEGAN), "lookbackHours": 24, "maxDetections": 5}
    )
    assert finding.ok, finding.error
    assert finding.data["count"] == 600 and finding.data["truncated"] is True
    assert [d["ipAddress"] for d in finding.data["detections"]] == [f"203.0.113.{m}" for m in range(1, 6)]
    pages = cloud.requests(service="graph", path="/v1.0/identityProtection/riskDetections")
    assert len(pages) == 2 and "skiptoken" in pages[1]["query"].lower()


async def test_list_risk_detections_failure_is_a_recorded_error(make_context: ContextFactory, cloud: CloudHandle):
    cloud.add_fault(match="GET /v1.0/identityProtection/riskDetections", status=500)
    finding = await executor.enrich(make_context(), "identity.list_risk_detections", account(ADELE))
    assert not finding.ok
    assert finding.error.startswith("graph 500 InternalServerError")


async def test_identity_protection_429_without_retry_after_is_absorbed(
    make_context: ContextFactory, cloud: CloudHandle
):
    cloud.add_fault(match="GET /v1.0/identityProtection/riskyUsers/*", status=429, count=2)
    finding = await executor.enrich(make_context(), "identity.get_risky_user", account(ALEX))
    assert finding.ok, finding.error
    assert finding.data["riskLevel"] == "medium"
    assert [r["status"] for r in cloud.requests(service="graph")] == [429, 429, 200]


# ------------------------------------------------------------------------------------------------- confirm compromised


async def test_confirm_compromised_changes_the_risk_once(make_context: ContextFactory, cloud: CloudHandle):
    ctx = make_context()
    outcome = await executor.respond(ctx, "identity.confirm_compromised", account(ALEX), key="run-1/confirm")
    assert outcome.status is Status.DONE, outcome.reason
    assert outcome.prior["riskState"] == "atRisk" and outcome.prior["riskLevel"] == "medium"
    risky = risky_user(cloud, ALEX)
    assert risky is not None
    assert (risky["riskState"], risky["riskLevel"], risky["riskDetail"]) == (
        "confirmedCompromised",
        "high",
        "adminConfirmedUserCompromised",
    )
    writes = graph_writes(cloud)
    assert [(w["path"], w["body"]) for w in writes] == [
        ("/v1.0/identityProtection/riskyUsers/confirmCompromised", {"userIds": [ALEX]})
    ]

    replay = await executor.respond(ctx, "identity.confirm_compromised", account(ALEX), key="run-1/confirm")
    assert replay == outcome
    repeat = await executor.respond(ctx, "identity.confirm_compromised", account(ALEX), key="run-2/confirm")
    assert repeat.status is Status.ALREADY_DONE
    assert repeat.reason == "the user is already confirmed compromised"
    assert len(graph_writes(cloud)) == 1


async def test_confirm_compromised_cannot_be_undone_and_says_why(make_context: ContextFactory, cloud: CloudHandle):
    ctx = make_context()
    outcome = await executor.respond(ctx, "identity.confirm_compromised", account(ALEX), key="k")
    undone = await executor.undo(ctx, outcome)
    assert undone.status is Status.SKIPPED
    assert "cannot put a confirmed-compromised user back to the prior risk state" in undone.reason
    assert "identity.dismiss_risk" in undone.reason
    assert len(graph_writes(cloud)) == 1
    assert risky_user(cloud, ALEX)["riskState"] == "confirmedCompromised"  # type: ignore[index]


async def test_confirm_compromised_of_a_user_with_no_risk_record(make_context: ContextFactory, cloud: CloudHandle):
    outcome = await executor.respond(make_context(), "identity.confirm_compromised", account(MEGAN), key="k")
    assert outcome.status is Status.DONE, outcome.reason
    assert outcome.prior == {"riskLevel": None, "riskState": None, "riskDetail": None, "riskLastUpdatedDateTime": None}
    assert risky_user(cloud, MEGAN)["riskState"] == "confirmedCompromised"  # type: ignore[index]


async def test_confirm_compromised_dry_run_writes_nothing(make_context: ContextFactory, cloud: CloudHandle):
    outcome = await executor.respond(make_context(dry_run=True), "identity.confirm_compromised", account(ALEX), key="k")
    assert outcome.status is Status.DRY_RUN
    assert outcome.intended == {"riskState": "confirmedCompromised", "riskLevel": "high"}
    assert "IdentityRiskyUser.ReadWrite.All" in {c.permission.name for c in outcome.permissions}
    assert cloud.writes() == []
    assert risky_user(cloud, ALEX)["riskState"] == "atRisk"  # type: ignore[index]


async def test_confirm_compromised_spares_the_breakglass_account(make_context: ContextFactory, cloud: CloudHandle):
    outcome = await executor.respond(make_context(), "identity.confirm_compromised", account(BREAKGLASS), key="k")
    assert outcome.status is Status.SKIPPED
    assert outcome.reason.startswith("guardrail: user Emergency Access 01 is protected by object id")
    assert cloud.writes() == []
    assert risky_user(cloud, BREAKGLASS)["riskState"] == "atRisk"  # type: ignore[index]  # looks compromised, untouched


async def test_confirm_compromised_absorbs_a_429_without_retry_after(make_context: ContextFactory, cloud: CloudHandle):
    cloud.add_fault(match="POST /v1.0/identityProtection/riskyUsers/confirmCompromised", status=429, count=1)
    outcome = await executor.respond(make_context(), "identity.confirm_compromised", account(ALEX), key="k")
    assert outcome.status is Status.DONE, outcome.reason
    assert [w["status"] for w in graph_writes(cloud)] == [429, 204]
    assert risky_user(cloud, ALEX)["riskState"] == "confirmedCompromised"  # type: ignore[index]


# ------------------------------------------------------------------------------------------------------------- dismiss


async def test_dismiss_risk_dismisses_once(make_context: ContextFactory, cloud: CloudHandle):
    ctx = make_context()
    outcome = await executor.respond(ctx, "identity.dismiss_risk", account(ADELE), key="run-1/dismiss")
    assert outcome.status is Status.DONE, outcome.reason
    assert outcome.prior["riskState"] == "atRisk" and outcome.prior["riskLevel"] == "high"
    risky = risky_user(cloud, ADELE)
    assert risky is not None and (risky["riskState"], risky["riskLevel"]) == ("dismissed", "none")
    detections = [d for d in cloud.tenant()["graph"]["riskDetections"] if d["userId"] == ADELE]
    assert {d["riskState"] for d in detections} == {"dismissed"}

    repeat = await executor.respond(ctx, "identity.dismiss_risk", account(ADELE), key="run-2/dismiss")
    assert repeat.status is Status.ALREADY_DONE
    assert repeat.reason == "nothing to dismiss: the risk state is dismissed"
    undone = await executor.undo(ctx, outcome)
    assert undone.status is Status.SKIPPED
    assert undone.reason.startswith("Identity Protection has no way to restore dismissed risk")
    assert [(w["path"], w["body"]) for w in graph_writes(cloud)] == [
        ("/v1.0/identityProtection/riskyUsers/dismiss", {"userIds": [ADELE]})
    ]


async def test_dismiss_risk_of_a_user_without_risk_writes_nothing(make_context: ContextFactory, cloud: CloudHandle):
    outcome = await executor.respond(make_context(), "identity.dismiss_risk", account(MEGAN), key="k")
    assert outcome.status is Status.ALREADY_DONE
    assert outcome.reason == "Identity Protection has no risk recorded for the user"
    assert cloud.writes() == []


async def test_dismiss_risk_dry_run_writes_nothing(make_context: ContextFactory, cloud: CloudHandle):
    outcome = await executor.respond(make_context(dry_run=True), "identity.dismiss_risk", account(ADELE), key="k")
    assert outcome.status is Status.DRY_RUN
    assert cloud.writes() == []
    assert risky_user(cloud, ADELE)["riskState"] == "atRisk"  # type: ignore[index]


def test_catalogue_describes_the_identity_actions():
    catalogue = registry.catalogue()
    confirm, dismiss = catalogue["identity.confirm_compromised"].spec, catalogue["identity.dismiss_risk"].spec
    assert (confirm.reversible, confirm.destructive) == (False, True) and confirm.undo_hint
    assert (dismiss.reversible, dismiss.destructive) == (False, False) and dismiss.undo_hint
    assert confirm.permissions[0].name == dismiss.permissions[0].name == "IdentityRiskyUser.ReadWrite.All"
    assert [p.name for p in catalogue["identity.get_risky_user"].spec.permissions] == ["IdentityRiskyUser.Read.All"]
    assert [p.name for p in catalogue["identity.list_risk_detections"].spec.permissions] == [
        "IdentityRiskEvent.Read.All"
    ]
