"""The functions host as its own process, serving function_app.py over HTTP like `func start`."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

ROOT = Path(__file__).resolve().parents[2]
FUNCTION_KEY = "e2e-test-function-key"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="session")
def host_url() -> Iterator[str]:
    port = _free_port()
    env = dict(os.environ, RIPOSTE_FUNCTION_KEY=FUNCTION_KEY, RIPOSTE_HOST_PORT=str(port), PYTHONUNBUFFERED="1")
    process = subprocess.Popen(
        [sys.executable, "-m", "local.host"], cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while True:
        try:
            if httpx.get(f"{url}/api/health", timeout=1).status_code == 200:
                break
        except httpx.HTTPError:
            pass
        if process.poll() is not None or time.monotonic() > deadline:
            output = process.stdout.read().decode() if process.stdout else ""
            process.kill()
            raise RuntimeError(f"functions host did not start:\n{output}")
        time.sleep(0.1)
    yield url
    process.terminate()
    process.wait(timeout=10)


@pytest.fixture
def client(host_url: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=host_url, headers={"x-functions-key": FUNCTION_KEY}, timeout=30) as c:
        yield c


@pytest.fixture
def anonymous(host_url: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=host_url, timeout=30) as c:
        yield c
