"""`ftdoctor check` — placeholder until the static checker lands (issue 2)."""

from __future__ import annotations

import click

from ftdoctor.cli_options import common_options


@click.command("check")
@click.argument("paths", nargs=-1, required=True)
@common_options
def check_command(paths: tuple[str, ...], **options: object) -> None:
    """Lint training scripts and notebooks without running them."""
    raise click.UsageError("check is not built yet")
