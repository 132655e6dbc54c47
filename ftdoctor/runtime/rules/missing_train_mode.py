"""missing-train-mode (runtime side): the model is trained with its dropout switched off (eval mode).

Watches the backpropagated forwards of the first ``train_mode_steps`` optimizer
steps. A dropout module (p > 0) that was in eval mode at every one of them never
dropped anything while training. The rule fires when that holds for every dropout
module of the model, or for every one inside a transformers model it contains — the
wrapper case: your own ``nn.Module`` starts in train mode, the ``from_pretrained``
model inside it starts in eval mode. A model without dropout trains the same in
either mode and stays silent.
"""

from __future__ import annotations

from typing import Any

import torch

from ftdoctor.runtime.events import BackwardDone, ForwardDone, OptimizerStep, Preflight
from ftdoctor.runtime.rule import RuntimeRule, register_runtime_rule
from ftdoctor.runtime.rules._checkpoints import pretrained_parts


@register_runtime_rule
class MissingTrainMode(RuntimeRule):
    slug = "missing-train-mode"
    needs = ("backward", "optimizer_step")

    def __init__(self, options: Any = None) -> None:
        super().__init__(options)
        self.dropouts: dict[str, torch.nn.Module] = {}
        self.groups: list[tuple[str, set[str]]] = []  # (what, its dropout modules)
        self.training_now: set[str] = set()  # dropout modules in train mode at the latest training forward
        self.ever_training: set[str] = set()  # ... at some backpropagated forward
        self.backprops_this_step = 0
        self.steps = 0
        self.forward_seen = False  # a training forward was observed since the last backward

    def on_preflight(self, event: Preflight) -> None:
        self.dropouts = {
            name: module for name, module in event.model.named_modules()
            if isinstance(module, torch.nn.modules.dropout._DropoutNd) and module.p > 0
        }
        if not self.dropouts:
            self.done = True
            return
        self.groups = [("the model", set(self.dropouts))]
        for part in pretrained_parts(event.model):
            inside = {name for name in self.dropouts if not part.prefix or name.startswith(part.prefix + ".")}
            if part.prefix and inside:
                self.groups.append((f"`{part.prefix}` ({type(part.module).__name__})", inside))

    def on_forward(self, event: ForwardDone) -> None:
        if event.phase == "train" and event.grad_enabled:
            self.training_now = {name for name, module in self.dropouts.items() if module.training}
            self.forward_seen = True

    def on_backward(self, event: BackwardDone) -> None:
        if not self.forward_seen:
            return  # the forward bypassed the module hooks (model.forward(x)): its mode was not seen
        self.forward_seen = False
        self.ever_training |= self.training_now
        self.backprops_this_step += 1

    def on_before_step(self, event: OptimizerStep) -> None:
        if not self.backprops_this_step:
            return
        self.backprops_this_step = 0
        self.steps += 1
        if self.steps < self.options.train_mode_steps:
            return
        self.done = True  # judged once
        for what, modules in self.groups:
            if not modules & self.ever_training:
                self._emit(event.step, what, sorted(modules))
                return

    def _emit(self, step: int, what: str, modules: list[str]) -> None:
        self.emit(
            step,
            f"{what} was trained in eval mode: none of its {len(modules)} dropout module(s) (e.g. `{modules[0]}`) "
            f"was active in the backpropagated forwards of the first {self.steps} steps — from_pretrained returns "
            f"the model in eval mode, and nothing called .train() on it",
            "call model.train() before the training loop (and again after every evaluation)",
            {"dropout_modules": modules[:10], "inactive_dropout_modules": len(modules), "steps_observed": self.steps},
        )
