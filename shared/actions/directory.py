"""The rest of the identity response set: force a password change, take a user out of a group, disable a workload
identity or confirm it compromised, and block an attacker's address in a Conditional Access named location.

Users are resolved as entra.py resolves them (object id, transitive memberships, roles), so the same guardrails apply.
Service principals are guarded by object id (RIPOSTE_PROTECTED_USERS takes them too), and Riposte never acts on its
own identity or on an application Microsoft owns. The named location is the one RIPOSTE_BLOCKED_IPS_NAMED_LOCATION_ID
names and no other; an address in RIPOSTE_PROTECTED_IP_RANGES, or a private or reserved one, is never blocked."""

from __future__ import annotations

import ipaddress
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator
from pydantic.alias_generators import to_camel

from shared.actions.context import ActionContext
from shared.actions.entra import USER_READ_PERMISSIONS, AccountParams, ObjectId, resolve_user
from shared.actions.executor import ActionError, NotApplicable
from shared.actions.model import Outcome, Plan, Target, graph_permission
from shared.actions.registry import responder
from shared.azure.errors import NotFound

MICROSOFT_TENANT = "f8cdef31-a31e-4b4a-93e4-5f571e91255a"  # the tenant that owns Microsoft's first-party apps
IPV4_TYPE = "#microsoft.graph.iPv4CidrRange"
IP_NAMED_LOCATION = "#microsoft.graph.ipNamedLocation"
# An IP named location cannot be empty: when Riposte removes the last address it leaves this documentation address
# (RFC 5737 TEST-NET-1, never routed), which is also how the location is created.
PLACEHOLDER_RANGE = "192.0.2.0/32"
MAX_IP_RANGES = 2000


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, alias_generator=to_camel, validate_by_name=True)


# ---------------------------------------------------------------------------------------------------- passwords

FORCED_CHANGE_UNDO = (
    "A required password change cannot be withdrawn exactly: Graph does not tell whether one was already required. "
    "The user sets a new password at their next sign-in; no password is ever set, sent or shown by Riposte."
)


@responder(
    "entra.require_password_change",
    summary="Require the user to change their password at the next sign-in (no password is set or disclosed)",
    params=AccountParams,
    permissions=(graph_permission("User-PasswordProfile.ReadWrite.All"), *USER_READ_PERMISSIONS),
    target="Account",
    reversible=False,
    destructive=True,
    undo_hint=FORCED_CHANGE_UNDO,
)
class RequirePasswordChange:
    async def plan(self, ctx: ActionContext, params: AccountParams) -> Plan:
        user = await resolve_user(ctx, params.aad_user_id)
        reason = ""
        if user.privileged_roles:
            reason = (
                f"the user holds privileged roles ({', '.join(user.privileged_roles)}): changing passwordProfile needs "
                "the identity to hold Privileged Authentication Administrator or Global Administrator"
            )
        elif user.user.get("onPremisesSyncEnabled"):
            reason = (
                "the account is synchronised from Active Directory: the change applies only with password writeback"
            )
        return Plan(
            target=user.target(),
            prior={"lastPasswordChangeDateTime": user.user.get("lastPasswordChangeDateTime")},
            intended={"passwordProfile": {"forceChangePasswordNextSignIn": True}},
            reason=reason,
        )

    async def apply(self, ctx: ActionContext, plan: Plan, key: str) -> dict[str, Any]:
        # Setting the flag again is harmless, so a retry after a lost response writes the same thing.
        result: dict[str, Any] = await ctx.azure.graph.require_password_change(plan.target.id)
        return result

    async def undo(self, ctx: ActionContext, outcome: Outcome) -> dict[str, Any]:
        raise ActionError(FORCED_CHANGE_UNDO)


# ---------------------------------------------------------------------------------------------------- groups


class GroupMemberParams(AccountParams):
    group_id: ObjectId = Field(description="The group's Entra object id")


@responder(
    "entra.remove_group_member",
    summary="Remove a user from a group they are a direct member of; undo adds them back",
    params=GroupMemberParams,
    permissions=(graph_permission("GroupMember.ReadWrite.All"), *USER_READ_PERMISSIONS),
    target="Account",
    reversible=True,
    destructive=True,
)
class RemoveGroupMember:
    async def plan(self, ctx: ActionContext, params: GroupMemberParams) -> Plan:
        user = await resolve_user(ctx, params.aad_user_id)
        graph = ctx.azure.graph
        try:
            group = await graph.get_group(params.group_id)
        except NotFound:
            raise ActionError(f"no Entra group with object id {params.group_id}") from None
        name = str(group.get("displayName") or group["id"])
        if group.get("membershipRule") or "DynamicMembership" in (group.get("groupTypes") or []):
            raise ActionError(f"{name} is a dynamic group: its rule decides its members, not Riposte")
        if group.get("isAssignableToRole"):
            raise ActionError(
                f"{name} is role-assignable: its members change only with RoleManagement.ReadWrite.Directory"
            )
        direct = {g["id"].lower() for g in await graph.direct_groups(user.id)}
        member = group["id"].lower() in direct
        if not member and group["id"].lower() in {g.id.lower() for g in user.groups}:
            raise ActionError(f"the user is in {name} only through a nested group: remove them from that group")
        return Plan(
            target=user.target(),
            prior={"groupId": group["id"], "groupName": name, "member": member},
            intended={"groupId": group["id"], "member": False},
            noop=not member,
            reason=f"the user is not a member of {name}" if not member else f"would remove the user from {name}",
        )

    async def apply(self, ctx: ActionContext, plan: Plan, key: str) -> dict[str, Any]:
        group_id = str(plan.intended["groupId"])
        try:
            await ctx.azure.graph.remove_group_member(group_id, plan.target.id)
        except NotFound:  # a retry after a lost response: the first attempt removed them
            return {"groupId": group_id, "removed": False, "reason": "already removed"}
        return {"groupId": group_id, "removed": True}

    async def undo(self, ctx: ActionContext, outcome: Outcome) -> dict[str, Any]:
        if outcome.target is None or outcome.prior.get("member") is not True:
            raise ActionError("the user was not a member before: there is nothing to add back")
        group_id = str(outcome.prior["groupId"])
        graph = ctx.azure.graph
        if group_id.lower() in {g["id"].lower() for g in await graph.direct_groups(outcome.target.id)}:
            return {"groupId": group_id, "added": False, "reason": "the user is a member again already"}
        await graph.add_group_member(group_id, outcome.target.id)
        return {"groupId": group_id, "added": True}


# ---------------------------------------------------------------------------------------------- workload identities


class ServicePrincipalParams(_Model):
    service_principal_id: ObjectId = Field(description="The service principal's object id (not its appId)")


async def resolve_service_principal(ctx: ActionContext, sp_id: str) -> tuple[dict[str, Any], Target]:
    """The service principal by object id, refused when it is Riposte's own identity or a Microsoft application."""
    try:
        principal: dict[str, Any] = await ctx.azure.graph.get_service_principal(sp_id)
    except NotFound:
        raise ActionError(f"no service principal with object id {sp_id}") from None
    name = str(principal.get("displayName") or principal["id"])
    own = ctx.settings.managed_identity_client_id
    if own and str(principal.get("appId") or "").lower() == own.lower():
        raise ActionError(f"{name} is Riposte's own identity")
    if str(principal.get("appOwnerOrganizationId") or "").lower() == MICROSOFT_TENANT:
        raise ActionError(f"{name} is a Microsoft first-party application")
    target = Target(kind="servicePrincipal", id=str(principal["id"]), display=name)
    return principal, target


@responder(
    "entra.disable_service_principal",
    summary="Disable a service principal (accountEnabled false): the workload identity gets no new tokens",
    params=ServicePrincipalParams,
    permissions=(graph_permission("Application.ReadWrite.All"),),
    target="CloudApplication",
    reversible=True,
    destructive=True,
)
class DisableServicePrincipal:
    async def plan(self, ctx: ActionContext, params: ServicePrincipalParams) -> Plan:
        principal, target = await resolve_service_principal(ctx, params.service_principal_id)
        enabled = principal.get("accountEnabled")
        return Plan(
            target=target,
            prior={"accountEnabled": enabled},
            intended={"accountEnabled": False},
            noop=enabled is False,
            reason="the service principal is already disabled" if enabled is False else "",
        )

    async def apply(self, ctx: ActionContext, plan: Plan, key: str) -> dict[str, Any]:
        result: dict[str, Any] = await ctx.azure.graph.set_service_principal_enabled(plan.target.id, False)
        return result

    async def undo(self, ctx: ActionContext, outcome: Outcome) -> dict[str, Any]:
        prior = outcome.prior.get("accountEnabled")
        if outcome.target is None or not isinstance(prior, bool):
            raise ActionError("the prior accountEnabled was not recorded")
        graph = ctx.azure.graph
        if (await graph.get_service_principal(outcome.target.id)).get("accountEnabled") is prior:
            return {"accountEnabled": prior, "changed": False}
        await graph.set_service_principal_enabled(outcome.target.id, prior)
        return {"accountEnabled": prior, "changed": True}


SP_CONFIRM_UNDO_HINT = (
    "Identity Protection keeps a confirmation: dismiss the service principal's risk in the Entra admin center "
    "(Risky workload identities) if it was confirmed by mistake."
)


@responder(
    "identity.confirm_service_principal_compromised",
    summary="Confirm a service principal compromised in Identity Protection: its risk becomes high",
    params=ServicePrincipalParams,
    permissions=(
        graph_permission("IdentityRiskyServicePrincipal.ReadWrite.All"),
        graph_permission("Application.Read.All"),
    ),
    target="CloudApplication",
    reversible=False,
    destructive=True,
    undo_hint=SP_CONFIRM_UNDO_HINT,
)
class ConfirmServicePrincipalCompromised:
    async def plan(self, ctx: ActionContext, params: ServicePrincipalParams) -> Plan:
        _, target = await resolve_service_principal(ctx, params.service_principal_id)
        risky = await ctx.azure.graph.get_risky_service_principal(target.id) or {}
        state = risky.get("riskState") or "none"
        confirmed = state == "confirmedCompromised"
        return Plan(
            target=target,
            prior={"riskState": state, "riskLevel": risky.get("riskLevel") or "none"},
            intended={"riskState": "confirmedCompromised"},
            noop=confirmed,
            reason="already confirmed compromised" if confirmed else "",
        )

    async def apply(self, ctx: ActionContext, plan: Plan, key: str) -> dict[str, Any]:
        result: dict[str, Any] = await ctx.azure.graph.confirm_service_principals_compromised([plan.target.id])
        return result

    async def undo(self, ctx: ActionContext, outcome: Outcome) -> dict[str, Any]:
        raise ActionError(SP_CONFIRM_UNDO_HINT)


# ---------------------------------------------------------------------------------------------------- named location


def public_address(address: str) -> None:
    """NotApplicable unless `address` is a public internet address: a private, loopback, link-local, multicast or
    reserved one is nobody's attacker address on the internet, so there is nothing to block."""
    if not ipaddress.ip_address(address).is_global:
        raise NotApplicable(f"{address} is not a public internet address")


class NamedLocationBlockParams(_Model):
    ip: str = Field(description="The attacker's address (an Ip entity's address)")

    @field_validator("ip")
    @classmethod
    def _address(cls, value: str) -> str:
        try:
            return str(ipaddress.ip_address(value.strip()))
        except ValueError:
            raise ValueError("must be an IPv4 or IPv6 address") from None


def _cidr(address: str) -> str:
    ip = ipaddress.ip_address(address)
    return f"{ip}/{32 if ip.version == 4 else 128}"


def _ranges(location: dict[str, Any]) -> list[str]:
    return [str(r.get("cidrAddress")) for r in location.get("ipRanges") or [] if r.get("cidrAddress")]


async def _named_location(ctx: ActionContext) -> dict[str, Any]:
    location_id = ctx.settings.blocked_ips_named_location_id
    if not location_id:
        raise NotApplicable("RIPOSTE_BLOCKED_IPS_NAMED_LOCATION_ID is not set: there is no named location to add to")
    try:
        location: dict[str, Any] = await ctx.azure.graph.get_named_location(location_id)
    except NotFound:
        raise ActionError(f"the named location {location_id} does not exist") from None
    if location.get("@odata.type") != IP_NAMED_LOCATION:
        raise ActionError(f"the named location {location_id} is not an IP named location")
    return location


@responder(
    "entra.block_ip_in_named_location",
    summary="Add an attacker's address to Riposte's Conditional Access IP named location (a block policy uses it); "
    "undo removes exactly that address",
    params=NamedLocationBlockParams,
    permissions=(graph_permission("Policy.ReadWrite.ConditionalAccess"), graph_permission("Policy.Read.All")),
    target="Ip",
    reversible=True,
    destructive=True,
)
class BlockIpInNamedLocation:
    async def plan(self, ctx: ActionContext, params: NamedLocationBlockParams) -> Plan:
        location = await _named_location(ctx)
        public_address(params.ip)
        cidr = _cidr(params.ip)
        ranges = _ranges(location)
        present = cidr in ranges
        if not present and len(ranges) >= MAX_IP_RANGES:
            raise ActionError(f"the named location already holds {MAX_IP_RANGES} ranges, its limit")
        name = str(location.get("displayName") or location["id"])
        return Plan(
            # The address is the target, so the protected ranges guard it (a guardrail, checked before approval).
            target=Target(kind="ip", id=params.ip, display=f"{params.ip} in {name}"),
            prior={"cidrAddress": cidr, "present": present},
            intended={"cidrAddress": cidr, "present": True, "namedLocationId": str(location["id"])},
            noop=present,
            reason=f"{cidr} is already in {name}" if present else f"would add {cidr} to {name}",
        )

    async def apply(self, ctx: ActionContext, plan: Plan, key: str) -> dict[str, Any]:
        cidr, location_id = str(plan.intended["cidrAddress"]), str(plan.intended["namedLocationId"])
        async with ctx.azure.limits.named_location_writes.hold(location_id):
            # Graph replaces the whole list: read it again under the lock, so no other address is lost.
            ranges = _ranges(await _named_location(ctx))
            if cidr not in ranges:
                kept = [r for r in ranges if r != PLACEHOLDER_RANGE]
                await ctx.azure.graph.set_named_location_ranges(location_id, [*kept, cidr])
        return {"cidrAddress": cidr, "namedLocationId": location_id}

    async def undo(self, ctx: ActionContext, outcome: Outcome) -> dict[str, Any]:
        cidr = str(outcome.prior.get("cidrAddress") or "")
        location_id = str(outcome.intended.get("namedLocationId") or "")
        if outcome.prior.get("present") is not False or not cidr or not location_id:
            raise ActionError("the address was in the named location before Riposte added it: it stays")
        if location_id.lower() != str(ctx.settings.blocked_ips_named_location_id or "").lower():
            raise ActionError(f"the named location {location_id} is no longer Riposte's: it is left alone")
        async with ctx.azure.limits.named_location_writes.hold(location_id):
            ranges = _ranges(await _named_location(ctx))
            if cidr not in ranges:
                return {"cidrAddress": cidr, "removed": False, "reason": "no longer in the named location"}
            remaining = [r for r in ranges if r != cidr] or [PLACEHOLDER_RANGE]
            await ctx.azure.graph.set_named_location_ranges(location_id, remaining)
        return {"cidrAddress": cidr, "removed": True}
