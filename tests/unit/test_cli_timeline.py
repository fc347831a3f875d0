"""`riposte runs show` and `riposte runs watch` draw the console's timeline in the terminal: a wait for approval, the
decision, the run after it, retries; watch follows the Logic Apps async pattern until the run answers 200."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from rich.console import Console
from typer.testing import CliRunner

from riposte_cli import main as cli

T0 = 1_800_000_000.0


def run(status: str = "succeeded") -> dict[str, Any]:
    return {
        "id": "r1",
        "playbook": "compromised-vm",
        "status": status,
        "dryRun": False,
        "createdAt": T0,
        "finishedAt": T0 + 100 if status == "succeeded" else None,
        "incident": {"title": "Malware on <vm-web-01>"},
        "incidentArmId": None,
        "reason": "",
        "steps": [
            {"id": "vm.0", "uses": "compute.get_vm_context", "kind": "enrich", "status": "done",
             "startedAt": T0, "endedAt": T0 + 10, "retries": 2},
            {"id": "isolate.0", "uses": "network.isolate_vm", "kind": "action", "status": "done",
             "startedAt": T0 + 10, "endedAt": T0 + 90,
             "approval": {"decisions": [{"at": T0 + 80, "by": "megan", "decision": "approve"}]}},
        ],
    }  # fmt: skip


def drawn(renderable: Any) -> str:
    console = Console(width=140, record=True, color_system=None)
    console.print(renderable)
    return console.export_text()


def test_the_timeline_shows_the_wait_the_decision_and_the_work() -> None:
    text = drawn(cli.timeline(run(), width=50))
    isolate = next(line for line in text.splitlines() if line.strip().startswith("isolate.0"))
    assert "·" in isolate and "◆" in isolate and "█" in isolate
    assert isolate.index("·") < isolate.index("◆") < isolate.rindex("█")
    assert "↻2" in text and "100 s" in text


def test_the_view_escapes_what_the_run_says() -> None:
    assert "Malware on <vm-web-01>" in drawn(cli.run_view(run()))


def test_watch_follows_the_run_until_it_answers_200(monkeypatch: pytest.MonkeyPatch) -> None:
    answers = [(202, run("waiting")), (202, run("running")), (200, run())]

    def handler(request: httpx.Request) -> httpx.Response:
        status, body = answers.pop(0)
        return httpx.Response(status, json=body)

    monkeypatch.setattr(
        cli, "_client", lambda: httpx.Client(transport=httpx.MockTransport(handler), base_url="http://x")
    )
    result = CliRunner().invoke(cli.app, ["runs", "watch", "r1", "--interval", "0"])
    assert result.exit_code == 0, result.output
    assert answers == [] and "succeeded" in result.output
