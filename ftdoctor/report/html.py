"""``report.html``: one self-contained page for a run report (plots embedded as base64 PNG).

Verdict and context first, then the findings with their evidence and fixes,
then the metrics and the figures. No scripts, no external assets: the file
can be attached to a CI run or mailed as it is.
"""

from __future__ import annotations

import base64
import datetime as _dt
from html import escape
from typing import Any

from ftdoctor.version import __version__
from ftdoctor.findings import Finding, Report
from ftdoctor.report.plots import Plot, run_plots
from ftdoctor.report.report_data import context_lines, ordered_metrics, verdict


STYLE = """
:root { --red:#c62828; --yellow:#b26a00; --green:#2e7d32; --info:#00838f; --ink:#1d2330; --muted:#5f6b7a;
        --line:#dfe3e8; --soft:#f6f8fa; }
* { box-sizing: border-box; }
body { font: 15px/1.5 -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif; color: var(--ink);
       margin: 0; background: #fff; }
main { max-width: 1120px; margin: 0 auto; padding: 28px 24px 48px; }
h1 { font-size: 22px; margin: 0 0 16px; }
h2 { font-size: 18px; margin: 36px 0 12px; border-bottom: 1px solid var(--line); padding-bottom: 6px; }
.verdict { border-left: 6px solid; padding: 14px 18px; background: var(--soft); border-radius: 4px; }
.verdict strong { font-size: 19px; display: block; margin-bottom: 4px; }
.verdict.red { border-color: var(--red); } .verdict.red strong { color: var(--red); }
.verdict.yellow { border-color: var(--yellow); } .verdict.yellow strong { color: var(--yellow); }
.verdict.green { border-color: var(--green); } .verdict.green strong { color: var(--green); }
.verdict p { margin: 2px 0; color: var(--muted); }
table { border-collapse: collapse; width: 100%; font-size: 14px; }
th, td { text-align: left; vertical-align: top; padding: 8px 10px; border-bottom: 1px solid var(--line); }
th { background: var(--soft); font-weight: 600; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
.badge { display: inline-block; padding: 1px 8px; border-radius: 10px; color: #fff; font-size: 12px; font-weight: 600; }
.badge.error { background: var(--red); } .badge.warning { background: var(--yellow); } .badge.info { background: var(--info); }
.rule code { font-weight: 600; } .rule span { color: var(--muted); display: block; font-size: 13px; }
dl.evidence { margin: 6px 0 0; display: grid; grid-template-columns: max-content 1fr; gap: 0 10px; font-size: 13px; }
dl.evidence dt { color: var(--muted); } dl.evidence dd { margin: 0; font-family: ui-monospace, Menlo, Consolas, monospace;
  overflow-wrap: anywhere; }
.fix { color: var(--green); }
.none { color: var(--green); font-weight: 600; }
.cards { display: flex; flex-wrap: wrap; gap: 12px; }
.card { border: 1px solid var(--line); border-radius: 6px; padding: 10px 16px; min-width: 150px; }
.card .value { font-size: 22px; font-weight: 600; font-variant-numeric: tabular-nums; }
.card .label { color: var(--muted); font-size: 13px; }
.tables { display: flex; flex-wrap: wrap; gap: 24px; margin-top: 16px; } .tables > div { flex: 1 1 320px; }
.plots { display: grid; grid-template-columns: repeat(auto-fill, minmax(480px, 1fr)); gap: 20px; }
figure { margin: 0; border: 1px solid var(--line); border-radius: 6px; padding: 8px; }
figure img { width: 100%; height: auto; display: block; }
figcaption { color: var(--muted); font-size: 13px; padding: 4px 6px 0; }
footer { margin-top: 40px; color: var(--muted); font-size: 12px; }
"""


def render_html(report: Report) -> str:
    """The whole page for ``report`` (a run report; a check report renders without metrics or plots)."""
    run = report.extra.get("run", {})
    sections = [
        _verdict_section(report),
        _findings_section(report.sorted_findings()),
        _metrics_section(report.metrics, run),
        _plots_section(run_plots(report.extra)),
    ]
    generated = _dt.datetime.now().astimezone().strftime("%Y-%m-%d %H:%M %Z")
    return (
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
        "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n"
        f"<title>ftdoctor report — {escape(verdict(report)[0])}</title>\n<style>{STYLE}</style>\n</head>\n"
        f"<body>\n<main>\n<h1>ftdoctor {escape(report.mode)} report</h1>\n"
        + "\n".join(section for section in sections if section)
        + f"\n<footer>ftdoctor {escape(__version__)} · generated {escape(generated)}</footer>\n</main>\n</body>\n</html>\n"
    )


def _verdict_section(report: Report) -> str:
    headline, colour = verdict(report)
    lines = "".join(f"<p>{escape(line)}</p>" for line in context_lines(report))
    return f'<section class="verdict {colour}"><strong>{escape(headline)}</strong>{lines}</section>'


def _findings_section(findings: list[Finding]) -> str:
    if not findings:
        return '<h2>Findings</h2>\n<p class="none">No findings: every enabled rule stayed silent.</p>'
    rows = "\n".join(_finding_row(finding) for finding in findings)
    return (
        "<h2>Findings</h2>\n<table>\n<thead><tr><th>step</th><th>severity</th><th>rule</th>"
        f"<th>what was seen</th><th>fix</th></tr></thead>\n<tbody>\n{rows}\n</tbody>\n</table>"
    )


def _finding_row(finding: Finding) -> str:
    where = ""
    if finding.path:
        where = f"<br><small>{escape(finding.path)}{':' + str(finding.line) if finding.line else ''}</small>"
    return (
        f'<tr><td class="num">{finding.step or 0}</td>'
        f'<td><span class="badge {finding.severity.value}">{finding.severity.value}</span></td>'
        f'<td class="rule"><code>{escape(finding.code)}</code><span>{escape(finding.rule)}</span></td>'
        f"<td>{escape(finding.message)}{where}{_evidence_list(finding.evidence)}{_related_list(finding)}</td>"
        f'<td class="fix">{escape(finding.fix)}</td></tr>'
    )


def _related_list(finding: Finding) -> str:
    """Symptoms of the same root cause, listed under it."""
    if not finding.related:
        return ""
    items = "".join(
        f"<li><code>{escape(s.code)}</code> {escape(s.rule)} (step {s.step or 0}): {escape(s.message)}</li>"
        for s in finding.related
    )
    return f'<div class="related">related symptoms:<ul>{items}</ul></div>'


def _evidence_list(evidence: dict[str, Any] | None) -> str:
    if not evidence:
        return ""
    items = "".join(f"<dt>{escape(str(key))}</dt><dd>{escape(_value(value))}</dd>"
                    for key, value in evidence.items() if value is not None)
    return f'<dl class="evidence">{items}</dl>'


def _value(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, (list, tuple)) and len(value) > 12:
        return ", ".join(_value(v) for v in value[:12]) + f", … ({len(value) - 12} more)"
    if isinstance(value, (list, tuple)):
        return ", ".join(_value(v) for v in value)
    return str(value)


def _metrics_section(metrics: dict[str, Any], run: dict[str, Any]) -> str:
    if not metrics:
        return ""
    cards = "".join(
        f'<div class="card"><div class="value">{"n/a" if value is None else f"{value:.4f}"}</div>'
        f'<div class="label">{escape(label)}</div></div>'
        for _, label, value in ordered_metrics(metrics)
    )
    tables = [_per_class_table(run.get("per_class", {})), _confusion_table(run.get("confusion_matrix"),
                                                                          run.get("label_names", []))]
    extra = "".join(f"<div>{table}</div>" for table in tables if table)
    return f'<h2>Metrics (final evaluation)</h2>\n<div class="cards">{cards}</div>\n<div class="tables">{extra}</div>'


def _per_class_table(per_class: dict[str, dict[str, Any]]) -> str:
    if not per_class:
        return ""
    rows = "".join(
        f"<tr><td>{escape(name)}</td><td class=\"num\">{row['precision']:.3f}</td><td class=\"num\">{row['recall']:.3f}"
        f"</td><td class=\"num\">{row['f1']:.3f}</td><td class=\"num\">{row['support']}</td></tr>"
        for name, row in per_class.items()
    )
    return ("<table><thead><tr><th>class</th><th>precision</th><th>recall</th><th>F1</th><th>support</th></tr>"
            f"</thead><tbody>{rows}</tbody></table>")


def _confusion_table(matrix: list[list[int]] | None, names: list[str]) -> str:
    if not matrix:
        return ""
    head = "".join(f"<th>{escape(name)}</th>" for name in names)
    rows = "".join(
        f"<tr><th>{escape(name)}</th>"
        + "".join(f'<td class="num">{"<b>%d</b>" % count if i == j else count}</td>' for j, count in enumerate(row))
        + "</tr>"
        for i, (name, row) in enumerate(zip(names, matrix))
    )
    return (f"<table><thead><tr><th>true \\ predicted</th>{head}</tr></thead><tbody>{rows}</tbody></table>")


def _plots_section(plots: list[Plot]) -> str:
    if not plots:
        return ""
    figures = "\n".join(
        f'<figure><img alt="{escape(plot.title)}" src="data:image/png;base64,'
        f'{base64.b64encode(plot.png).decode("ascii")}"><figcaption>{escape(plot.caption)}</figcaption></figure>'
        for plot in plots
    )
    return f'<h2>Curves</h2>\n<div class="plots">\n{figures}\n</div>'
