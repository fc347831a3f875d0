"""Storage lockdown for Defender for Storage alerts: stop anonymous blob access, stop shared key (account key and SAS)
authorization, and take an address off the account's firewall. Each records the account's prior setting, and undo
writes exactly that back.

A storage firewall has allow rules only: an address is denied by not being allowed while the default action is Deny.
So storage.deny_ip removes the address's own allow rule; it refuses, and says why, when the account admits every
address (defaultAction Allow) or when the address is allowed only through a wider range, since denying it there would
deny others too."""

from __future__ import annotations

import ipaddress
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict, Field, field_validator
from pydantic.alias_generators import to_camel

from shared.actions.context import ActionContext
from shared.actions.executor import ActionError
from shared.actions.model import Outcome, Plan, Target
from shared.actions.registry import responder
from shared.actions.roles import storage_account
from shared.armid import ArmId
from shared.azure.errors import NotFound

ACCOUNT_TYPE = "Microsoft.Storage/storageAccounts"
PERMISSIONS = storage_account("read", "write")


class AccountParams(BaseModel):
    model_config = ConfigDict(frozen=True, alias_generator=to_camel, validate_by_name=True)

    account: str = Field(description="ARM id of the storage account (an AzureResource entity's resourceId)")

    @field_validator("account")
    @classmethod
    def _account(cls, value: str) -> str:
        try:
            return str(ArmId.parse(value, ACCOUNT_TYPE))
        except ValueError:
            raise ValueError("must be the ARM id of a storage account") from None


async def read_account(ctx: ActionContext, account_id: str) -> tuple[dict[str, Any], Target]:
    try:
        account: dict[str, Any] = await ctx.azure.storage_accounts.get_account(account_id)
    except NotFound:
        raise ActionError(f"storage account {account_id} was not found") from None
    target = Target(
        kind="storageAccount",
        id=str(account.get("id") or account_id),
        display=str(account.get("name") or ArmId.parse(account_id).name),
        tags={str(k): str(v) for k, v in (account.get("tags") or {}).items()},
    )
    return account, target


class DisableFlag:
    """Sets one of the account's allow* properties to false; the subclasses name it."""

    wire: ClassVar[str]  # allowBlobPublicAccess
    sdk: ClassVar[str]  # allow_blob_public_access
    unset_means: ClassVar[bool]  # what the service takes when the property was never set
    what: ClassVar[str]

    async def plan(self, ctx: ActionContext, params: AccountParams) -> Plan:
        account, target = await read_account(ctx, params.account)
        value = (account.get("properties") or {}).get(self.wire)
        effective = self.unset_means if value is None else bool(value)
        return Plan(
            target=target,
            prior={self.wire: effective},
            intended={self.wire: False},
            noop=not effective,
            reason=f"{self.what} is already off" if not effective else f"would turn {self.what} off",
        )

    async def apply(self, ctx: ActionContext, plan: Plan, key: str) -> dict[str, Any]:
        await ctx.azure.storage_accounts.set_flag(plan.target.id, self.sdk, False)
        return {self.wire: False}

    async def undo(self, ctx: ActionContext, outcome: Outcome) -> dict[str, Any]:
        prior = outcome.prior.get(self.wire)
        if outcome.target is None or not isinstance(prior, bool):
            raise ActionError(f"the prior {self.wire} was not recorded")
        account, _ = await read_account(ctx, outcome.target.id)
        current = (account.get("properties") or {}).get(self.wire)
        if (self.unset_means if current is None else bool(current)) is prior:
            return {self.wire: prior, "changed": False}
        await ctx.azure.storage_accounts.set_flag(outcome.target.id, self.sdk, prior)
        return {self.wire: prior, "changed": True}


@responder(
    "storage.block_public_access",
    summary="Turn off anonymous (public) blob access on a storage account; undo restores the prior setting",
    params=AccountParams,
    permissions=PERMISSIONS,
    target="AzureResource",
    reversible=True,
    destructive=True,
)
class BlockPublicAccess(DisableFlag):
    wire = "allowBlobPublicAccess"
    sdk = "allow_blob_public_access"
    unset_means = False  # accounts created since 2023 default to no public access
    what = "anonymous blob access"


@responder(
    "storage.disable_shared_key",
    summary="Turn off shared key authorization (account keys and the SAS signed with them): only Entra ID tokens "
    "work; undo restores the prior setting",
    params=AccountParams,
    permissions=PERMISSIONS,
    target="AzureResource",
    reversible=True,
    destructive=True,
)
class DisableSharedKey(DisableFlag):
    wire = "allowSharedKeyAccess"
    sdk = "allow_shared_key_access"
    unset_means = True  # unset means allowed, as the service documents
    what = "shared key authorization"


class DenyIpParams(AccountParams):
    ip: str = Field(description="The address to take off the firewall's allow list")

    @field_validator("ip")
    @classmethod
    def _address(cls, value: str) -> str:
        try:
            return str(ipaddress.ip_address(value.strip()))
        except ValueError:
            raise ValueError("must be an IP address") from None


def _allow_rules(account: dict[str, Any]) -> tuple[str, list[str]]:
    acls = (account.get("properties") or {}).get("networkAcls") or {}
    rules = [str(r.get("value") or r.get("ip_address_or_range") or "") for r in acls.get("ipRules") or []]
    return str(acls.get("defaultAction") or "Allow"), [r for r in rules if r]


def _matches(rule: str, address: str) -> bool:
    return ipaddress.ip_address(address) in ipaddress.ip_network(rule, strict=False)


@responder(
    "storage.deny_ip",
    summary="Take an address off a storage account's firewall allow list (the account must deny by default); undo "
    "allows exactly that rule again",
    params=DenyIpParams,
    permissions=PERMISSIONS,
    target="AzureResource",
    reversible=True,
    destructive=True,
)
class DenyIp:
    async def plan(self, ctx: ActionContext, params: DenyIpParams) -> Plan:
        account, target = await read_account(ctx, params.account)
        default, rules = _allow_rules(account)
        if default != "Deny":
            raise ActionError(
                f"{target.display} admits every address (defaultAction Allow): one address cannot be denied without "
                "denying all others; block public access or set the firewall to deny by default first"
            )
        own = [r for r in rules if r in (params.ip, f"{params.ip}/32")]
        wider = [r for r in rules if r not in own and _matches(r, params.ip)]
        if wider and not own:
            raise ActionError(f"{params.ip} is allowed through the range {wider[0]}: removing it would deny others too")
        allowed = bool(own)
        return Plan(
            target=target,
            prior={"ip": params.ip, "rule": own[0] if own else None, "allowed": allowed},
            intended={"ip": params.ip, "allowed": False},
            noop=not allowed,
            reason=f"{params.ip} is not allowed by the firewall" if not allowed else f"would remove the rule {own[0]}",
        )

    async def apply(self, ctx: ActionContext, plan: Plan, key: str) -> dict[str, Any]:
        rule = str(plan.prior["rule"])
        async with ctx.azure.limits.nsg_writes.hold(plan.target.id):  # one read-modify-write per account at a time
            account, _ = await read_account(ctx, plan.target.id)
            _, rules = _allow_rules(account)
            if rule in rules:
                await ctx.azure.storage_accounts.set_ip_rules(plan.target.id, [r for r in rules if r != rule])
        return {"removed": rule}

    async def undo(self, ctx: ActionContext, outcome: Outcome) -> dict[str, Any]:
        rule = outcome.prior.get("rule")
        if outcome.target is None or outcome.prior.get("allowed") is not True or not rule:
            raise ActionError("the address was not allowed before: there is nothing to allow again")
        async with ctx.azure.limits.nsg_writes.hold(outcome.target.id):
            account, _ = await read_account(ctx, outcome.target.id)
            _, rules = _allow_rules(account)
            if rule in rules:
                return {"restored": rule, "changed": False}
            await ctx.azure.storage_accounts.set_ip_rules(outcome.target.id, [*rules, str(rule)])
        return {"restored": rule, "changed": True}
