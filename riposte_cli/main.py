"""The `riposte` command line (typer + rich). It talks to a running Riposte over its HTTP API
(RIPOSTE_URL, default the local host; RIPOSTE_FUNCTION_KEY; RIPOSTE_TOKEN, an Entra ID access token holding a Riposte
app role, for the analyst commands), except `playbooks validate` and `normalise`, which
work offline. The local stack is started by `make serve`, not from here: the CLI never imports `local`."""

from __future__ import annotations

import json
import os
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console, Group
from rich.live import Live
from rich.markup import escape
from rich.table import Table

app = typer.Typer(help="Riposte: SOAR playbooks for Microsoft Sentinel and Defender for Cloud.", no_args_is_help=True)
runs_app = typer.Typer(help="Runs: list them, show one as a timeline.", no_args_is_help=True)
playbooks_app = typer.Typer(help="Playbooks: list the catalogue, validate files.", no_args_is_help=True)
app.add_typer(runs_app, name="runs")
app.add_typer(playbooks_app, name="playbooks")
console = Console()

STATUS_STYLE = {
    "succeeded": "green", "done": "green", "failed": "red", "rolled_back": "yellow", "skipped": "yellow",
    "waiting": "cyan", "awaiting_approval": "cyan", "polling": "cyan", "running": "blue", "queued": "blue",
    "already_done": "green", "dry_run": "magenta", "undone": "yellow",
}  # fmt: skip


def _client() -> Any:
    import httpx

    url = os.environ.get("RIPOSTE_URL", "http://127.0.0.1:7071")
    key = os.environ.get("RIPOSTE_FUNCTION_KEY", "")
    headers = {"x-functions-key": key} if key else {}
    token = os.environ.get("RIPOSTE_TOKEN", "")  # an Entra ID access token for analyst routes (docs: auth)
    if token:
        headers["authorization"] = f"Bearer {token}"
    return httpx.Client(base_url=url, headers=headers, timeout=30)


def _check(response: Any) -> dict[str, Any]:
    if response.status_code >= 400:
        try:
            error = response.json()["error"]
            console.print(f"[red]{response.status_code} {error['code']}[/red]: {error['message']}")
        except (ValueError, KeyError):
            console.print(f"[red]{response.status_code}[/red] {response.text}")
        raise typer.Exit(1)
    body: dict[str, Any] = response.json()
    return body


def _styled(status: str) -> str:
    style = STATUS_STYLE.get(status, "white")
    return f"[{style}]{status}[/{style}]"


def _time(value: float | None) -> str:
    return datetime.fromtimestamp(value, UTC).strftime("%H:%M:%S") if value else ""


def _wait(client: Any, run_id: str) -> dict[str, Any]:
    with console.status(f"run {run_id}: waiting") as status:
        while True:
            response = client.get(f"/api/runs/{run_id}")
            run = _check(response)
            if response.status_code == 200:
                return run
            waiting = [s["id"] for s in run["steps"] if s["status"] in ("awaiting_approval", "polling")]
            status.update(f"run {run_id}: {run['status']}" + (f" ({', '.join(waiting)})" if waiting else ""))
            time.sleep(1)


ACTIVE = ("queued", "running", "waiting", "rolling_back")


def timeline(run: dict[str, Any], width: int = 48, now: float | None = None) -> Table:
    """The console's picture in characters: per step, '·' while it waited for an approval, '█' while it ran, '◆' at a
    decision, on one time axis from the run's creation to its end (or now)."""
    now = time.time() if now is None else now
    start = float(run["createdAt"])
    marks = [t for s in run["steps"] for t in (s.get("startedAt"), s.get("endedAt")) if t]
    marks += [d["at"] for s in run["steps"] for d in ((s.get("approval") or {}).get("decisions") or [])]
    end = max([*marks, run.get("finishedAt") or 0, now if run["status"] in ACTIVE else 0, start + 1])

    def column(t: float) -> int:
        return min(width - 1, max(0, int((t - start) / (end - start) * (width - 1))))

    table = Table("step", f"0 s {'─' * (width - 12)} {end - start:,.0f} s", "status", box=None)
    for step in run["steps"]:
        cells = [" "] * width
        began = step.get("startedAt")
        decisions = [d["at"] for d in ((step.get("approval") or {}).get("decisions") or [])]
        if began:
            ran_from = max(decisions) if decisions else began
            if step.get("approval"):
                waited_to = ran_from if decisions else (step.get("endedAt") or now)
                for i in range(column(began), column(waited_to) + 1):
                    cells[i] = "·"
            if step["status"] != "awaiting_approval":
                for i in range(column(ran_from), column(step.get("endedAt") or now) + 1):
                    cells[i] = "█"
        for at in decisions:
            cells[column(at)] = "◆"
        retried = f" ↻{step['retries']}" if step.get("retries") else ""
        table.add_row(step["id"], "".join(cells), _styled(step["status"]) + retried)
    return table


def run_view(run: dict[str, Any]) -> Group:
    """A run as the terminal shows it: the header, the timeline and the steps table."""
    parts: list[Any] = [
        f"[bold]{escape(run['playbook'])}[/bold] run {run['id']}  {_styled(run['status'])}"
        + ("  [magenta](dry run)[/magenta]" if run.get("dryRun") else ""),
        f"incident: {escape(str(run['incident'].get('title')))}  "
        f"({run.get('incidentArmId') or 'no Sentinel incident'})",
    ]
    if run.get("reason"):
        parts.append(f"reason: {escape(run['reason'])}")
    parts += [timeline(run), steps_table(run)]
    return Group(*parts)


def show_run(run: dict[str, Any]) -> None:
    console.print(run_view(run))
    show_findings(run)


def steps_table(run: dict[str, Any]) -> Table:
    table = Table("time", "step", "action", "on", "status", "detail", box=None)
    for step in sorted(run["steps"], key=lambda s: (s.get("startedAt") or 1e20, s["id"])):
        outcome = step.get("outcome") or {}
        entity = step.get("entity") or {}
        status = str(outcome.get("status") if step["kind"] == "action" and outcome.get("status") else step["status"])
        undo = step.get("undo") or {}
        detail = step.get("reason") or ""
        if undo:
            detail = f"{detail} / undo: {undo.get('status')} {undo.get('reason', '')}".strip(" /")
        table.add_row(
            _time(step.get("startedAt")),
            step["id"],
            step["uses"],
            str(entity.get("friendlyName") or entity.get("name") or ""),
            _styled(status),
            escape(detail[:100]),
        )
    return table


def show_findings(run: dict[str, Any]) -> None:
    """The risk score and the findings' details, as the incident comment shows them (the same tables)."""
    from shared.engine.sections import detail_sections, score_section

    writeback: dict[str, Any] = next((s for s in run["steps"] if s["kind"] == "writeback"), {})
    scored = (writeback.get("outcome") or {}).get("score")
    sections = ([score_section(scored)] if scored else []) + detail_sections(run["steps"])
    for section in sections:
        console.print(f"[bold]{escape(section.title)}[/bold]")
        table = Table(*section.headers, box=None)
        for row in section.rows:
            table.add_row(*(escape(c) for c in row))
        console.print(table)
        if section.note:
            console.print(f"[dim]{section.note}[/dim]")


@app.command()
def run(
    playbook: Annotated[str, typer.Argument(help="The playbook's name")],
    incident: Annotated[Path, typer.Option("--incident", exists=True, readable=True, help="An incident payload file")],
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Report what every action would do; change nothing")
    ] = False,
    wait: Annotated[bool, typer.Option("--wait", help="Wait for the run to finish and show its timeline")] = False,
) -> None:
    """Run a playbook on an incident."""
    payload = json.loads(incident.read_text(encoding="utf-8"))
    with _client() as client:
        body = _check(client.post(f"/api/playbooks/{playbook}/runs", json={"incident": payload, "dryRun": dry_run}))
        run_id = body["runs"][0]["id"]
        console.print(f"run {run_id} {body['status']}")
        if wait:
            show_run(_wait(client, run_id))


@runs_app.command("list")
def runs_list(
    status: Annotated[str | None, typer.Option(help="Only runs with this status")] = None,
    limit: Annotated[int, typer.Option(help="How many")] = 20,
) -> None:
    """The most recent runs."""
    params: dict[str, Any] = {"limit": limit} | ({"status": status} if status else {})
    with _client() as client:
        body = _check(client.get("/api/runs", params=params))
    table = Table("created", "run", "playbook", "status", "incident", box=None)
    for item in body["value"]:
        table.add_row(
            _time(item.get("createdAt")),
            item["id"],
            item["playbook"],
            _styled(item["status"]),
            str(item.get("title") or ""),
        )
    console.print(table)


@runs_app.command("show")
def runs_show(run_id: str, wait: Annotated[bool, typer.Option("--wait")] = False) -> None:
    """A run as a timeline of its steps."""
    with _client() as client:
        show_run(_wait(client, run_id) if wait else _check(client.get(f"/api/runs/{run_id}")))


@runs_app.command("watch")
def runs_watch(run_id: str, interval: Annotated[float, typer.Option(help="Seconds between polls")] = 1.0) -> None:
    """Follow a run live, its timeline redrawn at each poll, until it finishes (Ctrl-C stops watching, not the run)."""
    with _client() as client:
        response = client.get(f"/api/runs/{run_id}")
        run = _check(response)
        with Live(run_view(run), console=console, refresh_per_second=4) as live:
            while response.status_code == 202:
                time.sleep(interval)
                response = client.get(f"/api/runs/{run_id}")
                run = _check(response)
                live.update(run_view(run))
    show_findings(run)


def _decide(run_id: str, decision: str, step: str | None, comment: str) -> None:
    with _client() as client:
        body = _check(client.post(f"/api/runs/{run_id}/{decision}", json={"step": step, "comment": comment}))
    console.print(f"{decision}d; run {run_id} is {body['status']}")


@app.command()
def approve(
    run_id: str,
    step: Annotated[str | None, typer.Option(help="The waiting step (default: the first waiting one)")] = None,
    comment: Annotated[str, typer.Option(help="Recorded with the decision")] = "",
) -> None:
    """Approve a step that waits for approval."""
    _decide(run_id, "approve", step, comment)


@app.command()
def reject(
    run_id: str,
    step: Annotated[str | None, typer.Option(help="The waiting step (default: the first waiting one)")] = None,
    comment: Annotated[str, typer.Option(help="Recorded with the decision")] = "",
) -> None:
    """Reject a step that waits for approval: it is skipped."""
    _decide(run_id, "reject", step, comment)


@app.command()
def rollback(run_id: str, wait: Annotated[bool, typer.Option("--wait")] = False) -> None:
    """Undo every reversible action of a run, newest first."""
    with _client() as client:
        _check(client.post(f"/api/runs/{run_id}/rollback"))
        console.print(f"rollback of {run_id} requested")
        if wait:
            show_run(_wait(client, run_id))


@playbooks_app.command("list")
def playbooks_list() -> None:
    """The playbook catalogue with each playbook's actions and permissions."""
    with _client() as client:
        body = _check(client.get("/api/playbooks"))
    for playbook in body["value"]:
        console.print(f"[bold]{playbook['name']}[/bold] v{playbook['version']}: {playbook['description']}")
        for action in playbook["actions"]:
            needs = ", ".join(p["name"] for p in action["permissions"])
            flags = "".join(
                [" destructive" if action["destructive"] else "", " reversible" if action["reversible"] else ""]
            )
            console.print(f"  {action['name']:34} {action['kind']:8}{flags}  needs: {needs}")


@playbooks_app.command("validate")
def playbooks_validate(
    files: Annotated[list[Path] | None, typer.Argument(help="Playbook files (default: playbooks/*.yaml)")] = None,
) -> None:
    """Check playbooks against the schema, the action registry and CEL."""
    from shared.playbook.loader import PLAYBOOKS_DIR, PlaybookError, parse_playbook

    paths = files or sorted(PLAYBOOKS_DIR.glob("*.yaml"))
    failed = 0
    for path in paths:
        try:
            playbook = parse_playbook(path.read_text(encoding="utf-8"), path.name)
        except PlaybookError as error:
            failed += 1
            for problem in error.problems:
                console.print(f"[red]✗[/red] {problem}")
            continue
        console.print(
            f"[green]✓[/green] {path.name}: {playbook.name} ({len(playbook.enrich)} lookups, "
            f"{len(playbook.actions)} actions)"
        )
    raise typer.Exit(1 if failed else 0)


@app.command()
def normalise(
    payload: Annotated[Path, typer.Argument(exists=True, readable=True, help="A payload file (JSON)")],
) -> None:
    """Show how intake normalises a payload, without sending it anywhere."""
    from shared.intake import IntakeError, normalise, parse_delivery
    from shared.settings import get_settings

    body = json.loads(payload.read_text(encoding="utf-8"))
    limit = get_settings().max_entities
    try:
        if isinstance(body, list) or (isinstance(body, dict) and "specversion" in body):
            summaries = [i.summary() for i in parse_delivery(body, max_entities=limit).incidents]
        else:
            summaries = [normalise(body, max_entities=limit).summary()]
    except IntakeError as error:
        console.print_json(data=error.as_body())
        raise typer.Exit(1) from None
    console.print_json(data=summaries)


def main() -> None:
    app()


if __name__ == "__main__":
    main()
