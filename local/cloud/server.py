"""Runs the emulated cloud over HTTPS with a throwaway CA (trustme), in the foreground or in a background thread."""

from __future__ import annotations

import contextlib
import os
import socket
import threading
from dataclasses import dataclass
from pathlib import Path

import trustme
import uvicorn

from local.cloud.app import build_app
from local.cloud.identity import IDENTITY_HEADER
from local.cloud.state import DEFAULT_TENANT, Cloud

DEFAULT_PORT = 7443


def state_dir() -> Path:
    path = Path(os.environ.get("RIPOSTE_STATE_DIR", Path.cwd() / ".riposte"))
    path.mkdir(parents=True, exist_ok=True)
    return path


@dataclass
class Certificates:
    ca_path: Path
    cert_path: Path
    key_path: Path


def make_certificates(directory: Path) -> Certificates:
    ca = trustme.CA(organization_name="Riposte emulated cloud")
    leaf = ca.issue_cert("127.0.0.1", "localhost", "::1")
    certs = Certificates(directory / "cloud-ca.pem", directory / "cloud-cert.pem", directory / "cloud-key.pem")
    ca.cert_pem.write_to_path(str(certs.ca_path))
    leaf.cert_chain_pems[0].write_to_path(str(certs.cert_path))
    for extra in leaf.cert_chain_pems[1:]:
        extra.write_to_path(str(certs.cert_path), append=True)
    leaf.private_key_pem.write_to_path(str(certs.key_path))
    return certs


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class CloudServer:
    """The server plus its connection facts. start() runs it in a thread (tests); serve() in the foreground."""

    def __init__(self, port: int | None = None, tenant: Path | None = None, directory: Path | None = None) -> None:
        self.port = port if port is not None else int(os.environ.get("RIPOSTE_CLOUD_PORT", DEFAULT_PORT))
        self.directory = directory or state_dir()
        self.certs = make_certificates(self.directory)
        self.cloud = Cloud()
        self.cloud.load_seed(tenant or Path(os.environ.get("RIPOSTE_CLOUD_TENANT", DEFAULT_TENANT)))
        self.cloud.base_url = f"https://127.0.0.1:{self.port}"
        self.cloud.ca_path = str(self.certs.ca_path)
        self.cloud.identity_header = IDENTITY_HEADER
        self.app = build_app(self.cloud)
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return self.cloud.base_url

    @property
    def identity_endpoint(self) -> str:
        return f"{self.url}/msi/token"

    def _config(self) -> uvicorn.Config:
        return uvicorn.Config(
            self.app,
            host="127.0.0.1",
            port=self.port,
            ssl_certfile=str(self.certs.cert_path),
            ssl_keyfile=str(self.certs.key_path),
            log_level="warning",
            access_log=False,
            lifespan="off",
            http="h11",
            timeout_graceful_shutdown=2,
        )

    def serve(self) -> None:
        self._server = uvicorn.Server(self._config())
        self._server.run()

    def start(self) -> CloudServer:
        self._server = uvicorn.Server(self._config())
        self._thread = threading.Thread(target=self._server.run, name="emulated-cloud", daemon=True)
        self._thread.start()
        while not self._server.started:
            if not self._thread.is_alive():
                raise RuntimeError(f"emulated cloud did not start on port {self.port}")
            threading.Event().wait(0.01)
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.should_exit = True
            # Idle keep-alive TLS connections (SDK connection pools) would otherwise hold the shutdown for seconds.
            self._server.force_exit = True
        if self._thread is not None:
            self._thread.join(timeout=10)

    def client_environment(self) -> dict[str, str]:
        """What a process needs to reach this cloud through the unchanged production code paths."""
        return {
            "IDENTITY_ENDPOINT": self.identity_endpoint,
            "IDENTITY_HEADER": IDENTITY_HEADER,
            "REQUESTS_CA_BUNDLE": str(self.certs.ca_path),
            "SSL_CERT_FILE": str(self.certs.ca_path),
        }


def run_forever(port: int | None = None, tenant: Path | None = None) -> None:
    server = CloudServer(port=port, tenant=tenant)
    print(f"emulated cloud: {server.url}", flush=True)
    print(f"  CA certificate: {server.certs.ca_path}", flush=True)
    print(f"  tenant: {server.cloud.seed_path}", flush=True)
    print("  client environment:", flush=True)
    for name, value in server.client_environment().items():
        print(f"    {name}={value}", flush=True)
    with contextlib.suppress(KeyboardInterrupt):
        server.serve()
