"""Microsoft Defender for Endpoint: a device's profile, and the machine actions a SOC takes on it (isolate, release,
antivirus scan, investigation package, app restriction).

A device is resolved from a Host entity by the strongest id it carries: the Defender for Endpoint device id, then the
Entra device id, then the Azure VM resource id (matched against the device's vmMetadata, never by name alone), then
its FQDN or host name. A name that matches more than one device is refused, never guessed.

Machine actions are asynchronous: the API answers 201 with an action that is Pending until the device picks it up.
A responder returns the action's id at once; a playbook polls mde.get_machine_action with wait_until, so no worker
waits. Every action's comment carries the idempotency key, so a retry (or a replay after a crash) finds the action an
earlier attempt created instead of creating a second one. Isolation and app restriction are not properties of a
device in the API: they follow from its latest succeeded actions, and that is the prior state recorded for undo."""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterable
from datetime import datetime
from typing import Any, ClassVar, Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator
from pydantic.alias_generators import to_camel

from shared.actions.context import ActionContext
from shared.actions.executor import ActionError
from shared.actions.model import Outcome, Plan, Target, mde_permission
from shared.actions.registry import enricher, responder
from shared.armid import ArmId
from shared.azure.errors import NotFound

VM_TYPE = "Microsoft.Compute/virtualMachines"
_MACHINE_ID = re.compile(r"^[0-9a-fA-F]{40}$")
_HOST = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9-]{0,62})(?:\.[A-Za-z0-9-]{1,63})*$")
READ = (mde_permission("Machine.Read.All"),)
DONE_STATES = ("Succeeded", "Failed", "TimeOut", "Cancelled")
ACTIVE_STATES = ("Pending", "InProgress")
REPLAY_CLOCK_SKEW_S = 5.0


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, alias_generator=to_camel, validate_by_name=True, extra="ignore")


class HostRef(_Model):
    """A Host entity as intake gives it (pass `entity`): whichever of its ids are known."""

    mde_device_id: str | None = Field(None, description="Defender for Endpoint device id (40 hex digits)")
    aad_device_id: str | None = Field(None, description="Entra device id")
    azure_id: str | None = Field(None, description="ARM id of the Azure VM")
    fqdn: str | None = None
    host_name: str | None = None
    dns_domain: str | None = None

    @field_validator("mde_device_id")
    @classmethod
    def _machine(cls, value: str | None) -> str | None:
        if value is not None and not _MACHINE_ID.match(value):
            raise ValueError("must be a Defender for Endpoint device id (40 hex digits)")
        return value.lower() if value else None

    @field_validator("aad_device_id")
    @classmethod
    def _guid(cls, value: str | None) -> str | None:
        if value is None:
            return None
        try:
            return str(uuid.UUID(value))
        except ValueError:
            raise ValueError("must be an Entra device id (a GUID)") from None

    @field_validator("fqdn", "host_name", "dns_domain")
    @classmethod
    def _name(cls, value: str | None) -> str | None:
        if value is not None and not _HOST.match(value):
            raise ValueError("must be a host name (letters, digits, dashes and dots)")
        return value.lower() if value else None

    @model_validator(mode="after")
    def _some_id(self) -> HostRef:
        if not (self.mde_device_id or self.aad_device_id or self.azure_id or self.fqdn or self.host_name):
            raise ValueError("names no device: give mdeDeviceId, aadDeviceId, azureId, fqdn or hostName")
        return self

    def name(self) -> str | None:
        if self.fqdn:
            return self.fqdn
        if self.host_name and self.dns_domain and "." not in self.host_name:
            return f"{self.host_name}.{self.dns_domain}"
        return self.host_name


class DeviceParams(_Model):
    host: HostRef = Field(description="The Host entity (entity), or a map with one of its ids")


# ---------------------------------------------------------------------------------------------------- resolution


def _only(found: list[dict[str, Any]], what: str) -> dict[str, Any]:
    if not found:
        raise ActionError(f"no Defender for Endpoint device has {what}")
    if len(found) > 1:
        names = ", ".join(sorted(str(m.get("computerDnsName")) for m in found))
        raise ActionError(f"{len(found)} Defender for Endpoint devices have {what} ({names}): refusing to guess")
    return found[0]


async def _by_vm(ctx: ActionContext, vm_id: str) -> dict[str, Any]:
    """The device on an Azure VM: candidates by name, kept only when their vmMetadata names this very VM."""
    parsed = ArmId.parse(vm_id, VM_TYPE)
    name = parsed.name.lower()
    if not _HOST.match(name):
        raise ActionError(f"{parsed.name} cannot be a device name")
    candidates = await ctx.azure.mde.find_machines(f"startswith(computerDnsName,'{name}')", top=50)
    wanted = str(parsed).lower()
    found = [m for m in candidates if str((m.get("vmMetadata") or {}).get("resourceId") or "").lower() == wanted]
    return _only(found, f"Azure resource id {parsed}")


async def _by_name(ctx: ActionContext, name: str) -> dict[str, Any]:
    mde = ctx.azure.mde
    found = await mde.find_machines(f"computerDnsName eq '{name}'")
    if not found and "." not in name:  # a short name: the device may be registered under its FQDN
        found = await mde.find_machines(f"startswith(computerDnsName,'{name}.')")
    return _only(found, f"the name {name}")


async def resolve_device(ctx: ActionContext, host: HostRef) -> dict[str, Any]:
    """The machine the Host entity names, by its strongest id. ActionError when there is none, or more than one."""
    mde = ctx.azure.mde
    if host.mde_device_id:
        try:
            machine: dict[str, Any] = await mde.get_machine(host.mde_device_id)
        except NotFound:
            raise ActionError(f"no Defender for Endpoint device with id {host.mde_device_id}") from None
        return machine
    if host.aad_device_id:
        return _only(await mde.find_machines(f"aadDeviceId eq '{host.aad_device_id}'"), host.aad_device_id)
    if host.azure_id and _is_vm(host.azure_id):
        return await _by_vm(ctx, host.azure_id)
    name = host.name()
    if name:
        return await _by_name(ctx, name)
    raise ActionError("the Host entity carries no id Defender for Endpoint knows (its azureId is not a VM)")


def _is_vm(value: str) -> bool:
    try:
        ArmId.parse(value, VM_TYPE)
    except ValueError:
        return False
    return True


def device_target(machine: dict[str, Any]) -> Target:
    """The device as guardrails see it: a device tag counts as tag=true (riposte-protected), and the Azure VM it runs
    on is checked against the protected prefixes."""
    vm_id = (machine.get("vmMetadata") or {}).get("resourceId")
    return Target(
        kind="device",
        id=str(machine["id"]),
        display=str(machine.get("computerDnsName") or machine["id"]),
        tags={str(t): "true" for t in machine.get("machineTags") or []},
        related_ids=(str(vm_id),) if vm_id else (),
    )


def latest_state(actions: Iterable[dict[str, Any]], on: str, off: str) -> dict[str, Any] | None:
    """The newest succeeded action of type `on` or `off` (actions come newest first), or None."""
    for action in actions:
        if action.get("type") in (on, off) and action.get("status") == "Succeeded":
            return action
    return None


def _active(actions: Iterable[dict[str, Any]], *types: str) -> dict[str, Any] | None:
    return next((a for a in actions if a.get("type") in types and a.get("status") in ACTIVE_STATES), None)


# ---------------------------------------------------------------------------------------------------- enrichers


class LogonUser(_Model):
    account_name: str | None = None
    account_domain: str | None = None
    logon_types: str | None = None
    last_seen: str | None = None
    is_domain_admin: bool | None = None


class PendingAction(_Model):
    id: str
    type: str
    status: str


class DeviceProfile(_Model):
    """mde.get_device: what an analyst (and an approval rule) weighs before acting on a device."""

    id: str
    computer_dns_name: str | None = None
    os_platform: str | None = None
    version: str | None = None
    health_status: str | None = None
    risk_score: str | None = None
    exposure_level: str | None = None
    device_value: str | None = None
    first_seen: str | None = None
    last_seen: str | None = None
    last_ip_address: str | None = None
    last_external_ip_address: str | None = None
    rbac_group_name: str | None = None
    machine_tags: tuple[str, ...] = ()
    aad_device_id: str | None = None
    azure_resource_id: str | None = None
    is_server: bool = False
    isolated: bool = False
    isolation_scope: str | None = None
    app_restricted: bool = False
    logon_users: tuple[LogonUser, ...] = ()
    pending_actions: tuple[PendingAction, ...] = ()


def _is_server(machine: dict[str, Any]) -> bool:
    platform = str(machine.get("osPlatform") or "")
    return "server" in platform.lower() or bool(machine.get("vmMetadata"))


@enricher(
    "mde.get_device",
    summary="Defender for Endpoint device: risk and exposure level, health, last seen, logged-on users, isolation",
    params=DeviceParams,
    permissions=(*READ, mde_permission("User.Read.All")),
    target="Host",
)
async def get_device(ctx: ActionContext, params: DeviceParams) -> DeviceProfile:
    machine = await resolve_device(ctx, params.host)
    mde = ctx.azure.mde
    actions = await mde.list_machine_actions(machine["id"])
    users = await mde.logon_users(machine["id"])
    isolation = latest_state(actions, "Isolate", "Unisolate")
    restriction = latest_state(actions, "RestrictCodeExecution", "UnrestrictCodeExecution")
    return DeviceProfile.model_validate(
        {
            **machine,
            "machineTags": tuple(machine.get("machineTags") or ()),
            "azureResourceId": (machine.get("vmMetadata") or {}).get("resourceId"),
            "isServer": _is_server(machine),
            "isolated": bool(isolation and isolation["type"] == "Isolate"),
            "isolationScope": isolation.get("scope") if isolation and isolation["type"] == "Isolate" else None,
            "appRestricted": bool(restriction and restriction["type"] == "RestrictCodeExecution"),
            "logonUsers": [LogonUser.model_validate(u) for u in users],
            "pendingActions": [PendingAction.model_validate(a) for a in actions if a.get("status") in ACTIVE_STATES],
        }
    )


class MachineActionParams(_Model):
    machine_action_id: str = Field(description="The machine action's id (machineActionId in a responder's result)")

    @field_validator("machine_action_id")
    @classmethod
    def _guid(cls, value: str) -> str:
        try:
            return str(uuid.UUID(value))
        except ValueError:
            raise ValueError("must be a machine action id (a GUID)") from None


class MachineActionStatus(_Model):
    machine_action_id: str
    type: str | None = None
    status: str = Field(description="Pending, InProgress, Succeeded, Failed, TimeOut or Cancelled")
    done: bool = Field(description="The action has ended, one way or another")
    succeeded: bool = False
    device_id: str | None = None
    computer_dns_name: str | None = None
    last_update: str | None = None
    package_location: str | None = Field(
        None, description="Where the investigation package is (the link without its short-lived token)"
    )


@enricher(
    "mde.get_machine_action",
    summary="A Defender for Endpoint machine action's status (and an investigation package's location): poll it "
    "with wait_until",
    params=MachineActionParams,
    permissions=READ,
    target="Host",
)
async def get_machine_action(ctx: ActionContext, params: MachineActionParams) -> MachineActionStatus:
    mde = ctx.azure.mde
    try:
        action = await mde.get_machine_action(params.machine_action_id)
    except NotFound:
        raise ActionError(f"no machine action {params.machine_action_id}") from None
    status = str(action.get("status") or "Unknown")
    location = None
    if action.get("type") == "CollectInvestigationPackage" and status == "Succeeded":
        # The link is a bearer token valid for minutes, and the call is limited to 2 a minute: read it once, when
        # the package is ready, and keep only where it is. An analyst gets a fresh link from the action center.
        link = urlsplit(await mde.package_uri(params.machine_action_id))
        location = f"{link.scheme}://{link.netloc}{link.path}"
    return MachineActionStatus(
        machine_action_id=str(action.get("id") or params.machine_action_id),
        type=action.get("type"),
        status=status,
        done=status in DONE_STATES,
        succeeded=status == "Succeeded",
        device_id=action.get("machineId"),
        computer_dns_name=action.get("computerDnsName"),
        last_update=action.get("lastUpdateDateTimeUtc"),
        package_location=location,
    )


# ---------------------------------------------------------------------------------------------------- responders


def action_comment(ctx: ActionContext, key: str, note: str | None) -> str:
    """The machine action's comment: who asked (the run) and the idempotency key that finds the action again."""
    text = f"Riposte run {ctx.run_id or '-'} [{key}]"
    return f"{text}: {note}" if note else text


def _ours(actions: Iterable[dict[str, Any]], action_type: str, key: str) -> dict[str, Any] | None:
    marker = f"[{key}]"
    return next(
        (a for a in actions if a.get("type") == action_type and marker in str(a.get("requestorComment") or "")), None
    )


def _result(action: dict[str, Any], started: bool) -> dict[str, Any]:
    return {
        "machineActionId": action.get("id"),
        "type": action.get("type"),
        "status": action.get("status"),
        "deviceId": action.get("machineId"),
        "computerDnsName": action.get("computerDnsName"),
        "started": started,
    }


class MachineAction:
    """A responder that starts one machine action. Subclasses say which, and how the plan reads the device."""

    action_type: ClassVar[str]

    async def read(self, ctx: ActionContext, host: HostRef) -> tuple[dict[str, Any], list[dict[str, Any]]]:
        machine = await resolve_device(ctx, host)
        return machine, await ctx.azure.mde.list_machine_actions(machine["id"])

    def body(self, plan: Plan, comment: str) -> dict[str, Any]:
        return {"Comment": comment}

    async def apply(self, ctx: ActionContext, plan: Plan, key: str) -> dict[str, Any]:
        mde = ctx.azure.mde
        # A retry after a lost response: the action the first attempt created carries the key in its comment.
        existing = _ours(await mde.list_machine_actions(plan.target.id), self.action_type, key)
        if existing is not None:
            return _result(existing, started=False)
        comment = action_comment(ctx, key, plan.intended.get("comment"))
        action = await mde.start_machine_action(plan.target.id, self.action_type, self.body(plan, comment))
        return _result(action, started=True)

    async def applied_since(self, ctx: ActionContext, plan: Plan, intent_at: float) -> bool:
        """Whether an interrupted attempt's action exists: one of this type created since its intent, whose comment
        names this run (the key is not known here, so the run and the time narrow it)."""
        marker = f"Riposte run {ctx.run_id or '-'} ["
        actions = await ctx.azure.mde.list_machine_actions(plan.target.id)
        for action in actions:
            if action.get("type") != self.action_type or marker not in str(action.get("requestorComment") or ""):
                continue
            created = _epoch(action.get("creationDateTimeUtc"))
            if created >= intent_at - REPLAY_CLOCK_SKEW_S:
                return True
        return False


def _epoch(value: Any) -> float:
    try:
        return datetime.fromisoformat(str(value).replace("Z", "+00:00")).timestamp()
    except ValueError:
        return 0.0


def _running(ctx: ActionContext, actions: list[dict[str, Any]], action_type: str, what: str) -> dict[str, Any] | None:
    """The action of this type in progress on the device: this run's own (a replay finds it), or else a refusal, as
    the API refuses a second one."""
    running = _active(actions, action_type)
    if running is None:
        return None
    if f"Riposte run {ctx.run_id or '-'} [" in str(running.get("requestorComment") or ""):
        return running
    raise ActionError(f"{what} is already running on the device ({running['id']})")


# ---- isolation


class IsolateParams(DeviceParams):
    isolation_type: Literal["Full", "Selective"] = Field(
        "Full", description="Full: only the Defender service stays reachable; Selective: Outlook, Teams and Skype too"
    )
    comment: str | None = Field(None, max_length=500, description="Added to the action's comment in Defender")


def _isolation(actions: list[dict[str, Any]]) -> tuple[bool, str | None]:
    state = latest_state(actions, "Isolate", "Unisolate")
    isolated = bool(state and state["type"] == "Isolate")
    return isolated, (state.get("scope") if state and isolated else None)


@responder(
    "mde.isolate_device",
    summary="Isolate a device from the network with Defender for Endpoint (Full or Selective); undo releases it, "
    "only when it was not isolated before",
    params=IsolateParams,
    permissions=(mde_permission("Machine.Isolate"), *READ),
    target="Host",
    reversible=True,
    destructive=True,
)
class IsolateDevice(MachineAction):
    action_type = "Isolate"

    async def plan(self, ctx: ActionContext, params: IsolateParams) -> Plan:
        machine, actions = await self.read(ctx, params.host)
        isolated, scope = _isolation(actions)
        pending = _active(actions, "Isolate", "Unisolate")
        if pending is not None and pending["type"] == "Unisolate":
            raise ActionError(f"a release from isolation is in progress on the device ({pending['id']})")
        noop = isolated or pending is not None
        reason = ""
        if isolated:
            reason = f"the device is already isolated ({scope or 'Full'})"
        elif pending is not None:
            reason = f"an isolation is already in progress ({pending['id']})"
        return Plan(
            target=device_target(machine),
            prior={"isolated": isolated, "isolationScope": scope},
            intended={"isolated": True, "isolationType": params.isolation_type, "comment": params.comment},
            noop=noop,
            reason=reason,
        )

    def body(self, plan: Plan, comment: str) -> dict[str, Any]:
        return {"Comment": comment, "IsolationType": plan.intended["isolationType"]}

    async def undo(self, ctx: ActionContext, outcome: Outcome) -> dict[str, Any]:
        # Only a DONE outcome is undone: the device was not isolated before Riposte isolated it.
        if outcome.target is None or outcome.prior.get("isolated") is not False:
            raise ActionError("the device was isolated before Riposte acted: it stays isolated")
        return await _release(ctx, outcome.target.id, outcome.idempotency_key)


async def _release(ctx: ActionContext, device_id: str, key: str) -> dict[str, Any]:
    mde = ctx.azure.mde
    actions = await mde.list_machine_actions(device_id)
    mine = _ours(actions, "Unisolate", f"{key}:undo")
    if mine is not None:
        return _result(mine, started=False)
    isolated, _ = _isolation(actions)
    if not isolated and _active(actions, "Isolate") is None:
        return {"deviceId": device_id, "started": False, "reason": "the device is no longer isolated"}
    comment = action_comment(ctx, f"{key}:undo", "undo of the isolation")
    return _result(await mde.start_machine_action(device_id, "Unisolate", {"Comment": comment}), started=True)


class ReleaseParams(DeviceParams):
    comment: str | None = Field(None, max_length=500, description="Added to the action's comment in Defender")


@responder(
    "mde.release_device",
    summary="Release a device from Defender for Endpoint isolation; undo isolates it again as it was",
    params=ReleaseParams,
    permissions=(mde_permission("Machine.Isolate"), *READ),
    target="Host",
    reversible=True,
    destructive=False,
)
class ReleaseDevice(MachineAction):
    action_type = "Unisolate"

    async def plan(self, ctx: ActionContext, params: ReleaseParams) -> Plan:
        machine, actions = await self.read(ctx, params.host)
        isolated, scope = _isolation(actions)
        pending = _active(actions, "Unisolate")
        noop = not isolated or pending is not None
        reason = "the device is not isolated" if not isolated else ""
        if pending is not None:
            reason = f"a release is already in progress ({pending['id']})"
        return Plan(
            target=device_target(machine),
            prior={"isolated": isolated, "isolationScope": scope},
            intended={"isolated": False, "comment": params.comment},
            noop=noop,
            reason=reason,
        )

    async def undo(self, ctx: ActionContext, outcome: Outcome) -> dict[str, Any]:
        if outcome.target is None:
            raise ActionError("the device was not recorded")
        mde = ctx.azure.mde
        actions = await mde.list_machine_actions(outcome.target.id)
        mine = _ours(actions, "Isolate", f"{outcome.idempotency_key}:undo")
        if mine is not None:
            return _result(mine, started=False)
        comment = action_comment(ctx, f"{outcome.idempotency_key}:undo", "undo of the release")
        body = {"Comment": comment, "IsolationType": outcome.prior.get("isolationScope") or "Full"}
        return _result(await mde.start_machine_action(outcome.target.id, "Isolate", body), started=True)


# ---- antivirus scan and investigation package


class ScanParams(DeviceParams):
    scan_type: Literal["Quick", "Full"] = "Quick"
    comment: str | None = Field(None, max_length=500)


@responder(
    "mde.run_av_scan",
    summary="Run a Microsoft Defender Antivirus scan (Quick or Full) on a device; poll mde.get_machine_action",
    params=ScanParams,
    permissions=(mde_permission("Machine.Scan"), *READ),
    target="Host",
    reversible=False,
    destructive=False,
    undo_hint="A scan cannot be undone; it changes nothing but what it quarantines, which Defender lists",
)
class RunAvScan(MachineAction):
    action_type = "RunAntiVirusScan"

    async def plan(self, ctx: ActionContext, params: ScanParams) -> Plan:
        machine, actions = await self.read(ctx, params.host)
        running = _running(ctx, actions, self.action_type, "a scan")
        return Plan(
            target=device_target(machine),
            intended={"scanType": params.scan_type, "comment": params.comment},
            noop=running is not None,
            reason=f"this run's scan is running ({running['id']})"
            if running
            else f"would run a {params.scan_type} scan",
        )

    def body(self, plan: Plan, comment: str) -> dict[str, Any]:
        return {"Comment": comment, "ScanType": plan.intended["scanType"]}

    async def undo(self, ctx: ActionContext, outcome: Outcome) -> dict[str, Any]:
        raise ActionError("an antivirus scan cannot be undone")


class CollectParams(DeviceParams):
    comment: str | None = Field(None, max_length=500)


@responder(
    "mde.collect_investigation_package",
    summary="Collect a forensic investigation package from a device; poll mde.get_machine_action for its location",
    params=CollectParams,
    permissions=(mde_permission("Machine.CollectForensics"), *READ),
    target="Host",
    reversible=False,
    destructive=False,
    undo_hint="Collecting a package changes nothing on the device; there is nothing to undo",
)
class CollectInvestigationPackage(MachineAction):
    action_type = "CollectInvestigationPackage"

    async def plan(self, ctx: ActionContext, params: CollectParams) -> Plan:
        machine, actions = await self.read(ctx, params.host)
        running = _running(ctx, actions, self.action_type, "a collection")
        return Plan(
            target=device_target(machine),
            intended={"comment": params.comment},
            noop=running is not None,
            reason=f"this run's collection is running ({running['id']})" if running else "would collect a package",
        )

    async def undo(self, ctx: ActionContext, outcome: Outcome) -> dict[str, Any]:
        raise ActionError("collecting an investigation package cannot be undone")


# ---- app restriction


def _restricted(actions: list[dict[str, Any]]) -> bool:
    state = latest_state(actions, "RestrictCodeExecution", "UnrestrictCodeExecution")
    return bool(state and state["type"] == "RestrictCodeExecution")


@responder(
    "mde.restrict_app_execution",
    summary="Restrict a device to running Microsoft-signed code only; undo lifts the restriction if it was not "
    "there before",
    params=ReleaseParams,
    permissions=(mde_permission("Machine.RestrictExecution"), *READ),
    target="Host",
    reversible=True,
    destructive=True,
)
class RestrictAppExecution(MachineAction):
    action_type = "RestrictCodeExecution"

    async def plan(self, ctx: ActionContext, params: ReleaseParams) -> Plan:
        machine, actions = await self.read(ctx, params.host)
        restricted = _restricted(actions)
        pending = _active(actions, "RestrictCodeExecution", "UnrestrictCodeExecution")
        if pending is not None and pending["type"] == "UnrestrictCodeExecution":
            raise ActionError(f"removing the app restriction is in progress on the device ({pending['id']})")
        noop = restricted or pending is not None
        reason = "app execution is already restricted" if restricted else ""
        if pending is not None:
            reason = f"a restriction is already in progress ({pending['id']})"
        return Plan(
            target=device_target(machine),
            prior={"appRestricted": restricted},
            intended={"appRestricted": True, "comment": params.comment},
            noop=noop,
            reason=reason,
        )

    async def undo(self, ctx: ActionContext, outcome: Outcome) -> dict[str, Any]:
        if outcome.target is None or outcome.prior.get("appRestricted") is not False:
            raise ActionError("app execution was restricted before Riposte acted: it stays restricted")
        mde = ctx.azure.mde
        key = f"{outcome.idempotency_key}:undo"
        actions = await mde.list_machine_actions(outcome.target.id)
        mine = _ours(actions, "UnrestrictCodeExecution", key)
        if mine is not None:
            return _result(mine, started=False)
        if not _restricted(actions) and _active(actions, "RestrictCodeExecution") is None:
            return {"deviceId": outcome.target.id, "started": False, "reason": "app execution is no longer restricted"}
        comment = action_comment(ctx, key, "undo of the app restriction")
        action = await mde.start_machine_action(outcome.target.id, "UnrestrictCodeExecution", {"Comment": comment})
        return _result(action, started=True)
