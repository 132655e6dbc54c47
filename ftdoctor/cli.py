"""The ``ftdoctor`` command line: wires each half's commands into one group.

Exit codes (see the contract): 0 clean, 1 findings at or above ``--fail-on``,
2 usage/config/input error or an internal error, always with a message and
never a bare traceback (set ``FTDOCTOR_DEBUG=1`` to see one).
"""

from __future__ import annotations

import os
import sys

import click

from ftdoctor import __version__
from ftdoctor.catalogue import load_catalogue, lookup
from ftdoctor.errors import FtdoctorError
from ftdoctor.runner.command import init_command, run_command
from ftdoctor.static.command import check_command

EPILOG = """\b
Examples:
  ftdoctor check train.py notebooks/      lint scripts and notebooks
  ftdoctor run                            fine-tune the bundled MiniLM with the doctor attached
  ftdoctor run train.py -- --epochs 1     diagnose your own script while it trains
  ftdoctor explain missing-zero-grad      what a rule catches and how to fix it
"""


@click.group(epilog=EPILOG, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="ftdoctor")
def cli() -> None:
    """The fine-tuning doctor: finds the mistakes that silently break BERT fine-tuning.

    `check` reads your training code without running it; `run` trains with the
    runtime doctor watching gradients, updates, losses, labels and logits.
    """


@cli.command("rules")
@click.option("--kind", type=click.Choice(["static", "runtime"]), default=None, help="Only rules of this kind.")
@click.option("--format", "output_format", type=click.Choice(["text", "json"]), default="text", show_default=True,
              help="text is a table (rich on a terminal); json a list of objects for tools.")
def rules_command(kind: str | None, output_format: str) -> None:
    """List every rule: code, slug, kind, default severity, summary.

    Any slug or code works in --select/--ignore, suppression comments and
    [tool.ftdoctor]; `ftdoctor explain SLUG` tells the whole story of one.
    """
    columns = ("code", "slug", "kind", "severity", "summary")
    docs = [doc for doc in load_catalogue().values() if kind is None or kind in doc.kinds]
    rows = [(doc.code, doc.slug, doc.kind_label, doc.severity.value, doc.summary) for doc in docs]
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
        widths = [max(len(row[i]) for row in rows) if rows else 0 for i in range(4)]
        for row in rows:
            click.echo("  ".join(cell.ljust(width) for cell, width in zip(row, widths)) + "  " + row[4])


_CONTEXT_NOTE = {"training-script": " (test and benchmark code is exempt unless check-tests = true)"}


@cli.command("explain")
@click.argument("rule")
def explain_command(rule: str) -> None:
    """Explain RULE (a slug like missing-zero-grad or a code like FTD101):
    what it detects, why it hurts, how to fix it, and examples."""
    doc = lookup(rule)
    if doc is None:
        import difflib

        names = [name for d in load_catalogue().values() for name in (d.slug, d.code)]
        close = difflib.get_close_matches(rule, names, n=3, cutoff=0.6)
        hint = f"did you mean {' or '.join(close)}? " if close else ""
        raise FtdoctorError(f"no rule named {rule!r}; {hint}`ftdoctor rules` lists every slug and code")
    assert doc.path is not None
    body = doc.path.read_text(encoding="utf-8").split("---", 2)[2]
    header = (
        f"# {doc.code} {doc.slug}\n\n*{doc.kind_label} · default severity {doc.severity.value} · "
        f"context {doc.context}{_CONTEXT_NOTE.get(doc.context, '')}*\n\n{doc.summary}\n"
    )
    if sys.stdout.isatty():
        from rich.console import Console
        from rich.markdown import Markdown

        Console().print(Markdown(header + body))
    else:
        click.echo((header + body).rstrip() + "\n")  # Markdown as written: readable, and pipes into tools


cli.add_command(check_command)
cli.add_command(run_command)
cli.add_command(init_command)


def main() -> None:
    try:
        # Without standalone mode click *returns* the code of a `ctx.exit(n)` /
        # `raise click.exceptions.Exit(n)` instead of exiting with it.
        code = cli.main(standalone_mode=False, prog_name="ftdoctor")
        sys.exit(code if isinstance(code, int) else 0)
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)
    except click.exceptions.Abort:
        click.echo("ftdoctor: interrupted", err=True)
        sys.exit(130)
    except click.ClickException as exc:
        exc.show()
        sys.exit(2)
    except FtdoctorError as exc:
        click.echo(f"ftdoctor: error: {exc}", err=True)
        sys.exit(2)
    except Exception as exc:  # internal error: still a message, not a traceback
        if os.environ.get("FTDOCTOR_DEBUG"):
            raise
        click.echo(
            f"ftdoctor: internal error: {type(exc).__name__}: {exc}\n"
            "This is a bug in ftdoctor; rerun with FTDOCTOR_DEBUG=1 for the traceback and please report it.",
            err=True,
        )
        sys.exit(2)
