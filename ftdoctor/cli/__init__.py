"""The ``ftdoctor`` command line (the face): one module per command, wired into one group here.

Exit codes (see the contract): 0 clean, 1 findings at or above ``--fail-on``,
2 usage/config/input error or an internal error, always with a message and
never a bare traceback (set ``FTDOCTOR_DEBUG=1`` to see one).
"""

from __future__ import annotations

import os
import sys

import click

from ftdoctor.cli.check import check_command
from ftdoctor.cli.explain import explain_command
from ftdoctor.cli.init import init_command
from ftdoctor.cli.rules import rules_command
from ftdoctor.cli.run import run_command
from ftdoctor.errors import FtdoctorError
from ftdoctor.version import __version__

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


for command in (rules_command, explain_command, check_command, run_command, init_command):
    cli.add_command(command)


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
