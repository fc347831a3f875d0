"""Microsoft Defender for Endpoint's API (api.security.microsoft.com/api): machines, their logged-on users, and machine
actions with their state transitions.

A machine action is created Pending, becomes InProgress once the device would have picked it up
(mde.settings.pickupSeconds after creation) and Succeeded (or Failed, when the machine lists the action type in its
emulator-only `failActions`) after completeSeconds. A device's isolation and app restriction are not properties of the
machine: as in the real API, they follow from its latest succeeded Isolate/Unisolate and
RestrictCodeExecution/UnrestrictCodeExecution actions. A second action of a type still Pending or InProgress on the
same device is refused with 400 ActiveRequestAlreadyExists. Errors are {"error": {code, message, target}}.

When the tenant lists tenant.riposteIdentity.mdePermissions, each call needs one of the WindowsDefenderATP application
permissions the real API asks for (403 Forbidden otherwise); the token's roles claim carries them."""

from __future__ import annotations

import json
import time
import uuid
from datetime import UTC, datetime
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from local.cloud.errors import MdeError
from local.cloud.odata import FilterError, FilterRules, UnsupportedFilter, compile_filter
from local.cloud.provider import Provider, route
from local.cloud.router import request_params
from local.cloud.seed import resolve_time

Json = dict[str, Any]
METADATA = "https://api.security.microsoft.com/api/$metadata"
MACHINE_PROPERTIES = (
    "id", "computerDnsName", "firstSeen", "lastSeen", "osPlatform", "osVersion", "osProcessor", "version",
    "lastIpAddress", "lastExternalIpAddress", "agentVersion", "osBuild", "healthStatus", "deviceValue",
    "rbacGroupId", "rbacGroupName", "riskScore", "exposureLevel", "isAadJoined", "aadDeviceId", "machineTags",
    "onboardingStatus", "osArchitecture", "managedBy", "managedByStatus", "ipAddresses", "vmMetadata",
)  # fmt: skip
ACTION_PROPERTIES = (
    "id", "type", "title", "requestor", "requestorComment", "status", "machineId", "computerDnsName",
    "creationDateTimeUtc", "lastUpdateDateTimeUtc", "cancellationRequestor", "cancellationComment",
    "cancellationDateTimeUtc", "errorHResult", "scope", "externalId", "requestSource", "relatedFileInfo",
    "commands", "troubleshootInfo",
)  # fmt: skip
MACHINE_FILTER = FilterRules(
    properties={
        "computerDnsName": frozenset({"eq", "startswith"}),
        "id": frozenset({"eq", "in"}),
        "aadDeviceId": frozenset({"eq"}),
        "lastIpAddress": frozenset({"eq"}),
        "healthStatus": frozenset({"eq"}),
        "riskScore": frozenset({"eq"}),
        "osPlatform": frozenset({"eq"}),
        "onboardingStatus": frozenset({"eq"}),
    }
)
ACTION_FILTER = FilterRules(
    properties={
        "id": frozenset({"eq"}),
        "status": frozenset({"eq"}),
        "machineId": frozenset({"eq"}),
        "type": frozenset({"eq"}),
        "requestor": frozenset({"eq"}),
    }
)
READ = ("Machine.Read.All", "Machine.ReadWrite.All")
# Each action route: (type, the permission it needs, whether the body carries a scope and which field holds it).
ACTIONS: dict[str, tuple[str, str, str | None, tuple[str, ...]]] = {
    "isolate": ("Isolate", "Machine.Isolate", "IsolationType", ("Full", "Selective", "UnManagedDevice")),
    "unisolate": ("Unisolate", "Machine.Isolate", None, ()),
    "runantivirusscan": ("RunAntiVirusScan", "Machine.Scan", "ScanType", ("Quick", "Full")),
    "collectinvestigationpackage": ("CollectInvestigationPackage", "Machine.CollectForensics", None, ()),
    "restrictcodeexecution": ("RestrictCodeExecution", "Machine.RestrictExecution", None, ()),
    "unrestrictcodeexecution": ("UnrestrictCodeExecution", "Machine.RestrictExecution", None, ()),
}
ACTIVE = ("Pending", "InProgress")
DEFAULT_SETTINGS = {"pickupSeconds": 0.3, "completeSeconds": 1.0, "maxPage": 10000}


def _iso(epoch: float) -> str:
    moment = datetime.fromtimestamp(epoch, UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond:06d}0Z"


def _epoch(value: Any) -> float:
    try:
        return datetime.fromisoformat(str(value).replace("Z", "+00:00")).timestamp()
    except ValueError:
        return 0.0


def expand(doc: Json, now: datetime) -> None:
    """Seeded times may be relative ("now-2h"); machine actions get the fields the API always returns."""
    section = doc.get("mde")
    if not section:
        return
    for machine in section.setdefault("machines", []):
        for key in ("firstSeen", "lastSeen"):
            machine[key] = resolve_time(machine.get(key), now)
        machine.setdefault("machineTags", [])
        machine.setdefault("onboardingStatus", "Onboarded")
        machine.setdefault("healthStatus", "Active")
        for user in machine.get("logonUsers") or []:
            for key in ("firstSeen", "lastSeen"):
                user[key] = resolve_time(user.get(key), now)
    for action in section.setdefault("machineActions", []):
        for key in ("creationDateTimeUtc", "lastUpdateDateTimeUtc"):
            action[key] = resolve_time(action.get(key), now)
        action.setdefault("id", str(uuid.uuid4()))
        action.setdefault("status", "Succeeded")
        action.setdefault("lastUpdateDateTimeUtc", action.get("creationDateTimeUtc"))
    section.setdefault("settings", {})


def _project(item: Json, properties: tuple[str, ...]) -> Json:
    return {name: item.get(name) for name in properties}


class MdeProvider(Provider):
    service = "mde"

    # ---- tenant data
    @property
    def section(self) -> Json:
        section: Json = self.cloud.doc.setdefault("mde", {})
        return section

    def setting(self, name: str) -> float:
        return float((self.section.get("settings") or {}).get(name, DEFAULT_SETTINGS[name]))

    def machine(self, machine_id: str) -> Json:
        for machine in self.section.setdefault("machines", []):
            if str(machine["id"]).lower() == machine_id.lower():
                found: Json = machine
                return found
        raise MdeError(404, "ResourceNotFound", f"Machine {machine_id} was not found")

    def require(self, *any_of: str) -> None:
        identity = (self.cloud.doc.get("tenant") or {}).get("riposteIdentity") or {}
        granted = identity.get("mdePermissions")
        if granted is not None and not set(any_of) & set(granted):
            raise MdeError(
                403, "Forbidden", f"The application does not have any of the required application roles: {any_of}"
            )

    def actions(self) -> list[Json]:
        found: list[Json] = self.section.setdefault("machineActions", [])
        for action in found:
            self._advance(action)
        return found

    def _advance(self, action: Json) -> None:
        """Moves a machine action along: Pending, InProgress once picked up, then Succeeded or Failed."""
        if action.get("status") not in ACTIVE:
            return
        elapsed = time.time() - _epoch(action.get("creationDateTimeUtc"))
        started = _epoch(action.get("creationDateTimeUtc"))
        if elapsed >= self.setting("completeSeconds"):
            failing = self._fails(action)
            action["status"] = "Failed" if failing else "Succeeded"
            if failing:
                action["errorHResult"] = -2147024894
            action["lastUpdateDateTimeUtc"] = _iso(started + self.setting("completeSeconds"))
        elif elapsed >= self.setting("pickupSeconds") and action["status"] == "Pending":
            action["status"] = "InProgress"
            action["lastUpdateDateTimeUtc"] = _iso(started + self.setting("pickupSeconds"))

    def _fails(self, action: Json) -> bool:
        for machine in self.section.get("machines") or []:
            if str(machine["id"]).lower() == str(action.get("machineId")).lower():
                return action.get("type") in (machine.get("failActions") or [])
        return False

    def _filtered(self, request: Request, items: list[Json], rules: FilterRules) -> list[Json]:
        params = request_params(request)
        if "$filter" in params:
            try:
                predicate = compile_filter(params["$filter"], rules)
            except (FilterError, UnsupportedFilter) as exc:
                raise MdeError(400, "InvalidRequest", f"Invalid filter clause: {exc}") from exc
            items = [i for i in items if predicate(i)]
        top = params.get("$top", "")
        if top:
            if not top.isdigit() or not 0 < int(top) <= self.setting("maxPage"):
                raise MdeError(400, "InvalidRequest", f"Invalid $top value: '{top}'.")
            items = items[: int(top)]
        return items

    # ------------------------------------------------------------------------------------------ machines
    @route("GET", "/api/machines")
    async def list_machines(self, request: Request) -> Response:
        self.require(*READ)
        machines = self._filtered(request, self.section.setdefault("machines", []), MACHINE_FILTER)
        if not machines:  # the API answers 404 when no machine matches
            raise MdeError(404, "ResourceNotFound", "No machines were found")
        body = {"@odata.context": f"{METADATA}#Machines", "value": [_project(m, MACHINE_PROPERTIES) for m in machines]}
        return JSONResponse(body)

    @route("GET", "/api/machines/{machine_id}")
    async def get_machine(self, request: Request, machine_id: str) -> Response:
        self.require(*READ)
        machine = _project(self.machine(machine_id), MACHINE_PROPERTIES)
        return JSONResponse({"@odata.context": f"{METADATA}#Machines/$entity", **machine})

    @route("GET", "/api/machines/{machine_id}/logonusers")
    async def logon_users(self, request: Request, machine_id: str) -> Response:
        self.require("User.Read.All")
        users = self.machine(machine_id).get("logonUsers") or []
        return JSONResponse({"@odata.context": f"{METADATA}#Users", "value": users})

    @route("POST", "/api/machines/{machine_id}/{verb}")
    async def start_action(self, request: Request, machine_id: str, verb: str) -> Response:
        spec = ACTIONS.get(verb.lower())
        if spec is None:
            raise MdeError(404, "ResourceNotFound", f"Unknown machine action '{verb}'")
        action_type, permission, scope_field, scopes = spec
        self.require(permission)
        machine = self.machine(machine_id)
        body = await _json_body(request)
        comment = body.get("Comment")
        if not isinstance(comment, str) or not comment.strip():
            raise MdeError(400, "InvalidRequestBody", "Comment is required")
        scope = None
        if scope_field == "ScanType" and scope_field not in body:
            raise MdeError(400, "InvalidRequestBody", "ScanType is required")
        if scope_field is not None:
            scope = body.get(scope_field, scopes[0])
            if scope not in scopes:
                raise MdeError(400, "InvalidRequestBody", f"{scope_field} must be one of {', '.join(scopes)}")
        for existing in self.actions():
            same = existing["machineId"] == machine["id"] and existing["type"] == action_type
            if same and existing["status"] in ACTIVE:
                raise MdeError(400, "ActiveRequestAlreadyExists", f"Action is already in progress: {existing['id']}")
        return JSONResponse(self._create(machine, action_type, comment, scope), status_code=201)

    def _create(self, machine: Json, action_type: str, comment: str, scope: str | None) -> Json:
        identity = (self.cloud.doc.get("tenant") or {}).get("riposteIdentity") or {}
        now = _iso(time.time())
        action = {
            "id": str(uuid.uuid4()),
            "type": action_type,
            "title": f"{action_type} on {machine.get('computerDnsName')}",
            "requestor": identity.get("clientId", ""),
            "requestorComment": comment,
            "status": "Pending",
            "machineId": machine["id"],
            "computerDnsName": machine.get("computerDnsName"),
            "creationDateTimeUtc": now,
            "lastUpdateDateTimeUtc": now,
            "scope": scope,
            "requestSource": "PublicApi",
            "relatedFileInfo": None,
            "commands": [],
        }
        self.section.setdefault("machineActions", []).append(action)
        return {"@odata.context": f"{METADATA}#MachineActions/$entity", **_project(action, ACTION_PROPERTIES)}

    # ------------------------------------------------------------------------------------------ machine actions
    @route("GET", "/api/machineactions")
    async def list_actions(self, request: Request) -> Response:
        self.require(*READ)
        newest_first = sorted(self.actions(), key=lambda a: str(a.get("creationDateTimeUtc")), reverse=True)
        items = self._filtered(request, newest_first, ACTION_FILTER)
        value = [_project(a, ACTION_PROPERTIES) for a in items]
        return JSONResponse({"@odata.context": f"{METADATA}#MachineActions", "value": value})

    def action(self, action_id: str) -> Json:
        for action in self.actions():
            if action["id"].lower() == action_id.lower():
                return action
        raise MdeError(404, "ResourceNotFound", f"Machine action {action_id} was not found")

    @route("GET", "/api/machineactions/{action_id}")
    async def get_action(self, request: Request, action_id: str) -> Response:
        self.require(*READ)
        action = _project(self.action(action_id), ACTION_PROPERTIES)
        return JSONResponse({"@odata.context": f"{METADATA}#MachineActions/$entity", **action})

    @route("GET", "/api/machineactions/{action_id}/getPackageUri")
    async def package_uri(self, request: Request, action_id: str) -> Response:
        self.require(*READ)
        action = self.action(action_id)
        if action.get("type") != "CollectInvestigationPackage" or action.get("status") != "Succeeded":
            raise MdeError(404, "ResourceNotFound", f"No investigation package for machine action {action_id}")
        token = uuid.uuid5(uuid.NAMESPACE_URL, action["id"]).hex
        host = f"{request.url.scheme}://{request.url.netloc}"
        link = f"{host}/_mde/safedownload/WDATP_Investigation_Package.zip?token={token}"
        return JSONResponse({"@odata.context": f"{METADATA}#Edm.String", "value": link})


async def _json_body(request: Request) -> Json:
    raw = await request.body()
    try:
        body = json.loads(raw) if raw else {}
    except ValueError as exc:
        raise MdeError(400, "InvalidRequestBody", "The request body is not valid JSON") from exc
    if not isinstance(body, dict):
        raise MdeError(400, "InvalidRequestBody", "The request body must be a JSON object")
    return body
