"""The OpenAPI document: valid OpenAPI 3.1, one operation per route of function_app.py (same path, same methods),
the security each route's access rule needs, and the models it names are the ones the routes answer with."""

from __future__ import annotations

import json
import time
from typing import Any

import jsonschema
import pytest
from openapi_spec_validator import validate

from shared.api import auth, contract, openapi
from shared.engine.model import Run, StepState
from shared.intake import IntakeError


def _routes(functions: list[Any]) -> set[tuple[str, str, str]]:
    found = set()
    for function in functions:
        trigger: Any = function.get_trigger()
        if trigger.get_binding_name() != "httpTrigger":
            continue
        for method in trigger.methods:
            path = f"/{trigger.route}".replace("{*", "{")  # a catch-all parameter is a path parameter in OpenAPI
            found.add((str(function.get_function_name()), path, str(getattr(method, "value", method))))
    return found


def test_the_document_is_valid_openapi_3_1() -> None:
    document = openapi.document()
    assert document["openapi"] == "3.1.0"
    validate(json.loads(json.dumps(document)))  # what the route serves: JSON, not Python objects


def test_every_route_is_documented_and_nothing_else(functions: list[Any]) -> None:
    documented = {(op.function, op.path, op.method) for op in contract.OPERATIONS}
    assert documented == _routes(functions)
    paths = openapi.document()["paths"]
    assert {(path, method.upper()) for path, ops in paths.items() for method in ops} == {
        (op.path, op.method) for op in contract.OPERATIONS
    }
    ids = [op.operation_id for op in contract.OPERATIONS]
    assert len(ids) == len(set(ids))


def test_security_follows_each_routes_access_rule() -> None:
    for op in contract.OPERATIONS:
        security = openapi.operation(op)["security"]
        if op.function in auth.ANONYMOUS_ROUTES:
            assert security == [], op.function
        elif op.function in auth.MACHINE_ROUTES:
            assert security == [{"functionKey": []}], op.function
        else:
            access = auth.ANALYST_ROUTES[op.function]
            assert {"functionKey": [], "entraBearer": []} in security, op.function
            assert ({"functionKey": []} in security) == access.machine_readable, op.function


def test_async_answers_carry_location_and_retry_after() -> None:
    for op in contract.OPERATIONS:
        answer = openapi.operation(op)["responses"].get("202")
        if answer is not None and op.function != "events":  # an Event Grid delivery has no one run to follow
            assert set(answer["headers"]) == {"Location", "Retry-After"}, op.function
            assert all(h["required"] for h in answer["headers"].values())


def test_every_error_is_the_one_error_shape() -> None:
    for op in contract.OPERATIONS:
        for status, answer in openapi.operation(op)["responses"].items():
            if int(status) >= 400:
                schema = answer["content"]["application/json"]["schema"]
                assert schema == {"$ref": "#/components/schemas/ErrorBody"}, (op.function, status)


def _validator(name: str) -> jsonschema.protocols.Validator:
    document = json.loads(json.dumps(openapi.document()))
    schema = {"$ref": f"#/components/schemas/{name}", "components": document["components"]}
    return jsonschema.Draft202012Validator(schema)


def test_a_runs_public_form_conforms_to_the_run_schema() -> None:
    now = time.time()
    run = Run(
        id="r1",
        playbook="compromised-account",
        incident={"title": "t"},
        created_at=now,
        updated_at=now,
        steps=[StepState(id="disable.0", step="disable", kind="action", uses="entra.disable_user")],
        lease={"owner": "w", "until": now},
    )
    _validator("Run").validate(run.public())
    assert "lease" not in openapi.document()["components"]["schemas"]["Run"]["properties"]


def test_requests_are_parsed_with_the_documented_models() -> None:
    assert contract.parse(contract.DecisionRequest, {"comment": "ok"}).comment == "ok"
    with pytest.raises(IntakeError) as error:
        contract.parse(contract.ManualRunRequest, {"entities": [], "dryRun": "true"})
    assert (error.value.status, error.value.target) == (400, "dryRun")
    with pytest.raises(IntakeError) as error:
        contract.parse(contract.DecisionRequest, [])
    assert error.value.target == "body"
    _validator("ManualRunRequest").validate({"entities": [], "dryRun": True})
