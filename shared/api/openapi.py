"""GET /api/openapi.json: the OpenAPI 3.1 document, generated from the operation table and the pydantic models the
routes use (`contract.py`), the run and incident models included, so it cannot drift from what the routes answer."""

from __future__ import annotations

import copy
import functools
from typing import Any

import azure.functions as func
from pydantic import BaseModel
from pydantic.json_schema import JsonSchemaMode, models_json_schema

from shared.api import contract
from shared.api.contract import BEARER, KEY, OPERATIONS, Answer, Operation
from shared.api.responses import json_response
from shared.engine.model import Run
from shared.intake import Incident

VERSION = "1.0.0"
REF = "#/components/schemas/{model}"

ERRORS = {
    400: "Bad input: the target names the field",
    401: "No function key, or no valid Entra ID identity where one is needed",
    403: "The identity lacks the app role, or may not decide this step (separation of duties, approver groups)",
    404: "No such run or playbook",
    409: "Nothing waits for approval, already decided, or a dry run to roll back",
    413: "The body is larger than RIPOSTE_MAX_BODY_BYTES",
    415: "The body is not JSON",
    502: "Sentinel did not answer when asked for the incident",
    503: "Riposte is not configured correctly (the message names the setting), or the identity provider is unreachable",
}
HEADERS = {
    "Location": {"description": "The run to follow", "schema": {"type": "string", "format": "uri-reference"}},
    "Retry-After": {"description": "Seconds to wait before polling", "schema": {"type": "integer", "minimum": 1}},
    "WebHook-Allowed-Origin": {"description": "The origin allowed to deliver", "schema": {"type": "string"}},
}
SECURITY_SCHEMES = {
    KEY: {
        "type": "apiKey",
        "in": "header",
        "name": "x-functions-key",
        "description": "An Azure Functions key (the `code` query parameter works too).",
    },
    BEARER: {
        "type": "http",
        "scheme": "bearer",
        "bearerFormat": "JWT",
        "description": "An Entra ID access token for Riposte's API app registration holding an app role: Riposte.Run "
        "(manual runs, rollback), Riposte.Approve (approve, reject) or Riposte.Read (read). Analyst routes need it "
        "on top of the function key.",
    },
}
MODELS: tuple[tuple[type[BaseModel], JsonSchemaMode], ...] = (
    (contract.DecisionRequest, "validation"),
    (contract.ManualRunRequest, "validation"),
    (contract.ErrorBody, "serialization"),
    (contract.Submission, "serialization"),
    (contract.RunList, "serialization"),
    (contract.Catalogue, "serialization"),
    (contract.EventsAccepted, "serialization"),
    (contract.ValidationHandshake, "serialization"),
    (contract.Health, "serialization"),
    (Run, "serialization"),
    (Incident, "serialization"),
)


def schemas() -> dict[str, Any]:
    """Every model's JSON Schema under its name, adjusted to what the routes really answer."""
    _, top = models_json_schema(MODELS, ref_template=REF)
    found: dict[str, Any] = copy.deepcopy(top["$defs"])
    found["Run"]["properties"].pop("lease", None)  # Run.public() leaves the lease out
    found.pop("Lease", None)
    summary = found.pop("Incident")  # Incident.summary(): no raw payload, and the entity counts
    summary["properties"].pop("raw", None)
    summary["properties"]["entityCounts"] = {"type": "object", "additionalProperties": {"type": "integer"}}
    summary.pop("additionalProperties", None)
    summary["title"] = "IncidentSummary"
    found["IncidentSummary"] = summary
    found["Submission"]["properties"]["incident"] = {"$ref": REF.format(model="IncidentSummary")}
    return found


def _ref(model: type[BaseModel]) -> dict[str, str]:
    return {"$ref": REF.format(model=model.__name__)}


def _content(schema: dict[str, Any], media: str = "application/json") -> dict[str, Any]:
    return {media: {"schema": schema}}


def _answer(answer: Answer) -> dict[str, Any]:
    body: dict[str, Any] = {"description": answer.description}
    if answer.run:
        body["content"] = _content(_ref(Run))
    elif answer.model is not None:
        body["content"] = _content(_ref(answer.model))
    elif answer.media:
        body["content"] = {media: {"schema": {}} for media in answer.media.split(",")}
    if answer.headers:
        body["headers"] = {name: {**HEADERS[name], "required": True} for name in answer.headers}
    return body


def _error(status: int) -> dict[str, Any]:
    body: dict[str, Any] = {"description": ERRORS[status], "content": _content(_ref(contract.ErrorBody))}
    if status in (401, 403):
        body["headers"] = {"WWW-Authenticate": {"description": "The bearer challenge", "schema": {"type": "string"}}}
    return body


def operation(op: Operation) -> dict[str, Any]:
    body: dict[str, Any] = {
        "operationId": op.operation_id,
        "summary": op.summary,
        "description": op.description,
        "tags": [op.tag],
        "security": [{scheme: [] for scheme in alternative} for alternative in op.security],
        "responses": {str(s): _answer(a) for s, a in sorted(op.answers.items())}
        | {str(s): _error(s) for s in sorted((*op.errors, *op.extra_errors))},
    }
    if op.params:
        body["parameters"] = [
            {"name": p.name, "in": p.where, "description": p.description, "required": p.required, "schema": p.schema}
            for p in op.params
        ]
    schema = _ref(op.request) if op.request is not None else op.request_schema
    if schema is not None:
        body["requestBody"] = {"required": op.request_required, "content": _content(schema)}
    return body


@functools.cache
def document() -> dict[str, Any]:
    paths: dict[str, dict[str, Any]] = {}
    for op in OPERATIONS:
        paths.setdefault(op.path, {})[op.method.lower()] = operation(op)
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Riposte",
            "version": VERSION,
            "description": "SOAR playbooks for Microsoft Sentinel and Defender for Cloud. Errors are always "
            '{"error": {"code", "message", "target"}}; long work follows the Logic Apps asynchronous pattern '
            "(202 with Location and Retry-After, poll until 200).",
            "license": {"name": "MIT", "identifier": "MIT"},
        },
        "servers": [{"url": "/api"}],
        "tags": [{"name": name} for name in dict.fromkeys(op.tag for op in OPERATIONS)],
        "paths": paths,
        "components": {"schemas": schemas(), "securitySchemes": SECURITY_SCHEMES},
    }


def get_openapi(req: func.HttpRequest) -> func.HttpResponse:
    return json_response(document(), 200, {"Cache-Control": "no-cache"})
