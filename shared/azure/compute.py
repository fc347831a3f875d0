"""Microsoft.Compute through azure-mgmt-compute's async client: a VM with its instance view, and the power actions
(power off, deallocate, start), each a long-running operation awaited at the interval the service asks for.

Also the pieces both ARM adapters share (this module and shared.azure.network): ARM id parsing, one SDK client per
subscription, and the translation of SDK exceptions into shared.azure.errors. The SDK is imported inside functions
only, so importing this module costs nothing at cold start."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from shared.azure.clients import arm_client_kwargs
from shared.azure.errors import AzureError, from_sdk
from shared.azure.limits import Limits
from shared.settings import Settings

if TYPE_CHECKING:
    from azure.mgmt.compute.aio import ComputeManagementClient

SERVICE = "compute"
VM_TYPE = "Microsoft.Compute/virtualMachines"

# Only POSTs that are safe to repeat go through this adapter (power actions; queryStatus, stop and effective rules in
# the network adapter), so a 429 or 5xx on them is retried like a GET or PUT. azure-core retries POST on 500/503/504
# only, and a throttled POST without Retry-After would otherwise fail at once.
IDEMPOTENT_POST = frozenset({"HEAD", "GET", "PUT", "DELETE", "OPTIONS", "TRACE", "POST"})

_SEGMENT = re.compile(r"^[^/\s]+$")


@dataclass(frozen=True)
class ArmId:
    """A resource id: /subscriptions/s/resourceGroups/g/providers/Namespace/type/name[/childType/childName...].

    ARM ids are case-insensitive: compare them with `same()` or `key`, never with ==."""

    subscription: str
    resource_group: str
    namespace: str
    types: tuple[str, ...]
    names: tuple[str, ...]

    @classmethod
    def parse(cls, value: str, expected_type: str | None = None) -> ArmId:
        parts = value.strip().strip("/").split("/")
        if (
            len(parts) < 8
            or len(parts) % 2
            or parts[0].lower() != "subscriptions"
            or parts[2].lower() != "resourcegroups"
            or parts[4].lower() != "providers"
            or not all(_SEGMENT.match(p) and p not in (".", "..") for p in parts)
        ):
            raise ValueError(f"{value!r} is not an Azure resource id")
        rest = parts[6:]
        parsed = cls(parts[1], parts[3], parts[5], tuple(rest[0::2]), tuple(rest[1::2]))
        if expected_type is not None and parsed.type.lower() != expected_type.lower():
            raise ValueError(f"{value!r} is a {parsed.type}, not a {expected_type}")
        return parsed

    @property
    def type(self) -> str:
        return "/".join((self.namespace, *self.types))

    @property
    def name(self) -> str:
        return self.names[-1]

    @property
    def parent(self) -> ArmId:
        if len(self.names) < 2:
            raise ValueError(f"{self} has no parent resource")
        return ArmId(self.subscription, self.resource_group, self.namespace, self.types[:-1], self.names[:-1])

    @property
    def key(self) -> str:
        return str(self).lower()

    def same(self, other: str | ArmId | None) -> bool:
        return other is not None and str(other).strip().rstrip("/").lower() == self.key

    def child(self, child_type: str, child_name: str) -> ArmId:
        return ArmId(
            self.subscription,
            self.resource_group,
            self.namespace,
            (*self.types, child_type),
            (*self.names, child_name),
        )

    def __str__(self) -> str:
        path = f"/subscriptions/{self.subscription}/resourceGroups/{self.resource_group}/providers/{self.namespace}"
        for resource_type, name in zip(self.types, self.names, strict=True):
            path += f"/{resource_type}/{name}"
        return path


def resource_id(subscription: str, group: str, resource_type: str, name: str) -> ArmId:
    namespace, _, type_name = resource_type.partition("/")
    return ArmId(subscription, group, namespace, (type_name,), (name,))


def same_id(a: str | None, b: str | None) -> bool:
    return a is not None and b is not None and a.strip().rstrip("/").lower() == b.strip().rstrip("/").lower()


@asynccontextmanager
async def translated(service: str) -> AsyncIterator[None]:
    """SDK exceptions leave the adapter as shared.azure.errors.AzureError (NotFound, PreconditionFailed...)."""
    try:
        yield
    except AzureError:
        raise
    except Exception as error:
        from azure.core.exceptions import AzureError as SdkError

        if isinstance(error, SdkError):
            raise from_sdk(service, error) from error
        raise


def as_json(model: Any) -> dict[str, Any]:
    """The REST JSON shape of an SDK model (the mgmt models are MutableMappings over the wire names)."""
    if model is None:
        return {}
    as_dict: Callable[[], dict[str, Any]] | None = getattr(model, "as_dict", None)
    return as_dict() if as_dict is not None else dict(model)


C = TypeVar("C")


class SubscriptionClients(Generic[C]):
    """One SDK client per subscription, built on first use from `build(subscription)`, closed together."""

    def __init__(self, build: Callable[[str], C]) -> None:
        self._build = build
        self._clients: dict[str, C] = {}

    def get(self, subscription: str) -> C:
        key = subscription.lower()
        client = self._clients.get(key)
        if client is None:
            client = self._clients[key] = self._build(subscription)
        return client

    async def close(self) -> None:
        clients, self._clients = list(self._clients.values()), {}
        for client in clients:
            close: Any = getattr(client, "close", None)
            if close is not None:
                await close()


def client_kwargs(settings: Settings) -> dict[str, Any]:
    """arm_client_kwargs plus retry_status, so RIPOSTE_MAX_RETRIES bounds 429/503 retries too (azure-core's own
    default of 3 status retries would otherwise cap it)."""
    kwargs = arm_client_kwargs(settings)
    kwargs["retry_status"] = settings.max_retries
    return kwargs


def power_state(vm: dict[str, Any]) -> str:
    """'running', 'stopped', 'deallocated', 'starting', 'stopping', 'deallocating', or 'unknown', from a VM read
    with its instance view (PowerState/<state> status code)."""
    view = (vm.get("properties") or {}).get("instanceView") or vm.get("instanceView") or {}
    for status in view.get("statuses") or []:
        code = str(status.get("code") or "")
        if code.lower().startswith("powerstate/"):
            return code.split("/", 1)[1].lower()
    return "unknown"


class ComputeAdapter:
    """Virtual machines, addressed by ARM id. Every method returns the API's JSON shape or raises AzureError."""

    def __init__(self, settings: Settings, credential: Any, limits: Limits) -> None:
        self.settings = settings
        self._credential = credential
        self._limits = limits
        self._clients: SubscriptionClients[ComputeManagementClient] = SubscriptionClients(self._build)

    def _build(self, subscription: str) -> ComputeManagementClient:
        from azure.mgmt.compute.aio import ComputeManagementClient

        return ComputeManagementClient(self._credential, subscription, **client_kwargs(self.settings))

    def _vm(self, vm_id: str) -> tuple[ComputeManagementClient, ArmId]:
        parsed = ArmId.parse(vm_id, VM_TYPE)
        return self._clients.get(parsed.subscription), parsed

    async def get_vm(self, vm_id: str, *, instance_view: bool = False) -> dict[str, Any]:
        """The VM; with instance_view, properties.instanceView carries the power state ($expand=instanceView)."""
        client, parsed = self._vm(vm_id)
        async with translated(SERVICE):
            if instance_view:
                vm = await client.virtual_machines.get(parsed.resource_group, parsed.name, expand="instanceView")
            else:
                vm = await client.virtual_machines.get(parsed.resource_group, parsed.name)
        return as_json(vm)

    async def power_off_vm(self, vm_id: str, *, skip_shutdown: bool = False) -> None:
        """Stops the VM (still allocated, still billed). Returns when the operation has completed."""
        client, parsed = self._vm(vm_id)
        async with translated(SERVICE):
            poller = await client.virtual_machines.begin_power_off(
                parsed.resource_group, parsed.name, skip_shutdown=skip_shutdown, retry_on_methods=IDEMPOTENT_POST
            )
            await poller.result()

    async def deallocate_vm(self, vm_id: str) -> None:
        """Stops the VM and releases its compute resources. Returns when the operation has completed."""
        client, parsed = self._vm(vm_id)
        async with translated(SERVICE):
            poller = await client.virtual_machines.begin_deallocate(
                parsed.resource_group, parsed.name, retry_on_methods=IDEMPOTENT_POST
            )
            await poller.result()

    async def start_vm(self, vm_id: str) -> None:
        client, parsed = self._vm(vm_id)
        async with translated(SERVICE):
            poller = await client.virtual_machines.begin_start(
                parsed.resource_group, parsed.name, retry_on_methods=IDEMPOTENT_POST
            )
            await poller.result()

    async def close(self) -> None:
        await self._clients.close()


ADAPTER = ComputeAdapter
