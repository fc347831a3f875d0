"""The console's route (its files, headers and sign-in configuration) and the emulated identity platform's
authorization code flow with PKCE that the console signs in with: the token it gives is one Riposte accepts."""

from __future__ import annotations

import base64
import hashlib
import re
from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qs, urlsplit

import azure.functions as func
import httpx
import pytest

from local.cloud.oidc import DEFAULT_API_CLIENT_ID
from local.cloud.server import CloudServer, free_port
from local.stack import DEMO_TENANT
from shared.api import auth, console_routes
from shared.settings import get_settings

CONSOLE = console_routes.ROOT
REDIRECT = "http://127.0.0.1:7071/api/console/"


def get(path: str) -> func.HttpResponse:
    return console_routes.get_console(
        func.HttpRequest("GET", f"http://127.0.0.1/api/console/{path}", route_params={"path": path}, body=b"")
    )


@pytest.fixture
def key_only(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("RIPOSTE_AUTH_MODE", "function_key")
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


def test_the_page_and_its_modules_are_served_with_a_strict_policy(key_only: None) -> None:
    page = get("")
    assert page.status_code == 200 and page.mimetype == "text/html"
    policy = page.headers["Content-Security-Policy"]
    assert "script-src 'self'" in policy and "unsafe-inline" not in policy and "frame-ancestors 'none'" in policy
    assert page.headers["X-Content-Type-Options"] == "nosniff"
    modules = set(re.findall(r'from "\./([\w.]+)"', "".join(p.read_text() for p in CONSOLE.glob("*.js"))))
    assert modules and modules <= set(console_routes.files())
    for name in modules | {"main.js", "style.css"}:
        assert get(name).status_code == 200, name
    assert get("main.js").mimetype == "text/javascript"


@pytest.mark.parametrize("path", ["../pyproject.toml", "..%2Fpyproject.toml", "/etc/passwd", "nope.js", "main.js.map"])
def test_nothing_outside_the_console_files_is_served(key_only: None, path: str) -> None:
    answer = get(path)
    assert answer.status_code == 404 and b'"NotFound"' in answer.get_body()


def test_no_inline_script_style_or_html_injection_in_the_console() -> None:
    page = (CONSOLE / "index.html").read_text()
    assert all('src="' in tag for tag in re.findall(r"<script[^>]*>", page)), "inline script"
    assert "style=" not in page and "<style" not in page
    for module in CONSOLE.glob("*.js"):
        text = module.read_text()
        for sink in ("innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval(", "style:"):
            assert sink not in text, (module.name, sink)


def test_without_entra_the_console_asks_for_no_sign_in(key_only: None) -> None:
    assert get("config.json").get_body() == b'{"signIn": {}}'


# --- signing in ----------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def tenant(tmp_path_factory: pytest.TempPathFactory) -> Iterator[CloudServer]:
    server = CloudServer(port=free_port(), directory=tmp_path_factory.mktemp("signin")).start()
    yield server
    server.stop()


@pytest.fixture
def entra(tenant: CloudServer, monkeypatch: pytest.MonkeyPatch) -> Iterator[httpx.Client]:
    monkeypatch.delenv("RIPOSTE_AUTH_MODE", raising=False)
    monkeypatch.setenv("RIPOSTE_AUTH_TENANT_ID", DEMO_TENANT)
    monkeypatch.setenv("RIPOSTE_AUTH_AUDIENCE", f"{DEFAULT_API_CLIENT_ID},api://{DEFAULT_API_CLIENT_ID}")
    monkeypatch.setenv("RIPOSTE_AUTH_METADATA_URL", f"{tenant.url}/{DEMO_TENANT}/v2.0/.well-known/openid-configuration")
    monkeypatch.setenv("RIPOSTE_CA_BUNDLE", str(tenant.certs.ca_path))
    get_settings.cache_clear()
    with httpx.Client(verify=str(tenant.certs.ca_path), timeout=30) as client:
        yield client
    get_settings.cache_clear()


def _pkce() -> tuple[str, str]:
    verifier = base64.urlsafe_b64encode(b"v" * 40).rstrip(b"=").decode()
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    return verifier, challenge


def _code(client: httpx.Client, config: dict[str, str], challenge: str, **form: Any) -> str:
    query = {
        "client_id": config["clientId"],
        "response_type": "code",
        "redirect_uri": REDIRECT,
        "scope": config["scope"],
        "state": "s1",
        "code_challenge": challenge,
        "code_challenge_method": "S256",
    }
    page = client.get(config["authorizeEndpoint"], params=query)
    assert page.status_code == 200 and "megan.bowen@contoso.com" in page.text
    answer = client.post(config["authorizeEndpoint"], data={**query, **form})
    assert answer.status_code == 302
    location = urlsplit(answer.headers["location"])
    assert f"{location.scheme}://{location.netloc}{location.path}" == REDIRECT
    params = parse_qs(location.query)
    assert params["state"] == ["s1"]
    return params["code"][0]


def test_the_console_signs_in_with_pkce_and_riposte_accepts_the_token(entra: httpx.Client) -> None:
    config = console_routes.sign_in()
    assert config["clientId"] == DEFAULT_API_CLIENT_ID and config["scope"].startswith(f"api://{DEFAULT_API_CLIENT_ID}")
    policy = get("config.json").headers["Content-Security-Policy"]
    token_origin = "{0.scheme}://{0.netloc}".format(urlsplit(config["tokenEndpoint"]))
    assert f"connect-src 'self' {token_origin}" in policy
    verifier, challenge = _pkce()
    code = _code(entra, config, challenge, user="megan.bowen@contoso.com", role=["Riposte.Approve", "Riposte.Forged"])
    exchange = {"grant_type": "authorization_code", "redirect_uri": REDIRECT, "client_id": config["clientId"]}
    wrong = entra.post(config["tokenEndpoint"], data={**exchange, "code": code, "code_verifier": "x" * 43})
    assert wrong.status_code == 400 and wrong.json()["error"] == "invalid_grant"
    code = _code(entra, config, challenge, user="megan.bowen@contoso.com", role=["Riposte.Approve", "Riposte.Forged"])
    answer = entra.post(
        config["tokenEndpoint"],
        data={**exchange, "code": code, "code_verifier": verifier},
        headers={"origin": "http://127.0.0.1:7071"},
    )
    assert answer.status_code == 200 and answer.headers["access-control-allow-origin"] == "http://127.0.0.1:7071"
    principal = auth.validate_token(answer.json()["access_token"], get_settings())
    assert principal.name == "megan.bowen@contoso.com" and principal.roles == frozenset({"Riposte.Approve"})
    again = entra.post(config["tokenEndpoint"], data={**exchange, "code": code, "code_verifier": verifier})
    assert again.status_code == 400 and again.json()["error"] == "invalid_grant"  # a code is good once


def test_sign_in_refuses_redirects_off_this_machine_and_plain_codes(entra: httpx.Client) -> None:
    config = console_routes.sign_in()
    query = {
        "client_id": config["clientId"],
        "response_type": "code",
        "redirect_uri": "https://evil.example/cb",
        "code_challenge": "c",
        "code_challenge_method": "S256",
    }
    assert entra.get(config["authorizeEndpoint"], params=query).status_code == 400
    query.update(redirect_uri=REDIRECT, code_challenge_method="plain")
    assert entra.get(config["authorizeEndpoint"], params=query).status_code == 400
