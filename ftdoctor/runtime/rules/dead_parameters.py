"""dead-parameters: trainable parameters in the optimizer that never receive a gradient.

Judged per parameter tensor (an embedding's gradient is row-sparse by design,
so element-wise zero fractions would be false alarms) over the first
``dead_param_steps`` optimizer steps: a tensor whose ``.grad`` was None or
all-zero at every one of them is not connected to the loss — typically a head
that the forward never calls. Steps whose gradients were all cleared after the
last backward (zero_grad between backward and step) are not counted. Modules
listed in ``benign_dead_modules`` (a base model's pooler when a custom head
reads ``last_hidden_state``) are left out.

Before blaming the forward, the rule watches one more training step with a
forward hook on each module holding such a tensor: a module that ran with
gradients disabled (a frozen feature extractor called under ``torch.no_grad()``
on purpose) is used, just not trained — silent; one that ran with gradients on
feeds nothing to the loss; one that never ran is unused by the forward.
"""

from __future__ import annotations

from typing import Any

import torch

from ftdoctor.runtime.events import OptimizerStep, Preflight, RunEnded
from ftdoctor.runtime.rule import RuntimeRule, register_runtime_rule

_SHOWN = 8


@register_runtime_rule
class DeadParameters(RuntimeRule):
    slug = "dead-parameters"

    def __init__(self, options: Any = None) -> None:
        super().__init__(options)
        self.steps_seen = 0
        self.dead: set[str] | None = None  # names without a gradient on every step so far
        self.model: torch.nn.Module | None = None
        self.suspects: list[str] | None = None  # dead after the window, watched for one more step
        self.ran: dict[str, bool] = {}  # module name -> ran with gradients enabled (at least once)
        self.hooked: set[str] = set()
        self.handles: list[Any] = []

    def on_preflight(self, event: Preflight) -> None:
        self.model = event.model

    def on_before_step(self, event: OptimizerStep) -> None:
        if self.suspects is not None:
            self._judge(event.step)
            return
        if event.grad_norm is None or event.backwards_since_zero_grad == 0:
            # not measured, or gradients cleared after the last backward (a misplaced
            # zero_grad empties every parameter alike: it says nothing about connectivity)
            return
        without_grad = {name for name, norm in event.grad_norms.items() if not norm}
        self.dead = without_grad if self.dead is None else self.dead & without_grad
        self.steps_seen += 1
        if self.steps_seen >= self.options.dead_param_steps:
            self._watch_modules(event.step)

    def on_run_end(self, event: RunEnded) -> None:
        if self.suspects is not None:
            self._judge(event.step)

    def _watch_modules(self, step: int) -> None:
        benign = self.options.benign_dead_modules
        self.suspects = sorted(name for name in self.dead or () if not _under(name, benign))
        if not self.suspects:
            self.done = True
            return
        modules = dict(self.model.named_modules()) if self.model is not None else {}
        for owner in {name.rsplit(".", 1)[0] for name in self.suspects if "." in name}:
            module = modules.get(owner)
            if module is not None:
                self.hooked.add(owner)
                self.handles.append(module.register_forward_hook(self._ran(owner)))
        if not self.handles:  # nothing to watch (parameters of no known module): judge now
            self._judge(step)

    def _ran(self, owner: str) -> Any:
        def hook(module: torch.nn.Module, args: Any, output: Any) -> None:
            self.ran[owner] = self.ran.get(owner, False) or torch.is_grad_enabled()

        return hook

    def _judge(self, step: int) -> None:
        for handle in self.handles:
            handle.remove()
        self.handles = []
        self.done = True  # judged once
        suspects = self.suspects or []
        owner = {name: name.rsplit(".", 1)[0] for name in suspects}
        # a module that ran only with gradients disabled is used on purpose (no_grad), not dead
        dead = [name for name in suspects if self.ran.get(owner[name], True)]
        if not dead:
            return
        unused = [name for name in dead if owner[name] in self.hooked and owner[name] not in self.ran]
        shown = ", ".join(f"`{name}`" for name in dead[:_SHOWN]) + (" ..." if len(dead) > _SHOWN else "")
        seen = all(owner[name] in self.hooked for name in dead) and (self.ran or unused)
        if seen and len(unused) == len(dead):
            why = "the forward never uses them"
        elif seen and not unused:
            why = "their modules run, but nothing they compute reaches the loss"
        else:
            why = "they are not connected to the loss"
        self.emit(
            step,
            f"{len(dead)} trainable parameter tensor(s) in the optimizer received no gradient in "
            f"{self.steps_seen} steps: {shown} — {why}",
            "call the module in forward (e.g. use the head you defined), or freeze it / leave it out of the optimizer",
            {"parameters": dead, "steps_observed": self.steps_seen, "never_ran": unused},
        )


def _under(name: str, modules: tuple[str, ...]) -> bool:
    parts = name.split(".")[:-1]
    return any(part in modules for part in parts)
