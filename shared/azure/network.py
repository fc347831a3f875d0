"""Microsoft.Network through azure-mgmt-network's async client: network security groups and their rules, network
interfaces, public IPs, subnets, network watchers and packet captures, addressed by ARM id.

Writes are long-running operations awaited at the service's Retry-After (or settings.lro_poll_seconds). While one
operation holds an NSG, Microsoft.Network answers other writes to it with 429 RetryableErrorDueToAnotherOperation and
a Retry-After, which azure-core's retry policy honours. Callers that read-modify-write an NSG hold `nsg_writes(id)`
for the whole span and pass the etag they read as If-Match, so a writer in another process makes the write fail with
PreconditionFailed (re-read, re-decide) instead of silently losing its rules. The SDK is imported inside methods."""

from __future__ import annotations

from contextlib import AbstractAsyncContextManager
from typing import TYPE_CHECKING, Any

from shared.armid import ArmId
from shared.azure.arm import IDEMPOTENT_POST, SubscriptionClients, as_json, client_kwargs, translated
from shared.azure.limits import Limits
from shared.settings import Settings

if TYPE_CHECKING:
    from azure.mgmt.network.aio import NetworkManagementClient

SERVICE = "network"
NSG_TYPE = "Microsoft.Network/networkSecurityGroups"
NIC_TYPE = "Microsoft.Network/networkInterfaces"
PUBLIC_IP_TYPE = "Microsoft.Network/publicIPAddresses"
SUBNET_TYPE = "Microsoft.Network/virtualNetworks/subnets"
WATCHER_TYPE = "Microsoft.Network/networkWatchers"
CAPTURE_TYPE = "Microsoft.Network/networkWatchers/packetCaptures"


def _conditions(if_match: str | None, if_none_match: str | None) -> dict[str, str]:
    headers: dict[str, str] = {}
    if if_match is not None:
        headers["If-Match"] = if_match
    if if_none_match is not None:
        headers["If-None-Match"] = if_none_match
    return headers


class NetworkAdapter:
    """Every method returns the API's JSON shape (dicts with camelCase wire names) or raises AzureError."""

    def __init__(self, settings: Settings, credential: Any, limits: Limits) -> None:
        self.settings = settings
        self._credential = credential
        self._limits = limits
        self._clients: SubscriptionClients[NetworkManagementClient] = SubscriptionClients(self._build)

    def _build(self, subscription: str) -> NetworkManagementClient:
        from azure.mgmt.network.aio import NetworkManagementClient

        return NetworkManagementClient(self._credential, subscription, **client_kwargs(self.settings))

    def _client(self, resource_id: str, resource_type: str) -> tuple[NetworkManagementClient, ArmId]:
        parsed = ArmId.parse(resource_id, resource_type)
        return self._clients.get(parsed.subscription), parsed

    def nsg_writes(self, nsg_id: str) -> AbstractAsyncContextManager[None]:
        """Serialises this process's read-modify-write spans on one NSG (the provider would 429 the overlap)."""
        return self._limits.nsg_writes.hold(ArmId.parse(nsg_id, NSG_TYPE).key)

    # ---- network security groups ---------------------------------------------------------------------------------

    async def get_nsg(self, nsg_id: str) -> dict[str, Any]:
        client, parsed = self._client(nsg_id, NSG_TYPE)
        async with translated(SERVICE):
            return as_json(await client.network_security_groups.get(parsed.resource_group, parsed.name))

    async def put_nsg(
        self, nsg_id: str, nsg: dict[str, Any], *, if_match: str | None = None, if_none_match: str | None = None
    ) -> dict[str, Any]:
        """Creates or replaces the NSG (its securityRules are the complete list) and waits for the operation."""
        from azure.mgmt.network.models import NetworkSecurityGroup

        client, parsed = self._client(nsg_id, NSG_TYPE)
        async with translated(SERVICE):
            poller = await client.network_security_groups.begin_create_or_update(
                parsed.resource_group,
                parsed.name,
                NetworkSecurityGroup(nsg),  # a model, so read-only properties are left out of the body
                headers=_conditions(if_match, if_none_match),
            )
            return as_json(await poller.result())

    async def delete_nsg(self, nsg_id: str, *, if_match: str | None = None) -> None:
        client, parsed = self._client(nsg_id, NSG_TYPE)
        async with translated(SERVICE):
            poller = await client.network_security_groups.begin_delete(
                parsed.resource_group, parsed.name, headers=_conditions(if_match, None)
            )
            await poller.result()

    async def put_security_rule(
        self,
        nsg_id: str,
        name: str,
        properties: dict[str, Any],
        *,
        if_match: str | None = None,
        if_none_match: str | None = None,
    ) -> dict[str, Any]:
        """Creates or updates one rule (the others are untouched) and waits for the operation."""
        from azure.mgmt.network.models import SecurityRule

        client, parsed = self._client(nsg_id, NSG_TYPE)
        async with translated(SERVICE):
            poller = await client.security_rules.begin_create_or_update(
                parsed.resource_group,
                parsed.name,
                name,
                SecurityRule({"name": name, "properties": properties}),
                headers=_conditions(if_match, if_none_match),
            )
            return as_json(await poller.result())

    async def delete_security_rule(self, nsg_id: str, name: str, *, if_match: str | None = None) -> None:
        client, parsed = self._client(nsg_id, NSG_TYPE)
        async with translated(SERVICE):
            poller = await client.security_rules.begin_delete(
                parsed.resource_group, parsed.name, name, headers=_conditions(if_match, None)
            )
            await poller.result()

    # ---- network interfaces, public IPs, subnets -------------------------------------------------------------------

    async def get_nic(self, nic_id: str) -> dict[str, Any]:
        client, parsed = self._client(nic_id, NIC_TYPE)
        async with translated(SERVICE):
            return as_json(await client.network_interfaces.get(parsed.resource_group, parsed.name))

    async def put_nic(self, nic_id: str, nic: dict[str, Any], *, if_match: str | None = None) -> dict[str, Any]:
        """Replaces the NIC as given (a NIC read with get_nic, changed) and waits for the operation."""
        from azure.mgmt.network.models import NetworkInterface

        client, parsed = self._client(nic_id, NIC_TYPE)
        async with translated(SERVICE):
            poller = await client.network_interfaces.begin_create_or_update(
                parsed.resource_group,
                parsed.name,
                NetworkInterface(nic),  # a model, so read-only properties are left out of the body
                headers=_conditions(if_match, None),
            )
            return as_json(await poller.result())

    async def list_effective_nsgs(self, nic_id: str) -> list[dict[str, Any]]:
        """The NSGs in force on the NIC (its own and its subnet's) with their effective rules."""
        client, parsed = self._client(nic_id, NIC_TYPE)
        async with translated(SERVICE):
            poller = await client.network_interfaces.begin_list_effective_network_security_groups(
                parsed.resource_group, parsed.name, retry_on_methods=IDEMPOTENT_POST
            )
            result = as_json(await poller.result())
        groups: list[dict[str, Any]] = list(result.get("value") or [])
        return groups

    async def get_public_ip(self, address_id: str) -> dict[str, Any]:
        client, parsed = self._client(address_id, PUBLIC_IP_TYPE)
        async with translated(SERVICE):
            return as_json(await client.public_ip_addresses.get(parsed.resource_group, parsed.name))

    async def get_subnet(self, subnet_id: str) -> dict[str, Any]:
        client, parsed = self._client(subnet_id, SUBNET_TYPE)
        async with translated(SERVICE):
            return as_json(await client.subnets.get(parsed.resource_group, parsed.names[0], parsed.names[1]))

    # ---- network watchers and packet captures ----------------------------------------------------------------------

    async def list_network_watchers(self, subscription: str) -> list[dict[str, Any]]:
        client = self._clients.get(subscription)
        async with translated(SERVICE):
            return [as_json(watcher) async for watcher in client.network_watchers.list_all()]

    def _capture(self, capture_id: str) -> tuple[NetworkManagementClient, ArmId]:
        return self._client(capture_id, CAPTURE_TYPE)

    async def create_packet_capture(self, capture_id: str, capture: dict[str, Any]) -> dict[str, Any]:
        """Starts a capture session ({"properties": {target, storageLocation, timeLimitInSeconds...}})."""
        from azure.mgmt.network.models import PacketCapture

        client, parsed = self._capture(capture_id)
        async with translated(SERVICE):
            poller = await client.packet_captures.begin_create(
                parsed.resource_group, parsed.names[0], parsed.names[1], PacketCapture(capture)
            )
            return as_json(await poller.result())

    async def get_packet_capture(self, capture_id: str) -> dict[str, Any]:
        client, parsed = self._capture(capture_id)
        async with translated(SERVICE):
            return as_json(await client.packet_captures.get(parsed.resource_group, parsed.names[0], parsed.names[1]))

    async def packet_capture_status(self, capture_id: str) -> dict[str, Any]:
        """queryStatus: packetCaptureStatus (NotStarted, Running, Stopped, Error, Unknown), stopReason, errors."""
        client, parsed = self._capture(capture_id)
        async with translated(SERVICE):
            poller = await client.packet_captures.begin_get_status(
                parsed.resource_group, parsed.names[0], parsed.names[1], retry_on_methods=IDEMPOTENT_POST
            )
            return as_json(await poller.result())

    async def stop_packet_capture(self, capture_id: str) -> None:
        client, parsed = self._capture(capture_id)
        async with translated(SERVICE):
            poller = await client.packet_captures.begin_stop(
                parsed.resource_group, parsed.names[0], parsed.names[1], retry_on_methods=IDEMPOTENT_POST
            )
            await poller.result()

    async def close(self) -> None:
        await self._clients.close()


ADAPTER = NetworkAdapter
