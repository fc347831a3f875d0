"""App Service style managed-identity endpoint, and the check that every other request carries a token it issued.

Tokens are JWTs (HS256, signed with a per-process key) whose claims look like a managed identity's app-only token:
aud, iss, tid, oid, appid, idtyp, exp. A tenant reset does not invalidate tokens clients already cache, just as a
real tenant's tokens outlive a config change; a server restart does (new key)."""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import os
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from local.cloud.errors import IdentityError, service_error
from local.cloud.provider import Provider, route

_KEY = os.urandom(32)
TOKEN_LIFETIME_S = 3600
IDENTITY_HEADER = os.environ.get("RIPOSTE_CLOUD_IDENTITY_HEADER", "riposte-local-identity")

# The audiences each service accepts (both spellings the real services take); another service's token is rejected.
AUDIENCES = {
    "graph": ("https://graph.microsoft.com", "00000003-0000-0000-c000-000000000000"),
    "arm": ("https://management.azure.com", "https://management.core.windows.net"),
    "loganalytics": ("https://api.loganalytics.io", "https://api.loganalytics.azure.com"),
    # Defender for Endpoint (the WindowsDefenderATP application): its resource URI, and the audience its tokens carry
    "mde": ("https://api.securitycenter.microsoft.com", "https://securitycenter.onmicrosoft.com/windowsatpservice"),
}


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


_HEADER = _b64(json.dumps({"alg": "HS256", "typ": "JWT"}, separators=(",", ":")).encode())


def _sign(signing_input: str) -> str:
    return _b64(hmac.new(_KEY, signing_input.encode(), hashlib.sha256).digest())


def issue_token(resource: str, now: float | None = None, claims: dict[str, Any] | None = None) -> tuple[str, int]:
    issued = int(now if now is not None else time.time())
    expires = issued + TOKEN_LIFETIME_S
    payload = {"aud": resource.rstrip("/"), "iat": issued, "nbf": issued, "exp": expires, **(claims or {})}
    body = _b64(json.dumps(payload, separators=(",", ":")).encode())
    signing_input = f"{_HEADER}.{body}"
    return f"{signing_input}.{_sign(signing_input)}", expires


@dataclass(frozen=True)
class TokenProblem:
    reason: str  # missing | invalid | expired | audience
    audience: str = ""
    expired_at: float = 0.0


def validate(token: str, service: str, now: float | None = None) -> TokenProblem | None:
    """None when `token` is one this server issued, unexpired, for an audience `service` accepts."""
    parts = token.split(".")
    if len(parts) != 3 or not hmac.compare_digest(parts[2], _sign(f"{parts[0]}.{parts[1]}")):
        return TokenProblem("invalid")
    try:
        claims = json.loads(_unb64(parts[1]))
    except (ValueError, binascii.Error):
        return TokenProblem("invalid")
    if claims["exp"] < (now if now is not None else time.time()):
        return TokenProblem("expired", expired_at=float(claims["exp"]))
    audience = str(claims["aud"]).rstrip("/")
    wanted = AUDIENCES.get(service)
    if wanted is not None and audience not in wanted:
        return TokenProblem("audience", audience=audience)
    return None


def _utc(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).strftime("%m/%d/%Y %H:%M:%S")


def _describe(problem: TokenProblem, service: str) -> tuple[str, str]:
    """(code, message) as each service words the failure."""
    if service == "graph":
        messages = {
            "missing": "Access token is empty.",
            "invalid": "Access token validation failure. Invalid signature.",
            "expired": "Lifetime validation failed, the token is expired.",
            "audience": "Access token validation failure. Invalid audience.",
        }
        return "InvalidAuthenticationToken", messages[problem.reason]
    if service == "mde":
        reasons = {"missing": "Authorization header is missing", "expired": "The token is expired"}
        return "Unauthorized", reasons.get(problem.reason, "Invalid token")
    if service == "loganalytics":
        if problem.reason == "missing":
            return "AuthorizationRequiredError", "Valid authentication was not provided"
        return "InvalidTokenError", "The provided authentication is not valid for this resource"
    if problem.reason == "missing":
        return "AuthenticationFailed", "Authentication failed. The 'Authorization' header is missing."
    if problem.reason == "expired":
        return (
            "ExpiredAuthenticationToken",
            f"The access token expiry UTC time '{_utc(problem.expired_at)}' is earlier than current UTC time "
            f"'{_utc(time.time())}'.",
        )
    if problem.reason == "audience":
        allowed = ",".join(f"'{a}/','{a}'" for a in AUDIENCES["arm"][::-1])
        return (
            "InvalidAuthenticationTokenAudience",
            f"The access token has been obtained for wrong audience or resource '{problem.audience}'. "
            f"It should exactly match with one of the allowed audiences {allowed}.",
        )
    return "InvalidAuthenticationToken", "The access token is invalid."


def require_bearer(request: Request, service: str) -> None:
    """Raises the service's 401 unless the request carries a valid token this server issued for the service."""
    header = request.headers.get("authorization", "")
    if not header.lower().startswith("bearer ") or not header[7:].strip():
        problem: TokenProblem | None = TokenProblem("missing")
    else:
        problem = validate(header[7:].strip(), service)
    if problem is None:
        return
    code, message = _describe(problem, service)
    challenge = {"WWW-Authenticate": 'Bearer authorization_uri="https://login.microsoftonline.com/common"'}
    raise service_error(service, 401, code, message, challenge)


class IdentityProvider(Provider):
    """The App Service managed-identity protocol (api-version 2019-08-01)."""

    service = "identity"
    authenticated = False

    @route("GET", "/msi/token")
    async def msi_token(self, request: Request) -> Response:
        # X-IDENTITY-HEADER must match IDENTITY_HEADER; the resource comes as ?resource= (azure-identity strips
        # '/.default' from the scope).
        cloud = self.cloud
        if request.headers.get("x-identity-header") != (cloud.identity_header or IDENTITY_HEADER):
            raise IdentityError(400, "X-IDENTITY-HEADER header is missing or does not match.")
        query = request.query_params
        resource = query.get("resource") or query.get("scope", "").removesuffix("/.default")
        if not resource:
            raise IdentityError(400, "Required query parameter 'resource' is missing.")
        tenant = cloud.doc.get("tenant") or {}
        identity = tenant.get("riposteIdentity") or {}
        claims = {
            "iss": f"https://sts.windows.net/{tenant.get('id', '')}/",
            "tid": tenant.get("id", ""),
            "oid": identity.get("principalId", ""),
            "sub": identity.get("principalId", ""),
            "appid": identity.get("clientId", ""),
            "idtyp": "app",
        }
        if resource.rstrip("/") in AUDIENCES["graph"]:
            # An app-only Graph token lists the application permissions granted with admin consent.
            claims["roles"] = list(identity.get("graphPermissions") or [])
        elif resource.rstrip("/") in AUDIENCES["mde"]:
            # Likewise for the WindowsDefenderATP application permissions.
            claims["roles"] = list(identity.get("mdePermissions") or [])
        token, expires = issue_token(resource, claims=claims)
        return JSONResponse(
            {
                "access_token": token,
                "expires_on": str(expires),
                "resource": resource,
                "token_type": "Bearer",
                "client_id": identity.get("clientId", ""),
            }
        )
