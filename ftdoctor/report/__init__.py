"""Every output format renders a :class:`~ftdoctor.findings.Report` and nothing else.

``render(report, fmt)`` returns the text; ``write_report`` prints it or writes it
atomically to ``--output``. Format modules are imported on demand so that the
check path loads only what it prints (rich only for a terminal).
"""

from __future__ import annotations

import os
import sys
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from ftdoctor.errors import FtdoctorError
from ftdoctor.findings import Report

FORMATS = ("text", "json", "sarif", "github")


def render(report: Report, fmt: str, *, color: bool | None = None, quiet: bool = False) -> str:
    """``report`` as ``fmt``; ``color=None`` means rich text when stdout is a terminal."""
    if fmt == "text":
        from ftdoctor.report import text

        return text.render(report, color=_stdout_is_terminal() if color is None else color, quiet=quiet)
    if fmt == "json":
        from ftdoctor.report import jsonfmt

        return jsonfmt.render(report)
    if fmt == "sarif":
        from ftdoctor.report import sarif

        return sarif.render(report)
    if fmt == "github":
        from ftdoctor.report import github

        return github.render(report)
    raise FtdoctorError(f"unknown report format {fmt!r}; expected one of {', '.join(FORMATS)}")


def write_report(report: Report, fmt: str, output: str | None = None, *, quiet: bool = False) -> None:
    """Print the report, or write it to ``output`` (plain text there, never colour codes)."""
    emit(render(report, fmt, color=False if output else None, quiet=quiet), output)


def emit(text: str, output: str | None) -> None:
    """``text`` to stdout, or atomically to the file ``output``."""
    if output is None:
        sys.stdout.write(text)
        sys.stdout.flush()
        return
    try:
        atomic_write_text(Path(output), text)
    except OSError as exc:
        raise FtdoctorError(f"--output {output!r}: cannot write the report there ({exc.strerror or exc})") from exc


def atomic_write_text(path: Path, text: str) -> None:
    """Write via a temporary file in the same folder and ``os.replace``: readers never see half a file.

    A symlink is followed (its target is replaced, the link stays); something that
    is not a regular file (``/dev/null``, a FIFO, ``/dev/stdout``) is written in
    place — replacing it would destroy it.
    """
    target = Path(os.path.realpath(path))
    if target.exists() and not target.is_file():
        with open(target, "w", encoding="utf-8", newline="\n") as stream:
            stream.write(text)
        return
    import tempfile

    handle, temp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    try:
        with os.fdopen(handle, "w", encoding="utf-8", newline="\n") as stream:
            stream.write(text)
        os.chmod(temp, _file_mode(target))  # mkstemp's 0600 would surprise whoever reads the report
        os.replace(temp, target)
    except BaseException:
        Path(temp).unlink(missing_ok=True)
        raise


def _file_mode(path: Path) -> int:
    try:
        return path.stat().st_mode & 0o777
    except OSError:
        umask = os.umask(0)
        os.umask(umask)
        return 0o666 & ~umask


def _stdout_is_terminal() -> bool:
    stream = sys.stdout
    return bool(getattr(stream, "isatty", lambda: False)()) and os.environ.get("TERM") != "dumb"


# ------------------------------------------------------------------------ statistics


@dataclass(frozen=True)
class RuleCount:
    code: str
    rule: str
    severity: str
    count: int


def rule_counts(report: Report) -> list[RuleCount]:
    """Findings per rule, most frequent first (then by code)."""
    counts = Counter((f.code, f.rule, f.severity.value) for f in report.findings)
    rows = [RuleCount(code, rule, severity, n) for (code, rule, severity), n in counts.items()]
    return sorted(rows, key=lambda row: (-row.count, row.code))


def render_statistics(report: Report, fmt: str) -> str:
    """``--statistics``: a count per rule, as a text table or JSON."""
    rows = rule_counts(report)
    if fmt == "json":
        import json

        return json.dumps([row.__dict__ for row in rows], indent=2) + "\n"
    if fmt != "text":
        raise FtdoctorError(f"--statistics prints a text or json table; it cannot be combined with --format {fmt}")
    from ftdoctor.report.text import summary_line

    width = max([len(str(row.count)) for row in rows] + [5])
    slug_width = max([len(row.rule) for row in rows] + [4])
    lines = [f"{'count':>{width}}  code    {'rule':<{slug_width}}  severity"]
    lines += [f"{row.count:>{width}}  {row.code}  {row.rule:<{slug_width}}  {row.severity}" for row in rows]
    return "\n".join(lines) + "\n" + summary_line(report) + "\n"
