"""``--format github``: GitHub Actions workflow commands, one annotation per finding.

``::error file=train.py,line=35,col=9,endLine=35,endColumn=24,title=FTD101 missing-zero-grad::message (fix: ...)``
with GitHub's escaping: ``% \\r \\n`` in the message, plus ``: ,`` in property values.
"""

from __future__ import annotations

from ftdoctor.findings import Finding, Report, Severity

_COMMAND = {Severity.ERROR: "error", Severity.WARNING: "warning", Severity.INFO: "notice"}
_LOCATION_KEYS = (("file", "path"), ("line", "line"), ("col", "column"), ("endLine", "end_line"), ("endColumn", "end_column"))


def render(report: Report) -> str:
    return "".join(annotation(finding) + "\n" for finding in report.sorted_findings())


def annotation(finding: Finding) -> str:
    # a notebook's lines count within a cell; GitHub would put them on lines of the .ipynb JSON, so a notebook
    # finding annotates the file and says "cell N, line L" in its message
    keys = _LOCATION_KEYS[:1] if finding.cell is not None else _LOCATION_KEYS
    properties = [f"{key}={escape_property(str(getattr(finding, attr)))}" for key, attr in keys
                  if getattr(finding, attr) is not None]
    properties.append(f"title={escape_property(f'{finding.code} {finding.rule}')}")
    located = finding.located_message()
    message = located if finding.step is None else f"step {finding.step}: {located}"
    return f"::{_COMMAND[finding.severity]} {','.join(properties)}::{escape_data(f'{message} (fix: {finding.fix})')}"


def escape_data(text: str) -> str:
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def escape_property(text: str) -> str:
    return escape_data(text).replace(":", "%3A").replace(",", "%2C")
