"""The final report of a reference run, for a person: verdict, findings, metrics, curves.

Rendered with rich; on a terminal in colour, elsewhere (a file, a pipe) as
plain text of the same layout. Machine formats go through ``ftdoctor.report``.
"""

from __future__ import annotations

import io
import shutil
from typing import Any, Sequence

from ftdoctor.findings import Finding, Report
from ftdoctor.runner.display import SEVERITY_STYLE
from ftdoctor.report.report_data import context_lines, ordered_metrics, verdict

SPARK_LEVELS = "▁▂▃▄▅▆▇█"
SPARK_WIDTH = 48


def render_run_summary(report: Report, *, color: bool, width: int | None = None) -> str:
    from rich.console import Console

    buffer = io.StringIO()
    console = Console(file=buffer, force_terminal=color, no_color=not color, highlight=False,
                      width=width or (shutil.get_terminal_size().columns if color else 110))
    for part in summary_parts(report):
        console.print(part)
        console.print()
    from ftdoctor.report.text import summary_line

    console.print(summary_line(report), style=f"bold {verdict(report)[1]}" if color else "")
    return buffer.getvalue()


def summary_parts(report: Report) -> list[Any]:
    parts: list[Any] = [verdict_panel(report)]
    if report.findings:
        parts.append(findings_table(report.sorted_findings()))
    run = report.extra.get("run", {})
    if any(value is not None for value in report.metrics.values()):
        parts.append(metrics_block(report.metrics, run))
    curves = curve_lines(report.extra.get("curves", {}))
    if curves is not None:
        parts.append(curves)
    return parts


# ------------------------------------------------------------------ verdict


def verdict_panel(report: Report) -> Any:
    from rich.console import Group
    from rich.panel import Panel
    from rich.text import Text

    headline, colour = verdict(report)
    body = Group(Text(headline, style=f"bold {colour}"), *(Text(line, style="dim") for line in context_lines(report)))
    return Panel(body, title="ftdoctor run", title_align="left", border_style=colour)


# ----------------------------------------------------------------- findings


def format_evidence(evidence: dict[str, Any] | None, limit: int = 6) -> str:
    if not evidence:
        return ""
    items = [f"{key}={_short(value)}" for key, value in evidence.items() if value is not None]
    more = f", … {len(items) - limit} more" if len(items) > limit else ""
    return ", ".join(items[:limit]) + more


def _short(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, (list, tuple)) and len(value) > 4:
        return "[" + ", ".join(_short(v) for v in value[:4]) + f", … {len(value) - 4} more]"
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_short(v) for v in value) + "]"
    return str(value)


def findings_table(findings: Sequence[Finding]) -> Any:
    from rich.table import Table
    from rich.text import Text

    table = Table(title="Findings", title_justify="left", show_lines=True, expand=True)
    table.add_column("step", justify="right", no_wrap=True)
    table.add_column("severity", no_wrap=True)
    table.add_column("rule", no_wrap=True)
    table.add_column("what was seen", ratio=3)
    table.add_column("fix", ratio=2)
    for finding in findings:
        seen = Text(finding.message)
        evidence = format_evidence(finding.evidence)
        if evidence:
            seen.append(f"\n{evidence}", style="dim")
        table.add_row(str(finding.step or 0), Text(finding.severity.value, style=SEVERITY_STYLE[finding.severity]),
                      Text(f"{finding.code}\n{finding.rule}", style="magenta"), seen, finding.fix)
    return table


# ------------------------------------------------------------------ metrics


def metrics_block(metrics: dict[str, Any], run: dict[str, Any]) -> Any:
    from rich.columns import Columns
    from rich.table import Table

    table = Table(title="Metrics (final evaluation)", title_justify="left")
    table.add_column("metric")
    table.add_column("value", justify="right")
    for _, label, value in ordered_metrics(metrics):
        table.add_row(label, "n/a" if value is None else f"{value:.4f}")
    blocks = [table]
    names = run.get("label_names", [])
    if run.get("per_class"):
        blocks.append(per_class_table(run["per_class"]))
    if run.get("confusion_matrix"):
        blocks.append(confusion_table(run["confusion_matrix"], names))
    return Columns(blocks, padding=(0, 4))


def per_class_table(per_class: dict[str, dict[str, float]]) -> Any:
    from rich.table import Table

    table = Table(title="Per class", title_justify="left")
    for column in ("class", "precision", "recall", "F1", "support"):
        table.add_column(column, justify="left" if column == "class" else "right")
    for name, row in per_class.items():
        table.add_row(name, f"{row['precision']:.3f}", f"{row['recall']:.3f}", f"{row['f1']:.3f}", str(row["support"]))
    return table


def confusion_table(matrix: list[list[int]], names: list[str]) -> Any:
    from rich.table import Table

    table = Table(title="Confusion matrix", title_justify="left", caption="rows: true · columns: predicted")
    table.add_column("")
    for name in names:
        table.add_column(name, justify="right")
    for i, (name, row) in enumerate(zip(names, matrix)):
        table.add_row(name, *(f"[bold]{count}[/bold]" if i == j else str(count) for j, count in enumerate(row)))
    return table


# ------------------------------------------------------------------- curves


def sparkline(values: Sequence[float | None], width: int = SPARK_WIDTH) -> str:
    """Bucket-averaged values as block characters between the series' min and max."""
    points = [v for v in values if v is not None]
    if not points:
        return ""
    size = max(1, -(-len(points) // width))  # ceil division: at most `width` buckets
    buckets = [sum(points[i:i + size]) / len(points[i:i + size]) for i in range(0, len(points), size)]
    low, high = min(buckets), max(buckets)
    span = (high - low) or 1.0
    return "".join(SPARK_LEVELS[min(len(SPARK_LEVELS) - 1, int((b - low) / span * len(SPARK_LEVELS)))] for b in buckets)


def curve_lines(curves: dict[str, Any]) -> Any:
    from rich.table import Table

    train = curves.get("train", {})
    evaluations = curves.get("evaluations", [])
    series = [
        ("train loss", train.get("loss", [])),
        ("validation loss", [e["val_loss"] for e in evaluations]),
        ("validation accuracy", [e["val_accuracy"] for e in evaluations]),
        ("gradient norm", train.get("grad_norm", [])),
        ("learning rate", train.get("lr", [])),
    ]
    table = Table(title="Curves", title_justify="left", show_header=False, box=None, padding=(0, 2))
    for name, values in series:
        points = [v for v in values if v is not None]
        if points:
            table.add_row(name, sparkline(points), f"{_short(points[0])} → {_short(points[-1])}")
    return table if table.row_count else None
