"""overfitting-gap: validation loss rises while training loss falls, or accuracies drift apart.

Judged at each evaluation, each signal at ``overfit_evaluations`` consecutive
evaluations (one noisy evaluation is not a trend):

- the validation loss rose (by more than ``overfit_min_rise``, relative) while the
  training loss fell — a steady climb;
- the validation loss stayed more than ``overfit_best_rise`` above its best
  evaluation while the training loss was below what it was then — the noisy
  plateau of a model memorising its training set (label noise it can only learn by
  heart), where early stopping on validation loss would already have stopped;
- train accuracy exceeded validation accuracy by more than ``accuracy_gap``.
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
        self.past_best = 0  # consecutive evaluations with val loss well above its best, train loss below it then
        self.gapped = 0  # consecutive evaluations with a large accuracy gap

    def on_evaluation(self, event: Evaluation) -> None:
        if self.fired:
            return
        previous = self.evaluations[-1] if self.evaluations else None
        best = self._best()
        self.evaluations.append(event)
        self.diverging = self.diverging + 1 if previous and self._diverged(previous, event) else 0
        self.past_best = self.past_best + 1 if best and self._past_best(best, event) else 0
        self.gapped = self.gapped + 1 if self._gap(event) > self.options.accuracy_gap else 0
        needed = self.options.overfit_evaluations
        if self.diverging >= needed:
            self._emit_losses(event)
        elif self.past_best >= needed and best is not None:
            self._emit_past_best(event, best)
        elif self.gapped >= needed:
            self._emit_gap(event)

    def _best(self) -> Evaluation | None:
        """The evaluation with the lowest validation loss so far (with a training loss to compare)."""
        scored = [e for e in self.evaluations if e.val_loss is not None and e.train_loss is not None]
        return min(scored, key=lambda e: e.val_loss) if scored else None  # type: ignore[arg-type, return-value]

    def _past_best(self, best: Evaluation, now: Evaluation) -> bool:
        if now.val_loss is None or now.train_loss is None:
            return False
        rise = self.options.overfit_best_rise
        return now.val_loss > best.val_loss * (1 + rise) and now.train_loss < best.train_loss  # type: ignore[operator]

    def _diverged(self, before: Evaluation, now: Evaluation) -> bool:
        if None in (before.val_loss, now.val_loss, before.train_loss, now.train_loss):
            return False
        rise = self.options.overfit_min_rise
        return now.val_loss > before.val_loss * (1 + rise) and now.train_loss < before.train_loss  # type: ignore[operator]

    def _emit_past_best(self, event: Evaluation, best: Evaluation) -> None:
        recent = self.evaluations[-self.options.overfit_evaluations :]
        assert best.val_loss is not None and best.train_loss is not None
        assert event.val_loss is not None and event.train_loss is not None
        self.emit(
            event.step,
            f"validation loss has stayed above its best ({best.val_loss:.4g} at step {best.step}) for "
            f"{len(recent)} evaluations, now {event.val_loss:.4g} (+{event.val_loss / best.val_loss - 1:.0%}), "
            f"while training loss fell from {best.train_loss:.4g} to {event.train_loss:.4g}: the model is "
            "learning its training set by heart",
            _FIX,
            {
                "best_val_loss": best.val_loss,
                "best_step": best.step,
                "train_loss_at_best": best.train_loss,
                "val_losses": [e.val_loss for e in recent],
                "train_losses": [e.train_loss for e in recent],
                "steps": [e.step for e in recent],
                "min_rise_over_best": self.options.overfit_best_rise,
            },
        )

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
