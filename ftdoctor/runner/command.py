"""`ftdoctor run` / `ftdoctor init` — placeholders until the runner lands (issue 4).

This module is imported by the CLI on every invocation, so it must import
nothing heavy at module level (torch is imported inside the commands).
"""

from __future__ import annotations

import click

from ftdoctor.cli_options import common_options


@click.command("run")
@common_options
def run_command(**options: object) -> None:
    """Fine-tune with the runtime doctor attached."""
    raise click.UsageError("run is not built yet")


@click.command("init")
def init_command() -> None:
    """Write a commented starter config."""
    raise click.UsageError("init is not built yet")
