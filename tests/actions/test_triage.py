"""The bundled `triage` playbook on the engine, the real executor and the emulated cloud: the compromised-account
incident is enriched, scored (each point naming its finding), labelled with its risk level and commented, and the
comment carries the threat intelligence hit, the VIP watchlist match and the score with its reasons."""

from __future__ import annotations

import html
import re
from typing import Any

from shared.actions.context import MemoryLedger
from shared.actions.port import ExecutorPort
from shared.engine.model import Run, RunStatus
from shared.engine.planner import plan_steps
from shared.engine.runner import Runner
from shared.intake import normalise
from shared.playbook.loader import bundled_playbooks
from tests.actions.conftest import ContextFactory
from tests.actions.test_loganalytics import SPRAY_IP
from tests.actions.test_sentinel import MALWARE_INCIDENT, SIGNIN_INCIDENT, comments, state
from tests.conftest import CloudHandle
from tests.unit.intake.cases import sample


async def triage(
    make_context: ContextFactory,
    name: str = "sentinel-incident-compromised-account.json",
    arm_id: str = SIGNIN_INCIDENT,
    **overrides: Any,
) -> Run:
    playbook = bundled_playbooks()["triage"]
    incident = normalise(sample(name), max_entities=500).summary()
    run = Run(
        id="triage-1",
        playbook="triage",
        incident=incident,
        incident_arm_id=arm_id,
        created_at=0.0,
        updated_at=0.0,
        steps=plan_steps(playbook, incident),
    )
    ctx = make_context(ledger=MemoryLedger(), **overrides)
    ctx.incident_id = arm_id

    async def checkpoint(_: Run) -> None:
        return None

    return await Runner(playbook, ExecutorPort(ctx, incident), checkpoint).advance(run)


async def test_triage_scores_labels_and_comments(make_context: ContextFactory, cloud: CloudHandle):
    run = await triage(make_context)
    assert run.status is RunStatus.SUCCEEDED, run.reason
    scored = run.step("writeback").outcome["score"]  # type: ignore[index]
    reasons = [(p["points"], p["finding"], p["on"]) for p in scored["points"]]
    assert (40, "ti_ip.0", SPRAY_IP) in reasons  # both TI tables, confidence 90
    assert (40, "ti_ip.1", "198.51.100.23") in reasons  # the legacy table, confidence 80
    assert (20, "vip.0", "adele.vance") in reasons
    assert (20, "ueba.0", "adele.vance") in reasons  # the breakthrough sign-in, priority 9
    assert scored["total"] == sum(p["points"] for p in scored["points"]) >= 120
    labels = {label["labelName"] for label in state(cloud, SIGNIN_INCIDENT)["labels"]}
    assert {"riposte-risk-high", "riposte-triaged"} <= labels
    [comment] = comments(cloud, SIGNIN_INCIDENT)
    message = html.unescape(re.sub(r"<[^>]+>", " ", comment["properties"]["message"]))
    assert f"Risk score: {scored['total']}" in message
    assert "threat intelligence names the address with confidence of 70 or more" in message
    assert "the account is on the VIPUsers watchlist" in message
    assert "Password spray and RDP brute force infrastructure" in message  # the TI finding's own words


async def test_a_failed_lookup_scores_nothing_and_the_run_still_comments(
    make_context: ContextFactory, cloud: CloudHandle
):
    cloud.add_fault(match="POST /v1/workspaces/*/query", status=400, count=100)
    run = await triage(make_context)
    assert run.status is RunStatus.SUCCEEDED, run.reason  # enrichments fail soft
    assert run.step("writeback").outcome["score"] == {"total": 0, "points": []}  # type: ignore[index]
    assert {s.status.value for s in run.steps if s.kind == "enrich"} == {"failed"}
    assert "riposte-risk-low" in {label["labelName"] for label in state(cloud, SIGNIN_INCIDENT)["labels"]}
    [comment] = comments(cloud, SIGNIN_INCIDENT)
    assert "No scoring rule held." in comment["properties"]["message"]


async def test_triage_of_the_compromised_vm(make_context: ContextFactory, cloud: CloudHandle):
    run = await triage(make_context, "sentinel-incident-compromised-vm.json", MALWARE_INCIDENT)
    assert run.status is RunStatus.SUCCEEDED, run.reason
    scored = run.step("writeback").outcome["score"]  # type: ignore[index]
    reasons = {(p["finding"], p["points"]) for p in scored["points"]}
    assert {("ti_file.0", 40), ("flows.0", 30), ("posture.0", 10)} <= reasons  # the hash, the attacker, the VM
    [comment] = comments(cloud, MALWARE_INCIDENT)
    message = html.unescape(re.sub(r"<[^>]+>", " ", comment["properties"]["message"]))
    assert "exchanged traffic with an address traffic analytics calls malicious" in message
    assert "203.0.113.66" in message and "Management ports of virtual machines" in message
