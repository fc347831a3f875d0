"""Fuzz every HTTP route of function_app.py over HTTP against a live host: no input may get a 5xx, and no input that is
refused may leave a run behind.

    python bench/fuzz.py [--count 50000] [--seed 0] [--concurrency 16]     (starts its own stack, prints figures)

Requests are drawn with hypothesis strategies from each route's request shape (method, path parameters, query,
headers, body), built from the bundled samples and then broken: lone surrogates, numbers past what Python parses,
NaN and Infinity, deep nesting, bytes that are not UTF-8, wrong media types, oversized bodies, bad path parameters,
and for every route each kind of caller: no key, a wrong key, the key in the query, a valid Entra token, and forged
ones (a non-string kid, a crit header, alg none, another key, HMAC with the public key, tampered, expired, another
tenant, no role). Requests that could start a run either name no playbook that exists or are dry runs, so the worker
is not swamped. Runs are counted in Table storage before and after: every new run must be one that an accepted
request reported."""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import multiprocessing
import sys
import time
from collections import Counter, deque
from collections.abc import Callable, Iterable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parents[1]
SAMPLES = ROOT / "local" / "samples"
NO_PLAYBOOK = "fuzz-no-such-playbook"  # a playbook filter that matches nothing: intake runs in full, no run starts
PLAYBOOKS = ("compromised-vm", "compromised-account", "malicious-ip", "defender-alert")
EXAMPLES_KEPT = 5
AHEAD = 3  # chunks generated ahead of the one being sent
CHUNK = 250  # requests generated per hypothesis run; the next chunks are drawn while this one is sent

TokenFactory = Callable[..., str]  # **spec of the emulated Entra ID's POST /_admin/tokens -> an access token


# --- what persisted ----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Persisted:
    """What intake leaves in storage: run headers and delivery (dedup) records."""

    runs: int
    deliveries: int
    run_ids: frozenset[str] = frozenset()


def count_persisted(storage_connection: str) -> Persisted:
    """Run headers and delivery records, read straight from Table storage (a table not yet made counts 0)."""
    # Imported here: azure.data.tables pulls in aiohttp, which fixes its SSL context at import (see tests/conftest.py).
    from azure.core.exceptions import ResourceNotFoundError
    from azure.data.tables import TableClient

    def keys(table_name: str, query: str) -> list[str]:
        with TableClient.from_connection_string(storage_connection, table_name) as table:
            try:
                return [str(row["PartitionKey"]) for row in table.query_entities(query, select=["PartitionKey"])]
            except ResourceNotFoundError:
                return []

    runs = keys("RiposteRuns", "RowKey eq 'run'")
    deliveries = keys("RiposteDedup", "RowKey eq 'delivery'")
    return Persisted(runs=len(runs), deliveries=len(deliveries), run_ids=frozenset(runs))


# --- requests and results ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Request:
    route: str  # the function name in function_app.py
    method: str
    path: str
    params: dict[str, str] = field(default_factory=dict)
    headers: dict[str, bytes] = field(default_factory=dict)
    body: bytes | None = None

    def describe(self) -> str:
        body = (self.body or b"")[:160]
        return f"{self.method} {self.path} params={self.params} headers={sorted(self.headers)} body={body!r}"


@dataclass
class FuzzResult:
    inputs: int = 0
    server_errors: int = 0
    examples: list[str] = field(default_factory=list)  # a few of the 5xx (or unanswered) requests
    statuses: Counter[int] = field(default_factory=Counter)
    routes: Counter[str] = field(default_factory=Counter)
    seconds: float = 0.0
    accepted_submissions: int = 0  # 2xx answers of the routes that submit incidents
    reported_runs: set[str] = field(default_factory=set)  # run ids that accepted requests reported
    new_runs: int | None = None  # runs that appeared in storage (None: storage not given)
    refused_but_persisted: int | None = None  # new runs no accepted request reported: must be 0
    new_deliveries: int | None = None

    @property
    def per_second(self) -> float:
        return self.inputs / self.seconds if self.seconds else 0.0

    def figures(self) -> dict[str, Any]:
        return {
            "inputs": self.inputs,
            "server_errors": self.server_errors,
            "inputs_per_s": round(self.per_second, 1),
            "seconds": round(self.seconds, 1),
            "statuses": dict(sorted(self.statuses.items())),
            "routes": dict(sorted(self.routes.items())),
            "accepted_submissions": self.accepted_submissions,
            "new_runs": self.new_runs,
            "refused_but_persisted": self.refused_but_persisted,
            "new_deliveries": self.new_deliveries,
            "examples": self.examples,
        }


# --- callers -------------------------------------------------------------------------------------------------------


def _segment(document: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(document).encode()).rstrip(b"=").decode()


def _forged_header(valid: str, header: dict[str, Any]) -> str:
    _, payload, signature = valid.split(".")
    return f"{_segment(header)}.{payload}.{signature}"


def tokens(token_factory: TokenFactory) -> dict[str, str]:
    """A valid analyst token and forged ones, minted once (the emulated Entra ID mints most of the bad ones too)."""
    roles = ["Riposte.Run", "Riposte.Approve", "Riposte.Read"]
    valid = token_factory(roles=roles)
    minted = {
        "alg none": token_factory(roles=roles, signing="none"),
        "other key": token_factory(roles=roles, signing="other-key"),
        "other key, same kid": token_factory(roles=roles, signing="other-key-same-kid"),
        "hs256 with the public key": token_factory(roles=roles, signing="hs256-public-key"),
        "tampered": token_factory(roles=roles, signing="tampered"),
        "expired": token_factory(roles=roles, lifetime=-3600),
        "other tenant": token_factory(roles=roles, tid="0b1c2d3e-4f5a-4b6c-8d7e-9f0a1b2c3d4e"),
        "other audience": token_factory(roles=roles, aud="api://someone-else"),
        "no role": token_factory(roles=[]),
        "read only": token_factory(roles=["Riposte.Read"]),
    }
    header = {"alg": "RS256", "typ": "JWT"}
    forged = {
        "kid a number": _forged_header(valid, header | {"kid": 7}),
        "kid a list": _forged_header(valid, header | {"kid": ["a"]}),
        "kid a lone surrogate": _forged_header(valid, header | {"kid": "\ud800"}),
        "crit an extension": _forged_header(valid, header | {"kid": "k", "crit": ["exp"]}),
        "crit a string": _forged_header(valid, header | {"kid": "k", "crit": "b64"}),
        "crit empty": _forged_header(valid, header | {"kid": "k", "crit": []}),
        "alg a list": _forged_header(valid, {"alg": ["RS256"], "kid": "k"}),
        "header a list": f"{base64.urlsafe_b64encode(b'[1]').decode()}.e30.",
        "huge": "eyJ" + "A" * 20_000,
    }
    return {"valid": valid, **minted, **forged}


def admin_token_factory(admin: httpx.Client) -> TokenFactory:
    """Tokens from the emulated Entra ID, given a client of its /_admin API (bench/harness.py: Stack.admin())."""

    def mint(**spec: Any) -> str:
        response = admin.post("/tokens", json=spec)
        response.raise_for_status()
        return str(response.json()["access_token"])

    return mint


# --- the drill -----------------------------------------------------------------------------------------------------


def fuzz(
    base_url: str,
    function_key: str,
    token_factory: TokenFactory,
    count: int,
    *,
    storage_connection: str | None = None,
    seed: int = 0,
    concurrency: int = 16,
    max_seconds: float | None = None,
    progress: Callable[[FuzzResult], None] | None = None,
) -> FuzzResult:
    """Sends `count` generated requests to the host at `base_url` (fewer if `max_seconds` runs out first); counts the
    5xx and, given the storage connection, the runs that refused requests left behind. `progress` sees the result
    after each chunk."""
    before = count_persisted(storage_connection) if storage_connection else None
    setup = (function_key, tokens(token_factory), _templates())
    # Generating is as costly as sending: a child process draws the next chunks while this one sends.
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(1, mp_context=context, initializer=_start_generator, initargs=setup) as generator:
        budget = _Budget(count, seed, concurrency, max_seconds, progress)
        result = asyncio.run(_send_all(base_url, generator, budget))
    if storage_connection and before is not None:
        after = count_persisted(storage_connection)
        new = after.run_ids - before.run_ids
        result.new_runs = len(new)
        result.refused_but_persisted = len(new - result.reported_runs)
        result.new_deliveries = after.deliveries - before.deliveries
    return result


_SHAPES: Any = None  # the generator process's request shapes


def _start_generator(function_key: str, tokens: dict[str, str], templates: dict[str, list[Any]]) -> None:
    global _SHAPES
    sys.path.insert(0, str(Path(__file__).parent))
    from fuzz_requests import Shapes  # hypothesis is only needed in the generator process

    _SHAPES = Shapes(function_key, tokens, templates)


def _generate(count: int, seed: int, known_runs: list[str]) -> list[Request]:
    _SHAPES.known_runs = known_runs
    requests: list[Request] = _SHAPES.generate(count, seed)
    return requests


def _templates() -> dict[str, list[Any]]:
    samples = {p.name: json.loads(p.read_text()) for p in sorted(SAMPLES.glob("*.json"))}
    events = [v for k, v in samples.items() if k.startswith("defender-alert")]
    incidents = [v for k, v in samples.items() if not k.startswith("defender-alert")]
    return {"incidents": incidents, "events": events}


@dataclass(frozen=True)
class _Budget:
    count: int
    seed: int
    concurrency: int
    max_seconds: float | None
    progress: Callable[[FuzzResult], None] | None


async def _send_all(base_url: str, generator: ProcessPoolExecutor, budget: _Budget) -> FuzzResult:
    result = FuzzResult()
    # uvicorn closes a connection idle for 5 s; reusing one that old races with its closing
    limits = httpx.Limits(
        max_connections=budget.concurrency, max_keepalive_connections=budget.concurrency, keepalive_expiry=2
    )
    loop = asyncio.get_running_loop()
    sizes = deque(min(CHUNK, budget.count - start) for start in range(0, budget.count, CHUNK))
    pending: deque[asyncio.Future[list[Request]]] = deque()
    chunk_seeds = iter(range(budget.seed * 1_000_003, budget.seed * 1_000_003 + len(sizes)))
    started = time.monotonic()
    deadline = started + budget.max_seconds if budget.max_seconds else float("inf")

    def ask() -> None:  # at most AHEAD chunks drawn in advance, so memory stays flat
        while sizes and len(pending) < AHEAD and time.monotonic() < deadline:
            known = sorted(result.reported_runs)[:50]
            pending.append(loop.run_in_executor(generator, _generate, sizes.popleft(), next(chunk_seeds), known))

    async with httpx.AsyncClient(base_url=base_url, timeout=60, limits=limits) as client:
        ask()
        while pending:
            batch = await pending.popleft()
            ask()
            await _send_batch(client, batch, result, budget.concurrency)
            result.seconds = time.monotonic() - started
            if budget.progress:
                budget.progress(result)
    return result


async def _send_batch(client: httpx.AsyncClient, batch: list[Request], result: FuzzResult, concurrency: int) -> None:
    gate = asyncio.Semaphore(concurrency)

    async def one(request: Request) -> None:
        async with gate:
            await _send(client, request, result)

    await asyncio.gather(*(one(r) for r in batch))


async def _send(client: httpx.AsyncClient, request: Request, result: FuzzResult) -> None:
    headers = [(name.encode(), value) for name, value in request.headers.items()]
    for attempt in (1, 2):
        try:
            response = await client.request(
                request.method, request.path, params=request.params, headers=headers, content=request.body
            )
            break
        except httpx.LocalProtocolError:
            return  # the client refused to send it (an illegal header): not an input the host saw
        except (httpx.ReadError, httpx.RemoteProtocolError) as exc:
            # A kept-alive connection the server closed as we reused it; the same input again on a fresh one must
            # be answered.
            if attempt == 2:
                _unanswered(result, request, exc)
                return
        except httpx.HTTPError as exc:
            _unanswered(result, request, exc)
            return
    result.inputs += 1
    result.routes[request.route] += 1
    result.statuses[response.status_code] += 1
    if response.status_code >= 500:
        _server_error(result, request, f"{response.status_code} {response.text[:200]}")
    elif 200 <= response.status_code < 300 and request.route in ("incidents", "events", "manual_run"):
        result.accepted_submissions += 1
        result.reported_runs.update(_reported_runs(response))


def _unanswered(result: FuzzResult, request: Request, error: Exception) -> None:
    result.inputs += 1
    result.routes[request.route] += 1
    _server_error(result, request, f"no answer ({type(error).__name__})")


def _server_error(result: FuzzResult, request: Request, what: str) -> None:
    result.server_errors += 1
    if len(result.examples) < EXAMPLES_KEPT:
        result.examples.append(f"{what} <- {request.describe()}")


def _reported_runs(response: httpx.Response) -> Iterable[str]:
    try:
        body = response.json()
    except ValueError:
        return []
    runs = list(body.get("runs") or [])
    for incident in body.get("incidents") or []:
        runs.extend(incident.get("runs") or [])
    return [str(r.get("id")) for r in runs if isinstance(r, dict)]


# --- as a script -------------------------------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--count", type=int, default=50_000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--max-seconds", type=float, default=None, help="stop sending after this long")
    args = parser.parse_args()

    def progress(result: FuzzResult) -> None:
        print(f"{result.inputs} inputs, {result.server_errors} 5xx, {result.per_second:.0f}/s", file=sys.stderr)

    from harness import FUNCTION_KEY, dump, stack

    with stack(workers=0) as running, running.admin() as admin:
        result = fuzz(
            running.host_url,
            FUNCTION_KEY,
            admin_token_factory(admin),
            args.count,
            storage_connection=running.env["AzureWebJobsStorage"],
            seed=args.seed,
            concurrency=args.concurrency,
            max_seconds=args.max_seconds,
            progress=progress,
        )
        if result.server_errors:
            log = Path(running.env["RIPOSTE_STATE_DIR"]) / "host.log"
            print(log.read_text(errors="replace")[-20_000:], file=sys.stderr)
    dump({"fuzz": result.figures()})
    print(f"fuzz: inputs={result.inputs} fuzz_5xx={result.server_errors} per_s={result.per_second:.0f}")
    if result.server_errors or result.refused_but_persisted:
        sys.exit(1)


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).parent))
    main()
