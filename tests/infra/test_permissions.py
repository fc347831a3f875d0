"""Every Azure role and Microsoft Graph permission an action declares is granted by infra/, at the scope it belongs
to, by the right id; the generated permissions table and grant list are current; the grant script grants them."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import textwrap
import uuid
from pathlib import Path

import pytest

from tests.infra import bicep
from tools import gen_permissions as gen

# Independent copies of the ids, as published, to catch a typo in tools/gen_permissions.py:
# Graph: learn.microsoft.com/graph/permissions-reference (application permission ids);
# Azure: learn.microsoft.com/azure/role-based-access-control/built-in-roles.
PUBLISHED_GRAPH_APP_ROLE_IDS = {
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
PUBLISHED_ROLE_IDS = {
    "Microsoft Sentinel Responder": "3e150937-b8fe-4cfb-8069-0eaf05ecd056",
    "Microsoft Sentinel Reader": "8d289c81-5878-46d4-8554-54e1e3d8b5cb",
    "Microsoft Sentinel Automation Contributor": "f4c81013-99ee-4d62-a7ee-b3f1f648599a",
    "Log Analytics Reader": "73c42c96-874c-492b-b04d-ab87d138a893",
    "Security Reader": "39bc4728-0917-49c7-9d2c-d95423bc2eb4",
    "Storage Blob Data Owner": "b7e6dc6d-f1e8-4753-8033-0f276bb0955b",
    "Storage Queue Data Contributor": "974c5e8b-45b9-4653-ba55-5f855dd0fb88",
    "Storage Table Data Contributor": "0a9a7e1f-b9d0-4cc4-a60d-0319b160aaa3",
    "Monitoring Metrics Publisher": "3913510d-42f4-4e42-8a64-420c390055eb",
}

# Built-in roles Riposte's identity must never hold: each can do far more than any action needs.
TOO_BROAD = {
    "Virtual Machine Contributor": "9980e02c-c2be-4d73-94e8-173b1dc7cf3c",  # Run Command: code on every VM
    "Storage Account Contributor": "17d1049b-9a84-46fb-8f53-869881c3d3ab",  # lists the account keys
    "Network Contributor": "4d97b98b-1d4f-4787-a291-c67834d212e7",  # every network resource of the group
    "Contributor": "b24988ac-6180-42a0-ab88-20f7382dd24c",
    "Owner": "8e3af657-a8ff-443c-a75c-2fe8c4bcb635",
}

MAIN = bicep.read("main.bicep")
ROLES = bicep.read("modules/roles.bicep")
RBAC_CALLS = bicep.modules(MAIN, "modules/rbac.bicep")


def role_ids_in(call: str) -> list[str]:
    """The built-in role ids (GUID literals) and custom role outputs (roles.outputs.NAME) a call assigns."""
    listed = bicep.declaration(call, r".*roleDefinitionIds:")
    return re.findall(rf"'({bicep.GUID})'", listed) + re.findall(r"roles\.outputs\.(\w+)", listed)


def role_key(role: gen.AzureRole) -> str:
    return role.output if role.custom else role.id


def custom_role_actions() -> dict[str, list[str]]:
    """Each custom role of infra/modules/roles.bicep by its output name, with the actions it grants."""
    found: dict[str, list[str]] = {}
    for output, resource in re.findall(r"^output (\w+) string = (\w+)\.name$", ROLES, re.M):
        body = bicep.strip_comments(bicep.declaration(ROLES, rf"resource {resource} "))
        actions_var = re.search(r"actions:\s*(\w+)", body)
        assert actions_var is not None, f"{resource} lists no actions variable"
        assert re.search(r"notActions:\s*\[\]", body) and "dataActions" not in body
        listed = bicep.declaration(ROLES, rf"var {actions_var.group(1)} =")
        found[output] = re.findall(r"'([^']+)'", bicep.strip_comments(listed))
    return found


def test_the_rbac_module_calls_are_found() -> None:
    assert {"sentinelRoles", "targetRoles", "networkWatcherRoles", "captureRoles", "storageRoles"} <= set(RBAC_CALLS)


@pytest.mark.parametrize("need", [n for n in gen.needs() if n.kind == "azure_role"], ids=lambda n: n.name)
def test_every_azure_role_an_action_declares_is_assigned_where_it_acts(need: gen.Need) -> None:
    role = gen.azure_role(need.name)
    if not role.custom:
        assert role.id == PUBLISHED_ROLE_IDS[need.name]
    call = SCOPE_CALLS[role.scope]
    assert role_key(role) in role_ids_in(RBAC_CALLS[call]), f"{need.name} ({role_key(role)}) is not assigned by {call}"
    if need.name in gen.NETWORK_WATCHER_ROLES:
        assert role_key(role) in role_ids_in(RBAC_CALLS["networkWatcherRoles"])


@pytest.mark.parametrize("need", [n for n in gen.needs() if n.kind == "azure_role"], ids=lambda n: n.name)
def test_each_custom_role_grants_exactly_the_operations_its_actions_declare(need: gen.Need) -> None:
    role = gen.azure_role(need.name)
    if not role.custom:
        pytest.skip("a built-in role")
    granted = custom_role_actions()[role.output]
    assert len(granted) == len(set(granted)), "an action is listed twice"
    # case as Microsoft writes it; RBAC compares without case, so the test does too
    assert {a.lower() for a in granted} == {op.lower() for op in need.operations}
    assert not [a for a in granted if "*" in a], "a custom role lists operations, never wildcards"
    assert re.search(rf"roleName: '{re.escape(need.name)} \(\$\{{environmentName\}}\)'", ROLES)


def test_no_run_command_no_storage_keys_and_no_broad_built_in_role() -> None:
    every = [a.lower() for actions in custom_role_actions().values() for a in actions]
    assert every, "no custom role found: the scan is broken"
    forbidden = ("runcommand", "listkeys", "listservicesas", "listaccountsas", "regeneratekey")
    assert not [a for a in every if any(word in a for word in forbidden)]
    for name, role_id in TOO_BROAD.items():
        assert role_id not in MAIN, f"main.bicep assigns {name}"


def test_custom_roles_are_assignable_only_where_they_are_assigned() -> None:
    assert re.search(r"^targetScope = 'subscription'$", ROLES, re.M)
    call = bicep.modules(MAIN, "modules/roles.bicep")["roles"]
    assert "assignableScopes: empty(customRoleScopes) ? [rg.id] : customRoleScopes" in call
    scopes = re.search(r"^var customRoleScopes = union\((.+)\)$", MAIN, re.M)
    assert scopes is not None and scopes.group(1).split(", ") == [
        "targetGroupIds",
        "watcherGroupIds",
        "captureGroupIds",
    ]
    assert "subscription().id]" not in MAIN.replace(" ", "")  # never the whole subscription


SCOPE_CALLS = {key: call for key, (call, _) in gen.SCOPES.items()}


@pytest.mark.parametrize("platform", gen.PLATFORM_ROLES, ids=lambda p: p.name)
def test_platform_roles_are_assigned(platform: gen.PlatformRole) -> None:
    assert platform.id == PUBLISHED_ROLE_IDS[platform.name]
    assert platform.id in role_ids_in(RBAC_CALLS[SCOPE_CALLS[platform.scope]])


def test_each_role_id_in_main_is_labelled_with_its_own_name() -> None:
    # `'<id>' // <name>`: a wrong id under a right-looking name would grant something else.
    labelled = re.findall(rf"'({bicep.GUID})'\s*//\s*(.+)", MAIN)
    assert len(labelled) >= 8
    for role_id, name in labelled:
        assert PUBLISHED_ROLE_IDS.get(name.strip()) == role_id, f"{role_id} is labelled {name!r}"
    for output, name in re.findall(r"roles\.outputs\.(\w+)\s*//\s*(.+)", MAIN):
        assert gen.AZURE_ROLES[name.strip()].output == output, f"{output} is labelled {name!r}"


def test_roles_are_assigned_at_resource_groups_or_resources_only() -> None:
    for name, call in RBAC_CALLS.items():
        assert re.search(r"scope:\s*(rg|resourceGroup\()", call), f"{name} is not scoped to a resource group"
    rbac = bicep.read("modules/rbac.bicep")
    assert "targetScope" not in rbac  # a module defaults to resource group scope
    assert "subscription()" not in bicep.strip_comments(rbac).replace("subscriptionResourceId(", "")
    for path in bicep.INFRA.rglob("*.bicep"):
        if path.name != "rbac.bicep":
            assert "Microsoft.Authorization/roleAssignments" not in path.read_text(), f"{path.name} assigns a role"


def test_the_identity_that_acts_is_the_one_that_gets_the_roles() -> None:
    for name, call in RBAC_CALLS.items():
        expected = "securityInsightsPrincipalId" if name == "relayRoles" else "identity.outputs.principalId"
        assert re.search(rf"principalId:\s*{re.escape(expected)}\b", call), name


# --- Microsoft Graph ---------------------------------------------------------------------------------------------


def test_every_graph_permission_an_action_declares_is_in_the_grant_list_with_its_published_id() -> None:
    grants = {g["permission"]: g["appRoleId"] for g in json.loads(gen.GRAPH_GRANTS.read_text())["grants"]}
    declared = {n.name for n in gen.needs() if n.kind == "graph"}
    assert declared, "the registry declares no Graph permission: the scan is broken"
    assert set(grants) == declared
    for permission, app_role_id in grants.items():
        assert app_role_id == PUBLISHED_GRAPH_APP_ROLE_IDS[permission], permission


def test_the_graph_module_grants_the_whole_list_to_riposte_on_microsoft_graph() -> None:
    graph = bicep.read("modules/graph.bicep")
    assert re.search(r"^extension microsoftGraphV1$", graph, re.MULTILINE)
    assert "loadJsonContent('../graph-permissions.json')" in graph
    grant = bicep.declaration(graph, r"resource grants 'Microsoft\.Graph/appRoleAssignedTo@v1\.0'")
    assert re.search(r"for grant in graphGrants\.grants", grant)
    for line in ("principalId: principalId", "resourceId: graph.id", "appRoleId: grant.appRoleId"):
        assert line in grant
    assert re.search(r"appId:\s*graphGrants\.resourceAppId", graph)
    assert json.loads(gen.GRAPH_GRANTS.read_text())["resourceAppId"] == "00000003-0000-0000-c000-000000000000"
    call = bicep.modules(MAIN, "modules/graph.bicep")["graph"]
    assert "principalId: identity.outputs.principalId" in call
    extension = json.loads((bicep.INFRA / "bicepconfig.json").read_text())["extensions"]["microsoftGraphV1"]
    assert extension.startswith("br:mcr.microsoft.com/bicep/extensions/microsoftgraph/v1.0:")


def test_the_api_app_registration_declares_the_roles_the_code_checks() -> None:
    from shared.api.auth import Role

    graph = bicep.read("modules/graph.bicep")
    declared = set(re.findall(r"value:\s*'(Riposte\.\w+)'", graph))
    assert declared == {role.value for role in Role}


def test_generated_files_are_current() -> None:
    for path, text in gen.generated().items():
        assert path.read_text() == text, f"{path.name} is out of date: run python -m tools.gen_permissions"


def test_the_generator_refuses_a_permission_without_an_id(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delitem(gen.GRAPH_APP_ROLE_IDS, "User.RevokeSessions.All")
    with pytest.raises(gen.MissingId, match=r"User\.RevokeSessions\.All"):
        gen.generated()
    assert gen.main(["--check"]) == 2


def test_check_mode_reports_a_stale_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    stale = tmp_path / "permissions.md"
    stale.write_text("old\n")
    monkeypatch.setattr(gen, "PERMISSIONS_DOC", stale)
    monkeypatch.setattr(gen, "GRAPH_GRANTS", tmp_path / "graph-permissions.json")
    monkeypatch.setattr(gen, "MDE_GRANTS", tmp_path / "mde-permissions.json")
    monkeypatch.setattr(gen, "ROOT", tmp_path)
    assert gen.main(["--check"]) == 1
    assert gen.main([]) == 0
    assert gen.main(["--check"]) == 0


def test_the_permissions_table_lists_every_action_and_every_role_with_its_id() -> None:
    from shared.actions.registry import catalogue

    doc = gen.PERMISSIONS_DOC.read_text()
    for name in catalogue():
        assert f"| `{name}` |" in doc
    for name, role_id in PUBLISHED_ROLE_IDS.items():
        if name in {r for r, role in gen.AZURE_ROLES.items() if not role.custom} or name in {
            p.name for p in gen.PLATFORM_ROLES
        }:
            assert f"`{role_id}`" in doc
    for name, role in gen.AZURE_ROLES.items():
        if role.custom:
            assert f"| {name} | custom: `infra/modules/roles.bicep` |" in doc


# --- the grant script, run for real against a stand-in Azure CLI ---------------------------------------------------

FAKE_AZ = textwrap.dedent(
    """\
    #!{python}
    # A stand-in for the Azure CLI: service principal look-ups and app role assignments, kept in a JSON file.
    import json, os, sys, uuid
    state_path = os.environ["FAKE_AZ_STATE"]
    state = json.load(open(state_path))
    args = sys.argv[1:]
    def arg(name):
        return args[args.index(name) + 1]
    state["calls"].append(args)
    sps = {{"00000003-0000-0000-c000-000000000000": "graph-sp", "98785600-1bb7-4fb9-b9fa-19afe2c8a360": "si-sp"}}
    if state["mde"]:
        sps["fc780465-2017-40d4-a0c5-307022471b92"] = "mde-sp"
    if args[:3] == ["ad", "sp", "show"]:
        if arg("--id") not in sps:
            sys.exit("ERROR: Service principal not found")
        if arg("--query").startswith("appRoles"):
            for value in state["mdeRoles"]:
                print(str(uuid.uuid5(uuid.NAMESPACE_URL, value)) + "\t" + value)
        else:
            print(sps[arg("--id")])
    elif args[:1] == ["rest"] and arg("--method") == "GET":
        assert "/servicePrincipals/" + state["principal"] + "/appRoleAssignments" in arg("--url")
        resource = arg("--query").split("'")[1]
        print("\\n".join(role for sp, role in state["held"] if sp == resource))
    elif args[:1] == ["rest"] and arg("--method") == "POST":
        body = json.loads(arg("--body"))
        assert arg("--url").endswith("/servicePrincipals/" + body["resourceId"] + "/appRoleAssignedTo")
        assert body["principalId"] == state["principal"] and body["resourceId"] in ("graph-sp", "mde-sp")
        state["held"].append([body["resourceId"], body["appRoleId"]])
    else:
        sys.exit("unexpected az call: " + " ".join(args))
    json.dump(state, open(state_path, "w"))
    """
)
SCRIPT = bicep.INFRA / "scripts" / "grant-graph-permissions.sh"
PRINCIPAL = "11111111-2222-3333-4444-555555555555"


@pytest.fixture
def fake_az(tmp_path: Path) -> tuple[dict[str, str], Path]:
    if shutil.which("bash") is None or shutil.which("jq") is None:
        pytest.skip("the grant script needs bash and jq")
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    az = bin_dir / "az"
    az.write_text(FAKE_AZ.format(python=sys.executable))
    az.chmod(0o755)
    state = tmp_path / "state.json"
    mde_roles = [g["permission"] for g in json.loads(gen.MDE_GRANTS.read_text())["grants"]]
    state.write_text(
        json.dumps(
            {"principal": PRINCIPAL, "held": [], "calls": [], "mde": True, "mdeRoles": [*mde_roles, "Other.All"]}
        )
    )
    env = {**os.environ, "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}", "FAKE_AZ_STATE": str(state)}
    return env, state


def run_script(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["bash", str(SCRIPT), *args], env=env, capture_output=True, text=True, timeout=60)


def test_the_grant_script_grants_every_permission_once(fake_az: tuple[dict[str, str], Path]) -> None:
    env, state = fake_az
    expected = {("graph-sp", g["appRoleId"]) for g in json.loads(gen.GRAPH_GRANTS.read_text())["grants"]}
    mde = [g["permission"] for g in json.loads(gen.MDE_GRANTS.read_text())["grants"]]
    assert mde, "no Defender for Endpoint permission declared: the scan is broken"
    expected |= {("mde-sp", str(uuid.uuid5(uuid.NAMESPACE_URL, p))) for p in mde}  # looked up by value

    check = run_script(env, "--check", PRINCIPAL)
    assert check.returncode == 1
    assert check.stdout.count("MISSING") == len(expected)
    assert json.loads(state.read_text())["held"] == []

    first = run_script(env, PRINCIPAL)
    assert first.returncode == 0, first.stderr
    assert {tuple(h) for h in json.loads(state.read_text())["held"]} == expected
    assert "azureSecurityInsightsPrincipalId): si-sp" in first.stdout

    again = run_script(env, PRINCIPAL)
    assert again.returncode == 0
    assert "granted" not in again.stdout
    assert len(json.loads(state.read_text())["held"]) == len(expected)
    assert run_script(env, "--check", PRINCIPAL).returncode == 0


def test_the_grant_script_refuses_a_principal_that_is_not_an_object_id(fake_az: tuple[dict[str, str], Path]) -> None:
    env, state = fake_az
    result = run_script(env, "riposte-identity")
    assert result.returncode == 2
    assert "PRINCIPAL_OBJECT_ID" in result.stdout
    assert json.loads(state.read_text())["calls"] == []


def test_the_demo_tenant_holds_the_custom_roles_as_the_bicep_defines_them() -> None:
    """The emulated cloud answers dry runs from the demo tenant: its custom roles must be the deployed ones."""
    import yaml

    identity = yaml.safe_load((bicep.ROOT / "local/cloud/tenants/demo.yaml").read_text())["tenant"]["riposteIdentity"]
    defined = {d["roleName"]: d["actions"] for d in identity["roleDefinitions"]}
    for name, role in gen.AZURE_ROLES.items():
        if role.custom:
            assert defined[f"{name} (demo)"] == custom_role_actions()[role.output], name
    assigned = {a["roleDefinitionName"] for a in identity["roleAssignments"]}
    assert not assigned & set(TOO_BROAD), "the demo identity holds a broad built-in role"


def test_the_grant_script_skips_defender_for_endpoint_in_a_tenant_without_it(
    fake_az: tuple[dict[str, str], Path],
) -> None:
    env, state = fake_az
    state.write_text(json.dumps({**json.loads(state.read_text()), "mde": False}))
    result = run_script(env, PRINCIPAL)
    assert result.returncode == 0, result.stderr
    assert "not in this tenant" in result.stdout
    assert {sp for sp, _ in json.loads(state.read_text())["held"]} == {"graph-sp"}


# --- Microsoft Defender for Endpoint -------------------------------------------------------------------------------


def test_every_defender_permission_an_action_declares_is_granted_by_value_when_asked() -> None:
    grants = json.loads(gen.MDE_GRANTS.read_text())
    assert grants["resourceAppId"] == "fc780465-2017-40d4-a0c5-307022471b92"  # WindowsDefenderATP
    assert {g["permission"] for g in grants["grants"]} == {n.name for n in gen.needs() if n.kind == "mde"}
    graph = bicep.read("modules/graph.bicep")
    assert "loadJsonContent('../mde-permissions.json')" in graph
    grant = bicep.declaration(graph, r"resource mdeRoleGrants 'Microsoft\.Graph/appRoleAssignedTo@v1\.0'")
    assert "for grant in mdeGrants.grants: if (grantDefenderForEndpoint)" in grant
    assert "resourceId: mde.id" in grant and "principalId: principalId" in grant
    assert "role.value == grant.permission" in grant and "contains(role.allowedMemberTypes, 'Application')" in grant
    call = bicep.modules(MAIN, "modules/graph.bicep")["graph"]
    assert "grantDefenderForEndpoint: grantDefenderForEndpoint" in call
    assert re.search(r"^param grantDefenderForEndpoint bool = false$", MAIN, re.M)


def test_the_demo_identity_holds_every_defender_permission_the_actions_declare() -> None:
    import yaml

    identity = yaml.safe_load((bicep.ROOT / "local/cloud/tenants/demo.yaml").read_text())["tenant"]["riposteIdentity"]
    assert set(identity["mdePermissions"]) == {n.name for n in gen.needs() if n.kind == "mde"}
