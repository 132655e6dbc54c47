"""non-finite-loss: the loss became NaN or infinite, naming where it started.

The doctor checks the step's loss at every optimizer step (with the gradient
norms, one device sync) and, the first time it is non-finite, replays that
forward with finiteness hooks to find the first module whose output went
non-finite from finite inputs (:class:`~ftdoctor.runtime.events.NonFiniteLoss`).
"""

from __future__ import annotations

from ftdoctor.runtime.events import NonFiniteLoss
from ftdoctor.runtime.rule import RuntimeRule, register_runtime_rule


@register_runtime_rule
class NonFiniteLossRule(RuntimeRule):
    slug = "non-finite-loss"
    needs = ("loss",)

    def on_non_finite_loss(self, event: NonFiniteLoss) -> None:
        if event.first_module is not None:
            where = f"the first module whose output went non-finite is `{event.first_module}`"
        elif event.located_by == "model-output-finite":
            where = "the model's outputs were finite, so the loss computation itself produced it (e.g. log(0))"
        else:
            where = "replaying the forward did not reproduce it (a random or one-off input)"
        if event.non_finite_parameters:
            where += f"; non-finite weights: {', '.join(f'`{n}`' for n in event.non_finite_parameters[:5])}"
        self.emit(
            event.step + 1,  # the step that loss fed
            f"the training loss is {event.loss} at optimizer step {event.step + 1}: {where}",
            "lower the learning rate, clip gradients (clip_grad_norm_), and check inputs/weights for NaN; "
            "compute probabilities with log_softmax/cross_entropy, not log(softmax)",
            {
                "loss": str(event.loss),
                "first_non_finite_module": event.first_module,
                "located_by": event.located_by,
                "non_finite_parameters": event.non_finite_parameters,
            },
        )
