"""Starting where analysts are: a manual run naming a Sentinel incident by its number or ARM id (Riposte reads the
incident, its entities and alerts from Sentinel), and the "Microsoft Sentinel entity" trigger body the relay forwards
when an analyst runs a playbook on one entity in the portal; both through the real HTTP path."""

from __future__ import annotations

import json
from typing import Any

import httpx

from tests.conftest import CloudHandle
from tests.e2e.conftest import ROOT, wait_for_run

SAMPLES = ROOT / "local" / "samples"
WORKSPACE = (
    "/subscriptions/8c2b5f0e-3d4a-4b6c-9a1e-7f2d3c4b5a60/resourceGroups/rg-soc/providers/"
    "Microsoft.OperationalInsights/workspaces/law-sentinel"
)
INCIDENT_1042 = f"{WORKSPACE}/providers/Microsoft.SecurityInsights/Incidents/3f6c2a9e-1b7d-4c5e-8a2f-0d9e8c7b6a51"


def started(client: httpx.Client, body: dict[str, Any], key: str) -> dict[str, Any]:
    response = client.post(
        "/api/playbooks/compromised-account/runs", json={**body, "dryRun": True}, headers={"Idempotency-Key": key}
    )
    assert response.status_code == 202, response.text
    return wait_for_run(client, response.headers["Location"])


def test_a_manual_run_names_the_incident_by_number_or_arm_id(client: httpx.Client, cloud: CloudHandle) -> None:
    by_number = started(client, {"incidentNumber": 1042}, "by-number")
    assert by_number["incidentArmId"].lower() == INCIDENT_1042.lower()
    assert by_number["incident"]["dialect"] == "sentinel.incident_resource"
    assert by_number["incident"]["incidentNumber"] == 1042
    assert any(e["kind"] == "Account" and e.get("aadUserId") for e in by_number["incident"]["entities"])
    assert by_number["incident"]["alerts"], "the incident's alerts were read too"
    by_id = started(client, {"incidentId": INCIDENT_1042, "workspace": WORKSPACE}, "by-id")
    assert by_id["incidentArmId"].lower() == INCIDENT_1042.lower() and by_id["status"] == "succeeded"


def test_a_manual_run_on_an_incident_sentinel_does_not_have_is_a_4xx(client: httpx.Client) -> None:
    route = "/api/playbooks/compromised-account/runs"
    missing = client.post(route, json={"incidentNumber": 987654})
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "IncidentNotFound"
    bad = client.post(route, json={"incidentId": "/subscriptions/x/not-an-incident"})
    assert bad.status_code == 400 and bad.json()["error"]["target"] == "incidentId"
    other = client.post(route, json={"incidentNumber": 1042, "workspace": "law-sentinel"})
    assert other.status_code == 400 and other.json()["error"]["target"] == "workspace"
    gone = INCIDENT_1042.rsplit("/", 1)[0] + "/00000000-0000-0000-0000-000000000000"
    assert client.post(route, json={"incidentId": gone}).status_code == 404


def test_the_entity_trigger_body_reaches_a_run_on_that_entity(client: httpx.Client, cloud: CloudHandle) -> None:
    body = json.loads((SAMPLES / "sentinel-entity-trigger-account.json").read_text())
    response = client.post(
        "/api/incidents",
        params={"playbook": "compromised-account", "dryRun": "true"},
        json=body,
        headers={"x-functions-key": client.headers["x-functions-key"]},
    )
    assert response.status_code == 202, response.text
    run = wait_for_run(client, response.headers["Location"])
    assert run["incident"]["dialect"] == "sentinel.entity_trigger"
    assert run["incidentArmId"] == body["IncidentArmID"]
    assert [e["kind"] for e in run["incident"]["entities"]] == ["Account"]
    assert run["status"] == "succeeded", run["reason"]
