"""lr-too-low: updates are tiny relative to the weights and the loss is flat.

Within the first ``lr_judge_until`` steps, over a window of ``lr_window``
steps with no warm-up in it: the median update/weight ratio is below
``update_ratio_low`` (pretrained weights) or ``update_ratio_low_scratch`` (a model
trained from scratch) and the mean loss moved less than ``loss_flat_tolerance``
from the first step's. Calibration: AdamW moves each weight by about lr per
step, so the ratio is about lr / rms(w): 2e-2 for the clean tiny BERT at lr 1e-3
(weights ~0.02), ~1e-3 for MiniLM fine-tuned at 2e-5; lr 1e-7 gives ~1e-6.
"""

from __future__ import annotations

from typing import Any

from ftdoctor.runtime.events import OptimizerStep, Preflight
from ftdoctor.runtime.rule import RuntimeRule, register_runtime_rule
from ftdoctor.runtime.rules._lr_signals import LrSignals, weights_kind


@register_runtime_rule
class LrTooLow(RuntimeRule):
    slug = "lr-too-low"
    explains_findings = frozenset({"prediction-collapse"})
    needs = ("loss", "optimizer_step")

    def __init__(self, options: Any = None) -> None:
        super().__init__(options)
        self.signals = LrSignals(self.options.lr_window)
        self.ratio_limit = self.options.update_ratio_low_scratch

    def on_preflight(self, event: Preflight) -> None:
        if weights_kind(event) == "pretrained":
            self.ratio_limit = self.options.update_ratio_low

    def on_after_step(self, event: OptimizerStep) -> None:
        if event.step > self.options.lr_judge_until:
            self.done = True
            return
        signals = self.signals
        signals.add(event)
        if not (signals.full and signals.lr_settled):
            return
        ratio, change = signals.median_ratio, signals.loss_change
        if ratio < self.ratio_limit and abs(change) < self.options.loss_flat_tolerance:
            self.emit(
                event.step,
                f"steps barely move the weights (median update/weight ratio {ratio:.2e} < "
                f"{self.ratio_limit:.0e}) and the loss is flat ({signals.window_loss:.4g} vs "
                f"{signals.start_loss:.4g} at the start) after {event.step} steps at lr={event.lr:.3g}",
                "raise the learning rate (BERT fine-tuning: 1e-5 to 5e-5 with AdamW)",
                {
                    "median_update_ratio": ratio,
                    "update_ratio_threshold": self.ratio_limit,
                    "loss_start": signals.start_loss,
                    "loss_window_mean": signals.window_loss,
                    "relative_loss_change": change,
                    "lr": event.lr,
                },
            )
