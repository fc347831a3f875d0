"""Benchmark of the emulated cloud: requests/s, latency percentiles and the emulator's own overhead per request.

    .venv/bin/python bench/cloud.py [--requests 1600] [--seconds 60] [--concurrency 8]

Starts `python -m local.cloud` in a subprocess on a free port (no faults, no limits) and drives a realistic mix of
the calls a playbook makes (Graph user get, riskyUser get, riskDetections filter, ARM VM get, NSG get, incident get,
a KQL query, a comment PUT) with raw httpx over one keep-alive TLS connection, with tokens from the emulator's
managed-identity endpoint. Routes that answer 404 (not emulated yet) are skipped and listed.

Overhead is shown two ways: the median time the emulator spent inside its pipeline and handler (durationMs in the
request log), and the median round trip of a trivial Graph GET minus that of a bare uvicorn TLS echo server started
the same way (same certificate, same HTTP implementation). Prints figures; it is not a test."""

from __future__ import annotations

import argparse
import asyncio
import json
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parent.parent
SUBSCRIPTION = "8c2b5f0e-3d4a-4b6c-9a1e-7f2d3c4b5a60"
ADELE = "1c9f2b8e-4a3d-4e6f-8b1c-2d3e4f5a6b01"
INCIDENT = (
    f"/subscriptions/{SUBSCRIPTION}/resourceGroups/rg-soc/providers/Microsoft.OperationalInsights/workspaces/"
    "law-sentinel/providers/Microsoft.SecurityInsights/incidents/3f6c2a9e-1b7d-4c5e-8a2f-0d9e8c7b6a51"
)
AUDIENCES = {
    "graph": "https://graph.microsoft.com",
    "arm": "https://management.azure.com",
    "loganalytics": "https://api.loganalytics.io",
}


@dataclass
class Call:
    name: str
    service: str
    method: str
    path: str
    weight: int
    params: dict[str, str] = field(default_factory=dict)
    body: Callable[[int], Any] | None = None  # request number -> JSON body

    def send(self, http: httpx.Client, tokens: dict[str, str], n: int) -> httpx.Response:
        headers = {"Authorization": f"Bearer {tokens[self.service]}"}
        body = self.body(n) if self.body else None
        return http.request(self.method, self.path, params=self.params, headers=headers, json=body)

    def build(self, http: httpx.AsyncClient, tokens: dict[str, str], n: int) -> httpx.Request:
        headers = {"Authorization": f"Bearer {tokens[self.service]}"}
        body = self.body(n) if self.body else None
        return http.build_request(self.method, self.path, params=self.params, headers=headers, json=body)


def playbook_mix(workspace_id: str) -> list[Call]:
    arm = {"api-version": "2024-07-01"}
    return [
        Call("graph user get", "graph", "GET", f"/v1.0/users/{ADELE}", 2,
             {"$select": "id,displayName,userPrincipalName,accountEnabled,department"}),
        Call("graph riskyUser get", "graph", "GET", f"/v1.0/identityProtection/riskyUsers/{ADELE}", 1),
        Call("graph riskDetections filter", "graph", "GET", "/v1.0/identityProtection/riskDetections", 1,
             {"$filter": f"userId eq '{ADELE}' and riskState eq 'atRisk'"}),
        Call("arm vm get", "arm", "GET",
             f"/subscriptions/{SUBSCRIPTION}/resourceGroups/rg-prod-web/providers/Microsoft.Compute/virtualMachines/"
             "vm-web-01", 1, arm),
        Call("arm nsg get", "arm", "GET",
             f"/subscriptions/{SUBSCRIPTION}/resourceGroups/rg-prod-web/providers/Microsoft.Network/"
             "networkSecurityGroups/nsg-web", 1, arm),
        Call("sentinel incident get", "arm", "GET", INCIDENT, 1, {"api-version": "2024-03-01"}),
        Call("kql query", "loganalytics", "POST", f"/v1/workspaces/{workspace_id}/query", 1,
             body=lambda n: {"query": "SigninLogs | where UserPrincipalName == 'adele.vance@contoso.com' "
                                      "| summarize count() by ResultType", "timespan": "P1D"}),
        Call("sentinel comment put", "arm", "PUT", f"{INCIDENT}/comments/riposte-bench-note", 1,
             {"api-version": "2024-03-01"}, body=lambda n: {"properties": {"message": f"Riposte bench note {n}"}}),
    ]  # fmt: skip


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_until_listening(port: int, process: subprocess.Popen[bytes], timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"server exited with {process.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"nothing listening on {port} after {timeout} s")


@contextmanager
def subprocess_server(args: list[str], port: int) -> Iterator[subprocess.Popen[bytes]]:
    process = subprocess.Popen(args, cwd=ROOT, stdout=subprocess.DEVNULL)  # stderr shows a crash
    try:
        wait_until_listening(port, process)
        yield process
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()


ECHO_SERVER = """
import sys, uvicorn
async def app(scope, receive, send):
    if scope["type"] != "http":
        return
    while (await receive()).get("more_body"):
        pass
    body = b'{"value":true}'
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})
uvicorn.run(app, host="127.0.0.1", port=int(sys.argv[1]), ssl_certfile=sys.argv[2], ssl_keyfile=sys.argv[3],
            log_level="warning", access_log=False, lifespan="off", http="h11")
"""


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


def timed_round_trips(http: httpx.Client, request: Callable[[], httpx.Response], count: int) -> list[float]:
    request()  # warm: connection, TLS, caches
    timings = []
    for _ in range(count):
        started = time.perf_counter()
        request()
        timings.append((time.perf_counter() - started) * 1000)
    return timings


def tokens_from(facts: dict[str, Any], http: httpx.Client) -> dict[str, str]:
    tokens = {}
    for service, resource in AUDIENCES.items():
        response = http.get(facts["identityEndpoint"], params={"api-version": "2019-08-01", "resource": resource},
                            headers={"X-IDENTITY-HEADER": facts["identityHeader"]})  # fmt: skip
        response.raise_for_status()
        tokens[service] = response.json()["access_token"]
    return tokens


def probe(calls: list[Call], http: httpx.Client, tokens: dict[str, str]) -> tuple[list[Call], list[str]]:
    usable, skipped = [], []
    for call in calls:
        response = call.send(http, tokens, 0)
        if response.status_code == 404:
            skipped.append(f"{call.name} (404: {call.method} {call.path.split('?')[0]})")
        elif response.status_code >= 400:
            skipped.append(f"{call.name} ({response.status_code}: {response.text[:120]})")
        else:
            usable.append(call)
    return usable, skipped


def sequential(calls: list[Call], http: httpx.Client, tokens: dict[str, str], requests: int, seconds: float
               ) -> tuple[dict[str, list[float]], float, int]:  # fmt: skip
    schedule = [c for c in calls for _ in range(c.weight)]
    timings: dict[str, list[float]] = {c.name: [] for c in calls}
    errors = 0
    started = time.perf_counter()
    deadline = started + seconds
    done = 0
    while done < requests and time.perf_counter() < deadline:
        call = schedule[done % len(schedule)]
        t0 = time.perf_counter()
        response = call.send(http, tokens, done)
        timings[call.name].append((time.perf_counter() - t0) * 1000)
        errors += response.status_code >= 400
        done += 1
    return timings, time.perf_counter() - started, errors


async def concurrent(calls: list[Call], base_url: str, ca_path: str, tokens: dict[str, str], requests: int,
                     workers: int, seconds: float) -> tuple[int, float, int]:  # fmt: skip
    schedule = [c for c in calls for _ in range(c.weight)]
    counter = iter(range(requests))
    done = errors = 0
    deadline = time.perf_counter() + seconds
    limits = httpx.Limits(max_connections=workers, max_keepalive_connections=workers)
    async with httpx.AsyncClient(base_url=base_url, verify=ca_path, limits=limits, timeout=60) as http:

        async def worker() -> None:
            nonlocal done, errors
            for n in counter:
                if time.perf_counter() > deadline:
                    return
                response = await http.send(schedule[n % len(schedule)].build(http, tokens, n))
                done += 1
                errors += response.status_code >= 400

        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(workers)))
        return done, time.perf_counter() - started, errors


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=1600, help="requests per phase (default 1600)")
    parser.add_argument("--seconds", type=float, default=60, help="time limit per phase (default 60)")
    parser.add_argument("--concurrency", type=int, default=8, help="connections in the throughput phase")
    args = parser.parse_args()

    state = Path(tempfile.mkdtemp(prefix="riposte-bench-"))
    port = free_port()
    cloud_args = [sys.executable, "-m", "local.cloud", "--port", str(port), "--state-dir", str(state)]
    print(f"starting the emulated cloud on 127.0.0.1:{port} ...", flush=True)
    with subprocess_server(cloud_args, port):
        base_url = f"https://127.0.0.1:{port}"
        ca_path = str(state / "cloud-ca.pem")
        with httpx.Client(base_url=base_url, verify=ca_path, timeout=60) as http:
            facts = http.get("/_admin/connection").json()
            tokens = tokens_from(facts, http)
            calls, skipped = probe(playbook_mix(facts.get("workspaceId") or "unknown"), http, tokens)
            for name in skipped:
                print(f"  skipped: {name}")
            http.delete("/_admin/requests")

            print(f"phase 1: {args.requests} requests, one keep-alive connection, weighted mix of {len(calls)} calls")
            timings, elapsed, errors = sequential(calls, http, tokens, args.requests, args.seconds)
            log = http.get("/_admin/requests").json()["value"]
            server_ms: dict[str, list[float]] = {}
            by_pattern = {c.name: c for c in calls}
            for entry in log:
                for name, call in by_pattern.items():
                    if entry["path"] == call.path.split("?")[0] and entry["method"] == call.method:
                        server_ms.setdefault(name, []).append(entry["durationMs"])
            total = sum(len(t) for t in timings.values())
            everything = [x for t in timings.values() for x in t]
            print(f"{'call':30} {'n':>6} {'p50 ms':>8} {'p99 ms':>8} {'in server p50 ms':>17}")
            for name, values in timings.items():
                inside = statistics.median(server_ms[name]) if server_ms.get(name) else float("nan")
                print(f"{name:30} {len(values):6d} {percentile(values, 0.5):8.2f} {percentile(values, 0.99):8.2f} "
                      f"{inside:17.3f}")  # fmt: skip
            print(f"{'all':30} {total:6d} {percentile(everything, 0.5):8.2f} {percentile(everything, 0.99):8.2f}")
            print(f"  {total / elapsed:.0f} requests/s sequential, {errors} errors")
            all_inside = [e["durationMs"] for e in log]
            print(f"  median time inside the emulator (pipeline + handler): {statistics.median(all_inside):.3f} ms")

            trivial = calls[0] if calls and calls[0].name == "graph user get" else None
            emulator_rt = timed_round_trips(http, lambda: trivial.send(http, tokens, 0), 300) if trivial else []

        print(f"phase 2: throughput with {args.concurrency} connections")
        done, elapsed, errors = asyncio.run(
            concurrent(calls, base_url, ca_path, tokens, args.requests, args.concurrency, args.seconds)
        )
        print(f"  {done / elapsed:.0f} requests/s over {done} requests, {errors} errors")

    echo_port = free_port()
    echo = [sys.executable, "-c", ECHO_SERVER, str(echo_port), str(state / "cloud-cert.pem"),
            str(state / "cloud-key.pem")]  # fmt: skip
    with (
        subprocess_server(echo, echo_port),
        httpx.Client(base_url=f"https://127.0.0.1:{echo_port}", verify=str(state / "cloud-ca.pem")) as http,
    ):
        echo_rt = timed_round_trips(http, lambda: http.get("/v1.0/users/x", headers={"Authorization": "Bearer x"}),
                                    300)  # fmt: skip
    print("phase 3: overhead against a bare uvicorn TLS echo (same certificate, h11, one keep-alive connection)")
    print(f"  bare echo round trip p50: {statistics.median(echo_rt):.3f} ms")
    if emulator_rt:
        overhead = statistics.median(emulator_rt) - statistics.median(echo_rt)
        print(f"  emulator graph user get p50: {statistics.median(emulator_rt):.3f} ms")
        print(f"  median emulator overhead per request: {overhead:.3f} ms (target <= 2 ms)")
    print(json.dumps({"skipped": skipped}) if skipped else "all routes of the mix answered")


if __name__ == "__main__":
    main()
