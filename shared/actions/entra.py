"""Microsoft Entra ID users: profile and privileged roles; disable, enable, revoke sign-in sessions.

A user is resolved by object id (the Account entity's aadUserId), never by UPN or display name; the UPN a payload
carries is only shown to people. Every plan reads the user and their transitive memberships, so the guardrails see
the UPN Entra holds, every group the user is in (a protected group guards its nested members too) and the directory
roles the user holds. identity.py builds on the same resolution."""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any

from pydantic import AfterValidator, AwareDatetime, BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel

from shared.actions.context import ActionContext
from shared.actions.executor import ActionError
from shared.actions.model import Outcome, Permission, Plan, Target, graph_permission
from shared.actions.registry import enricher, responder
from shared.azure.errors import NotFound

# Built-in roles Microsoft labels privileged (permissions-reference, "Privileged" label), by role template id: the id
# is the same in every tenant, while display names can be localised.
PRIVILEGED_ROLE_TEMPLATES: dict[str, str] = {
    "62e90394-69f5-4237-9190-012177145e10": "Global Administrator",
    "e8611ab8-c189-46e8-94e1-60213ab1f814": "Privileged Role Administrator",
    "7be44c8a-adaf-4e2a-84d6-ab2649e08a13": "Privileged Authentication Administrator",
    "194ae4cb-b126-40b2-bd5b-6091b380977d": "Security Administrator",
    "5f2222b1-57c3-48ba-8ad5-d4759f1fde6f": "Security Operator",
    "5d6b6bb7-de71-4623-b4af-96380a352509": "Security Reader",
    "fe930be7-5e62-47db-91af-98c3a49a38b1": "User Administrator",
    "c4e39bd9-1100-46d3-8c65-fb160da0071f": "Authentication Administrator",
    "729827e3-9c14-49f7-bb1b-9608f156bbb8": "Helpdesk Administrator",
    "966707d0-3269-4727-9be2-8c3a10f19b9d": "Password Administrator",
    "b1be1c3e-b65d-4f19-8427-f6fa0d97feb9": "Conditional Access Administrator",
    "9b895d92-2cd3-44c7-9d02-a6ac2d5ea5c3": "Application Administrator",
    "158c047a-c907-4556-b7ef-446551a6b5f7": "Cloud Application Administrator",
    "8ac3fc64-6eca-42ea-9e69-59f4c7b60eb2": "Hybrid Identity Administrator",
    "be2f45a1-457d-42af-a067-6ec1fa63bc45": "External Identity Provider Administrator",
    "8329153b-31d0-4727-b945-745eb3bc5f31": "Domain Name Administrator",
    "9360feb5-f418-4baa-8175-e2a00bac4301": "Directory Writers",
    "3a2c62db-5318-420d-8d74-23affee5d9d5": "Intune Administrator",
    "7698a772-787b-4ac8-901f-60d6b08affd2": "Cloud Device Administrator",
    "f2ef992c-3afb-46b9-b7cf-a126ee74c451": "Global Reader",
    "25a516ed-2fa0-40ea-a2d0-12923a21473a": "Authentication Extensibility Administrator",
    "aaf43236-0c0d-4d5f-883a-6955382ac081": "B2C IEF Keyset Administrator",
    "ecb2c6bf-0ab6-418e-bd87-7986f8d63bbe": "Attribute Provisioning Administrator",
    "422218e4-db15-4ef9-bbe0-8afb41546d79": "Attribute Provisioning Reader",
    "59d46f88-662b-457b-bceb-5c3809e5908f": "Lifecycle Workflows Administrator",
    "4ba39ca4-527c-499a-b93d-d9b492c50246": "Partner Tier1 Support",
    "e00e864a-17c5-4a4b-9c06-f5b95a8d5bd8": "Partner Tier2 Support",
}

# Reading the user and their memberships: what every plan here needs for the guardrail facts.
USER_READ_PERMISSIONS: tuple[Permission, ...] = (
    graph_permission("User.Read.All"),
    graph_permission("GroupMember.Read.All"),
    graph_permission("RoleManagement.Read.Directory"),
)
GROUP_TYPE = "#microsoft.graph.group"
ROLE_TYPE = "#microsoft.graph.directoryRole"


def _object_id(value: str) -> str:
    try:
        return str(uuid.UUID(value))
    except ValueError:
        raise ValueError("must be an Entra object id (a GUID)") from None


ObjectId = Annotated[str, AfterValidator(_object_id)]


class AccountParams(BaseModel):
    """An Account entity. Only aad_user_id is used to find the user; upn is for people reading the record."""

    model_config = ConfigDict(frozen=True, alias_generator=to_camel, validate_by_name=True)

    aad_user_id: ObjectId = Field(description="The user's Entra object id")
    upn: str | None = Field(None, description="The UPN the incident carried, for display only")


class _Result(BaseModel):
    model_config = ConfigDict(frozen=True, alias_generator=to_camel, validate_by_name=True)


class GroupMembership(_Result):
    id: str
    display_name: str | None = None


class RoleMembership(_Result):
    id: str
    display_name: str | None = None
    role_template_id: str | None = None
    privileged: bool = False


class UserProfile(_Result):
    """entra.get_user: the profile fields a responder or analyst weighs, and what makes the account privileged."""

    id: str
    user_principal_name: str | None = None
    display_name: str | None = None
    account_enabled: bool | None = None
    mail: str | None = None
    job_title: str | None = None
    department: str | None = None
    user_type: str | None = None
    created_date_time: datetime | None = None
    on_premises_sync_enabled: bool | None = None
    sign_in_sessions_valid_from_date_time: datetime | None = None
    groups: tuple[GroupMembership, ...] = ()
    directory_roles: tuple[RoleMembership, ...] = ()
    is_privileged: bool = False
    privileged_roles: tuple[str, ...] = ()


@dataclass(frozen=True)
class DirectoryUser:
    """A user as Graph holds them, with their transitive group memberships and directory roles."""

    user: dict[str, Any]
    groups: tuple[GroupMembership, ...]
    roles: tuple[RoleMembership, ...]

    @property
    def id(self) -> str:
        return str(self.user["id"])

    @property
    def upn(self) -> str | None:
        upn = self.user.get("userPrincipalName")
        return str(upn) if upn else None

    @property
    def privileged_roles(self) -> tuple[str, ...]:
        return tuple(r.display_name or str(r.role_template_id) for r in self.roles if r.privileged)

    def target(self) -> Target:
        return Target(
            kind="user",
            id=self.id,
            display=str(self.user.get("displayName") or self.upn or self.id),
            upn=self.upn,
            group_ids=tuple(g.id for g in self.groups),
            privileged_roles=self.privileged_roles,
        )

    def profile(self) -> UserProfile:
        return UserProfile.model_validate(
            {
                **self.user,
                "groups": self.groups,
                "directoryRoles": self.roles,
                "isPrivileged": bool(self.privileged_roles),
                "privilegedRoles": self.privileged_roles,
            }
        )


def _memberships(objects: list[dict[str, Any]]) -> tuple[tuple[GroupMembership, ...], tuple[RoleMembership, ...]]:
    groups: list[GroupMembership] = []
    roles: list[RoleMembership] = []
    for item in objects:
        kind = item.get("@odata.type")
        if kind == GROUP_TYPE:
            groups.append(GroupMembership(id=item["id"], display_name=item.get("displayName")))
        elif kind == ROLE_TYPE:
            template = str(item.get("roleTemplateId") or "").lower() or None
            roles.append(
                RoleMembership(
                    id=item["id"],
                    display_name=item.get("displayName"),
                    role_template_id=template,
                    privileged=template in PRIVILEGED_ROLE_TEMPLATES,
                )
            )
    return tuple(groups), tuple(roles)


async def resolve_user(ctx: ActionContext, user_id: str) -> DirectoryUser:
    """The user by object id, with transitive memberships (two reads, in parallel). ActionError if there is none."""
    graph = ctx.azure.graph
    try:
        user, memberships = await asyncio.gather(graph.get_user(user_id), graph.list_memberships(user_id))
    except NotFound:
        raise ActionError(f"no Entra user with object id {user_id}") from None
    groups, roles = _memberships(memberships)
    return DirectoryUser(user=user, groups=groups, roles=roles)


# ---------------------------------------------------------------------------------------------------- enricher


@enricher(
    "entra.get_user",
    summary="User profile, group memberships and directory roles, with whether the account is privileged",
    params=AccountParams,
    permissions=USER_READ_PERMISSIONS,
    target="Account",
)
async def get_user(ctx: ActionContext, params: AccountParams) -> UserProfile:
    return (await resolve_user(ctx, params.aad_user_id)).profile()


# ---------------------------------------------------------------------------------------------------- responders

ACCOUNT_WRITE_PERMISSIONS: tuple[Permission, ...] = (
    graph_permission("User.EnableDisableAccount.All"),
    *USER_READ_PERMISSIONS,
)


def _account_enabled_plan(user: DirectoryUser, enabled: bool) -> Plan:
    current = user.user.get("accountEnabled")
    state = "enabled" if enabled else "disabled"
    if current is enabled:
        reason = f"the account is already {state}"
    elif user.privileged_roles:
        # Graph lets an app change accountEnabled of an admin only if the app itself holds a higher Entra role.
        reason = (
            f"the user holds privileged roles ({', '.join(user.privileged_roles)}): changing accountEnabled needs "
            "the identity to hold Privileged Authentication Administrator or Global Administrator"
        )
    else:
        reason = ""
    return Plan(
        target=user.target(),
        prior={"accountEnabled": current},
        intended={"accountEnabled": enabled},
        noop=current is enabled,
        reason=reason,
    )


async def _restore_account_enabled(ctx: ActionContext, outcome: Outcome) -> dict[str, Any]:
    """Put back the recorded accountEnabled; reads first so a repeated undo writes nothing."""
    prior = outcome.prior.get("accountEnabled")
    if outcome.target is None or not isinstance(prior, bool):
        raise ActionError("the prior accountEnabled was not recorded, so there is nothing exact to restore")
    graph = ctx.azure.graph
    current = (await graph.get_user(outcome.target.id)).get("accountEnabled")
    if current is prior:
        return {"accountEnabled": prior, "changed": False}
    await graph.set_account_enabled(outcome.target.id, prior)
    return {"accountEnabled": prior, "changed": True}


@responder(
    "entra.disable_user",
    summary="Disable the account (accountEnabled false): no new sign-ins",
    params=AccountParams,
    permissions=ACCOUNT_WRITE_PERMISSIONS,
    target="Account",
    reversible=True,
    destructive=True,
)
class DisableUser:
    async def plan(self, ctx: ActionContext, params: AccountParams) -> Plan:
        return _account_enabled_plan(await resolve_user(ctx, params.aad_user_id), enabled=False)

    async def apply(self, ctx: ActionContext, plan: Plan, key: str) -> dict[str, Any]:
        # PATCH of the same value is idempotent, so a retry after a lost response is harmless.
        result: dict[str, Any] = await ctx.azure.graph.set_account_enabled(plan.target.id, False)
        return result

    async def undo(self, ctx: ActionContext, outcome: Outcome) -> dict[str, Any]:
        return await _restore_account_enabled(ctx, outcome)


@responder(
    "entra.enable_user",
    summary="Enable the account (accountEnabled true)",
    params=AccountParams,
    permissions=ACCOUNT_WRITE_PERMISSIONS,
    target="Account",
    reversible=True,
    destructive=False,
)
class EnableUser:
    async def plan(self, ctx: ActionContext, params: AccountParams) -> Plan:
        return _account_enabled_plan(await resolve_user(ctx, params.aad_user_id), enabled=True)

    async def apply(self, ctx: ActionContext, plan: Plan, key: str) -> dict[str, Any]:
        result: dict[str, Any] = await ctx.azure.graph.set_account_enabled(plan.target.id, True)
        return result

    async def undo(self, ctx: ActionContext, outcome: Outcome) -> dict[str, Any]:
        # Only a DONE outcome is undone, and that means the account was disabled before: disable it again.
        return await _restore_account_enabled(ctx, outcome)


class RevokeSessionsParams(AccountParams):
    unless_revoked_since: AwareDatetime | None = Field(
        None,
        description="Do nothing if the user's sessions were already revoked at or after this time (for example the "
        "incident's creation time)",
    )


REPLAY_CLOCK_SKEW_S = 2.0  # our clock against Entra's, when comparing the intent time with the revocation time
REVOKE_UNDO_HINT = (
    "Revoked sessions cannot be restored: the user signs in again to get new tokens. Access tokens issued before the "
    "revocation stay valid until they expire (60-90 minutes) unless Continuous Access Evaluation ends them sooner."
)


def _parse_time(value: Any) -> datetime | None:
    if not value:
        return None
    try:
        return datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        return None


@responder(
    "entra.revoke_sessions",
    summary="Revoke refresh tokens and session cookies (revokeSignInSessions): every app asks for sign-in again",
    params=RevokeSessionsParams,
    permissions=(graph_permission("User.RevokeSessions.All"), *USER_READ_PERMISSIONS),
    target="Account",
    reversible=False,
    destructive=True,
    undo_hint=REVOKE_UNDO_HINT,
)
class RevokeSessions:
    async def plan(self, ctx: ActionContext, params: RevokeSessionsParams) -> Plan:
        user = await resolve_user(ctx, params.aad_user_id)
        valid_from = user.user.get("signInSessionsValidFromDateTime")
        revoked_at = _parse_time(valid_from)
        since = params.unless_revoked_since
        noop = since is not None and revoked_at is not None and revoked_at >= since
        return Plan(
            target=user.target(),
            prior={"signInSessionsValidFromDateTime": valid_from},
            intended={"revokeSignInSessions": True},
            noop=noop,
            reason=f"sessions were already revoked at {valid_from}" if noop else "",
        )

    async def apply(self, ctx: ActionContext, plan: Plan, key: str) -> dict[str, Any]:
        result: dict[str, Any] = await ctx.azure.graph.revoke_sessions(plan.target.id)
        return result

    async def applied_since(self, ctx: ActionContext, plan: Plan, intent_at: float) -> bool:
        """Revoking leaves one trace: the user's signInSessionsValidFromDateTime moves to the revocation time."""
        revoked_at = _parse_time(plan.prior.get("signInSessionsValidFromDateTime"))
        return revoked_at is not None and revoked_at.timestamp() >= intent_at - REPLAY_CLOCK_SKEW_S

    async def undo(self, ctx: ActionContext, outcome: Outcome) -> dict[str, Any]:
        raise ActionError(REVOKE_UNDO_HINT)
