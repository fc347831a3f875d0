"""The relays deliver to the route the app serves, with the key, following the 202; the automations run them; azd
deploys the app the templates describe."""

from __future__ import annotations

import ast
import re

import yaml

from tests.infra import bicep

RELAY = bicep.read("modules/relay.bicep")
MAIN = bicep.read("main.bicep")


def http_routes() -> dict[str, set[str]]:
    """function_app.py's routes and their methods, read from the decorators."""
    routes: dict[str, set[str]] = {}
    tree = ast.parse((bicep.ROOT / "function_app.py").read_text())
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "route":
            kwargs = {k.arg: k.value for k in node.keywords if k.arg in ("route", "methods")}
            routes[ast.literal_eval(kwargs["route"])] = set(ast.literal_eval(kwargs["methods"]))
    return routes


def test_the_relay_posts_the_trigger_body_to_the_incidents_route() -> None:
    routes = http_routes()
    assert "POST" in routes["incidents"]
    assert "GET" in routes["runs/{id}"]  # what the relay polls
    post = bicep.declaration(RELAY, r"Post_incident:")
    assert "method: 'POST'" in post
    assert "uri: '@{parameters(\\'riposteUrl\\')}/api/incidents'" in post
    assert "body: '@triggerBody()'" in post


def test_the_relay_follows_the_202_with_the_key_on_every_request() -> None:
    headers = bicep.declaration(RELAY, r"var keyHeader\s*=")
    assert "'x-functions-key': '@{parameters(\\'functionKey\\')}'" in headers
    post = bicep.declaration(RELAY, r"Post_incident:")
    get = bicep.declaration(RELAY, r"Get_run:")
    for action in (post, get):
        assert "headers: keyHeader" in action
        assert "operationOptions: 'DisableAsyncPattern'" in action
        assert re.search(r"secureData:\s*\{\s*properties:\s*\[\s*'inputs'", action), "the key would show in run history"
    loop = bicep.declaration(RELAY, r"Follow_run:")
    assert "type: 'Until'" in loop
    assert "expression: '@not(equals(variables(\\'runStatus\\'), 202))'" in loop
    assert "uri: '@variables(\\'statusUrl\\')'" in get
    assert re.search(r"count:\s*'@variables\(\\'retryAfterSeconds\\'\)'", loop), "the wait honours Retry-After"
    # The key is a secure workflow parameter filled from the host's keys, never a literal.
    assert re.search(r"functionKey:\s*\{\s*type:\s*'SecureString'", RELAY)
    assert "host.listKeys().functionKeys.default" in RELAY


def test_the_relay_triggers_are_the_sentinel_incident_and_defender_alert_connectors() -> None:
    sources = bicep.declaration(RELAY, r"var sources\s*=")
    assert re.search(r"api:\s*'azuresentinel'[\s\S]*path:\s*'/incident-creation'", sources)
    assert re.search(r"api:\s*'ascalert'[\s\S]*path:\s*'/Microsoft\.Security/Alert/subscribe'", sources)
    assert "type: 'ApiConnectionWebhook'" in RELAY
    # The Sentinel connector signs in as the Logic App's managed identity: no stored credential.
    assert re.search(r"authentication:\s*\{\s*type:\s*'ManagedServiceIdentity'", RELAY)


def test_an_automation_rule_runs_the_sentinel_relay_on_new_incidents() -> None:
    rule = bicep.read("modules/sentinel-automation.bicep")
    assert "'Microsoft.SecurityInsights/automationRules@" in rule
    assert "triggersOn: 'Incidents'" in rule
    assert "triggersWhen: 'Created'" in rule
    assert "actionType: 'RunPlaybook'" in rule
    call = bicep.modules(MAIN, "modules/sentinel-automation.bicep")["sentinelAutomation"]
    assert "relayLogicAppId: sentinelRelay.outputs.id" in call
    assert "relayRoles" in call  # depends on Sentinel being allowed to run the playbook


def test_defender_workflow_automation_runs_the_defender_relay_on_new_alerts() -> None:
    automation = bicep.read("modules/defender-automation.bicep")
    assert "'Microsoft.Security/automations@" in automation
    assert "eventSource: 'Alerts'" in automation
    assert "actionType: 'LogicApp'" in automation
    assert "listCallbackUrl(" in automation
    call = bicep.modules(MAIN, "modules/defender-automation.bicep")["defenderAutomation"]
    assert "relayLogicAppName: defenderRelay.outputs.name" in call


def test_azd_deploys_this_directory_to_the_function_app_the_templates_tag() -> None:
    config = yaml.safe_load((bicep.ROOT / "azure.yaml").read_text())
    assert config["infra"] == {"provider": "bicep", "path": "infra", "module": "main"}
    (name, service) = next(iter(config["services"].items()))
    assert service == {"project": ".", "language": "python", "host": "function"}
    assert f"'azd-service-name': '{name}'" in bicep.read("modules/functionapp.bicep")
    outputs = set(re.findall(r"^output (\w+)", MAIN, re.MULTILINE))
    hooks = yaml.safe_dump(config["hooks"])
    for variable in set(re.findall(r"\$(?:env:)?(RIPOSTE_\w+)", hooks)) - {"RIPOSTE_SENTINEL_WORKSPACE_ID"}:
        assert variable in outputs, f"azure.yaml's hooks read {variable}, which main.bicep does not output"


def test_the_package_leaves_out_what_azure_does_not_run() -> None:
    ignored = set((bicep.ROOT / ".funcignore").read_text().split())
    assert {"infra/", "docs/", "tests/", "local/", "tools/", "riposte_cli/"} <= ignored


def test_the_entity_relay_is_the_same_relay_on_the_sentinel_entity_trigger() -> None:
    sources = bicep.declaration(RELAY, r"var sources\s*=")
    entity = bicep.declaration(sources, r"sentinelEntity:")
    assert "triggerName: 'Microsoft_Sentinel_entity'" in entity
    assert "api: 'azuresentinel'" in entity
    assert "path: '/entity/@{encodeURIComponent(\\'${entityType}\\')}'" in entity
    # the same Post_incident and Follow_run: the entity trigger body goes to /api/incidents unchanged
    relays = bicep.declaration(MAIN, r"module sentinelEntityRelays 'modules/relay.bicep' =")
    assert "source: 'sentinelEntity'" in relays and "entityType: kind" in relays
    assert "for kind in (deploySentinelRelay ? sentinelEntityRelayKinds : [])" in relays
