"""exploding-gradients: the gradient norm is orders of magnitude above its early level.

The early level is the median global gradient norm of the first
``explode_baseline_steps`` steps; the rule fires when the norm stays above
``explode_factor`` x that level (or is infinite while the loss is finite) for
``explode_patience`` consecutive steps. Steps with a non-finite loss belong to
non-finite-loss. Calibration: clean tiny-BERT runs grow their norm by up to
~10x (lr 1e-3) and, at an aggressive lr 3e-3, spike to ~170x as learning kicks
in, hence three orders of magnitude.
"""

from __future__ import annotations

import math
import statistics
from typing import Any

from ftdoctor.runtime.events import OptimizerStep
from ftdoctor.runtime.rule import RuntimeRule, register_runtime_rule


@register_runtime_rule
class ExplodingGradients(RuntimeRule):
    slug = "exploding-gradients"
    needs = ("backward", "optimizer_step")
    skip_routine = frozenset({"on_before_step"})  # gradient norms exist on measured steps only

    def __init__(self, options: Any = None) -> None:
        super().__init__(options)
        self.early: list[float] = []
        self.streak: list[float] = []

    def on_before_step(self, event: OptimizerStep) -> None:
        norm = event.grad_norm
        if norm is None or (event.loss is not None and not math.isfinite(event.loss)):
            return
        if len(self.early) < self.options.explode_baseline_steps:
            if math.isfinite(norm) and norm > 0:
                self.early.append(norm)
            return
        level = statistics.median(self.early)
        threshold = level * self.options.explode_factor
        self.streak = self.streak + [norm] if not norm <= threshold else []
        if len(self.streak) >= self.options.explode_patience:
            self._emit(event.step + 1, level, threshold)  # the step whose gradients these are

    def _emit(self, step: int, level: float, threshold: float) -> None:
        latest = self.streak[-1]
        self.emit(
            step,
            f"the gradient norm reached {latest:.3g} at optimizer step {step}, "
            f"{latest / level:.3g}x its early level of {level:.3g}, for {len(self.streak)} consecutive steps",
            "clip gradients (torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)) and lower the learning rate; "
            "if you scale the loss, unscale it before the step",
            {
                "grad_norm": latest,
                "early_grad_norm": level,
                "threshold": threshold,
                "factor": self.options.explode_factor,
                "recent_grad_norms": self.streak[-self.options.explode_patience :],
            },
        )
