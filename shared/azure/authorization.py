"""Azure RBAC: what Riposte's identity may do at a scope (azure-mgmt-authorization, Permissions - List For Resource
Group and List For Resource). Dry runs use it to say whether each operation an action performs is allowed where the
action would perform it."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from shared.armid import ArmId
from shared.azure.arm import SubscriptionClients, client_kwargs
from shared.azure.errors import from_sdk
from shared.azure.limits import Limits
from shared.settings import Settings

if TYPE_CHECKING:
    from azure.mgmt.authorization.aio import AuthorizationManagementClient


class AuthorizationAdapter:
    def __init__(self, settings: Settings, credential: Any, limits: Limits) -> None:
        def build(subscription: str) -> AuthorizationManagementClient:
            from azure.mgmt.authorization.aio import AuthorizationManagementClient

            return AuthorizationManagementClient(credential, subscription, **client_kwargs(settings))

        self._clients = SubscriptionClients(build)

    async def permissions_at(self, resource_id: str) -> list[dict[str, list[str]]]:
        """The caller's effective permissions at the resource group of `resource_id`: [{actions, notActions}]."""
        arm_id = ArmId.parse(resource_id)
        client = self._clients.get(arm_id.subscription)
        try:
            found = [p async for p in client.permissions.list_for_resource_group(arm_id.resource_group)]
        except Exception as error:
            raise from_sdk("authorization", error) from error
        return [{"actions": list(p.actions or []), "notActions": list(p.not_actions or [])} for p in found]

    async def permissions_on(self, resource_id: str) -> list[dict[str, list[str]]]:
        """The caller's effective permissions on one top-level resource (a storage account), assignments made on
        the resource itself included (Permissions - List For Resource)."""
        arm_id = ArmId.parse(resource_id)
        if len(arm_id.types) != 1 or arm_id.scope is not None:
            raise ValueError(f"not the id of a top-level resource: {resource_id}")
        client = self._clients.get(arm_id.subscription)
        try:
            listing = client.permissions.list_for_resource(
                arm_id.resource_group, arm_id.namespace, "", arm_id.types[0], arm_id.names[0]
            )
            found = [p async for p in listing]
        except Exception as error:
            raise from_sdk("authorization", error) from error
        return [{"actions": list(p.actions or []), "notActions": list(p.not_actions or [])} for p in found]

    async def close(self) -> None:
        await self._clients.close()


ADAPTER = AuthorizationAdapter
