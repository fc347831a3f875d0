"""Schemathesis against the live local host: requests drawn from the document GET /api/openapi.json serves, valid
ones and invalid ones, sent over HTTP with an analyst's key and token. No answer may be a 5xx, and every answer must be
one the document declares, with the declared content type, headers and schema. A bounded number of examples per
operation and mode keeps `make test` short (RIPOSTE_SCHEMATHESIS_EXAMPLES raises it).

Driven through Hypothesis directly rather than schemathesis' pytest plugin, which does not load under pytest 9."""

from __future__ import annotations

import os
from typing import Any

import httpx
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from tests.e2e.conftest import ANALYST_ROLES, FUNCTION_KEY, mint_token

EXAMPLES = int(os.environ.get("RIPOSTE_SCHEMATHESIS_EXAMPLES", "10"))
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
]


def test_the_live_api_conforms_to_its_document(host_url: str, cloud_server: Any) -> None:
    served = httpx.get(f"{host_url}/api/openapi.json", timeout=30)
    assert served.status_code == 200 and served.headers["content-type"].startswith("application/json")
    schema = schemathesis.openapi.from_dict(served.json())
    token = mint_token(cloud_server, roles=ANALYST_ROLES)
    headers = {"x-functions-key": FUNCTION_KEY, "authorization": f"Bearer {token}"}
    failures: dict[str, str] = {}
    sent: dict[int, int] = {}
    for found in schema.get_all_operations():
        operation = found.ok()  # type: ignore[union-attr]  # Err raises here, naming the bad operation
        for mode in (schemathesis.GenerationMode.POSITIVE, schemathesis.GenerationMode.NEGATIVE):

            @given(case=operation.as_strategy(generation_mode=mode))
            @settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)
            def conforms(case: Any) -> None:
                response = case.call_and_validate(
                    base_url=f"{host_url}/api", headers=headers, checks=CHECKS, timeout=30
                )
                sent[response.status_code] = sent.get(response.status_code, 0) + 1

            try:
                conforms()
            except Unsatisfiable:  # no parameter and no body: nothing to make invalid
                assert mode == schemathesis.GenerationMode.NEGATIVE, operation.label
            except Exception as failure:  # every operation is tried; the report names each one that failed
                failures[f"{operation.label} ({mode.value})"] = str(failure)[:2000]
    print(f"schemathesis: {sum(sent.values())} requests, by status {dict(sorted(sent.items()))}")
    assert sum(sent.values()) >= 100 and any(200 <= status < 300 for status in sent)
    assert not failures, "\n\n".join(f"{label}:\n{text}" for label, text in failures.items())
