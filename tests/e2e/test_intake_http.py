"""Intake end to end: HTTP through the local functions host, as Sentinel's relay, Logic Apps and Event Grid call it."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.conftest import FIXTURES, PUBLISHED
from tests.e2e.conftest import FUNCTION_KEY

SAMPLES = Path(__file__).resolve().parents[2] / "local" / "samples"
JSON = {"content-type": "application/json"}
# Intake tests only check what intake answers: their runs are dry runs, so nothing they start changes the tenant
# under the other tests' feet.
DRY = {"dryRun": "true"}

INCIDENT_PAYLOADS = [
    PUBLISHED / "sentinel_trigger/incident_trigger_SYNTHETIC_composite.json",
    PUBLISHED / "sentinel_trigger/alert_trigger_SYNTHETIC_composite.json",
    PUBLISHED / "defender_for_cloud/workflow_automation_alert_sample_REPAIRED.json",
    PUBLISHED / "defender_for_cloud/alert_activity_log_event_sample.json",
    FIXTURES / "own/incident_trigger_real_capture_REPAIRED.json",
    *sorted(p for p in SAMPLES.glob("*.json") if not p.name.startswith("defender-")),
]
EXAMPLE_BODIES = [
    (PUBLISHED / "sentinel_rest/incidents_get_2024-03-01.json", "200"),
    (PUBLISHED / "sentinel_rest/incidents_createorupdate_2025-09-01.json", "201"),
    (PUBLISHED / "defender_for_cloud/alerts_get_subscription_location_2022-01-01.json", "200"),
]
EVENT_PAYLOADS = [
    PUBLISHED / "eventgrid/eventgrid_schema_blob_created.json",
    PUBLISHED / "eventgrid/eventgrid_schema_custom_topic.json",
    PUBLISHED / "eventgrid/resource_write_success.json",
    *sorted(SAMPLES.glob("defender-*eventgrid.json")),
]


def assert_error(response: httpx.Response, status: int, code: str, target: str | None = None) -> None:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    error = response.json()["error"]
    assert error["code"] == code and error["message"]
    assert set(error) == {"code", "message", "target"}
    if target is not None:
        assert error["target"] == target


@pytest.mark.parametrize("path", INCIDENT_PAYLOADS, ids=lambda p: p.name)
def test_every_incident_payload_is_accepted(client: httpx.Client, path: Path) -> None:
    response = client.post("/api/incidents", content=path.read_bytes(), headers=JSON, params=DRY)
    # 202 when playbooks run; 200 for a redelivery or when no playbook applies
    assert response.status_code in (200, 202), response.text
    assert response.json()["status"] in ("accepted", "duplicate", "no_playbook")
    incident = response.json()["incident"]
    payload = json.loads(path.read_text())
    if "Entity" in payload:  # the entity trigger: an incident of that entity, titled after it
        assert payload["Entity"]["properties"]["friendlyName"] in incident["title"]
        return
    title = (
        payload.get("object", payload.get("incident", {})).get("properties", {}).get("title")
        or payload.get("AlertDisplayName")
        or payload.get("eventName", {}).get("value")
    )
    assert incident["title"] == title


@pytest.mark.parametrize(("path", "status"), EXAMPLE_BODIES, ids=lambda v: getattr(v, "name", v))
def test_published_rest_examples_are_accepted(client: httpx.Client, path: Path, status: str) -> None:
    body = json.loads(path.read_text())["responses"][status]["body"]
    response = client.post("/api/incidents", json=body, params=DRY)
    assert response.status_code in (200, 202), response.text
    assert response.json()["incident"]["armId"] == body["id"]


@pytest.mark.parametrize("path", EVENT_PAYLOADS, ids=lambda p: p.name)
def test_event_grid_deliveries_are_accepted(client: httpx.Client, path: Path) -> None:
    response = client.post(
        "/api/events", content=path.read_bytes(), headers={**JSON, "aeg-event-type": "Notification"}, params=DRY
    )
    assert response.status_code == 202, response.text
    answer = response.json()
    events = json.loads(path.read_text())
    assert len(answer["incidents"]) + len(answer["ignored"]) == len(events)


def test_cloudevent_delivery(client: httpx.Client) -> None:
    path = SAMPLES / "defender-alert-cloudevent.json"
    response = client.post(
        "/api/events",
        content=path.read_bytes(),
        headers={"content-type": "application/cloudevents+json; charset=utf-8"},
    )
    assert response.status_code == 202
    [delivered] = response.json()["incidents"]
    incident = delivered["incident"]
    assert incident["envelope"] == "cloudevents"
    assert incident["deliveryId"] == json.loads(path.read_text())["id"]
    published = PUBLISHED / "eventgrid/cloudevents_1.0_blob_created.json"
    response = client.post(
        "/api/events", content=published.read_bytes(), headers={"content-type": "application/cloudevents+json"}
    )
    assert response.status_code == 202 and response.json()["ignored"][0]["eventType"] == "Microsoft.Storage.BlobCreated"


def test_event_grid_subscription_validation_handshake(client: httpx.Client) -> None:
    event = PUBLISHED / "eventgrid/subscription_validation_event.json"
    expected = json.loads((PUBLISHED / "eventgrid/subscription_validation_response.json").read_text())
    response = client.post(
        "/api/events", content=event.read_bytes(), headers={**JSON, "aeg-event-type": "SubscriptionValidation"}
    )
    assert response.status_code == 200  # Event Grid rejects 202 for the handshake
    assert response.json() == expected


def test_cloudevents_preflight(client: httpx.Client) -> None:
    response = client.options(
        "/api/events", headers={"WebHook-Request-Origin": "eventgrid.azure.net", "WebHook-Request-Rate": "120"}
    )
    assert response.status_code == 200
    assert response.headers["webhook-allowed-origin"] == "eventgrid.azure.net"
    assert response.headers["webhook-allowed-rate"] == "*"
    assert_error(client.options("/api/events"), 400, "MissingHeader", "WebHook-Request-Origin")


@pytest.mark.parametrize(
    "origin", ["attacker.example", "eventgrid.azure.net.attacker.example", "x.eventgrid.azure.net", "*"]
)
def test_cloudevents_preflight_allows_event_grid_only(client: httpx.Client, origin: str) -> None:
    response = client.options("/api/events", headers={"WebHook-Request-Origin": origin})
    assert_error(response, 403, "OriginNotAllowed", "WebHook-Request-Origin")
    assert (
        "webhook-allowed-origin" not in response.headers
        and "eventgrid.azure.net" in response.json()["error"]["message"]
    )
    same = client.options("/api/events", headers={"WebHook-Request-Origin": "EventGrid.Azure.NET"})
    assert same.status_code == 200 and same.headers["webhook-allowed-origin"] == "eventgrid.azure.net"


def test_native_event_grid_trigger(client: httpx.Client) -> None:
    webhook = "/runtime/webhooks/eventgrid"
    validation = (PUBLISHED / "eventgrid/subscription_validation_event.json").read_bytes()
    response = client.post(
        webhook,
        params={"functionName": "defender_alert"},
        content=validation,
        headers={**JSON, "aeg-event-type": "SubscriptionValidation"},
    )
    assert response.status_code == 200 and response.json()["validationResponse"]
    # a Low-severity copy under a new event id: accepted by the trigger, matched by no playbook, so nothing acts
    events = json.loads((SAMPLES / "defender-alert-eventgrid.json").read_text())
    events[0]["id"] = "native-trigger-test-event"
    events[0]["data"]["properties"]["severity"] = "Low"
    delivery = json.dumps(events).encode()
    response = client.post(
        webhook,
        params={"functionName": "defender_alert"},
        content=delivery,
        headers={**JSON, "aeg-event-type": "Notification"},
    )
    assert response.status_code == 202
    assert client.post(webhook, params={"functionName": "nope"}, content=delivery, headers=JSON).status_code == 404


def test_function_keys_are_enforced(anonymous: httpx.Client) -> None:
    body = (SAMPLES / "sentinel-incident-compromised-account.json").read_bytes()
    assert_error(anonymous.post("/api/incidents", content=body, headers=JSON), 401, "Unauthorized")
    wrong = anonymous.post("/api/incidents", content=body, headers={**JSON, "x-functions-key": "wrong"})
    assert_error(wrong, 401, "Unauthorized")
    by_query = anonymous.post("/api/incidents", params={"code": FUNCTION_KEY, **DRY}, content=body, headers=JSON)
    assert by_query.status_code in (200, 202)
    assert anonymous.get("/api/health").status_code == 200  # the one anonymous route
    webhook = anonymous.post("/runtime/webhooks/eventgrid", params={"functionName": "defender_alert"}, content=b"[]")
    assert_error(webhook, 401, "Unauthorized")


def test_wrong_method_and_unknown_route(client: httpx.Client) -> None:
    assert_error(client.get("/api/incidents"), 405, "MethodNotAllowed")
    assert_error(client.get("/api/nothing-here"), 404, "NotFound")


def _trigger() -> dict[str, Any]:
    payload: dict[str, Any] = json.loads((SAMPLES / "sentinel-incident-compromised-account.json").read_text())
    return payload


def _with(path: list[str | int], value: Any) -> bytes:
    payload = _trigger()
    node: Any = payload
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value
    return json.dumps(payload).encode()


def _without(path: list[str]) -> bytes:
    payload = _trigger()
    node: Any = payload
    for key in path[:-1]:
        node = node[key]
    del node[path[-1]]
    return json.dumps(payload).encode()


def _ips(n: int) -> list[dict[str, Any]]:
    return [{"id": f"e{i}", "kind": "Ip", "properties": {"address": f"10.0.{i // 256}.{i % 256}"}} for i in range(n)]


BAD_INPUTS = {
    "malformed JSON": (b'{"object": ', JSON, 400, "InvalidJson", "body"),
    "wrong type": (_with(["object", "properties", "title"], 42), JSON, 400, "InvalidValue", "object.properties.title"),
    "missing field": (
        _without(["object", "properties", "severity"]),
        JSON,
        400,
        "MissingField",
        "object.properties.severity",
    ),
    "unknown schema": (b'{"hello": "world"}', JSON, 400, "UnknownSchema", "body"),
    "over the size limit": (b'{"pad": "' + b"x" * (1 << 20) + b'"}', JSON, 413, "PayloadTooLarge", "body"),
    "too many entities": (
        _with(["object", "properties", "relatedEntities"], _ips(501)),
        JSON,
        400,
        "TooManyEntities",
        "object.properties.relatedEntities",
    ),
    "deeply nested": (b'{"a": ' + b"[" * 5000 + b"]" * 5000 + b"}", JSON, 400, "JsonTooDeep", "body"),
    "not UTF-8": ('{"title": "caf\u00e9"}'.encode("latin-1"), JSON, 400, "InvalidEncoding", "body"),
    "wrong content type": (b"{}", {"content-type": "text/plain"}, 415, "UnsupportedMediaType", "Content-Type"),
    "no content type": (b"{}", {}, 415, "UnsupportedMediaType", "Content-Type"),
    "empty body": (b"", JSON, 400, "EmptyBody", "body"),
    "an Event Grid array": (
        (PUBLISHED / "eventgrid/eventgrid_schema_blob_created.json").read_bytes(),
        JSON,
        400,
        "UseEventsEndpoint",
        "body",
    ),
}


def _run_count(client: httpx.Client) -> int:
    return len(client.get("/api/runs", params={"limit": 500}).json()["value"])


@pytest.mark.parametrize("case", list(BAD_INPUTS), ids=str)
def test_bad_input_gets_a_clear_4xx(client: httpx.Client, case: str) -> None:
    body, headers, status, code, target = BAD_INPUTS[case]
    before = _run_count(client)
    assert_error(client.post("/api/incidents", content=body, headers=headers), status, code, target)
    assert _run_count(client) == before  # nothing persisted


@pytest.mark.parametrize(
    "case", ["malformed JSON", "over the size limit", "deeply nested", "not UTF-8", "wrong content type"], ids=str
)
def test_bad_input_on_the_events_route(client: httpx.Client, case: str) -> None:
    body, headers, status, code, target = BAD_INPUTS[case]
    assert_error(client.post("/api/events", content=body, headers=headers), status, code, target)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    body=st.one_of(st.binary(max_size=200), st.text(max_size=200).map(str.encode)),
    route=st.sampled_from(["/api/incidents", "/api/events"]),
    content_type=st.sampled_from(["application/json", "application/cloudevents+json", "text/plain"]),
)
def test_endpoints_never_answer_5xx(client: httpx.Client, body: bytes, route: str, content_type: str) -> None:
    response = client.post(route, content=body, headers={"content-type": content_type})
    assert response.status_code < 500
    if response.status_code >= 400:
        assert set(response.json()["error"]) == {"code", "message", "target"}
