"""Baselines: accept today's findings, fail only on new ones.

A baselined finding is identified by its file, its rule and a fingerprint that
survives lines moving: a hash of the rule, the offending source line's text
(whitespace-normalised) and its occurrence index among identical (rule, text)
pairs in that file. Paths are stored relative to the baseline file, so a
baseline works from any working directory.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

from ftdoctor.version import __version__
from ftdoctor.errors import FtdoctorError
from ftdoctor.findings import Finding, Report
from ftdoctor.report.source import SourceLines

FORMAT_VERSION = 1

_Key = tuple[str, str, str]  # (resolved path, rule, fingerprint)


@dataclass(frozen=True)
class Fingerprinted:
    finding: Finding
    fingerprint: str


def fingerprint_findings(findings: Iterable[Finding], sources: SourceLines | None = None) -> list[Fingerprinted]:
    """Each finding with its fingerprint, in report order."""
    sources = sources or SourceLines()
    seen: Counter[tuple[str, str, str]] = Counter()
    result = []
    for finding in sorted(findings, key=Finding.sort_key):
        text = " ".join((sources.line_of(finding) or "").split())
        occurrence = seen[(finding.path or "", finding.rule, text)]
        seen[(finding.path or "", finding.rule, text)] += 1
        digest = hashlib.sha256(f"{finding.rule}\0{text}\0{occurrence}".encode()).hexdigest()[:20]
        result.append(Fingerprinted(finding, digest))
    return result


def write_baseline(report: Report, file: str) -> int:
    """Write every finding of ``report`` to ``file``; returns how many."""
    base = Path(file).resolve().parent
    entries = [
        {
            "path": _relative(item.finding.path, base),
            "rule": item.finding.rule,
            "code": item.finding.code,
            "fingerprint": item.fingerprint,
            "line": item.finding.line,
            "message": item.finding.message,
        }
        for item in fingerprint_findings(report.findings)
    ]
    payload = {"tool": "ftdoctor", "version": __version__, "baseline": FORMAT_VERSION, "findings": entries}
    _atomic_write(Path(file), json.dumps(payload, indent=2) + "\n")
    return len(entries)


def filter_baselined(report: Report, file: str) -> Report:
    """``report`` without the findings recorded in the baseline ``file``."""
    remaining = Counter(_load_keys(file))
    kept = []
    for item in fingerprint_findings(report.findings):
        key = (_resolved(item.finding.path), item.finding.rule, item.fingerprint)
        if remaining[key] > 0:
            remaining[key] -= 1
        else:
            kept.append(item.finding)
    return Report(mode=report.mode, findings=kept, files_checked=report.files_checked)


def _load_keys(file: str) -> list[_Key]:
    path = Path(file)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise FtdoctorError(f"--baseline {file!r}: no such file; create one with --write-baseline {file}") from exc
    except (OSError, ValueError) as exc:
        raise FtdoctorError(f"--baseline {file!r} is not a readable ftdoctor baseline: {exc}") from exc
    if not isinstance(data, dict) or data.get("baseline") != FORMAT_VERSION or not isinstance(data.get("findings"), list):
        raise FtdoctorError(
            f"--baseline {file!r} is not an ftdoctor baseline (format {FORMAT_VERSION}); regenerate it with --write-baseline"
        )
    base = path.resolve().parent
    keys = []
    for entry in data["findings"]:
        try:
            keys.append((_resolved(str(base / entry["path"])), str(entry["rule"]), str(entry["fingerprint"])))
        except (KeyError, TypeError) as exc:
            raise FtdoctorError(f"--baseline {file!r}: malformed entry {entry!r}; regenerate it") from exc
    return keys


def _resolved(path: str | None) -> str:
    return str(Path(path).resolve()) if path else ""


def _relative(path: str | None, base: Path) -> str:
    if not path:
        return ""
    return Path(os.path.relpath(Path(path).resolve(), base)).as_posix()


def _atomic_write(path: Path, text: str) -> None:
    from ftdoctor.report import atomic_write_text

    atomic_write_text(path, text)
