"""lr-too-high: the loss rises, predictions collapse, or updates dwarf the weights.

Within the first ``lr_judge_until`` steps, any of:

- the mean loss of the latest ``lr_window`` steps is above ``loss_rise_factor``
  x the first step's loss (the loss of the model before any update);
- a sampled step's update/weight ratio is above ``update_ratio_high`` (one step
  moved the weights by half their own size), or above ``update_ratio_high_pretrained``
  when fine-tuning pretrained weights, which must move far less — counting only the
  lr's share: the largest ``lr x weight_decay`` that SGD/decoupled weight decay removed
  is taken out first (a weight decay of 64 is weight-decay-out-of-range's, not the lr's);
- every training batch of the latest window was predicted as one class although
  the batches held several labels, and the loss rose above ``collapse_loss_factor``
  x its start (a random-init model on its initial plateau also predicts one
  class, but its loss stays at the start).

One fault, one root cause: when most batches of the latest window hold a single
label (a label-sorted loader), the loss swings with the label order whatever the
learning rate — that is unshuffled-batches' finding, so the two loss criteria stay
silent (the update-ratio one, blind to label order, still speaks).

Calibration (tiny BERT, AdamW): clean runs (lr 1e-3) keep the windowed loss at
or below its start and update ratios <= 0.05 (<= 0.14 at lr 3e-3); lr 3e-2 and
1e-1 reach ratios of 1.4 and 4.5 on their first step and windowed losses of
1.3x-2.3x the start. Pretrained MiniLM-L6 at lr 2e-5 keeps ratios at 1.6e-4
(median) and 3.2e-4 (its first step), 6.7e-4 at lr 1e-4 with warm-up; at lr 1e-3
without warm-up it collapses to chance with a flat loss — only its first-step
ratio, 1.6e-2, gives it away (with warm-up, 1e-3 peaks at 6.6e-3 and still trains).
"""

from __future__ import annotations

from typing import Any

import torch

from ftdoctor.runtime.events import BatchSeen, ForwardDone, OptimizerStep, Preflight
from ftdoctor.runtime.rule import RuntimeRule, register_runtime_rule
from ftdoctor.runtime.rules._lr_signals import LrSignals, weights_kind
from ftdoctor.runtime.rules._weight_decay import decay_per_step

_LIMIT_FOR = {"pretrained": " for pretrained weights", "new": " for newly initialised weights"}
_FIX = "lower the learning rate (BERT fine-tuning: 1e-5 to 5e-5 with AdamW) and use warm-up"


@register_runtime_rule
class LrTooHigh(RuntimeRule):
    slug = "lr-too-high"
    needs = ("loss", "optimizer_step")
    explains_findings = frozenset({"prediction-collapse"})

    def __init__(self, options: Any = None) -> None:
        super().__init__(options)
        self.signals = LrSignals(self.options.lr_window)
        self.single_class: list[torch.Tensor] = []  # per training batch: predicted one class, labels several
        self.single_label: list[torch.Tensor] = []  # per training batch: every label the same (on the device)
        self.ratio_limit = self.options.update_ratio_high
        self.ratio_limit_kind = "scratch"
        self.optimizers: list[torch.optim.Optimizer] = []

    def on_preflight(self, event: Preflight) -> None:
        self.optimizers = event.optimizers
        kind = self.ratio_limit_kind = weights_kind(event)
        if kind == "pretrained":
            self.ratio_limit = self.options.update_ratio_high_pretrained
        elif kind == "new":
            self.ratio_limit = self.options.update_ratio_high_new_weights

    def on_batch(self, event: BatchSeen) -> None:
        labels = event.labels
        if event.phase != "train" or labels is None or labels.dim() != 1 or labels.numel() < 2:
            return
        self.single_label.append((labels == labels[0]).all())
        del self.single_label[: -self.options.lr_window]

    def on_forward(self, event: ForwardDone) -> None:
        if self.fired or event.phase != "train" or event.logits is None or event.labels is None:
            return
        if event.logits.dim() != 2 or event.logits.shape[-1] < 2 or event.labels.dim() != 1:
            return
        predicted = event.logits.argmax(-1)
        labels = event.labels
        self.single_class.append((predicted == predicted[0]).all() & (labels != labels[0]).any())
        del self.single_class[: -self.options.lr_window]

    def on_after_step(self, event: OptimizerStep) -> None:
        if event.step > self.options.lr_judge_until:
            self.done = True
            return
        self.signals.add(event)
        ratio = event.update_ratio
        if ratio is not None and ratio > self.ratio_limit:
            ratio -= decay_per_step(self.optimizers)  # the lr's share: weight decay taken out (a lower bound)
        if ratio is not None and ratio > self.ratio_limit:
            self._emit_ratio(event.step, ratio, event.lr)
        elif self.signals.full:
            self._judge_loss(event.step, event.lr)

    def _judge_loss(self, step: int, lr: float) -> None:
        signals = self.signals
        assert signals.start_loss is not None
        if signals.window_loss > self.options.collapse_loss_factor * signals.start_loss and self._label_sorted():
            return  # the swing follows the label order (unshuffled-batches), not the learning rate
        if signals.window_loss > self.options.loss_rise_factor * signals.start_loss:
            self.emit(
                step,
                f"the loss rose from {signals.start_loss:.4g} at the first step to a mean of "
                f"{signals.window_loss:.4g} over the last {len(signals.losses)} steps (> "
                f"{self.options.loss_rise_factor}x) at lr={lr:.3g}",
                _FIX,
                self._evidence(lr, loss_rise_factor=self.options.loss_rise_factor),
            )
        elif signals.window_loss >= self.options.collapse_loss_factor * signals.start_loss and self._collapsed():
            self.emit(
                step,
                f"every one of the last {len(self.single_class)} training batches was predicted as a single class "
                f"although they held several labels, and the loss rose from {signals.start_loss:.4g} to "
                f"{signals.window_loss:.4g} at lr={lr:.3g}",
                _FIX,
                self._evidence(lr, collapsed_batches=len(self.single_class)),
            )

    def _label_sorted(self) -> bool:
        """Most recent training batches hold one label each (read only when the loss already rose)."""
        if len(self.single_label) < self.options.lr_window // 2:
            return False
        return bool(torch.stack(self.single_label).float().mean() >= 0.5)

    def _collapsed(self) -> bool:
        if len(self.single_class) < self.options.lr_window:
            return False
        return bool(torch.stack(self.single_class).all())

    def _emit_ratio(self, step: int, ratio: float, lr: float) -> None:
        self.emit(
            step,
            f"optimizer step {step} changed the weights by {ratio:.3g}x their norm (> {self.ratio_limit:g}"
            f"{_LIMIT_FOR.get(self.ratio_limit_kind, '')}) at lr={lr:.3g}",
            _FIX,
            self._evidence(lr, update_ratio=ratio, update_ratio_threshold=self.ratio_limit),
        )

    def _evidence(self, lr: float, **extra: Any) -> dict[str, Any]:
        signals = self.signals
        return {
            "lr": lr,
            "loss_start": signals.start_loss,
            "loss_window_mean": signals.window_loss if signals.losses else None,
            "median_update_ratio": signals.median_ratio if signals.ratios else None,
            **extra,
        }
