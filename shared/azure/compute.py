"""Microsoft.Compute through azure-mgmt-compute's async client: a VM with its instance view, and the power actions
(power off, deallocate, start), each a long-running operation awaited at the interval the service asks for. The SDK
is imported inside functions only, so importing this module costs nothing at cold start."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from shared.armid import ArmId
from shared.azure.arm import IDEMPOTENT_POST, SubscriptionClients, as_json, client_kwargs, translated
from shared.azure.limits import Limits
from shared.settings import Settings

if TYPE_CHECKING:
    from azure.mgmt.compute.aio import ComputeManagementClient

SERVICE = "compute"
VM_TYPE = "Microsoft.Compute/virtualMachines"


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
