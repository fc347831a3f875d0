"""The whole local stack in one command: Azurite, the emulated Microsoft cloud and the functions host.

python -m local.stack serve   start everything and keep serving until Ctrl-C (make serve)
python -m local.stack run     the same, after playing the bundled sample payloads through the real endpoints
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from rich.console import Console
from rich.table import Table

ROOT = Path(__file__).resolve().parent.parent
SAMPLES = Path(__file__).parent / "samples"
AZURITE_PORTS = {"blob": 10000, "queue": 10001, "table": 10002}

console = Console(highlight=False, soft_wrap=True)

# Azurite's well-known development account (public, documented by Microsoft; not a secret).
DEV_ACCOUNT = "devstoreaccount1"
DEV_KEY = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="  # noqa: S105

# The demo tenant's facts, as a SOC would set them on a deployed Function App (see local/cloud/tenants/demo.yaml).
DEMO_SUBSCRIPTION = "8c2b5f0e-3d4a-4b6c-9a1e-7f2d3c4b5a60"
DEMO_SETTINGS = {
    "RIPOSTE_SUBSCRIPTION_ID": DEMO_SUBSCRIPTION,
    "RIPOSTE_WORKSPACE_ID": "2b7e4c1d-9f3a-4e5b-8c6d-1a0f9e8d7c6b",
    "RIPOSTE_PROTECTED_GROUPS": "5e0a7c3d-2b1f-4a6e-9c8d-7f6e5d4c3b01",  # Break Glass Accounts
    "RIPOSTE_ISOLATION_ALLOWED_PREFIXES": "10.30.1.0/24",  # the jump host's subnet
    "RIPOSTE_BLOCK_IP_NSGS": f"/subscriptions/{DEMO_SUBSCRIPTION}/resourceGroups/rg-network/providers/"
    "Microsoft.Network/networkSecurityGroups/nsg-perimeter",
    "RIPOSTE_CAPTURE_STORAGE_ACCOUNT_ID": f"/subscriptions/{DEMO_SUBSCRIPTION}/resourceGroups/rg-soc/providers/"
    "Microsoft.Storage/storageAccounts/stcontosocaptures",
    "RIPOSTE_CAPTURE_DEFAULT_SECONDS": "15",
    "RIPOSTE_LRO_POLL_SECONDS": "0.5",
}


def storage_connection_string(blob: int, queue: int, table: int) -> str:
    return (
        f"DefaultEndpointsProtocol=http;AccountName={DEV_ACCOUNT};AccountKey={DEV_KEY};"
        f"BlobEndpoint=http://127.0.0.1:{blob}/{DEV_ACCOUNT};QueueEndpoint=http://127.0.0.1:{queue}/{DEV_ACCOUNT};"
        f"TableEndpoint=http://127.0.0.1:{table}/{DEV_ACCOUNT};"
    )


def azurite_command(blob: int, queue: int, table: int) -> list[str]:
    return [
        str(ROOT / "node_modules" / ".bin" / "azurite"), "--inMemoryPersistence", "--silent", "--loose",
        "--skipApiVersionCheck", "--disableTelemetry", "--blobHost", "127.0.0.1", "--queueHost", "127.0.0.1",
        "--tableHost", "127.0.0.1", "--blobPort", str(blob), "--queuePort", str(queue), "--tablePort", str(table),
    ]


def riposte_environment(cloud_url: str, ca_path: str, storage: str) -> dict[str, str]:
    """What the functions host needs to run Riposte against the emulated cloud and Azurite: only endpoints, a CA
    and the demo tenant's settings differ from a deployment."""
    return {
        **DEMO_SETTINGS,
        "AzureWebJobsStorage": storage,
        "RIPOSTE_GRAPH_ENDPOINT": cloud_url,
        "RIPOSTE_ARM_ENDPOINT": cloud_url,
        "RIPOSTE_LOGANALYTICS_ENDPOINT": cloud_url,
        "RIPOSTE_CA_BUNDLE": ca_path,
        "IDENTITY_ENDPOINT": f"{cloud_url}/msi/token",
        "IDENTITY_HEADER": os.environ.get("RIPOSTE_CLOUD_IDENTITY_HEADER", "riposte-local-identity"),
        "REQUESTS_CA_BUNDLE": ca_path,
        "SSL_CERT_FILE": ca_path,
    }


@dataclass
class Stack:
    host_port: int = int(os.environ.get("RIPOSTE_HOST_PORT", "7071"))
    cloud_port: int = int(os.environ.get("RIPOSTE_CLOUD_PORT", "7443"))
    function_key: str = field(
        default_factory=lambda: os.environ.get("RIPOSTE_FUNCTION_KEY") or secrets.token_urlsafe(18)
    )
    state_dir: Path = field(default_factory=lambda: Path(os.environ.get("RIPOSTE_STATE_DIR", ROOT / ".riposte")))
    processes: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)

    @property
    def host_url(self) -> str:
        return f"http://127.0.0.1:{self.host_port}"

    @property
    def cloud_url(self) -> str:
        return f"https://127.0.0.1:{self.cloud_port}"

    @property
    def ca_path(self) -> Path:
        return self.state_dir / "cloud-ca.pem"

    def environment(self) -> dict[str, str]:
        env = dict(os.environ)
        env.update(riposte_environment(self.cloud_url, str(self.ca_path), storage_connection_string(
            *AZURITE_PORTS.values())))
        env.update(
            {
                "RIPOSTE_STATE_DIR": str(self.state_dir),
                "RIPOSTE_FUNCTION_KEY": self.function_key,
                "RIPOSTE_HOST_PORT": str(self.host_port),
                "RIPOSTE_CLOUD_PORT": str(self.cloud_port),
                "PYTHONUNBUFFERED": "1",
            }
        )
        return env

    # --- processes -------------------------------------------------------------------------------------------------

    def _spawn(self, name: str, args: list[str]) -> None:
        self.processes[name] = subprocess.Popen(args, cwd=ROOT, env=self.environment())

    def start(self) -> None:
        self.state_dir.mkdir(parents=True, exist_ok=True)
        for port in (self.host_port, self.cloud_port, *AZURITE_PORTS.values()):
            if _port_open(port):
                raise SystemExit(f"port {port} is already in use: is another Riposte stack running?")
        azurite = ROOT / "node_modules" / ".bin" / "azurite"
        if not azurite.exists():
            raise SystemExit("Azurite is not installed: run `make serve` (it runs npm ci) or `npm ci`.")
        self._spawn(
            "azurite",
            [
                str(azurite),
                "--inMemoryPersistence",
                "--silent",
                "--loose",
                "--skipApiVersionCheck",
                "--disableTelemetry",
                "--blobHost",
                "127.0.0.1",
                "--queueHost",
                "127.0.0.1",
                "--tableHost",
                "127.0.0.1",
            ],
        )
        self._spawn("cloud", [sys.executable, "-m", "local.cloud", "--port", str(self.cloud_port)])
        self._wait("emulated cloud", lambda: _port_open(self.cloud_port) and self.ca_path.exists())
        self._spawn("host", [sys.executable, "-m", "local.host"])
        self._wait("Azurite", lambda: all(_port_open(p) for p in AZURITE_PORTS.values()))
        self._wait("functions host", lambda: _ok(f"{self.host_url}/api/health"))

    def _wait(self, what: str, ready: Any, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while not ready():
            for name, process in self.processes.items():
                if process.poll() is not None:
                    raise SystemExit(f"{name} exited with code {process.returncode} while starting")
            if time.monotonic() > deadline:
                raise SystemExit(f"{what} did not start within {timeout:.0f} s")
            time.sleep(0.1)

    def stop(self) -> None:
        for process in self.processes.values():
            if process.poll() is None:
                process.terminate()
        for process in self.processes.values():
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()

    def wait_forever(self) -> int:
        while True:
            for name, process in self.processes.items():
                if process.poll() is not None:
                    console.print(f"[red]{name} exited with code {process.returncode}[/red]")
                    return 1
            time.sleep(0.5)

    # --- output ----------------------------------------------------------------------------------------------------

    def print_endpoints(self) -> None:
        table = Table(title="Riposte local stack", show_header=False, title_justify="left")
        table.add_row("functions host", f"{self.host_url}/api")
        table.add_row("function key", self.function_key)
        table.add_row("Event Grid trigger", f"{self.host_url}/runtime/webhooks/eventgrid?functionName=defender_alert")
        table.add_row("emulated cloud", f"{self.cloud_url}  (admin: {self.cloud_url}/_admin/connection)")
        table.add_row("cloud CA certificate", str(self.ca_path))
        table.add_row("tenant", os.environ.get("RIPOSTE_CLOUD_TENANT", "local/cloud/tenants/demo.yaml (demo)"))
        table.add_row("Azurite", "blob 10000, queue 10001, table 10002 (UseDevelopmentStorage=true)")
        console.print(table)
        console.print(
            "Try it:\n"
            f"  curl -s -X POST '{self.host_url}/api/incidents' -H 'x-functions-key: {self.function_key}' \\\n"
            "       -H 'content-type: application/json' \\\n"
            "       --data @local/samples/sentinel-incident-compromised-account.json\n"
            "Ctrl-C stops everything."
        )


def _port_open(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.2)
        return s.connect_ex(("127.0.0.1", port)) == 0


def _ok(url: str) -> bool:
    try:
        return httpx.get(url, timeout=1).status_code == 200
    except httpx.HTTPError:
        return False


# --- playing the samples ---------------------------------------------------------------------------------------------


def _request_for(name: str, body: Any) -> tuple[str, dict[str, str]]:
    if isinstance(body, dict) and "specversion" in body:
        return "/api/events", {"content-type": "application/cloudevents+json; charset=utf-8"}
    if isinstance(body, list):
        return "/api/events", {"content-type": "application/json", "aeg-event-type": "Notification"}
    return "/api/incidents", {"content-type": "application/json"}


def play_samples(stack: Stack) -> int:
    """Plays every bundled sample through the real endpoints; returns how many were not accepted."""
    client = httpx.Client(base_url=stack.host_url, headers={"x-functions-key": stack.function_key}, timeout=30)
    failures = 0
    console.rule("Event Grid handshakes")
    validation = [
        {
            "id": "handshake-1",
            "topic": "local",
            "subject": "",
            "eventType": "Microsoft.EventGrid.SubscriptionValidationEvent",
            "eventTime": "2026-01-01T00:00:00Z",
            "data": {"validationCode": "riposte-demo-code"},
            "dataVersion": "1",
            "metadataVersion": "1",
        }
    ]
    r = client.post("/api/events", json=validation, headers={"aeg-event-type": "SubscriptionValidation"})
    console.print(f"POST /api/events (SubscriptionValidationEvent) -> {r.status_code} {r.text}")
    failures += r.status_code != 200
    r = client.options("/api/events", headers={"WebHook-Request-Origin": "eventgrid.azure.net"})
    console.print(
        f"OPTIONS /api/events (CloudEvents preflight) -> {r.status_code} "
        f"WebHook-Allowed-Origin: {r.headers.get('webhook-allowed-origin')}"
    )
    failures += r.status_code != 200
    for path in sorted(SAMPLES.glob("*.json")):
        body = json.loads(path.read_text(encoding="utf-8"))
        route, headers = _request_for(path.name, body)
        console.rule(path.name)
        r = client.post(route, content=path.read_bytes(), headers=headers)
        console.print(f"POST {route} -> {r.status_code}")
        if r.status_code != 202:
            failures += 1
            console.print(r.text)
            continue
        answer = r.json()
        for summary in answer.get("incidents") or [answer["incident"]]:
            _print_summary(summary)
        if isinstance(body, list):  # the same delivery through the native Event Grid trigger
            r = client.post(
                "/runtime/webhooks/eventgrid",
                params={"functionName": "defender_alert"},
                content=path.read_bytes(),
                headers=headers,
            )
            console.print(f"POST /runtime/webhooks/eventgrid?functionName=defender_alert -> {r.status_code}")
            failures += r.status_code != 202
    return failures


def _print_summary(summary: dict[str, Any]) -> None:
    console.print(
        f"[bold]{summary['title']}[/bold]  severity {summary['severity']}, status {summary['status']}, "
        f"dialect {summary['dialect']} ({summary['envelope']})"
    )
    if summary.get("armId"):
        console.print(f"  id {summary['armId']}")
    table = Table("kind", "stable id", "name", box=None, pad_edge=False)
    for entity in summary["entities"]:
        stable = (
            entity.get("aadUserId")
            or entity.get("azureId")
            or entity.get("resourceId")
            or entity.get("address")
            or entity.get("hashValue")
            or entity.get("url")
            or ""
        )
        table.add_row(entity["kind"], stable, entity.get("friendlyName", ""))
    if summary["entities"]:
        console.print(table)
    else:
        console.print("  (no entities)")


def main(argv: list[str]) -> int:
    command = argv[0] if argv else "serve"
    if command not in ("serve", "run"):
        console.print("usage: python -m local.stack serve|run")
        return 2
    if shutil.which("node") is None:
        console.print("[red]Node.js 20 is required for Azurite[/red]")
        return 2
    stack = Stack()
    signal.signal(signal.SIGTERM, lambda *_: (_ for _ in ()).throw(KeyboardInterrupt()))
    try:
        stack.start()
        stack.print_endpoints()
        if command == "run":
            failures = play_samples(stack)
            console.rule()
            console.print(f"played the samples: {'all accepted' if not failures else f'{failures} not accepted'}")
            stack.print_endpoints()
        return stack.wait_forever()
    except KeyboardInterrupt:
        return 0
    finally:
        stack.stop()


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
