"""Which rules are on, at what severity, and when a run fails.

Shared by ``check`` and ``run``: command-line options override
``[tool.ftdoctor]`` in the nearest ``pyproject.toml``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Iterable

from ftdoctor.catalogue import RuleDoc, load_catalogue
from ftdoctor.errors import FtdoctorError
from ftdoctor.findings import Finding, Severity


class SettingsError(FtdoctorError):
    """Bad user configuration: reported as a usage error (exit 2)."""


def _matches(doc: RuleDoc, pattern: str) -> bool:
    """A selector is ``ALL``, a slug, a code, or a code prefix (``FTD1``)."""
    pattern = pattern.strip()
    if pattern.upper() == "ALL":
        return True
    if pattern == doc.slug:
        return True
    return doc.code.startswith(pattern.upper()) and pattern.upper().startswith("FTD")


def validate_selectors(patterns: Iterable[str], where: str) -> None:
    docs = load_catalogue().values()
    for pattern in patterns:
        if not any(_matches(doc, pattern) for doc in docs):
            raise SettingsError(
                f"{where}: {pattern!r} names no rule; use a slug (missing-zero-grad), "
                "a code (FTD101), a code prefix (FTD1) or ALL — `ftdoctor rules` lists them"
            )


@dataclass
class Settings:
    select: list[str] = field(default_factory=lambda: ["ALL"])
    ignore: list[str] = field(default_factory=list)
    fail_on: str = "warning"
    severity_overrides: dict[str, Severity] = field(default_factory=dict)
    exclude: list[str] = field(default_factory=list)
    #: per-rule options by slug, e.g. {"lr-out-of-range": {"full": (1e-6, 1e-4)}}
    rule_options: dict[str, dict[str, Any]] = field(default_factory=dict)
    #: check test and benchmark code with the `context: training-script` rules too (`check-tests = true`)
    check_tests: bool = False

    def is_enabled(self, slug: str) -> bool:
        doc = load_catalogue().get(slug)
        if doc is None:
            return True  # an unknown slug is a bug elsewhere; never hide it
        selected = any(_matches(doc, p) for p in self.select)
        ignored = any(_matches(doc, p) for p in self.ignore)
        return selected and not ignored

    def exempts_in_tests(self, slug: str) -> bool:
        """True when ``slug`` stays silent in test and benchmark code (its context is ``training-script``)."""
        doc = load_catalogue().get(slug)
        return not self.check_tests and doc is not None and doc.context == "training-script"

    def severity_of(self, slug: str) -> Severity:
        if slug in self.severity_overrides:
            return self.severity_overrides[slug]
        return load_catalogue()[slug].severity

    def apply(self, findings: Iterable[Finding]) -> list[Finding]:
        """Drop disabled rules and apply per-rule severity overrides."""
        kept = []
        for finding in findings:
            if not self.is_enabled(finding.rule):
                continue
            override = self.severity_overrides.get(finding.rule)
            kept.append(finding.with_severity(override) if override else finding)
        return kept
