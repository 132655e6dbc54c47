"""How a finished run is shown and saved, and its exit code — shared by every kind of ``run``.

``finish_run`` is the one exit path of ``ftdoctor run`` (reference fine-tune or
user script): write ``--report-dir``, print the report in ``--format`` (or to
``--output``), and choose the exit code.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from pathlib import Path

from ftdoctor.errors import FtdoctorError
from ftdoctor.findings import Report
from ftdoctor.settings import Settings

EXIT_INTERRUPTED = 130  # as for any program stopped by Ctrl-C (SIGINT)
EXIT_FINDINGS = 1


@dataclass
class RunOptions:
    """The command-line choices of ``ftdoctor run`` that outlive argument parsing."""

    output_format: str = "text"
    output: str | None = None
    quiet: bool = False
    report_dir: str | None = None
    max_steps: int | None = None
    seed: int | None = None
    settings: Settings = field(default_factory=Settings)


def finish_run(report: Report, options: RunOptions, *, interrupted: bool = False, crashed: bool = False) -> int:
    """Save and print ``report``; return the exit code.

    A crashed run exits 1 whether or not a finding explains the crash (the
    contract's rule for scripts); an interrupted one exits 130 after writing
    its partial report.
    """
    from ftdoctor.runner.distributed import is_main_process

    if is_main_process():  # under torchrun every rank has a report; rank 0's is the one shown
        if options.report_dir:
            written = write_report_dir(report, options.report_dir)
            print(f"ftdoctor: report written to {written / 'report.html'}", file=sys.stderr)
        print_report(report, options)
    elif not (interrupted or crashed):
        return 0  # rank 0's findings are the job's verdict and exit code
    if interrupted:
        return EXIT_INTERRUPTED
    if crashed:
        return EXIT_FINDINGS
    return report.exit_code(options.settings.fail_on)


def print_report(report: Report, options: RunOptions) -> None:
    from ftdoctor.report import emit, write_report

    if options.output_format != "text" or options.quiet:
        write_report(report, options.output_format, options.output, quiet=options.quiet)
        return
    from ftdoctor.runner.summary import render_run_summary

    color = options.output is None and _stdout_is_terminal()
    emit(render_run_summary(report, color=color), options.output)


def _stdout_is_terminal() -> bool:
    return bool(getattr(sys.stdout, "isatty", lambda: False)())


def write_report_dir(report: Report, directory: str | Path) -> Path:
    """``report.json``, ``findings.sarif`` and ``report.html`` in ``directory``, each written atomically."""
    from ftdoctor.report import atomic_write_text, render
    from ftdoctor.report.html import render_html

    folder = Path(directory)
    try:
        folder.mkdir(parents=True, exist_ok=True)
        atomic_write_text(folder / "report.json", render(report, "json"))
        atomic_write_text(folder / "findings.sarif", render(report, "sarif"))
        atomic_write_text(folder / "report.html", render_html(report))
    except OSError as exc:
        raise FtdoctorError(f"--report-dir {str(directory)!r}: cannot write the report there ({exc.strerror or exc})") from exc
    return folder
