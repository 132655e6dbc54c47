"""``--format sarif``: SARIF 2.1.0, as GitHub code scanning reads it.

``tool.driver.rules`` carries every rule of the report's kind from the catalogue
(id = code, name = slug, descriptions, help text and markdown, default level), so
code scanning shows each rule's help next to its alerts. Results point at them by
``ruleId``/``ruleIndex`` and carry the slug in ``properties``. Findings without a
location (some run-mode ones) have no ``locations``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import quote

from ftdoctor.version import __version__
from ftdoctor.catalogue import RuleDoc, load_catalogue, lookup
from ftdoctor.findings import Finding, Report, Severity

SCHEMA_URI = "https://json.schemastore.org/sarif-2.1.0.json"
INFORMATION_URI = "https://pypi.org/project/ftdoctor/"
SRCROOT = "%SRCROOT%"
_LEVEL = {Severity.ERROR: "error", Severity.WARNING: "warning", Severity.INFO: "note"}


def render(report: Report) -> str:
    from ftdoctor.report.jsonfmt import dumps

    return dumps(to_sarif(report))


def to_sarif(report: Report) -> dict[str, Any]:
    rules = _rules_for(report)
    index = {doc.code: i for i, doc in enumerate(rules)}
    run: dict[str, Any] = {
        "tool": {
            "driver": {
                "name": "ftdoctor",
                "version": __version__,
                "semanticVersion": __version__,
                "informationUri": INFORMATION_URI,
                "rules": [_descriptor(doc) for doc in rules],
            }
        },
        "originalUriBaseIds": {SRCROOT: {"uri": Path.cwd().resolve().as_uri() + "/"}},
        "results": [_result(finding, index) for finding in report.sorted_findings()],
        "columnKind": "unicodeCodePoints",
        "properties": {"mode": report.mode, "summary": report.summary()},
    }
    if report.mode == "check":
        run["properties"]["filesChecked"] = report.files_checked
    return {"$schema": SCHEMA_URI, "version": "2.1.0", "runs": [run]}


def _rules_for(report: Report) -> list[RuleDoc]:
    """The catalogue's rules of the report's kind, plus any other rule a finding names."""
    kind = "static" if report.mode == "check" else "runtime"
    docs = [doc for doc in load_catalogue().values() if kind in doc.kinds]
    named = {doc.code for doc in docs}
    for finding in report.findings:
        doc = lookup(finding.rule)
        if doc is not None and doc.code not in named:
            docs.append(doc)
            named.add(doc.code)
    return docs


def _descriptor(doc: RuleDoc) -> dict[str, Any]:
    what = doc.section("What it does") or doc.summary
    fix = doc.section("How to fix")
    help_text = f"{doc.summary}\n\nHow to fix: {fix}" if fix else doc.summary
    return {
        "id": doc.code,
        "name": doc.slug,
        "shortDescription": {"text": doc.summary},
        "fullDescription": {"text": what},
        "help": {"text": help_text, "markdown": _help_markdown(doc)},
        "defaultConfiguration": {"level": _LEVEL[doc.severity]},
        "properties": {"kind": list(doc.kinds), "tags": ["ftdoctor", *doc.kinds]},
    }


def _help_markdown(doc: RuleDoc) -> str:
    parts = [f"**{doc.code} {doc.slug}** — {doc.summary}"]
    for title in ("What it does", "Why is this bad?", "How to fix", "Example", "Use instead"):
        body = doc.section(title)
        if body:
            parts.append(f"## {title}\n\n{body}")
    return "\n\n".join(parts)


def _result(finding: Finding, index: dict[str, int]) -> dict[str, Any]:
    result: dict[str, Any] = {
        "ruleId": finding.code,
        "level": _LEVEL[finding.severity],
        "message": {"text": f"{finding.located_message()}. Fix: {finding.fix}" if finding.fix else finding.located_message()},
        "properties": {"slug": finding.rule, "severity": finding.severity.value, "fix": finding.fix},
    }
    if finding.code in index:
        result["ruleIndex"] = index[finding.code]
    if finding.step is not None:
        result["properties"]["step"] = finding.step
    if finding.evidence:
        result["properties"]["evidence"] = finding.evidence
    if finding.cell is not None:  # a notebook: the line counts within the cell, not the .ipynb JSON
        result["properties"]["cell"] = finding.cell
        result["properties"]["cellLine"] = finding.line
    if finding.path:
        result["locations"] = [{"physicalLocation": _physical_location(finding)}]
    return result


def _physical_location(finding: Finding) -> dict[str, Any]:
    assert finding.path is not None
    location: dict[str, Any] = {"artifactLocation": _artifact(finding.path)}
    if finding.line and finding.cell is None:  # a region in a notebook would point into its JSON
        location["region"] = _region(finding, finding.line)
    return location


def _region(finding: Finding, line: int) -> dict[str, int]:
    region = {"startLine": line}
    if finding.column:
        region["startColumn"] = finding.column
    end_line = max(finding.end_line or line, line)
    if finding.end_line:
        region["endLine"] = end_line
    if finding.end_column and (end_line > line or finding.end_column > (finding.column or 1)):
        region["endColumn"] = finding.end_column
    return region


def _artifact(path: str) -> dict[str, str]:
    """A relative URI under %SRCROOT% (the working directory), else an absolute file URI."""
    resolved = (Path.cwd() / path).resolve()
    try:
        return {"uri": quote(resolved.relative_to(Path.cwd().resolve()).as_posix()), "uriBaseId": SRCROOT}
    except ValueError:
        return {"uri": resolved.as_uri()}
