"""The HTTP contract in one place: the request and response models the routes use, and the table of operations the
OpenAPI document (`openapi.py`) is generated from. A test compares the table with function_app.py's routes, so a route
cannot be added, renamed or given another method without the document following."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, StrictBool, ValidationError

from shared.engine.model import RunStatus
from shared.intake import IntakeError
from shared.intake.errors import path_to_target

# --- requests ------------------------------------------------------------------------------------------------------


class _Request(BaseModel):
    # strict: "true" is not true and 1 is not "1"; unknown fields are ignored, as they always were
    model_config = ConfigDict(strict=True, extra="ignore")


class DecisionRequest(_Request):
    """The body of approve and reject; optional. Who decides comes from the token, never from here."""

    step: str | None = Field(default=None, description="The step instance to decide (default: the only one waiting)")
    comment: str = Field(default="", description="Why; recorded with the decision and shown in the run")


class ManualRunRequest(_Request):
    """A manual run: an incident payload in any supported dialect, or bare entities."""

    incident: dict[str, Any] | None = Field(default=None, description="Any payload POST /api/incidents accepts")
    incident_id: str | None = Field(
        default=None, alias="incidentId", description="A Sentinel incident's ARM id: Riposte reads it from Sentinel"
    )
    incident_number: int | None = Field(
        default=None, alias="incidentNumber", ge=1, description="A Sentinel incident's number in the workspace"
    )
    workspace: str | None = Field(
        default=None, description="The workspace's ARM id for incidentNumber (default: RIPOSTE_SENTINEL_WORKSPACE)"
    )
    entities: list[Any] | None = Field(default=None, description="Sentinel entities, as in an alert's Entities")
    title: str = Field(default="Manual run", description="The title of a run on bare entities")
    severity: str = Field(default="Medium", description="The severity of a run on bare entities")
    dry_run: StrictBool = Field(
        default=False, alias="dryRun", description="Plan and check every action, change nothing"
    )


Parsed = TypeVar("Parsed", bound=BaseModel)


def parse(model: type[Parsed], body: Any) -> Parsed:
    """The body as `model`, or an IntakeError (400) naming the first field that is wrong."""
    if not isinstance(body, dict):
        raise IntakeError("InvalidValue", "The body must be a JSON object.", "body")
    try:
        return model.model_validate(body)
    except ValidationError as error:
        first = error.errors()[0]
        target = path_to_target(first["loc"]) or "body"
        code = "MissingField" if first["type"] == "missing" else "InvalidValue"
        raise IntakeError(code, f"{target}: {first['msg']}.", target) from None


# --- responses -----------------------------------------------------------------------------------------------------


class ErrorDetail(BaseModel):
    code: str = Field(description="A stable, machine-readable code, e.g. MissingRole")
    message: str = Field(description="What is wrong, for people")
    target: str = Field(description="The field, header or parameter at fault ('' when none)")


class ErrorBody(BaseModel):
    """Every error Riposte answers, 4xx and 503 alike."""

    error: ErrorDetail


class RunRef(BaseModel):
    id: str
    playbook: str
    status: str
    dry_run: bool = Field(alias="dryRun")
    location: str = Field(description="Where to follow the run: GET it until it answers 200")


class Submission(BaseModel):
    """What a delivery or a manual run started."""

    status: Literal["accepted", "duplicate", "no_playbook"]
    incident: dict[str, Any] = Field(description="The normalised incident (IncidentSummary)")
    runs: list[RunRef]
    reason: str | None = Field(default=None, description="Why no playbook matched (status no_playbook)")


class RunListItem(BaseModel):
    id: str
    playbook: str
    status: str
    dry_run: bool | None = Field(default=None, alias="dryRun")
    created_at: float | None = Field(default=None, alias="createdAt")
    finished_at: float | None = Field(default=None, alias="finishedAt")
    reason: str | None = None
    incident_arm_id: str | None = Field(default=None, alias="incidentArmId")
    title: str | None = None


class RunList(BaseModel):
    value: list[RunListItem]


class CatalogueAction(BaseModel):
    name: str
    kind: str
    summary: str
    reversible: bool
    destructive: bool
    permissions: list[dict[str, Any]]


class CataloguePlaybook(BaseModel):
    name: str
    description: str
    version: int
    match: dict[str, Any]
    actions: list[CatalogueAction]
    approvals: list[str] = Field(description="The steps that can wait for an approval")
    approvers: dict[str, Any] = Field(description="Approver groups per gated step, and what checking them needs")


class Catalogue(BaseModel):
    value: list[CataloguePlaybook]


class EventsAccepted(BaseModel):
    status: Literal["accepted"]
    incidents: list[dict[str, Any]] = Field(description="Per incident: incident, runs, duplicate")
    ignored: list[dict[str, str]] = Field(description="Events that carry no alert: id, eventType, reason")


class ValidationHandshake(BaseModel):
    validation_response: str = Field(alias="validationResponse")


class Health(BaseModel):
    status: Literal["healthy", "unhealthy"]
    limits: dict[str, int] | None = None
    problems: list[str] | None = None


# --- the operations ------------------------------------------------------------------------------------------------

KEY = "functionKey"
BEARER = "entraBearer"
ASYNC_HEADERS = ("Location", "Retry-After")


@dataclass(frozen=True)
class Answer:
    description: str
    model: type[BaseModel] | None = None  # None: the run (engine.model.Run, without its lease) or no body
    headers: tuple[str, ...] = ()
    run: bool = False
    media: str = "application/json"


@dataclass(frozen=True)
class Param:
    name: str
    where: Literal["path", "query", "header"]
    description: str
    schema: dict[str, Any] = field(default_factory=lambda: {"type": "string"})
    required: bool = False


@dataclass(frozen=True)
class Operation:
    function: str  # the function name in function_app.py
    method: str
    path: str  # under /api
    operation_id: str
    summary: str
    description: str
    tag: str
    answers: dict[int, Answer]
    errors: tuple[int, ...]
    request: type[BaseModel] | None = None
    request_schema: dict[str, Any] | None = None  # a body no model describes (any supported dialect)
    request_required: bool = True
    params: tuple[Param, ...] = ()
    extra_errors: tuple[int, ...] = ()  # upstream failures (502): not the caller's fault, and said so
    security: tuple[tuple[str, ...], ...] = ((KEY, BEARER),)
    visibility: str = "important"  # the Logic Apps connector's x-ms-visibility


CONSOLE_MEDIA = "text/html,text/javascript,text/css,image/svg+xml,image/png,application/json"
STATUSES = [status.value for status in RunStatus]
RUN_ID = Param("id", "path", "The run id", required=True)
IDEMPOTENCY = Param("Idempotency-Key", "header", "The delivery key: the same key gives the same runs")
INCIDENT_BODY = {
    "type": "object",
    "description": "Any supported dialect, detected from its shape: the Sentinel incident trigger body, an ARM "
    "incident (alone or as {incident, entities, alerts}), a legacy Sentinel alert trigger, "
    "or a Defender for Cloud alert.",
}
RUN_RETURNED = Answer("The run with its steps", run=True)
ACCEPTED = Answer("Runs were created: follow Location until it answers 200", Submission, ASYNC_HEADERS)
BODY_ERRORS = (400, 401, 403, 413, 415, 503)

OPERATIONS: tuple[Operation, ...] = (
    Operation(
        "incidents", "POST", "/incidents", "SubmitIncident", "Submit an incident or alert",
        "Starts the playbooks that match (or the one named). A redelivery answers 200 with the same runs.",
        "Intake",
        {202: ACCEPTED, 200: Answer("A redelivery (the same runs), or no playbook matched", Submission)},
        (400, 401, 404, 413, 415, 503),
        request_schema=INCIDENT_BODY,
        params=(
            Param("playbook", "query", "Run this playbook only"),
            Param("dryRun", "query", "Plan and check every action, change nothing", {"type": "boolean"}),
            IDEMPOTENCY,
        ),
        security=((KEY,),),
        visibility="advanced",
    ),
    Operation(
        "events", "POST", "/events", "PostEvents", "Event Grid delivery",
        "Event Grid schema arrays or CloudEvents 1.0; answers the SubscriptionValidationEvent handshake.",
        "Intake",
        {202: Answer("Accepted", EventsAccepted), 200: Answer("The validation handshake", ValidationHandshake)},
        (400, 401, 413, 415, 503),
        request_schema={"description": "An array of Event Grid events, or one CloudEvent"},
        params=(Param("dryRun", "query", "Start dry runs only", {"type": "boolean"}),),
        security=((KEY,),),
        visibility="internal",
    ),
    Operation(
        "events", "OPTIONS", "/events", "EventsPreflight", "CloudEvents webhook preflight",
        "Abuse protection: agrees to deliveries from Event Grid only.", "Intake",
        {200: Answer("Allowed (WebHook-Allowed-Origin)", None, ("WebHook-Allowed-Origin",), media="")},
        (400, 401, 403, 503),
        params=(
            Param("WebHook-Request-Origin", "header", "Must be eventgrid.azure.net", required=True),
            Param("WebHook-Request-Rate", "header", "The rate the sender asks for"),
        ),
        security=((KEY,),),
        visibility="internal",
    ),
    Operation(
        "runs", "GET", "/runs", "ListRuns", "List runs", "The newest runs first.", "Runs",
        {200: Answer("Runs", RunList)}, (400, 401, 403, 503),
        params=(
            Param("status", "query", "Only runs in this status", {"type": "string", "enum": STATUSES}),
            Param("limit", "query", "At most this many (1 to 500, default 50)", {"type": "integer"}),
        ),
    ),
    Operation(
        "run_status", "GET", "/runs/{id}", "GetRun", "Get a run",
        "The Logic Apps asynchronous pattern: 202 with Location and Retry-After while the run is active, 200 once it "
        "has finished. The function key alone reads a run a machine caller started.", "Runs",
        {200: Answer("The run has finished", run=True), 202: Answer("The run is active", None, ASYNC_HEADERS, True)},
        (401, 403, 404, 503),
        params=(RUN_ID,),
        security=((KEY, BEARER), (KEY,)),
    ),
    Operation(
        "approve", "POST", "/runs/{id}/approve", "ApproveStep", "Approve a step",
        "Approves a step that waits for approval (Riposte.Approve). Whoever started the run may not; a quorum counts "
        "distinct identities.", "Approvals",
        {200: RUN_RETURNED}, (*BODY_ERRORS, 404, 409), DecisionRequest, request_required=False, params=(RUN_ID,),
    ),
    Operation(
        "reject", "POST", "/runs/{id}/reject", "RejectStep", "Reject a step",
        "Rejects a step that waits for approval (Riposte.Approve): it is skipped.", "Approvals",
        {200: RUN_RETURNED}, (*BODY_ERRORS, 404, 409), DecisionRequest, request_required=False, params=(RUN_ID,),
    ),
    Operation(
        "rollback", "POST", "/runs/{id}/rollback", "RollbackRun", "Roll back a run",
        "Undoes every reversible action, newest first (Riposte.Run). Idempotent.", "Runs",
        {202: Answer("The rollback is queued", None, ASYNC_HEADERS, True)}, (401, 403, 404, 409, 503),
        params=(RUN_ID,),
    ),
    Operation(
        "playbooks", "GET", "/playbooks", "ListPlaybooks", "List playbooks",
        "The catalogue: each playbook's actions with the Graph permission or Azure role each needs.", "Playbooks",
        {200: Answer("The catalogue", Catalogue)}, (401, 403, 503),
    ),
    Operation(
        "manual_run", "POST", "/playbooks/{name}/runs", "RunPlaybook", "Run a playbook",
        "Starts a playbook on an incident payload or on bare entities (Riposte.Run).", "Playbooks",
        {202: ACCEPTED, 200: Answer("A repeated request (the same runs)", Submission)}, (*BODY_ERRORS, 404),
        ManualRunRequest,
        params=(Param("name", "path", "The playbook", required=True), IDEMPOTENCY),
        extra_errors=(502,),
    ),
    Operation(
        "health", "GET", "/health", "Health", "Health", "Liveness and a settings check.", "Operations",
        {200: Answer("Healthy", Health)}, (503,), security=(), visibility="internal",
    ),
    Operation(
        "console", "GET", "/console/{path}", "Console", "The console",
        "The analysts' console (static files) and its sign-in configuration (config.json).", "Operations",
        {200: Answer("A file of the console", None, media=CONSOLE_MEDIA)}, (404, 503),
        params=(Param("path", "path", "A file of the console (empty: the page)", required=True),),
        security=(), visibility="internal",
    ),
    Operation(
        "openapi", "GET", "/openapi.json", "OpenApi", "This document", "The OpenAPI 3.1 document of this API.",
        "Operations", {200: Answer("The document", None, media="application/json")}, (), security=(),
        visibility="internal",
    ),
)  # fmt: skip
