"""GET /api/console/{*path}: the analysts' console, static files served by the function app itself (no other server,
no build step), and its sign-in configuration.

The files are public (they hold no data); everything the console shows comes from the API, called with the function key
and the analyst's Entra ID bearer token, so a forged cross-site request has neither and CSRF cannot happen. The content
security policy allows scripts from this origin only (no inline script), and the token endpoint as the one other place
the page may connect to."""

from __future__ import annotations

import functools
import logging
from pathlib import Path
from urllib.parse import urlsplit

import azure.functions as func

from shared.api import auth
from shared.api.responses import error_response, json_response
from shared.settings import SettingsError, get_settings

log = logging.getLogger("riposte.console")

ROOT = Path(__file__).resolve().parents[2] / "console"
MEDIA = {
    ".html": "text/html",
    ".js": "text/javascript",
    ".css": "text/css",
    ".svg": "image/svg+xml",
    ".png": "image/png",
}
CONFIG = "config.json"


@functools.cache
def files() -> dict[str, Path]:
    """What may be served: the files shipped under console/, by relative path. Nothing else is ever opened."""
    if not ROOT.is_dir():
        return {}
    return {p.relative_to(ROOT).as_posix(): p for p in ROOT.rglob("*") if p.is_file() and p.suffix.lower() in MEDIA}


@functools.cache
def _endpoints(metadata: str, ca_bundle: str | None) -> tuple[str, str]:
    document = auth.fetch_json(metadata, ca_bundle)
    return str(document.get("authorization_endpoint", "")), str(document.get("token_endpoint", ""))


def sign_in() -> dict[str, str]:
    """How the console signs in: the authorization code flow with PKCE against the tenant's identity platform, for
    a token whose audience is Riposte's API. Empty when the deployment needs no identity (RIPOSTE_AUTH_MODE)."""
    settings = get_settings()
    if settings.auth_mode != "entra" or auth.configuration_problem(settings):
        return {}
    try:
        authorize, token = _endpoints(auth.metadata_url(settings), settings.ca_bundle)
    except auth.KeysUnavailable as exc:
        log.warning("console sign-in unavailable: %s", exc)
        return {}
    client_id = next((a for a in settings.auth_audience if not a.startswith("api://")), settings.auth_audience[0])
    resource = next((a for a in settings.auth_audience if a.startswith("api://")), client_id)
    return {
        "clientId": client_id,
        "authorizeEndpoint": authorize,
        "tokenEndpoint": token,
        "scope": f"{resource}/.default openid profile",
    }


def _policy(token_endpoint: str) -> str:
    parts = urlsplit(token_endpoint)
    connect = f" {parts.scheme}://{parts.netloc}" if parts.scheme == "https" or parts.hostname == "127.0.0.1" else ""
    return (
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        f"connect-src 'self'{connect}; form-action 'none'; frame-ancestors 'none'; base-uri 'none'"
    )


def get_console(req: func.HttpRequest) -> func.HttpResponse:
    path = (req.route_params.get("path") or "").strip("/") or "index.html"
    try:
        config = sign_in()
    except SettingsError as error:
        return error_response(503, "InvalidSetting", f"Riposte is not configured correctly: {error}", error.variable)
    headers = {
        "Content-Security-Policy": _policy(config.get("tokenEndpoint", "")),
        "X-Content-Type-Options": "nosniff",
        "Referrer-Policy": "no-referrer",
        "Cache-Control": "no-cache",
    }
    if path == CONFIG:
        return json_response({"signIn": config}, 200, headers)
    found = files().get(path)
    if found is None:
        return error_response(404, "NotFound", f"The console has no file {path[:200]!r}.", "path")
    return func.HttpResponse(found.read_bytes(), status_code=200, mimetype=MEDIA[found.suffix.lower()], headers=headers)
