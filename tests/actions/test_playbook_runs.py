"""The bundled response playbooks, run in process: the real Runner, the real executor behind its port, the emulated
cloud. A sample incident in, the tenant's state and the incident's comments out (the e2e tests do the same through
the functions host)."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

from local.stack import add_incident
from shared.actions.port import ExecutorPort
from shared.engine.model import Decision, Run, RunStatus, StepStatus
from shared.engine.planner import plan_steps
from shared.engine.runner import Runner
from shared.intake import normalise
from shared.playbook.loader import load_playbooks
from tests.actions.conftest import ContextFactory
from tests.actions.test_mde import DC, LAPTOP, actions_of
from tests.actions.test_sentinel import comments, state
from tests.conftest import CloudHandle

SAMPLES = Path(__file__).resolve().parents[2] / "local" / "samples"


class Clock:
    """The runner's clock, moved by hand past a poll interval while the emulated cloud works in real time."""

    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


class PlaybookRun:
    def __init__(
        self, cloud: CloudHandle, make_context: ContextFactory, playbook: str, sample: str, **context: Any
    ) -> None:
        self.book = load_playbooks()[playbook]
        self.incident = normalise(json.loads((SAMPLES / sample).read_text()), max_entities=500).summary()
        self.clock = Clock()
        self.run = Run(
            id="run-pb", playbook=playbook, incident=self.incident, created_at=self.clock(), updated_at=self.clock(),
            steps=plan_steps(self.book, self.incident),
        )  # fmt: skip
        self.port = ExecutorPort(make_context(run_id=self.run.id, **context), self.incident)
        add_incident(cloud.admin, sample)  # as Sentinel holds it, so the write-back has somewhere to go

    async def checkpoint(self, run: Run) -> None:
        self.run = run

    async def until_finished(self, polls: int = 20) -> Run:
        for _ in range(polls):
            self.run = await Runner(self.book, self.port, self.checkpoint, self.clock).advance(self.run)
            if not self.run.status.active:
                return self.run
            self.clock.now = max(self.clock.now, self.run.resume_at or self.clock.now) + 1
            await asyncio.sleep(0.3)  # the emulated machine actions move on in real time
        raise AssertionError(f"the run is still {self.run.status}")

    def steps(self) -> dict[str, StepStatus]:
        return {s.id: s.status for s in self.run.steps}


async def test_compromised_device_contains_the_laptop_spares_the_dc_and_posts_the_package(
    make_context: ContextFactory, cloud: CloudHandle
):
    played = PlaybookRun(cloud, make_context, "compromised-device", "sentinel-incident-compromised-device.json")
    run = await played.until_finished()

    assert run.status is RunStatus.SUCCEEDED, run.reason
    steps = played.steps()
    assert steps["isolate.0"] is StepStatus.DONE and steps["scan.0"] is StepStatus.DONE
    assert steps["package.0"] is StepStatus.DONE
    # dc-01 is tagged riposte-protected in Defender: skipped before anyone is asked to approve
    assert steps["isolate.1"] is StepStatus.SKIPPED and "guardrail" in run.step("isolate.1").reason
    assert steps["scan.1"] is StepStatus.SKIPPED and steps["package.1"] is StepStatus.SKIPPED
    assert actions_of(cloud, DC) == []
    # the scan is not waited for: it may still be running when the run ends
    assert sorted(a["type"] for a in actions_of(cloud, LAPTOP)) == [
        "CollectInvestigationPackage",
        "Isolate",
        "RunAntiVirusScan",
    ]
    incident = str(played.incident["armId"])
    texts = [c["properties"]["message"] for c in comments(cloud, incident)]
    [package] = [t for t in texts if "investigation package" in t]
    assert "ready at https://" in package and "WDATP_Investigation_Package.zip" in package and "token" not in package
    assert "riposte-device-contained" in {label["labelName"] for label in state(cloud, incident)["labels"]}


async def test_compromised_device_dry_run_moves_nothing(make_context: ContextFactory, cloud: CloudHandle):
    sample = "sentinel-incident-compromised-device.json"
    played = PlaybookRun(cloud, make_context, "compromised-device", sample, dry_run=True)
    played.run.dry_run = True
    run = await played.until_finished()
    assert run.status is RunStatus.SUCCEEDED, run.reason
    assert actions_of(cloud, LAPTOP) == []


LOCATION = "8d1f3b5c-7e9a-4b2d-8f6e-1a3c5e7b9d01"
SYNC_APP = "6b2d4f8a-1c3e-4a5b-9d7f-0e1a2b3c4d01"


async def test_compromised_app_confirms_then_disables_after_approval_and_blocks_the_tor_exit(
    make_context: ContextFactory, cloud: CloudHandle
):
    played = PlaybookRun(
        cloud,
        make_context,
        "compromised-app",
        "sentinel-incident-compromised-app.json",
        blocked_ips_named_location_id=LOCATION,
    )
    run = await Runner(played.book, played.port, played.checkpoint, played.clock).advance(played.run)
    assert played.steps()["confirm.0"] is StepStatus.DONE
    assert played.steps()["disable.0"] is StepStatus.AWAITING_APPROVAL
    approval = run.step("disable.0").approval
    assert approval is not None
    approval.decisions.append(Decision(by="analyst", decision="approve", at=played.clock(), object_id="a1"))
    run = await played.until_finished()

    assert run.status is RunStatus.SUCCEEDED, run.reason
    graph = cloud.tenant()["graph"]
    assert next(s for s in graph["servicePrincipals"] if s["id"] == SYNC_APP)["accountEnabled"] is False
    risky = next(r for r in graph["riskyServicePrincipals"] if r["id"] == SYNC_APP)
    assert risky["riskState"] == "confirmedCompromised"
    location = next(n for n in graph["namedLocations"] if n["id"] == LOCATION)
    assert [r["cidrAddress"] for r in location["ipRanges"]] == ["185.220.101.47/32"]


async def test_compromised_account_requires_a_new_password_and_skips_documentation_addresses(
    make_context: ContextFactory, cloud: CloudHandle
):
    played = PlaybookRun(
        cloud,
        make_context,
        "compromised-account",
        "sentinel-incident-compromised-account.json",
        blocked_ips_named_location_id=LOCATION,
    )
    run = await played.until_finished()

    assert run.status is RunStatus.SUCCEEDED, run.reason
    assert played.steps()["password.0"] is StepStatus.DONE
    adele = next(u for u in cloud.tenant()["graph"]["users"] if u["id"] == "1c9f2b8e-4a3d-4e6f-8b1c-2d3e4f5a6b01")
    assert adele["passwordProfile"]["forceChangePasswordNextSignIn"] is True
    # the sample's addresses are documentation ranges (RFC 5737): nobody's attacker, nothing to block
    for step in ("block_ip.0", "block_ip.1"):
        assert played.steps()[step] is StepStatus.SKIPPED
        assert "not a public internet address" in run.step(step).reason


STOREFRONT = (
    "/subscriptions/8c2b5f0e-3d4a-4b6c-9a1e-7f2d3c4b5a60/resourceGroups/rg-prod-web/providers/Microsoft.Storage/"
    "storageAccounts/stcontosostorefront"
)


async def test_storage_anomaly_locks_the_account_down_and_resolves_the_alert(
    make_context: ContextFactory, cloud: CloudHandle
):
    book = load_playbooks()["storage-anomaly"]
    events = json.loads((SAMPLES / "defender-storage-alert-eventgrid.json").read_text())
    incident = normalise(events[0]["data"], max_entities=500).summary()
    clock = Clock()
    run = Run(
        id="run-st", playbook=book.name, incident=incident, created_at=clock(), updated_at=clock(),
        steps=plan_steps(book, incident),
    )  # fmt: skip
    port = ExecutorPort(make_context(run_id=run.id), incident)

    async def checkpoint(saved: Run) -> None:
        return None

    run = await Runner(book, port, checkpoint, clock).advance(run)
    assert run.step("shared_key.0").status is StepStatus.AWAITING_APPROVAL
    approval = run.step("shared_key.0").approval
    assert approval is not None
    approval.decisions.append(Decision(by="analyst", decision="approve", at=clock(), object_id="a1"))
    run = await Runner(book, port, checkpoint, clock).advance(run)

    assert run.status is RunStatus.SUCCEEDED, run.reason
    account = next(r for r in cloud.tenant()["arm"]["resources"] if r["id"] == STOREFRONT)["properties"]
    assert (account["allowBlobPublicAccess"], account["allowSharedKeyAccess"]) == (False, False)
    assert "95.173.136.70" not in [r["value"] for r in account["networkAcls"]["ipRules"]]
    [alert] = [a for a in cloud.tenant()["arm"]["security"]["alerts"] if a["id"] == incident["armId"]]
    assert alert["properties"]["status"] == "Resolved"
