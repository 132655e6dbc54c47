"""dead-parameters: trainable parameters in the optimizer that never receive a gradient.

Judged per parameter tensor (an embedding's gradient is row-sparse by design,
so element-wise zero fractions would be false alarms) over the first
``dead_param_steps`` optimizer steps: a tensor whose ``.grad`` was None or
all-zero at every one of them is not connected to the loss — typically a head
that the forward never calls. Steps whose gradients were all cleared after the
last backward (zero_grad between backward and step) are not counted. Modules
listed in ``benign_dead_modules`` (a base model's pooler when a custom head
reads ``last_hidden_state``) are left out.
"""

from __future__ import annotations

from typing import Any

from ftdoctor.runtime.events import OptimizerStep
from ftdoctor.runtime.rule import RuntimeRule, register_runtime_rule

_SHOWN = 8


@register_runtime_rule
class DeadParameters(RuntimeRule):
    slug = "dead-parameters"
    needs = ("backward", "optimizer_step")

    def __init__(self, options: Any = None) -> None:
        super().__init__(options)
        self.steps_seen = 0
        self.dead: set[str] | None = None  # names without a gradient on every step so far

    def on_before_step(self, event: OptimizerStep) -> None:
        if event.grad_norm is None or event.backwards_since_zero_grad == 0:
            # not measured, or gradients cleared after the last backward (a misplaced
            # zero_grad empties every parameter alike: it says nothing about connectivity)
            return
        without_grad = {name for name, norm in event.grad_norms.items() if not norm}
        self.dead = without_grad if self.dead is None else self.dead & without_grad
        self.steps_seen += 1
        if self.steps_seen >= self.options.dead_param_steps:
            self._judge(event.step + 1)  # the step whose gradients were judged

    def _judge(self, step: int) -> None:
        benign = self.options.benign_dead_modules
        dead = sorted(name for name in self.dead or () if not _under(name, benign))
        self.done = True  # judged once
        if not dead:
            return
        shown = ", ".join(f"`{name}`" for name in dead[:_SHOWN]) + (" ..." if len(dead) > _SHOWN else "")
        self.emit(
            step,
            f"{len(dead)} trainable parameter tensor(s) in the optimizer received no gradient in "
            f"{self.steps_seen} steps: {shown} — the forward never uses them",
            "call the module in forward (e.g. use the head you defined), or freeze it / leave it out of the optimizer",
            {"parameters": dead, "steps_observed": self.steps_seen},
        )


def _under(name: str, modules: tuple[str, ...]) -> bool:
    parts = name.split(".")[:-1]
    return any(part in modules for part in parts)
