"""Options shared by the ``check`` and ``run`` commands."""

from __future__ import annotations

from typing import Any, Callable

import click

from ftdoctor.findings import FAIL_ON_CHOICES

FORMATS = ("text", "json", "sarif", "github")


def _split_csv(ctx: click.Context, param: click.Parameter, values: tuple[str, ...]) -> list[str]:
    # `--select a,b --select c` and `--select a --select b,c` both work.
    return [item.strip() for value in values for item in value.split(",") if item.strip()]


def common_options(command: Callable[..., Any]) -> Callable[..., Any]:
    options = [
        click.option("--format", "output_format", type=click.Choice(FORMATS), default="text", show_default=True,
                     help="Report format. text is rich-rendered on a terminal, plain otherwise."),
        click.option("--output", "-o", "output", type=click.Path(dir_okay=False, writable=True), default=None,
                     help="Write the report to FILE instead of standard output."),
        click.option("--select", multiple=True, callback=_split_csv, metavar="RULES",
                     help="Only these rules: slugs, codes or code prefixes, comma-separated (e.g. FTD1,seed-not-set)."),
        click.option("--ignore", multiple=True, callback=_split_csv, metavar="RULES",
                     help="Skip these rules: slugs, codes or code prefixes, comma-separated."),
        click.option("--fail-on", type=click.Choice(FAIL_ON_CHOICES), default=None,
                     help="Exit 1 when a finding is at or above this severity [default: warning]."),
        click.option("--quiet", "-q", is_flag=True, help="Print only the findings and the summary line."),
    ]
    for option in reversed(options):
        command = option(command)
    return command
