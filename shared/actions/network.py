"""Network actions: isolate a VM behind an NSG, block an IP in the perimeter NSGs, and Network Watcher packet
captures. Every write is idempotent (deterministic names, read before write, "already there" is done), records what
it replaced, and is undone from that record.

Concurrency: a read-modify-write of one NSG holds the adapter's per-NSG lock for the whole span (this process), and
sends the etag it read as If-Match, or If-None-Match: * when it creates (other processes): a conflicting write then
fails with 412 or SecurityRuleConflict, and the action re-reads and decides again instead of losing a rule."""

from __future__ import annotations

import asyncio
import hashlib
import ipaddress
import re
from collections.abc import Awaitable, Callable
from typing import Any, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, field_validator
from pydantic.alias_generators import to_camel

from shared.actions.compute import read_vm, vm_target
from shared.actions.context import ActionContext
from shared.actions.executor import ActionError
from shared.actions.model import Outcome, Plan, Target
from shared.actions.registry import enricher, responder
from shared.actions.roles import CAPTURE_STORAGE_OPERATIONS, NIC_WRITE, network, vm
from shared.armid import ArmId, resource_id, same_id
from shared.azure.compute import VM_TYPE, power_state
from shared.azure.errors import AzureError, NotFound, PreconditionFailed
from shared.azure.network import CAPTURE_TYPE, NSG_TYPE

MIN_PRIORITY, MAX_PRIORITY = 100, 4096
CONFLICT_ATTEMPTS = 5  # re-reads after losing a race to another writer before giving up
_NAME_SAFE = re.compile(r"[^A-Za-z0-9_.-]")
T = TypeVar("T")


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, alias_generator=to_camel, validate_by_name=True, extra="forbid")


def _vm_id(value: str) -> str:
    return str(ArmId.parse(value, VM_TYPE))


def _tags(resource: dict[str, Any]) -> dict[str, str]:
    return {str(k): str(v) for k, v in (resource.get("tags") or {}).items()}


def _nsg_of(nic: dict[str, Any]) -> str | None:
    found = ((nic.get("properties") or {}).get("networkSecurityGroup") or {}).get("id")
    return str(found) if found else None


async def _settled(*steps: Awaitable[T]) -> list[T]:
    """Like asyncio.gather, but waits for every write to finish before raising the first failure: an action never
    reports failure (and releases its NSG lock) while one of its writes is still in flight."""
    results = await asyncio.gather(*steps, return_exceptions=True)
    for result in results:
        if isinstance(result, BaseException):
            raise result
    return [result for result in results if not isinstance(result, BaseException)]


async def _retrying_conflicts(what: str, attempt: Callable[[], Awaitable[T]]) -> T:
    """Runs a read-decide-write `attempt` again when another writer got in between (412 on our If-Match /
    If-None-Match, or a priority another rule took first)."""
    for _ in range(CONFLICT_ATTEMPTS):
        try:
            return await attempt()
        except PreconditionFailed:
            continue
        except AzureError as error:
            if error.code != "SecurityRuleConflict":
                raise
    raise ActionError(f"{what}: other writers kept changing it; gave up after {CONFLICT_ATTEMPTS} attempts")


# ---------------------------------------------------------------------------------------------------------------------
# network.isolate_vm


class IsolateParams(_Model):
    vm: str = Field(description="ARM id of the virtual machine (Host.azureID or AzureResource.resourceId)")

    @field_validator("vm")
    @classmethod
    def _vm(cls, value: str) -> str:
        return _vm_id(value)


def isolation_nsg_name(vm_name: str) -> str:
    """riposte-isolate-<vm>: deterministic, so a retry finds the NSG the first attempt made (NSG names: 80 chars)."""
    name = f"riposte-isolate-{_NAME_SAFE.sub('-', vm_name)}"
    if len(name) > 80:
        digest = hashlib.sha256(vm_name.lower().encode()).hexdigest()[:8]
        name = f"{name[:71]}-{digest}"
    return name


def isolation_rules(allowed: list[str]) -> list[dict[str, Any]]:
    """Deny everything in and out; the management prefixes stay reachable both ways. Priority 4096 is the lowest a
    custom rule can have, yet it overrides the default rules (AllowVnetInBound...), which sit at 65000 and up."""

    def rule(name: str, access: str, direction: str, priority: int, remote: list[str]) -> dict[str, Any]:
        local_side, remote_side = ("destination", "source") if direction == "Inbound" else ("source", "destination")
        props: dict[str, Any] = {
            "description": "Riposte isolation",
            "protocol": "*",
            "access": access,
            "direction": direction,
            "priority": priority,
            "sourcePortRange": "*",
            "destinationPortRange": "*",
            f"{local_side}AddressPrefix": "*",
        }
        if remote == ["*"]:
            props[f"{remote_side}AddressPrefix"] = "*"
        else:
            props[f"{remote_side}AddressPrefixes"] = remote
        return {"name": name, "properties": props}

    rules = []
    if allowed:
        rules.append(rule("riposte-allow-management-inbound", "Allow", "Inbound", MIN_PRIORITY, allowed))
        rules.append(rule("riposte-allow-management-outbound", "Allow", "Outbound", MIN_PRIORITY, allowed))
    rules.append(rule("riposte-deny-all-inbound", "Deny", "Inbound", MAX_PRIORITY, ["*"]))
    rules.append(rule("riposte-deny-all-outbound", "Deny", "Outbound", MAX_PRIORITY, ["*"]))
    return rules


def _rule_signature(rule: dict[str, Any]) -> tuple[Any, ...]:
    props = rule.get("properties") or {}

    def prefixes(side: str) -> tuple[str, ...]:
        many = props.get(f"{side}AddressPrefixes") or []
        single = props.get(f"{side}AddressPrefix")
        return tuple(sorted(str(p) for p in many)) or ((str(single),) if single else ())

    return (
        str(rule.get("name", "")).lower(),
        str(props.get("access", "")).lower(),
        str(props.get("direction", "")).lower(),
        int(props.get("priority") or 0),
        str(props.get("protocol", "")).lower(),
        prefixes("source"),
        prefixes("destination"),
        str(props.get("sourcePortRange") or ""),
        str(props.get("destinationPortRange") or ""),
    )


def rules_match(nsg: dict[str, Any], wanted: list[dict[str, Any]]) -> bool:
    """The NSG holds exactly the isolation rules: an added allow rule would be a hole in the isolation."""
    present = (nsg.get("properties") or {}).get("securityRules") or []
    return sorted(map(_rule_signature, present)) == sorted(map(_rule_signature, wanted))


def _allowed_prefixes(ctx: ActionContext) -> list[str]:
    allowed = []
    for prefix in ctx.settings.isolation_allowed_prefixes:
        try:
            allowed.append(str(ipaddress.ip_network(prefix.strip(), strict=False)))
        except ValueError:
            raise ActionError(f"RIPOSTE_ISOLATION_ALLOWED_PREFIXES: {prefix!r} is not an address prefix") from None
    return allowed


async def _find_nsg(ctx: ActionContext, nsg_id: str) -> dict[str, Any] | None:
    try:
        nsg: dict[str, Any] = await ctx.azure.network.get_nsg(nsg_id)
    except NotFound:
        return None
    return nsg


async def _set_nic_nsg(ctx: ActionContext, nic_id: str, nsg_id: str | None, only_if_on: str | None = None) -> str:
    """Puts `nsg_id` (None: no NSG) on the NIC with If-Match on the etag read. Returns 'changed', 'unchanged', or
    'conflict' when `only_if_on` is given and the NIC is on some other NSG (someone changed it since)."""

    async def attempt() -> str:
        nic = await ctx.azure.network.get_nic(nic_id)
        current = _nsg_of(nic)
        if (current is None and nsg_id is None) or same_id(current, nsg_id):
            return "unchanged"
        if only_if_on is not None and not same_id(current, only_if_on):
            return "conflict"
        props = nic.setdefault("properties", {})
        props["networkSecurityGroup"] = {"id": nsg_id} if nsg_id else None
        await ctx.azure.network.put_nic(nic_id, nic, if_match=nic.get("etag"))
        return "changed"

    return await _retrying_conflicts(f"network interface {nic_id}", attempt)


@responder(
    "network.isolate_vm",
    summary="Put every NIC of a VM behind an isolation NSG (deny all in and out except the management prefixes); "
    "undo puts each NIC's previous NSG back (or none) and deletes the isolation NSG",
    params=IsolateParams,
    permissions=(
        *vm("/read"),
        *network(
            "networkSecurityGroups/read",
            "networkSecurityGroups/write",
            "networkSecurityGroups/join/action",
            "networkSecurityGroups/delete",
        ),
        *NIC_WRITE,
    ),
    target="Host",
    reversible=True,
    destructive=True,
)
class IsolateVm:
    """Several writes (create the NSG, then one per NIC), made idempotent as a whole: each step reads first and
    skips what is already done, the NSG name is derived from the VM, and a retry after a crash reuses the prior NSGs
    recorded before the first attempt (the executor's ledger), so it finishes the job without duplicating it."""

    async def plan(self, ctx: ActionContext, params: IsolateParams) -> Plan:
        vm = await read_vm(ctx, params.vm, instance_view=False)
        vm_id = ArmId.parse(str(vm.get("id") or params.vm), VM_TYPE)
        nic_ids = [
            str(n["id"])
            for n in ((vm.get("properties") or {}).get("networkProfile") or {}).get("networkInterfaces") or []
            if n.get("id")
        ]
        if not nic_ids:
            raise ActionError(f"{vm_id.name} has no network interfaces to isolate")
        nsg_id = str(resource_id(vm_id.subscription, vm_id.resource_group, NSG_TYPE, isolation_nsg_name(vm_id.name)))
        allowed = _allowed_prefixes(ctx)
        wanted = isolation_rules(allowed)
        nics, nsg = await asyncio.gather(
            asyncio.gather(*(ctx.azure.network.get_nic(nic_id) for nic_id in nic_ids)), _find_nsg(ctx, nsg_id)
        )
        previous = [
            {"nic": str(nic.get("id") or nic_id), "nsg": _nsg_of(nic)}
            for nic_id, nic in zip(nic_ids, nics, strict=True)
        ]
        nsg_ready = nsg is not None and rules_match(nsg, wanted)
        to_move = [entry["nic"] for entry in previous if not same_id(entry["nsg"], nsg_id)]
        noop = nsg_ready and not to_move
        return Plan(
            target=vm_target(vm, str(vm_id)),
            prior={"nics": previous, "isolationNsgExisted": nsg is not None},
            intended={
                "isolationNsgId": nsg_id,
                "location": vm.get("location"),
                "allowedPrefixes": allowed,
                "rules": wanted,
                "createNsg": nsg is None,
                "rewriteNsgRules": nsg is not None and not nsg_ready,
                "nics": [entry["nic"] for entry in previous],
                "nicsToMove": to_move,
            },
            noop=noop,
            reason=f"every NIC of {vm_id.name} is already behind {isolation_nsg_name(vm_id.name)}"
            if noop
            else f"{len(to_move)} of {len(previous)} NIC(s) of {vm_id.name} would move behind the isolation NSG",
        )

    async def apply(self, ctx: ActionContext, plan: Plan, key: str) -> dict[str, Any]:
        nsg_id = str(plan.intended["isolationNsgId"])
        wanted: list[dict[str, Any]] = plan.intended["rules"]
        network = ctx.azure.network

        async def ensure_nsg() -> str:
            nsg = await _find_nsg(ctx, nsg_id)
            if nsg is not None and rules_match(nsg, wanted):
                return "existed"
            body: dict[str, Any] = {
                "location": (nsg or {}).get("location") or plan.intended["location"],
                "tags": {
                    **((nsg or {}).get("tags") or {}),
                    "created-by": "riposte",
                    "riposte-isolates": plan.target.display,
                },
                "properties": {"securityRules": wanted},
            }
            if nsg is None:
                await network.put_nsg(nsg_id, body, if_none_match="*")
                return "created"
            await network.put_nsg(nsg_id, body, if_match=nsg.get("etag"))
            return "rules rewritten"

        async with network.nsg_writes(nsg_id):
            nsg_step = await _retrying_conflicts(f"isolation NSG {nsg_id}", ensure_nsg)
            # Each NIC is its own resource with its own lock at the provider, so they move in parallel.
            nic_ids: list[str] = plan.intended["nics"]
            steps = await _settled(*(_set_nic_nsg(ctx, nic_id, nsg_id) for nic_id in nic_ids))
        return {
            "isolationNsgId": nsg_id,
            "isolationNsg": nsg_step,
            "nicsMoved": [n for n, step in zip(nic_ids, steps, strict=True) if step == "changed"],
            "nicsAlreadyIsolated": [n for n, step in zip(nic_ids, steps, strict=True) if step == "unchanged"],
        }

    async def undo(self, ctx: ActionContext, outcome: Outcome) -> dict[str, Any]:
        nsg_id = str(outcome.intended["isolationNsgId"])
        network = ctx.azure.network

        async def restore(entry: dict[str, Any]) -> str:
            try:
                # Only a NIC still on the isolation NSG is moved back: one an analyst has moved since is left alone.
                return await _set_nic_nsg(ctx, str(entry["nic"]), entry["nsg"], only_if_on=nsg_id)
            except NotFound:
                return "gone"

        async def delete_if_unused() -> str:
            nsg = await _find_nsg(ctx, nsg_id)
            if nsg is None:
                return "already deleted"
            props = nsg.get("properties") or {}
            if props.get("networkInterfaces") or props.get("subnets"):
                return "kept: still in use"
            await network.delete_nsg(nsg_id, if_match=nsg.get("etag"))
            return "deleted"

        entries: list[dict[str, Any]] = outcome.prior.get("nics") or []
        async with network.nsg_writes(nsg_id):
            steps = await _settled(*(restore(entry) for entry in entries))
            nsg_step = await _retrying_conflicts(f"isolation NSG {nsg_id}", delete_if_unused)

        def nics_where(step: str) -> list[str]:
            return [str(e["nic"]) for e, done in zip(entries, steps, strict=True) if done == step]

        if nics_where("conflict"):
            raise ActionError(
                f"left {', '.join(nics_where('conflict'))} alone: moved off the isolation NSG since it was isolated "
                f"(the others were restored; isolation NSG {nsg_step})"
            )
        return {
            "nicsRestored": nics_where("changed"),
            "nicsAlreadyRestored": nics_where("unchanged"),
            "nicsGone": nics_where("gone"),
            "isolationNsg": nsg_step,
        }


# ---------------------------------------------------------------------------------------------------------------------
# network.block_ip


class BlockIpParams(_Model):
    ip: str = Field(description="The address to block (IPv4 or IPv6, one address)")
    nsgs: list[str] = Field(
        default_factory=list, description="ARM ids of the NSGs to write to; default RIPOSTE_BLOCK_IP_NSGS"
    )

    @field_validator("ip")
    @classmethod
    def _address(cls, value: str) -> str:
        address = ipaddress.ip_address(value.strip())
        if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
            address = address.ipv4_mapped
        if address.is_unspecified or address.is_loopback or address.is_multicast:
            raise ValueError(f"{address} is not an address a peer can send from")
        return str(address)

    @field_validator("nsgs")
    @classmethod
    def _nsg_ids(cls, value: list[str]) -> list[str]:
        return [str(ArmId.parse(nsg, NSG_TYPE)) for nsg in value]


def block_rule_name(ip: str) -> str:
    """riposte-block-203-0-113-66 / riposte-block-2001-db8--1: one rule per address, found again by name."""
    return "riposte-block-" + ip.replace(".", "-").replace(":", "-")


def first_free_priority(nsg: dict[str, Any], direction: str = "Inbound") -> int:
    taken = {
        int((rule.get("properties") or {}).get("priority") or 0)
        for rule in (nsg.get("properties") or {}).get("securityRules") or []
        if str((rule.get("properties") or {}).get("direction", "")).lower() == direction.lower()
    }
    for priority in range(MIN_PRIORITY, MAX_PRIORITY + 1):
        if priority not in taken:
            return priority
    raise ActionError(f"{nsg.get('name')} has no free {direction.lower()} priority left")


def _find_rule(nsg: dict[str, Any], name: str) -> dict[str, Any] | None:
    for rule in (nsg.get("properties") or {}).get("securityRules") or []:
        if str(rule.get("name", "")).lower() == name.lower():
            found: dict[str, Any] = rule
            return found
    return None


@responder(
    "network.block_ip",
    summary="Deny inbound traffic from an IP with a rule named after it, at the first free priority of each "
    "configured NSG; undo removes the rule",
    params=BlockIpParams,
    permissions=network(
        "networkSecurityGroups/read",
        "networkSecurityGroups/securityRules/write",
        "networkSecurityGroups/securityRules/delete",
    ),
    target="Ip",
    reversible=True,
    destructive=True,
)
class BlockIp:
    async def plan(self, ctx: ActionContext, params: BlockIpParams) -> Plan:
        nsg_ids = params.nsgs or [str(ArmId.parse(n, NSG_TYPE)) for n in ctx.settings.block_ip_nsgs]
        if not nsg_ids:
            raise ActionError("no NSG to block in: set RIPOSTE_BLOCK_IP_NSGS or give nsgs")
        address = ipaddress.ip_address(params.ip)
        for prefix in ctx.settings.isolation_allowed_prefixes:
            network = ipaddress.ip_network(prefix.strip(), strict=False)
            if address.version == network.version and address in network:
                raise ActionError(f"{params.ip} is in the management prefix {network}: refusing to block it")
        name = block_rule_name(params.ip)
        try:
            nsgs = await asyncio.gather(*(ctx.azure.network.get_nsg(nsg_id) for nsg_id in nsg_ids))
        except NotFound as error:
            raise ActionError(f"a configured NSG was not found: {error}") from None
        assert ctx.guardrails is not None
        for nsg_id, nsg in zip(nsg_ids, nsgs, strict=True):
            nsg_target = Target(
                kind="nsg", id=str(nsg.get("id") or nsg_id), display=str(nsg.get("name")), tags=_tags(nsg)
            )
            if ctx.guardrails.blocked(nsg_target):
                # The NSG is what the write touches, so a protected one stops the action (the executor reports why).
                return Plan(target=nsg_target, intended={"rule": name, "ip": params.ip}, noop=False)
        present = {}
        for nsg_id, nsg in zip(nsg_ids, nsgs, strict=True):
            present[str(nsg.get("id") or nsg_id)] = _find_rule(nsg, name) is not None
        missing = [nsg_id for nsg_id, has_rule in present.items() if not has_rule]
        return Plan(
            target=Target(kind="ip", id=params.ip, display=params.ip),
            prior={"nsgs": [{"nsg": nsg_id, "ruleExisted": has_rule} for nsg_id, has_rule in present.items()]},
            intended={
                "rule": name,
                "ip": params.ip,
                "nsgs": list(present),
                "priorities": {
                    str(nsg.get("id") or nsg_id): first_free_priority(nsg)
                    for nsg_id, nsg in zip(nsg_ids, nsgs, strict=True)
                    if str(nsg.get("id") or nsg_id) in missing
                },
            },
            noop=not missing,
            reason=f"{name} is already in every NSG" if not missing else f"would add {name} to {len(missing)} NSG(s)",
        )

    async def apply(self, ctx: ActionContext, plan: Plan, key: str) -> dict[str, Any]:
        name, ip = str(plan.intended["rule"]), str(plan.intended["ip"])
        network = ctx.azure.network
        description = f"Blocked by Riposte (run {ctx.run_id or 'manual'})"[:140]

        async def block_in(nsg_id: str) -> dict[str, Any]:
            async def attempt() -> dict[str, Any]:
                nsg = await network.get_nsg(nsg_id)
                existing = _find_rule(nsg, name)
                if existing is not None:
                    return {
                        "rule": name,
                        "priority": (existing.get("properties") or {}).get("priority"),
                        "created": False,
                    }
                priority = first_free_priority(nsg)
                properties = {
                    "description": description,
                    "protocol": "*",
                    "access": "Deny",
                    "direction": "Inbound",
                    "priority": priority,
                    "sourceAddressPrefix": ip,
                    "sourcePortRange": "*",
                    "destinationAddressPrefix": "*",
                    "destinationPortRange": "*",
                }
                # If-None-Match: * so a same-named rule created meanwhile elsewhere is never overwritten; a priority
                # taken meanwhile comes back as SecurityRuleConflict. Either way: re-read and decide again.
                await network.put_security_rule(nsg_id, name, properties, if_none_match="*")
                return {"rule": name, "priority": priority, "created": True}

            async with network.nsg_writes(nsg_id):
                return await _retrying_conflicts(f"NSG {nsg_id}", attempt)

        nsg_ids: list[str] = plan.intended["nsgs"]
        results = await _settled(*(block_in(nsg_id) for nsg_id in nsg_ids))
        return {"nsgs": dict(zip(nsg_ids, results, strict=True))}

    async def undo(self, ctx: ActionContext, outcome: Outcome) -> dict[str, Any]:
        name = str(outcome.intended["rule"])
        network = ctx.azure.network

        async def unblock(nsg_id: str) -> str:
            async def attempt() -> str:
                try:
                    nsg = await network.get_nsg(nsg_id)
                except NotFound:
                    return "NSG gone"
                rule = _find_rule(nsg, name)
                if rule is None:
                    return "already removed"
                await network.delete_security_rule(nsg_id, name, if_match=rule.get("etag"))
                return "removed"

            async with network.nsg_writes(nsg_id):
                return await _retrying_conflicts(f"NSG {nsg_id}", attempt)

        # A rule that was there before this action (prior) is not ours to remove.
        ours = [str(e["nsg"]) for e in outcome.prior.get("nsgs") or [] if not e.get("ruleExisted")]
        results = await _settled(*(unblock(nsg_id) for nsg_id in ours))
        return {"rule": name, "nsgs": dict(zip(ours, results, strict=True))}


# ---------------------------------------------------------------------------------------------------------------------
# packet captures


class CaptureFilter(_Model):
    """One packet filter, as Network Watcher takes it: addresses and ports as single values, ranges (a-b) or
    semicolon-separated lists."""

    protocol: Literal["TCP", "UDP", "Any"] = "Any"
    local_ip_address: str | None = Field(None, alias="localIPAddress")
    remote_ip_address: str | None = Field(None, alias="remoteIPAddress")
    local_port: str | None = None
    remote_port: str | None = None


class StartCaptureParams(_Model):
    vm: str = Field(description="ARM id of the virtual machine to capture on")
    duration_seconds: int | None = Field(None, gt=0, description="Default RIPOSTE_CAPTURE_DEFAULT_SECONDS")
    max_bytes: int | None = Field(None, gt=0, description="Bytes per session; default RIPOSTE_CAPTURE_MAX_BYTES")
    bytes_per_packet: int = Field(0, ge=0, description="0: whole packets")
    filters: list[CaptureFilter] = Field(default_factory=list)

    @field_validator("vm")
    @classmethod
    def _vm(cls, value: str) -> str:
        return _vm_id(value)


def capture_name(vm_name: str, key: str) -> str:
    """riposte-<vm>-<hash of the idempotency key>: a retry of the same step finds the session it started."""
    digest = hashlib.sha256(key.encode()).hexdigest()[:16]
    return f"riposte-{_NAME_SAFE.sub('-', vm_name)[:40]}-{digest}"


class CaptureStatus(_Model):
    capture_id: str
    status: str = Field(description="NotStarted, Running, Stopped, Error or Unknown")
    done: bool = Field(description="The session has ended (Stopped or Error): the file is complete")
    stop_reason: str | None = None
    capture_start_time: str | None = None
    errors: list[str] = Field(default_factory=list)
    target: str | None = None
    storage_path: str | None = None
    time_limit_seconds: int | None = None
    total_bytes_per_session: int | None = None


async def _capture_status(ctx: ActionContext, capture_id: str) -> CaptureStatus:
    network = ctx.azure.network
    capture = await network.get_packet_capture(capture_id)
    status = await network.packet_capture_status(capture_id)
    props = capture.get("properties") or {}
    state = str(status.get("packetCaptureStatus") or "Unknown")
    return CaptureStatus(
        capture_id=str(capture.get("id") or capture_id),
        status=state,
        done=state in ("Stopped", "Error"),
        stop_reason=status.get("stopReason") or None,
        capture_start_time=status.get("captureStartTime"),
        errors=[str(e) for e in status.get("packetCaptureError") or []],
        target=props.get("target"),
        storage_path=(props.get("storageLocation") or {}).get("storagePath"),
        time_limit_seconds=props.get("timeLimitInSeconds"),
        total_bytes_per_session=props.get("totalBytesPerSession"),
    )


CAPTURE_PERMISSIONS = (
    *vm("/read"),
    *network(
        "networkWatchers/read",
        "networkWatchers/packetCaptures/read",
        "networkWatchers/packetCaptures/write",
        "networkWatchers/packetCaptures/queryStatus/action",
        "networkWatchers/packetCaptures/stop/action",
    ),
    # Network Watcher installs its VM extension if it is missing, on the caller's authority.
    *vm("/extensions/read", "/extensions/write"),
    *CAPTURE_STORAGE_OPERATIONS,
)


@responder(
    "network.start_packet_capture",
    summary="Start a bounded Network Watcher packet capture on a VM into the configured storage account; undo stops "
    "it. Completion is checked later with network.get_packet_capture",
    params=StartCaptureParams,
    permissions=CAPTURE_PERMISSIONS,
    target="Host",
    reversible=True,
    destructive=False,
)
class StartPacketCapture:
    async def plan(self, ctx: ActionContext, params: StartCaptureParams) -> Plan:
        settings = ctx.settings
        storage = settings.capture_storage_account_id
        if not storage:
            raise ActionError("RIPOSTE_CAPTURE_STORAGE_ACCOUNT_ID is not set: there is nowhere to write the capture")
        duration = params.duration_seconds or settings.capture_default_seconds
        if duration > settings.capture_max_seconds:
            raise ActionError(f"durationSeconds {duration} is over the limit of {settings.capture_max_seconds}")
        max_bytes = params.max_bytes or settings.capture_max_bytes
        if max_bytes > settings.capture_max_bytes:
            raise ActionError(f"maxBytes {max_bytes} is over the limit of {settings.capture_max_bytes}")
        vm = await read_vm(ctx, params.vm, instance_view=True)
        vm_id = ArmId.parse(str(vm.get("id") or params.vm), VM_TYPE)
        target = vm_target(vm, str(vm_id))
        state = power_state(vm)
        if state != "running":
            raise ActionError(f"{vm_id.name} is {state}: a packet capture needs a running VM")
        location = str(vm.get("location") or "").replace(" ", "").lower()
        watchers = await ctx.azure.network.list_network_watchers(vm_id.subscription)
        watcher = next((w for w in watchers if str(w.get("location") or "").replace(" ", "").lower() == location), None)
        if watcher is None:
            raise ActionError(f"no network watcher in {location} for subscription {vm_id.subscription}")
        filters = [f.model_dump(by_alias=True, exclude_none=True) for f in params.filters]
        return Plan(
            target=target,
            intended={
                "networkWatcherId": str(watcher["id"]),
                "vmName": vm_id.name,
                "properties": {
                    "target": str(vm_id),
                    "bytesToCapturePerPacket": params.bytes_per_packet,
                    "totalBytesPerSession": max_bytes,
                    "timeLimitInSeconds": duration,
                    "storageLocation": {"storageId": storage},
                    "filters": filters,
                },
            },
            noop=False,
            reason=f"would capture on {vm_id.name} for up to {duration} s / {max_bytes} bytes",
        )

    async def apply(self, ctx: ActionContext, plan: Plan, key: str) -> dict[str, Any]:
        watcher_id = ArmId.parse(str(plan.intended["networkWatcherId"]))
        capture_id = str(watcher_id.child("packetCaptures", capture_name(str(plan.intended["vmName"]), key)))
        network = ctx.azure.network
        try:
            capture = await network.get_packet_capture(capture_id)  # a retry: the session already exists
            started = False
        except NotFound:
            try:
                capture = await network.create_packet_capture(capture_id, {"properties": plan.intended["properties"]})
                started = True
            except AzureError as error:
                if error.code != "PacketCaptureAlreadyExists":
                    raise
                capture, started = await network.get_packet_capture(capture_id), False
        props = capture.get("properties") or {}
        return {
            "captureId": str(capture.get("id") or capture_id),
            "started": started,
            "storagePath": (props.get("storageLocation") or {}).get("storagePath"),
            "timeLimitInSeconds": props.get("timeLimitInSeconds"),
            "totalBytesPerSession": props.get("totalBytesPerSession"),
        }

    async def undo(self, ctx: ActionContext, outcome: Outcome) -> dict[str, Any]:
        capture_id = str(outcome.result["captureId"])
        try:
            status = await ctx.azure.network.packet_capture_status(capture_id)
        except NotFound:
            return {"captureId": capture_id, "stopped": False, "reason": "the capture no longer exists"}
        if status.get("packetCaptureStatus") in ("Stopped", "Error"):
            return {"captureId": capture_id, "stopped": False, "reason": "the capture had already ended"}
        await ctx.azure.network.stop_packet_capture(capture_id)
        return {"captureId": capture_id, "stopped": True}


class CaptureParams(_Model):
    capture: str = Field(
        description="ARM id of the packet capture (captureId in network.start_packet_capture's result)"
    )

    @field_validator("capture")
    @classmethod
    def _capture_id(cls, value: str) -> str:
        return str(ArmId.parse(value, CAPTURE_TYPE))


@responder(
    "network.stop_packet_capture",
    summary="Stop a running packet capture; the file written so far stays in storage",
    params=CaptureParams,
    permissions=network(
        "networkWatchers/packetCaptures/read",
        "networkWatchers/packetCaptures/queryStatus/action",
        "networkWatchers/packetCaptures/stop/action",
    ),
    target="Host",
    reversible=False,
    destructive=False,
    undo_hint="A stopped capture cannot be resumed: start a new one with network.start_packet_capture",
)
class StopPacketCapture:
    async def plan(self, ctx: ActionContext, params: CaptureParams) -> Plan:
        try:
            status = await _capture_status(ctx, params.capture)
        except NotFound:
            raise ActionError(f"packet capture {params.capture} was not found") from None
        name = ArmId.parse(params.capture).name
        noop = status.done
        return Plan(
            target=Target(kind="packetCapture", id=status.capture_id, display=name),
            prior={"packetCaptureStatus": status.status},
            intended={"packetCaptureStatus": "Stopped"},
            noop=noop,
            reason=f"{name} has already ended ({status.status})" if noop else f"{name} is {status.status}",
        )

    async def apply(self, ctx: ActionContext, plan: Plan, key: str) -> dict[str, Any]:
        await ctx.azure.network.stop_packet_capture(plan.target.id)
        return {"captureId": plan.target.id, "packetCaptureStatus": "Stopped"}

    async def undo(self, ctx: ActionContext, outcome: Outcome) -> dict[str, Any]:
        raise ActionError("a stopped packet capture cannot be resumed")


@enricher(
    "network.get_packet_capture",
    summary="A packet capture's status (Running, Stopped...) and file location: poll it to learn when it is done",
    params=CaptureParams,
    permissions=network(
        "networkWatchers/packetCaptures/read",
        "networkWatchers/packetCaptures/queryStatus/action",
    ),
    target="Host",
)
async def get_packet_capture(ctx: ActionContext, params: CaptureParams) -> CaptureStatus:
    return await _capture_status(ctx, params.capture)
