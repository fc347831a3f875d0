"""Writes docs/permissions.md, infra/graph-permissions.json and infra/mde-permissions.json from the action registry.

    python -m tools.gen_permissions          # rewrite both files
    python -m tools.gen_permissions --check  # exit 1 when either is out of date (tests/infra checks the same)

Every action declares the Microsoft Graph application permissions and Azure roles it needs
(shared/actions/registry.py). This module maps those names to the ids Azure deploys by: Graph app role ids from
Microsoft's Graph permissions reference, built-in role definition ids from the Azure built-in roles reference. An id
missing here stops the generator with a message saying where to add it, so a new permission cannot ship ungranted."""

from __future__ import annotations

import argparse
import json
import sys
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PERMISSIONS_DOC = ROOT / "docs" / "permissions.md"
GRAPH_GRANTS = ROOT / "infra" / "graph-permissions.json"
MDE_GRANTS = ROOT / "infra" / "mde-permissions.json"

# Microsoft Graph's application id: the same in every tenant.
GRAPH_APP_ID = "00000003-0000-0000-c000-000000000000"
# The WindowsDefenderATP application (Microsoft Defender for Endpoint's API): the same in every tenant that has it.
# Its app role ids are not published, so infra/modules/graph.bicep and the grant script look each role up by its value
# on the tenant's WindowsDefenderATP service principal.
MDE_APP_ID = "fc780465-2017-40d4-a0c5-307022471b92"

# Application permissions (app roles on the Microsoft Graph service principal), from learn.microsoft.com/graph/
# permissions-reference. The ids are the same in every tenant.
GRAPH_APP_ROLE_IDS: dict[str, str] = {
    "User.Read.All": "df021288-bdef-4463-88db-98f22de89214",
    "User.EnableDisableAccount.All": "3011c876-62b7-4ada-afa2-506cbbecc68c",
    "User.RevokeSessions.All": "77f3a031-c388-4f99-b373-dc68676a979e",
    "GroupMember.Read.All": "98830695-27a2-44f7-8c18-0c3ebc9698f6",
    "RoleManagement.Read.Directory": "483bed4a-2ad3-4361-a73b-c83ccdbdc53c",
    "IdentityRiskyUser.Read.All": "dc5007c0-2d7d-4c42-879c-2dab87571379",
    "IdentityRiskyUser.ReadWrite.All": "656f6061-f9fe-4807-9708-6a2e0934df76",
    "IdentityRiskEvent.Read.All": "6e472fd1-ad78-48da-a0f0-97ab2c6b769e",
    "AuditLog.Read.All": "b0afded3-3588-46d8-8b3d-9842eff778da",
    "Directory.Read.All": "7ab1d382-f21e-4acd-a863-ba3e13f7da61",
    "IdentityRiskyServicePrincipal.Read.All": "607c7344-0eed-41e5-823a-9695ebe1b7b0",
    "User-PasswordProfile.ReadWrite.All": "cc117bb9-00cf-4eb8-b580-ea2a878fe8f7",
    "GroupMember.ReadWrite.All": "dbaae8cf-10b5-4b86-a4a1-f871c94c6695",
    "Application.Read.All": "9a5d68dd-52b0-4cc2-bd40-abcf44ac3a30",
    "Application.ReadWrite.All": "1bfefb4e-e0b5-418b-a88f-73c46d2cc8e9",
    "IdentityRiskyServicePrincipal.ReadWrite.All": "cb8d6980-6bcb-4507-afec-ed6de3a2d798",
    "Policy.Read.All": "246dd0d5-5bd0-4def-940b-0421030a5b68",
    "Policy.ReadWrite.ConditionalAccess": "01c0a623-fc9b-48e9-b794-0756f8e8f067",
}


@dataclass(frozen=True)
class AzureRole:
    id: str  # the built-in role definition id, the same in every tenant; "" for Riposte's custom roles
    scope: str  # the scope key infra/main.bicep assigns it at (see SCOPES)
    output: str = ""  # a custom role: the output of infra/modules/roles.bicep that holds its definition id

    @property
    def custom(self) -> bool:
        return not self.id


# Built-in roles, from learn.microsoft.com/azure/role-based-access-control/built-in-roles, and Riposte's custom
# roles (shared/actions/roles.py), defined in infra/modules/roles.bicep with exactly the operations the actions
# declare under their names.
AZURE_ROLES: dict[str, AzureRole] = {
    "Microsoft Sentinel Responder": AzureRole("3e150937-b8fe-4cfb-8069-0eaf05ecd056", "workspace"),
    "Microsoft Sentinel Reader": AzureRole("8d289c81-5878-46d4-8554-54e1e3d8b5cb", "workspace"),
    "Log Analytics Reader": AzureRole("73c42c96-874c-492b-b04d-ab87d138a893", "workspace"),
    "Security Reader": AzureRole("39bc4728-0917-49c7-9d2c-d95423bc2eb4", "targets"),
    "Riposte VM Responder": AzureRole("", "targets", "vmResponderRoleId"),
    "Riposte Network Responder": AzureRole("", "targets", "networkResponderRoleId"),
    "Riposte Capture Storage": AzureRole("", "capture", "captureStorageRoleId"),
    "Riposte Defender Responder": AzureRole("", "targets", "defenderResponderRoleId"),
    "Riposte Storage Responder": AzureRole("", "targets", "storageResponderRoleId"),
}

# Where each scope key is, and which rbac module call in infra/main.bicep assigns its roles.
SCOPES: dict[str, tuple[str, str]] = {
    "workspace": ("sentinelRoles", "the resource group of the Sentinel workspace (`sentinelWorkspaceResourceId`)"),
    "targets": ("targetRoles", "each resource group in `targetResourceGroups` (the VMs, NICs and NSGs)"),
    "network_watcher": ("networkWatcherRoles", "the Network Watcher resource group (`networkWatcherResourceGroup`)"),
    "capture": ("captureRoles", "the packet capture storage account (`captureStorageAccountId`) only"),
    "riposte": ("platformRoles", "Riposte's own resource group"),
    "riposte_storage": ("storageRoles", "Riposte's own storage account only"),
    "relay": ("relayRoles", "Riposte's own resource group, where the relay Logic App is"),
}

# Packet captures live on the region's Network Watcher, which Azure keeps in its own resource group: the capture
# actions need their roles there as well as on the VM's resource group.
NETWORK_WATCHER_ROLES = ("Riposte Network Responder",)


@dataclass(frozen=True)
class PlatformRole:
    name: str
    id: str
    scope: str
    principal: str
    why: str


# Roles the platform needs rather than an action: identity-based storage, telemetry, and Sentinel running the relay.
PLATFORM_ROLES: tuple[PlatformRole, ...] = (
    PlatformRole(
        "Storage Blob Data Owner",
        "b7e6dc6d-f1e8-4753-8033-0f276bb0955b",
        "riposte_storage",
        "Riposte's managed identity",
        "the Functions host (keys, leases) and the Flex Consumption deployment package",
    ),
    PlatformRole(
        "Storage Queue Data Contributor",
        "974c5e8b-45b9-4653-ba55-5f855dd0fb88",
        "riposte_storage",
        "Riposte's managed identity",
        "the work queue and its poison queue",
    ),
    PlatformRole(
        "Storage Table Data Contributor",
        "0a9a7e1f-b9d0-4cc4-a60d-0319b160aaa3",
        "riposte_storage",
        "Riposte's managed identity",
        "runs, ledger, dedup keys and the destructive-action budget",
    ),
    PlatformRole(
        "Monitoring Metrics Publisher",
        "3913510d-42f4-4e42-8a64-420c390055eb",
        "riposte",
        "Riposte's managed identity",
        "telemetry to Application Insights, which accepts Entra ID authentication only",
    ),
    PlatformRole(
        "Microsoft Sentinel Automation Contributor",
        "f4c81013-99ee-4d62-a7ee-b3f1f648599a",
        "relay",
        "the Azure Security Insights service principal (Microsoft Sentinel)",
        "lets the automation rule run the relay Logic App",
    ),
)


API_LABELS = {"graph": "Graph", "mde": "Defender for Endpoint", "azure_role": "Azure"}


class MissingId(KeyError):
    pass


@dataclass(frozen=True)
class Need:
    kind: str  # graph | mde | azure_role
    name: str
    actions: tuple[str, ...]
    operations: tuple[str, ...]


def needs() -> list[Need]:
    """Every Graph permission and Azure role some action declares (or the approver group check needs), with what
    declares it."""
    from shared import approvers
    from shared.actions.registry import catalogue

    actions: dict[tuple[str, str], set[str]] = defaultdict(set)
    operations: dict[tuple[str, str], set[str]] = defaultdict(set)
    users = [(name, registered.spec.permissions) for name, registered in catalogue().items()]
    users.append((approvers.USED_BY, approvers.GRAPH_PERMISSIONS))  # not an action: the approver group check
    for name, permissions in users:
        for permission in permissions:
            key = (permission.kind, permission.name)
            actions[key].add(name)
            if permission.operation:
                operations[key].add(permission.operation)
    return [
        Need(kind, name, tuple(sorted(actions[(kind, name)])), tuple(sorted(operations[(kind, name)])))
        for kind, name in sorted(actions)
    ]


def graph_app_role_id(name: str) -> str:
    try:
        return GRAPH_APP_ROLE_IDS[name]
    except KeyError:
        raise MissingId(
            f"no app role id for the Graph permission {name!r}: add it to GRAPH_APP_ROLE_IDS in "
            "tools/gen_permissions.py from Microsoft's Graph permissions reference"
        ) from None


def azure_role(name: str) -> AzureRole:
    try:
        return AZURE_ROLES[name]
    except KeyError:
        raise MissingId(
            f"no role definition for the Azure role {name!r}: add it to AZURE_ROLES in tools/gen_permissions.py "
            "(a built-in role's id from Azure's built-in roles reference, or a custom role defined in "
            "infra/modules/roles.bicep) and assign it in infra/main.bicep"
        ) from None


def graph_grants(all_needs: Iterable[Need]) -> str:
    """infra/graph-permissions.json: what infra/modules/graph.bicep and infra/scripts/grant-graph-permissions.sh
    grant Riposte's managed identity on Microsoft Graph."""
    grants = [
        {"permission": need.name, "appRoleId": graph_app_role_id(need.name), "usedBy": list(need.actions)}
        for need in all_needs
        if need.kind == "graph"
    ]
    document = {
        "_generated": "by python -m tools.gen_permissions from the action registry; do not edit",
        "resourceAppId": GRAPH_APP_ID,
        "grants": grants,
    }
    return json.dumps(document, indent=2) + "\n"


def mde_grants(all_needs: Iterable[Need]) -> str:
    """infra/mde-permissions.json: the WindowsDefenderATP application permissions infra grants by value."""
    grants = [{"permission": need.name, "usedBy": list(need.actions)} for need in all_needs if need.kind == "mde"]
    document = {
        "_generated": "by python -m tools.gen_permissions from the action registry; do not edit",
        "resourceAppId": MDE_APP_ID,
        "grants": grants,
    }
    return json.dumps(document, indent=2) + "\n"


def approvers_used_by() -> str:
    from shared.approvers import USED_BY

    return USED_BY


def _cell(items: Iterable[str]) -> str:
    return "<br>".join(f"`{item}`" for item in items)


def _mde_section(all_needs: list[Need]) -> list[str]:
    lines = [
        "## Microsoft Defender for Endpoint application permissions",
        "",
        f"Application permissions of the WindowsDefenderATP application (`{MDE_APP_ID}`), granted by",
        "`infra/modules/graph.bicep` when `grantDefenderForEndpoint` is true (the tenant must have Defender for",
        "Endpoint) or by `infra/scripts/grant-graph-permissions.sh`. Both look each app role up by its value on the",
        "tenant's WindowsDefenderATP service principal. The list is `infra/mde-permissions.json`.",
        "",
        "| permission | used by |",
        "| --- | --- |",
    ]
    lines += [f"| `{n.name}` | {_cell(n.actions)} |" for n in all_needs if n.kind == "mde"]
    return [*lines, ""]


def _per_action_section() -> list[str]:
    from shared.actions.registry import catalogue

    lines = [
        "",
        "## Per action",
        "",
        "| action | kind | reversible | destructive | needs |",
        "| --- | --- | --- | --- | --- |",
    ]
    for name, registered in catalogue().items():
        spec = registered.spec
        held = sorted({f"{API_LABELS[p.kind]}: {p.name}" for p in spec.permissions})
        needs_cell = "<br>".join(held) if held else "nothing (an outgoing webhook)"
        lines.append(
            f"| `{name}` | {spec.kind} | {'yes' if spec.reversible else 'no'} | "
            f"{'yes' if spec.destructive else 'no'} | {needs_cell} |"
        )
    return lines


def permissions_markdown(all_needs: list[Need]) -> str:

    lines = [
        "# Permissions",
        "",
        "<!-- Generated by `python -m tools.gen_permissions` from the action registry; do not edit by hand. "
        "`make test` fails when this file is out of date. -->",
        "",
        "Riposte acts through one user-assigned managed identity. This is everything it is granted, why, and where.",
        "`infra/main.bicep` assigns the Azure roles; the Microsoft Graph permissions are granted by",
        "`infra/modules/graph.bicep` or, when the deploying account cannot grant them, by an administrator running",
        "`infra/scripts/grant-graph-permissions.sh` (see [deploying](deploying.md)). A dry run reports, for each",
        "action, whether the identity holds what it needs.",
        "",
        "## Microsoft Graph application permissions",
        "",
        "| permission | app role id | used by |",
        "| --- | --- | --- |",
    ]
    for need in all_needs:
        if need.kind == "graph":
            lines.append(f"| `{need.name}` | `{graph_app_role_id(need.name)}` | {_cell(need.actions)} |")
    lines += [
        "",
        "Microsoft Graph lets an application change `accountEnabled` on a user who holds a privileged",
        "administrator role only if the application also holds a higher privileged Entra role; Riposte is not given",
        "one. It reads the target's roles first (`RoleManagement.Read.Directory`) so the guardrails and approval rules",
        "see them: keep privileged accounts in `RIPOSTE_PROTECTED_USERS` or `RIPOSTE_PROTECTED_GROUPS`.",
        f"`{approvers_used_by()}` is not an action: when a playbook names approver groups, Riposte reads each",
        "approver's transitive group memberships (`/users/{id}/transitiveMemberOf`) before accepting a decision.",
        "`IdentityRiskyUser.*` needs Microsoft Entra ID P2; `IdentityRiskEvent.Read.All` needs P1 or P2.",
        "",
        *_mde_section(all_needs),
        "## Azure roles for the actions",
        "",
        "Every role is assigned at a resource group (or a single resource), never at the subscription. The roles",
        "named `Riposte ...` are custom roles (`infra/modules/roles.bicep`, one set per environment, named",
        "`<role> (<environmentName>)`) that grant exactly the operations listed, and nothing else: Virtual Machine",
        "Contributor would include Run Command (running code on every VM of the group), and Storage Account",
        "Contributor can list the account keys. A dry run checks each operation where the action would act, not",
        "the role's name, so an equivalent role of your own works too.",
        "",
        "| role | role definition id | assigned at | used by | operations (a custom role grants exactly these) |",
        "| --- | --- | --- | --- | --- |",
    ]
    for need in all_needs:
        if need.kind != "azure_role":
            continue
        role = azure_role(need.name)
        where = SCOPES[role.scope][1]
        if need.name in NETWORK_WATCHER_ROLES:
            where += "; " + SCOPES["network_watcher"][1]
        role_id = "custom: `infra/modules/roles.bicep`" if role.custom else f"`{role.id}`"
        lines.append(f"| {need.name} | {role_id} | {where} | {_cell(need.actions)} | {_cell(need.operations)} |")
    lines += [
        "",
        "## Azure roles for the platform",
        "",
        "| role | role definition id | holder | assigned at | why |",
        "| --- | --- | --- | --- | --- |",
    ]
    for platform in PLATFORM_ROLES:
        where = SCOPES[platform.scope][1]
        lines.append(f"| {platform.name} | `{platform.id}` | {platform.principal} | {where} | {platform.why} |")
    lines += _per_action_section()
    return "\n".join(lines) + "\n"


def generated() -> dict[Path, str]:
    all_needs = needs()
    return {
        PERMISSIONS_DOC: permissions_markdown(all_needs),
        GRAPH_GRANTS: graph_grants(all_needs),
        MDE_GRANTS: mde_grants(all_needs),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="exit 1 if a generated file is out of date")
    args = parser.parse_args(argv)
    try:
        files = generated()
    except MissingId as error:
        print(error.args[0], file=sys.stderr)
        return 2
    stale = [path for path, text in files.items() if not path.exists() or path.read_text() != text]
    if args.check:
        for path in stale:
            print(f"{path.relative_to(ROOT)} is out of date: run python -m tools.gen_permissions", file=sys.stderr)
        return 1 if stale else 0
    for path, text in files.items():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        print(f"wrote {path.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
