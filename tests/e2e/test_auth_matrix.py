"""Authentication and authorisation over HTTP through the local host: every route against every kind of caller, with
tokens minted by the emulated Entra ID (local/cloud/oidc.py) and validated by Riposte against its published keys.

Machine routes take the function key alone; analyst routes take the key and an Entra identity holding the route's
app role (shared/api/auth.py has the table). The matrix asserts the exact status, error code and the problem the
message names for each cell; no response ever carries the token."""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from local.stack import DEMO_TENANT
from tests.conftest import CloudHandle
from tests.e2e.conftest import FUNCTION_KEY, Host, wait_for_run

SAMPLES = Path(__file__).resolve().parents[2] / "local" / "samples"
RUN, APPROVE, READ = "Riposte.Run", "Riposte.Approve", "Riposte.Read"
ALL_ROLES = (RUN, APPROVE, READ)
OTHER_TENANT = "0b1c2d3e-4f5a-4b6c-8d7e-9f0a1b2c3d4e"
HANDSHAKE = [
    {
        "id": "auth-matrix-handshake",
        "topic": "local",
        "subject": "",
        "eventTime": "2026-01-01T00:00:00Z",
        "eventType": "Microsoft.EventGrid.SubscriptionValidationEvent",
        "data": {"validationCode": "auth-matrix-code"},
        "dataVersion": "1",
        "metadataVersion": "1",
    }
]


# --- tokens --------------------------------------------------------------------------------------------------------


@dataclass
class Tokens:
    """Mints through POST /_admin/tokens; one token per distinct request, so the matrix stays quick."""

    admin: httpx.Client
    minted: dict[str, dict[str, Any]] = field(default_factory=dict)

    def mint(self, **spec: Any) -> dict[str, Any]:
        key = json.dumps(spec, sort_keys=True)
        if key not in self.minted:
            response = self.admin.post("/tokens", json=spec)
            response.raise_for_status()
            self.minted[key] = response.json()
        return self.minted[key]

    def token(self, **spec: Any) -> str:
        token: str = self.mint(**spec)["access_token"]
        return token


@pytest.fixture(scope="module")
def tokens(cloud_server: Any) -> Iterator[Tokens]:
    with httpx.Client(
        base_url=f"{cloud_server.url}/_admin", verify=str(cloud_server.certs.ca_path), timeout=30
    ) as admin:
        yield Tokens(admin)


def principal_header(roles: tuple[str, ...]) -> str:
    """What App Service Authentication would send, written by the caller instead: it must count for nothing."""
    claims = [
        {"typ": "http://schemas.microsoft.com/identity/claims/tenantid", "val": DEMO_TENANT},
        {"typ": "http://schemas.microsoft.com/identity/claims/objectidentifier", "val": "forged-oid"},
        {"typ": "preferred_username", "val": "mallory@contoso.com"},
        {"typ": "scp", "val": "access_as_user"},
    ] + [{"typ": "roles", "val": r} for r in roles]
    document = {"auth_typ": "aad", "claims": claims, "name_typ": "preferred_username", "role_typ": "roles"}
    return base64.b64encode(json.dumps(document).encode()).decode()


# --- routes --------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Route:
    name: str
    method: str
    path: str  # {machine_run} and {analyst_run} are filled from the module's runs
    kind: str  # anonymous | machine | analyst
    roles: tuple[str, ...] = ()  # the app roles the route accepts
    ok: tuple[int, ...] = (200,)  # what the right caller gets
    ok_code: str | None = None  # the error code, when the right caller's answer is a refusal on the merits
    json: Any = None
    headers: dict[str, str] = field(default_factory=dict)
    params: dict[str, str] = field(default_factory=dict)
    machine_readable: bool = False  # the function key alone reads it

    @property
    def least_role(self) -> str:
        return READ if READ in self.roles else self.roles[0]

    @property
    def other_roles(self) -> list[str]:
        return [r for r in ALL_ROLES if r not in self.roles]


def _sample(name: str) -> Any:
    return json.loads((SAMPLES / name).read_text(encoding="utf-8"))


ROUTES = [
    Route("health", "GET", "/api/health", "anonymous"),
    Route(
        "incidents",
        "POST",
        "/api/incidents",
        "machine",
        ok=(200, 202),
        json=_sample("sentinel-incident-compromised-account.json"),
        headers={"Idempotency-Key": "auth-matrix-incident"},
        params={"dryRun": "true"},
    ),
    Route(
        "events", "POST", "/api/events", "machine", json=HANDSHAKE, headers={"aeg-event-type": "SubscriptionValidation"}
    ),
    Route(
        "defender_alert",
        "POST",
        "/runtime/webhooks/eventgrid",
        "machine",
        json=HANDSHAKE,
        headers={"aeg-event-type": "SubscriptionValidation"},
        params={"functionName": "defender_alert"},
    ),
    Route(
        "manual_run",
        "POST",
        "/api/playbooks/compromised-account/runs",
        "analyst",
        roles=(RUN,),
        ok=(200, 202),
        json={"incident": _sample("sentinel-incident-compromised-account.json"), "dryRun": True},
        headers={"Idempotency-Key": "auth-matrix-manual"},
    ),
    Route(
        "approve",
        "POST",
        "/api/runs/{machine_run}/approve",
        "analyst",
        roles=(APPROVE,),
        ok=(409,),
        ok_code="NothingAwaitsApproval",
        json={"step": "disable.0"},
    ),
    Route(
        "reject",
        "POST",
        "/api/runs/{machine_run}/reject",
        "analyst",
        roles=(APPROVE,),
        ok=(409,),
        ok_code="NothingAwaitsApproval",
        json={"comment": "matrix"},
    ),
    Route("rollback", "POST", "/api/runs/{machine_run}/rollback", "analyst", roles=(RUN,), ok=(409,), ok_code="DryRun"),
    Route("runs", "GET", "/api/runs", "analyst", roles=ALL_ROLES),
    Route("playbooks", "GET", "/api/playbooks", "analyst", roles=ALL_ROLES),
    Route(
        "run_status(machine run)",
        "GET",
        "/api/runs/{machine_run}",
        "analyst",
        roles=ALL_ROLES,
        ok=(200, 202),
        machine_readable=True,
    ),
    Route("run_status(analyst run)", "GET", "/api/runs/{analyst_run}", "analyst", roles=ALL_ROLES, ok=(200, 202)),
]


@dataclass(frozen=True)
class Expect:
    status: int
    code: str | None = None  # the error code; None for a success
    says: str = ""  # what the message must name


def _ok(route: Route) -> Expect:
    return Expect(route.ok[0] if len(route.ok) == 1 else 0, route.ok_code)


HOST_401 = Expect(401, "Unauthorized", "x-functions-key")


def _bad_token(says: str) -> Callable[[Route], Expect]:
    def expect(route: Route) -> Expect:
        return _ok(route) if route.kind != "analyst" else Expect(401, "InvalidToken", says)

    return expect


@dataclass(frozen=True)
class Case:
    """A kind of caller: the headers it sends (given the route) and what it must get on each kind of route."""

    name: str
    headers: Callable[[Route, Tokens], dict[str, str]]
    expect: Callable[[Route], Expect]


def _key(**extra: str) -> dict[str, str]:
    return {"x-functions-key": FUNCTION_KEY, **extra}


def _bearer(token: str, key: bool = True) -> dict[str, str]:
    headers = {"authorization": f"Bearer {token}"}
    return _key(**headers) if key else headers


def _right(route: Route, t: Tokens, **spec: Any) -> dict[str, str]:
    return _bearer(t.token(roles=[route.least_role] if route.roles else [], **spec))


def _key_only(route: Route) -> Expect:
    if route.kind != "analyst" or route.machine_readable:
        return _ok(route)
    if route.name == "run_status(analyst run)":  # the route lets the key through, the run does not
        return Expect(401, "AuthenticationRequired", "An analyst started this run")
    return Expect(401, "AuthenticationRequired", "Entra ID identity")


def _forged(route: Route) -> Expect:
    expect = _key_only(route)  # the header counts for nothing: as if it were not there
    if expect.code is not None and route.name != "run_status(analyst run)":
        return Expect(401, "AuthenticationRequired", "X-MS-CLIENT-PRINCIPAL is ignored")
    return expect


def _missing_role(route: Route) -> Expect:
    if route.kind != "analyst":
        return _ok(route)
    return Expect(403, "MissingRole", route.least_role)


def _anyone(route: Route) -> Expect:
    return _ok(route) if route.kind == "anonymous" else HOST_401


CASES = [
    Case("no key", lambda r, t: {}, _anyone),
    Case("wrong key", lambda r, t: {**_bearer(t.token(roles=list(ALL_ROLES))), "x-functions-key": "wrong"}, _anyone),
    Case("token without key", lambda r, t: _bearer(t.token(roles=list(ALL_ROLES)), key=False), _anyone),
    Case("key without token", lambda r, t: _key(), _key_only),
    Case("wrong audience", lambda r, t: _right(r, t, aud="api://someone-else"), _bad_token("audience")),
    Case(
        "wrong issuer",
        lambda r, t: _right(r, t, iss=f"https://login.microsoftonline.com/{OTHER_TENANT}/v2.0"),
        _bad_token("issuer"),
    ),
    Case("other tenant", lambda r, t: _right(r, t, tid=OTHER_TENANT), _bad_token("another tenant")),
    Case("expired", lambda r, t: _right(r, t, lifetime=-3600), _bad_token("expired")),
    Case("not yet valid", lambda r, t: _right(r, t, nbf=int(time.time()) + 3600), _bad_token("not valid yet")),
    Case("unsigned (alg none)", lambda r, t: _right(r, t, signing="none"), _bad_token("'none' is not accepted")),
    Case(
        "HS256 with the public key",
        lambda r, t: _right(r, t, signing="hs256-public-key"),
        _bad_token("'HS256' is not accepted"),
    ),
    Case("signed by another key", lambda r, t: _right(r, t, signing="other-key"), _bad_token("does not publish")),
    Case(
        "another key, published kid",
        lambda r, t: _right(r, t, signing="other-key-same-kid"),
        _bad_token("signature does not verify"),
    ),
    Case("tampered payload", lambda r, t: _right(r, t, signing="tampered"), _bad_token("signature does not verify")),
    Case("no exp claim", lambda r, t: _right(r, t, claims={"exp": None}), _bad_token("no exp claim")),
    Case("not a JWT", lambda r, t: _bearer("not-a-jwt"), _bad_token("not a JWT")),
    Case("basic scheme", lambda r, t: _key(authorization="Basic dXNlcjpwYXNz"), _bad_token("Bearer <token>")),
    Case("missing the role", lambda r, t: _bearer(t.token(roles=r.other_roles)), _missing_role),
    Case(
        "forged principal header", lambda r, t: _key(**{"x-ms-client-principal": principal_header(ALL_ROLES)}), _forged
    ),
    Case("right role", lambda r, t: _right(r, t), _ok),
    Case("right role, v1 token", lambda r, t: _right(r, t, version="1.0"), _ok),
    Case("right role, app-only token", lambda r, t: _right(r, t, kind="app"), _ok),
]


# --- the runs the run routes act on --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Runs:
    machine_run: str  # started by the function key (the relay), a dry run
    analyst_run: str  # started by an analyst's manual run, a dry run


@pytest.fixture(scope="module")
def runs(host_url: str, tokens: Tokens) -> Runs:
    with httpx.Client(base_url=host_url, headers=_key(), timeout=30) as machine:
        answer = machine.post(
            "/api/incidents",
            json=_sample("sentinel-incident-compromised-account.json"),
            params={"dryRun": "true"},
            headers={"Idempotency-Key": "auth-matrix-machine-run"},
        )
        assert answer.status_code in (200, 202), answer.text
        machine_run = answer.json()["runs"][0]["id"]
    analyst = _bearer(tokens.token(roles=[RUN, READ]))
    with httpx.Client(base_url=host_url, headers=analyst, timeout=30) as client:
        answer = client.post(
            "/api/playbooks/malicious-ip/runs",
            json={"entities": [{"Type": "ip", "Address": "203.0.113.77"}], "dryRun": True},
            headers={"Idempotency-Key": "auth-matrix-analyst-run"},
        )
        assert answer.status_code in (200, 202), answer.text
        analyst_run = answer.json()["runs"][0]["id"]
    return Runs(machine_run, analyst_run)


def call(host_url: str, route: Route, headers: dict[str, str], runs: Runs) -> httpx.Response:
    path = route.path.format(machine_run=runs.machine_run, analyst_run=runs.analyst_run)
    with httpx.Client(base_url=host_url, timeout=30) as client:
        return client.request(
            route.method, path, json=route.json, params=route.params, headers={**route.headers, **headers}
        )


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
@pytest.mark.parametrize("route", ROUTES, ids=[r.name for r in ROUTES])
def test_auth_matrix(host_url: str, tokens: Tokens, runs: Runs, route: Route, case: Case) -> None:
    headers = case.headers(route, tokens)
    expected = case.expect(route)
    response = call(host_url, route, headers, runs)
    if expected.code is None:  # the caller is let through: the route answers on the merits
        assert response.status_code in (route.ok if expected.status == 0 else (expected.status,)), response.text
        return
    assert response.status_code == expected.status, response.text
    error = response.json()["error"]
    assert error["code"] == expected.code, error
    assert expected.says in error["message"], error
    if expected.status in (401, 403) and expected.code != "Unauthorized":  # the app's refusals (not the host's)
        assert response.headers["WWW-Authenticate"].startswith("Bearer")
    credential = headers.get("authorization", "").partition(" ")[2]
    if credential:  # a refusal never echoes the token
        assert credential not in response.text and all(credential not in v for v in response.headers.values())


# --- beyond the matrix ---------------------------------------------------------------------------------------------


def test_machine_routes_take_the_function_key_alone_and_the_relay_polls_with_it(host_url: str) -> None:
    with httpx.Client(base_url=host_url, headers=_key(), timeout=30) as relay:
        posted = relay.post(
            "/api/incidents",
            json=_sample("sentinel-incident-compromised-vm.json"),
            params={"dryRun": "true"},
            headers={"Idempotency-Key": "auth-relay-vm"},
        )
        assert posted.status_code in (200, 202), posted.text
        run = wait_for_run(relay, posted.headers["Location"])  # the Logic Apps async pattern, key only
        assert run["requestedBy"] == "function-key" and run["dryRun"] is True
        delivered = relay.post(
            "/api/events",
            json=_sample("defender-alert-eventgrid.json"),
            params={"dryRun": "true"},
            headers={"aeg-event-type": "Notification"},
        )
        assert delivered.status_code == 202, delivered.text
        [event_run] = delivered.json()["incidents"][0]["runs"]
        assert relay.get(f"/api/runs/{event_run['id']}").status_code in (200, 202)
        # and nothing an analyst does
        assert relay.get("/api/runs").status_code == 401
        assert relay.post(f"/api/runs/{run['id']}/rollback").status_code == 401


def _label(minted: dict[str, Any]) -> str:
    claims = minted["claims"]
    return f"{claims['preferred_username']} ({claims['oid']})"


def test_requester_and_approver_come_from_the_token(
    host_url: str, tokens: Tokens, cloud: CloudHandle, client: httpx.Client
) -> None:
    runner = tokens.mint(user="megan.bowen@contoso.com", roles=[RUN, READ])
    approver = tokens.mint(user="johanna.lorenz@contoso.com", roles=[APPROVE])
    with httpx.Client(base_url=host_url, headers=_bearer(runner["access_token"]), timeout=30) as megan:
        started = megan.post(
            "/api/playbooks/compromised-vm/runs",
            json={"incident": _sample("sentinel-incident-compromised-vm.json"), "requestedBy": "mallory@contoso.com"},
            headers={"Idempotency-Key": "auth-identity-vm"},
        )
        assert started.status_code == 202, started.text
        location = started.headers["Location"]
        run = wait_for_run(megan, location, until=lambda r: any(s["status"] == "awaiting_approval" for s in r["steps"]))
    assert run["requestedBy"] == _label(runner) and "mallory" not in json.dumps(run)
    # the relay's key alone does not read an analyst's run
    with httpx.Client(base_url=host_url, headers=_key(), timeout=30) as relay:
        refused = relay.get(location)
        assert refused.status_code == 401 and "analyst started this run" in refused.json()["error"]["message"]

    with httpx.Client(base_url=host_url, headers=_bearer(approver["access_token"]), timeout=30) as johanna:
        body = {"step": "isolate.0", "comment": "not ours", "by": "mallory@contoso.com", "decidedBy": "mallory"}
        decided = johanna.post(f"/api/runs/{run['id']}/reject", json=body)
        assert decided.status_code == 200, decided.text
        isolate = next(s for s in decided.json()["steps"] if s["id"] == "isolate.0")
        [decision] = isolate["approval"]["decisions"]
        assert decision["by"] == _label(approver) and decision["decision"] == "reject"
        # the same identity cannot decide twice, whatever the body claims
        again = johanna.post(f"/api/runs/{run['id']}/reject", json={**body, "by": "someone.else@contoso.com"})
        assert again.status_code == 409 and again.json()["error"]["code"] == "AlreadyDecided"
    run = wait_for_run(client, location, timeout=60)
    isolate = next(s for s in run["steps"] if s["id"] == "isolate.0")
    assert isolate["status"] == "skipped" and _label(approver) in isolate["reason"]
    assert "mallory" not in json.dumps(run)


def test_signing_keys_are_fetched_once_not_per_request(host_url: str, tokens: Tokens, cloud_server: Any) -> None:
    good = _bearer(tokens.token(roles=[READ]))
    started = time.time()
    with httpx.Client(base_url=host_url, timeout=30) as client:
        for n in range(15):
            assert client.get("/api/runs", params={"limit": 1}, headers=good).status_code == 200
            # each naming a key id of its own: the refresh on an unknown key must stay bounded
            stranger = _bearer(tokens.token(roles=[READ], signing="other-key", kid=f"unknown-{n}"))
            assert client.get("/api/runs", params={"limit": 1}, headers=stranger).status_code == 401
    with httpx.Client(base_url=f"{cloud_server.url}/_admin", verify=str(cloud_server.certs.ca_path)) as admin:
        log = admin.get("/requests", params={"service": "login", "since": started}).json()["value"]
    key_fetches = [e for e in log if e["path"].endswith("/keys")]
    assert len(key_fetches) <= 1, key_fetches


def test_no_token_reaches_the_host_log(host: Host, tokens: Tokens) -> None:
    """Refusals are logged (a security signal), by their reason: not one of the module's tokens, whole or signature."""
    assert tokens.minted, "runs after the matrix, which minted the tokens"
    log = host.log_path.read_text(encoding="utf-8", errors="replace")
    assert "refused manual_run: 401 InvalidToken" in log  # the refusals are there...
    for minted in tokens.minted.values():
        token = minted["access_token"]
        assert token not in log and (token.rsplit(".", 1)[-1] or token) not in log  # ...the tokens are not
