"""shared/api/auth.py below the HTTP host: the route table against function_app, token validation against a
dedicated emulated Entra ID (its own server, so rotating keys here cannot disturb the session's host), the signing
key cache (bounded refresh, rotation, an unreachable identity provider), the App Service Authentication header and
the auth settings."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import azure.functions as func
import httpx
import pytest

from local.cloud.oidc import DEFAULT_API_CLIENT_ID
from local.cloud.server import CloudServer, free_port
from local.stack import DEMO_TENANT
from shared.api import auth
from shared.api.auth import AuthFailure, Principal, Role, SigningKeys
from shared.settings import PLATFORM_AUTH_FLAG as PLATFORM_FLAG
from shared.settings import Settings, SettingsError, get_settings

ROOT = Path(__file__).resolve().parents[3]


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class Entra:
    """A private emulated cloud: its admin API mints tokens and rotates keys; settings point Riposte at it."""

    def __init__(self, server: CloudServer) -> None:
        self.server = server
        self.admin = httpx.Client(base_url=f"{server.url}/_admin", verify=str(server.certs.ca_path), timeout=30)
        self.metadata_url = f"{server.url}/{DEMO_TENANT}/v2.0/.well-known/openid-configuration"

    def settings(self, **overrides: Any) -> Settings:
        values: dict[str, Any] = {
            "auth_tenant_id": DEMO_TENANT,
            "auth_audience": (DEFAULT_API_CLIENT_ID, f"api://{DEFAULT_API_CLIENT_ID}"),
            "auth_metadata_url": self.metadata_url,
            "ca_bundle": str(self.server.certs.ca_path),
        }
        return Settings(**(values | overrides))

    def keys(self, clock: Clock, *, min_refresh: float = 300, max_age: float = 43_200, url: str = "") -> SigningKeys:
        ca = str(self.server.certs.ca_path)
        return SigningKeys(
            url or self.metadata_url,
            lambda u: auth.fetch_json(u, ca),
            max_age=max_age,
            min_refresh=min_refresh,
            clock=clock,
        )

    def mint(self, **spec: Any) -> dict[str, Any]:
        response = self.admin.post("/tokens", json=spec)
        response.raise_for_status()
        minted: dict[str, Any] = response.json()
        return minted

    def token(self, **spec: Any) -> str:
        token: str = self.mint(**spec)["access_token"]
        return token

    def rotate(self, *, retire: bool = False) -> str:
        response = self.admin.post("/signing-keys/rotate", params={"retire": str(retire).lower()})
        response.raise_for_status()
        kid: str = response.json()["kid"]
        return kid

    def key_fetches(self) -> int:
        log = self.admin.get("/requests", params={"service": "login"}).json()["value"]
        return len([e for e in log if e["path"].endswith("/keys")])


@pytest.fixture(scope="module")
def entra(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Entra]:
    server = CloudServer(port=free_port(), directory=tmp_path_factory.mktemp("entra")).start()
    handle = Entra(server)
    yield handle
    handle.admin.close()
    server.stop()


def refusal(error: pytest.ExceptionInfo[AuthFailure]) -> tuple[int, str, str]:
    return error.value.status, error.value.code, error.value.message


# --- the route table -----------------------------------------------------------------------------------------------


def test_every_route_of_function_app_has_a_declared_access_rule(functions: list[Any]) -> None:
    declared = set(auth.ANALYST_ROUTES) | auth.MACHINE_ROUTES | auth.ANONYMOUS_ROUTES
    triggers: dict[str, Any] = {str(f.get_function_name()): f.get_trigger() for f in functions}
    kinds = {name: trigger.get_binding_name() for name, trigger in triggers.items()}
    assert {name for name, kind in kinds.items() if kind in ("httpTrigger", "eventGridTrigger")} == declared
    for name in declared:
        trigger = triggers[name]
        if kinds[name] != "httpTrigger":
            continue
        level = str(getattr(trigger.auth_level, "value", trigger.auth_level)).upper()
        # the function key comes first everywhere but health; the app-role check comes on top of it
        assert level == ("ANONYMOUS" if name in auth.ANONYMOUS_ROUTES else "FUNCTION"), name


def test_the_roles_each_analyst_route_accepts() -> None:
    accepts = {name: sorted(r.value for r in access.roles) for name, access in auth.ANALYST_ROUTES.items()}
    readers = ["Riposte.Approve", "Riposte.Read", "Riposte.Run"]
    assert accepts == {
        "manual_run": ["Riposte.Run"],
        "rollback": ["Riposte.Run"],
        "approve": ["Riposte.Approve"],
        "reject": ["Riposte.Approve"],
        "runs": readers,
        "playbooks": readers,
        "run_status": readers,
    }
    assert [n for n, a in auth.ANALYST_ROUTES.items() if a.machine_readable] == ["run_status"]


# --- token validation ----------------------------------------------------------------------------------------------


def test_a_v2_user_token_gives_its_user(entra: Entra) -> None:
    minted = entra.mint(user="megan.bowen@contoso.com", roles=["Riposte.Approve"])
    principal = auth.validate_token(minted["access_token"], entra.settings(), entra.keys(Clock()))
    oid = minted["claims"]["oid"]
    assert principal == Principal("user", oid, "megan.bowen@contoso.com", frozenset({"Riposte.Approve"}), "bearer")
    assert principal.label == f"megan.bowen@contoso.com ({oid})"


def test_v1_and_app_only_tokens_are_accepted_too(entra: Entra) -> None:
    settings, keys = entra.settings(), entra.keys(Clock())
    v1 = auth.validate_token(entra.token(version="1.0", roles=["Riposte.Read"]), settings, keys)
    assert v1.kind == "user" and v1.name == "soc.analyst@contoso.com"
    app = auth.validate_token(entra.token(kind="app", roles=["Riposte.Run"]), settings, keys)
    assert app.kind == "app" and app.roles == {"Riposte.Run"} and app.object_id


@pytest.mark.parametrize(
    ("spec", "says"),
    [
        ({"aud": "api://another-api"}, "audience"),
        ({"iss": "https://sts.windows.net/0b1c2d3e-4f5a-4b6c-8d7e-9f0a1b2c3d4e/"}, "issuer"),
        ({"tid": "0b1c2d3e-4f5a-4b6c-8d7e-9f0a1b2c3d4e"}, "another tenant"),
        ({"lifetime": -301 - 300}, "expired"),
        ({"signing": "none"}, "'none' is not accepted"),
        ({"signing": "hs256-public-key"}, "'HS256' is not accepted"),
        ({"signing": "other-key"}, "does not publish"),
        ({"signing": "tampered"}, "signature does not verify"),
        ({"claims": {"tid": None}}, "no tid claim"),
        ({"claims": {"iat": None}}, "no iat claim"),
    ],
)
def test_each_bad_token_is_refused_naming_the_problem(entra: Entra, spec: dict[str, Any], says: str) -> None:
    token = entra.token(roles=["Riposte.Run"], **spec)
    with pytest.raises(AuthFailure) as refused:
        auth.validate_token(token, entra.settings(), entra.keys(Clock()))
    status, code, message = refusal(refused)
    assert (status, code) == (401, "InvalidToken") and says in message and token not in message


def test_the_clock_skew_leeway_applies_to_expiry(entra: Entra) -> None:
    token = entra.token(lifetime=-60)  # a minute past exp: inside the default five minutes of leeway
    assert auth.validate_token(token, entra.settings(), entra.keys(Clock())).kind == "user"
    with pytest.raises(AuthFailure, match="expired"):
        auth.validate_token(token, entra.settings(auth_clock_skew_seconds=0), entra.keys(Clock()))


def test_a_token_signed_with_an_allowed_algorithm_the_settings_do_not_list_is_refused(entra: Entra) -> None:
    settings = entra.settings(auth_algorithms=("PS256",))  # Entra signs RS256
    with pytest.raises(AuthFailure, match="'RS256' is not accepted"):
        auth.validate_token(entra.token(), settings, entra.keys(Clock()))


def test_an_oversized_token_is_refused_before_any_parsing(entra: Entra) -> None:
    with pytest.raises(AuthFailure, match="longer than"):
        auth.validate_token("a" * (auth.MAX_TOKEN_BYTES + 1), entra.settings(), entra.keys(Clock()))


# --- the signing key cache -----------------------------------------------------------------------------------------


def test_keys_are_fetched_once_and_an_unknown_kid_refetches_at_most_once_per_interval(entra: Entra) -> None:
    clock, settings = Clock(), entra.settings()
    keys = entra.keys(clock, min_refresh=300)
    for _ in range(5):
        auth.validate_token(entra.token(), settings, keys)
    assert keys.fetches == 1
    for n in range(5):  # made-up key ids: at most one refresh per interval, whatever their number
        with pytest.raises(AuthFailure, match="does not publish"):
            auth.validate_token(entra.token(kid=f"made-up-{n}"), settings, keys)
    assert keys.fetches == 1  # the first fetch was less than min_refresh ago
    clock.now += 301
    with pytest.raises(AuthFailure):
        auth.validate_token(entra.token(kid="made-up-later"), settings, keys)
    assert keys.fetches == 2


def test_a_rolled_over_key_is_picked_up_and_a_retired_one_refused(entra: Entra) -> None:
    clock, settings = Clock(), entra.settings()
    keys = entra.keys(clock, min_refresh=60)
    before = entra.token()
    auth.validate_token(before, settings, keys)
    fetched = entra.key_fetches()
    entra.rotate()  # Entra publishes a new key and starts signing with it
    clock.now += 61
    after = entra.token()
    assert auth.validate_token(after, settings, keys).kind == "user"  # unknown kid -> one refresh -> found
    assert auth.validate_token(before, settings, keys).kind == "user"  # the old key is still published
    assert entra.key_fetches() == fetched + 1  # one refresh, for the new key's id
    entra.rotate(retire=True)
    clock.now += 43_201  # the cache's max age: everything is fetched again
    with pytest.raises(AuthFailure, match="does not publish"):
        auth.validate_token(before, settings, keys)


def test_an_unreachable_identity_provider_is_a_503_and_known_keys_outlive_a_failed_refresh(entra: Entra) -> None:
    clock, settings = Clock(), entra.settings()
    nowhere = entra.keys(clock, url=f"https://127.0.0.1:{free_port()}/{DEMO_TENANT}/v2.0/.well-known/x")
    with pytest.raises(AuthFailure) as refused:
        auth.validate_token(entra.token(), settings, nowhere)
    assert refused.value.status == 503 and refused.value.code == "IdentityProviderUnavailable"
    assert refused.value.response().headers["Retry-After"] == "10"
    assert nowhere.fetches == 1
    with pytest.raises(AuthFailure):
        auth.validate_token(entra.token(), settings, nowhere)
    assert nowhere.fetches == 1  # backing off: a failing provider is not called on every request

    keys = entra.keys(clock, min_refresh=0)
    auth.validate_token(entra.token(), settings, keys)
    fault = {"match": {"path": "*/discovery/v2.0/keys"}, "status": 503}
    entra.admin.post("/faults", json=fault).raise_for_status()
    try:
        clock.now += 43_201  # stale: a refresh is due, and fails
        assert auth.validate_token(entra.token(), settings, keys).kind == "user"
        assert keys.fetches == 2  # the refresh was tried, failed, and the known keys carried on
    finally:
        entra.admin.delete("/faults").raise_for_status()


def test_only_rsa_signing_keys_are_taken_from_the_jwks() -> None:
    from cryptography.hazmat.primitives.asymmetric import rsa

    n = rsa.generate_private_key(public_exponent=65537, key_size=2048).public_key().public_numbers().n
    modulus = base64.urlsafe_b64encode(n.to_bytes(256, "big")).rstrip(b"=").decode()
    documents: dict[str, dict[str, Any]] = {
        "https://login.example/meta": {"jwks_uri": "https://login.example/keys"},
        "https://login.example/keys": {
            "keys": [
                {"kty": "oct", "kid": "shared-secret", "k": base64.urlsafe_b64encode(b"secret").decode()},
                {"kty": "RSA", "use": "enc", "kid": "for-encryption", "n": modulus, "e": "AQAB"},
                {"kty": "RSA", "kid": "no-n"},
                {"kty": "RSA", "use": "sig", "kid": "signing", "n": modulus, "e": "AQAB"},
            ]
        },
    }
    keys = SigningKeys("https://login.example/meta", documents.__getitem__, max_age=60, min_refresh=60)
    assert keys.get("signing") is not None
    assert keys.get("shared-secret") is None and keys.get("for-encryption") is None and keys.get("no-n") is None


def test_fetch_refuses_plain_http() -> None:
    with pytest.raises(auth.KeysUnavailable, match="not an https URL"):
        auth.fetch_json("http://login.example/meta", None)


# --- App Service Authentication ------------------------------------------------------------------------------------


def principal_header(claims: list[tuple[str, str]], auth_typ: str = "aad") -> str:
    document = {
        "auth_typ": auth_typ,
        "claims": [{"typ": t, "val": v} for t, v in claims],
        "name_typ": "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/name",
        "role_typ": "http://schemas.microsoft.com/ws/2008/06/identity/claims/role",
    }
    return base64.b64encode(json.dumps(document).encode()).decode()


TENANT_CLAIM = ("http://schemas.microsoft.com/identity/claims/tenantid", DEMO_TENANT)
OID_CLAIM = ("http://schemas.microsoft.com/identity/claims/objectidentifier", "4e8f0a1b-2c3d-4e5f-8a9b-0c1d2e3f4a5b")
NAME_CLAIM = ("http://schemas.xmlsoap.org/ws/2005/05/identity/claims/name", "Joni Sherman")
UPN_CLAIM = ("preferred_username", "joni.sherman@contoso.com")
ROLE_CLAIM = ("http://schemas.microsoft.com/ws/2008/06/identity/claims/role", "Riposte.Approve")


def request(headers: dict[str, str], path: str = "/api/runs") -> func.HttpRequest:
    return func.HttpRequest(method="GET", url=f"http://127.0.0.1{path}", headers=headers, body=b"")


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch) -> Iterator[pytest.MonkeyPatch]:
    """Settings from the environment for check(), re-read for each test."""
    for name in ("RIPOSTE_AUTH_MODE", "RIPOSTE_TRUST_APP_SERVICE_AUTH", "RIPOSTE_AUTH_METADATA_URL", PLATFORM_FLAG):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("RIPOSTE_AUTH_TENANT_ID", DEMO_TENANT)
    monkeypatch.setenv("RIPOSTE_AUTH_AUDIENCE", DEFAULT_API_CLIENT_ID)
    get_settings.cache_clear()
    yield monkeypatch
    get_settings.cache_clear()


def test_the_app_service_principal_is_trusted_only_when_the_setting_says_so(env: pytest.MonkeyPatch) -> None:
    header = {auth.PRINCIPAL_HEADER: principal_header([TENANT_CLAIM, OID_CLAIM, NAME_CLAIM, UPN_CLAIM, ROLE_CLAIM])}
    with pytest.raises(AuthFailure) as refused:
        auth.check(request(header), "approve")
    assert refused.value.code == "AuthenticationRequired" and "is ignored" in refused.value.message

    env.setenv("RIPOSTE_TRUST_APP_SERVICE_AUTH", "true")
    env.setenv(PLATFORM_FLAG, "True")  # what App Service sets when its authentication is on
    get_settings.cache_clear()
    principal = auth.check(request(header), "approve")
    assert principal == Principal(
        "app", OID_CLAIM[1], "Joni Sherman", frozenset({"Riposte.Approve"}), "app-service-auth"
    )
    with pytest.raises(AuthFailure) as refused:
        auth.check(request(header), "manual_run")
    assert (refused.value.status, refused.value.code) == (403, "MissingRole")
    assert "Riposte.Run" in refused.value.message and "Riposte.Approve" in refused.value.message


@pytest.mark.parametrize(
    ("header", "says"),
    [
        ("%%% not base64 %%%", "not valid"),
        (base64.b64encode(b"[1, 2]").decode(), "not valid"),
        (principal_header([TENANT_CLAIM, ROLE_CLAIM], auth_typ="google"), "not signed in with Entra ID"),
        (principal_header([("tid", "0b1c2d3e-4f5a-4b6c-8d7e-9f0a1b2c3d4e"), ROLE_CLAIM]), "not from this tenant"),
        (principal_header([ROLE_CLAIM]), "not from this tenant"),
        (principal_header([TENANT_CLAIM, ("aud", "api://another-api"), ROLE_CLAIM]), "not for this API"),
    ],
)
def test_a_bad_app_service_principal_is_refused(env: pytest.MonkeyPatch, header: str, says: str) -> None:
    env.setenv("RIPOSTE_TRUST_APP_SERVICE_AUTH", "true")
    env.setenv(PLATFORM_FLAG, "True")  # what App Service sets when its authentication is on
    get_settings.cache_clear()
    with pytest.raises(AuthFailure) as refused:
        auth.check(request({auth.PRINCIPAL_HEADER: header}), "runs")
    assert refused.value.status == 401 and refused.value.code == "InvalidPrincipal" and says in refused.value.message


def test_function_key_mode_lets_the_key_alone_through_and_records_the_key(env: pytest.MonkeyPatch) -> None:
    env.setenv("RIPOSTE_AUTH_MODE", "function_key")
    get_settings.cache_clear()
    principal = auth.check(request({}), "approve")
    assert principal.kind == "machine" and principal.label == auth.MACHINE_CALLER
    assert {r.value for r in Role} <= principal.roles
    assert auth.may_read_run(principal, "someone@contoso.com (oid)") is None


def test_entra_mode_without_its_settings_refuses_with_a_503_naming_the_setting(env: pytest.MonkeyPatch) -> None:
    env.delenv("RIPOSTE_AUTH_TENANT_ID")
    get_settings.cache_clear()
    with pytest.raises(AuthFailure) as refused:
        auth.check(request({"authorization": "Bearer x.y.z"}), "runs")
    assert refused.value.status == 503 and "RIPOSTE_AUTH_TENANT_ID" in refused.value.message
    # the relay's read of its own run does not depend on them
    assert auth.check(request({}), "run_status").kind == "machine"


def test_the_key_alone_reads_only_runs_a_machine_started() -> None:
    machine = Principal("machine")
    assert auth.may_read_run(machine, auth.MACHINE_CALLER) is None
    assert auth.may_read_run(machine, "") is None  # Event Grid deliveries record no requester
    refused = auth.may_read_run(machine, "megan.bowen@contoso.com (oid)")
    assert refused is not None and refused.status_code == 401
    reader = Principal("user", "oid", "megan.bowen@contoso.com", frozenset({"Riposte.Read"}), "bearer")
    assert auth.may_read_run(reader, "someone.else@contoso.com (oid)") is None


# --- settings ------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("RIPOSTE_AUTH_ALGORITHMS", "none"),
        ("RIPOSTE_AUTH_ALGORITHMS", "RS256,HS256"),
        ("RIPOSTE_AUTH_TENANT_ID", "contoso"),
        ("RIPOSTE_AUTH_METADATA_URL", "http://login.microsoftonline.com/x/v2.0/.well-known/openid-configuration"),
        ("RIPOSTE_AUTH_MODE", "off"),
        ("RIPOSTE_AUTH_CLOCK_SKEW_SECONDS", "3600"),
    ],
)
def test_bad_auth_settings_are_named(name: str, value: str) -> None:
    with pytest.raises(SettingsError, match=name):
        Settings.from_env({name: value})


@pytest.mark.parametrize("platform", [None, "", "False", "false", "1"])
def test_trusting_the_principal_header_without_app_service_authentication_is_refused_at_start(
    platform: str | None,
) -> None:
    env = {"RIPOSTE_TRUST_APP_SERVICE_AUTH": "true", "RIPOSTE_AUTH_TENANT_ID": DEMO_TENANT}
    if platform is not None:
        env[PLATFORM_FLAG] = platform
    with pytest.raises(SettingsError) as refused:
        Settings.from_env(env)
    assert refused.value.variable == "RIPOSTE_TRUST_APP_SERVICE_AUTH"
    assert PLATFORM_FLAG in str(refused.value) and "forged" in str(refused.value)


@pytest.mark.parametrize("platform", ["True", "true"])
def test_the_principal_header_is_trusted_when_app_service_authentication_is_on(platform: str) -> None:
    env = {"RIPOSTE_TRUST_APP_SERVICE_AUTH": "true", PLATFORM_FLAG: platform}
    assert Settings.from_env(env).trust_app_service_auth
    # and the platform flag alone changes nothing
    assert not Settings.from_env({PLATFORM_FLAG: "True"}).trust_app_service_auth


def test_the_default_issuers_and_metadata_follow_the_tenant() -> None:
    settings = Settings.from_env({"RIPOSTE_AUTH_TENANT_ID": DEMO_TENANT})
    assert auth.accepted_issuers(settings) == (
        f"https://sts.windows.net/{DEMO_TENANT}/",
        f"https://login.microsoftonline.com/{DEMO_TENANT}/v2.0",
    )
    assert auth.metadata_url(settings) == (
        f"https://login.microsoftonline.com/{DEMO_TENANT}/v2.0/.well-known/openid-configuration"
    )
    assert settings.auth_algorithms == ("RS256",) and settings.auth_mode == "entra"
    assert not settings.trust_app_service_auth


def test_importing_the_auth_module_loads_no_jwt_or_crypto() -> None:
    import subprocess
    import sys

    code = "import json, sys, shared.api.auth; print(json.dumps(sorted(sys.modules)))"
    loaded = json.loads(subprocess.check_output([sys.executable, "-c", code], cwd=ROOT, text=True))
    assert not [m for m in loaded if m.startswith(("jwt", "cryptography", "urllib.request"))]
