"""`ftdoctor explain RULE` — one rule's long form from the catalogue."""

from __future__ import annotations

import sys

import click

from ftdoctor.catalogue import load_catalogue, lookup
from ftdoctor.errors import FtdoctorError


_CONTEXT_NOTE = {"training-script": " (test and benchmark code is exempt unless check-tests = true)"}


@click.command("explain")
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
    fix = {"safe": " · fix: safe (`ftdoctor check --fix`)", "unsafe": " · fix: unsafe (`--fix --unsafe-fixes`)"}
    header = (f"# {doc.code} {doc.slug}\n\n*{doc.kind_label} · default severity {doc.severity.value} · "
              f"context {doc.context}{_CONTEXT_NOTE.get(doc.context, '')}{fix.get(doc.fix, '')}*\n\n{doc.summary}\n")
    if sys.stdout.isatty():
        from rich.console import Console
        from rich.markdown import Markdown

        Console().print(Markdown(header + body))
    else:
        click.echo((header + body).rstrip() + "\n")  # Markdown as written: readable, and pipes into tools
