"""eval-with-grad: evaluation forwards recorded an autograd graph.

Judged at the end of the first evaluation pass: an eval forward whose output
requires grad (autograd on and something trainable in the graph) wastes memory
and time on a graph nobody backpropagates.
"""

from __future__ import annotations

from ftdoctor.runtime.events import EvalPass
from ftdoctor.runtime.rule import RuntimeRule, register_runtime_rule


@register_runtime_rule
class EvalWithGrad(RuntimeRule):
    slug = "eval-with-grad"
    needs = ("evaluation",)

    def on_eval_pass(self, event: EvalPass) -> None:
        if self.fired or not event.grad_tracked_forwards:
            return
        self.emit(
            event.step,
            f"{event.grad_tracked_forwards} of {event.forwards} evaluation forwards ran with autograd on, "
            "building graphs that are never backpropagated",
            "wrap evaluation in `with torch.no_grad():` (or torch.inference_mode())",
            {"eval_forwards": event.forwards, "grad_tracked_forwards": event.grad_tracked_forwards},
        )
