"""Authentication and authorisation over HTTP through the local host: every route against every kind of caller, with
tokens minted by the emulated Entra ID (local/cloud/oidc.py) and validated by Riposte against its published keys.

Machine routes take the function key alone; analyst routes take the key and an Entra identity holding the route's
app role (shared/api/auth.py has the table). The matrix asserts the exact status, error code and the problem the
message names for each cell; no response ever carries the token. It runs on three hosts: the default one (bearer
tokens), one behind App Service Authentication (WEBSITE_AUTH_ENABLED=True: X-MS-CLIENT-PRINCIPAL is the platform's
word), and one told to trust that header without it (it must refuse to serve). The decision matrix then puts every
kind of decider in front of a step that needs two approvals from an Entra group: separation of duties (the
requester cannot approve), approver groups (nested membership counts, checked through Graph) and object ids (one
identity under two names is one approver)."""

from __future__ import annotations

import base64
import json
import os
import shutil
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from local.stack import DEMO_TENANT, riposte_environment
from shared.playbook.loader import PLAYBOOKS_DIR
from tests.conftest import CloudHandle
from tests.e2e.conftest import FUNCTION_KEY, Host, free_port, running_azurite, wait_for_run

ROOT = Path(__file__).resolve().parents[2]
SAMPLES = ROOT / "local" / "samples"
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


def principal_header(
    roles: tuple[str, ...] | list[str],
    oid: str = "forged-oid",
    name: str = "mallory@contoso.com",
    tenant: str = DEMO_TENANT,
) -> str:
    """X-MS-CLIENT-PRINCIPAL as App Service Authentication sends it. Written by the caller to the default host, it
    must count for nothing; the EasyAuth host stands for an app behind App Service Authentication, which strips the
    header from outside requests and writes its own, so there it is the platform's word."""
    claims = [
        {"typ": "http://schemas.microsoft.com/identity/claims/tenantid", "val": tenant},
        {"typ": "http://schemas.microsoft.com/identity/claims/objectidentifier", "val": oid},
        {"typ": "preferred_username", "val": name},
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
    """A kind of caller: the headers it sends (given the route) and what it must get on each kind of route, on one of
    the module's hosts: default (bearer tokens only), easyauth (behind App Service Authentication) or misconfigured
    (told to trust X-MS-CLIENT-PRINCIPAL on a platform that does not say authentication is on)."""

    name: str
    headers: Callable[[Route, Tokens], dict[str, str]]
    expect: Callable[[Route], Expect]
    host: str = "default"


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


IRVIN = "1c9f2b8e-4a3d-4e6f-8b1c-2d3e4f5a6b11"  # irvin.sayers, SOC Analysts


def _platform_principal(route: Route, roles: list[str], tenant: str = DEMO_TENANT) -> dict[str, str]:
    return _key(**{"x-ms-client-principal": principal_header(roles, IRVIN, "irvin.sayers@contoso.com", tenant)})


def _bad_principal(says: str) -> Callable[[Route], Expect]:
    def expect(route: Route) -> Expect:
        return _ok(route) if route.kind != "analyst" else Expect(401, "InvalidPrincipal", says)

    return expect


def _not_configured(route: Route) -> Expect:
    if route.name == "defender_alert":  # the host answers Event Grid's handshake itself, before any code of ours
        return _ok(route)
    if route.kind == "anonymous":  # health: 503, listing the problem
        return Expect(503)
    return Expect(503, "InvalidSetting", "WEBSITE_AUTH_ENABLED")


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
    # Behind App Service Authentication (WEBSITE_AUTH_ENABLED=True, RIPOSTE_TRUST_APP_SERVICE_AUTH=true)
    Case(
        "EasyAuth: principal with the right role",
        lambda r, t: _platform_principal(r, [r.least_role] if r.roles else []),
        _ok,
        "easyauth",
    ),
    Case(
        "EasyAuth: principal missing the role",
        lambda r, t: _platform_principal(r, r.other_roles),
        _missing_role,
        "easyauth",
    ),
    Case(
        "EasyAuth: principal from another tenant",
        lambda r, t: _platform_principal(r, list(ALL_ROLES), OTHER_TENANT),
        _bad_principal("not from this tenant"),
        "easyauth",
    ),
    Case("EasyAuth: bearer token", lambda r, t: _right(r, t), _ok, "easyauth"),
    Case("EasyAuth: key without identity", lambda r, t: _key(), _key_only, "easyauth"),
    Case(
        "EasyAuth: no key",
        lambda r, t: _platform_principal(r, list(ALL_ROLES)) | {"x-functions-key": ""},
        _anyone,
        "easyauth",
    ),
    # Told to trust the header where the platform does not say App Service Authentication is on: refuses to serve
    Case(
        "trust without App Service Authentication",
        lambda r, t: {**_right(r, t), "x-ms-client-principal": principal_header(ALL_ROLES)},
        _not_configured,
        "misconfigured",
    ),
]


# --- the runs the run routes act on --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Runs:
    machine_run: str  # started by the function key (the relay), a dry run
    analyst_run: str  # started by an analyst's manual run, a dry run


def _start_runs(host_url: str, tokens: Tokens) -> Runs:
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


@pytest.fixture(scope="module")
def runs(host_url: str, tokens: Tokens) -> Runs:
    return _start_runs(host_url, tokens)


def _host_environment(cloud_server: Any, storage: str, state_dir: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "WEBSITE_AUTH_ENABLED"}
    env.update(riposte_environment(cloud_server.url, str(cloud_server.certs.ca_path), storage))
    env.update(
        RIPOSTE_FUNCTION_KEY=FUNCTION_KEY,
        RIPOSTE_HOST_PORT=str(free_port()),
        RIPOSTE_STATE_DIR=str(state_dir),
        RIPOSTE_HOST_QUEUE_LEASE_S="4",
        RIPOSTE_HOST_VISIBILITY_TIMEOUT_S="0",
        RIPOSTE_IDENTITY_PROTECTION_RPS="20",
        PYTHONUNBUFFERED="1",
        **extra,
    )
    return env


@pytest.fixture(scope="module")
def easyauth_host(cloud_server: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Host]:
    """A host standing for an app behind App Service Authentication (the platform sets WEBSITE_AUTH_ENABLED=True),
    with its own storage and the bundled playbooks plus tests/fixtures/approvals (approver groups)."""
    playbooks = tmp_path_factory.mktemp("easyauth-playbooks")
    for source in [*PLAYBOOKS_DIR.glob("*.yaml"), *(ROOT / "tests/fixtures/approvals").glob("*.yaml")]:
        shutil.copy(source, playbooks / source.name)
    shutil.copytree(PLAYBOOKS_DIR / "queries", playbooks / "queries")
    with running_azurite() as storage:
        env = _host_environment(
            cloud_server,
            storage,
            tmp_path_factory.mktemp("easyauth-host"),
            WEBSITE_AUTH_ENABLED="True",
            RIPOSTE_TRUST_APP_SERVICE_AUTH="true",
            RIPOSTE_PLAYBOOKS_DIR=str(playbooks),
        )
        running = Host(env)
        running.start()
        yield running
        running.stop()


@pytest.fixture(scope="module")
def misconfigured_host(azurite: str, cloud_server: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Host]:
    """Told to trust X-MS-CLIENT-PRINCIPAL without App Service Authentication on: it must refuse to serve. HTTP
    only, so it takes no message from the shared queue."""
    env = _host_environment(
        cloud_server,
        azurite,
        tmp_path_factory.mktemp("misconfigured-host"),
        RIPOSTE_TRUST_APP_SERVICE_AUTH="true",
        RIPOSTE_HOST_TRIGGERS="http",
    )
    running = Host(env)
    running.start(healthy=False)
    yield running
    running.stop()


@dataclass(frozen=True)
class Target:
    url: str
    runs: Runs


def target(request: pytest.FixtureRequest, case: Case) -> Target:
    """The host a case calls, started on first use, and the runs the run routes act on there."""
    if case.host == "default":
        return Target(request.getfixturevalue("host_url"), request.getfixturevalue("runs"))
    if case.host == "easyauth":
        return Target(request.getfixturevalue("easyauth_host").url, request.getfixturevalue("easyauth_runs"))
    return Target(request.getfixturevalue("misconfigured_host").url, Runs("no-such-run", "no-such-run"))


@pytest.fixture(scope="module")
def easyauth_runs(easyauth_host: Host, tokens: Tokens) -> Runs:
    return _start_runs(easyauth_host.url, tokens)


def call(host_url: str, route: Route, headers: dict[str, str], runs: Runs) -> httpx.Response:
    path = route.path.format(machine_run=runs.machine_run, analyst_run=runs.analyst_run)
    with httpx.Client(base_url=host_url, timeout=30) as client:
        return client.request(
            route.method, path, json=route.json, params=route.params, headers={**route.headers, **headers}
        )


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
@pytest.mark.parametrize("route", ROUTES, ids=[r.name for r in ROUTES])
def test_auth_matrix(request: pytest.FixtureRequest, tokens: Tokens, route: Route, case: Case) -> None:
    where = target(request, case)
    headers = {k: v for k, v in case.headers(route, tokens).items() if v}
    expected = case.expect(route)
    response = call(where.url, route, headers, where.runs)
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


# --- separation of duties and approver groups (on the EasyAuth host, which has tests/fixtures/approvals) -----------

JOHANNA = "1c9f2b8e-4a3d-4e6f-8b1c-2d3e4f5a6b12"  # SOC Analysts
MEGAN = "1c9f2b8e-4a3d-4e6f-8b1c-2d3e4f5a6b02"  # Marketing
NESTOR = "1c9f2b8e-4a3d-4e6f-8b1c-2d3e4f5a6b07"  # in no SOC group until the test nests one
SOC_ANALYSTS = "5e0a7c3d-2b1f-4a6e-9c8d-7f6e5d4c3b02"
SOC_LEADS = "5e0a7c3d-2b1f-4a6e-9c8d-7f6e5d4c3b99"


def _nest_soc_leads(cloud: CloudHandle) -> None:
    """SOC Leads (nestor) becomes a member of SOC Analysts: a transitive member of the playbook's approver group."""
    doc = cloud.tenant()
    groups = doc["graph"]["groups"]
    groups.append({"id": SOC_LEADS, "displayName": "SOC Leads", "members": [NESTOR]})
    next(g for g in groups if g["id"] == SOC_ANALYSTS)["members"].append(SOC_LEADS)
    cloud.admin.put("/tenant", json=doc).raise_for_status()


def _user(cloud: CloudHandle, object_id: str) -> dict[str, Any]:
    return next(u for u in cloud.tenant()["graph"]["users"] if u["id"] == object_id)


def _refusal(response: httpx.Response) -> tuple[int, str, str]:
    error = response.json()["error"]
    return response.status_code, error["code"], error["message"]


def test_separation_of_duties_and_approver_groups(easyauth_host: Host, tokens: Tokens, cloud: CloudHandle) -> None:
    _nest_soc_leads(cloud)
    requester = _bearer(tokens.token(user=JOHANNA, roles=ALL_ROLES))
    stranger = tokens.mint(roles=[APPROVE])  # a SOC analyst identity the tenant's groups do not list
    with (
        httpx.Client(base_url=easyauth_host.url, timeout=30) as http,
        httpx.Client(base_url=easyauth_host.url, headers=requester, timeout=30) as johanna,
    ):
        started = http.post(
            "/api/playbooks/gated-account/runs",
            json={"title": "approvals", "entities": [{"Type": "account", "AadUserId": MEGAN, "Name": "megan.bowen"}]},
            headers={**requester, "Idempotency-Key": "auth-approvals"},
        )
        assert started.status_code == 202, started.text
        location = started.headers["Location"]
        run = wait_for_run(johanna, location, until=lambda r: r["steps"][0]["status"] == "awaiting_approval")
        assert run["requestedById"] == JOHANNA
        approve = f"/api/runs/{run['id']}/approve"

        # the requester may not approve her own run, although she is in the approver group and holds the role
        status, code, message = _refusal(http.post(approve, headers=requester, json={"by": "someone else"}))
        assert (status, code) == (403, "SelfApproval") and "Separation of duties" in message
        # an approver outside the group, by token or by the platform's header; the caller's body changes nothing
        for outsider in (
            _bearer(tokens.token(user=MEGAN, roles=[APPROVE])),
            _bearer(stranger["access_token"]),
            _key(**{"x-ms-client-principal": principal_header([APPROVE], MEGAN, "megan.bowen@contoso.com")}),
        ):
            status, code, message = _refusal(http.post(approve, headers=outsider, json={"groups": [SOC_ANALYSTS]}))
            assert (status, code) == (403, "NotInApproverGroup") and SOC_ANALYSTS in message

        # irvin approves; the same object id under another name (the platform's header) is the same approver
        irvin = _bearer(tokens.token(user=IRVIN, roles=[APPROVE]))
        assert http.post(approve, headers=irvin, json={"comment": "seen it"}).status_code == 200
        renamed = _key(**{"x-ms-client-principal": principal_header([APPROVE], IRVIN, "Irvin S.")})
        status, code, _ = _refusal(http.post(approve, headers=renamed))
        assert (status, code) == (409, "AlreadyDecided")
        time.sleep(1.5)  # a worker pass: one approval is not the quorum of two
        waiting = http.get(location, headers=requester).json()
        assert waiting["steps"][0]["status"] == "awaiting_approval"
        assert _user(cloud, MEGAN)["accountEnabled"] is True

        # a member through a nested group completes the quorum, and the action runs
        nestor = _key(**{"x-ms-client-principal": principal_header([APPROVE], NESTOR, "nestor.wilke@contoso.com")})
        assert http.post(approve, headers=nestor).status_code == 200
        done = wait_for_run(johanna, location)
    disable = done["steps"][0]
    assert done["status"] == "succeeded" and disable["status"] == "done", done["reason"]
    assert {d["objectId"] for d in disable["approval"]["decisions"]} == {IRVIN, NESTOR}
    assert disable["approval"]["approverGroups"] == [SOC_ANALYSTS]
    assert _user(cloud, MEGAN)["accountEnabled"] is False
    # each approver's groups were read from Graph once, through the cache, however many times they called
    lookups = [r["path"] for r in cloud.requests(service="graph") if r["path"].endswith("/transitiveMemberOf")]
    for oid in (stranger["claims"]["oid"], IRVIN, NESTOR):
        assert lookups.count(f"/v1.0/users/{oid}/transitiveMemberOf") == 1, lookups


# The decision matrix: who decides a step of gated-account (quorum 2, approvers: SOC Analysts), through which kind
# of identity, and what they get. Each cell has a run of its own, started by johanna (SOC Analysts).


@dataclass(frozen=True)
class Decider:
    name: str
    headers: Callable[[Tokens], dict[str, str]]
    decision: str
    status: int
    code: str | None = None
    body: dict[str, Any] = field(default_factory=dict)


def _as(oid: str, name: str, roles: tuple[str, ...] = (APPROVE,)) -> Callable[[Tokens], dict[str, str]]:
    return lambda t: _key(**{"x-ms-client-principal": principal_header(list(roles), oid, name)})


def _token_of(user: str | None, roles: tuple[str, ...] = (APPROVE,)) -> Callable[[Tokens], dict[str, str]]:
    return lambda t: _bearer(t.token(roles=list(roles), **({"user": user} if user else {})))


DECIDERS = [
    Decider("requester approves (token)", _token_of(JOHANNA), "approve", 403, "SelfApproval"),
    Decider("requester approves (EasyAuth, another name)", _as(JOHANNA, "J. Lorenz"), "approve", 403, "SelfApproval"),
    Decider("requester rejects (withdraws)", _token_of(JOHANNA), "reject", 200),
    Decider("member approves (token)", _token_of(IRVIN), "approve", 200),
    Decider("member approves (EasyAuth)", _as(IRVIN, "irvin.sayers@contoso.com"), "approve", 200),
    Decider("nested member approves", _as(NESTOR, "nestor.wilke@contoso.com"), "approve", 200),
    Decider("nested member rejects", _as(NESTOR, "nestor.wilke@contoso.com"), "reject", 200),
    Decider("outsider approves", _token_of(MEGAN), "approve", 403, "NotInApproverGroup"),
    Decider("outsider rejects", _token_of(MEGAN), "reject", 403, "NotInApproverGroup"),
    Decider(
        "outsider names a member in the body",
        _token_of(MEGAN),
        "approve",
        403,
        "NotInApproverGroup",
        {"by": "irvin.sayers@contoso.com", "objectId": IRVIN},
    ),
    Decider("identity outside the tenant", _token_of(None), "approve", 403, "NotInApproverGroup"),
    Decider("member without the role", _token_of(IRVIN, (READ,)), "approve", 403, "MissingRole"),
    Decider(
        "principal from another tenant",
        lambda t: _platform_principal(ROUTES[0], [APPROVE], OTHER_TENANT),
        "approve",
        401,
        "InvalidPrincipal",
    ),
]


@pytest.mark.parametrize("decider", DECIDERS, ids=[d.name for d in DECIDERS])
def test_decision_matrix(easyauth_host: Host, tokens: Tokens, cloud: CloudHandle, decider: Decider) -> None:
    _nest_soc_leads(cloud)
    requester = _bearer(tokens.token(user=JOHANNA, roles=ALL_ROLES))
    with httpx.Client(base_url=easyauth_host.url, headers=requester, timeout=30) as johanna:
        started = johanna.post(
            "/api/playbooks/gated-account/runs",
            json={
                "title": f"approvals: {decider.name}",
                "entities": [{"Type": "account", "AadUserId": MEGAN, "Name": "megan.bowen"}],
            },
        )
        assert started.status_code == 202, started.text
        location = started.headers["Location"]
        run = wait_for_run(johanna, location, until=lambda r: r["steps"][0]["status"] == "awaiting_approval")
        response = httpx.post(
            f"{easyauth_host.url}/api/runs/{run['id']}/{decider.decision}",
            headers=decider.headers(tokens),
            json={"comment": decider.name, **decider.body},
            timeout=30,
        )
        assert response.status_code == decider.status, response.text
        if decider.code is not None:
            assert response.json()["error"]["code"] == decider.code
            after = johanna.get(location).json()["steps"][0]
            assert after["status"] == "awaiting_approval" and after["approval"]["decisions"] == []
        else:
            [decision] = response.json()["steps"][0]["approval"]["decisions"]
            assert decision["decision"] == decider.decision and decision["objectId"] in (JOHANNA, IRVIN, NESTOR)
    assert _user(cloud, MEGAN)["accountEnabled"] is True  # one approval is not the quorum of two
