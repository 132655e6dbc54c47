"""`ftdoctor check` — the static linter and CI gate."""

from __future__ import annotations

import click

from ftdoctor.cli_options import common_options

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
    from ftdoctor.static.files import build_settings, discover_files, exclude_spec, load_config

    if statistics and output_format not in ("text", "json"):
        raise click.UsageError(f"--statistics prints a text or json table, not --format {output_format}")
    config = load_config(config_file, paths)
    settings = build_settings(config, select=select, ignore=ignore, fail_on=fail_on)
    files = discover_files(paths, exclude=exclude_spec(settings, config), force_exclude=force_exclude)
    if not files and not quiet:
        click.echo("ftdoctor: warning: no Python files or notebooks found to check", err=True)
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
