"""What actions take and give back. Plain data: no SDK types cross this line."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel

from shared.safehtml import SafeHtml


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, alias_generator=to_camel, validate_by_name=True)


class Permission(_Model):
    """What the identity needs: a Microsoft Graph application permission, a Defender for Endpoint (WindowsDefenderATP)
    application permission, or an Azure RBAC role."""

    kind: Literal["graph", "mde", "azure_role"]
    name: str  # User.EnableDisableAccount.All / Riposte Network Responder
    operation: str = (
        ""  # for Azure roles: the RBAC operation checked, e.g. Microsoft.Network/networkSecurityGroups/write
    )
    # Where a dry run checks the operation: "" for the target's resource group, else the name of the setting that
    # holds the ARM id of the resource it is performed on (capture_storage_account_id)
    at_setting: str = ""


def graph_permission(name: str) -> Permission:
    return Permission(kind="graph", name=name)


def mde_permission(name: str) -> Permission:
    """An application permission of the WindowsDefenderATP application (Defender for Endpoint's API)."""
    return Permission(kind="mde", name=name)


def azure_role(name: str, operation: str, at_setting: str = "") -> Permission:
    return Permission(kind="azure_role", name=name, operation=operation, at_setting=at_setting)


class Target(_Model):
    """What an action acts on, resolved by stable id, with the facts guardrails look at."""

    kind: str  # user | vm | nsg | ip | incident | webhook
    id: str  # object id, ARM id, address...
    display: str = ""
    upn: str | None = None
    group_ids: tuple[str, ...] = ()
    tags: dict[str, str] = Field(default_factory=dict)
    privileged_roles: tuple[str, ...] = ()
    # Other ids the target goes by, checked against the protected prefixes too (a device's Azure VM resource id)
    related_ids: tuple[str, ...] = ()


class Plan(_Model):
    """A responder's reading of the world before it writes: the prior state it will record and what it will change."""

    target: Target
    prior: dict[str, Any] = Field(default_factory=dict, description="The state the write replaces, kept for undo")
    intended: dict[str, Any] = Field(default_factory=dict, description="The change the write makes")
    noop: bool = Field(False, description="Already in the intended state: nothing to write")
    reason: str = ""
    replay: bool = Field(False, description="An earlier attempt recorded its intent, then vanished: it may have acted")


class Status(StrEnum):
    DONE = "done"  # the write happened now
    ALREADY_DONE = "already_done"  # nothing to change (idempotent replay, or state already as intended)
    DRY_RUN = "dry_run"  # reported what it would do, wrote nothing
    SKIPPED = "skipped"  # a guardrail or the destructive-action cap stopped it
    FAILED = "failed"
    UNDONE = "undone"


class PermissionCheck(_Model):
    permission: Permission
    held: bool | None  # None: could not be determined
    detail: str = ""


class Outcome(_Model):
    action: str
    status: Status
    target: Target | None = None
    prior: dict[str, Any] = Field(default_factory=dict)
    intended: dict[str, Any] = Field(default_factory=dict)
    result: dict[str, Any] = Field(default_factory=dict)
    permissions: tuple[PermissionCheck, ...] = ()
    reason: str = ""
    idempotency_key: str = ""
    retryable: bool = Field(False, description="Failed on throttling or a transient error: worth trying again later")

    @property
    def wrote(self) -> bool:
        return self.status is Status.DONE


class Finding(_Model):
    """An enricher's typed result, or the recorded error that replaced it."""

    enricher: str
    ok: bool
    data: dict[str, Any] = Field(default_factory=dict)
    error: str = ""
    elapsed_ms: float = 0.0
    retryable: bool = Field(False, description="Failed on throttling or a transient error: worth trying again later")


@dataclass(frozen=True)
class IncidentNote:
    """What a run tells the incident it is for: a comment (plain text, or markup built as SafeHtml) and changes to the
    incident itself. Where it is written is the action port's choice: the engine only says what to write."""

    text: str = ""
    html: SafeHtml | None = None
    add_labels: tuple[str, ...] = ()
    status: str | None = None
    severity: str | None = None
    # Also tell the people on call (the notify webhook, when one is configured): an approval request is worth a ping
    page: str = ""  # the card's title when it is
