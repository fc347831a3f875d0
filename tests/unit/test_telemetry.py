"""Telemetry without the cloud: the JSON log line, the run context on every record (concurrent steps included), the
redaction of every kind of secret, and what `configure` exports with and without Application Insights.

The end-to-end proofs (a real run through the host leaves no secret in its log; spans nest run > step > API call)
are in tests/e2e/test_telemetry.py."""

from __future__ import annotations

import asyncio
import io
import json
import logging
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from shared import telemetry

ROOT = Path(__file__).resolve().parents[2]
JWT = (
    "eyJhbGciOiJSUzI1NiIsInR5cCI6IkpXVCJ9.eyJhdWQiOiJodHRwczovL2dyYXBoLm1pY3Jvc29mdC5jb20iLCJvaWQiOiIxMjMifQ."
    "c2lnbmF0dXJlLW9mLXRoZS10b2tlbg"
)
ACCOUNT_KEY = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="


@pytest.fixture
def captured() -> Iterator[tuple[logging.Logger, io.StringIO]]:
    """A logger set up exactly as `configure` sets up the root logger, writing to a buffer."""
    logger = logging.Logger("riposte.test")
    stream = io.StringIO()
    logger.addHandler(logging.StreamHandler(stream))
    telemetry.configure_logging(logger)
    yield logger, stream


def lines(stream: io.StringIO) -> list[dict[str, Any]]:
    return [json.loads(line) for line in stream.getvalue().splitlines()]


# --------------------------------------------------------------------------------------------------- the log line


def test_each_line_is_one_json_object_with_the_run_context(captured: tuple[logging.Logger, io.StringIO]) -> None:
    logger, stream = captured
    logger.info("before the run")
    with telemetry.run_scope("run-1", incident_id="/subscriptions/s/incidents/i-1", playbook="compromised-account"):
        logger.info("run %s started", "run-1")
        with telemetry.step_scope("disable.0", uses="entra.disable_user", kind="action"):
            logger.warning("step failed", extra={"status": "failed"})
        logger.info("run finished")
    before, started, step, finished = lines(stream)
    assert set(before) == {"time", "level", "logger", "message"}
    assert before["level"] == "INFO" and before["logger"] == "riposte.test" and before["time"].endswith("Z")
    assert started["message"] == "run run-1 started"
    run_fields = {"runId": "run-1", "incidentId": "/subscriptions/s/incidents/i-1", "playbook": "compromised-account"}
    assert started.items() >= run_fields.items() and "step" not in started
    assert step.items() >= {**run_fields, "step": "disable.0", "status": "failed", "level": "WARNING"}.items()
    assert finished.items() >= run_fields.items() and "step" not in finished


async def test_concurrent_steps_each_keep_their_own_step(captured: tuple[logging.Logger, io.StringIO]) -> None:
    logger, stream = captured

    async def step(step_id: str) -> None:
        with telemetry.step_scope(step_id, uses="entra.get_user", kind="enrich"):
            for n in range(3):
                logger.info("%s working %d", step_id, n)
                await asyncio.sleep(0)  # interleave with the other step

    with telemetry.run_scope("run-2", playbook="p"):
        await asyncio.gather(step("profile.0"), step("profile.1"))
    found = lines(stream)
    assert len(found) == 6
    assert {line["message"].split()[0] for line in found} == {"profile.0", "profile.1"}
    assert all(line["step"] == line["message"].split()[0] and line["runId"] == "run-2" for line in found)


def test_an_exception_is_structured_and_redacted(captured: tuple[logging.Logger, io.StringIO]) -> None:
    logger, stream = captured
    try:
        raise PermissionError(f"token rejected: Authorization: Bearer {JWT}")
    except PermissionError:
        logger.exception("call failed")
    (line,) = lines(stream)
    exception = line["exception"]
    assert exception["type"] == "PermissionError"
    assert "token rejected" in exception["message"] and "Traceback" in exception["stack"]
    assert JWT not in stream.getvalue() and JWT.split(".")[2] not in stream.getvalue()
    assert "[REDACTED]" in exception["message"] and "[REDACTED]" in exception["stack"]


# --------------------------------------------------------------------------------------------------- redaction

SECRETS = [
    pytest.param(f"Authorization: Bearer {JWT}", JWT.split(".")[2], id="authorization-header"),
    pytest.param("Authorization: Bearer opaque-access-token-1234", "opaque-access-token-1234", id="opaque-bearer"),
    pytest.param(f"received {JWT} from the identity endpoint", JWT.split(".")[1], id="bare-jwt"),
    pytest.param("x-functions-key: Qm9vbS1mdW5jdGlvbi1rZXk", "Qm9vbS1mdW5jdGlvbi1rZXk", id="function-key-header"),
    pytest.param("{'x-functions-key': 'k3y-1n-a-d1ct'}", "k3y-1n-a-d1ct", id="function-key-in-a-dict"),
    pytest.param("POST https://riposte.example/api/incidents?code=c0de-v4lue&x=1", "c0de-v4lue", id="code-query"),
    pytest.param(
        "https://st.blob.core.windows.net/captures/x.cap?sv=2024-05-04&se=2030-01-01&sr=b&sp=r&sig=S1g%2Bn4ture%3D",
        "S1g%2Bn4ture%3D",
        id="sas-signature",
    ),
    pytest.param(
        f"DefaultEndpointsProtocol=https;AccountName=st;AccountKey={ACCOUNT_KEY};EndpointSuffix=core.windows.net",
        ACCOUNT_KEY[:40],
        id="account-key",
    ),
    pytest.param('{"client_secret": "cl13nt-s3cr3t~value"}', "cl13nt-s3cr3t~value", id="client-secret-json"),
    pytest.param("grant_type=client_credentials&client_secret=f0rm-s3cr3t", "f0rm-s3cr3t", id="client-secret-form"),
    pytest.param("Authorization: SharedKey devstoreaccount1:c2lnbmVk+/c2ln=", "c2lnbmVk+/c2ln=", id="shared-key"),
    pytest.param("https://relay:p4ssw0rd-in-url@hooks.example.com/x", "p4ssw0rd-in-url", id="url-password"),
    pytest.param(f"storage key {ACCOUNT_KEY} rotated", ACCOUNT_KEY[10:50], id="bare-account-key"),
    pytest.param("X-MS-TOKEN-AAD-ACCESS-TOKEN: aad-access-t0ken", "aad-access-t0ken", id="easyauth-token-header"),
]


@pytest.mark.parametrize(("text", "secret"), SECRETS)
def test_secrets_are_redacted_from_messages_arguments_and_extra_fields(
    captured: tuple[logging.Logger, io.StringIO], text: str, secret: str
) -> None:
    assert secret in text
    assert secret not in telemetry.redact(text) and "[REDACTED]" in telemetry.redact(text)
    logger, stream = captured
    logger.info(text)  # in the message
    logger.info("the service answered: %s", text)  # in an argument
    logger.info("response", extra={"detail": text, "headers": {"value": text}})  # in extra fields
    output = stream.getvalue()
    assert secret not in output
    assert output.count("[REDACTED]") >= 4


def test_values_under_a_secret_name_are_redacted_whole(captured: tuple[logging.Logger, io.StringIO]) -> None:
    logger, stream = captured
    headers = {"x-functions-key": "abc", "Authorization": "xyz", "client_secret": "s", "Content-Type": "text/plain"}
    logger.info("request", extra={"headers": headers})
    (line,) = lines(stream)
    assert line["headers"] == {
        "x-functions-key": "[REDACTED]",
        "Authorization": "[REDACTED]",
        "client_secret": "[REDACTED]",
        "Content-Type": "text/plain",
    }


def test_the_values_of_secret_settings_are_redacted_wherever_they_appear(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(telemetry, "_known_secrets", ())  # what this test teaches is forgotten after it
    env = {
        "RIPOSTE_FUNCTION_KEY": "plain-words-function-key",  # no pattern would recognise this shape
        "AzureWebJobsStorage": f"DefaultEndpointsProtocol=http;AccountName=dev;AccountKey={ACCOUNT_KEY};",
        "IDENTITY_HEADER": "local-identity-header-value",
        "RIPOSTE_NOTIFY_WEBHOOK_URL": "https://prod.westus.logic.azure.com/workflows/abc/triggers/manual/run",
        "RIPOSTE_MAX_ENTITIES": "500000000",  # not a secret: stays readable
    }
    telemetry.remember_secrets(env)
    for name in ("RIPOSTE_FUNCTION_KEY", "IDENTITY_HEADER", "RIPOSTE_NOTIFY_WEBHOOK_URL"):
        assert telemetry.redact(f"value: {env[name]} .") == "value: [REDACTED] ."
    assert ACCOUNT_KEY not in telemetry.redact(f"key {ACCOUNT_KEY}")
    assert telemetry.redact("limit 500000000") == "limit 500000000"


@pytest.mark.parametrize(
    "text",
    [
        "run 6f1c3a9e-2b7d-4c5e-8a2f-0d9e8c7b6a51 succeeded",
        "/subscriptions/8c2b5f0e-3d4a-4b6c-9a1e-7f2d3c4b5a60/resourceGroups/rg-prod-web/providers/"
        "Microsoft.Compute/virtualMachines/vm-web-01",
        "adele.vance@contoso.com signed in from 203.0.113.7",
        "sha256 e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
        "step disable.0 (entra.disable_user) failed: Forbidden (code: Authorization_RequestDenied)",
        "dedup key: delivery:evt-123 already seen",
        "token_type: Bearer",
    ],
)
def test_ordinary_text_is_left_alone(text: str) -> None:
    assert telemetry.redact(text) == text


# --------------------------------------------------------------------------------------------------- exporting


def run_python(code: str, env: dict[str, str]) -> dict[str, Any]:
    result = subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        env={"PATH": "/usr/bin:/bin", "APPLICATIONINSIGHTS_STATSBEAT_DISABLED_ALL": "true", **env},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    found: dict[str, Any] = json.loads(result.stdout.splitlines()[-1])
    return found


PROBE = """
import json, logging, sys
from shared import telemetry
telemetry.configure()
logging.getLogger("riposte.probe").info("configured")
from opentelemetry import trace
from azure.core.settings import settings
provider = trace.get_tracer_provider()
processors = getattr(getattr(provider, "_active_span_processor", None), "_span_processors", ())
exporters = [type(getattr(p, "span_exporter", None)).__name__ for p in processors]
credentials = [type(getattr(getattr(p, "span_exporter", None), "_credential", None)).__name__ for p in processors]
handlers = logging.getLogger().handlers
print(json.dumps({
    "monitor_loaded": "azure.monitor.opentelemetry" in sys.modules,
    "provider": type(provider).__name__,
    "exporters": exporters,
    "credentials": credentials,
    "handlers": [type(h).__name__ for h in handlers],
    "filtered": all({"AddContext", "RedactSecrets"} <= {type(f).__name__ for f in h.filters} for h in handlers),
    "sdk_tracing": settings.tracing_enabled(),
}))
"""


def test_without_a_connection_string_nothing_is_exported() -> None:
    found = run_python(PROBE, {})
    assert found["monitor_loaded"] is False  # the distro is not even imported
    assert found["provider"] == "ProxyTracerProvider" and found["exporters"] == []  # spans are non-recording
    assert found["handlers"] == ["StreamHandler"] and found["filtered"] is True
    assert found["sdk_tracing"] is True  # the SDKs' spans are on, so an exporter set up later sees them


def test_with_a_connection_string_logs_and_traces_go_to_azure_monitor() -> None:
    connection = (
        "InstrumentationKey=00000000-0000-0000-0000-000000000000;IngestionEndpoint=https://127.0.0.1:9/;"
        "LiveEndpoint=https://127.0.0.1:9/"
    )
    # The deployment's Entra ID ingestion: the exporter signs in as the app's user-assigned managed identity.
    authentication = "ClientId=00000000-0000-0000-0000-000000000001;Authorization=AAD"
    found = run_python(
        PROBE,
        {
            "APPLICATIONINSIGHTS_CONNECTION_STRING": connection,
            "APPLICATIONINSIGHTS_AUTHENTICATION_STRING": authentication,
        },
    )
    assert found["monitor_loaded"] is True
    assert found["provider"] == "TracerProvider"
    assert "AzureMonitorTraceExporter" in found["exporters"]
    assert "ManagedIdentityCredential" in found["credentials"]
    # The OpenTelemetry log handler exports to Application Insights, behind the same context and redaction filters.
    assert "LoggingHandler" in found["handlers"] and found["filtered"] is True


def test_a_distro_the_functions_worker_configured_is_not_configured_twice() -> None:
    """With PYTHON_APPLICATIONINSIGHTS_ENABLE_TELEMETRY the worker calls configure_azure_monitor before our code."""
    already = (
        "from opentelemetry import trace\n"
        "from opentelemetry.sdk.trace import TracerProvider\n"
        "trace.set_tracer_provider(TracerProvider())\n"
    )
    connection = "InstrumentationKey=00000000-0000-0000-0000-000000000000;IngestionEndpoint=https://127.0.0.1:9/"
    found = run_python(already + PROBE, {"APPLICATIONINSIGHTS_CONNECTION_STRING": connection})
    assert found["monitor_loaded"] is False and found["exporters"] == []  # the worker's provider, left as it was
    assert found["provider"] == "TracerProvider" and found["filtered"] is True
