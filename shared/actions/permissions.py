"""Whether Riposte's identity holds what an action needs, for dry runs: Graph application permissions from the
`roles` claim of its Graph access token, Azure roles from the effective permissions (actions minus notActions) at the
target's resource group. An answer it cannot get is None ("not determined"), never a guess."""

from __future__ import annotations

import base64
import fnmatch
import json
from typing import Any

from shared.actions.model import Permission, PermissionCheck, Target
from shared.armid import ArmId

GRAPH_SCOPE = "https://graph.microsoft.com/.default"
MDE_SCOPE = "https://api.securitycenter.microsoft.com/.default"  # shared.azure.mde.MDE_SCOPE, without importing it


def token_roles(token: str) -> set[str] | None:
    """The `roles` claim of a JWT access token (read, not verified: it is our own token, from our credential)."""
    try:
        payload = token.split(".")[1]
        claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    except (IndexError, ValueError):
        return None
    roles = claims.get("roles")
    return {str(r) for r in roles} if isinstance(roles, list) else set()


def allows(permissions: list[dict[str, list[str]]], operation: str) -> bool:
    """Azure RBAC: an operation is allowed when some permission's actions match it and its notActions do not."""
    wanted = operation.lower()
    for permission in permissions:
        granted = any(fnmatch.fnmatchcase(wanted, a.lower()) for a in permission.get("actions", []))
        denied = any(fnmatch.fnmatchcase(wanted, n.lower()) for n in permission.get("notActions", []))
        if granted and not denied:
            return True
    return False


class IdentityPermissions:
    """shared.actions.context.PermissionChecker over the Azure adapters; answers are cached for the run."""

    def __init__(self, azure: Any) -> None:
        self.azure = azure
        self._roles_by_scope: dict[str, set[str] | None] = {}
        self._scopes: dict[str, list[dict[str, list[str]]] | None] = {}

    async def check(self, permission: Permission, target: Target) -> PermissionCheck:
        if permission.kind in ("graph", "mde"):
            api = "Graph" if permission.kind == "graph" else "Defender for Endpoint"
            roles = await self._roles(GRAPH_SCOPE if permission.kind == "graph" else MDE_SCOPE)
            if roles is None:
                return PermissionCheck(permission=permission, held=None, detail=f"the {api} token could not be read")
            held = permission.name in roles
            detail = "granted to the identity" if held else "not granted: see docs/permissions.md"
            return PermissionCheck(permission=permission, held=held, detail=detail)
        try:
            scope = ArmId.parse(self._scope_id(permission, target))
        except ValueError:
            return PermissionCheck(permission=permission, held=None, detail="the target has no Azure scope")
        found = await self._permissions(scope, on_resource=bool(permission.at_setting))
        if found is None:
            return PermissionCheck(permission=permission, held=None, detail="permissions could not be read")
        # The operation decides, never the role's name: a custom or an operator's own role holding it is as good.
        held = allows(found, permission.operation)
        where = f"resource group {scope.resource_group}"
        if permission.at_setting:
            where = f"{scope.type.rsplit('/', 1)[-1]} {scope.name}"
        detail = (
            f"{permission.operation} allowed in {where}"
            if held
            else f"{permission.operation} not allowed in {where} (see {permission.name} in docs/permissions.md)"
        )
        return PermissionCheck(permission=permission, held=held, detail=detail)

    def _scope_id(self, permission: Permission, target: Target) -> str:
        """Where the operation is performed: the target, or the resource a setting names (the capture account)."""
        if permission.at_setting:
            return str(getattr(self.azure.settings, permission.at_setting, None) or "")
        return target.id

    async def _roles(self, scope: str) -> set[str] | None:
        """The application permissions in the `roles` claim of the identity's token for `scope` (read once)."""
        if scope not in self._roles_by_scope:
            try:
                token = await self.azure.credential.get_token(scope)
                self._roles_by_scope[scope] = token_roles(token.token)
            except Exception:
                self._roles_by_scope[scope] = None
        return self._roles_by_scope[scope]

    async def _permissions(self, scope: ArmId, on_resource: bool = False) -> list[dict[str, list[str]]] | None:
        # per resource group; per resource for a resource a setting names (assigned on the resource itself)
        key = str(scope).lower() if on_resource else f"{scope.subscription}/{scope.resource_group}".lower()
        if key not in self._scopes:
            authorization = self.azure.authorization
            try:
                read = authorization.permissions_on if on_resource else authorization.permissions_at
                self._scopes[key] = await read(str(scope))
            except Exception:
                self._scopes[key] = None
        return self._scopes[key]
