"""Interactive sign-in for the emulated tenant: the authorization code flow with PKCE that a single-page app (the
Riposte console) uses against the Microsoft identity platform.

GET  /{tenant}/oauth2/v2.0/authorize   a sign-in page: pick a tenant user and the app roles they hold
POST /{tenant}/oauth2/v2.0/authorize   signs in: redirects to redirect_uri with ?code=...&state=...
POST /{tenant}/oauth2/v2.0/token       grant_type=authorization_code with the PKCE code_verifier (S256 only); CORS
                                       allowed, as Entra allows it for a SPA's redirect URI

The token is the one POST /_admin/tokens mints (oidc.py), so Riposte validates it like any other. Real Entra takes the
roles from the user's app role assignments; here the sign-in page asks, so one browser can play several analysts.
Only loopback redirect URIs are accepted: this sign-in serves a local console, never another site."""

from __future__ import annotations

import base64
import hashlib
import html
import secrets
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, RedirectResponse, Response

from local.cloud.errors import LoginError
from local.cloud.oidc import APP_ROLES, encode, token_claims
from local.cloud.provider import Provider, route

CODE_LIFETIME_S = 300
LOOPBACK = ("127.0.0.1", "localhost", "[::1]", "::1")


@dataclass(frozen=True)
class Grant:
    client_id: str
    redirect_uri: str
    challenge: str
    user: str
    roles: tuple[str, ...]
    expires: float


def _invalid_request(message: str) -> LoginError:
    return LoginError(400, "invalid_request", message)


def _redirect_allowed(uri: str) -> bool:
    parts = urlsplit(uri)
    return parts.scheme in ("http", "https") and (parts.hostname or "") in LOOPBACK


def _s256(verifier: str) -> str:
    return base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()


async def _form(request: Request) -> tuple[dict[str, str], dict[str, list[str]]]:
    fields = parse_qs((await request.body()).decode("utf-8", "replace"), keep_blank_values=True)
    return {name: values[0] for name, values in fields.items()}, fields


def _cors(request: Request) -> dict[str, str]:
    origin = request.headers.get("origin", "")
    if not origin or not _redirect_allowed(origin):
        return {}
    return {"Access-Control-Allow-Origin": origin, "Vary": "Origin"}


class SignInProvider(Provider):
    service = "login"
    authenticated = False

    def __init__(self, cloud: Any) -> None:
        super().__init__(cloud)
        self.grants: dict[str, Grant] = {}

    def _check(self, query: dict[str, str]) -> None:
        if query.get("response_type") != "code":
            raise _invalid_request("AADSTS900144: response_type must be 'code'.")
        if not query.get("client_id"):
            raise _invalid_request("AADSTS900144: The request body must contain the following parameter: 'client_id'.")
        if not _redirect_allowed(query.get("redirect_uri", "")):
            raise _invalid_request("AADSTS50011: The redirect URI is not a loopback address of this machine.")
        if query.get("code_challenge_method") != "S256" or not query.get("code_challenge"):
            raise _invalid_request("AADSTS9002325: Proof Key for Code Exchange is required (S256).")

    @route("GET", "/{tenant}/oauth2/v2.0/authorize")
    async def authorize_page(self, request: Request, tenant: str) -> Response:
        query = dict(request.query_params)
        self._check(query)
        users = (self.cloud.doc.get("graph") or {}).get("users") or []
        options = "".join(
            f'<option value="{html.escape(str(u["userPrincipalName"]))}">'
            f"{html.escape(str(u.get('displayName', '')))} ({html.escape(str(u['userPrincipalName']))})</option>"
            for u in users
            if u.get("userPrincipalName") and u.get("accountEnabled", True)
        )
        roles = "".join(
            f'<label><input type="checkbox" name="role" value="{r}" checked> {r}</label><br>' for r in APP_ROLES
        )
        hidden = "".join(
            f'<input type="hidden" name="{html.escape(k)}" value="{html.escape(v)}">' for k, v in query.items()
        )
        page = (
            '<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Sign in (emulated Entra ID)</title>'
            "</head><body><main><h1>Sign in to the emulated tenant</h1>"
            f'<form method="post"><label for="user">Account</label> <select id="user" name="user">{options}</select>'
            f"<fieldset><legend>App roles on Riposte</legend>{roles}</fieldset>{hidden}"
            '<button type="submit" id="sign-in">Sign in</button></form></main></body></html>'
        )
        return HTMLResponse(page, headers={"Content-Security-Policy": "default-src 'none'; form-action 'self' http:"})

    @route("POST", "/{tenant}/oauth2/v2.0/authorize")
    async def authorize(self, request: Request, tenant: str) -> Response:
        query, fields = await _form(request)
        self._check(query)
        code = secrets.token_urlsafe(32)
        self.grants[code] = Grant(
            query["client_id"],
            query["redirect_uri"],
            query["code_challenge"],
            query.get("user", ""),
            tuple(r for r in fields.get("role", []) if r in APP_ROLES),
            time.time() + CODE_LIFETIME_S,
        )
        target = query["redirect_uri"] + "?" + urlencode({"code": code, "state": query.get("state", "")})
        return RedirectResponse(target, status_code=302)

    @route("OPTIONS", "/{tenant}/oauth2/v2.0/token")
    async def token_preflight(self, request: Request, tenant: str) -> Response:
        allowed = {"Access-Control-Allow-Methods": "POST", "Access-Control-Allow-Headers": "content-type"}
        headers = _cors(request) | allowed
        return Response(status_code=204, headers=headers)

    @route("POST", "/{tenant}/oauth2/v2.0/token")
    async def token(self, request: Request, tenant: str) -> Response:
        form, _ = await _form(request)
        if form.get("grant_type") != "authorization_code":
            raise LoginError(400, "unsupported_grant_type", "AADSTS70003: Only authorization_code is supported here.")
        grant = self.grants.pop(form.get("code", ""), None)
        if grant is None or grant.expires < time.time():
            raise LoginError(400, "invalid_grant", "AADSTS70008: The authorization code is unknown or has expired.")
        if form.get("redirect_uri") != grant.redirect_uri or form.get("client_id") != grant.client_id:
            raise LoginError(400, "invalid_grant", "AADSTS70001: The code was issued to another client or redirect.")
        if _s256(form.get("code_verifier", "")) != grant.challenge:
            raise LoginError(400, "invalid_grant", "AADSTS501481: The code_verifier does not match the challenge.")
        claims = token_claims(self.cloud.doc, {"user": grant.user, "roles": list(grant.roles)}, time.time())
        token, _ = encode(claims, self.cloud.signing_keys, "valid")
        body = {"access_token": token, "token_type": "Bearer", "expires_in": claims["exp"] - int(time.time())}
        return JSONResponse(body, headers=_cors(request))
