"""head-not-trained: weights the checkpoint did not have (the new head) are frozen or in no optimizer.

Judged once the optimizers are known (the first optimizer step, or the end of a run
that never stepped). In every transformers model loaded with ``from_pretrained``
inside the watched model (see ``_checkpoints``), the parameters transformers left
newly initialised must train: a new head frozen at its random init, or left out of
every optimizer, turns the encoder's features into noise the loss cannot fix.
This is what PEFT without ``task_type``/``modules_to_save`` does to a
``*ForSequenceClassification`` head. Adapter weights added after loading (LoRA's,
an inactive adapter's) are not the checkpoint's business and are left out; a model
with nothing trainable at all is no-trainable-params'.
"""

from __future__ import annotations

from typing import Any

import torch

from ftdoctor.findings import Finding
from ftdoctor.runtime.events import OptimizerStep, Preflight, RunEnded
from ftdoctor.runtime.rule import RuntimeRule, register_runtime_rule
from ftdoctor.runtime.rules._checkpoints import pretrained_parts

_SHOWN = 6


@register_runtime_rule
class HeadNotTrained(RuntimeRule):
    slug = "head-not-trained"
    needs = ("optimizer_step",)
    explains_findings = frozenset({"params-not-in-optimizer", "lr-too-low", "prediction-collapse"})

    def __init__(self, options: Any = None) -> None:
        super().__init__(options)
        self.preflight: Preflight | None = None
        self.untrained: list[str] = []

    def on_preflight(self, event: Preflight) -> None:
        self.preflight = event

    def on_before_step(self, event: OptimizerStep) -> None:
        self._judge(event.step)

    def on_run_end(self, event: RunEnded) -> None:
        self._judge(event.step)

    def explains_finding(self, finding: Finding) -> bool:
        if not super().explains_finding(finding):
            return False
        if finding.rule == "params-not-in-optimizer":  # only when they are the new weights
            return set((finding.evidence or {}).get("parameters", ())) <= set(self.untrained)
        return True

    def _judge(self, step: int) -> None:
        if self.preflight is None or not self.preflight.optimizers:
            return
        self.done = True
        model = self.preflight.model
        if not any(p.requires_grad for p in model.parameters()):
            return  # nothing trains at all: no-trainable-params
        optimized = {id(p) for opt in self.preflight.optimizers for g in opt.param_groups for p in g["params"]}
        params = dict(model.named_parameters())
        frozen, left_out = [], []
        for part in pretrained_parts(model):
            if not part.loaded:
                continue  # not loaded from a checkpoint: random-init-not-pretrained's question
            for name in part.new:
                param = params.get(name)
                if param is None:
                    continue
                if not param.requires_grad:
                    frozen.append(name)
                elif id(param) not in optimized:
                    left_out.append(name)
        self.untrained = frozen + left_out
        if self.untrained:
            self._emit(step, frozen, left_out, params)

    def _emit(self, step: int, frozen: list[str], left_out: list[str], params: dict[str, torch.Tensor]) -> None:
        names = self.untrained
        shown = ", ".join(f"`{n}`" for n in names[:_SHOWN]) + (" ..." if len(names) > _SHOWN else "")
        why = " and ".join(
            text for text, group in (("frozen (requires_grad=False)", frozen), ("in no optimizer", left_out)) if group
        )
        self.emit(
            step,
            f"{len(names)} parameter tensor(s) the checkpoint did not have — newly initialised by from_pretrained, "
            f"e.g. the new classification head — are {why}, so they stay random: {shown}",
            "train the new head: with PEFT pass task_type=\"SEQ_CLS\" (or modules_to_save=[\"classifier\"]) to "
            "LoraConfig; otherwise leave requires_grad=True on the head and put it in the optimizer",
            {
                "parameters": names,
                "frozen": frozen,
                "not_in_optimizer": left_out,
                "values": sum(params[n].numel() for n in names),
            },
        )
