"""overfitting-gap: validation loss rises while training loss falls, or accuracies drift apart.

Judged at each evaluation: the validation loss rose (by more than
``overfit_min_rise``, relative) while the training loss fell, at
``overfit_evaluations`` consecutive evaluations; or train accuracy exceeded
validation accuracy by more than ``accuracy_gap`` at as many consecutive
evaluations (one noisy evaluation is not a trend).
"""

from __future__ import annotations

from typing import Any

from ftdoctor.runtime.events import Evaluation
from ftdoctor.runtime.rule import RuntimeRule, register_runtime_rule

_FIX = (
    "stop earlier (keep the best checkpoint by validation loss), add regularisation "
    "(weight decay, dropout), or train on more data"
)


@register_runtime_rule
class OverfittingGap(RuntimeRule):
    slug = "overfitting-gap"
    needs = ("evaluation",)

    def __init__(self, options: Any = None) -> None:
        super().__init__(options)
        self.evaluations: list[Evaluation] = []
        self.diverging = 0  # consecutive evaluations with val loss up, train loss down
        self.gapped = 0  # consecutive evaluations with a large accuracy gap

    def on_evaluation(self, event: Evaluation) -> None:
        if self.fired:
            return
        previous = self.evaluations[-1] if self.evaluations else None
        self.evaluations.append(event)
        self.diverging = self.diverging + 1 if previous and self._diverged(previous, event) else 0
        self.gapped = self.gapped + 1 if self._gap(event) > self.options.accuracy_gap else 0
        needed = self.options.overfit_evaluations
        if self.diverging >= needed:
            self._emit_losses(event)
        elif self.gapped >= needed:
            self._emit_gap(event)

    def _diverged(self, before: Evaluation, now: Evaluation) -> bool:
        if None in (before.val_loss, now.val_loss, before.train_loss, now.train_loss):
            return False
        rise = self.options.overfit_min_rise
        return now.val_loss > before.val_loss * (1 + rise) and now.train_loss < before.train_loss  # type: ignore[operator]

    @staticmethod
    def _gap(event: Evaluation) -> float:
        if event.train_accuracy is None or event.val_accuracy is None:
            return 0.0
        return event.train_accuracy - event.val_accuracy

    def _emit_losses(self, event: Evaluation) -> None:
        recent = self.evaluations[-(self.options.overfit_evaluations + 1) :]
        self.emit(
            event.step,
            "validation loss rose while training loss fell for "
            f"{self.options.overfit_evaluations} consecutive evaluations: val "
            + " -> ".join(f"{e.val_loss:.4g}" for e in recent)
            + ", train "
            + " -> ".join(f"{e.train_loss:.4g}" for e in recent),
            _FIX,
            {
                "val_losses": [e.val_loss for e in recent],
                "train_losses": [e.train_loss for e in recent],
                "steps": [e.step for e in recent],
                "min_relative_rise": self.options.overfit_min_rise,
            },
        )

    def _emit_gap(self, event: Evaluation) -> None:
        gap = self._gap(event)
        self.emit(
            event.step,
            f"train accuracy {event.train_accuracy:.3f} exceeds validation accuracy {event.val_accuracy:.3f} by "
            f"{gap:.3f} (> {self.options.accuracy_gap}) for {self.gapped} consecutive evaluations",
            _FIX,
            {
                "train_accuracy": event.train_accuracy,
                "val_accuracy": event.val_accuracy,
                "gap": gap,
                "threshold": self.options.accuracy_gap,
            },
        )
