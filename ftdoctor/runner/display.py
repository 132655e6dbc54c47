"""What the user sees while the fine-tune runs (always on stderr: stdout is the report's).

On a terminal: a live rich panel — progress, loss, learning rate, gradient
norm, the latest evaluation and the findings established so far. Otherwise
(a pipe, a CI log) or with ``--quiet``: plain lines, a few per run.
"""

from __future__ import annotations

import sys
import time
from typing import IO, Any

from ftdoctor.findings import Finding, Severity
from ftdoctor.runner.metrics import Evaluation

SEVERITY_STYLE = {Severity.ERROR: "bold red", Severity.WARNING: "bold yellow", Severity.INFO: "cyan"}
PLAIN_LINES_PER_RUN = 10  # step lines a plain display prints over a whole run


def make_display(*, quiet: bool = False, stream: IO[str] | None = None) -> "PlainDisplay | LiveDisplay":
    stream = stream or sys.stderr
    if quiet or not _is_terminal(stream):
        return PlainDisplay(stream)
    return LiveDisplay(stream)


def _is_terminal(stream: IO[str]) -> bool:
    return bool(getattr(stream, "isatty", lambda: False)())


def format_step(step: int, total: int, loss: float, lr: float, grad_norm: float | None) -> str:
    norm = f"  grad-norm {grad_norm:.3g}" if grad_norm is not None else ""
    return f"step {step}/{total}  loss {loss:.4f}  lr {lr:.2e}{norm}"


def format_evaluation(evaluation: Evaluation) -> str:
    return (f"eval @ step {evaluation.step}: val loss {evaluation.val_loss:.4f}, val acc {evaluation.val_accuracy:.3f}"
            f" | train loss {evaluation.train_loss:.4f}, train acc {evaluation.train_accuracy:.3f}")


def format_finding(finding: Finding) -> str:
    return f"finding @ step {finding.step or 0}: {finding.code} {finding.rule} [{finding.severity.value}] {finding.message}"


class PlainDisplay:
    """A start line, about ten step lines, every evaluation and every finding as it is established."""

    def __init__(self, stream: IO[str]) -> None:
        self.stream = stream
        self.total = 0
        self.every = 1

    def _line(self, text: str) -> None:
        print(f"ftdoctor: {text}", file=self.stream, flush=True)

    def start(self, total_steps: int, title: str) -> None:
        self.total = total_steps
        self.every = max(1, total_steps // PLAIN_LINES_PER_RUN)
        self._line(f"training {title} for {total_steps} steps")

    def on_step(self, step: int, loss: float, lr: float, grad_norm: float | None) -> None:
        if step % self.every == 0 or step == self.total:
            self._line(format_step(step, self.total, loss, lr, grad_norm))

    def on_evaluation(self, evaluation: Evaluation) -> None:
        self._line(format_evaluation(evaluation))

    def on_finding(self, finding: Finding) -> None:
        self._line(format_finding(finding))

    def stop(self) -> None:
        pass


class LiveDisplay:
    """A rich Live panel refreshed a few times a second."""

    def __init__(self, stream: IO[str]) -> None:
        from rich.console import Console

        self.console = Console(file=stream)
        self.title = ""
        self.total = 0
        self.step = 0
        self.status = "starting…"
        self.evaluation = ""
        self.findings: list[Finding] = []
        self.started = time.perf_counter()
        self.live: Any = None

    def start(self, total_steps: int, title: str) -> None:
        from rich.live import Live

        self.title, self.total, self.started = title, total_steps, time.perf_counter()
        self.live = Live(self, console=self.console, refresh_per_second=4, transient=False)
        self.live.start()

    def on_step(self, step: int, loss: float, lr: float, grad_norm: float | None) -> None:
        self.step = step
        self.status = format_step(step, self.total, loss, lr, grad_norm)

    def on_evaluation(self, evaluation: Evaluation) -> None:
        self.evaluation = format_evaluation(evaluation)

    def on_finding(self, finding: Finding) -> None:
        self.findings.append(finding)

    def stop(self) -> None:
        if self.live is not None:
            self.live.stop()
            self.live = None

    def __rich__(self) -> Any:
        from rich.console import Group
        from rich.panel import Panel
        from rich.progress_bar import ProgressBar
        from rich.table import Table
        from rich.text import Text

        elapsed = time.perf_counter() - self.started
        eta = elapsed / self.step * (self.total - self.step) if self.step else None
        head = Table.grid(padding=(0, 1))
        head.add_row(ProgressBar(total=max(self.total, 1), completed=self.step, width=40),
                     Text(f"{self.step}/{self.total}  {elapsed:.0f}s" + (f"  eta {eta:.0f}s" if eta is not None else ""),
                          style="dim"))
        rows: list[Any] = [head, Text(self.status)]
        if self.evaluation:
            rows.append(Text(self.evaluation, style="cyan"))
        for finding in list(self.findings)[-8:]:
            line = Text(f"step {finding.step or 0:>4}  ")
            line.append(f"{finding.severity.value:<7}", style=SEVERITY_STYLE[finding.severity])
            line.append(f" {finding.rule}", style="magenta")
            line.append(f"  {finding.message}")
            rows.append(line)
        if not self.findings:
            rows.append(Text("no findings so far", style="green"))
        return Panel(Group(*rows), title=f"ftdoctor · {self.title}", title_align="left", border_style="blue")
