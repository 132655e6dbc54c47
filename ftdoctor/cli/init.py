"""`ftdoctor init` — write a commented starter run config."""

from __future__ import annotations

from pathlib import Path

import click


@click.command("init")
@click.argument("path", default="ftdoctor.yaml", metavar="[PATH]")
@click.option("--force", is_flag=True, help="Overwrite PATH if it exists.")
def init_command(path: str, force: bool) -> None:
    """Write a commented starter config to PATH (default ftdoctor.yaml)."""
    from ftdoctor.runner.config import write_starter_config

    write_starter_config(Path(path), force=force)
    click.echo(f"ftdoctor: wrote {path}; edit it, then run `ftdoctor run --config {path}`", err=True)
