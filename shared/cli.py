"""The `riposte` command line (typer + rich)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

app = typer.Typer(help="Riposte: SOAR playbooks for Microsoft Sentinel and Defender for Cloud.", no_args_is_help=True)
console = Console()


@app.command()
def serve() -> None:
    """Start the local stack (Azurite, the emulated cloud, the functions host) until Ctrl-C."""
    from local.stack import main as stack_main

    raise typer.Exit(stack_main(["serve"]))


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
