"""Runs end to end: a payload in over HTTP through the local host, the queue-triggered worker on Azurite, the real
actions against the emulated cloud, the result visible in the tenant, on the incident and through the run API."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import httpx

from tests.conftest import CloudHandle
from tests.e2e.conftest import wait_for_run

SAMPLES = Path(__file__).resolve().parents[2] / "local" / "samples"
JSON = {"content-type": "application/json"}
ADELE = "1c9f2b8e-4a3d-4e6f-8b1c-2d3e4f5a6b01"
BREAKGLASS = "1c9f2b8e-4a3d-4e6f-8b1c-2d3e4f5a6b05"
SUB = "8c2b5f0e-3d4a-4b6c-9a1e-7f2d3c4b5a60"
ACCOUNT_INCIDENT = "3f6c2a9e-1b7d-4c5e-8a2f-0d9e8c7b6a51"


def post(client: httpx.Client, name: str, route: str = "/api/incidents", **kwargs: Any) -> httpx.Response:
    headers = {**JSON, **kwargs.pop("headers", {})}
    return client.post(route, content=(SAMPLES / name).read_bytes(), headers=headers, **kwargs)


def user(cloud: CloudHandle, object_id: str) -> dict[str, Any]:
    return next(u for u in cloud.tenant()["graph"]["users"] if u["id"] == object_id)


def incident(cloud: CloudHandle, guid: str) -> dict[str, Any]:
    return next(i for i in cloud.tenant()["sentinel"]["incidents"] if i["id"].lower().endswith(guid))


def writes_to(cloud: CloudHandle, fragment: str, method: str | None = None) -> list[dict[str, Any]]:
    return [w for w in cloud.changes() if fragment.lower() in w["path"].lower() and method in (None, w["method"])]


def step(run: dict[str, Any], step_id: str) -> dict[str, Any]:
    return next(s for s in run["steps"] if s["id"] == step_id)


def test_compromised_account_is_contained_and_written_back(client: httpx.Client, cloud: CloudHandle) -> None:
    response = post(client, "sentinel-incident-compromised-account.json", headers={"Idempotency-Key": "t-account-1"})
    assert response.status_code == 202, response.text
    assert response.headers["Location"].startswith("/api/runs/") and response.headers["Retry-After"]
    run = wait_for_run(client, response.headers["Location"])
    assert run["status"] == "succeeded", run["reason"]
    assert [step(run, s)["status"] for s in ("disable.0", "revoke.0", "confirm.0")] == ["done"] * 3
    assert step(run, "profile.0")["finding"]["data"]["userPrincipalName"] == "adele.vance@contoso.com"
    assert user(cloud, ADELE)["accountEnabled"] is False
    risky = next(r for r in cloud.tenant()["graph"]["riskyUsers"] if r["id"] == ADELE)
    assert risky["riskState"] == "confirmedCompromised"
    written = incident(cloud, ACCOUNT_INCIDENT)
    comments = [c["properties"]["message"] for c in written.get("comments", [])]
    summaries = [c for c in comments if "Riposte: compromised-account" in c]
    assert len(summaries) == 1 and "entra.disable_user" in summaries[0] and "<table>" in summaries[0]
    labels = [label["labelName"] for label in written["properties"]["labels"]]
    assert "riposte-account-contained" in labels and written["properties"]["status"] == "Active"

    # a redelivery gets the same run back and writes nothing again
    again = post(client, "sentinel-incident-compromised-account.json", headers={"Idempotency-Key": "t-account-1"})
    assert again.status_code == 200 and again.json()["status"] == "duplicate"
    assert [r["id"] for r in again.json()["runs"]] == [run["id"]]
    time.sleep(0.5)
    assert len(writes_to(cloud, f"/users/{ADELE}", "PATCH")) == 2  # disabled, and a new password required

    # rollback restores exactly the prior state: the account is enabled again
    rolled = client.post(f"/api/runs/{run['id']}/rollback")
    assert rolled.status_code == 202
    run = wait_for_run(client, f"/api/runs/{run['id']}")
    assert run["status"] == "rolled_back", run["reason"]
    assert step(run, "disable.0")["undo"]["status"] == "undone"
    assert user(cloud, ADELE)["accountEnabled"] is True
    # a second rollback is a no-op
    assert client.post(f"/api/runs/{run['id']}/rollback").status_code == 202
    run = wait_for_run(client, f"/api/runs/{run['id']}")
    assert len(writes_to(cloud, f"/users/{ADELE}", "PATCH")) == 3  # enabled again; the password change stays


def test_break_glass_account_is_protected(client: httpx.Client, cloud: CloudHandle) -> None:
    response = post(client, "sentinel-incident-breakglass-signin.json", headers={"Idempotency-Key": "t-breakglass"})
    run = wait_for_run(client, response.headers["Location"])
    disable = step(run, "disable.0")
    assert disable["status"] == "skipped" and "guardrail" in disable["reason"]
    assert "Break Glass" in disable["reason"] or "protected" in disable["reason"]
    assert user(cloud, BREAKGLASS)["accountEnabled"] is True
    assert writes_to(cloud, f"/users/{BREAKGLASS}") == []


def test_dry_run_writes_nothing(client: httpx.Client, cloud: CloudHandle) -> None:
    payload = json.loads((SAMPLES / "sentinel-incident-compromised-account.json").read_text())
    response = client.post(
        "/api/playbooks/compromised-account/runs",
        json={"incident": payload, "dryRun": True},
        headers={"Idempotency-Key": "t-dry"},
    )
    assert response.status_code == 202
    run = wait_for_run(client, response.headers["Location"])
    assert run["dryRun"] is True and run["status"] == "succeeded"
    outcomes = [step(run, s)["outcome"] for s in ("disable.0", "revoke.0", "confirm.0")]
    assert [o["status"] for o in outcomes] == ["dry_run"] * 3
    assert outcomes[0]["intended"] and outcomes[0]["prior"]
    assert cloud.changes() == []
    assert user(cloud, ADELE)["accountEnabled"] is True


def test_production_vm_waits_for_approval_then_is_isolated(client: httpx.Client, cloud: CloudHandle) -> None:
    response = post(client, "sentinel-incident-compromised-vm.json", headers={"Idempotency-Key": "t-vm-approve"})
    location = response.headers["Location"]
    run = wait_for_run(client, location, until=lambda r: step(r, "isolate.0")["status"] == "awaiting_approval")
    assert client.get(location).status_code == 202  # still active while it waits
    assert writes_to(cloud, "/networkInterfaces/") == []
    nothing = client.post(f"/api/runs/{run['id']}/approve", json={"step": "capture.0"})
    assert nothing.status_code == 409 and nothing.json()["error"]["code"] == "NothingAwaitsApproval"
    approved = client.post(f"/api/runs/{run['id']}/approve", json={"step": "isolate.0", "comment": "go"})
    assert approved.status_code == 200
    run = wait_for_run(client, location, until=lambda r: step(r, "isolate.0")["status"] == "done", timeout=60)
    decisions = step(run, "isolate.0")["approval"]["decisions"]
    assert decisions[0]["decision"] == "approve" and decisions[0]["comment"] == "go" and decisions[0]["by"]
    nic = next(r for r in cloud.tenant()["arm"]["resources"] if r["id"].lower().endswith("/nic-web-01"))
    assert "riposte-isolate" in nic["properties"]["networkSecurityGroup"]["id"]
    # the packet capture finishes by itself (its time limit) and its location is posted on the incident
    run = wait_for_run(client, location, timeout=60)
    assert run["status"] == "succeeded", run["reason"]
    capture = step(run, "capture.0")
    assert capture["status"] == "done" and capture["poll"]["last"]["done"] is True
    comments = [c["properties"]["message"] for c in incident(cloud, "3f6c2a9e-1b7d-4c5e-8a2f-0d9e8c7b6a52")["comments"]]
    assert any("packet capture on vm-web-01 finished" in c for c in comments)


def test_rejected_approval_skips_the_action(client: httpx.Client, cloud: CloudHandle) -> None:
    payload = json.loads((SAMPLES / "sentinel-incident-compromised-vm.json").read_text())
    response = client.post(
        "/api/playbooks/compromised-vm/runs", json={"incident": payload}, headers={"Idempotency-Key": "t-vm-reject"}
    )
    location = response.headers["Location"]
    run = wait_for_run(client, location, until=lambda r: step(r, "isolate.0")["status"] == "awaiting_approval")
    assert client.post(f"/api/runs/{run['id']}/reject", json={"comment": "false positive"}).status_code == 200
    run = wait_for_run(client, location, timeout=60)
    assert "false positive" in step(run, "isolate.0")["reason"] and step(run, "isolate.0")["status"] == "skipped"
    assert writes_to(cloud, "/networkInterfaces/") == []


def test_defender_alert_over_event_grid_runs_once(client: httpx.Client, cloud: CloudHandle) -> None:
    response = post(client, "defender-alert-eventgrid.json", "/api/events", headers={"aeg-event-type": "Notification"})
    assert response.status_code == 202
    [delivered] = response.json()["incidents"]
    [run_ref] = delivered["runs"]
    native = post(
        client,
        "defender-alert-eventgrid.json",
        "/runtime/webhooks/eventgrid",
        params={"functionName": "defender_alert"},
    )
    assert native.status_code == 202
    run = wait_for_run(client, f"/api/runs/{run_ref['id']}")
    assert run["playbook"] == "defender-alert" and run["status"] == "succeeded", run["reason"]
    assert step(run, "isolate.0")["status"] == "done"
    # no Sentinel incident: the outcome goes to the alert itself, resolved once the VM is contained
    assert step(run, "writeback")["status"] == "done"
    alert_name = "2517538088322968242_3b4d1f2e-6a5c-4e7d-9f8a-1b2c3d4e5f06"  # the sample's alert
    [alert] = [a for a in cloud.tenant()["arm"]["security"]["alerts"] if a["name"] == alert_name]
    assert alert["properties"]["status"] == "Resolved"
    listed = client.get("/api/runs", params={"limit": 200}).json()["value"]
    assert len([r for r in listed if r["id"] == run_ref["id"]]) == 1
    nics = [r for r in cloud.tenant()["arm"]["resources"] if "/nic-dev-02" in r["id"].lower()]
    assert len(nics) == 2 and all("riposte-isolate" in n["properties"]["networkSecurityGroup"]["id"] for n in nics)


def test_unknown_run_and_catalogue(client: httpx.Client) -> None:
    assert client.get("/api/runs/nope").status_code == 404
    catalogue = client.get("/api/playbooks").json()["value"]
    names = {p["name"] for p in catalogue}
    assert {"compromised-account", "compromised-vm", "malicious-ip", "defender-alert"} <= names
    account = next(p for p in catalogue if p["name"] == "compromised-account")
    disable = next(a for a in account["actions"] if a["name"] == "entra.disable_user")
    assert disable["destructive"] and disable["reversible"]
    assert any(p["name"] == "User.EnableDisableAccount.All" for p in disable["permissions"])
