"""What an action runs with: settings, the Azure adapters, guardrails, the destructive-action budget, the ledger."""

from __future__ import annotations

import ipaddress
import time
from collections import deque
from dataclasses import dataclass, field
from functools import cache
from typing import Any, Protocol

from shared.actions.model import Outcome, Permission, PermissionCheck, Plan, Target
from shared.kql import NamedQuery, load_queries
from shared.settings import Settings


class Ledger(Protocol):
    """Where each action's intent is written, under a deterministic key, before it acts (engine: Azure Table).

    An entry read by `get` carries its version under "etag". `put_intent` writes only over the entry as it was read
    (`previous`, or nothing when None): of two workers racing to act under one key, only one records its intent, and
    only that one acts. The intent keeps the action's parameters, so the ledger alone tells what an attempt did."""

    async def get(self, key: str) -> dict[str, Any] | None: ...

    async def put_intent(
        self, key: str, action: str, plan: Plan, *, params: dict[str, Any], previous: dict[str, Any] | None
    ) -> bool: ...

    async def put_outcome(self, key: str, outcome: Outcome) -> None: ...


class DestructiveBudget(Protocol):
    async def try_consume(self, action: str) -> bool: ...


class PermissionChecker(Protocol):
    async def check(self, permission: Permission, target: Target) -> PermissionCheck: ...


class MemoryLedger:
    """A ledger for one process: tests and dry runs."""

    def __init__(self) -> None:
        self.entries: dict[str, dict[str, Any]] = {}
        self._versions = 0

    async def get(self, key: str) -> dict[str, Any] | None:
        entry = self.entries.get(key)
        return dict(entry) if entry is not None else None

    async def put_intent(
        self, key: str, action: str, plan: Plan, *, params: dict[str, Any], previous: dict[str, Any] | None
    ) -> bool:
        current = self.entries.get(key)
        if (current["etag"] if current else None) != (previous["etag"] if previous else None):
            return False
        self._versions += 1
        self.entries[key] = {
            "action": action,
            "state": "intent",
            "plan": plan.model_dump(mode="json"),
            "params": params,
            "at": time.time(),
            "etag": str(self._versions),
        }
        return True

    async def put_outcome(self, key: str, outcome: Outcome) -> None:
        entry = self.entries.setdefault(key, {"action": outcome.action})
        self._versions += 1
        entry.update(state="done", outcome=outcome.model_dump(mode="json"), etag=str(self._versions))


class SlidingWindowBudget:
    """At most `limit` destructive actions in any `window_s` seconds, in this process."""

    def __init__(self, limit: int, window_s: float = 3600.0) -> None:
        self.limit = limit
        self.window_s = window_s
        self.used: deque[float] = deque()

    async def try_consume(self, action: str) -> bool:
        now = time.monotonic()
        while self.used and now - self.used[0] >= self.window_s:
            self.used.popleft()
        if len(self.used) >= self.limit:
            return False
        self.used.append(now)
        return True


@dataclass(frozen=True)
class Guardrails:
    """Targets automation must never touch: break-glass accounts, protected groups, protected resources."""

    users: frozenset[str] = frozenset()
    groups: frozenset[str] = frozenset()
    resource_prefixes: tuple[str, ...] = ()
    resource_tags: tuple[tuple[str, str], ...] = ()
    ip_ranges: tuple[str, ...] = ()  # addresses never blocked: Riposte's egress, management and partner ranges

    @classmethod
    def from_settings(cls, settings: Settings) -> Guardrails:
        tags = []
        for item in settings.protected_resource_tags:
            key, _, value = item.partition("=")
            tags.append((key.strip().lower(), value.strip()))
        return cls(
            users=frozenset(u.lower() for u in settings.protected_users),
            groups=frozenset(g.lower() for g in settings.protected_groups),
            resource_prefixes=tuple(p.lower().rstrip("/") for p in settings.protected_resource_prefixes),
            resource_tags=tuple(tags),
            ip_ranges=tuple(settings.protected_ip_ranges),
        )

    def blocked(self, target: Target) -> str | None:
        """Why the target is protected, or None. Ids and UPNs compare case-insensitively, as Entra and ARM do."""
        if target.kind == "ip":
            return protected_range(target.id, self.ip_ranges)
        if target.kind == "servicePrincipal" and target.id.lower() in self.users:
            return (
                f"service principal {target.display or target.id} is protected by object id (RIPOSTE_PROTECTED_USERS)"
            )
        if target.kind == "user":
            if target.id.lower() in self.users:
                return f"user {target.display or target.id} is protected by object id (RIPOSTE_PROTECTED_USERS)"
            if target.upn and target.upn.lower() in self.users:
                return f"user {target.upn} is protected by UPN (RIPOSTE_PROTECTED_USERS)"
            for group in target.group_ids:
                if group.lower() in self.groups:
                    return f"user {target.upn or target.id} is a member of protected group {group}"
            return None
        for resource_id in (target.id.lower().rstrip("/"), *(r.lower().rstrip("/") for r in target.related_ids)):
            for prefix in self.resource_prefixes:
                if resource_id == prefix or resource_id.startswith(prefix + "/"):
                    return f"{target.display or target.id} is under protected prefix {prefix}"
        lowered = {k.lower(): v for k, v in target.tags.items()}
        for key, value in self.resource_tags:
            if key in lowered and (value == "" or lowered[key] == value):
                return f"{target.display or target.id} carries protected tag {key}={lowered[key]}"
        return None


def protected_range(address: str, ranges: tuple[str, ...]) -> str | None:
    """The protected range (RIPOSTE_PROTECTED_IP_RANGES) an address or prefix overlaps, as a reason, or None."""
    network = ipaddress.ip_network(address, strict=False)
    for prefix in ranges:
        protected = ipaddress.ip_network(prefix, strict=False)
        if network.version == protected.version and network.overlaps(protected):
            return f"{address} is in the protected range {prefix} (RIPOSTE_PROTECTED_IP_RANGES)"
    return None


@dataclass
class ActionContext:
    settings: Settings
    azure: Any  # shared.azure.clients.AzureClients: typed loosely so this module imports no SDK
    ledger: Ledger = field(default_factory=MemoryLedger)
    budget: DestructiveBudget | None = None
    permissions: PermissionChecker | None = None
    guardrails: Guardrails | None = None
    run_id: str = ""
    incident_id: str | None = None  # ARM id of the Sentinel incident the run is for
    dry_run: bool = False

    def __post_init__(self) -> None:
        if self.guardrails is None:
            self.guardrails = Guardrails.from_settings(self.settings)
        if self.budget is None:
            self.budget = SlidingWindowBudget(self.settings.destructive_actions_per_hour)


@cache
def _protected_query() -> NamedQuery:
    return load_queries()["watchlist_any"]


async def watchlist_protection(ctx: ActionContext, target: Target) -> str | None:
    """The guardrail RIPOSTE_PROTECTED_WATCHLIST adds: why a user target is protected (its UPN or object id is a
    search key of that Sentinel watchlist, read with _GetWatchlist), or None. A watchlist that cannot be read
    raises, so the action does not run unchecked."""
    alias = ctx.settings.protected_watchlist
    keys = [k for k in (target.upn, target.id) if k]
    if not alias or target.kind != "user" or not keys:
        return None
    if not ctx.settings.workspace_id:
        raise ValueError("RIPOSTE_PROTECTED_WATCHLIST needs RIPOSTE_WORKSPACE_ID, the workspace that holds it")
    kql = _protected_query().render(alias=alias, keys=keys)
    rows = await ctx.azure.logs.query(ctx.settings.workspace_id, kql, None)
    if not rows:
        return None
    return f"user {target.upn or target.id} is on the {alias} watchlist (RIPOSTE_PROTECTED_WATCHLIST)"
