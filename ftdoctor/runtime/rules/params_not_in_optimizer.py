"""params-not-in-optimizer: parameters that require gradients are in no optimizer.

Judged once the optimizers are known (at the first optimizer step, or at the
end of a run that never stepped). Intentional freezing (``requires_grad=False``,
e.g. a frozen encoder with only the head trained) is correct and silent.
"""

from __future__ import annotations

from typing import Any

import torch

from ftdoctor.runtime.events import OptimizerStep, Preflight, RunEnded
from ftdoctor.runtime.rule import RuntimeRule, register_runtime_rule

_SHOWN = 8


@register_runtime_rule
class ParamsNotInOptimizer(RuntimeRule):
    slug = "params-not-in-optimizer"
    needs = ("optimizer_step",)

    def __init__(self, options: Any = None) -> None:
        super().__init__(options)
        self.preflight: Preflight | None = None

    def on_preflight(self, event: Preflight) -> None:
        self.preflight = event

    def on_before_step(self, event: OptimizerStep) -> None:
        self._judge(event.step)

    def on_run_end(self, event: RunEnded) -> None:
        self._judge(event.step)

    def _judge(self, step: int) -> None:
        if self.preflight is None or not self.preflight.optimizers:
            return
        self.done = True
        in_optimizer = {id(p) for opt in self.preflight.optimizers for g in opt.param_groups for p in g["params"]}
        modules = self.preflight.modules or {"": self.preflight.model}  # a separate head too
        missing = [
            (f"{prefix}.{name}" if prefix else name, p)
            for prefix, module in modules.items() for name, p in module.named_parameters()
            if p.requires_grad and id(p) not in in_optimizer
        ]
        if not missing:
            return
        names = [name for name, _ in missing]
        shown = ", ".join(f"`{n}`" for n in names[:_SHOWN]) + (" ..." if len(names) > _SHOWN else "")
        self.emit(
            step,
            f"{len(names)} parameter tensor(s) ({_numel(missing):,} values) require gradients but are in no "
            f"optimizer param group, so they never change: {shown}",
            "build the optimizer from model.parameters() (or add the missing ones with add_param_group); "
            "set requires_grad=False on what you mean to freeze",
            {"parameters": names, "values": _numel(missing)},
        )


def _numel(named: list[tuple[str, torch.Tensor]]) -> int:
    return sum(p.numel() for _, p in named)
