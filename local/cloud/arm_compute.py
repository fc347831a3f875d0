"""Microsoft.Compute virtual machines: get (with the instance view), list, and the power actions powerOff,
deallocate, start and restart as long-running operations (202 + Location + Azure-AsyncOperation).

The power state lives in the live document as the VM's `properties.instanceView` (what ARM returns with
$expand=instanceView); a plain GET leaves it out, like ARM."""

from __future__ import annotations

import copy
import uuid

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from local.cloud import arm_resources as arm
from local.cloud.arm_resources import ArmProvider, Json
from local.cloud.errors import ArmError
from local.cloud.provider import route
from local.cloud.router import request_params

NAMESPACE = "Microsoft.Compute"
VM_TYPE = "Microsoft.Compute/virtualMachines"

DISPLAY = {
    "running": "VM running",
    "starting": "VM starting",
    "stopping": "VM stopping",
    "stopped": "VM stopped",
    "deallocating": "VM deallocating",
    "deallocated": "VM deallocated",
}


def _guid(*parts: str) -> str:
    return str(uuid.uuid5(uuid.NAMESPACE_URL, "/".join(p.lower() for p in parts)))


def power_state(vm: Json) -> str:
    for status in (vm.get("properties", {}).get("instanceView") or {}).get("statuses", []):
        code = str(status.get("code", ""))
        if code.startswith("PowerState/"):
            return code.split("/", 1)[1]
    return "running"


def set_power_state(vm: Json, state: str, *, settled: bool) -> None:
    """Power state plus the provisioning state that goes with it (Updating while an action runs)."""
    props = vm.setdefault("properties", {})
    props["provisioningState"] = "Succeeded" if settled else "Updating"
    view = props.setdefault("instanceView", {})
    provisioning: Json = (
        {
            "code": "ProvisioningState/succeeded",
            "level": "Info",
            "displayStatus": "Provisioning succeeded",
            "time": arm.utc_now(),
        }
        if settled
        else {"code": "ProvisioningState/updating", "level": "Info", "displayStatus": "Updating"}
    )
    view["statuses"] = [
        provisioning,
        {"code": f"PowerState/{state}", "level": "Info", "displayStatus": DISPLAY.get(state, state)},
    ]
    if state == "deallocated":
        view.pop("vmAgent", None)  # a deallocated VM has no running agent to report


def expand_vm(vm: Json) -> None:
    """Fills what a seed may omit: etag, vmId, provisioning state and an instance view (running unless stated)."""
    vm.setdefault("etag", '"1"')
    props = vm.setdefault("properties", {})
    props.setdefault("vmId", _guid(vm["id"], "vmId"))
    props.setdefault("provisioningState", "Succeeded")
    props.setdefault("timeCreated", arm.utc_now())
    os_profile = props.get("osProfile") or {}
    os_disk = (props.get("storageProfile") or {}).get("osDisk") or {}
    image = (props.get("storageProfile") or {}).get("imageReference") or {}
    view = props.setdefault("instanceView", {})
    view.setdefault("computerName", os_profile.get("computerName", vm.get("name")))
    view.setdefault("osName", image.get("offer", os_disk.get("osType", "")))
    view.setdefault("osVersion", image.get("sku", ""))
    view.setdefault("hyperVGeneration", "V2")
    if "statuses" not in view:
        set_power_state(vm, "running", settled=True)
    if power_state(vm) != "deallocated":
        view.setdefault(
            "vmAgent",
            {
                "vmAgentVersion": "2.13.1.1",
                "statuses": [
                    {
                        "code": "ProvisioningState/succeeded",
                        "level": "Info",
                        "displayStatus": "Ready",
                        "message": "Guest Agent is running",
                    }
                ],
            },
        )
    disk_status = {"code": "ProvisioningState/succeeded", "level": "Info", "displayStatus": "Provisioning succeeded"}
    view.setdefault("disks", [{"name": os_disk.get("name", f"{vm.get('name')}_OsDisk"), "statuses": [disk_status]}])


def merge(target: Json, changes: Json) -> None:
    """JSON merge of a PATCH body: nested objects merge, everything else replaces (read-only parts stay)."""
    for name, value in changes.items():
        if name in ("provisioningState", "instanceView", "vmId", "timeCreated"):
            continue
        if isinstance(value, dict) and isinstance(target.get(name), dict):
            merge(target[name], value)
        else:
            target[name] = copy.deepcopy(value)


def next_etag(etag: str | None) -> str:
    """Compute's etags count the writes: "1", "2", ..."""
    try:
        return f'"{int(str(etag).strip(chr(34))) + 1}"'
    except ValueError:
        return '"1"'


def render_vm(vm: Json, with_instance_view: bool) -> Json:
    body = arm.render(vm)
    if not with_instance_view:
        body.get("properties", {}).pop("instanceView", None)
    return body


def wants_instance_view(request: Request) -> bool:
    params = request_params(request)
    return "instanceview" in params.get("$expand", "").lower() or params.get("statusonly", "").lower() == "true"


VMS = "/subscriptions/{subscription}/resourcegroups/{group}/providers/Microsoft.Compute/virtualMachines"
VM = VMS + "/{vm}"

# action: (the power state while it runs, the power state it ends in, the power states it is refused in)
POWER_ACTIONS: dict[str, tuple[str, str, tuple[str, ...]]] = {
    "powerOff": ("stopping", "stopped", ("deallocated", "deallocating")),
    "deallocate": ("deallocating", "deallocated", ()),
    "start": ("starting", "running", ()),
    "restart": ("starting", "running", ("deallocated", "deallocating", "stopped")),
}


class ComputeProvider(ArmProvider):
    namespace = NAMESPACE

    def _observed(self, subscription: str, group: str, vm: str) -> Json:
        """The VM; reading it counts as a poll of the operations on it."""
        found = self.find(subscription, group, VM_TYPE, vm)
        self.operations.observe_resource(found["id"])
        return found

    @route("GET", VM)
    async def get_vm(self, request: Request, subscription: str, group: str, vm: str) -> Response:
        found = self._observed(subscription, group, vm)
        return JSONResponse(render_vm(found, wants_instance_view(request)))

    @route("GET", VM + "/instanceView")
    async def get_instance_view(self, request: Request, subscription: str, group: str, vm: str) -> Response:
        found = self._observed(subscription, group, vm)
        return JSONResponse(copy.deepcopy(found["properties"].get("instanceView", {})))

    @route("GET", VMS)
    @route("GET", "/subscriptions/{subscription}/providers/Microsoft.Compute/virtualMachines")
    async def list_vms(self, request: Request, subscription: str, group: str | None = None) -> Response:
        self.require_scope(subscription, group)
        with_view = wants_instance_view(request)
        vms = self.store.of_type(VM_TYPE, subscription, group)
        return JSONResponse({"value": [render_vm(vm, with_view) for vm in vms]})

    @route("PATCH", VM)
    async def update_vm(self, request: Request, subscription: str, group: str, vm: str) -> Response:
        """PATCH merges tags and properties (e.g. tagging a VM as isolated); an operation like every VM write."""
        found = self.find(subscription, group, VM_TYPE, vm)
        body = await arm.read_json(request)
        if "tags" in body:
            found["tags"] = body["tags"] or {}
        merge(found.setdefault("properties", {}), body.get("properties") or {})
        found["properties"]["provisioningState"] = "Updating"
        found["etag"] = next_etag(found.get("etag"))

        def finish() -> None:
            found["properties"]["provisioningState"] = "Succeeded"

        operation = self.start(
            "UpdateVirtualMachineOperation", found, location=found.get("location", "westeurope"), finish=finish
        )
        return self.accepted(request, operation, 200, render_vm(found, with_instance_view=False))

    @route("POST", VM + "/powerOff", action="powerOff")
    @route("POST", VM + "/deallocate", action="deallocate")
    @route("POST", VM + "/start", action="start")
    @route("POST", VM + "/restart", action="restart")
    async def power_action(self, request: Request, subscription: str, group: str, vm: str, action: str) -> Response:
        transitional, final, refused_in = POWER_ACTIONS[action]
        found = self.find(subscription, group, VM_TYPE, vm)
        current = power_state(found)
        if current in refused_in:
            raise ArmError(
                409,
                "OperationNotAllowed",
                f"Operation '{action}' is not allowed on VM '{found['name']}' since the VM is {current}.",
            )
        set_power_state(found, transitional, settled=False)
        name = f"{action[0].upper()}{action[1:]}VirtualMachineOperation"
        location = found.get("location", "westeurope")
        operation = self.start(name, found, location=location, finish=lambda: settle(found, final))
        return self.accepted(request, operation, 202, location=True)


def settle(vm: Json, final: str) -> None:
    set_power_state(vm, final, settled=True)
    if final == "running":
        expand_vm(vm)  # the agent reports again
