"""Property-based tests: whatever arrives, intake answers with an Incident or one IntakeError, never anything else."""

from __future__ import annotations

import copy
import json
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from shared.intake import IntakeError, decode_json_body, normalise, parse_delivery
from tests.unit.intake.cases import account_trigger, sample

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda children: st.lists(children, max_size=5) | st.dictionaries(st.text(max_size=12), children, max_size=5),
    max_leaves=30,
)

SEEDS: list[Any] = [
    account_trigger(),
    sample("sentinel-incident-compromised-vm.json"),
    sample("sentinel-incident-malicious-ip-arm.json"),
    sample("sentinel-alert-trigger-legacy.json"),
    sample("defender-alert-eventgrid.json")[0]["data"],
    sample("defender-alert-cloudevent.json")["data"],
]


def _paths(node: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    found = [prefix]
    if isinstance(node, dict):
        for key, value in node.items():
            found.extend(_paths(value, (*prefix, key)))
    elif isinstance(node, list):
        for index, value in enumerate(node):
            found.extend(_paths(value, (*prefix, index)))
    return found


def _replace(node: Any, path: tuple[Any, ...], value: Any) -> Any:
    if not path:
        return value
    copied = copy.copy(node)
    copied[path[0]] = _replace(node[path[0]], path[1:], value)
    return copied


def _delete(node: Any, path: tuple[Any, ...]) -> Any:
    copied = copy.copy(node)
    if len(path) == 1:
        del copied[path[0]]
    else:
        copied[path[0]] = _delete(node[path[0]], path[1:])
    return copied


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(payload=json_values)
def test_arbitrary_json_gives_an_incident_or_an_intake_error(payload: Any) -> None:
    for attempt in (lambda: normalise(payload, max_entities=50), lambda: parse_delivery(payload, max_entities=50)):
        try:
            attempt()
        except IntakeError as error:
            assert 400 <= error.status < 500 and error.code and error.message


@settings(max_examples=400, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_mutated_real_payloads_never_escape_intake(data: st.DataObject) -> None:
    seed = data.draw(st.sampled_from(SEEDS))
    path = data.draw(st.sampled_from(_paths(seed)[1:]))
    replace = data.draw(st.booleans())
    mutated = _replace(seed, path, data.draw(json_values)) if replace else _delete(seed, path)
    try:
        incident = normalise(mutated, max_entities=50)
    except IntakeError as error:
        assert 400 <= error.status < 500
        assert isinstance(error.target, str)
    else:
        json.dumps(incident.summary())  # whatever parsed can be answered


@settings(max_examples=200)
@given(body=st.binary(max_size=300), content_type=st.sampled_from(["application/json", "text/plain", "", None]))
def test_arbitrary_bytes_decode_or_fail_cleanly(body: bytes, content_type: str | None) -> None:
    try:
        decode_json_body(body, content_type, max_bytes=200, max_depth=10)
    except IntakeError as error:
        assert error.status in (400, 413, 415)
