"""The human report: findings grouped by file, the offending line with a caret, the fix.

Plain text (stable, greppable ``path:line:col: CODE slug [severity] message``
lines) everywhere except a terminal, where the same content is styled with rich.
Run reports render generically too: step, location, evidence, fix, then the
metrics, steps and the doctor's overhead.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from itertools import groupby
from typing import Any

from ftdoctor.findings import Finding, Report, Severity, either_of
from ftdoctor.report.source import SourceLines

_STYLE = {Severity.ERROR: "bold red", Severity.WARNING: "bold yellow", Severity.INFO: "bold cyan"}


@dataclass
class Block:
    """Everything shown for one finding, before styling."""

    finding: Finding
    heading: str  # location or step prefix, e.g. "train.py:35:9" or "step 12"
    snippet: list[tuple[str, str]] = field(default_factory=list)  # (gutter, text)
    details: list[tuple[str, str]] = field(default_factory=list)  # (label, text)


def render(report: Report, *, color: bool = False, quiet: bool = False) -> str:
    blocks = _blocks(report, quiet=quiet)
    tail = _tail_lines(report, quiet=quiet)
    if color:
        return _render_rich(report, blocks, tail)
    return _render_plain(blocks, tail)


# -------------------------------------------------------------------------- content


def _blocks(report: Report, *, quiet: bool) -> list[Block]:
    sources = SourceLines()
    blocks = []
    for finding in report.sorted_findings():
        block = Block(finding, _heading(report, finding))
        if not quiet:
            block.snippet = _snippet(finding, sources.line_of(finding))
            if report.mode == "run" and finding.path and finding.line:
                block.details.append(("at", _location(finding)))
            if finding.evidence:
                block.details.append(("evidence", _evidence(finding.evidence)))
            block.details.append(("fix", finding.fix))
            for symptom in finding.related:
                block.details.append(("related", _related(report, symptom)))
        blocks.append(block)
    return blocks


def _related(report: Report, symptom: Finding) -> str:
    """A symptom of the finding's root cause, on one line."""
    where = f"step {symptom.step or 0}" if report.mode == "run" else _location(symptom)
    return f"{symptom.code} {symptom.rule} ({where}): {symptom.message}"


def _location(finding: Finding) -> str:
    parts = [finding.path or "<unknown>"]
    if finding.line:
        parts.append(str(finding.line))
        if finding.column:
            parts.append(str(finding.column))
    return ":".join(parts)


def _heading(report: Report, finding: Finding) -> str:
    if report.mode == "run":
        return f"step {finding.step or 0}"
    return _location(finding)


def _snippet(finding: Finding, line: str | None) -> list[tuple[str, str]]:
    if line is None or finding.line is None:
        return []
    line = line.rstrip("\r\n")
    gutter = str(finding.line)
    rows = [(gutter, line)]
    if finding.column:
        start = _char_index(line, finding.column - 1)
        if finding.end_line == finding.line and finding.end_column and finding.end_column > finding.column:
            end = _char_index(line, finding.end_column - 1)
        else:
            end = len(line.rstrip())
        width = max(1, end - start)
        padding = "".join(ch if ch == "\t" else " " for ch in line[:start])
        rows.append(("", padding + "^" * width))
    return rows


def _char_index(line: str, byte_offset: int) -> int:
    """Columns are UTF-8 byte offsets (as ``ast`` reports them); the caret needs characters."""
    if line.isascii():
        return min(byte_offset, len(line))
    return len(line.encode("utf-8")[:byte_offset].decode("utf-8", errors="ignore"))


def _evidence(evidence: dict[str, Any]) -> str:
    return ", ".join(f"{key}={_number(value)}" for key, value in evidence.items())


def _number(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, (list, tuple)) and len(value) > 6:
        shown = ", ".join(str(v) for v in value[:6])
        return f"[{shown}, … {len(value) - 6} more]"
    return str(value)


def _tail_lines(report: Report, *, quiet: bool) -> list[str]:
    lines = []
    if report.mode == "run" and not quiet:
        if report.metrics:
            lines.append("Metrics: " + ", ".join(f"{k} {_number(v) if v is not None else 'n/a'}" for k, v in report.metrics.items()))
        overhead = f", doctor overhead {report.overhead:.1%}" if report.overhead is not None else ""
        lines.append(f"Steps: {report.steps}{overhead}")
    if report.mode == "run" and report.verdict is not None:
        lines.append(f"Verdict: {report.verdict}" + _unobserved_note(report))
    lines.append(summary_line(report))
    return lines


def _unobserved_note(report: Report) -> str:
    missing = report.unobserved()
    if not missing:
        return ""
    not_run = [entry["rule"] for entry in report.observed_coverage()["not_run"]]
    rules = f"; rules that could not run: {', '.join(not_run)}" if not_run else ""
    return f" — not observed: {', '.join(m.replace('_', ' ') for m in missing)}{rules}"


def summary_line(report: Report) -> str:
    """``Found 3 errors, 1 warning in 2 files (12 checked).`` or the run equivalent."""
    counts = report.summary()
    parts = [_plural(counts[name], name) for name in ("error", "warning", "info") if counts[name]]
    if report.mode == "run":
        where = f"in {_plural(report.steps, 'step')}"
        if not parts and report.verdict == "incomplete":
            return f"No findings {where}, but the run is incomplete: the doctor never saw {either_of(report.unobserved())}."
        return f"Found {', '.join(parts)} {where}." if parts else f"No findings {where}."
    if not parts:
        return f"No findings in {_plural(report.files_checked, 'file')} checked."
    files = len({f.path for f in report.findings})
    return f"Found {', '.join(parts)} in {_plural(files, 'file')} ({report.files_checked} checked)."


def _plural(count: int, noun: str) -> str:
    if noun == "info":
        return f"{count} info"
    return f"{count} {noun}{'' if count == 1 else 's'}"


def _finding_title(finding: Finding) -> str:
    return f"{finding.code} {finding.rule} [{finding.severity.value}] {finding.message}"


# --------------------------------------------------------------------------- plain


def _render_plain(blocks: list[Block], tail: list[str]) -> str:
    out: list[str] = []
    for block in blocks:
        out.append(f"{block.heading}: {_finding_title(block.finding)}")
        width = max((len(gutter) for gutter, _ in block.snippet), default=0)
        for gutter, text in block.snippet:
            out.append(f"  {gutter:>{width}} | {text}")
        for label, text in block.details:
            out.append(f"  {'':>{width}} = {label}: {text}" if block.snippet else f"  = {label}: {text}")
        if block.snippet or block.details:
            out.append("")
    if blocks and out and out[-1] != "":
        out.append("")
    out.extend(tail)
    return "\n".join(out) + "\n"


# ---------------------------------------------------------------------------- rich


def _render_rich(report: Report, blocks: list[Block], tail: list[str]) -> str:
    import io
    import shutil

    from rich.console import Console
    from rich.text import Text

    buffer = io.StringIO()
    console = Console(file=buffer, force_terminal=True, width=shutil.get_terminal_size().columns, highlight=False)
    for path, group in groupby(blocks, key=lambda b: b.finding.path if report.mode == "check" else None):
        if path:
            console.print(Text(path, style="bold underline"))
        for block in group:
            finding = block.finding
            head = Text("  ")
            head.append(block.heading.removeprefix(f"{path}:") if path else block.heading, style="dim")
            head.append("  ")
            head.append(finding.severity.value, style=_STYLE[finding.severity])
            head.append(f"  {finding.code} ", style="bold")
            head.append(finding.rule, style="magenta")
            head.append(f"  {finding.message}")
            console.print(head)
            width = max((len(gutter) for gutter, _ in block.snippet), default=0)
            for gutter, text in block.snippet:
                row = Text()
                row.append(f"    {gutter:>{width}} │ ", style="blue")
                row.append(text, style="bold red" if not gutter else "")
                console.print(row, soft_wrap=True)
            for label, text in block.details:
                row = Text()
                row.append(f"    {'':>{width}}   {label}: ", style="bold green" if label == "fix" else "dim")
                row.append(text)
                console.print(row)
        console.print()
    summary_style = "bold red" if report.summary()["error"] else "bold yellow" if report.findings else "bold green"
    for index, line in enumerate(tail):
        console.print(Text(line, style=summary_style if index == len(tail) - 1 else ""))
    return buffer.getvalue()
