"""The whole local stack for end-to-end tests: Azurite and the functions host as their own processes, the emulated
cloud (the session's `cloud_server`), all on free ports so a running `make run` does not get in the way."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest

from local.stack import azurite_command, riposte_environment, storage_connection_string

ROOT = Path(__file__).resolve().parents[2]
FUNCTION_KEY = "e2e-test-function-key"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _port_open(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.2)
        return s.connect_ex(("127.0.0.1", port)) == 0


@contextmanager
def running_azurite() -> Iterator[str]:
    """Azurite on free ports, in memory; yields its connection string."""
    ports = (free_port(), free_port(), free_port())
    process = subprocess.Popen(azurite_command(*ports), cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 30
    while not all(_port_open(p) for p in ports):
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            raise RuntimeError(f"Azurite did not start: {process.stderr.read().decode() if process.stderr else ''}")
        time.sleep(0.1)
    try:
        yield storage_connection_string(*ports)
    finally:
        process.terminate()
        process.wait(timeout=10)


@pytest.fixture(scope="session")
def azurite() -> Iterator[str]:
    with running_azurite() as connection:
        yield connection


class Host:
    """The functions host process; restartable (the crash tests SIGKILL it)."""

    def __init__(self, env: dict[str, str]) -> None:
        self.env = env
        self.port = int(env["RIPOSTE_HOST_PORT"])
        self.url = f"http://127.0.0.1:{self.port}"
        self.process: subprocess.Popen[bytes] | None = None
        self.log_path = Path(env["RIPOSTE_STATE_DIR"]) / f"host-{self.port}.log"

    def start(self, healthy: bool = True) -> None:
        """Starts the host and waits until health answers 200 (or, with healthy=False, answers at all: a host with
        bad settings answers 503 naming them)."""
        log = open(self.log_path, "ab")  # noqa: SIM115 - the child process owns it
        self.process = subprocess.Popen(
            [sys.executable, "-m", "local.host"], cwd=ROOT, env=self.env, stdout=log, stderr=subprocess.STDOUT
        )
        deadline = time.monotonic() + 30
        while True:
            try:
                if httpx.get(f"{self.url}/api/health", timeout=1).status_code == 200 or not healthy:
                    return
            except httpx.HTTPError:
                pass
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.process.kill()
                raise RuntimeError(f"functions host did not start:\n{self.log_path.read_text()[-3000:]}")
            time.sleep(0.1)

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=10)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()


@pytest.fixture(scope="session")
def host(azurite: str, cloud_server: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Host]:
    env = dict(os.environ)
    env.update(riposte_environment(cloud_server.url, str(cloud_server.certs.ca_path), azurite))
    env.update(
        RIPOSTE_FUNCTION_KEY=FUNCTION_KEY,
        RIPOSTE_HOST_PORT=str(free_port()),
        RIPOSTE_STATE_DIR=str(tmp_path_factory.mktemp("host")),
        RIPOSTE_HOST_QUEUE_LEASE_S="4",
        RIPOSTE_HOST_VISIBILITY_TIMEOUT_S="0",
        RIPOSTE_IDENTITY_PROTECTION_RPS="20",
        RIPOSTE_LRO_POLL_SECONDS="0.1",
        RIPOSTE_RETRY_BACKOFF_SECONDS="0.1",
        RIPOSTE_CAPTURE_DEFAULT_SECONDS="2",
        PYTHONUNBUFFERED="1",
    )
    running = Host(env)
    running.start()
    yield running
    running.stop()


@pytest.fixture(scope="session")
def host_url(host: Host) -> str:
    return host.url


def mint_token(cloud_server: Any, **spec: Any) -> str:
    """An access token for Riposte's API from the emulated Entra ID (POST /_admin/tokens, local/cloud/oidc.py)."""
    response = httpx.post(
        f"{cloud_server.url}/_admin/tokens", json=spec, verify=str(cloud_server.certs.ca_path), timeout=30
    )
    response.raise_for_status()
    token: str = response.json()["access_token"]
    return token


ANALYST_ROLES = ["Riposte.Run", "Riposte.Approve", "Riposte.Read"]


@pytest.fixture
def client(host_url: str, cloud_server: Any) -> Iterator[httpx.Client]:
    """A SOC analyst's client: the function key and an Entra token holding every Riposte app role."""
    headers = {
        "x-functions-key": FUNCTION_KEY,
        "authorization": f"Bearer {mint_token(cloud_server, roles=ANALYST_ROLES)}",
    }
    with httpx.Client(base_url=host_url, headers=headers, timeout=30) as c:
        yield c


@pytest.fixture
def anonymous(host_url: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=host_url, timeout=30) as c:
        yield c


def wait_for_run(client: httpx.Client, location: str, timeout: float = 60, until: Any = None) -> dict[str, Any]:
    """Follows the Logic Apps async pattern: poll Location while it answers 202."""
    deadline = time.monotonic() + timeout
    while True:
        response = client.get(location)
        body: dict[str, Any] = response.json()
        if until is not None and until(body):
            return body
        if response.status_code == 200:
            return body
        assert response.status_code == 202, response.text
        assert response.headers["Location"].endswith(body["id"]) and int(response.headers["Retry-After"]) > 0
        if time.monotonic() > deadline:
            raise AssertionError(f"run still {body['status']} after {timeout} s: {body}")
        time.sleep(0.1)
