"""Bad input: each class gets one IntakeError with the right status, code and target."""

from __future__ import annotations

import json

import pytest

from shared.intake import IntakeError, decode_json_body, normalise, parse_delivery
from shared.intake.body import check_json_value
from tests.unit.intake.cases import account_trigger

MIB = 1 << 20


def decode(body: bytes, content_type: str | None = "application/json", max_depth: int = 64) -> object:
    return decode_json_body(body, content_type, max_bytes=MIB, max_depth=max_depth)


@pytest.mark.parametrize(
    ("body", "content_type", "status", "code"),
    [
        (b"{", "application/json", 400, "InvalidJson"),
        (b"", "application/json", 400, "EmptyBody"),
        (b"\xff\xfe{}", "application/json", 400, "InvalidEncoding"),
        ("{}".encode("utf-16"), "application/json", 400, "InvalidEncoding"),
        (b"{}", "text/plain", 415, "UnsupportedMediaType"),
        (b"{}", None, 415, "UnsupportedMediaType"),
        (b"[" * 100 + b"]" * 100, "application/json", 400, "JsonTooDeep"),
        (b"[" * 100_000 + b"]" * 100_000, "application/json", 400, "JsonTooDeep"),
        (b" " * (MIB + 1), "application/json", 413, "PayloadTooLarge"),
    ],
)
def test_body_classes(body: bytes, content_type: str | None, status: int, code: str) -> None:
    with pytest.raises(IntakeError) as caught:
        decode(body, content_type)
    assert (caught.value.status, caught.value.code) == (status, code)
    assert caught.value.as_body()["error"]["message"]


def test_accepted_media_types_and_bom() -> None:
    assert decode(b'{"a": 1}', "application/json; charset=utf-8") == {"a": 1}
    assert decode(b'{"a": 1}', "application/cloudevents+json; charset=utf-8") == {"a": 1}
    assert decode('\ufeff{"a": "ü"}'.encode()) == {"a": "ü"}


def test_depth_is_measured_without_recursion() -> None:
    deep: list[object] = []
    node = deep
    for _ in range(10_000):
        child: list[object] = []
        node.append(child)
        node = child
    check_json_value(deep, max_depth=10_001)
    with pytest.raises(IntakeError) as caught:
        check_json_value(deep, max_depth=10_000)
    assert caught.value.code == "JsonTooDeep"


@pytest.mark.parametrize(
    "body",
    [b"[1" + b"0" * 4300 + b"]", b'{"n": -' + b"9" * 5000 + b"}", b"[NaN]", b"[Infinity]", b"[-Infinity]", b"[1e999]"],
    ids=["4301 digits", "5000 digits", "NaN", "Infinity", "-Infinity", "1e999"],
)
def test_numbers_out_of_range_are_refused(body: bytes) -> None:
    with pytest.raises(IntakeError) as caught:
        decode(body)
    assert (caught.value.status, caught.value.code, caught.value.target) == (400, "InvalidNumber", "body")


def test_largest_numbers_in_range_are_accepted() -> None:
    assert decode(b"[1" + b"0" * 4299 + b", 1.7e308]") == [10**4299, 1.7e308]


@pytest.mark.parametrize(
    ("body", "target"),
    [
        (b'{"a": "x\\ud800y"}', "a"),
        (b'{"a": [1, {"b": "\\udfff"}]}', "a[1].b"),
        (b'{"k\\udc00": 1}', "k\N{REPLACEMENT CHARACTER}"),
        (b'"\\ud800"', "body"),
    ],
)
def test_lone_surrogates_are_refused_naming_where(body: bytes, target: str) -> None:
    with pytest.raises(IntakeError) as caught:
        decode(body)
    assert (caught.value.status, caught.value.code, caught.value.target) == (400, "InvalidString", target)
    caught.value.message.encode()  # the error itself is sendable as UTF-8


def test_surrogate_pairs_are_text() -> None:
    assert decode(b'{"a": "\\ud83d\\ude00"}') == {"a": "\N{GRINNING FACE}"}


def test_missing_required_field_names_it() -> None:
    payload = account_trigger()
    del payload["object"]["properties"]["title"]
    with pytest.raises(IntakeError) as caught:
        normalise(payload, max_entities=500)
    assert (caught.value.code, caught.value.target) == ("MissingField", "object.properties.title")


def test_wrong_type_names_it() -> None:
    payload = account_trigger()
    payload["object"]["properties"]["incidentNumber"] = {"n": 1}
    with pytest.raises(IntakeError) as caught:
        normalise(payload, max_entities=500)
    assert (caught.value.code, caught.value.target) == ("InvalidValue", "object.properties.incidentNumber")


def test_unknown_severity_is_rejected() -> None:
    payload = account_trigger()
    payload["object"]["properties"]["severity"] = "Catastrophic"
    with pytest.raises(IntakeError) as caught:
        normalise(payload, max_entities=500)
    assert caught.value.target == "object.properties.severity"


@pytest.mark.parametrize("payload", [{}, {"hello": "world"}, [], [1, 2], "text", 42, None])
def test_unknown_schema(payload: object) -> None:
    with pytest.raises(IntakeError) as caught:
        normalise(payload, max_entities=500)
    assert caught.value.code == "UnknownSchema" and caught.value.status == 400


def test_event_grid_array_on_the_incidents_route_points_to_events() -> None:
    with pytest.raises(IntakeError) as caught:
        normalise([{"id": "1", "eventType": "x", "data": {}}], max_entities=500)
    assert caught.value.code == "UseEventsEndpoint"


def test_bad_alert_inside_an_event_rejects_the_whole_delivery_with_its_path() -> None:
    good = {"id": "ok", "eventType": "Microsoft.Security.SecurityAlert", "data": {"hello": "not an alert"}}
    alert = json.loads(json.dumps(account_trigger()))
    del alert["object"]["properties"]["status"]
    bad = {"id": "bad", "eventType": "Microsoft.Security.SecurityAlert", "data": alert}
    with pytest.raises(IntakeError) as caught:
        parse_delivery([good, bad], max_entities=500)
    assert caught.value.target == "[1].data.object.properties.status"


@pytest.mark.parametrize(
    "payload",
    [
        [],
        [{"eventType": "x", "data": {}}],  # no id
        [{"id": "1", "data": {}}],  # no eventType
        [{"id": "1", "eventType": "Microsoft.EventGrid.SubscriptionValidationEvent", "data": {}}],
        {"specversion": "0.3", "id": "1", "type": "x", "source": "s"},
        {"not": "an envelope"},
    ],
)
def test_bad_deliveries(payload: object) -> None:
    with pytest.raises(IntakeError) as caught:
        parse_delivery(payload, max_entities=500)
    assert caught.value.status == 400
