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
}
PUBLISHED_ROLE_IDS = {
    "Microsoft Sentinel Responder": "3e150937-b8fe-4cfb-8069-0eaf05ecd056",
    "Microsoft Sentinel Reader": "8d289c81-5878-46d4-8554-54e1e3d8b5cb",
    "Microsoft Sentinel Automation Contributor": "f4c81013-99ee-4d62-a7ee-b3f1f648599a",
    "Log Analytics Reader": "73c42c96-874c-492b-b04d-ab87d138a893",
    "Reader": "acdd72a7-3385-48ef-bd42-f606fba81ae7",
    "Network Contributor": "4d97b98b-1d4f-4787-a291-c67834d212e7",
    "Virtual Machine Contributor": "9980e02c-c2be-4d73-94e8-173b1dc7cf3c",
    "Storage Account Contributor": "17d1049b-9a84-46fb-8f53-869881c3d3ab",
    "Storage Blob Data Owner": "b7e6dc6d-f1e8-4753-8033-0f276bb0955b",
    "Storage Queue Data Contributor": "974c5e8b-45b9-4653-ba55-5f855dd0fb88",
    "Storage Table Data Contributor": "0a9a7e1f-b9d0-4cc4-a60d-0319b160aaa3",
    "Monitoring Metrics Publisher": "3913510d-42f4-4e42-8a64-420c390055eb",
}

MAIN = bicep.read("main.bicep")
RBAC_CALLS = bicep.modules(MAIN, "modules/rbac.bicep")


def role_ids_in(call: str) -> list[str]:
    return re.findall(rf"'({bicep.GUID})'", bicep.declaration(call, r".*roleDefinitionIds:"))


def test_the_rbac_module_calls_are_found() -> None:
    assert {"sentinelRoles", "targetRoles", "networkWatcherRoles", "captureRoles", "storageRoles"} <= set(RBAC_CALLS)


@pytest.mark.parametrize("need", [n for n in gen.needs() if n.kind == "azure_role"], ids=lambda n: n.name)
def test_every_azure_role_an_action_declares_is_assigned_where_it_acts(need: gen.Need) -> None:
    role = gen.azure_role(need.name)
    assert role.id == PUBLISHED_ROLE_IDS[need.name]
    call = SCOPE_CALLS[role.scope]
    assert role.id in role_ids_in(RBAC_CALLS[call]), f"{need.name} ({role.id}) is not assigned by {call}"
    if need.name in gen.NETWORK_WATCHER_ROLES:
        assert role.id in role_ids_in(RBAC_CALLS["networkWatcherRoles"])


SCOPE_CALLS = {key: call for key, (call, _) in gen.SCOPES.items()}


@pytest.mark.parametrize("platform", gen.PLATFORM_ROLES, ids=lambda p: p.name)
def test_platform_roles_are_assigned(platform: gen.PlatformRole) -> None:
    assert platform.id == PUBLISHED_ROLE_IDS[platform.name]
    assert platform.id in role_ids_in(RBAC_CALLS[SCOPE_CALLS[platform.scope]])


def test_each_role_id_in_main_is_labelled_with_its_own_name() -> None:
    # `'<id>' // <name>`: a wrong id under a right-looking name would grant something else.
    labelled = re.findall(rf"'({bicep.GUID})'\s*//\s*(.+)", MAIN)
    assert len(labelled) >= 14
    for role_id, name in labelled:
        assert PUBLISHED_ROLE_IDS.get(name.strip()) == role_id, f"{role_id} is labelled {name!r}"


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
    monkeypatch.setattr(gen, "ROOT", tmp_path)
    assert gen.main(["--check"]) == 1
    assert gen.main([]) == 0
    assert gen.main(["--check"]) == 0


def test_the_permissions_table_lists_every_action_and_every_role_with_its_id() -> None:
    from shared.actions.registry import catalogue

    doc = gen.PERMISSIONS_DOC.read_text()
    for name in catalogue():
        assert f"| `{name}` |" in doc
    for role_id in PUBLISHED_ROLE_IDS.values():
        assert f"`{role_id}`" in doc


# --- the grant script, run for real against a stand-in Azure CLI ---------------------------------------------------

FAKE_AZ = textwrap.dedent(
    """\
    #!{python}
    # A stand-in for the Azure CLI: service principal look-ups and Graph app role assignments, kept in a JSON file.
    import json, os, sys
    state_path = os.environ["FAKE_AZ_STATE"]
    state = json.load(open(state_path))
    args = sys.argv[1:]
    def arg(name):
        return args[args.index(name) + 1]
    state["calls"].append(args)
    if args[:3] == ["ad", "sp", "show"]:
        ids = {{"00000003-0000-0000-c000-000000000000": "graph-sp", "98785600-1bb7-4fb9-b9fa-19afe2c8a360": "si-sp"}}
        print(ids[arg("--id")])
    elif args[:1] == ["rest"] and arg("--method") == "GET":
        assert "/servicePrincipals/" + state["principal"] + "/appRoleAssignments" in arg("--url")
        print("\\n".join(state["held"]))
    elif args[:1] == ["rest"] and arg("--method") == "POST":
        assert arg("--url").endswith("/servicePrincipals/graph-sp/appRoleAssignedTo")
        body = json.loads(arg("--body"))
        assert body["principalId"] == state["principal"] and body["resourceId"] == "graph-sp"
        state["held"].append(body["appRoleId"])
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
    state.write_text(json.dumps({"principal": PRINCIPAL, "held": [], "calls": []}))
    env = {**os.environ, "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}", "FAKE_AZ_STATE": str(state)}
    return env, state


def run_script(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["bash", str(SCRIPT), *args], env=env, capture_output=True, text=True, timeout=60)


def test_the_grant_script_grants_every_permission_once(fake_az: tuple[dict[str, str], Path]) -> None:
    env, state = fake_az
    expected = {g["appRoleId"] for g in json.loads(gen.GRAPH_GRANTS.read_text())["grants"]}

    check = run_script(env, "--check", PRINCIPAL)
    assert check.returncode == 1
    assert check.stdout.count("MISSING") == len(expected)
    assert json.loads(state.read_text())["held"] == []

    first = run_script(env, PRINCIPAL)
    assert first.returncode == 0, first.stderr
    assert set(json.loads(state.read_text())["held"]) == expected
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
