"""`ftdoctor check` — the static linter and CI gate."""

from __future__ import annotations

from typing import TYPE_CHECKING

import click

from ftdoctor.cli.options import common_options

if TYPE_CHECKING:
    from ftdoctor.settings import Settings
    from ftdoctor.sources import SourceFile

EPILOG = """\b
Examples:
  ftdoctor check train.py                       lint one script
  ftdoctor check src/ notebooks/                walk folders for .py and .ipynb files
  ftdoctor check . --select FTD1 --ignore seed-not-set
  ftdoctor check . --fail-on error              warnings are shown but do not fail
  ftdoctor check . --format sarif -o ftdoctor.sarif   for GitHub code scanning
  ftdoctor check . --format github              annotations in a GitHub Actions log
  ftdoctor check . --write-baseline .ftdoctor-baseline.json
  ftdoctor check . --baseline .ftdoctor-baseline.json  fail only on new findings
  ftdoctor check . --statistics                 how often each rule fires
  ftdoctor check . --diff                       show the safe fixes, change nothing
  ftdoctor check . --fix                        apply them, then report what remains
  ftdoctor check . --fix --unsafe-fixes         also fixes that may change behaviour

\b
Silence one line with `# noqa: FTD101` or `# ftdoctor: ignore[missing-zero-grad]`
(a bare `# noqa` silences the whole line); a file with `# ftdoctor: ignore-file`
in its first 10 lines. Project defaults live in [tool.ftdoctor] in pyproject.toml
(select, ignore, fail-on, exclude, [tool.ftdoctor.severity]); options override them.

\b
Exit status: 0 no finding at or above --fail-on, 1 some finding is,
2 usage, config or input error.
"""


@click.command("check", epilog=EPILOG)
@click.argument("paths", nargs=-1, required=True, metavar="PATH...")
@common_options
@click.option("--config", "config_file", metavar="FILE", default=None,
              help="Read [tool.ftdoctor] from this pyproject.toml instead of the nearest one.")
@click.option("--baseline", metavar="FILE", default=None,
              help="Report only findings not recorded in this baseline file.")
@click.option("--write-baseline", metavar="FILE", default=None,
              help="Record every current finding in FILE (then exit 0): adopt ftdoctor on existing code.")
@click.option("--statistics", is_flag=True, help="Print how many findings each rule produced instead of the findings.")
@click.option("--force-exclude", is_flag=True,
              help="Apply `exclude` to files named on the command line too (the pre-commit hook does).")
@click.option("--parallel/--no-parallel", default=None,
              help="Check files in worker processes [default: when more than 40 files].")
@click.option("--fix", is_flag=True,
              help="Apply the safe fixes in place (notebooks keep outputs and metadata), then report what remains.")
@click.option("--diff", "show_diff", is_flag=True,
              help="Print the fixes as a unified diff and change nothing; exit 1 when there are some.")
@click.option("--unsafe-fixes", is_flag=True,
              help="With --fix or --diff: also the fixes that may change behaviour (review them).")
@click.option("--no-cache", is_flag=True,
              help="Do not read or write the module summaries cached in .ftdoctor_cache/ at the project root.")
def check_command(
    paths: tuple[str, ...],
    output_format: str,
    output: str | None,
    select: list[str],
    ignore: list[str],
    fail_on: str | None,
    quiet: bool,
    config_file: str | None,
    baseline: str | None,
    write_baseline: str | None,
    statistics: bool,
    force_exclude: bool,
    parallel: bool | None,
    fix: bool,
    show_diff: bool,
    unsafe_fixes: bool,
    no_cache: bool,
) -> None:
    """Lint training scripts and notebooks without running them.

    Reads every PATH (files, or folders walked for .py and .ipynb files) with a
    pure-AST analysis: your code is never imported or executed. Modules the checked
    files import from their project (the folder above holding pyproject.toml,
    setup.py, setup.cfg or .git) are read for context; only PATHs are reported.
    """
    from ftdoctor.report import emit, render_statistics, write_report
    from ftdoctor.static.checker import check_files
    from ftdoctor.sources import build_settings, discover_files, exclude_spec, load_config

    if statistics and output_format not in ("text", "json"):
        raise click.UsageError(f"--statistics prints a text or json table, not --format {output_format}")
    if unsafe_fixes and not (fix or show_diff):
        raise click.UsageError("--unsafe-fixes goes with --fix or --diff")
    if show_diff and (write_baseline or statistics):
        raise click.UsageError("--diff prints fixes only; it does not combine with --write-baseline or --statistics")
    config = load_config(config_file, paths)
    settings = build_settings(config, select=select, ignore=ignore, fail_on=fail_on)
    files = discover_files(paths, exclude=exclude_spec(settings, config), force_exclude=force_exclude)
    if not files and not quiet:
        click.echo("ftdoctor: warning: no Python files or notebooks found to check", err=True)
    if fix or show_diff:
        _fix(files, settings, unsafe=unsafe_fixes, diff_only=show_diff, output=output)
    report = check_files(files, settings, parallel=parallel, cache=not no_cache)

    if write_baseline:
        from ftdoctor.static.baseline import write_baseline as write

        count = write(report, write_baseline)
        click.echo(f"ftdoctor: recorded {count} finding{'s' if count != 1 else ''} in {write_baseline}", err=True)
        raise click.exceptions.Exit(0)
    if baseline:
        from ftdoctor.static.baseline import filter_baselined

        report = filter_baselined(report, baseline)
    if statistics:
        emit(render_statistics(report, output_format), output)
    else:
        write_report(report, output_format, output, quiet=quiet)
    raise click.exceptions.Exit(report.exit_code(settings.fail_on))


def _fix(files: list[SourceFile], settings: Settings, *, unsafe: bool, diff_only: bool, output: str | None) -> None:
    """Apply (or with ``diff_only`` print and exit) the fixes; the report that follows shows what remains."""
    from ftdoctor.report import emit
    from ftdoctor.static.fixing import fix_files

    run = fix_files(files, settings, unsafe=unsafe)
    count, changed = run.applied, len(run.changed)
    hint = (f" ({run.unsafe_left} more with --unsafe-fixes)" if run.unsafe_left else "")
    if diff_only:
        emit(run.diff(), output)
        noun = f"{count} finding{'s' if count != 1 else ''} in {changed} file{'s' if changed != 1 else ''}"
        click.echo(f"ftdoctor: would fix {noun}{hint}" if changed else f"ftdoctor: nothing to fix{hint}", err=True)
        raise click.exceptions.Exit(1 if changed else 0)  # as ruff: 1 when applying would change files
    run.write()
    if count:
        noun = f"{count} finding{'s' if count != 1 else ''} in {changed} file{'s' if changed != 1 else ''}"
        click.echo(f"ftdoctor: fixed {noun}{hint}", err=True)
    elif run.unsafe_left:
        click.echo(f"ftdoctor: nothing fixed; {run.unsafe_left} fix{'es' if run.unsafe_left != 1 else ''} "
                   "available with --unsafe-fixes", err=True)
