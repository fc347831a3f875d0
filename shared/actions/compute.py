"""Virtual machine actions: the VM's context for an analyst (power state, NICs and IPs, NSGs, watcher), and the
power actions power off, deallocate and start, each recording the power state it replaced so undo can return to it.

A VM is named by its ARM id (Host.azureID, AzureResource.resourceId), never by a display or host name."""

from __future__ import annotations

import asyncio
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict, Field, field_validator
from pydantic.alias_generators import to_camel

from shared.actions.context import ActionContext
from shared.actions.executor import ActionError
from shared.actions.model import Outcome, Plan, Target
from shared.actions.registry import enricher, responder
from shared.actions.roles import network, vm
from shared.armid import ArmId, same_id
from shared.azure.compute import VM_TYPE, power_state
from shared.azure.errors import AzureError, NotFound

RUNNING = frozenset({"running", "starting"})


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, alias_generator=to_camel, validate_by_name=True, extra="forbid")


class VmParams(_Model):
    vm: str = Field(description="ARM id of the virtual machine (Host.azureID or AzureResource.resourceId)")

    @field_validator("vm")
    @classmethod
    def _vm_id(cls, value: str) -> str:
        return str(ArmId.parse(value, VM_TYPE))


async def read_vm(ctx: ActionContext, vm_id: str, *, instance_view: bool = True) -> dict[str, Any]:
    try:
        vm: dict[str, Any] = await ctx.azure.compute.get_vm(vm_id, instance_view=instance_view)
    except NotFound:
        raise ActionError(f"virtual machine {vm_id} was not found") from None
    return vm


def vm_target(vm: dict[str, Any], fallback_id: str) -> Target:
    """The VM as guardrails see it: its ARM id (for protected prefixes) and its tags."""
    return Target(
        kind="vm",
        id=str(vm.get("id") or fallback_id),
        display=str(vm.get("name") or ArmId.parse(fallback_id).name),
        tags={str(k): str(v) for k, v in (vm.get("tags") or {}).items()},
    )


# ---------------------------------------------------------------------------------------------------------------------
# compute.get_vm_context


class PublicIp(_Model):
    id: str
    address: str | None = None
    allocation: str | None = None


class NicContext(_Model):
    id: str
    name: str
    primary: bool = False
    private_ips: list[str] = Field(default_factory=list)
    public_ips: list[PublicIp] = Field(default_factory=list)
    nsg_id: str | None = Field(None, description="The NSG on the NIC itself")
    subnet_ids: list[str] = Field(default_factory=list)
    subnet_nsg_ids: dict[str, str | None] = Field(
        default_factory=dict, description="The NSG on each subnet the NIC is in (only for subnets that could be read)"
    )


class EffectiveRule(_Model):
    name: str
    access: str
    direction: str
    priority: int
    protocol: str
    source_prefixes: list[str] = Field(default_factory=list)
    destination_prefixes: list[str] = Field(default_factory=list)
    destination_ports: list[str] = Field(default_factory=list)


class EffectiveNsg(_Model):
    nic_id: str
    nsg_id: str | None
    associated_to: str = Field(description="networkInterface or subnet: where this NSG is attached")
    rules: list[EffectiveRule] = Field(default_factory=list)


class VmContext(_Model):
    id: str
    name: str
    location: str
    resource_group: str
    subscription: str
    power_state: str
    vm_size: str | None = None
    os_type: str | None = None
    computer_name: str | None = None
    tags: dict[str, str] = Field(default_factory=dict)
    nics: list[NicContext] = Field(default_factory=list)
    effective_nsgs: list[EffectiveNsg] = Field(default_factory=list)
    network_watcher_id: str | None = Field(None, description="The region's network watcher (packet captures)")
    notes: list[str] = Field(default_factory=list, description="What could not be read, and why")


def _normalized_location(value: Any) -> str:
    return str(value or "").replace(" ", "").lower()


def _prefixes(rule: dict[str, Any], side: str) -> list[str]:
    many = rule.get(f"{side}AddressPrefixes") or []
    single = rule.get(f"{side}AddressPrefix")
    return [str(p) for p in many] or ([str(single)] if single else [])


def _effective(nic_id: str, group: dict[str, Any]) -> EffectiveNsg:
    association = group.get("association") or {}
    associated_to = "subnet" if association.get("subnet") else "networkInterface"
    rules = [
        EffectiveRule(
            name=str(rule.get("name", "")),
            access=str(rule.get("access", "")),
            direction=str(rule.get("direction", "")),
            priority=int(rule.get("priority") or 0),
            protocol=str(rule.get("protocol", "")),
            source_prefixes=_prefixes(rule, "source"),
            destination_prefixes=_prefixes(rule, "destination"),
            destination_ports=[str(p) for p in rule.get("destinationPortRanges") or []]
            or ([str(rule["destinationPortRange"])] if rule.get("destinationPortRange") else []),
        )
        for rule in group.get("effectiveSecurityRules") or []
    ]
    return EffectiveNsg(
        nic_id=nic_id,
        nsg_id=(group.get("networkSecurityGroup") or {}).get("id"),
        associated_to=associated_to,
        rules=rules,
    )


async def _nic_context(ctx: ActionContext, nic_id: str, notes: list[str]) -> tuple[NicContext, list[EffectiveNsg]]:
    network = ctx.azure.network
    nic = await network.get_nic(nic_id)
    props = nic.get("properties") or {}
    private_ips: list[str] = []
    public_ip_ids: list[str] = []
    subnet_ids: list[str] = []
    for config in props.get("ipConfigurations") or []:
        cprops = config.get("properties") or {}
        if cprops.get("privateIPAddress"):
            private_ips.append(str(cprops["privateIPAddress"]))
        if (cprops.get("publicIPAddress") or {}).get("id"):
            public_ip_ids.append(str(cprops["publicIPAddress"]["id"]))
        subnet = (cprops.get("subnet") or {}).get("id")
        if subnet and not any(same_id(subnet, s) for s in subnet_ids):
            subnet_ids.append(str(subnet))

    async def public_ip(address_id: str) -> PublicIp:
        try:
            address = await network.get_public_ip(address_id)
        except AzureError as error:
            notes.append(f"public IP {address_id} could not be read: {error}")
            return PublicIp(id=address_id)
        aprops = address.get("properties") or {}
        return PublicIp(
            id=address_id, address=aprops.get("ipAddress"), allocation=aprops.get("publicIPAllocationMethod")
        )

    async def subnet_nsg(subnet_id: str) -> tuple[str, str | None] | None:
        try:
            subnet = await network.get_subnet(subnet_id)
        except AzureError as error:
            notes.append(f"subnet {subnet_id} could not be read, so its NSG is unknown: {error}")
            return None
        return subnet_id, ((subnet.get("properties") or {}).get("networkSecurityGroup") or {}).get("id")

    async def effective() -> list[EffectiveNsg]:
        try:
            groups = await network.list_effective_nsgs(nic_id)
        except AzureError as error:  # e.g. a stopped VM has no effective rules to report
            notes.append(f"effective NSGs of {nic_id} could not be read: {error}")
            return []
        return [_effective(str(nic.get("id") or nic_id), group) for group in groups]

    addresses, subnets, effective_groups = await asyncio.gather(
        asyncio.gather(*(public_ip(a) for a in public_ip_ids)),
        asyncio.gather(*(subnet_nsg(s) for s in subnet_ids)),
        effective(),
    )
    context = NicContext(
        id=str(nic.get("id") or nic_id),
        name=str(nic.get("name") or ArmId.parse(nic_id).name),
        primary=bool(props.get("primary", False)),
        private_ips=private_ips,
        public_ips=list(addresses),
        nsg_id=(props.get("networkSecurityGroup") or {}).get("id"),
        subnet_ids=subnet_ids,
        subnet_nsg_ids=dict(found for found in subnets if found is not None),
    )
    return context, effective_groups


@enricher(
    "compute.get_vm_context",
    summary="A VM's power state, NICs with private and public IPs, NSGs (own, subnet, effective), tags, location "
    "and the region's network watcher",
    params=VmParams,
    permissions=(
        *vm("/read"),
        *network(
            "networkInterfaces/read",
            "networkInterfaces/effectiveNetworkSecurityGroups/action",
            "publicIPAddresses/read",
            "virtualNetworks/subnets/read",
            "networkWatchers/read",
        ),
    ),
    target="Host",
)
async def get_vm_context(ctx: ActionContext, params: VmParams) -> VmContext:
    vm = await read_vm(ctx, params.vm)
    parsed = ArmId.parse(str(vm.get("id") or params.vm))
    props = vm.get("properties") or {}
    location = str(vm.get("location") or "")
    nic_ids = [str(n["id"]) for n in (props.get("networkProfile") or {}).get("networkInterfaces") or [] if n.get("id")]
    notes: list[str] = []

    async def watcher() -> str | None:
        try:
            watchers = await ctx.azure.network.list_network_watchers(parsed.subscription)
        except AzureError as error:
            notes.append(f"network watchers could not be listed: {error}")
            return None
        for candidate in watchers:
            if _normalized_location(candidate.get("location")) == _normalized_location(location):
                return str(candidate["id"])
        notes.append(f"no network watcher in {location}: packet captures are not possible there")
        return None

    nic_results, watcher_id = await asyncio.gather(
        asyncio.gather(*(_nic_context(ctx, nic_id, notes) for nic_id in nic_ids)), watcher()
    )
    return VmContext(
        id=str(parsed),
        name=parsed.name,
        location=location,
        resource_group=parsed.resource_group,
        subscription=parsed.subscription,
        power_state=power_state(vm),
        vm_size=(props.get("hardwareProfile") or {}).get("vmSize"),
        os_type=((props.get("storageProfile") or {}).get("osDisk") or {}).get("osType"),
        computer_name=((props.get("instanceView") or {}).get("computerName"))
        or (props.get("osProfile") or {}).get("computerName"),
        tags={str(k): str(v) for k, v in (vm.get("tags") or {}).items()},
        nics=[nic for nic, _ in nic_results],
        effective_nsgs=[group for _, groups in nic_results for group in groups],
        network_watcher_id=watcher_id,
        notes=notes,
    )


# ---------------------------------------------------------------------------------------------------------------------
# power actions


class _PowerAction:
    """Plan reads the power state; apply issues one power operation unless the VM already is where it should be;
    undo returns to the recorded state where that makes sense (see each action)."""

    goal: ClassVar[str]  # the power state the action leaves the VM in
    settled: ClassVar[frozenset[str]]  # states in which there is nothing to do

    async def write(self, ctx: ActionContext, vm_id: str) -> None:
        raise NotImplementedError

    async def plan(self, ctx: ActionContext, params: VmParams) -> Plan:
        vm = await read_vm(ctx, params.vm)
        state = power_state(vm)
        target = vm_target(vm, params.vm)
        noop = state in self.settled
        return Plan(
            target=target,
            prior={"powerState": state},
            intended={"powerState": self.goal},
            noop=noop,
            reason=f"{target.display} is {state}" if noop else f"{target.display} is {state}; would be {self.goal}",
        )

    async def apply(self, ctx: ActionContext, plan: Plan, key: str) -> dict[str, Any]:
        # Re-read: a retry after a lost response (or another actor) may already have brought the VM there.
        state = power_state(await read_vm(ctx, plan.target.id))
        if state in self.settled:
            return {"powerState": state, "alreadyDone": True}
        await self.write(ctx, plan.target.id)
        return {"powerState": self.goal}

    async def undo(self, ctx: ActionContext, outcome: Outcome) -> dict[str, Any]:
        raise NotImplementedError


async def _restart_if_it_was_running(ctx: ActionContext, outcome: Outcome) -> dict[str, Any]:
    assert outcome.target is not None
    before = str(outcome.prior.get("powerState", "unknown"))
    if before not in RUNNING:
        return {"powerState": None, "reason": f"the VM was {before} before, so it is left as it is"}
    now = power_state(await read_vm(ctx, outcome.target.id))
    if now in RUNNING:
        return {"powerState": now, "alreadyDone": True}
    await ctx.azure.compute.start_vm(outcome.target.id)
    return {"powerState": "running"}


@responder(
    "compute.power_off_vm",
    summary="Power off a VM (it stays allocated); undo starts it again if it was running",
    params=VmParams,
    permissions=vm("/read", "/powerOff/action", "/start/action"),
    target="Host",
    reversible=True,
    destructive=True,
)
class PowerOffVm(_PowerAction):
    goal = "stopped"
    settled = frozenset({"stopped", "stopping", "deallocated", "deallocating"})

    async def write(self, ctx: ActionContext, vm_id: str) -> None:
        await ctx.azure.compute.power_off_vm(vm_id)

    async def undo(self, ctx: ActionContext, outcome: Outcome) -> dict[str, Any]:
        return await _restart_if_it_was_running(ctx, outcome)


@responder(
    "compute.deallocate_vm",
    summary="Deallocate a VM (stops billing for compute); undo starts it again if it was running",
    params=VmParams,
    permissions=vm("/read", "/deallocate/action", "/start/action"),
    target="Host",
    reversible=True,
    destructive=True,
)
class DeallocateVm(_PowerAction):
    goal = "deallocated"
    settled = frozenset({"deallocated", "deallocating"})

    async def write(self, ctx: ActionContext, vm_id: str) -> None:
        await ctx.azure.compute.deallocate_vm(vm_id)

    async def undo(self, ctx: ActionContext, outcome: Outcome) -> dict[str, Any]:
        # A VM that was stopped (allocated) before stays deallocated: re-allocating it only to stop it again would
        # cost money and change nothing an analyst cares about.
        return await _restart_if_it_was_running(ctx, outcome)


@responder(
    "compute.start_vm",
    summary="Start a VM; undo returns it to the recorded power state (stopped or deallocated)",
    params=VmParams,
    permissions=vm("/read", "/start/action", "/powerOff/action", "/deallocate/action"),
    target="Host",
    reversible=True,
    destructive=False,
)
class StartVm(_PowerAction):
    goal = "running"
    settled = RUNNING

    async def write(self, ctx: ActionContext, vm_id: str) -> None:
        await ctx.azure.compute.start_vm(vm_id)

    async def undo(self, ctx: ActionContext, outcome: Outcome) -> dict[str, Any]:
        assert outcome.target is not None
        before = str(outcome.prior.get("powerState", "unknown"))
        now = power_state(await read_vm(ctx, outcome.target.id))
        if before in ("deallocated", "deallocating"):
            if now in ("deallocated", "deallocating"):
                return {"powerState": now, "alreadyDone": True}
            await ctx.azure.compute.deallocate_vm(outcome.target.id)
            return {"powerState": "deallocated"}
        if before in ("stopped", "stopping"):
            if now in ("stopped", "stopping", "deallocated", "deallocating"):
                return {"powerState": now, "alreadyDone": True}
            await ctx.azure.compute.power_off_vm(outcome.target.id)
            return {"powerState": "stopped"}
        return {"powerState": None, "reason": f"the VM was {before} before, so it is left as it is"}
