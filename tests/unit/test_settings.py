"""Settings: every RIPOSTE_* variable is read and validated at start, and a bad value of any type is reported by the
variable's name, with the value (unless it is a secret). local.settings.json.example documents every setting.

The fields of each type are found from Settings itself, so a setting added later is covered by the same checks."""

from __future__ import annotations

import json
import socket
import types
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Literal, Union, get_args, get_origin

import annotated_types
import azure.functions as func
import pytest

from local.stack import riposte_environment
from shared.api import context, health
from shared.settings import (
    PLATFORM_SETTINGS,
    SECRET_SETTINGS,
    Settings,
    SettingsError,
    env_name,
    get_settings,
    local_settings_example,
)

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "local.settings.json.example"
SUBSCRIPTION = "/subscriptions/8c2b5f0e-3d4a-4b6c-9a1e-7f2d3c4b5a60"
VM_ID = f"{SUBSCRIPTION}/resourceGroups/rg/providers/Microsoft.Compute/virtualMachines/vm"


def _bare(annotation: Any) -> Any:
    """int for int, int for int | None."""
    if get_origin(annotation) in (Union, types.UnionType):
        kept = [a for a in get_args(annotation) if a is not type(None)]
        return kept[0] if len(kept) == 1 else annotation
    return annotation


def fields_of(kind: Any) -> list[str]:
    return [name for name, info in Settings.model_fields.items() if _bare(info.annotation) is kind]


def choice_fields() -> list[str]:
    """Settings whose value, or each of whose list items, is one of a fixed set of words (Literal)."""
    found = []
    for name, info in Settings.model_fields.items():
        annotation = _bare(info.annotation)
        inner = get_args(annotation)[0] if get_origin(annotation) is tuple else annotation
        if get_origin(inner) is Literal:
            found.append(name)
    return found


def bounded_fields() -> list[tuple[str, str]]:
    """(field, a value just outside its bounds) for every numeric setting with a bound."""
    cases = []
    for name, info in Settings.model_fields.items():
        for bound in info.metadata:
            if isinstance(bound, annotated_types.Gt):
                cases.append((name, str(bound.gt)))
            elif isinstance(bound, annotated_types.Ge):
                cases.append((name, str(bound.ge - 1)))  # type: ignore[operator]
            elif isinstance(bound, annotated_types.Le):
                cases.append((name, str(bound.le + 1)))  # type: ignore[operator]
            elif isinstance(bound, annotated_types.Lt):
                cases.append((name, str(bound.lt)))
    return cases


def patterned_fields() -> list[str]:
    """Settings whose text must match a regular expression."""
    return [n for n, info in Settings.model_fields.items() if any(getattr(m, "pattern", None) for m in info.metadata)]


def rejected(name: str, value: str) -> SettingsError:
    with pytest.raises(SettingsError) as caught:
        Settings.from_env({env_name(name): value})
    return caught.value


def assert_names(error: SettingsError, name: str, value: str) -> None:
    variable = env_name(name)
    assert error.variable == variable
    assert str(error).startswith(f"{variable}: ")
    if name in SECRET_SETTINGS:
        assert value not in str(error) and "secret" in str(error)
    else:
        assert repr(value) in str(error)


# --------------------------------------------------------------------------------------------------- bad values

BAD = {int: "twelve", float: "fast", bool: "maybe"}


@pytest.mark.parametrize(("name", "kind"), [(n, k) for k in BAD for n in fields_of(k)])
def test_a_value_of_the_wrong_type_is_named(name: str, kind: type) -> None:
    assert_names(rejected(name, BAD[kind]), name, BAD[kind])


@pytest.mark.parametrize(("name", "value"), bounded_fields())
def test_a_number_out_of_bounds_is_named(name: str, value: str) -> None:
    error = rejected(name, value)
    assert_names(error, name, value)
    assert "greater than" in str(error) or "less than" in str(error)


@pytest.mark.parametrize("name", choice_fields())
def test_a_word_that_is_not_one_of_the_choices_is_named(name: str) -> None:
    error = rejected(name, "not-a-choice")
    assert_names(error, name, "not-a-choice")
    assert "Input should be" in str(error)


FORMATS = [
    ("graph_endpoint", "graph.microsoft.com", "absolute URL"),
    ("arm_endpoint", "ftp://management.azure.com", "absolute URL"),
    ("loganalytics_endpoint", "https://", "absolute URL"),
    ("mde_endpoint", "api.security.microsoft.com", "absolute URL"),
    ("notify_webhook_url", "hooks.example.com/workflows/1?sig=s3cr3t", "absolute URL"),
    ("managed_identity_client_id", "riposte-identity", "not a GUID"),
    ("subscription_id", "contoso-prod", "not a GUID"),
    ("workspace_id", "law-sentinel", "not a GUID"),
    ("protected_groups", "5e0a7c3d-2b1f-4a6e-9c8d-7f6e5d4c3b01, Break Glass", "'Break Glass' is not a GUID"),
    ("protected_users", "adele.vance@contoso.com,breakglass", "'breakglass' is neither an object id"),
    ("protected_resource_prefixes", "rg-prod-web", "not an ARM id prefix"),
    ("protected_resource_tags", "riposte-protected", "not key=value"),
    ("protected_resource_tags", "=true", "not key=value"),
    ("isolation_allowed_prefixes", "10.30.1.0/24,10.0.0.300/24", "'10.0.0.300/24' is not an address prefix"),
    ("protected_ip_ranges", "20.61.15.0/24,egress", "'egress' is not an address prefix"),
    ("blocked_ips_named_location_id", "Riposte blocked IPs", "not a GUID"),
    ("block_ip_nsgs", "nsg-perimeter", "not the ARM id of a network security group"),
    ("capture_storage_account_id", VM_ID, "not the ARM id of a storage account"),
    ("ca_bundle", "/nonexistent/cloud-ca.pem", "no such file"),
    ("playbooks_dir", "/nonexistent/playbooks", "no such directory"),
]


@pytest.mark.parametrize(("name", "value", "problem"), FORMATS)
def test_a_value_of_the_wrong_form_is_named_with_the_problem(name: str, value: str, problem: str) -> None:
    error = rejected(name, value)
    assert_names(error, name, value)
    assert problem in str(error)


def test_every_kind_of_setting_has_a_bad_value_case() -> None:
    """Each setting is covered by a type, bound, choice or form check above (or takes any text by design)."""
    any_text = {"auth_audience", "auth_issuers"}  # audiences and issuers are compared as given
    covered = {n for k in BAD for n in fields_of(k)} | set(choice_fields()) | {n for n, _ in bounded_fields()}
    covered |= {name for name, _, _ in FORMATS} | set(patterned_fields())
    assert set(Settings.model_fields) - covered - any_text == set()


@pytest.mark.parametrize("name", patterned_fields())
def test_a_value_not_matching_its_pattern_is_named(name: str) -> None:
    assert_names(rejected(name, "http://not matching"), name, "http://not matching")


def test_a_check_across_settings_names_both() -> None:
    env = {"RIPOSTE_CAPTURE_DEFAULT_SECONDS": "900", "RIPOSTE_CAPTURE_MAX_SECONDS": "600"}
    with pytest.raises(SettingsError) as caught:
        Settings.from_env(env)
    assert caught.value.variable == "RIPOSTE_CAPTURE_DEFAULT_SECONDS"
    assert "RIPOSTE_CAPTURE_MAX_SECONDS (600)" in str(caught.value)


# --------------------------------------------------------------------------------------------------- good values


def test_blank_means_the_default_and_lists_are_comma_separated() -> None:
    settings = Settings.from_env(
        {
            "RIPOSTE_MAX_ENTITIES": "  ",
            "RIPOSTE_PROTECTED_USERS": " adele.vance@contoso.com , ,1c9f2b8e-4a3d-4e6f-8b1c-2d3e4f5a6b05 ",
            "RIPOSTE_IDENTITY_PROTECTION_RPS": "0.8",
            "RIPOSTE_ISOLATION_ALLOWED_PREFIXES": "10.30.1.0/24, 2001:db8::/48",
        }
    )
    assert settings.max_entities == Settings().max_entities
    assert settings.protected_users == ("adele.vance@contoso.com", "1c9f2b8e-4a3d-4e6f-8b1c-2d3e4f5a6b05")
    assert settings.identity_protection_rps == 0.8
    assert settings.isolation_allowed_prefixes == ("10.30.1.0/24", "2001:db8::/48")
    assert Settings.from_env({}) == Settings()


def test_the_local_stack_environment_is_valid(tmp_path: Path) -> None:
    ca = tmp_path / "ca.pem"
    ca.write_text("-----BEGIN CERTIFICATE-----\n")
    settings = Settings.from_env(riposte_environment("https://127.0.0.1:7443", str(ca), "UseDevelopmentStorage=true"))
    assert settings.graph_endpoint == "https://127.0.0.1:7443" and settings.ca_bundle == str(ca)
    assert settings.block_ip_nsgs and settings.capture_storage_account_id


# --------------------------------------------------------------------------------------------------- at start


@pytest.fixture
def bad_environment(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("RIPOSTE_MAX_ENTITIES", "-5")
    # Routes configure telemetry on first use; here that would restyle pytest's own log handlers.
    monkeypatch.setattr("shared.telemetry.configure", lambda env=None: None)
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


def request(route: str, method: str = "GET") -> func.HttpRequest:
    return func.HttpRequest(method=method, url=f"http://localhost/api/{route}", headers={}, params={}, body=b"")


def test_health_reports_the_bad_setting(bad_environment: None) -> None:
    response = health.get_health(request("health"))
    assert response.status_code == 503
    body = json.loads(response.get_body())
    assert body["status"] == "unhealthy" and body["problems"][0].startswith("RIPOSTE_MAX_ENTITIES: ")


async def test_routes_answer_503_naming_the_setting_instead_of_failing(bad_environment: None) -> None:
    called: list[str] = []

    @context.configured
    async def route(req: func.HttpRequest) -> func.HttpResponse:
        called.append("async")
        return func.HttpResponse("ok")

    @context.configured
    def sync_route(req: func.HttpRequest) -> func.HttpResponse:
        called.append("sync")
        return func.HttpResponse("ok")

    for response in (await route(request("runs")), sync_route(request("playbooks"))):
        assert response.status_code == 503 and response.mimetype == "application/json"
        error = json.loads(response.get_body())["error"]
        assert error == {
            "code": "InvalidSetting",
            "message": "Riposte is not configured correctly: RIPOSTE_MAX_ENTITIES: Input should be greater than 0 "
            "(got '-5').",
            "target": "RIPOSTE_MAX_ENTITIES",
        }
    assert called == []  # the handler never ran with bad settings


async def test_routes_run_when_the_settings_are_good(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("shared.telemetry.configure", lambda env=None: None)
    get_settings.cache_clear()

    @context.configured
    async def route(req: func.HttpRequest) -> func.HttpResponse:
        return func.HttpResponse("ok")

    assert (await route(request("runs"))).status_code == 200
    get_settings.cache_clear()


# --------------------------------------------------------------------------------------------------- the example


def test_local_settings_example_is_generated_from_the_settings() -> None:
    assert EXAMPLE.read_text() == local_settings_example(), (
        "local.settings.json.example is out of date: python -m shared.settings > local.settings.json.example"
    )


def test_local_settings_example_documents_every_setting_and_is_valid() -> None:
    document = json.loads(EXAMPLE.read_text())
    values, descriptions = document["Values"], document["Descriptions"]
    expected = set(PLATFORM_SETTINGS) | {env_name(name) for name in Settings.model_fields}
    assert set(values) == expected == set(descriptions)
    assert all(isinstance(v, str) for v in values.values())  # Core Tools takes strings only
    assert all(len(descriptions[name]) > 10 for name in expected)
    riposte = {name: value for name, value in values.items() if name.startswith("RIPOSTE_")}
    assert Settings.from_env(riposte) == Settings()  # the example's values are the defaults, and valid


# ------------------------------------------------------------------------------------------- storage unavailable


async def test_a_route_whose_storage_does_not_answer_gets_503_with_retry_after(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The real table client against a port nobody listens on: the SDK's connection error, translated by our adapter,
    reaches the route as a 503 the caller may retry, not the host's 500."""
    from shared.azure.storage import StorageConnection, TableStore

    monkeypatch.setattr("shared.telemetry.configure", lambda env=None: None)
    get_settings.cache_clear()
    with socket.socket() as probe:  # a port that was free a moment ago: connections to it are refused
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    connection = StorageConnection(
        "DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;"
        "AccountKey=Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==;"
        f"TableEndpoint=http://127.0.0.1:{port}/devstoreaccount1;",
        None,
        None,
    )
    store = TableStore(connection, "RiposteRuns")

    @context.configured
    async def route(req: func.HttpRequest) -> func.HttpResponse:
        await store.get("run", "state")
        return func.HttpResponse("unreachable")

    response = await route(request("runs/x"))
    await store._client.close()
    assert response.status_code == 503 and response.headers["Retry-After"] == "5"
    assert json.loads(response.get_body())["error"]["code"] == "StorageUnavailable"
    get_settings.cache_clear()


async def test_an_error_of_another_service_is_not_taken_for_storage(monkeypatch: pytest.MonkeyPatch) -> None:
    from shared.azure.errors import AzureError

    monkeypatch.setattr("shared.telemetry.configure", lambda env=None: None)
    get_settings.cache_clear()

    @context.configured
    def route(req: func.HttpRequest) -> func.HttpResponse:
        raise AzureError("graph", 500, "InternalServerError", "boom")

    with pytest.raises(AzureError):
        route(request("playbooks"))
    get_settings.cache_clear()
