"""A run whose queue message keeps failing ends in the poison queue: the run is marked failed with the reason, and the
incident gets a comment saying so. The failure here is a realistic one: a playbook changed under a waiting run (one of
its steps no longer exists), so every attempt to advance the run raises."""

from __future__ import annotations

import json
import time
from pathlib import Path

import httpx

from shared.azure.storage import RUNS_TABLE, WORK_QUEUE
from shared.store.runs import pack, unpack
from tests.conftest import CloudHandle
from tests.e2e.conftest import wait_for_run

SAMPLES = Path(__file__).resolve().parents[2] / "local" / "samples"
VM_INCIDENT = "3f6c2a9e-1b7d-4c5e-8a2f-0d9e8c7b6a52"


def test_a_message_that_keeps_failing_fails_the_run_and_says_so(
    client: httpx.Client, cloud: CloudHandle, azurite: str
) -> None:
    # Imported here: azure.storage.queue imports aiohttp, whose default SSL context is fixed at import; importing it
    # at collection would fix it before the emulated cloud's CA is trusted (see tests/conftest.py).
    from azure.data.tables import TableClient, UpdateMode
    from azure.storage.queue import QueueClient, TextBase64EncodePolicy

    response = client.post(
        "/api/incidents",
        content=(SAMPLES / "sentinel-incident-compromised-vm.json").read_bytes(),
        headers={"content-type": "application/json", "Idempotency-Key": "t-poison"},
    )
    location = response.headers["Location"]
    # wait until the run is idle: isolation awaits approval and the packet capture has finished
    steps = {"isolate.0": "awaiting_approval", "capture.0": "done"}
    run = wait_for_run(
        client, location, until=lambda r: all(s["status"] == steps.get(s["id"], s["status"]) for s in r["steps"])
    )
    # the playbook changed under the waiting run: its isolate step now names a step that no longer exists
    with TableClient.from_connection_string(azurite, RUNS_TABLE) as table:
        entity = table.get_entity(run["id"], "step|isolate.0")
        document = unpack(entity)
        document["step"] = "vanished"
        table.upsert_entity({**{k: v for k, v in entity.items()}, **pack(document)}, mode=UpdateMode.REPLACE)
    with QueueClient.from_connection_string(azurite, WORK_QUEUE, message_encode_policy=TextBase64EncodePolicy()) as q:
        q.send_message(json.dumps({"runId": run["id"], "reason": "test"}))
    deadline = time.monotonic() + 90
    while True:
        body = client.get(location).json()
        if body["status"] == "failed" or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    assert body["status"] == "failed", body["status"]
    assert body["reason"].startswith("gave up:") and "vanished" in body["reason"]
    # the run is marked failed first, then the incident is told: give the comment a moment to land
    deadline = time.monotonic() + 30
    while True:
        incident = next(i for i in cloud.tenant()["sentinel"]["incidents"] if i["id"].lower().endswith(VM_INCIDENT))
        comments = [c["properties"]["message"] for c in incident.get("comments", [])]
        told = any(f"Riposte run {run['id']}" in c and "failed and was stopped" in c for c in comments)
        if told or time.monotonic() > deadline:
            break
        time.sleep(0.3)
    assert told, comments
