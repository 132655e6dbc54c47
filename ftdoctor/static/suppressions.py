"""Suppression comments: ``# noqa``, ``# ftdoctor: ignore[...]``, ``# ftdoctor: ignore-file``.

- ``# noqa`` alone silences every finding reported on that line;
  ``# noqa: FTD101, FTD102`` only those codes (slugs are accepted too).
- ``# ftdoctor: ignore[missing-zero-grad, FTD102]`` names slugs or codes;
  a bare ``# ftdoctor: ignore`` silences the whole line.
- ``# ftdoctor: ignore-file`` within the first 10 lines silences the file.

Comments are found with :mod:`tokenize`, so a ``# noqa`` inside a string is not one.
A finding is matched on the line it starts on.
"""

from __future__ import annotations

import io
import re
import tokenize
from dataclasses import dataclass, field
from typing import Iterable, Iterator

from ftdoctor.findings import Finding

IGNORE_FILE_WITHIN_LINES = 10
#: Marker for "every rule" in a line's suppression set.
ALL = "*"

_NOQA = re.compile(r"#\s*noqa\b(?P<colon>\s*:\s*(?P<names>[\w\-]+(?:\s*,\s*[\w\-]+)*))?", re.I)
_IGNORE = re.compile(r"#\s*ftdoctor\s*:\s*ignore(?!-)(?:\[(?P<names>[^\]]*)\])?", re.I)
_IGNORE_FILE = re.compile(r"#\s*ftdoctor\s*:\s*ignore-file\b", re.I)
#: every suppression comment contains one of these words
_MARKER = re.compile(r"noqa|ftdoctor", re.I)


@dataclass
class Suppressions:
    """What the comments of one source silence."""

    by_line: dict[int, set[str]] = field(default_factory=dict)
    whole_file: bool = False

    @classmethod
    def scan(cls, source: str) -> "Suppressions":
        found = cls()
        for line, text in _comments(source):
            if line <= IGNORE_FILE_WITHIN_LINES and _IGNORE_FILE.search(text):
                found.whole_file = True
            names = _names_in_comment(text)
            if names:
                found.by_line.setdefault(line, set()).update(names)
        return found

    def silences(self, finding: Finding) -> bool:
        if self.whole_file:
            return True
        names = self.by_line.get(finding.line or 0)
        if not names:
            return False
        return ALL in names or finding.code.lower() in names or finding.rule.lower() in names

    def filter(self, findings: Iterable[Finding]) -> list[Finding]:
        return [f for f in findings if not self.silences(f)]


def _names_in_comment(text: str) -> set[str]:
    names: set[str] = set()
    for match in _NOQA.finditer(text):
        names |= _split(match.group("names")) if match.group("names") else {ALL}
    for match in _IGNORE.finditer(text):
        listed = _split(match.group("names") or "")
        names |= listed or {ALL}
    return names


def _split(names: str) -> set[str]:
    return {name.strip().lower() for name in names.split(",") if name.strip()}


def _comments(source: str) -> Iterator[tuple[int, str]]:
    """(line, text) of every comment; on a tokenize error, those seen before it."""
    if "#" not in source or not _MARKER.search(source):
        return  # no comment can suppress anything: tokenizing (a tenth of a check) would find nothing
    tokens = tokenize.generate_tokens(io.StringIO(source).readline)
    try:
        for token in tokens:
            if token.type == tokenize.COMMENT:
                yield token.start[0], token.string
    except (tokenize.TokenError, SyntaxError, ValueError):
        return  # broken source: the engine reports it; keep what was read
