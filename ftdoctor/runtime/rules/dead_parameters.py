"""dead-parameters: trainable parameters in the optimizer that never receive a gradient.

Judged per parameter tensor (an embedding's gradient is row-sparse by design,
so element-wise zero fractions would be false alarms) over the first
``dead_param_steps`` optimizer steps: a tensor whose ``.grad`` was None or
all-zero at every one of them is not connected to the loss. Steps whose
gradients were all cleared after the last backward (zero_grad between backward
and step) are not counted. Modules listed in ``benign_dead_modules`` (a base
model's pooler when a custom head reads ``last_hidden_state``) are left out.

Why they got none is then looked at for one more step, with forward hooks on the
modules owning them (removed after it): a module that never ran is a head the
forward never calls (the error); one that ran only under ``torch.no_grad()`` is a
frozen feature extractor by design (silent: it cannot learn, and its weights do
not move either); one that ran with gradients on is cut off from the loss
(``.detach()``, an output thrown away).
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
    needs = ("backward", "optimizer_step")

    def __init__(self, options: Any = None) -> None:
        super().__init__(options)
        self.steps_seen = 0
        self.dead: set[str] | None = None  # names without a gradient on every step so far
        self.modules: dict[str, torch.nn.Module] = {}
        self.probe: _OwnerProbe | None = None

    def on_preflight(self, event: Preflight) -> None:
        self.modules = event.modules or {"": event.model}

    def on_before_step(self, event: OptimizerStep) -> None:
        if event.grad_norm is None or event.backwards_since_zero_grad == 0:
            # not measured, or gradients cleared after the last backward (a misplaced
            # zero_grad empties every parameter alike: it says nothing about connectivity)
            return
        without_grad = {name for name, norm in event.grad_norms.items() if not norm}
        self.dead = without_grad if self.dead is None else self.dead & without_grad
        self.steps_seen += 1
        candidates = self._dead()
        if not candidates:
            self._stop_probe()
            self.done = True
        elif self.probe is not None and self.steps_seen >= self.options.dead_param_steps:
            # the probe was on for this step's forward (started at an earlier step)
            self._judge(event.step + 1, self.probe.finish())  # the step whose gradients were judged
        elif self.probe is None and self.steps_seen >= self.options.dead_param_steps - 1:
            # the last step of the window runs with hooks on the candidates' modules: why no gradient?
            self.probe = _OwnerProbe(candidates, self.modules)
            self.probe.start()

    def _stop_probe(self) -> None:
        if self.probe is not None:
            self.probe.finish()
            self.probe = None

    def on_run_end(self, event: RunEnded) -> None:
        if self.probe is not None:
            if self.steps_seen >= self.options.dead_param_steps:
                self._judge(event.step, self.probe.finish())
            else:
                self._stop_probe()

    def _dead(self) -> list[str]:
        benign = self.options.benign_dead_modules
        return sorted(name for name in self.dead or () if not _under(name, benign))

    def _judge(self, step: int, ran: dict[str, set[bool]]) -> None:
        """``ran``: dead parameter name -> the grad modes its module ran under during the probe step."""
        self.done = True
        self.probe = None
        unused = [name for name in self._dead() if not ran.get(name)]
        cut_off = [name for name in self._dead() if True in ran.get(name, set())]
        # modules that ran only under no_grad are frozen on purpose: silent
        if unused:
            self._emit(step, unused, "the forward never uses them",
                       "call the module in forward (e.g. use the head you defined), or leave it out of the optimizer")
        elif cut_off:
            self._emit(step, cut_off, "their modules run, but nothing they compute reaches the loss (a .detach(), "
                       "or an output that is thrown away)",
                       "feed the module's output into the loss without detaching it, or freeze it "
                       "(requires_grad=False) and leave it out of the optimizer")

    def _emit(self, step: int, dead: list[str], why: str, fix: str) -> None:
        shown = ", ".join(f"`{name}`" for name in dead[:_SHOWN]) + (" ..." if len(dead) > _SHOWN else "")
        self.emit(
            step,
            f"{len(dead)} trainable parameter tensor(s) in the optimizer received no gradient in "
            f"{self.steps_seen} steps: {shown} — {why}",
            fix,
            {"parameters": dead, "steps_observed": self.steps_seen},
        )


class _OwnerProbe:
    """Forward hooks, for one step, on the modules that own the dead parameters."""

    def __init__(self, names: list[str], modules: dict[str, torch.nn.Module]) -> None:
        self.owners: dict[str, torch.nn.Module | None] = {name: _owner(name, modules) for name in names}
        self.ran: dict[int, set[bool]] = {}
        self.handles: list[Any] = []

    def start(self) -> None:
        for module in {id(m): m for m in self.owners.values() if m is not None}.values():
            self.handles.append(module.register_forward_pre_hook(self._record))

    def _record(self, module: torch.nn.Module, args: Any) -> None:
        self.ran.setdefault(id(module), set()).add(torch.is_grad_enabled())

    def finish(self) -> dict[str, set[bool]]:
        for handle in self.handles:
            handle.remove()
        self.handles = []
        # a parameter no module owns (built outside any) cannot be probed: counted as unused
        return {name: self.ran.get(id(owner), set()) for name, owner in self.owners.items() if owner is not None}


def _owner(name: str, modules: dict[str, torch.nn.Module]) -> torch.nn.Module | None:
    """The module holding the parameter the doctor named ``name`` (``Linear#1.weight``, ``classifier.bias``)."""
    for prefix, module in sorted(modules.items(), key=lambda item: -len(item[0])):
        if prefix and not name.startswith(prefix + "."):
            continue
        path = name[len(prefix) + 1:] if prefix else name
        try:
            return module.get_submodule(path.rsplit(".", 1)[0]) if "." in path else module
        except AttributeError:
            return None
    return None


def _under(name: str, modules: tuple[str, ...]) -> bool:
    parts = name.split(".")[:-1]
    return any(part in modules for part in parts)
