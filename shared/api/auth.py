"""Who is calling, and may they: the function key for machines, an Entra ID app role for analysts.

Machine callers (the Sentinel relay Logic App, Logic Apps, Event Grid) hold a function key, which the Functions
host checks before any code here runs. Analyst routes also need an Entra ID identity holding one of Riposte's app
roles, from one of two places:
- X-MS-CLIENT-PRINCIPAL, set by App Service Authentication, read only when RIPOSTE_TRUST_APP_SERVICE_AUTH says it is
  on in front of the app (it strips the header from outside requests; without it, anyone could write the header).
  The settings refuse that setting unless the platform reports authentication on (WEBSITE_AUTH_ENABLED=True);
- the bearer token, validated here with PyJWT against the tenant's published signing keys: signature, an algorithm
  allow-list from settings (never from the token), issuer, audience, tenant, expiry.

| route                                  | needs                                                           |
| -------------------------------------- | --------------------------------------------------------------- |
| POST /api/incidents, POST /api/events, | the function key (Event Grid's native trigger: the host's key) |
| the Event Grid trigger                 |                                                                 |
| POST /api/playbooks/{name}/runs        | Riposte.Run                                                     |
| POST /api/runs/{id}/rollback           | Riposte.Run: an undo makes Riposte act on the tenant, as a run  |
|                                        | does; approving stays a decision on someone else's gated step   |
| POST /api/runs/{id}/approve, /reject   | Riposte.Approve                                                 |
| GET /api/runs, GET /api/playbooks      | Riposte.Read (or Run or Approve: acting needs seeing)          |
| GET /api/runs/{id}                     | Riposte.Read; or the function key alone for a run a machine     |
|                                        | caller started, because the relay follows the 202 Location with |
|                                        | the key it posted with and has no user to bring a token         |

Decisions and manual runs record the identity from the token (upn or name, and the object id), never anything from
the request body. A missing or invalid identity is a 401, a valid one without the role a 403; both say what is wrong
and never echo the token. RIPOSTE_AUTH_MODE=function_key turns the identity requirement off (a development stack
without an app registration)."""

from __future__ import annotations

import asyncio
import base64
import binascii
import json
import logging
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import TYPE_CHECKING, Any

import azure.functions as func

from shared.api.responses import json_response
from shared.settings import Settings, get_settings

if TYPE_CHECKING:
    from jwt import PyJWK

log = logging.getLogger("riposte.auth")

MACHINE_CALLER = "function-key"  # what a run or decision records when only the function key vouches for the caller
PRINCIPAL_HEADER = "x-ms-client-principal"
LOGIN = "https://login.microsoftonline.com"
MAX_DOCUMENT_BYTES = 1_048_576  # a JWKS is a few KB; a bigger answer is not one
FETCH_TIMEOUT_S = 10.0
FAILED_FETCH_BACKOFF_S = 10.0  # after a failed fetch, requests wait this long before trying the network again
MAX_TOKEN_BYTES = 16_384  # Entra access tokens are 1 to 3 KB; group overage keeps them well under this


class Role(StrEnum):
    RUN = "Riposte.Run"
    APPROVE = "Riposte.Approve"
    READ = "Riposte.Read"


READERS = frozenset({Role.READ, Role.RUN, Role.APPROVE})


@dataclass(frozen=True)
class Access:
    """What a route accepts: any one of `roles`; `machine_readable` lets the function key alone through, leaving the
    route to check that what it returns belongs to a machine caller."""

    roles: frozenset[Role]
    machine_readable: bool = False


# Keyed by function name (function_app.py). A test checks every HTTP route is here or in MACHINE_ROUTES.
ANALYST_ROUTES: dict[str, Access] = {
    "manual_run": Access(frozenset({Role.RUN})),
    "rollback": Access(frozenset({Role.RUN})),
    "approve": Access(frozenset({Role.APPROVE})),
    "reject": Access(frozenset({Role.APPROVE})),
    "runs": Access(READERS),
    "playbooks": Access(READERS),
    "run_status": Access(READERS, machine_readable=True),
}
MACHINE_ROUTES = frozenset({"incidents", "events", "defender_alert"})
ANONYMOUS_ROUTES = frozenset({"health", "openapi", "console"})  # the contract and the console's files are public


@dataclass(frozen=True)
class Principal:
    kind: str  # user | app | machine
    object_id: str = ""
    name: str = ""  # upn, preferred_username or display name
    roles: frozenset[str] = frozenset()
    source: str = "function-key"  # bearer | app-service-auth | function-key

    @property
    def label(self) -> str:
        """What a run or decision records, for people to read. Approval quorums and separation of duties go by
        `object_id`, never by this."""
        if self.kind == "machine":
            return MACHINE_CALLER
        who = self.name or ("app" if self.kind == "app" else "user")
        return f"{who} ({self.object_id})" if self.object_id else who


def _machine(settings: Settings) -> Principal:
    roles = frozenset(Role) if settings.auth_mode == "function_key" else frozenset()
    return Principal("machine", roles=frozenset(str(r) for r in roles))


class AuthFailure(Exception):
    """Why a caller is refused; becomes the JSON error with the matching WWW-Authenticate challenge."""

    def __init__(self, status: int, code: str, message: str, target: str = "Authorization") -> None:
        super().__init__(message)
        self.status, self.code, self.message, self.target = status, code, message, target

    def response(self) -> func.HttpResponse:
        headers: dict[str, str] = {}
        if self.status == 401:
            # RFC 6750 §3: no error attribute when no credentials came; invalid_token when they did not hold.
            error = "" if self.code == "AuthenticationRequired" else ', error="invalid_token"'
            headers["WWW-Authenticate"] = f'Bearer realm="riposte"{error}'
        elif self.status == 403:
            headers["WWW-Authenticate"] = 'Bearer realm="riposte", error="insufficient_scope"'
        elif self.code == "IdentityProviderUnavailable":
            headers["Retry-After"] = str(int(FAILED_FETCH_BACKOFF_S))
        body = {"error": {"code": self.code, "message": self.message, "target": self.target}}
        return json_response(body, self.status, headers)


def _invalid(message: str) -> AuthFailure:
    return AuthFailure(401, "InvalidToken", message)


# --- settings ------------------------------------------------------------------------------------------------------


def accepted_issuers(settings: Settings) -> tuple[str, ...]:
    if settings.auth_issuers:
        return settings.auth_issuers
    tenant = settings.auth_tenant_id
    return (f"https://sts.windows.net/{tenant}/", f"{LOGIN}/{tenant}/v2.0")


def metadata_url(settings: Settings) -> str:
    return settings.auth_metadata_url or f"{LOGIN}/{settings.auth_tenant_id}/v2.0/.well-known/openid-configuration"


def configuration_problem(settings: Settings) -> str | None:
    """Why Entra mode cannot validate anything, naming the setting; None when it can."""
    if settings.auth_mode != "entra":
        return None
    if not settings.auth_tenant_id:
        return "RIPOSTE_AUTH_TENANT_ID is not set: analyst routes need the Entra tenant whose tokens they accept."
    if not settings.auth_audience:
        return "RIPOSTE_AUTH_AUDIENCE is not set: analyst routes need the API app registration's client id."
    return None


# --- signing keys --------------------------------------------------------------------------------------------------


class KeysUnavailable(Exception):
    pass


Fetch = Callable[[str], dict[str, Any]]


def fetch_json(url: str, ca_bundle: str | None) -> dict[str, Any]:
    """GET a JSON document over https (urllib: nothing to import at cold start), bounded in size and time."""
    import ssl
    import urllib.request

    if not url.startswith("https://"):
        raise KeysUnavailable(f"{url} is not an https URL.")
    context = ssl.create_default_context(cafile=ca_bundle) if ca_bundle else ssl.create_default_context()
    request = urllib.request.Request(url, headers={"Accept": "application/json"})  # noqa: S310 - https only
    try:
        with urllib.request.urlopen(request, timeout=FETCH_TIMEOUT_S, context=context) as response:  # noqa: S310
            if not response.geturl().startswith("https://"):
                raise KeysUnavailable(f"{url} redirected away from https.")
            raw = response.read(MAX_DOCUMENT_BYTES + 1)
    except (OSError, ValueError) as exc:  # URLError, HTTPError, timeouts and TLS failures are all OSError
        raise KeysUnavailable(f"{url}: {exc}") from exc
    if len(raw) > MAX_DOCUMENT_BYTES:
        raise KeysUnavailable(f"{url} answered more than {MAX_DOCUMENT_BYTES} bytes.")
    try:
        document = json.loads(raw)
    except ValueError as exc:
        raise KeysUnavailable(f"{url} did not answer JSON.") from exc
    if not isinstance(document, dict):
        raise KeysUnavailable(f"{url} did not answer a JSON object.")
    return document


@dataclass
class SigningKeys:
    """The tenant's signing keys, from the OIDC metadata's jwks_uri. Fetched on first use and again after
    `max_age`, or when a token names a key we do not have (Entra rolls keys over), but then at most once per
    `min_refresh`: tokens with made-up key ids cannot make every request reach Entra. Thread-safe; one fetch at a
    time."""

    metadata_url: str
    fetch: Fetch
    max_age: float
    min_refresh: float
    clock: Callable[[], float] = time.monotonic
    keys: dict[str, PyJWK] = field(default_factory=dict)
    fetched_at: float | None = None
    fetches: int = 0
    _failed_at: float | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def get(self, kid: str) -> PyJWK | None:
        with self._lock:
            now = self.clock()
            stale = self.fetched_at is None or now - self.fetched_at >= self.max_age
            unknown = kid not in self.keys and (self.fetched_at is None or now - self.fetched_at >= self.min_refresh)
            if (stale or unknown) and not self._backing_off(now):
                self._refresh(now)
            if self.fetched_at is None:
                raise KeysUnavailable("The signing keys have not been fetched yet.")
            return self.keys.get(kid)

    def _backing_off(self, now: float) -> bool:
        return self._failed_at is not None and now - self._failed_at < FAILED_FETCH_BACKOFF_S

    def _refresh(self, now: float) -> None:
        from jwt import PyJWK
        from jwt.exceptions import InvalidKeyError, PyJWKError

        self.fetches += 1
        try:
            jwks_uri = self.fetch(self.metadata_url).get("jwks_uri")
            if not isinstance(jwks_uri, str):
                raise KeysUnavailable(f"{self.metadata_url} names no jwks_uri.")
            published = self.fetch(jwks_uri).get("keys")
            if not isinstance(published, list):
                raise KeysUnavailable(f"{jwks_uri} lists no keys.")
        except KeysUnavailable as exc:
            self._failed_at = now
            if self.fetched_at is None:
                raise
            log.warning("signing keys not refreshed, keeping the %d known: %s", len(self.keys), exc)
            return
        keys: dict[str, PyJWK] = {}
        for entry in published:
            # Only RSA signing keys: an "oct" (shared secret) entry would otherwise make HMAC possible.
            if not isinstance(entry, dict) or entry.get("kty") != "RSA" or entry.get("use", "sig") != "sig":
                continue
            try:
                keys[str(entry["kid"])] = PyJWK(entry)
            except (KeyError, InvalidKeyError, PyJWKError) as exc:
                log.warning("skipped an unusable signing key: %s", exc)
        self.keys, self.fetched_at, self._failed_at = keys, now, None


_KEY_CACHES: dict[tuple[str, str | None], SigningKeys] = {}
_KEY_CACHES_LOCK = threading.Lock()


def signing_keys(settings: Settings) -> SigningKeys:
    url = metadata_url(settings)
    with _KEY_CACHES_LOCK:
        cache = _KEY_CACHES.get((url, settings.ca_bundle))
        if cache is None:
            ca_bundle = settings.ca_bundle
            cache = _KEY_CACHES[(url, ca_bundle)] = SigningKeys(
                url,
                lambda u: fetch_json(u, ca_bundle),
                max_age=settings.auth_keys_max_age_seconds,
                min_refresh=settings.auth_keys_min_refresh_seconds,
            )
        return cache


# --- identities ----------------------------------------------------------------------------------------------------


def _first(claims: dict[str, Any], *names: str) -> str:
    for name in names:
        value = claims.get(name)
        if isinstance(value, str) and value:
            return value
    return ""


def _roles(value: Any) -> frozenset[str]:
    if isinstance(value, str):
        return frozenset({value})
    if isinstance(value, list):
        return frozenset(v for v in value if isinstance(v, str))
    return frozenset()


def validate_token(token: str, settings: Settings, keys: SigningKeys | None = None) -> Principal:
    """The principal a bearer token proves, or AuthFailure naming the first check it fails."""
    import jwt

    if len(token) > MAX_TOKEN_BYTES:
        raise _invalid(f"The bearer token is longer than {MAX_TOKEN_BYTES} bytes.")
    try:
        header = jwt.get_unverified_header(token)
    except jwt.exceptions.DecodeError:
        raise _invalid("The bearer token is not a JWT.") from None
    except jwt.exceptions.InvalidTokenError:  # PyJWT checks kid and crit while reading the header
        # Not echoed: PyJWT's message quotes the header, which is the caller's text.
        raise _invalid("The token's header is not valid: a kid that is not a string, or an unsupported crit.") from None
    algorithm = header.get("alg")
    if algorithm not in settings.auth_algorithms:
        accepted = ", ".join(settings.auth_algorithms)
        raise _invalid(f"The token's algorithm {str(algorithm)[:20]!r} is not accepted (accepted: {accepted}).")
    kid = header.get("kid")
    if not isinstance(kid, str) or not kid:
        raise _invalid("The token names no signing key (kid).")
    keys = keys or signing_keys(settings)
    try:
        key = keys.get(kid)
    except KeysUnavailable as exc:
        log.error("cannot fetch the signing keys: %s", exc)
        raise AuthFailure(
            503, "IdentityProviderUnavailable", "The tenant's signing keys cannot be fetched; try again shortly."
        ) from None
    if key is None:
        raise _invalid("The token is signed by a key the tenant does not publish.")
    try:
        claims: dict[str, Any] = jwt.decode(
            token,
            key.key,
            algorithms=list(settings.auth_algorithms),
            audience=list(settings.auth_audience),
            issuer=accepted_issuers(settings),
            leeway=settings.auth_clock_skew_seconds,
            options={"require": ["exp", "iat", "iss", "aud", "tid"]},
        )
    except jwt.exceptions.ExpiredSignatureError:
        raise _invalid("The token has expired.") from None
    except jwt.exceptions.ImmatureSignatureError:
        raise _invalid("The token is not valid yet (nbf or iat is in the future).") from None
    except jwt.exceptions.InvalidAudienceError:
        raise _invalid("The token's audience (aud) is not this API.") from None
    except jwt.exceptions.InvalidIssuerError:
        raise _invalid("The token's issuer (iss) is not trusted.") from None
    except jwt.exceptions.MissingRequiredClaimError as exc:
        raise _invalid(f"The token has no {exc.claim} claim.") from None
    except jwt.exceptions.InvalidSignatureError:
        raise _invalid("The token's signature does not verify.") from None
    except jwt.exceptions.InvalidTokenError as exc:
        raise _invalid(f"The token is not valid ({type(exc).__name__}).") from None
    if str(claims.get("tid", "")).lower() != str(settings.auth_tenant_id).lower():
        raise _invalid("The token was issued for another tenant (tid).")
    app_only = claims.get("idtyp") == "app" or not _first(claims, "scp", "upn", "preferred_username")
    return Principal(
        kind="app" if app_only else "user",
        object_id=_first(claims, "oid"),
        name=_first(claims, "upn", "preferred_username", "unique_name", "name", "azp", "appid"),
        roles=_roles(claims.get("roles")),
        source="bearer",
    )


# What App Service Authentication names the claims it maps (and the raw token names, which it may pass through).
_OID_CLAIMS = ("http://schemas.microsoft.com/identity/claims/objectidentifier", "oid")
_TENANT_CLAIMS = ("http://schemas.microsoft.com/identity/claims/tenantid", "tid")
_NAME_CLAIMS = (
    "preferred_username",
    "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/upn",
    "upn",
    "name",
    "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/name",
)
_ROLE_CLAIMS = ("roles", "http://schemas.microsoft.com/ws/2008/06/identity/claims/role")


def principal_from_app_service(header: str, settings: Settings) -> Principal:
    """The caller App Service Authentication vouches for: X-MS-CLIENT-PRINCIPAL, base64 JSON
    {auth_typ, claims: [{typ, val}], name_typ, role_typ}. Only called when the setting says that front door is on."""
    try:
        document = json.loads(base64.b64decode(header + "=" * (-len(header) % 4), validate=True))
        claims = [(str(c["typ"]), str(c["val"])) for c in document["claims"]]
    except (ValueError, binascii.Error, KeyError, TypeError):
        raise AuthFailure(401, "InvalidPrincipal", "X-MS-CLIENT-PRINCIPAL is not valid.", PRINCIPAL_HEADER) from None
    if str(document.get("auth_typ", "")).lower() != "aad":
        raise AuthFailure(401, "InvalidPrincipal", "The principal was not signed in with Entra ID.", PRINCIPAL_HEADER)

    def values(names: Iterable[str]) -> list[str]:
        wanted = {n.lower() for n in names}
        return [v for t, v in claims if t.lower() in wanted]

    if {t.lower() for t in values(_TENANT_CLAIMS)} != {str(settings.auth_tenant_id).lower()}:
        raise AuthFailure(401, "InvalidPrincipal", "The principal is not from this tenant.", PRINCIPAL_HEADER)
    audiences = values(["aud"])
    if audiences and not set(audiences) & set(settings.auth_audience):
        raise AuthFailure(401, "InvalidPrincipal", "The principal's token is not for this API.", PRINCIPAL_HEADER)
    role_type = str(document.get("role_typ") or "roles")
    name_type = str(document.get("name_typ") or "name")
    names = values([name_type, *_NAME_CLAIMS])
    oids = values(_OID_CLAIMS)
    return Principal(
        kind="user" if values(["scp", "http://schemas.microsoft.com/identity/claims/scope"]) else "app",
        object_id=oids[0] if oids else "",
        name=names[0] if names else "",
        roles=frozenset(values([role_type, *_ROLE_CLAIMS])),
        source="app-service-auth",
    )


def identify(req: func.HttpRequest, settings: Settings) -> Principal | None:
    """The Entra identity the request carries, None when it carries none; AuthFailure when it carries a bad one."""
    if settings.trust_app_service_auth:
        header = req.headers.get(PRINCIPAL_HEADER)
        if header:
            return principal_from_app_service(header, settings)
    authorization = req.headers.get("authorization")
    if authorization is None:
        return None
    scheme, _, token = authorization.strip().partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise _invalid("The Authorization header must be 'Bearer <token>'.")
    return validate_token(token.strip(), settings)


def _carries_identity(req: func.HttpRequest, settings: Settings) -> bool:
    return bool(
        req.headers.get("authorization") or (settings.trust_app_service_auth and req.headers.get(PRINCIPAL_HEADER))
    )


def _required(access: Access) -> str:
    return " or ".join(sorted(r.value for r in access.roles))


def check(req: func.HttpRequest, route: str) -> Principal:
    """The caller of analyst route `route` if allowed, else AuthFailure. May fetch signing keys (blocking)."""
    settings = get_settings()
    access = ANALYST_ROUTES[route]
    if settings.auth_mode == "function_key":
        return _machine(settings)
    if access.machine_readable and not _carries_identity(req, settings):
        return _machine(settings)
    problem = configuration_problem(settings)
    if problem is not None:
        log.error("analyst routes refused: %s", problem)
        raise AuthFailure(503, "AuthenticationNotConfigured", problem, "settings")
    principal = identify(req, settings)
    if principal is None:
        hint = ""
        if req.headers.get(PRINCIPAL_HEADER):
            hint = " X-MS-CLIENT-PRINCIPAL is ignored: App Service Authentication is not trusted here."
        raise AuthFailure(
            401,
            "AuthenticationRequired",
            f"This route needs an Entra ID identity with the app role {_required(access)}: send "
            f"'Authorization: Bearer <token>' as well as the function key.{hint}",
        )
    if not principal.roles & {r.value for r in access.roles}:
        held = ", ".join(sorted(principal.roles)) or "none"
        raise AuthFailure(
            403, "MissingRole", f"This route needs the app role {_required(access)}; the caller holds: {held}.", "roles"
        )
    return principal


def _refused(route: str, failure: AuthFailure) -> func.HttpResponse:
    # A security signal worth keeping (who keeps trying what); the message names the problem, never the token.
    log.warning("refused %s: %s %s %s", route, failure.status, failure.code, failure.message)
    return failure.response()


async def authorise(req: func.HttpRequest, route: str) -> Principal | func.HttpResponse:
    """check() for async routes: a token's validation may fetch keys, so it runs off the event loop."""
    try:
        if req.headers.get("authorization") or req.headers.get(PRINCIPAL_HEADER):
            return await asyncio.to_thread(check, req, route)
        return check(req, route)
    except AuthFailure as failure:
        return _refused(route, failure)


def authorise_sync(req: func.HttpRequest, route: str) -> Principal | func.HttpResponse:
    try:
        return check(req, route)
    except AuthFailure as failure:
        return _refused(route, failure)


def may_read_run(principal: Principal, requested_by: str) -> func.HttpResponse | None:
    """None when `principal` may read a run `requested_by` started. The function key alone reads only runs a machine
    caller started (Event Grid deliveries record no requester); an analyst's run needs an identity."""
    if principal.kind != "machine" or principal.roles or requested_by in ("", MACHINE_CALLER):
        return None
    return AuthFailure(
        401,
        "AuthenticationRequired",
        f"An analyst started this run: reading it needs an Entra ID identity with the app role "
        f"{_required(ANALYST_ROUTES['run_status'])}.",
    ).response()
