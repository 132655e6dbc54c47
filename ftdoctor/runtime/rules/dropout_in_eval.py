"""dropout-in-eval: evaluation forwards ran with the model in train mode.

Judged at the end of the first evaluation pass (see the doctor's eval-phase
rules): any eval forward with ``model.training`` True, in a model that has
dropout (p > 0) or batch-norm modules, makes the metrics noisy and pessimistic.
"""

from __future__ import annotations

from ftdoctor.runtime.events import EvalPass
from ftdoctor.runtime.rule import RuntimeRule, register_runtime_rule


@register_runtime_rule
class DropoutInEval(RuntimeRule):
    slug = "dropout-in-eval"
    needs = ("evaluation",)

    def on_eval_pass(self, event: EvalPass) -> None:
        if self.fired or not event.train_mode_forwards or not event.dropout_modules:
            return
        modules = event.dropout_modules
        self.emit(
            event.step,
            f"{event.train_mode_forwards} of {event.forwards} evaluation forwards ran in train mode, so "
            f"{len(modules)} dropout/batch-norm module(s) stayed active (e.g. `{modules[0]}`)",
            "call model.eval() before evaluating (and model.train() before training again)",
            {
                "eval_forwards": event.forwards,
                "train_mode_forwards": event.train_mode_forwards,
                "active_modules": modules[:10],
            },
        )
