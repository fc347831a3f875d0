"""Telemetry on the real path.

- A run through the functions host logs JSON lines that carry its runId (and each step's id), and no token, key,
  signature or AccountKey reaches host.log, even when the service's error message echoes them back.
- Spans: one for the run, one per step under it, and the SDKs' API call spans under the steps (the real service code
  and SDK clients against Azurite and the emulated cloud, into an in-memory exporter).
- Bad settings: the app still starts, health names the setting, and a route answers 503 with the message."""

from __future__ import annotations

import json
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from local.cloud.identity import issue_token
from shared.intake import normalise
from shared.playbook.loader import bundled_playbooks
from shared.service import Service
from shared.store.runs import RunStore
from tests.actions.conftest import ADELE, cloud_settings
from tests.conftest import CloudHandle
from tests.e2e.conftest import FUNCTION_KEY, ROOT, Host, free_port, wait_for_run

SAMPLES = ROOT / "local" / "samples"
ACCOUNT_SAMPLE = SAMPLES / "sentinel-incident-compromised-account.json"
SIGNATURE = "c2FzLXNpZ25hdHVyZS1vZi1hLWNhcHR1cmU%3D"
CLIENT_SECRET = "Kx8Q~client.secret-value_42"


def account_key(connection_string: str) -> str:
    return next(part.split("=", 1)[1] for part in connection_string.split(";") if part.startswith("AccountKey="))


def new_log_lines(path: Path, offset: int) -> str:
    with path.open("rb") as log:
        log.seek(offset)
        return log.read().decode("utf-8", errors="replace")


def json_lines(text: str) -> list[dict[str, Any]]:
    found = []
    for line in text.splitlines():
        try:
            document = json.loads(line)
        except ValueError:
            continue
        if isinstance(document, dict):
            found.append(document)
    return found


def test_a_run_logs_its_context_and_no_secret_reaches_the_log(host: Host, client: httpx.Client, cloud: CloudHandle):
    offset = host.log_path.stat().st_size
    token, _ = issue_token("https://graph.microsoft.com", claims={"oid": ADELE})  # a token the cloud accepts
    storage_key = account_key(host.env["AzureWebJobsStorage"])
    # Graph refuses to disable the user with an error that echoes every kind of secret back, as careless services do.
    echoed = (
        f"Insufficient privileges. Request: Authorization: Bearer {token}; x-functions-key: {FUNCTION_KEY}; "
        f"evidence at https://st.blob.core.windows.net/c/x.cap?sv=2024-05-04&sr=b&sig={SIGNATURE}; "
        f"storage DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;AccountKey={storage_key}; "
        f"client_secret={CLIENT_SECRET}"
    )
    fault = {"match": "PATCH /v1.0/users/*", "status": 403, "code": "Authorization_RequestDenied", "message": echoed}
    cloud.admin.post("/faults", json=fault).raise_for_status()

    response = client.post(
        "/api/incidents",
        content=ACCOUNT_SAMPLE.read_bytes(),
        headers={"content-type": "application/json", "Idempotency-Key": f"telemetry-{uuid.uuid4()}"},
    )
    assert response.status_code == 202, response.text
    run = wait_for_run(client, response.headers["Location"])
    disable = next(s for s in run["steps"] if s["id"] == "disable.0")
    assert disable["status"] == "failed" and "Insufficient privileges" in disable["reason"]

    deadline = time.monotonic() + 10  # the worker logs the run's end just after its last checkpoint
    while True:
        text = new_log_lines(host.log_path, offset)
        lines = [line for line in json_lines(text) if line.get("runId") == run["id"]]
        if any(line["message"].startswith(f"run {run['id']} failed") for line in lines) or time.monotonic() > deadline:
            break
        time.sleep(0.1)

    for secret in (token, token.split(".")[2], FUNCTION_KEY, SIGNATURE, storage_key, CLIENT_SECRET):
        assert secret not in text
    assert all({"time", "level", "logger", "message"} <= set(line) for line in lines)
    assert all(line["playbook"] == "compromised-account" and line["incidentId"] for line in lines)
    failure = next(line for line in lines if line.get("step") == "disable.0" and line["level"] == "WARNING")
    assert "Insufficient privileges" in failure["message"] and failure["message"].count("[REDACTED]") >= 5
    logged_steps = {line.get("step") for line in lines}
    assert {s["id"] for s in run["steps"] if s["status"] in ("done", "failed", "skipped")} <= logged_steps
    assert any(line["message"].startswith(f"run {run['id']} failed") for line in lines)


# --------------------------------------------------------------------------------------------------- spans


@pytest.fixture
def spans() -> Iterator[Any]:
    """An in-memory exporter behind the global tracer provider, and azure-core's tracing on, for one test."""
    from azure.core.settings import settings
    from opentelemetry import trace
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
    from opentelemetry.util._once import Once

    from shared import telemetry

    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    trace.set_tracer_provider(provider)
    was_tracing = settings.tracing_enabled()
    telemetry.enable_sdk_tracing()
    yield exporter
    settings.tracing_enabled = was_tracing
    provider.shutdown()
    # OpenTelemetry sets the global provider once per process; put it back as it was for the tests that follow.
    trace._TRACER_PROVIDER_SET_ONCE = Once()
    trace._TRACER_PROVIDER = None


async def test_spans_nest_api_calls_under_steps_under_the_run(azurite: str, cloud: CloudHandle, spans: Any):
    from shared.azure.storage import StorageConnection
    from shared.service import azure_clients

    settings = cloud_settings(cloud)
    store = RunStore(StorageConnection(azurite, None, None))
    try:
        await store.ensure()
        service = Service(settings, store)
        incident = normalise(json.loads(ACCOUNT_SAMPLE.read_text()), max_entities=settings.max_entities)
        # Created, not queued: the session's functions host listens on the same queue; this test runs it here.
        playbook = bundled_playbooks()["compromised-account"]
        run = service.new_run(playbook, incident, key=None, dry_run=False, requested_by="test")
        assert await store.create(run)
        await service.process(run.id)
        finished = await service.get(run.id)
    finally:
        await store.close()
        await azure_clients(settings).close()
    assert finished is not None and finished.status.value == "succeeded", finished and finished.reason

    recorded = spans.get_finished_spans()
    by_id = {s.context.span_id: s for s in recorded}
    (run_span,) = [s for s in recorded if s.name == "riposte.run"]
    assert run_span.attributes["riposte.run.id"] == run.id
    assert run_span.attributes["riposte.playbook"] == "compromised-account"
    assert run_span.attributes["riposte.status"] == "succeeded"
    step_spans = [s for s in recorded if s.name.startswith("riposte.step ")]
    assert {s.attributes["riposte.step.id"] for s in step_spans} == {s.id for s in finished.steps}
    assert all(s.parent is not None and s.parent.span_id == run_span.context.span_id for s in step_spans)

    def step_of(span: Any) -> str | None:
        """The id of the step span this span is nested under, however deep."""
        while span.parent is not None:
            span = by_id.get(span.parent.span_id)
            if span is None:
                return None
            if span.name.startswith("riposte.step "):
                return str(span.attributes["riposte.step.id"])
        return None

    api_calls = [s for s in recorded if s.instrumentation_scope.name != "riposte" and step_of(s) is not None]
    by_step: dict[str, set[str]] = {}
    for call in api_calls:
        by_step.setdefault(step_of(call) or "", set()).add(call.instrumentation_scope.name)
    kiota = "com.microsoft.com:microsoft-kiota-http-httpx"
    assert kiota in by_step["profile.0"] and kiota in by_step["disable.0"]  # Microsoft Graph, through kiota's spans
    arm = [s for s in api_calls if s.attributes.get("url.full", "").startswith(settings.arm_endpoint)]
    assert {step_of(s) for s in arm} >= {"writeback"}  # the Sentinel comment, through azure-core's spans
    assert any(s.attributes.get("http.response.status_code") == 200 for s in arm)
    logs = [s for s in api_calls if s.attributes.get("url.full", "").startswith(settings.loganalytics_endpoint)]
    assert {step_of(s) for s in logs} >= {"signins.0"}  # the KQL query, through azure-core's spans


# --------------------------------------------------------------------------------------------------- settings


def test_bad_settings_answer_503_naming_the_setting(host: Host) -> None:
    """Its own host, started with a bad value: the app loads, health and every route say which setting is wrong."""
    env = {**host.env, "RIPOSTE_HOST_PORT": str(free_port()), "RIPOSTE_MAX_ENTITIES": "lots"}
    port = env["RIPOSTE_HOST_PORT"]
    log_path = Path(env["RIPOSTE_STATE_DIR"]) / f"host-{port}.log"
    with log_path.open("ab") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "local.host"], cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT
        )
    try:
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 30
        while True:
            try:
                health = httpx.get(f"{url}/api/health", timeout=1)
                break
            except httpx.HTTPError:
                assert process.poll() is None and time.monotonic() < deadline, log_path.read_text()[-3000:]
                time.sleep(0.1)
        assert health.status_code == 503
        assert "RIPOSTE_MAX_ENTITIES" in health.json()["problems"][0]
        headers = {"x-functions-key": FUNCTION_KEY, "content-type": "application/json"}
        for method, route in (("POST", "/api/incidents"), ("GET", "/api/playbooks"), ("GET", "/api/runs")):
            response = httpx.request(method, f"{url}{route}", headers=headers, content=b"{}", timeout=10)
            assert response.status_code == 503, (route, response.text)
            error = response.json()["error"]
            assert error["code"] == "InvalidSetting" and error["target"] == "RIPOSTE_MAX_ENTITIES"
            assert "RIPOSTE_MAX_ENTITIES" in error["message"] and "'lots'" in error["message"]
    finally:
        process.terminate()
        process.wait(timeout=10)
    assert "Traceback" not in log_path.read_text()
