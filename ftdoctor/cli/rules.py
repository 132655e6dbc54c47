"""`ftdoctor rules` — the table of every rule."""

from __future__ import annotations

import sys

import click

from ftdoctor.catalogue import load_catalogue


@click.command("rules")
@click.option("--kind", type=click.Choice(["static", "runtime"]), default=None, help="Only rules of this kind.")
@click.option("--format", "output_format", type=click.Choice(["text", "json"]), default="text", show_default=True,
              help="text is a table (rich on a terminal); json a list of objects for tools.")
def rules_command(kind: str | None, output_format: str) -> None:
    """List every rule: code, slug, kind, default severity, fix, summary.

    fix is safe (`check --fix` applies it), unsafe (only with --unsafe-fixes) or none.

    Any slug or code works in --select/--ignore, suppression comments and
    [tool.ftdoctor]; `ftdoctor explain SLUG` tells the whole story of one.
    """
    columns = ("code", "slug", "kind", "severity", "fix", "summary")
    docs = [doc for doc in load_catalogue().values() if kind is None or kind in doc.kinds]
    rows = [(doc.code, doc.slug, doc.kind_label, doc.severity.value, doc.fix, doc.summary) for doc in docs]
    if output_format == "json":
        import json

        click.echo(json.dumps([dict(zip(columns, row)) for row in rows], indent=2))
    elif sys.stdout.isatty():
        from rich.console import Console
        from rich.table import Table

        table = Table(title="ftdoctor rules", show_lines=False)
        for column in columns:
            table.add_column(column, overflow="fold")
        for row in rows:
            table.add_row(*row)
        Console().print(table)
    else:
        widths = [max(len(row[i]) for row in rows) if rows else 0 for i in range(len(columns) - 1)]
        for row in rows:
            click.echo("  ".join(cell.ljust(width) for cell, width in zip(row, widths)) + "  " + row[-1])
