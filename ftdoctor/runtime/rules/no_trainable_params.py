"""no-trainable-params: nothing requires a gradient, so training changes nothing."""

from __future__ import annotations

from ftdoctor.runtime.events import Preflight
from ftdoctor.runtime.rule import RuntimeRule, register_runtime_rule


@register_runtime_rule
class NoTrainableParams(RuntimeRule):
    slug = "no-trainable-params"
    needs = ()  # judged from the parameters at pre-flight, no core signal
    explains_crashes = (r"does not require grad and does not have a grad_fn",)

    def on_preflight(self, event: Preflight) -> None:
        self.done = True
        params = list(event.model.parameters())
        params += [p for opt in event.optimizers for g in opt.param_groups for p in g["params"]]
        if not params or any(p.requires_grad for p in params):
            return
        self.emit(
            0,
            f"none of the model's {len(params)} parameter tensors requires a gradient: training cannot change the model",
            "unfreeze what should train (e.g. `for p in model.classifier.parameters(): p.requires_grad = True`)",
            {"parameter_tensors": len(params), "trainable": 0},
        )
