"""weight-decay-out-of-range: a param group's weight decay wipes (or flips) its weights.

Judged once per optimizer, at its first step, from its param groups (only groups
holding trainable parameters):

- SGD and decoupled optimizers (AdamW & co., see ``_weight_decay``) multiply the
  weights by ``1 - lr x weight_decay`` every step: at ``lr x wd >= 1`` every step
  zeroes or flips them; at ``>= decay_per_step_high`` (default 0.05) they halve
  within ~14 steps, whatever the gradients say. The lr is the schedule's peak
  (``initial_lr``), since warm-up starts at 0.
- any optimizer: a decay pull ``weight_decay x rms(w)`` of at least ``decay_pull_high``
  (default 1) per weight outweighs every gradient step (an Adam-style step moves a weight
  by about ``lr``, i.e. a pull of 1), so the weights settle near ``1 / weight_decay``
  instead of where the data wants them.

Calibration: BERT recipes use 0.0-0.1 (0.01 typical); the grokking recipe (AdamW, lr 1e-3,
wd 1) decays 1e-3 per step with a pull of ~0.02-0.05: all silent. The issue's weight decay
of 64 at lr 1e-3 removes 6.4% per step (pull 64 x 0.02 = 1.3 on tiny BERT).
"""

from __future__ import annotations

import math
from typing import Any

import torch

from ftdoctor.runtime.events import OptimizerStep, Preflight
from ftdoctor.runtime.rule import RuntimeRule, register_runtime_rule
from ftdoctor.runtime.rules._weight_decay import group_lr, shrinks_linearly


@register_runtime_rule
class WeightDecayOutOfRange(RuntimeRule):
    slug = "weight-decay-out-of-range"
    needs = ("optimizer_step",)
    skip_routine = frozenset({"on_before_step"})  # each optimizer is judged once, at the first measured step that holds it
    explains_findings = frozenset({"lr-too-high", "lr-too-low", "exploding-gradients", "non-finite-loss",
                                   "prediction-collapse"})

    def __init__(self, options: Any = None) -> None:
        super().__init__(options)
        self.optimizers: list[torch.optim.Optimizer] = []
        self.judged: set[int] = set()

    def on_preflight(self, event: Preflight) -> None:
        self.optimizers = event.optimizers  # live: optimizers added later appear in it

    def on_before_step(self, event: OptimizerStep) -> None:
        for index, optimizer in enumerate(self.optimizers):
            if id(optimizer) not in self.judged:
                self.judged.add(id(optimizer))
                self._judge(event.step, index, optimizer)

    def _judge(self, step: int, index: int, optimizer: torch.optim.Optimizer) -> None:
        options = self.options
        for number, group in enumerate(optimizer.param_groups):
            decay = float(group.get("weight_decay", 0.0) or 0.0)
            params = [p for p in group["params"] if p.requires_grad]
            if decay <= 0 or not params:
                continue
            lr = group_lr(group)
            shrink = lr * decay if shrinks_linearly(optimizer, group) else 0.0
            pull = decay * _rms([p for p in params if p.dim() >= 2]) if decay >= options.decay_pull_high else 0.0
            if shrink < options.decay_per_step_high and pull < options.decay_pull_high:
                continue
            where = f"param group {number} of optimizer {index} ({type(optimizer).__name__}, {len(params)} tensors)"
            self.emit(
                step,
                f"{where} has weight_decay={decay:g} at lr={lr:.3g}: {_effect(shrink, pull, options.decay_per_step_high)}",
                "use a weight decay of 0.0-0.1 (BERT fine-tuning: 0.01, with AdamW), and leave biases and "
                "LayerNorm weights out of it",
                {
                    "optimizer": index,
                    "param_group": number,
                    "weight_decay": decay,
                    "lr": lr,
                    "decay_per_step": shrink or None,
                    "decay_per_step_threshold": options.decay_per_step_high,
                    "decay_pull": pull or None,
                    "decay_pull_threshold": options.decay_pull_high,
                },
            )
            return


def _effect(shrink: float, pull: float, per_step_high: float) -> str:
    if shrink >= 1:
        return f"every step multiplies the weights by 1 - lr x weight_decay = {1 - shrink:.3g}, zeroing or flipping them"
    if shrink >= per_step_high:
        half_life = math.log(2) / -math.log1p(-shrink)
        return f"every step removes {shrink:.1%} of each weight, halving the weights every {half_life:.0f} steps"
    return (f"its pull towards zero (weight_decay x rms(w) = {pull:.3g}) outweighs every gradient step, so the "
            f"weights settle near 1/weight_decay whatever the data says")


def _rms(params: list[torch.Tensor]) -> float:
    """Root mean square of the weights (one pass, one read-back)."""
    if not params:
        return 0.0
    with torch.no_grad():
        sums = torch.stack([p.detach().float().pow(2).sum() for p in params]).sum()
    return math.sqrt(float(sums) / sum(p.numel() for p in params))
