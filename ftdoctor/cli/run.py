"""`ftdoctor run`.

Imported by the CLI on every invocation, so it imports nothing heavy at module
level: torch, transformers and datasets load only once a run starts.
"""

from __future__ import annotations

import os
from pathlib import Path

import click

from ftdoctor.cli.options import common_options
from ftdoctor.runner.output import RunOptions

RUN_EPILOG = """\b
Examples:
  ftdoctor run                                   fine-tune the bundled MiniLM on the bundled reviews
  ftdoctor run --config ftdoctor.yaml            the fine-tune a config describes (`ftdoctor init` writes one)
  ftdoctor run --config ci.yaml --max-steps 50   a quick CI gate: exit 1 on any warning or error
  ftdoctor run --report-dir out/                 also write report.json, findings.sarif, report.html
  ftdoctor run train.py -- --epochs 1            diagnose your own training script while it trains

\b
Exit status: 0 no finding at or above --fail-on, 1 some finding is (or
training crashed), 2 usage, config or input error, 130 interrupted (Ctrl-C;
the partial report is still printed and written).
"""


@click.command("run", epilog=RUN_EPILOG)
@click.argument("script", required=False, metavar="[SCRIPT]")
@click.argument("script_args", nargs=-1, type=click.UNPROCESSED, metavar="[-- ARGS]...")
@click.option("--config", "-c", "config_path", metavar="CFG.yaml", default=None,
              help="Run the reference fine-tune this YAML config describes (see `ftdoctor init`).")
@click.option("--report-dir", metavar="DIR", default=None,
              help="Also write report.json, findings.sarif and report.html (with plots) to DIR.")
@click.option("--max-steps", type=click.IntRange(min=1), default=None,
              help="Stop after N optimizer steps (overrides train.max_steps).")
@click.option("--seed", type=click.IntRange(min=0), default=None, help="Random seed (overrides train.seed).")
@common_options
def run_command(
    script: str | None,
    script_args: tuple[str, ...],
    config_path: str | None,
    report_dir: str | None,
    max_steps: int | None,
    seed: int | None,
    output_format: str,
    output: str | None,
    select: list[str],
    ignore: list[str],
    fail_on: str | None,
    quiet: bool,
) -> None:
    """Fine-tune with the runtime doctor attached.

    Without SCRIPT: the reference BERT fine-tune — the embedded default
    (pretrained MiniLM on bundled reviews, offline) or the one --config
    describes. With SCRIPT: your own training script, run in-process with the
    doctor injected; arguments after `--` are passed to it.
    """
    from ftdoctor.runner.requirements import require_run_extra

    require_run_extra()
    anchor = script or config_path or "."
    options = RunOptions(
        output_format=output_format, output=output, quiet=quiet, report_dir=report_dir, max_steps=max_steps,
        seed=seed, settings=_settings(anchor, select, ignore, fail_on),
    )
    if script is None:  # click gives every positional to SCRIPT first, so there are no ARGS either
        code = run_config(config_path, options)
    else:
        _check_script_argument(script, config_path)
        from ftdoctor.runner.script import run_script

        code = run_script(script, list(script_args), options)
    raise click.exceptions.Exit(code)


def _check_script_argument(script: str, config_path: str | None) -> None:
    if Path(script).suffix.lower() in (".yaml", ".yml"):
        raise click.UsageError(f"{script} looks like a run config; pass it as `ftdoctor run --config {script}`")
    if config_path is not None:
        raise click.UsageError("give either a SCRIPT to run or --config for the reference fine-tune, not both")


def _settings(anchor: str, select: list[str], ignore: list[str], fail_on: str | None):  # -> Settings
    """``[tool.ftdoctor]`` from the nearest pyproject.toml above the config or script, then the options."""
    from ftdoctor.sources import build_settings, load_config as load_project_config

    return build_settings(load_project_config(None, [anchor]), select=select, ignore=ignore, fail_on=fail_on)


def run_config(config_path: str | None, options: RunOptions) -> int:
    """The reference fine-tune: the embedded default, or the one the config describes."""
    from ftdoctor.runner.config import default_config, load_config
    from ftdoctor.runner.output import finish_run

    config = load_config(config_path) if config_path else default_config()
    config = config.with_overrides(max_steps=options.max_steps, seed=options.seed)
    _prefer_offline(config.model)
    from ftdoctor.runner.display import make_display
    from ftdoctor.runner.distributed import SilentDisplay, process_group
    from ftdoctor.runner.train import run_reference

    with process_group() as ranks:  # torchrun / accelerate launch: one rank per process, rank 0 speaks
        display = make_display(quiet=options.quiet) if ranks.is_main else SilentDisplay()
        result = run_reference(config, settings=options.settings, display=display)
        return finish_run(result.report, options, interrupted=result.interrupted, crashed=result.error is not None)


def _prefer_offline(model: str) -> None:
    """Builtin models and local directories never need the network: say so before transformers loads.

    A hub id keeps whatever the user set (HF_HUB_OFFLINE=1 makes it fail fast).
    """
    os.environ.setdefault("HF_DATASETS_OFFLINE", "1")  # data files are always local
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    if model.startswith("builtin:") or Path(model).is_dir():
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
