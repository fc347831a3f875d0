"""The run API of the README's HTTP contract: submit (intake), the Logic Apps async pattern on runs, approvals,
rollback, the playbook catalogue and manual runs."""

from __future__ import annotations

import hashlib
import json
from typing import Any

import azure.functions as func
from pydantic import BaseModel

from shared.api import auth, contract
from shared.api.context import get_service
from shared.api.responses import error_response, intake_error_response, json_response
from shared.intake import Incident, IntakeError, decode_json_body, normalise
from shared.settings import get_settings

RETRY_AFTER_S = 5


def _flag(value: str | None) -> bool:
    return (value or "").lower() in ("1", "true", "yes")


def _body(req: func.HttpRequest, *, optional: bool = False) -> Any:
    settings = get_settings()
    raw = req.get_body()
    if optional and not raw.strip():
        return {}
    return decode_json_body(
        raw, req.headers.get("content-type"), max_bytes=settings.max_body_bytes, max_depth=settings.max_json_depth
    )


async def submit_incident(
    incident: Incident,
    *,
    playbook: str | None,
    dry_run: bool,
    idempotency_key: str | None,
    by: str,
    by_id: str = "",
) -> func.HttpResponse:
    from shared.service import ServiceError

    service = await get_service()
    try:
        submission = await service.submit(
            incident,
            playbook=playbook,
            dry_run=dry_run,
            idempotency_key=idempotency_key,
            requested_by=by,
            requested_by_id=by_id,
        )
    except ServiceError as error:
        return error_response(error.status, error.code, error.message, error.target)
    body = contract.Submission.model_validate(
        {
            "status": "accepted" if submission.created else "duplicate",
            "incident": incident.summary(),
            "runs": submission.runs,
        }
    )
    if not submission.runs:
        body.status, body.reason = "no_playbook", submission.unmatched_reason
        return json_response(_dump(body), 200)
    headers = {"Location": submission.runs[0]["location"], "Retry-After": str(RETRY_AFTER_S)}
    return json_response(_dump(body), 202 if submission.created else 200, headers)


def _dump(body: BaseModel) -> dict[str, Any]:
    return body.model_dump(mode="json", by_alias=True, exclude_none=True)


async def post_incident(req: func.HttpRequest) -> func.HttpResponse:
    try:
        incident = normalise(_body(req), max_entities=get_settings().max_entities)
    except IntakeError as error:
        return intake_error_response(error)
    return await submit_incident(
        incident,
        playbook=req.params.get("playbook"),
        dry_run=_flag(req.params.get("dryRun")),
        idempotency_key=req.headers.get("idempotency-key"),
        by=auth.MACHINE_CALLER,
    )


async def get_run(req: func.HttpRequest) -> func.HttpResponse:
    caller = await auth.authorise(req, "run_status")
    if isinstance(caller, func.HttpResponse):
        return caller
    service = await get_service()
    run = await service.get(req.route_params["id"])
    if run is None:
        return error_response(404, "RunNotFound", f"No run {req.route_params['id']}.", "id")
    refused = auth.may_read_run(caller, run.requested_by)
    if refused is not None:
        return refused
    if run.status.active:
        headers = {"Location": f"/api/runs/{run.id}", "Retry-After": str(RETRY_AFTER_S)}
        return json_response(run.public(), 202, headers)
    return json_response(run.public(), 200)


async def list_runs(req: func.HttpRequest) -> func.HttpResponse:
    caller = await auth.authorise(req, "runs")
    if isinstance(caller, func.HttpResponse):
        return caller
    service = await get_service()
    try:
        limit = max(1, min(int(req.params.get("limit", "50")), 500))
    except ValueError:
        return error_response(400, "InvalidValue", "limit must be a whole number.", "limit")
    runs = await service.store.list_runs(limit=limit, status=req.params.get("status"))
    return json_response(contract.RunList.model_validate({"value": runs}).model_dump(mode="json", by_alias=True))


async def decide(req: func.HttpRequest, decision: str) -> func.HttpResponse:
    from shared.service import ServiceError

    caller = await auth.authorise(req, decision)  # the function names: approve, reject
    if isinstance(caller, func.HttpResponse):
        return caller
    try:
        body = contract.parse(contract.DecisionRequest, _body(req, optional=True))
    except IntakeError as error:
        return intake_error_response(error)
    service = await get_service()
    try:
        run = await service.decide(
            req.route_params["id"], decision, caller.label, by_id=caller.object_id, step=body.step, comment=body.comment
        )
    except ServiceError as error:
        return error_response(error.status, error.code, error.message, error.target)
    return json_response(run.public(), 200)


async def rollback(req: func.HttpRequest) -> func.HttpResponse:
    from shared.service import ServiceError

    caller = await auth.authorise(req, "rollback")
    if isinstance(caller, func.HttpResponse):
        return caller
    service = await get_service()
    try:
        run = await service.request_rollback(req.route_params["id"], caller.label, caller.object_id)
    except ServiceError as error:
        return error_response(error.status, error.code, error.message, error.target)
    headers = {"Location": f"/api/runs/{run.id}", "Retry-After": str(RETRY_AFTER_S)}
    return json_response(run.public(), 202, headers)


def catalogue() -> dict[str, Any]:
    from shared.actions.port import write_back_actions
    from shared.actions.registry import catalogue as actions
    from shared.playbook.loader import bundled_playbooks

    registered = actions()

    def describe(name: str) -> dict[str, Any]:
        spec = registered[name].spec
        return {
            "name": name,
            "kind": spec.kind,
            "summary": spec.summary,
            "reversible": spec.reversible,
            "destructive": spec.destructive,
            "permissions": [p.model_dump(mode="json", by_alias=True) for p in spec.permissions],
        }

    playbooks = []
    for playbook in bundled_playbooks().values():
        used = [s.uses for s in playbook.enrich] + [a.uses for a in playbook.actions]
        used += [a.wait_until.uses for a in playbook.actions if a.wait_until]
        writeback = playbook.writeback
        updates = bool(writeback.labels or writeback.status or writeback.severity)
        used += write_back_actions(comment=True, updates=updates)  # approval requests are comments too
        playbooks.append(
            {
                "name": playbook.name,
                "description": playbook.description,
                "version": playbook.version,
                "match": playbook.match.model_dump(mode="json", exclude_defaults=True),
                "actions": [describe(name) for name in dict.fromkeys(used) if name in registered],
                "approvals": [a.id for a in playbook.actions if a.approval is not None],
                "approvers": approvers_of(playbook),
            }
        )
    return {"value": playbooks}


def approvers_of(playbook: Any) -> dict[str, Any]:
    """The approver groups of each gated step that has some, and what checking them needs of Graph."""
    from shared.approvers import GRAPH_PERMISSIONS

    groups = {a.id: list(playbook.approver_groups(a)) for a in playbook.actions if a.approval is not None}
    groups = {step: named for step, named in groups.items() if named}
    if not groups:
        return {}
    permissions = [p.model_dump(mode="json", by_alias=True) for p in GRAPH_PERMISSIONS]
    return {"groups": groups, "permissions": permissions}


def get_playbooks(req: func.HttpRequest) -> func.HttpResponse:
    caller = auth.authorise_sync(req, "playbooks")
    if isinstance(caller, func.HttpResponse):
        return caller
    return json_response(catalogue())


async def manual_run(req: func.HttpRequest) -> func.HttpResponse:
    """{"incidentId": <ARM id>} or {"incidentNumber": n, "workspace"?} (read from Sentinel), {"incident": <any
    supported payload>} or {"entities": [...], "title"?, "severity"?}; "dryRun": bool."""
    from shared.service import ServiceError

    caller = await auth.authorise(req, "manual_run")
    if isinstance(caller, func.HttpResponse):
        return caller
    try:
        body = contract.parse(contract.ManualRunRequest, _body(req))
    except IntakeError as error:
        return intake_error_response(error)
    settings = get_settings()
    try:
        if body.incident_id is not None or body.incident_number is not None:
            incident = await _from_sentinel(body)
        elif body.incident is not None:
            incident = normalise(body.incident, max_entities=settings.max_entities)
        elif body.entities is not None:
            incident = normalise(_synthetic_alert(body), max_entities=settings.max_entities)
        else:
            return error_response(400, "MissingField", "Give an incident payload or a list of entities.", "incident")
    except IntakeError as error:
        error.target = f"incident.{error.target}" if body.incident is not None else error.target
        return intake_error_response(error)
    except ServiceError as error:
        return error_response(error.status, error.code, error.message, error.target)
    return await submit_incident(
        incident,
        playbook=req.route_params["name"],
        dry_run=body.dry_run,
        idempotency_key=req.headers.get("idempotency-key"),
        by=caller.label,
        by_id=caller.object_id,
    )


async def _from_sentinel(body: contract.ManualRunRequest) -> Incident:
    """The incident as Sentinel has it now (with its entities and alerts), through the same intake as a relay's."""
    service = await get_service()
    payload = await service.sentinel_incident(
        arm_id=body.incident_id, number=body.incident_number, workspace=body.workspace
    )
    return normalise(payload, max_entities=get_settings().max_entities)


def _synthetic_alert(body: contract.ManualRunRequest) -> dict[str, Any]:
    """Bare entities become a SecurityAlert so they go through the same intake as everything else."""
    request = body.model_dump(mode="json", by_alias=True, exclude_none=True)
    return {
        "SystemAlertId": "manual-"
        + hashlib.sha256(json.dumps(request, sort_keys=True, default=str).encode()).hexdigest()[:32],
        "AlertDisplayName": body.title,
        "Severity": body.severity,
        "Status": "New",
        "ProductName": "Riposte manual run",
        "Entities": body.entities,
    }
