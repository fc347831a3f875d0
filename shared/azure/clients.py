"""Builds the adapters from settings, lazily: nothing is imported or connected until an action asks for it.

    async with AzureClients(settings) as azure:
        user = await azure.graph.get_user(object_id)

Credentials: DefaultAzureCredential (async), which on Azure Functions uses the app's managed identity and locally the
emulated cloud's managed-identity endpoint (IDENTITY_ENDPOINT / IDENTITY_HEADER): production code does not know it is
local. Only the endpoints and the CA bundle differ, and they come from settings."""

from __future__ import annotations

from types import TracebackType
from typing import TYPE_CHECKING, Any

from shared.azure.limits import Limits, limits_for
from shared.settings import Settings

if TYPE_CHECKING:
    from shared.azure.authorization import AuthorizationAdapter
    from shared.azure.compute import ComputeAdapter
    from shared.azure.graph import GraphAdapter
    from shared.azure.loganalytics import LogAnalyticsAdapter
    from shared.azure.mde import MdeAdapter
    from shared.azure.network import NetworkAdapter
    from shared.azure.security import SecurityAdapter
    from shared.azure.sentinel import SentinelAdapter
    from shared.azure.storage_accounts import StorageAccountsAdapter


class AzureClients:
    def __init__(self, settings: Settings, credential: Any = None) -> None:
        self.settings = settings
        self._credential = credential
        self._owns_credential = credential is None
        self._adapters: dict[str, Any] = {}
        self._limits: Limits | None = None

    @property
    def limits(self) -> Limits:
        if self._limits is None:
            self._limits = limits_for(self.settings)
        return self._limits

    @property
    def credential(self) -> Any:
        if self._credential is None:
            from azure.identity.aio import DefaultAzureCredential

            kwargs: dict[str, Any] = {"exclude_interactive_browser_credential": True}
            if self.settings.managed_identity_client_id:
                kwargs["managed_identity_client_id"] = self.settings.managed_identity_client_id
            if self.settings.ca_bundle:
                kwargs["connection_verify"] = self.settings.ca_bundle
            self._credential = DefaultAzureCredential(**kwargs)
        return self._credential

    def _adapter(self, name: str) -> Any:
        if name not in self._adapters:
            import importlib

            module = importlib.import_module(f"shared.azure.{name}")
            self._adapters[name] = module.ADAPTER(self.settings, self.credential, self.limits)
        return self._adapters[name]

    @property
    def graph(self) -> GraphAdapter:
        adapter: GraphAdapter = self._adapter("graph")
        return adapter

    @property
    def compute(self) -> ComputeAdapter:
        adapter: ComputeAdapter = self._adapter("compute")
        return adapter

    @property
    def network(self) -> NetworkAdapter:
        adapter: NetworkAdapter = self._adapter("network")
        return adapter

    @property
    def sentinel(self) -> SentinelAdapter:
        adapter: SentinelAdapter = self._adapter("sentinel")
        return adapter

    @property
    def logs(self) -> LogAnalyticsAdapter:
        adapter: LogAnalyticsAdapter = self._adapter("loganalytics")
        return adapter

    @property
    def storage_accounts(self) -> StorageAccountsAdapter:
        adapter: StorageAccountsAdapter = self._adapter("storage_accounts")
        return adapter

    @property
    def mde(self) -> MdeAdapter:
        adapter: MdeAdapter = self._adapter("mde")
        return adapter

    @property
    def security(self) -> SecurityAdapter:
        adapter: SecurityAdapter = self._adapter("security")
        return adapter

    @property
    def authorization(self) -> AuthorizationAdapter:
        adapter: AuthorizationAdapter = self._adapter("authorization")
        return adapter

    async def close(self) -> None:
        for adapter in self._adapters.values():
            await adapter.close()
        self._adapters.clear()
        if self._owns_credential and self._credential is not None:
            await self._credential.close()
            self._credential = None

    async def __aenter__(self) -> AzureClients:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()
