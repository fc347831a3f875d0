"""Bad input over HTTP through the local host: forged token headers, numbers past what Python parses, lone surrogates.
Each gets a 4xx with our JSON error, and nothing is persisted (run headers and delivery records are counted in
Azurite before and after)."""

from __future__ import annotations

import base64
import json
import sys
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.e2e.conftest import FUNCTION_KEY, ROOT
from tests.e2e.test_intake_http import assert_error

sys.path.insert(0, str(ROOT / "bench"))  # the bench scripts import each other as top-level modules
from fuzz import count_persisted

SAMPLES = ROOT / "local" / "samples"
KEY = {"x-functions-key": FUNCTION_KEY}
MANUAL = "/api/playbooks/compromised-vm/runs"


def _segment(document: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(document).encode()).rstrip(b"=").decode()


def forged_token(header: dict[str, Any]) -> str:
    claims = {"aud": "x", "iss": "x", "tid": "x", "exp": 4102444800, "iat": 0}
    return f"{_segment(header)}.{_segment(claims)}.{_segment({'not': 'a signature'})}"


def incident(event_id: str, **properties: Any) -> dict[str, Any]:
    """The compromised-VM trigger (its playbook matches) under a fresh delivery id, with properties overridden."""
    body: dict[str, Any] = json.loads((SAMPLES / "sentinel-incident-compromised-vm.json").read_text())
    body["eventUniqueId"] = event_id
    body["object"]["properties"].update(properties)
    return body


@pytest.fixture
def unchanged_storage(azurite: str) -> Iterator[None]:
    before = count_persisted(azurite)
    yield
    assert count_persisted(azurite) == before


BAD_HEADERS = {
    "kid is a number": {"alg": "RS256", "typ": "JWT", "kid": 12345},
    "kid is a list": {"alg": "RS256", "typ": "JWT", "kid": ["a"]},
    "crit names an extension": {"alg": "RS256", "typ": "JWT", "kid": "k", "crit": ["exp"]},
    "crit is not a list": {"alg": "RS256", "typ": "JWT", "kid": "k", "crit": "b64"},
    "crit is empty": {"alg": "RS256", "typ": "JWT", "kid": "k", "crit": []},
}
ANALYST_CALLS = [
    ("GET", "/api/runs", None),
    ("GET", "/api/playbooks", None),
    ("POST", MANUAL, {"entities": [], "dryRun": True}),
    ("POST", "/api/runs/no-such-run/approve", {}),
]


@pytest.mark.parametrize("header", BAD_HEADERS.values(), ids=BAD_HEADERS.keys())
@pytest.mark.parametrize(("method", "path", "body"), ANALYST_CALLS, ids=[f"{m} {p}" for m, p, _ in ANALYST_CALLS])
def test_a_token_header_pyjwt_refuses_is_a_401(
    host_url: str, unchanged_storage: None, header: dict[str, Any], method: str, path: str, body: Any
) -> None:
    headers = KEY | {"authorization": f"Bearer {forged_token(header)}"}
    response = httpx.request(method, f"{host_url}{path}", headers=headers, json=body, timeout=30)
    assert_error(response, 401, "InvalidToken", "Authorization")
    assert 'error="invalid_token"' in response.headers["www-authenticate"]


HUGE = "1" + "0" * 4300  # one digit more than int() parses by default


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/api/incidents", json.dumps(incident("huge-number")).replace('"incidentNumber": 1043', f'"x": {HUGE}')),
        ("/api/incidents", f'{{"n": [{HUGE}]}}'),
        ("/api/events", f'[{{"id": "huge", "eventType": "x", "data": {{"n": -{HUGE}}}}}]'),
        ("/api/incidents", json.dumps(incident("not-a-number")).replace('"incidentNumber": 1043', '"x": NaN')),
        ("/api/incidents", '{"n": 1e999}'),
    ],
    ids=["incident", "any body", "events", "NaN", "1e999"],
)
def test_a_number_out_of_range_is_a_400(host_url: str, unchanged_storage: None, path: str, body: str) -> None:
    assert HUGE not in body or body.count(HUGE) == 1
    response = httpx.post(
        f"{host_url}{path}", content=body, headers=KEY | {"content-type": "application/json"}, timeout=30
    )
    assert_error(response, 400, "InvalidNumber", "body")


def test_the_incident_body_used_for_numbers_really_holds_one() -> None:
    assert '"incidentNumber": 1043' in json.dumps(incident("x"))


def test_a_lone_surrogate_in_an_incident_is_a_400_and_starts_no_run(host_url: str, unchanged_storage: None) -> None:
    body = json.dumps(incident("lone-surrogate", title="Malware \ud800 on vm-web-01"))  # ensure_ascii: "\ud800"
    assert "\\ud800" in body
    response = httpx.post(
        f"{host_url}/api/incidents",
        content=body,
        params={"dryRun": "true"},
        headers=KEY | {"content-type": "application/json"},
        timeout=30,
    )
    assert_error(response, 400, "InvalidString", "object.properties.title")


@pytest.mark.parametrize(
    ("path", "document", "target"),
    [
        ("/api/events", [{"id": "s", "eventType": "x\udfff", "data": {}}], "[0].eventType"),
        (
            "/api/playbooks/compromised-vm/runs",
            {"entities": [{"kind": "Ip", "address": "\ud800"}]},
            "entities[0].address",
        ),
        (
            "/api/playbooks/compromised-vm/runs",
            {"incident": incident("s", title="\udc00"), "dryRun": True},
            "incident.object.properties.title",
        ),
        ("/api/runs/no-such-run/approve", {"comment": "\ud800"}, "comment"),
    ],
    ids=["events", "manual run entities", "manual run incident", "approve comment"],
)
def test_a_lone_surrogate_anywhere_is_a_400(
    client: httpx.Client, unchanged_storage: None, path: str, document: Any, target: str | None
) -> None:
    response = client.post(path, content=json.dumps(document), headers={"content-type": "application/json"})
    assert_error(response, 400, "InvalidString", target)


def test_text_past_the_basic_plane_is_stored_whatever_its_length(host_url: str) -> None:
    """Table storage counts a property's 64 KiB in UTF-16: an emoji is two units, so splitting the stored JSON every
    30,000 characters made a 120 KB property of an alert id made of emoji, and the delivery was a 500."""
    event = json.loads((SAMPLES / "defender-alert-cloudevent.json").read_text())
    event["id"] = "astral-alert-id"
    event["data"]["SystemAlertId"] = "\N{PILE OF POO}" * 20_000
    response = httpx.post(
        f"{host_url}/api/events",
        content=json.dumps(event, ensure_ascii=False).encode(),
        params={"dryRun": "true"},
        headers=KEY | {"content-type": "application/cloudevents+json"},
        timeout=60,
    )
    assert response.status_code == 202, response.text
    run_id = response.json()["incidents"][0]["runs"][0]["id"]
    stored = httpx.get(f"{host_url}/api/runs/{run_id}", headers=KEY, timeout=30)
    assert stored.status_code in (200, 202), stored.text
    assert stored.json()["incident"]["name"] == event["data"]["SystemAlertId"]
