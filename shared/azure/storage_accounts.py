"""Microsoft.Storage account settings through azure-mgmt-storage's async StorageManagementClient: read an account, and
update the three settings the lockdown actions change (public blob access, shared key access, the firewall's IP
rules). Table and queue data live in shared/azure/storage.py; this is the management API. The SDK is imported inside
functions only, so importing this module costs nothing at cold start."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from shared.armid import ArmId
from shared.azure.arm import SubscriptionClients, as_json, client_kwargs, translated
from shared.azure.limits import Limits
from shared.settings import Settings

if TYPE_CHECKING:
    from azure.mgmt.storage.aio import StorageManagementClient

SERVICE = "storage"
ACCOUNT_TYPE = "Microsoft.Storage/storageAccounts"


class StorageAccountsAdapter:
    def __init__(self, settings: Settings, credential: Any, limits: Limits) -> None:
        self.settings = settings
        self._credential = credential
        self._limits = limits
        self._clients: SubscriptionClients[StorageManagementClient] = SubscriptionClients(self._build)

    def _build(self, subscription: str) -> StorageManagementClient:
        from azure.mgmt.storage.aio import StorageManagementClient

        return StorageManagementClient(self._credential, subscription, **client_kwargs(self.settings))

    def _account(self, account_id: str) -> tuple[StorageManagementClient, ArmId]:
        parsed = ArmId.parse(account_id, ACCOUNT_TYPE)
        return self._clients.get(parsed.subscription), parsed

    async def get_account(self, account_id: str) -> dict[str, Any]:
        """GET the account; properties.allowBlobPublicAccess, allowSharedKeyAccess and networkAcls among them."""
        client, parsed = self._account(account_id)
        async with translated(SERVICE):
            return as_json(await client.storage_accounts.get_properties(parsed.resource_group, parsed.name))

    async def set_flag(self, account_id: str, name: str, value: bool) -> None:
        """PATCH one boolean property: allow_blob_public_access or allow_shared_key_access (the SDK's names)."""
        from azure.mgmt.storage.models import StorageAccountPropertiesUpdateParameters, StorageAccountUpdateParameters

        if name == "allow_blob_public_access":
            properties = StorageAccountPropertiesUpdateParameters(allow_blob_public_access=value)
        elif name == "allow_shared_key_access":
            properties = StorageAccountPropertiesUpdateParameters(allow_shared_key_access=value)
        else:
            raise ValueError(f"not a flag the lockdown changes: {name}")
        client, parsed = self._account(account_id)
        update = StorageAccountUpdateParameters(properties=properties)
        async with translated(SERVICE):
            await client.storage_accounts.update(parsed.resource_group, parsed.name, update)

    async def set_ip_rules(self, account_id: str, addresses: list[str]) -> None:
        """The firewall's allowed addresses, everything else in the rule set kept as it is read now (PATCH replaces
        networkAcls as a whole)."""
        from azure.mgmt.storage.models import (
            IPRule,
            StorageAccountPropertiesUpdateParameters,
            StorageAccountUpdateParameters,
        )

        client, parsed = self._account(account_id)
        async with translated(SERVICE):
            account = await client.storage_accounts.get_properties(parsed.resource_group, parsed.name)
            rules = account.properties.network_rule_set if account.properties is not None else None
            if rules is None:
                raise ValueError("the account has no firewall rule set")
            rules.ip_rules = [IPRule(ip_address_or_range=a, action="Allow") for a in addresses]
            properties = StorageAccountPropertiesUpdateParameters(network_rule_set=rules)
            await client.storage_accounts.update(
                parsed.resource_group, parsed.name, StorageAccountUpdateParameters(properties=properties)
            )

    async def close(self) -> None:
        await self._clients.close()


ADAPTER = StorageAccountsAdapter
