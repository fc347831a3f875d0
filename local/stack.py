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

from local.cloud.oidc import APP_ROLES, DEFAULT_API_CLIENT_ID

ROOT = Path(__file__).resolve().parent.parent
SAMPLES = Path(__file__).parent / "samples"
AZURITE_PORTS = {"blob": 10000, "queue": 10001, "table": 10002}

console = Console(highlight=False, soft_wrap=True)

# Azurite's well-known development account (public, documented by Microsoft; not a secret).
DEV_ACCOUNT = "devstoreaccount1"
DEV_KEY = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="

# The demo tenant's facts, as a SOC would set them on a deployed Function App (see local/cloud/tenants/demo.yaml).
DEMO_SUBSCRIPTION = "8c2b5f0e-3d4a-4b6c-9a1e-7f2d3c4b5a60"
DEMO_TENANT = "6f1d3c2e-5a4b-4c8d-9e7f-0a1b2c3d4e5f"
DEMO_SETTINGS = {
    "RIPOSTE_SUBSCRIPTION_ID": DEMO_SUBSCRIPTION,
    "RIPOSTE_WORKSPACE_ID": "2b7e4c1d-9f3a-4e5b-8c6d-1a0f9e8d7c6b",
    # a manual run may name an incident by its number in this workspace
    "RIPOSTE_SENTINEL_WORKSPACE": f"/subscriptions/{DEMO_SUBSCRIPTION}/resourceGroups/rg-soc/providers/"
    "Microsoft.OperationalInsights/workspaces/law-sentinel",
    "RIPOSTE_PROTECTED_GROUPS": "5e0a7c3d-2b1f-4a6e-9c8d-7f6e5d4c3b01",  # Break Glass Accounts
    "RIPOSTE_ISOLATION_ALLOWED_PREFIXES": "10.30.1.0/24",  # the jump host's subnet
    "RIPOSTE_BLOCK_IP_NSGS": f"/subscriptions/{DEMO_SUBSCRIPTION}/resourceGroups/rg-network/providers/"
    "Microsoft.Network/networkSecurityGroups/nsg-perimeter",
    "RIPOSTE_CAPTURE_STORAGE_ACCOUNT_ID": f"/subscriptions/{DEMO_SUBSCRIPTION}/resourceGroups/rg-soc/providers/"
    "Microsoft.Storage/storageAccounts/stcontosocaptures",
    "RIPOSTE_CAPTURE_DEFAULT_SECONDS": "15",
    "RIPOSTE_BLOCKED_IPS_NAMED_LOCATION_ID": "8d1f3b5c-7e9a-4b2d-8f6e-1a3c5e7b9d01",  # Riposte blocked IPs
    "RIPOSTE_LRO_POLL_SECONDS": "0.5",
    # analysts' tokens: the tenant, and Riposte's API app registration (client id and Application ID URI)
    "RIPOSTE_AUTH_TENANT_ID": DEMO_TENANT,
    "RIPOSTE_AUTH_AUDIENCE": f"{DEFAULT_API_CLIENT_ID},api://{DEFAULT_API_CLIENT_ID}",
}


def storage_connection_string(blob: int, queue: int, table: int) -> str:
    return (
        f"DefaultEndpointsProtocol=http;AccountName={DEV_ACCOUNT};AccountKey={DEV_KEY};"
        f"BlobEndpoint=http://127.0.0.1:{blob}/{DEV_ACCOUNT};QueueEndpoint=http://127.0.0.1:{queue}/{DEV_ACCOUNT};"
        f"TableEndpoint=http://127.0.0.1:{table}/{DEV_ACCOUNT};"
    )


def azurite_command(blob: int, queue: int, table: int) -> list[str]:
    return [
        str(ROOT / "node_modules" / ".bin" / "azurite"),
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
        "--blobPort",
        str(blob),
        "--queuePort",
        str(queue),
        "--tablePort",
        str(table),
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
        "RIPOSTE_MDE_ENDPOINT": cloud_url,
        "RIPOSTE_CA_BUNDLE": ca_path,
        "RIPOSTE_AUTH_METADATA_URL": f"{cloud_url}/{DEMO_TENANT}/v2.0/.well-known/openid-configuration",
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
    def console_url(self) -> str:
        # The key rides in the fragment, which the browser keeps to itself: the page stores it for its API calls.
        return f"{self.host_url}/api/console/#key={self.function_key}"

    @property
    def cloud_url(self) -> str:
        return f"https://127.0.0.1:{self.cloud_port}"

    @property
    def ca_path(self) -> Path:
        return self.state_dir / "cloud-ca.pem"

    def environment(self) -> dict[str, str]:
        env = dict(os.environ)
        env.update(
            riposte_environment(self.cloud_url, str(self.ca_path), storage_connection_string(*AZURITE_PORTS.values()))
        )
        env.update(
            {
                "RIPOSTE_CONSOLE_URL": f"{self.host_url}/api/console/",
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
        # Each process logs to its own file, so the terminal shows what the scenarios do, not every log line.
        log = open(self.state_dir / f"{name}.log", "wb")  # noqa: SIM115 - the child process owns it
        self.processes[name] = subprocess.Popen(
            args, cwd=ROOT, env=self.environment(), stdout=log, stderr=subprocess.STDOUT
        )

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
                    log = self.state_dir / f"{name}.log"
                    raise SystemExit(f"{name} exited with code {process.returncode} while starting (see {log})")
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
                    log = self.state_dir / f"{name}.log"
                    console.print(f"[red]{name} exited with code {process.returncode}[/red] (see {log})")
                    return 1
            time.sleep(0.5)

    # --- output ----------------------------------------------------------------------------------------------------

    def print_endpoints(self) -> None:
        table = Table(title="Riposte local stack", show_header=False, title_justify="left")
        table.add_column()
        table.add_column(overflow="fold")  # the console's address is copied whole, even in a narrow terminal
        table.add_row("functions host", f"{self.host_url}/api")
        table.add_row("console", self.console_url)
        table.add_row("function key", self.function_key)
        table.add_row(
            "analyst token",
            f"curl -s --cacert {self.ca_path} -X POST {self.cloud_url}/_admin/tokens "
            f"""-d '{{"roles": {json.dumps(list(APP_ROLES))}}}'  (then RIPOSTE_TOKEN=<access_token>)""",
        )
        table.add_row("Event Grid trigger", f"{self.host_url}/runtime/webhooks/eventgrid?functionName=defender_alert")
        table.add_row("emulated cloud", f"{self.cloud_url}  (admin: {self.cloud_url}/_admin/connection)")
        table.add_row("cloud CA certificate", str(self.ca_path))
        table.add_row("tenant", os.environ.get("RIPOSTE_CLOUD_TENANT", "local/cloud/tenants/demo.yaml (demo)"))
        table.add_row("Azurite", "blob 10000, queue 10001, table 10002 (UseDevelopmentStorage=true)")
        table.add_row("logs (JSON lines)", f"{self.state_dir}/host.log, cloud.log, azurite.log")
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


# --- playing the scenarios ------------------------------------------------------------------------------------------


class Player:
    """Plays the demo scenarios through the real endpoints and prints what happened."""

    def __init__(self, stack: Stack) -> None:
        self.stack = stack
        self.cloud = httpx.Client(base_url=f"{stack.cloud_url}/_admin", verify=str(stack.ca_path), timeout=30)
        # The demo plays a SOC analyst: the function key and an Entra token holding every Riposte app role.
        minted = self.cloud.post("/tokens", json={"roles": list(APP_ROLES)})
        minted.raise_for_status()
        headers = {"x-functions-key": stack.function_key, "authorization": f"Bearer {minted.json()['access_token']}"}
        self.client = httpx.Client(base_url=stack.host_url, headers=headers, timeout=30)
        self.problems: list[str] = []

    def post_sample(self, name: str, route: str = "/api/incidents", **extra_headers: str) -> dict[str, Any]:
        path = SAMPLES / name
        body = json.loads(path.read_text(encoding="utf-8"))
        _, headers = _request_for(name, body)
        response = self.client.post(route, content=path.read_bytes(), headers={**headers, **extra_headers})
        console.print(f"POST {route} {name} -> {response.status_code}")
        if response.status_code >= 400:
            self.problems.append(f"{name}: {response.status_code} {response.text[:200]}")
            return {}
        answer: dict[str, Any] = response.json()
        return answer

    def wait(self, run_id: str, until: Any = None, timeout: float = 90) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while True:
            response = self.client.get(f"/api/runs/{run_id}")
            run: dict[str, Any] = response.json()
            if response.status_code == 200 or (until is not None and until(run)):
                return run
            if time.monotonic() > deadline:
                self.problems.append(f"run {run_id} still {run['status']} after {timeout:.0f} s")
                return run
            time.sleep(0.3)

    def show(self, run: dict[str, Any]) -> None:
        from riposte_cli.main import show_run

        show_run(run)

    def writes_since(self, since: float) -> list[str]:
        entries = self.cloud.get("/requests", params={"since": since}).json()["value"]
        reads = ("/query", "/querystatus", "/entities", "/alerts", "/$batch")
        return [
            f"{e['method']} {e['path']}"
            for e in entries
            if e["method"] in ("PUT", "PATCH", "POST", "DELETE")
            and not e["path"].lower().endswith(reads)
            and "/msi/" not in e["path"]
        ]

    def compromised_device(self) -> None:
        _compromised_device(self)
        _compromised_app(self)
        _storage_anomaly(self)

    def run_ids(self, answer: dict[str, Any]) -> list[str]:
        runs = answer.get("runs") or [r for i in answer.get("incidents", []) for r in i["runs"]]
        return [r["id"] for r in runs]

    def play(self) -> int:
        handshake = [
            {
                "id": "handshake-1",
                "topic": "local",
                "subject": "",
                "eventTime": "2026-01-01T00:00:00Z",
                "eventType": "Microsoft.EventGrid.SubscriptionValidationEvent",
                "data": {"validationCode": "riposte-demo-code"},
                "dataVersion": "1",
                "metadataVersion": "1",
            }
        ]
        console.rule("Event Grid subscription handshake")
        r = self.client.post("/api/events", json=handshake, headers={"aeg-event-type": "SubscriptionValidation"})
        console.print(f"POST /api/events (SubscriptionValidationEvent) -> {r.status_code} {r.text}")

        console.rule("1. A compromised account (Sentinel incident trigger)")
        answer = self.post_sample("sentinel-incident-compromised-account.json")
        [account_run] = self.run_ids(answer) or [""]
        if account_run:
            self.show(self.wait(account_run))

        self.triage()

        console.rule("2. The same incident delivered again")
        again = self.post_sample("sentinel-incident-compromised-account.json")
        console.print(f"status {again.get('status')}: the same run {self.run_ids(again)}, no new one")

        console.rule("3. A break-glass account: the guardrails protect it")
        answer = self.post_sample("sentinel-incident-breakglass-signin.json")
        for run_id in self.run_ids(answer):
            self.show(self.wait(run_id))

        console.rule("4. A dry run: every action reports what it would do")
        since = time.time()
        payload = json.loads((SAMPLES / "sentinel-alert-trigger-legacy.json").read_text(encoding="utf-8"))
        r = self.client.post("/api/playbooks/compromised-account/runs", json={"incident": payload, "dryRun": True})
        console.print(f"POST /api/playbooks/compromised-account/runs (dryRun) -> {r.status_code}")
        for run_id in self.run_ids(r.json()):
            self.show(self.wait(run_id))
        writes = self.writes_since(since)
        console.print(f"writes to the cloud during the dry run: {len(writes)} {writes}")
        if writes:
            self.problems.append(f"the dry run wrote: {writes}")

        console.rule("5. A compromised production VM: isolation waits for approval, the demo approves")
        answer = self.post_sample("sentinel-incident-compromised-vm.json")
        for run_id in self.run_ids(answer):
            run = self.wait(run_id, until=lambda r: any(s["status"] == "awaiting_approval" for s in r["steps"]))
            waiting = [s["id"] for s in run["steps"] if s["status"] == "awaiting_approval"]
            console.print(f"waiting for approval: {waiting}")
            for step in waiting:
                r = self.client.post(f"/api/runs/{run_id}/approve", json={"step": step, "comment": "demo approval"})
                console.print(f"POST /api/runs/{run_id}/approve {step} -> {r.status_code}")
            self.show(self.wait(run_id, timeout=120))

        self.compromised_device()

        console.rule("8. A Defender for Cloud alert over Event Grid (and the native trigger: one run)")
        answer = self.post_sample("defender-alert-eventgrid.json", "/api/events")
        r = self.client.post(
            "/runtime/webhooks/eventgrid",
            params={"functionName": "defender_alert"},
            content=(SAMPLES / "defender-alert-eventgrid.json").read_bytes(),
            headers={"content-type": "application/json", "aeg-event-type": "Notification"},
        )
        console.print(f"POST /runtime/webhooks/eventgrid?functionName=defender_alert -> {r.status_code}")
        for run_id in self.run_ids(answer):
            self.show(self.wait(run_id))

        if account_run:
            console.rule("9. Rolling back the compromised-account run")
            r = self.client.post(f"/api/runs/{account_run}/rollback")
            console.print(f"POST /api/runs/{account_run}/rollback -> {r.status_code}")
            self.show(self.wait(account_run))
        self.start_from_sentinel()
        self.leave_one_for_the_console()
        return len(self.problems)

    def start_from_sentinel(self) -> None:
        """Where analysts are: a dry run on "incident 1042" (read from Sentinel), and the entity trigger's body."""
        console.rule("7b. Started from Sentinel: incident 1042 by number, and Run playbook on an entity")
        r = self.client.post("/api/playbooks/compromised-account/runs", json={"incidentNumber": 1042, "dryRun": True})
        console.print(f"POST /api/playbooks/compromised-account/runs {{incidentNumber: 1042}} -> {r.status_code}")
        for run_id in self.run_ids(r.json()) if r.status_code < 400 else []:
            self.show(self.wait(run_id))
        answer = self.post_sample("sentinel-entity-trigger-account.json", "/api/incidents?dryRun=true")
        for run_id in self.run_ids(answer):
            run = self.wait(run_id)
            console.print(f"entity trigger: run {run_id} on {run['incident']['title']!r}: {run['status']}")

    def triage(self) -> None:
        """The triage playbook run by name on the same incident: its comment shows the threat intelligence hit, the
        VIP watchlist match and the risk score with its reasons."""
        console.rule("1b. Triage of the same incident: enrichment and a risk score with its reasons")
        payload = json.loads((SAMPLES / "sentinel-incident-compromised-account.json").read_text(encoding="utf-8"))
        r = self.client.post("/api/playbooks/triage/runs", json={"incident": payload})
        console.print(f"POST /api/playbooks/triage/runs -> {r.status_code}")
        for run_id in self.run_ids(r.json()) if r.status_code < 400 else []:
            run = self.wait(run_id)
            self.show(run)
            incident = str(run.get("incidentArmId") or "").lower()
            found = [
                i for i in self.cloud.get("/tenant").json()["sentinel"]["incidents"] if i["id"].lower() == incident
            ]
            messages = [c["properties"]["message"] for i in found for c in i.get("comments", [])]
            comment = next((m for m in messages if "Riposte: triage" in m), "")
            expected = ("Risk score:", "threat intelligence names the address", "VIPUsers watchlist")
            missing = [text for text in expected if text not in comment]
            console.print(f"the triage comment ({len(comment):,} characters) shows: " + ", ".join(expected))
            if missing:
                self.problems.append(f"the triage comment lacks {missing}")

    def leave_one_for_the_console(self) -> None:
        """The VM incident once more, as another delivery: its isolation waits for an analyst in the console."""
        console.rule("8. Waiting for you: approve the isolation in the console")
        answer = self.post_sample("sentinel-incident-compromised-vm.json", **{"Idempotency-Key": "demo-console"})
        for run_id in self.run_ids(answer):
            self.wait(run_id, until=lambda r: any(s["status"] == "awaiting_approval" for s in r["steps"]))
            console.print(f"open {self.stack.console_url} , sign in, then Approvals (run {run_id})")


def tenant_incident(trigger_body: dict[str, Any]) -> dict[str, Any]:
    """The Sentinel incident a sample's trigger body stands for, in the emulated tenant's shape: the demo scenarios
    that are not in the demo tenant add theirs before they post, as the analytics rule would have created it."""
    incident = trigger_body["object"]
    props = incident["properties"]
    fields = ("title", "description", "severity", "status", "incidentNumber", "createdTimeUtc")
    return {
        "id": incident["id"],
        "properties": {name: props[name] for name in fields if name in props},
        "entities": [{"kind": e["kind"], "properties": e["properties"]} for e in props.get("relatedEntities", [])],
        "alerts": [{"properties": a["properties"]} for a in props.get("alerts", [])],
    }


def add_incident(admin: httpx.Client, sample: str) -> None:
    doc = admin.get("/tenant").json()
    incident = tenant_incident(json.loads((SAMPLES / sample).read_text(encoding="utf-8")))
    incidents = doc["sentinel"]["incidents"]
    if all(i["id"].lower() != incident["id"].lower() for i in incidents):
        incidents.append(incident)
        admin.put("/tenant", json=doc).raise_for_status()


def _compromised_device(player: Player) -> None:
    console.rule("6. A compromised device (Defender for Endpoint): isolate, scan, collect; the DC is spared")
    add_incident(player.cloud, "sentinel-incident-compromised-device.json")
    answer = player.post_sample("sentinel-incident-compromised-device.json")
    for run_id in player.run_ids(answer):
        run = player.wait(run_id, timeout=120)
        player.show(run)
        package = next((s for s in run.get("steps", []) if s["id"] == "package.0"), None)
        if package is None or package["status"] != "done":
            player.problems.append(f"compromised-device: the investigation package step is {package}")


def _compromised_app(player: Player) -> None:
    console.rule("7. A compromised workload identity: confirmed, disabled after approval, its Tor exit blocked")
    add_incident(player.cloud, "sentinel-incident-compromised-app.json")
    answer = player.post_sample("sentinel-incident-compromised-app.json")
    for run_id in player.run_ids(answer):
        run = player.wait(run_id, until=lambda r: any(s["status"] == "awaiting_approval" for s in r["steps"]))
        for step in [s["id"] for s in run["steps"] if s["status"] == "awaiting_approval"]:
            r = player.client.post(f"/api/runs/{run_id}/approve", json={"step": step, "comment": "demo approval"})
            console.print(f"POST /api/runs/{run_id}/approve {step} -> {r.status_code}")
        run = player.wait(run_id)
        player.show(run)
        if run.get("status") != "succeeded":
            player.problems.append(f"compromised-app: the run is {run.get('status')}")


def _storage_anomaly(player: Player) -> None:
    console.rule("7b. A Defender for Storage alert: the account locked down, shared keys after approval")
    answer = player.post_sample("defender-storage-alert-eventgrid.json", "/api/events")
    for run_id in player.run_ids(answer):
        run = player.wait(run_id, until=lambda r: any(s["status"] == "awaiting_approval" for s in r["steps"]))
        for step in [s["id"] for s in run["steps"] if s["status"] == "awaiting_approval"]:
            r = player.client.post(f"/api/runs/{run_id}/approve", json={"step": step, "comment": "demo approval"})
            console.print(f"POST /api/runs/{run_id}/approve {step} -> {r.status_code}")
        run = player.wait(run_id)
        player.show(run)
        if run.get("status") != "succeeded":
            player.problems.append(f"storage-anomaly: the run is {run.get('status')}")


def _request_for(name: str, body: Any) -> tuple[str, dict[str, str]]:
    if isinstance(body, dict) and "specversion" in body:
        return "/api/events", {"content-type": "application/cloudevents+json; charset=utf-8"}
    if isinstance(body, list):
        return "/api/events", {"content-type": "application/json", "aeg-event-type": "Notification"}
    return "/api/incidents", {"content-type": "application/json"}


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
            player = Player(stack)
            problems = player.play()
            console.rule()
            console.print(
                "played the scenarios: " + ("all as expected" if not problems else "; ".join(player.problems))
            )
            stack.print_endpoints()
        return stack.wait_forever()
    except KeyboardInterrupt:
        return 0
    finally:
        stack.stop()


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
