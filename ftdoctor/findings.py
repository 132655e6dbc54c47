"""The one Finding and the one Report shared by the static and runtime halves.

Every output format renders a :class:`Report` and nothing else.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field, replace
from typing import Any, Sequence

from ftdoctor.version import __version__


class Severity(str, enum.Enum):
    """Ordered severities; ``FailOn`` thresholds compare by :attr:`rank`."""

    INFO = "info"
    WARNING = "warning"
    ERROR = "error"

    @property
    def rank(self) -> int:
        return _RANKS[self]

    def at_least(self, other: "Severity") -> bool:
        return self.rank >= other.rank


_RANKS = {Severity.INFO: 0, Severity.WARNING: 1, Severity.ERROR: 2}

#: Values accepted by ``--fail-on``; ``never`` makes every run exit 0.
FAIL_ON_CHOICES = ("error", "warning", "info", "never")


#: What the runtime doctor must have observed before it may call a run healthy (contract: ``coverage.observed``).
CORE_SIGNALS = ("loss", "backward", "optimizer_step", "labels", "logits", "evaluation")


def either_of(words: Sequence[str]) -> str:
    """``loss``, ``loss or backward``, ``loss, backward or evaluation``: signal names as a sentence says them."""
    names = [word.replace("_", " ") for word in words]
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " or " + names[-1]


@dataclass(frozen=True)
class Finding:
    """One diagnosed problem, static or runtime.

    ``path``/``line`` locate the cause in user code when known; in a notebook ``line`` counts
    within ``cell``. Runtime findings
    also carry ``step`` (the optimizer step at which the rule became certain,
    0 = before the first step; one numbering everywhere: a finding established
    while the k-th step is taken says k, as the k-th row of the step history
    holding its evidence does) and ``evidence`` (measured values, thresholds,
    parameter or module names).
    """

    rule: str
    code: str
    severity: Severity
    message: str
    fix: str
    path: str | None = None
    line: int | None = None
    column: int | None = None
    end_line: int | None = None
    end_column: int | None = None
    step: int | None = None
    evidence: dict[str, Any] | None = None
    #: What a fixer needs beyond the finding's own span (``check --fix``): names and spans
    #: ``(line, column, end_line, end_column)`` of related nodes. Never rendered in reports.
    anchors: dict[str, Any] | None = field(default=None, compare=False, repr=False)
    #: notebooks: the cell (numbered from 1 over all cells) that ``line`` counts within
    cell: int | None = None
    #: symptoms of this finding's root cause, listed under it instead of beside it
    related: tuple["Finding", ...] = ()

    def located_message(self) -> str:
        """The message, with a notebook finding's ``cell N:`` prefix completed to ``cell N, line L:`` — for
        formats whose own line field would be read as a line of the .ipynb JSON (GitHub, SARIF)."""
        if self.cell is None or self.line is None:
            return self.message
        prefix = f"cell {self.cell}: "
        rest = self.message[len(prefix):] if self.message.startswith(prefix) else self.message
        return f"cell {self.cell}, line {self.line}: {rest}"

    def with_severity(self, severity: Severity) -> "Finding":
        return replace(self, severity=severity)

    def with_related(self, *symptoms: "Finding") -> "Finding":
        """This finding with ``symptoms`` (and whatever they listed) folded under it."""
        folded = [*self.related]
        for symptom in symptoms:
            folded += [replace(symptom, related=()), *symptom.related]
        return replace(self, related=tuple(folded))

    def sort_key(self) -> tuple[Any, ...]:
        return (self.path or "", self.cell or 0, self.line or 0, self.column or 0, self.step or 0, self.code)

    def to_dict(self, mode: str) -> dict[str, Any]:
        data: dict[str, Any] = {
            "rule": self.rule,
            "code": self.code,
            "severity": self.severity.value,
            "message": self.message,
            "fix": self.fix,
        }
        for key in ("path", "line", "column", "end_line", "end_column"):
            value = getattr(self, key)
            if value is not None or mode == "check":
                data[key] = value
        if self.cell is not None:
            data["cell"] = self.cell
        if mode == "run":
            data["step"] = self.step
            data["evidence"] = self.evidence or {}
        if self.related:
            data["related"] = [symptom.to_dict(mode) for symptom in self.related]
        return data


@dataclass
class Report:
    """Everything one ``check`` or ``run`` produced."""

    mode: str  # "check" or "run"
    findings: list[Finding] = field(default_factory=list)
    files_checked: int = 0
    # run mode only
    metrics: dict[str, float | None] = field(default_factory=dict)
    steps: int = 0
    overhead: float | None = None
    #: run mode: ``{"observed": {signal: bool}, "not_run": [{"rule", "why"}]}`` (contract), None when unknown
    coverage: dict[str, Any] | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def observed_coverage(self) -> dict[str, Any]:
        """``coverage``, or — for a run no doctor watched (a script that built no optimizer) — nothing observed."""
        if self.coverage is not None:
            return self.coverage
        return {"observed": dict.fromkeys(CORE_SIGNALS, False), "not_run": []}

    @property
    def verdict(self) -> str | None:
        """Run mode: ``findings`` (one at warning or above), ``incomplete`` (a core signal never seen), ``healthy``."""
        if self.mode != "run":
            return None
        if any(f.severity.at_least(Severity.WARNING) for f in self.findings):
            return "findings"
        if self.unobserved():
            return "incomplete"
        return "healthy"

    def unobserved(self) -> list[str]:
        """The core signals the doctor never saw."""
        if self.mode != "run":
            return []
        return [signal for signal, seen in self.observed_coverage()["observed"].items() if not seen]

    def summary(self) -> dict[str, int]:
        counts = {"error": 0, "warning": 0, "info": 0}
        for finding in self.findings:
            counts[finding.severity.value] += 1
        return counts

    def sorted_findings(self) -> list[Finding]:
        if self.mode == "run":
            # A run reads as a story: what became certain first comes first.
            return sorted(self.findings, key=lambda f: (f.step or 0, -f.severity.rank, f.code))
        return sorted(self.findings, key=Finding.sort_key)

    def fails(self, fail_on: str) -> bool:
        """True when some finding is at or above the ``--fail-on`` threshold."""
        if fail_on == "never":
            return False
        threshold = Severity(fail_on)
        if self.verdict == "incomplete" and Severity.WARNING.at_least(threshold):
            return True  # a run the doctor could not see fully is never passed as healthy
        return any(f.severity.at_least(threshold) for f in self.findings)

    def exit_code(self, fail_on: str) -> int:
        return 1 if self.fails(fail_on) else 0

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {"tool": "ftdoctor", "version": __version__, "mode": self.mode}
        if self.mode == "check":
            data["files_checked"] = self.files_checked
        data["findings"] = [f.to_dict(self.mode) for f in self.sorted_findings()]
        data["summary"] = self.summary()
        if self.mode == "run":
            data["metrics"] = self.metrics
            data["steps"] = self.steps
            data["overhead"] = self.overhead
            data["verdict"] = self.verdict
            data["coverage"] = self.observed_coverage()
        data.update(self.extra)
        return data
