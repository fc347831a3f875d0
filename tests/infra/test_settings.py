"""Every setting the app reads is set by the Function App's app settings in infra/, or is listed here as left to its
default with the reason. A new setting in shared/settings.py (or a new os.environ read in shared/) fails this test
until infra sets it or this file says why it does not."""

from __future__ import annotations

import ast
import re

import pytest

from shared.settings import Settings, env_name
from tests.infra import bicep

ROOT = bicep.ROOT

# Environment names by convention: Riposte's own, the Functions host's storage, Application Insights, azure-identity.
_ENV_NAME = re.compile(r"^(RIPOSTE_[A-Z0-9_]+|AzureWebJobsStorage(__\w+)?|APPLICATIONINSIGHTS_[A-Z_]+|AZURE_[A-Z_]+)$")

LEFT_TO_DEFAULT: dict[str, str] = {
    # intake limits
    "RIPOSTE_MAX_BODY_BYTES": "intake limit; the default is Event Grid's 1 MiB event size",
    "RIPOSTE_MAX_ENTITIES": "intake limit with a safe default; set it as an app setting to change it",
    "RIPOSTE_MAX_JSON_DEPTH": "intake limit with a safe default; set it as an app setting to change it",
    "RIPOSTE_MAX_EVENTS_PER_DELIVERY": "intake limit; the default is Event Grid's largest batch",
    # endpoints
    "RIPOSTE_GRAPH_ENDPOINT": "the public cloud's Microsoft Graph by default; set it for a sovereign cloud",
    "RIPOSTE_ARM_ENDPOINT": "the public cloud's Resource Manager by default; set it for a sovereign cloud",
    "RIPOSTE_LOGANALYTICS_ENDPOINT": "the public cloud's Log Analytics API by default; set it for a sovereign cloud",
    "RIPOSTE_MDE_ENDPOINT": "the public cloud's Defender for Endpoint API by default; set it for a sovereign cloud",
    "RIPOSTE_CA_BUNDLE": "the local stack only: it trusts the emulated cloud's certificate",
    # responders and limiters
    "RIPOSTE_CAPTURE_DEFAULT_SECONDS": "packet capture tuning with Microsoft's recommended 5 minutes as default",
    "RIPOSTE_CAPTURE_MAX_SECONDS": "packet capture tuning with a safe default",
    "RIPOSTE_CAPTURE_MAX_BYTES": "packet capture tuning with a safe default",
    "RIPOSTE_IDENTITY_PROTECTION_RPS": "the default is Microsoft's documented Identity Protection limit",
    "RIPOSTE_LOGANALYTICS_CONCURRENCY": "the default is Microsoft's documented Log Analytics limit",
    "RIPOSTE_MDE_CALLS_PER_MINUTE": "the default keeps within Microsoft's documented Defender for Endpoint limit",
    "RIPOSTE_SENTINEL_WRITES_PER_5MIN": "the default is Microsoft's documented Sentinel write limit",
    "RIPOSTE_SENTINEL_WRITE_WINDOW_SECONDS": "the window of Sentinel's documented write limit",
    "RIPOSTE_MAX_RETRIES": "retry tuning with a safe default",
    "RIPOSTE_RETRY_BACKOFF_SECONDS": "retry tuning with a safe default",
    "RIPOSTE_LRO_POLL_SECONDS": "long-running operation polling with a safe default",
    "RIPOSTE_ENRICHMENT_TIMEOUT_SECONDS": "enrichment time limit with a safe default",
    "RIPOSTE_RUN_LEASE_SECONDS": "engine tuning with a safe default",
    "RIPOSTE_REPLAY_SETTLE_SECONDS": "engine tuning with a safe default",
    "RIPOSTE_PLAYBOOKS_DIR": "the bundled playbooks ship inside the app package",
    # token validation: derived from RIPOSTE_AUTH_TENANT_ID, or Entra ID's own behaviour
    "RIPOSTE_AUTH_ISSUERS": "derived from RIPOSTE_AUTH_TENANT_ID (the tenant's v1 and v2 issuers)",
    "RIPOSTE_AUTH_METADATA_URL": "derived from RIPOSTE_AUTH_TENANT_ID (the tenant's OpenID Connect metadata)",
    "RIPOSTE_AUTH_ALGORITHMS": "Entra ID signs with RS256, the default",
    "RIPOSTE_AUTH_CLOCK_SKEW_SECONDS": "token validation tuning with a safe default",
    "RIPOSTE_AUTH_KEYS_MAX_AGE_SECONDS": "signing key cache tuning with a safe default",
    "RIPOSTE_AUTH_KEYS_MIN_REFRESH_SECONDS": "signing key cache tuning with a safe default",
    "RIPOSTE_APPROVER_GROUP_CACHE_SECONDS": "approver group cache tuning with a safe default (one minute)",
    "RIPOSTE_PROTECTED_WATCHLIST": "optional guardrail; set it as an app setting once the watchlist exists",
    # storage
    "AzureWebJobsStorage": "a connection string is the local stack's (Azurite); infra uses identity-based storage",
    "AzureWebJobsStorage__tableServiceUri": "derived from AzureWebJobsStorage__accountName",
    "AzureWebJobsStorage__queueServiceUri": "derived from AzureWebJobsStorage__accountName",
}

# Read by something other than the deployed app, in function_app.py or shared/. (The CLI's RIPOSTE_URL,
# RIPOSTE_FUNCTION_KEY and RIPOSTE_TOKEN are read in riposte_cli/, which is not deployed and so not scanned.)
NOT_APP_SETTINGS: dict[str, str] = {}

# Optional settings the code may add later with a known reason (telemetry, in particular) are not listed ahead of
# time: the test names any that appear.


def _receiver_is_environ(node: ast.expr) -> bool:
    return "environ" in ast.unparse(node)


def env_names_in(source: str) -> set[str]:
    """Environment variable names a module reads: literal names passed to os.environ / getenv, plus string constants
    shaped like Riposte, Functions storage, Application Insights or azure-identity settings."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and _ENV_NAME.match(node.value):
            names.add(node.value)
        elif isinstance(node, ast.Call) and node.args and isinstance(node.args[0], ast.Constant):
            func = node.func
            reads_env = (isinstance(func, ast.Attribute) and func.attr == "getenv") or (
                isinstance(func, ast.Attribute) and func.attr in ("get", "pop") and _receiver_is_environ(func.value)
            )
            if reads_env and isinstance(node.args[0].value, str):
                names.add(node.args[0].value)
        elif (
            isinstance(node, ast.Subscript)
            and _receiver_is_environ(node.value)
            and isinstance(node.slice, ast.Constant)
            and isinstance(node.slice.value, str)
        ):
            names.add(node.slice.value)
    return names


def read_by_code() -> set[str]:
    names = {env_name(field) for field in Settings.model_fields}
    for path in [ROOT / "function_app.py", *sorted((ROOT / "shared").rglob("*.py"))]:
        names |= env_names_in(path.read_text())
    names.discard("RIPOSTE_")  # the prefix env_name() puts in front
    return names


def set_by_infra() -> set[str]:
    main = bicep.read("main.bicep")
    app = bicep.read("modules/functionapp.bicep")
    assert re.search(r"properties:\s*union\(platformSettings,\s*riposteSettings\)", app), (
        "the appsettings resource must apply both platformSettings and riposteSettings"
    )
    riposte = bicep.top_level_keys(bicep.declaration(main, r"var riposteSettings\s*="))
    platform = bicep.top_level_keys(bicep.declaration(app, r"var platformSettings\s*="))
    return set(riposte) | set(platform)


def test_the_scanner_finds_environment_reads_in_each_form() -> None:
    source = (
        "import os\n"
        "a = os.environ.get('RIPOSTE_ONE')\n"
        "b = os.getenv('SOME_OTHER')\n"
        "c = os.environ['THIRD']\n"
        "source = os.environ\n"
        "d = source.get('AzureWebJobsStorage__accountName')\n"
        "e = {'x': 1}.get('not_an_env_read')\n"
    )
    assert env_names_in(source) == {"RIPOSTE_ONE", "SOME_OTHER", "THIRD", "AzureWebJobsStorage__accountName"}


def test_the_code_reads_the_settings_infra_must_know_about() -> None:
    # Guards the scan itself: an empty or broken scan would make the coverage test pass vacuously.
    names = read_by_code()
    assert {"RIPOSTE_SUBSCRIPTION_ID", "RIPOSTE_WORKSPACE_ID", "AzureWebJobsStorage__accountName"} <= names
    assert len([n for n in names if n.startswith("RIPOSTE_")]) >= 30


def test_every_setting_the_code_reads_is_set_by_infra_or_left_to_its_default_for_a_reason() -> None:
    missing = read_by_code() - set_by_infra() - set(LEFT_TO_DEFAULT) - set(NOT_APP_SETTINGS)
    assert not missing, (
        f"read by the code but neither set in infra/main.bicep (riposteSettings) or modules/functionapp.bicep "
        f"(platformSettings) nor listed in LEFT_TO_DEFAULT with a reason: {sorted(missing)}"
    )


def test_the_exception_lists_are_current_and_explained() -> None:
    read = read_by_code()
    exceptions = {**LEFT_TO_DEFAULT, **NOT_APP_SETTINGS}
    assert not set(exceptions) - read, f"listed but no longer read: {sorted(set(exceptions) - read)}"
    assert not set(exceptions) & set_by_infra(), "a setting cannot be both set by infra and left to its default"
    assert all(len(reason) > 10 for reason in exceptions.values())


def test_infra_sets_only_settings_the_code_reads() -> None:
    # A typo in a Bicep key (RIPOSTE_PROTECTED_USER) would leave the real setting at its default without a word.
    platform_only = {"AzureWebJobsStorage__credential", "AzureWebJobsStorage__clientId"}  # read by the Functions host
    telemetry = {"APPLICATIONINSIGHTS_CONNECTION_STRING", "APPLICATIONINSIGHTS_AUTHENTICATION_STRING"}
    identity = {"AZURE_CLIENT_ID"}  # read by azure-identity's DefaultAzureCredential
    unknown = set_by_infra() - read_by_code() - platform_only - telemetry - identity
    assert not unknown, f"set by infra but read by nothing: {sorted(unknown)}"


def _bicep_list_default(name: str) -> tuple[str, ...]:
    default = bicep.params(bicep.read("main.bicep"))[name]
    assert default is not None
    return tuple(re.findall(r"'([^']*)'", default))


@pytest.mark.parametrize(
    ("param", "field"),
    [
        ("protectedResourceTags", "protected_resource_tags"),
        ("destructiveActionsPerHour", "destructive_actions_per_hour"),
    ],
)
def test_infra_defaults_match_the_app_defaults(param: str, field: str) -> None:
    default = Settings.model_fields[field].default
    if isinstance(default, tuple):
        assert _bicep_list_default(param) == default
    else:
        assert bicep.params(bicep.read("main.bicep"))[param] == str(default)


def test_secrets_reach_the_app_through_secure_parameters() -> None:
    main = bicep.read("main.bicep")
    assert re.search(r"@secure\(\)\s*(@description\([^\n]*\)\s*)?param notifyWebhookUrl string", main)
    assert re.search(r"@secure\(\)\s*param riposteSettings object", bicep.read("modules/functionapp.bicep"))


def test_the_function_app_uses_identity_based_storage_only() -> None:
    app = bicep.read("modules/functionapp.bicep")
    settings = bicep.top_level_keys(bicep.declaration(app, r"var platformSettings\s*="))
    assert "AzureWebJobsStorage" not in settings
    assert re.search(r"AzureWebJobsStorage__credential:\s*'managedidentity'", app)
    assert re.search(r"allowSharedKeyAccess:\s*false", bicep.read("modules/storage.bicep"))
    assert re.search(r"type:\s*'UserAssigned'", app)
    assert re.search(r"name:\s*'python'\s*\n\s*version:\s*'3\.11'", app)
    assert re.search(r"tier:\s*'FlexConsumption'", app)


def test_storage_names_match_the_code() -> None:
    from shared.azure import storage

    text = bicep.read("modules/storage.bicep")
    tables = re.findall(r"'([^']+)'", bicep.declaration(text, r"var tableNames\s*="))
    queues = re.findall(r"'([^']+)'", bicep.declaration(text, r"var queueNames\s*="))
    assert sorted(tables) == sorted([storage.RUNS_TABLE, storage.DEDUP_TABLE, storage.BUDGET_TABLE])
    assert sorted(queues) == sorted([storage.WORK_QUEUE, storage.POISON_QUEUE])


def test_azd_parameters_are_parameters_of_main() -> None:
    import json

    declared = bicep.params(bicep.read("main.bicep"))
    given = json.loads((bicep.INFRA / "main.parameters.json").read_text())["parameters"]
    assert not set(given) - set(declared), f"main.parameters.json sets unknown parameters: {set(given) - set(declared)}"
    required = {name for name, default in declared.items() if default is None}
    assert required <= set(given), f"azd cannot fill required parameters: {required - set(given)}"


def test_the_deployment_guide_explains_every_parameter() -> None:
    guide = (ROOT / "docs" / "deploying.md").read_text()
    unexplained = [name for name in bicep.params(bicep.read("main.bicep")) if f"`{name}`" not in guide]
    assert not unexplained, f"docs/deploying.md does not mention: {unexplained}"


def test_bicep_reader_on_a_known_snippet() -> None:
    text = (
        "var settings = {\n"
        "  ONE: 'a{b'   // a comment with } and '\n"
        "  'two-key': union({ inner: 1 }, {})\n"
        "  three: [\n    'x'\n  ]\n"
        "}\n"
        "param p array = [\n  'x'\n]\n"
        "param q int = 3\n"
        "param r string\n"
    )
    assert bicep.top_level_keys(bicep.declaration(text, r"var settings\s*=")) == ["ONE", "two-key", "three"]
    assert bicep.params(text) == {"p": "[\n  'x'\n]", "q": "3", "r": None}
