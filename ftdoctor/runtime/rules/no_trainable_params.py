"""no-trainable-params: nothing requires a gradient, so training changes nothing."""

from __future__ import annotations

from typing import Any

from ftdoctor.runtime.events import ForwardDone, OptimizerStep, Preflight, RunEnded
from ftdoctor.runtime.rule import RuntimeRule, register_runtime_rule


@register_runtime_rule
class NoTrainableParams(RuntimeRule):
    """Judged at the first training forward (before the backward that would crash), the first
    step or the end — not at a pre-flight reached by an evaluation run before anything was unfrozen."""

    slug = "no-trainable-params"
    needs = ()  # judged from the parameters, no core signal
    explains_crashes = (r"does not require grad and does not have a grad_fn",)

    def __init__(self, options: Any = None) -> None:
        super().__init__(options)
        self.preflight: Preflight | None = None

    def on_preflight(self, event: Preflight) -> None:
        self.preflight = event

    def on_forward(self, event: ForwardDone) -> None:
        if event.phase == "train":
            self._judge()

    def on_before_step(self, event: OptimizerStep) -> None:
        self._judge()

    def on_run_end(self, event: RunEnded) -> None:
        self._judge()

    def _judge(self) -> None:
        event = self.preflight
        if event is None:
            return
        self.done = True
        unique = {id(p): p for module in (event.modules or {"": event.model}).values() for p in module.parameters()}
        unique.update((id(p), p) for opt in event.optimizers for g in opt.param_groups for p in g["params"])
        params = list(unique.values())
        if not params or any(p.requires_grad for p in params):
            return
        self.emit(
            0,
            f"none of the model's {len(params)} parameter tensors requires a gradient: training cannot change the model",
            "unfreeze what should train (e.g. `for p in model.classifier.parameters(): p.requires_grad = True`)",
            {"parameter_tensors": len(params), "trainable": 0},
        )
