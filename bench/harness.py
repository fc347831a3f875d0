"""The local stack on free ports for benchmarks: Azurite, the emulated cloud and the functions host, each its own
process (so the benchmark's client does not share a GIL with what it measures)."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from local.stack import azurite_command, riposte_environment, storage_connection_string  # noqa: E402

FUNCTION_KEY = "bench-function-key"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait(check: Any, what: str, process: subprocess.Popen[bytes], timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            if check():
                return
        except (OSError, httpx.HTTPError):
            pass
        if process.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(f"{what} did not start")
        time.sleep(0.1)


@dataclass
class Stack:
    host_url: str
    cloud_url: str
    ca_path: str
    host: subprocess.Popen[bytes]
    env: dict[str, str]
    workers: list[subprocess.Popen[bytes]]
    worker_envs: list[dict[str, str]]

    def client(self) -> httpx.Client:
        return httpx.Client(base_url=self.host_url, headers={"x-functions-key": FUNCTION_KEY}, timeout=60)

    def admin(self) -> httpx.Client:
        return httpx.Client(base_url=f"{self.cloud_url}/_admin", verify=self.ca_path, timeout=60)

    def peak_rss_mb(self, process: subprocess.Popen[bytes]) -> float:
        for line in Path(f"/proc/{process.pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
        return float("nan")

    def worker_peak_rss_mb(self) -> float:
        return max(self.peak_rss_mb(w) for w in self.workers)


@contextmanager
def stack(workers: int = 1, **settings: str) -> Iterator[Stack]:
    """Starts everything: one host for the HTTP functions and `workers` hosts for the queue trigger, as Flex
    Consumption scales them separately. `settings` are extra environment variables for the hosts (RIPOSTE_*)."""
    state = Path(tempfile.mkdtemp(prefix="riposte-bench-"))
    ports = (free_port(), free_port(), free_port())
    processes: list[subprocess.Popen[bytes]] = []
    worker_processes: list[subprocess.Popen[bytes]] = []
    try:
        azurite = subprocess.Popen(
            azurite_command(*ports), cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        processes.append(azurite)
        cloud_port = free_port()
        cloud_env = dict(os.environ, RIPOSTE_STATE_DIR=str(state))
        cloud = subprocess.Popen(
            [sys.executable, "-m", "local.cloud", "--port", str(cloud_port)],
            cwd=ROOT,
            env=cloud_env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        processes.append(cloud)
        ca = state / "cloud-ca.pem"
        cloud_url = f"https://127.0.0.1:{cloud_port}"
        _wait(
            lambda: ca.exists() and httpx.get(f"{cloud_url}/_admin/connection", verify=str(ca)).status_code == 200,
            "emulated cloud",
            cloud,
        )
        host_port = free_port()
        env = dict(os.environ)
        env.update(riposte_environment(cloud_url, str(ca), storage_connection_string(*ports)))
        env.update(
            RIPOSTE_FUNCTION_KEY=FUNCTION_KEY,
            RIPOSTE_HOST_PORT=str(host_port),
            RIPOSTE_STATE_DIR=str(state),
            PYTHONUNBUFFERED="1",
            **settings,
        )
        log = open(state / "host.log", "wb")  # noqa: SIM115 - the host process writes it until the end
        host = subprocess.Popen(
            [sys.executable, "-m", "local.host"], cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT
        )
        processes.append(host)
        host_url = f"http://127.0.0.1:{host_port}"
        _wait(lambda: httpx.get(f"{host_url}/api/health").status_code == 200, "functions host", host)
        worker_envs = []
        for n in range(workers):
            worker_port = free_port()
            worker_env = dict(env, RIPOSTE_HOST_PORT=str(worker_port), RIPOSTE_HOST_TRIGGERS="queue")
            worker_log = open(state / f"worker-{n}.log", "wb")  # noqa: SIM115 - written until the end
            worker = subprocess.Popen(
                [sys.executable, "-m", "local.host"],
                cwd=ROOT,
                env=worker_env,
                stdout=worker_log,
                stderr=subprocess.STDOUT,
            )
            processes.append(worker)
            worker_processes.append(worker)
            worker_envs.append(worker_env)
            _wait(
                lambda port=worker_port: httpx.get(f"http://127.0.0.1:{port}/api/health").status_code == 200,
                "queue worker",
                worker,
            )
        yield Stack(host_url, cloud_url, str(ca), host, env, worker_processes, worker_envs)
    finally:
        processes.extend(p for p in worker_processes if p not in processes)  # restarted workers
        for process in reversed(processes):
            process.terminate()
        for process in processes:
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()


def add_accounts(admin: httpx.Client, count: int, prefix: str = "burst", block: int = 0) -> list[dict[str, str]]:
    """Adds `count` users and one Sentinel incident naming each; returns [{user, incident, n}]."""
    doc = admin.get("/tenant").json()
    workspace = (
        "/subscriptions/8c2b5f0e-3d4a-4b6c-9a1e-7f2d3c4b5a60/resourceGroups/rg-soc/providers/"
        "Microsoft.OperationalInsights/workspaces/law-sentinel/providers/Microsoft.SecurityInsights"
    )
    made = []
    for n in range(count):
        user = f"7b{block:02d}0000-0000-4000-8000-{n:012d}"
        guid = f"9c{block:02d}0000-0000-4000-8000-{n:012d}"
        doc["graph"]["users"].append(
            {
                "id": user,
                "userPrincipalName": f"{prefix}{n:04d}@contoso.com",
                "displayName": f"{prefix} {n}",
                "accountEnabled": True,
                "userType": "Member",
            }
        )
        doc["sentinel"]["incidents"].append(
            {
                "id": f"{workspace}/Incidents/{guid}",
                "name": guid,
                "properties": {
                    "title": f"{prefix} {n}",
                    "severity": "High",
                    "status": "New",
                    "incidentNumber": 50000 + n,
                },
            }
        )
        made.append({"user": user, "incident": f"{workspace}/Incidents/{guid}", "n": str(n)})
    admin.put("/tenant", json=doc).raise_for_status()
    return made


def trigger_body(account: dict[str, str], event_id: str) -> dict[str, Any]:
    """A Sentinel incident trigger body for one of add_accounts' incidents."""
    n = int(account["n"])
    return {
        "eventUniqueId": event_id,
        "objectSchemaType": "Incident",
        "objectEventType": "Create",
        "workspaceInfo": {
            "SubscriptionId": "8c2b5f0e-3d4a-4b6c-9a1e-7f2d3c4b5a60",
            "ResourceGroupName": "rg-soc",
            "WorkspaceName": "law-sentinel",
        },
        "workspaceId": "2b7e4c1d-9f3a-4e5b-8c6d-1a0f9e8d7c6b",
        "object": {
            "id": account["incident"],
            "name": account["incident"].rsplit("/", 1)[-1],
            "type": "Microsoft.SecurityInsights/Incidents",
            "properties": {
                "title": f"burst {n}",
                "severity": "High",
                "status": "New",
                "incidentNumber": n,
                "relatedEntities": [
                    {
                        "id": f"e{n}",
                        "kind": "Account",
                        "properties": {
                            "accountName": f"user{n}",
                            "upnSuffix": "contoso.com",
                            "aadUserId": account["user"],
                        },
                    }
                ],
            },
        },
    }


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    index = min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))
    return ordered[index]


def dump(figures: dict[str, Any]) -> None:
    print(json.dumps(figures, indent=2))
