"""Microsoft.Authorization: the caller's effective permissions at a resource group (Permissions - List For Resource
Group), from tenant.riposteIdentity.roleAssignments and the actions of the built-in roles or of the tenant's custom
roles (tenant.riposteIdentity.roleDefinitions). Dry runs ask it whether each operation an action performs is allowed
where the action would act."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from local.cloud.arm_resources import ArmProvider
from local.cloud.provider import route
from local.cloud.state import Cloud

# The built-in roles the demo assigns, with their permissions as Microsoft publishes them (abridged to what matters).
BUILT_IN_ROLES: dict[str, dict[str, list[str]]] = {
    "Reader": {"actions": ["*/read"], "notActions": []},
    "Network Contributor": {
        "actions": ["Microsoft.Authorization/*/read", "Microsoft.Insights/alertRules/*", "Microsoft.Network/*",
                    "Microsoft.ResourceHealth/availabilityStatuses/read", "Microsoft.Resources/deployments/*",
                    "Microsoft.Resources/subscriptions/resourceGroups/read", "Microsoft.Support/*"],
        "notActions": [],
    },
    "Virtual Machine Contributor": {
        "actions": ["Microsoft.Authorization/*/read", "Microsoft.Compute/availabilitySets/*",
                    "Microsoft.Compute/locations/*", "Microsoft.Compute/virtualMachines/*",
                    "Microsoft.Compute/virtualMachineScaleSets/*", "Microsoft.Compute/disks/read",
                    "Microsoft.Insights/alertRules/*", "Microsoft.Network/networkInterfaces/*",
                    "Microsoft.Network/networkSecurityGroups/join/action",
                    "Microsoft.Network/networkSecurityGroups/read",
                    "Microsoft.Network/publicIPAddresses/join/action", "Microsoft.Network/publicIPAddresses/read",
                    "Microsoft.Network/virtualNetworks/read", "Microsoft.Network/virtualNetworks/subnets/join/action",
                    "Microsoft.Resources/deployments/*", "Microsoft.Resources/subscriptions/resourceGroups/read",
                    "Microsoft.Storage/storageAccounts/listKeys/action", "Microsoft.Storage/storageAccounts/read",
                    "Microsoft.Support/*"],
        "notActions": [],
    },
    "Microsoft Sentinel Reader": {
        "actions": ["Microsoft.SecurityInsights/*/read", "Microsoft.OperationalInsights/workspaces/query/read",
                    "Microsoft.Resources/subscriptions/resourceGroups/read"],
        "notActions": [],
    },
    "Microsoft Sentinel Responder": {
        "actions": ["Microsoft.SecurityInsights/*/read", "Microsoft.SecurityInsights/incidents/*",
                    "Microsoft.SecurityInsights/automationRules/*",
                    "Microsoft.OperationalInsights/workspaces/query/read",
                    "Microsoft.Resources/subscriptions/resourceGroups/read"],
        "notActions": ["Microsoft.SecurityInsights/incidents/delete", "Microsoft.SecurityInsights/automationRules/*"],
    },
    "Log Analytics Reader": {
        "actions": ["*/read", "Microsoft.OperationalInsights/workspaces/analytics/query/action",
                    "Microsoft.OperationalInsights/workspaces/search/action", "Microsoft.Support/*"],
        "notActions": ["Microsoft.OperationalInsights/workspaces/sharedKeys/read"],
    },
    "Storage Account Contributor": {
        "actions": ["Microsoft.Authorization/*/read", "Microsoft.Insights/alertRules/*",
                    "Microsoft.Network/virtualNetworks/subnets/joinViaServiceEndpoint/action",
                    "Microsoft.Resources/deployments/*", "Microsoft.Resources/subscriptions/resourceGroups/read",
                    "Microsoft.Storage/storageAccounts/*", "Microsoft.Support/*"],
        "notActions": [],
    },
}  # fmt: skip


def role_definitions(identity: dict[str, Any]) -> dict[str, dict[str, list[str]]]:
    """The built-in roles, and the tenant's custom roles (riposteIdentity.roleDefinitions: roleName, actions,
    notActions), by name."""
    custom = {
        str(role.get("roleName")): {
            "actions": [str(a) for a in role.get("actions") or []],
            "notActions": [str(a) for a in role.get("notActions") or []],
        }
        for role in identity.get("roleDefinitions") or []
    }
    return {**BUILT_IN_ROLES, **custom}


def permissions_at(cloud: Cloud, subscription: str, group: str, resource: str = "") -> list[dict[str, Any]]:
    """The permissions of every role assigned at the group (or at `resource` in it, "namespace/type/name"), or
    above it."""
    scope = f"/subscriptions/{subscription}/resourceGroups/{group}".lower()
    if resource:
        scope += f"/providers/{resource}".lower()
    identity = (cloud.doc.get("tenant") or {}).get("riposteIdentity") or {}
    roles = role_definitions(identity)
    found = []
    for assignment in identity.get("roleAssignments") or []:
        assigned = str(assignment.get("scope", "")).lower().rstrip("/")
        if scope == assigned or scope.startswith(assigned + "/"):
            role = roles.get(str(assignment.get("roleDefinitionName")))
            if role is not None:
                found.append({**role, "dataActions": [], "notDataActions": []})
    return found


RESOURCE_PERMISSIONS = (
    "/subscriptions/{subscription}/resourceGroups/{group}/providers/{namespace}%s{type}/{name}"
    "/providers/Microsoft.Authorization/permissions"
)


class AuthorizationProvider(ArmProvider):
    @route("GET", "/subscriptions/{subscription}/resourceGroups/{group}/providers/Microsoft.Authorization/permissions")
    async def list_for_resource_group(self, request: Request, subscription: str, group: str) -> Response:
        self.require_scope(subscription, group)
        return JSONResponse({"value": permissions_at(self.cloud, subscription, group)})

    # Permissions - List For Resource; the SDK leaves an empty parent resource path as "//".
    @route("GET", RESOURCE_PERMISSIONS % "/")
    @route("GET", RESOURCE_PERMISSIONS % "//")
    async def list_for_resource(
        self, request: Request, subscription: str, group: str, namespace: str, type: str, name: str
    ) -> Response:
        self.require_scope(subscription, group)
        resource = f"{namespace}/{type}/{name}"
        return JSONResponse({"value": permissions_at(self.cloud, subscription, group, resource)})
