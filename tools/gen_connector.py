"""Writes infra/connector/riposte.swagger.json: the Logic Apps custom connector, a Swagger 2.0 definition derived from
the same operation table and models as GET /api/openapi.json (shared/api/contract.py, shared/api/openapi.py).

    python -m tools.gen_connector          # rewrite it
    python -m tools.gen_connector --check  # exit 1 when it is out of date (tests/infra checks the same)

Custom connectors take Swagger 2.0 only, with Microsoft's x-ms-* extensions: x-ms-summary names each parameter in the
designer, x-ms-visibility ranks the actions, x-ms-dynamic-values fills the playbook picker from ListPlaybooks. The
JSON Schemas pydantic writes (2020-12) are lowered to what Swagger 2.0 reads: a nullable type becomes x-nullable, a
union of entity kinds an open object."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from shared.api import contract, openapi

ROOT = Path(__file__).resolve().parents[1]
CONNECTOR = ROOT / "infra" / "connector" / "riposte.swagger.json"

# What a Logic App does with Riposte; the intake of Event Grid, health, the document and the console are not actions.
ACTIONS = ("SubmitIncident", "RunPlaybook", "GetRun", "ListRuns", "ApproveStep", "RejectStep", "RollbackRun")
INTERNAL = ("ListPlaybooks",)  # the playbook picker's source: hidden from the action list
PICKER = {
    "operationId": "ListPlaybooks",
    "value-collection": "value",
    "value-path": "name",
    "value-title": "description",
}
BEARER_PARAMETER = {
    "name": "Authorization",
    "in": "header",
    "type": "string",
    "required": True,
    "x-ms-summary": "Entra ID token",
    "description": "'Bearer <access token>' for Riposte's API holding the app role the action needs: from the "
    "Logic App's managed identity (assigned the role), e.g. an HTTP action with managed identity authentication.",
}
# What a Swagger 2.0 schema object may hold besides the nested schemas; anything else pydantic writes is dropped.
SCHEMA_KEYS = frozenset(
    {
        "format", "title", "description", "default", "multipleOf", "maximum", "exclusiveMaximum", "minimum",
        "exclusiveMinimum", "maxLength", "minLength", "pattern", "maxItems", "minItems", "uniqueItems",
        "maxProperties", "minProperties", "required", "enum", "type", "readOnly",
    }
)  # fmt: skip


def lower(schema: Any) -> Any:
    """A JSON Schema (2020-12, as pydantic writes it) as Swagger 2.0's schema object reads it."""
    if not isinstance(schema, dict):
        return schema
    found = dict(schema)
    if "const" in found and "enum" not in found:
        found["enum"] = [found["const"]]
    for variant in ("anyOf", "oneOf"):
        options = found.pop(variant, None)
        if options is None:
            continue
        kept = [o for o in options if o != {"type": "null"}]
        if len(kept) < len(options):
            found["x-nullable"] = True
        found.update(lower(kept[0]) if len(kept) == 1 else {"type": "object"})
    if isinstance(found.get("type"), list):  # ["string", "null"]
        kinds = [t for t in found["type"] if t != "null"]
        found["x-nullable"] = len(kinds) < len(found["type"]) or found.get("x-nullable", False)
        found["type"] = kinds[0] if len(kinds) == 1 else "object"
    if "$ref" in found:
        return {"$ref": found["$ref"].replace("#/components/schemas/", "#/definitions/")}
    for bound in ("exclusiveMinimum", "exclusiveMaximum"):  # a number in 2020-12, a flag beside the bound in draft 4
        if isinstance(found.get(bound), int | float) and not isinstance(found[bound], bool):
            found[bound.replace("exclusiveM", "m")], found[bound] = found[bound], True
    lowered: dict[str, Any] = {}
    for key, value in found.items():
        if key == "properties":
            lowered[key] = {name: lower(item) for name, item in value.items()}
        elif key in ("items", "additionalProperties") and isinstance(value, dict):
            lowered[key] = lower(value) if value else True
        elif key == "allOf":
            lowered[key] = [lower(item) for item in value]
        elif key == "default" and value is None:
            continue  # Swagger 2.0 has no null: x-nullable says it
        elif key in SCHEMA_KEYS or key.startswith("x-"):
            lowered[key] = value
    return lowered


def _parameter(p: contract.Param, op: contract.Operation) -> dict[str, Any]:
    body: dict[str, Any] = {
        "name": p.name,
        "in": p.where,
        "required": p.required,
        "description": p.description,
        "x-ms-summary": p.name[0].upper() + p.name[1:].replace("-", " "),
        **{k: v for k, v in lower(p.schema).items() if k in ("type", "enum", "format")},
    }
    body.setdefault("type", "string")
    if p.name == "name" and op.operation_id == "RunPlaybook":
        body["x-ms-dynamic-values"] = PICKER
        body["x-ms-summary"] = "Playbook"
    if p.name == "Idempotency-Key":
        body["x-ms-visibility"] = "advanced"
    return body


def _responses(op: contract.Operation) -> dict[str, Any]:
    documented = openapi.operation(op)["responses"]
    found: dict[str, Any] = {}
    for status, answer in documented.items():
        item: dict[str, Any] = {"description": answer["description"]}
        content = answer.get("content", {}).get("application/json")
        if content is not None:
            item["schema"] = lower(content["schema"])
        if "headers" in answer:
            item["headers"] = {n: {"type": h["schema"]["type"], "description": h["description"]}
                               for n, h in answer["headers"].items()}  # fmt: skip
        found[status] = item
    return found


def _operation(op: contract.Operation) -> dict[str, Any]:
    takes_token = any(contract.BEARER in alternative for alternative in op.security)
    needs_token = takes_token and all(contract.BEARER in alternative for alternative in op.security)
    parameters = [_parameter(p, op) for p in op.params]
    if takes_token:  # GetRun reads a run a machine started with the key alone: the token is optional there
        parameters.append({**BEARER_PARAMETER, "required": needs_token})
    if op.request is not None or op.request_schema is not None:
        schema = openapi._ref(op.request) if op.request is not None else {"type": "object"}
        parameters.append({"name": "body", "in": "body", "required": op.request_required, "schema": lower(schema)})
    return {
        "operationId": op.operation_id,
        "summary": op.summary,
        "description": op.description,
        "tags": [op.tag],
        "x-ms-visibility": "internal" if op.operation_id in INTERNAL else op.visibility,
        "consumes": ["application/json"],
        "produces": ["application/json"],
        "parameters": parameters,
        "responses": _responses(op),
        "security": [{"functionKey": []}],
    }


def connector() -> dict[str, Any]:
    wanted = {op.operation_id: op for op in contract.OPERATIONS if op.operation_id in (*ACTIONS, *INTERNAL)}
    paths: dict[str, dict[str, Any]] = {}
    for name in (*ACTIONS, *INTERNAL):
        op = wanted[name]
        paths.setdefault(op.path, {})[op.method.lower()] = _operation(op)
    definitions = {name: lower(schema) for name, schema in openapi.schemas().items()}
    return {
        "swagger": "2.0",
        "info": {
            "title": "Riposte",
            "version": openapi.VERSION,
            "description": "Run Riposte's playbooks on incidents, follow runs, decide approvals and roll back.",
        },
        "host": "riposte.azurewebsites.net",  # replaced at deployment by the Function App's host name
        "basePath": "/api",
        "schemes": ["https"],
        "paths": paths,
        "definitions": definitions,
        "securityDefinitions": {"functionKey": {"type": "apiKey", "in": "header", "name": "x-functions-key"}},
        "x-ms-connector-metadata": [{"propertyName": "Categories", "propertyValue": "Security"}],
    }


def text() -> str:
    return json.dumps(connector(), indent=1, sort_keys=False) + "\n"


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true")
    check = parser.parse_args(argv).check
    if check:
        current = CONNECTOR.read_text() if CONNECTOR.exists() else ""
        if current != text():
            print(f"{CONNECTOR.relative_to(ROOT)} is out of date: run python -m tools.gen_connector", file=sys.stderr)
            return 1
        return 0
    CONNECTOR.parent.mkdir(parents=True, exist_ok=True)
    CONNECTOR.write_text(text())
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
