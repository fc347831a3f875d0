"""The Microsoft identity platform's OpenID Connect discovery for the emulated tenant, and tokens for Riposte's API.

GET  /{tenant}/v2.0/.well-known/openid-configuration   the v2 metadata (and /{tenant}/.well-known/... for v1)
GET  /{tenant}/discovery/v2.0/keys                     the JWKS (also /{tenant}/discovery/keys)
POST /_admin/tokens                                    mints an access token, good or deliberately bad (below)
POST /_admin/signing-keys/rotate                       publishes a new signing key (old ones stay unless retired)

These are the tokens an analyst or a client app brings to Riposte: RS256, signed with keys generated when the server
starts and published in the JWKS, with Entra's real issuers (https://login.microsoftonline.com/{tid}/v2.0 and
https://sts.windows.net/{tid}/), so Riposte validates them exactly as it would Entra's; only the metadata URL
differs. They have nothing to do with identity.py's managed-identity tokens, which the emulated APIs accept.

POST /_admin/tokens takes a JSON object, every field optional:
  kind       "user" (default) or "app" (an app-only token: idtyp app, no upn)
  user       a tenant user's object id or UPN; its oid, upn and name go into the token (default: a SOC analyst)
  version    "2.0" (default) or "1.0": the issuer and audience forms Entra uses for each
  lifetime   seconds until exp (default 3600); negative gives a token that has already expired
  signing    valid (default) | none (alg none, no signature) | other-key (a key the JWKS does not publish, its own
             kid) | other-key-same-kid (another key claiming the published kid) | hs256-public-key (HMAC with the
             published public key as the secret) | tampered (validly signed, then the payload altered)
  kid        the key id the header names, in place of the signing key's own
  roles, aud, iss, tid, oid, sub, upn, preferred_username, unique_name, name, appid, azp, scp, idtyp, exp, nbf, iat:
             claim values that replace the defaults
  claims     any further claims; a null value removes a claim
The answer: {"access_token", "token_type": "Bearer", "expires_on", "header", "claims"}."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
import uuid
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from local.cloud.errors import AdminError, LoginError
from local.cloud.provider import Provider, route
from local.cloud.state import Cloud

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric.rsa import RSAPrivateKey

LOGIN = "https://login.microsoftonline.com"
# Riposte's API app registration in the emulated tenant (a tenant document may name its own as tenant.riposteApi).
DEFAULT_API_CLIENT_ID = "7d3e9a51-2c4b-4f6e-8a1d-5b0c9e8f7a62"
APP_ROLES = ("Riposte.Run", "Riposte.Approve", "Riposte.Read")
TOKEN_LIFETIME_S = 3600
SIGNING_MODES = ("valid", "none", "other-key", "other-key-same-kid", "hs256-public-key", "tampered")
CLAIM_FIELDS = (
    "roles",
    "aud",
    "iss",
    "tid",
    "oid",
    "sub",
    "upn",
    "preferred_username",
    "unique_name",
    "name",
    "appid",
    "azp",
    "scp",
    "idtyp",
    "exp",
    "nbf",
    "iat",
)
OPTION_FIELDS = ("kind", "user", "version", "lifetime", "signing", "kid", "claims")


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _b64_int(value: int) -> str:
    return _b64(value.to_bytes((value.bit_length() + 7) // 8, "big"))


def _json_segment(value: dict[str, Any]) -> str:
    return _b64(json.dumps(value, separators=(",", ":")).encode())


@dataclass
class SigningKey:
    private: RSAPrivateKey
    kid: str

    @classmethod
    def generate(cls) -> SigningKey:
        from cryptography.hazmat.primitives import serialization
        from cryptography.hazmat.primitives.asymmetric import rsa

        private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        der = private.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        # Entra's kids are certificate thumbprints; a thumbprint of the public key serves the same purpose.
        return cls(private, _b64(hashlib.sha1(der, usedforsecurity=False).digest()))

    def sign(self, signing_input: bytes) -> bytes:
        from cryptography.hazmat.primitives import hashes
        from cryptography.hazmat.primitives.asymmetric import padding

        return self.private.sign(signing_input, padding.PKCS1v15(), hashes.SHA256())

    def public_pem(self) -> bytes:
        from cryptography.hazmat.primitives import serialization

        return self.private.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )

    def jwk(self, issuer: str) -> dict[str, Any]:
        numbers = self.private.public_key().public_numbers()
        return {
            "kty": "RSA",
            "use": "sig",
            "kid": self.kid,
            "x5t": self.kid,
            "n": _b64_int(numbers.n),
            "e": _b64_int(numbers.e),
            "issuer": issuer,
        }


@dataclass
class KeyRing:
    """The published keys (the newest signs) and, made on first use, one the JWKS never shows."""

    published: list[SigningKey] = field(default_factory=list)
    _outsider: SigningKey | None = None

    @property
    def current(self) -> SigningKey:
        if not self.published:
            self.published.append(SigningKey.generate())
        return self.published[-1]

    @property
    def outsider(self) -> SigningKey:
        if self._outsider is None:
            self._outsider = SigningKey.generate()
        return self._outsider

    def rotate(self, *, retire: bool) -> SigningKey:
        key = SigningKey.generate()
        self.published = [key] if retire else [*self.published, key]
        return key


class TokenRequestError(ValueError):
    """A mint request the endpoint cannot honour; answered 400 with this message."""


def issuers(tenant_id: str) -> dict[str, str]:
    return {"2.0": f"{LOGIN}/{tenant_id}/v2.0", "1.0": f"https://sts.windows.net/{tenant_id}/"}


def api_registration(doc: dict[str, Any]) -> dict[str, str]:
    """Riposte's API app registration: its client id (the v2 audience) and Application ID URI (the v1 audience)."""
    api = (doc.get("tenant") or {}).get("riposteApi") or {}
    client_id = str(api.get("clientId") or DEFAULT_API_CLIENT_ID)
    return {"clientId": client_id, "applicationIdUri": str(api.get("applicationIdUri") or f"api://{client_id}")}


def _find_user(doc: dict[str, Any], wanted: str) -> dict[str, Any]:
    for user in (doc.get("graph") or {}).get("users") or []:
        if wanted.lower() in (str(user.get("id", "")).lower(), str(user.get("userPrincipalName", "")).lower()):
            return dict(user)
    raise TokenRequestError(f"No user '{wanted}' in the tenant (give an object id or a userPrincipalName).")


def token_claims(doc: dict[str, Any], spec: dict[str, Any], now: float) -> dict[str, Any]:
    """The claims Entra would put in an access token for Riposte's API, then the request's overrides."""
    unknown = sorted(set(spec) - set(CLAIM_FIELDS) - set(OPTION_FIELDS))
    if unknown:
        raise TokenRequestError(f"Unknown field(s): {', '.join(unknown)}.")
    tenant = doc.get("tenant") or {}
    tenant_id = str(tenant.get("id", ""))
    kind = spec.get("kind", "user")
    version = spec.get("version", "2.0")
    if kind not in ("user", "app"):
        raise TokenRequestError("kind must be 'user' or 'app'.")
    if version not in ("2.0", "1.0"):
        raise TokenRequestError("version must be '2.0' or '1.0'.")
    lifetime = spec.get("lifetime", TOKEN_LIFETIME_S)
    if isinstance(lifetime, bool) or not isinstance(lifetime, int | float):
        raise TokenRequestError("lifetime must be a number of seconds.")
    roles = spec.get("roles", [])
    if not isinstance(roles, list) or not all(isinstance(r, str) for r in roles):
        raise TokenRequestError("roles must be a list of strings.")
    api = api_registration(doc)
    # An expired token was issued an hour before it expired, as a real one would have been.
    issued = int(now) if lifetime > 0 else int(now + lifetime - TOKEN_LIFETIME_S)
    client_app = str(uuid.uuid5(uuid.NAMESPACE_URL, f"riposte:{tenant_id}:client:{kind}"))
    claims: dict[str, Any] = {
        "aud": api["clientId"] if version == "2.0" else api["applicationIdUri"],
        "iss": issuers(tenant_id)[version],
        "iat": issued,
        "nbf": issued,
        "exp": int(now + lifetime),
        "tid": tenant_id,
        "ver": version,
        "uti": _b64(uuid.uuid4().bytes),
    }
    if kind == "user":
        if spec.get("user"):
            found = _find_user(doc, str(spec["user"]))
            oid, upn, name = str(found["id"]), str(found["userPrincipalName"]), str(found.get("displayName", ""))
        else:
            upn = f"soc.analyst@{tenant.get('domain', 'contoso.com')}"
            oid, name = str(uuid.uuid5(uuid.NAMESPACE_URL, f"riposte:{tenant_id}:user:{upn}")), "SOC Analyst"
        claims.update(oid=oid, sub=oid, name=name, scp="access_as_user")
        if version == "2.0":
            claims.update(preferred_username=upn, azp=client_app)
        else:
            claims.update(upn=upn, unique_name=upn, appid=client_app)
    else:
        oid = str(uuid.uuid5(uuid.NAMESPACE_URL, f"riposte:{tenant_id}:servicePrincipal:{client_app}"))
        claims.update(oid=oid, sub=oid, idtyp="app")
        claims["azp" if version == "2.0" else "appid"] = client_app
    if roles:
        claims["roles"] = roles
    claims.update({name: spec[name] for name in CLAIM_FIELDS if name in spec})
    extra = spec.get("claims") or {}
    if not isinstance(extra, dict):
        raise TokenRequestError("claims must be a JSON object.")
    for name, value in extra.items():
        if value is None:
            claims.pop(name, None)
        else:
            claims[name] = value
    return claims


def encode(claims: dict[str, Any], keys: KeyRing, signing: str, kid: str | None = None) -> tuple[str, dict[str, Any]]:
    """A compact JWS, signed (or not) the way `signing` asks. Written out by hand so the bad forms are possible."""
    if signing not in SIGNING_MODES:
        raise TokenRequestError(f"signing must be one of {', '.join(SIGNING_MODES)}.")
    key = keys.current
    if signing == "none":
        header: dict[str, Any] = {"alg": "none", "typ": "JWT"}
        return f"{_json_segment(header)}.{_json_segment(claims)}.", header
    if signing == "hs256-public-key":
        header = {"alg": "HS256", "typ": "JWT", "kid": kid or key.kid}
        signing_input = f"{_json_segment(header)}.{_json_segment(claims)}".encode()
        mac = hmac.new(key.public_pem(), signing_input, hashlib.sha256).digest()
        return f"{signing_input.decode()}.{_b64(mac)}", header
    signer = keys.outsider if signing.startswith("other-key") else key
    kid = kid or (key.kid if signing in ("valid", "tampered", "other-key-same-kid") else signer.kid)
    header = {"alg": "RS256", "typ": "JWT", "kid": kid, "x5t": kid}
    signing_input = f"{_json_segment(header)}.{_json_segment(claims)}".encode()
    signature = _b64(signer.sign(signing_input))
    if signing == "tampered":
        altered = {**claims, "roles": [*APP_ROLES, "Riposte.Admin"]}  # what a forger would want: more roles
        return f"{_json_segment(header)}.{_json_segment(altered)}.{signature}", header
    return f"{signing_input.decode()}.{signature}", header


def _tenant_matches(doc: dict[str, Any], tenant: str) -> bool:
    facts = doc.get("tenant") or {}
    return tenant.lower() in (str(facts.get("id", "")).lower(), str(facts.get("domain", "")).lower())


def _invalid_tenant(tenant: str) -> LoginError:
    # What Entra answers for a tenant it does not know.
    return LoginError(
        400,
        "invalid_tenant",
        f"AADSTS90002: Tenant '{tenant}' not found. Check to make sure you have the correct tenant ID and are "
        "signing into the correct cloud.",
        [90002],
    )


class LoginProvider(Provider):
    """login.microsoftonline.com for the emulated tenant: OpenID Connect metadata and the signing keys, plus the
    admin API's token minting and key rotation."""

    service = "login"
    authenticated = False

    def __init__(self, cloud: Cloud) -> None:
        super().__init__(cloud)
        self.keys = KeyRing()
        self.keys.current  # noqa: B018 - generate the first key at start, not on the first request
        cloud.signing_keys = self.keys  # the interactive sign-in (signin.py) signs with the same keys

    def metadata(self, version: str) -> dict[str, Any]:
        tenant_id = str((self.cloud.doc.get("tenant") or {}).get("id", ""))
        base = f"{self.cloud.base_url}/{tenant_id}"
        suffix = "/v2.0" if version == "2.0" else ""
        keys_path = "discovery/v2.0/keys" if version == "2.0" else "discovery/keys"
        return {
            "issuer": issuers(tenant_id)[version],
            "authorization_endpoint": f"{base}/oauth2{suffix}/authorize",
            "token_endpoint": f"{base}/oauth2{suffix}/token",
            "jwks_uri": f"{base}/{keys_path}",
            "response_types_supported": ["code", "id_token", "code id_token", "id_token token"],
            "subject_types_supported": ["pairwise"],
            "id_token_signing_alg_values_supported": ["RS256"],
            "token_endpoint_auth_methods_supported": ["client_secret_post", "private_key_jwt", "client_secret_basic"],
            "scopes_supported": ["openid", "profile", "email", "offline_access"],
            "claims_supported": ["sub", "iss", "aud", "exp", "iat", "nbf", "name", "oid", "tid", "ver", "roles"],
            "tenant_region_scope": "EU",
            "cloud_instance_name": "microsoftonline.com",
        }

    @route("GET", "/{tenant}/v2.0/.well-known/openid-configuration", version="2.0")
    @route("GET", "/{tenant}/.well-known/openid-configuration", version="1.0")
    async def openid_configuration(self, request: Request, tenant: str, version: str) -> Response:
        if not _tenant_matches(self.cloud.doc, tenant):
            raise _invalid_tenant(tenant)
        return JSONResponse(self.metadata(version))

    @route("GET", "/{tenant}/discovery/v2.0/keys")
    @route("GET", "/{tenant}/discovery/keys")
    async def jwks(self, request: Request, tenant: str) -> Response:
        if tenant.lower() not in ("common", "organizations") and not _tenant_matches(self.cloud.doc, tenant):
            raise _invalid_tenant(tenant)
        tenant_id = str((self.cloud.doc.get("tenant") or {}).get("id", ""))
        issuer = issuers(tenant_id)["2.0"]
        return JSONResponse({"keys": [k.jwk(issuer) for k in self.keys.published]})

    @route("POST", "/_admin/tokens", service="admin")
    async def mint(self, request: Request) -> Response:
        try:
            spec = json.loads(await request.body() or b"{}")
        except ValueError as exc:
            raise AdminError(400, f"The body is not valid JSON: {exc}") from exc
        if not isinstance(spec, dict):
            raise AdminError(400, "The body must be a JSON object.")
        try:
            claims = token_claims(self.cloud.doc, spec, time.time())
            kid = spec.get("kid")
            if kid is not None and not isinstance(kid, str):
                raise TokenRequestError("kid must be a string.")
            token, header = encode(claims, self.keys, str(spec.get("signing", "valid")), kid)
        except TokenRequestError as exc:
            raise AdminError(400, str(exc)) from exc
        return JSONResponse(
            {
                "access_token": token,
                "token_type": "Bearer",
                "expires_on": claims.get("exp"),
                "header": header,
                "claims": claims,
            }
        )

    @route("POST", "/_admin/signing-keys/rotate", service="admin")
    async def rotate(self, request: Request) -> Response:
        retire = request.query_params.get("retire", "").lower() == "true"
        key = self.keys.rotate(retire=retire)
        return JSONResponse({"kid": key.kid, "published": [k.kid for k in self.keys.published]})
