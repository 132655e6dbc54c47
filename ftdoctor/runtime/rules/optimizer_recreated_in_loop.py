"""optimizer-recreated-in-loop (runtime side): a new optimizer over the same parameters mid-run.

Judged on every optimizer that joins the run (``OptimizerAdded``): one built after
the run has taken optimizer steps, every one of whose parameters an earlier
optimizer already held, restarts what the old one had learned about them — Adam's
moment estimates, SGD's momentum — from zero (and a scheduler built with it restarts
its warm-up). A later optimizer over a different or larger set of parameters (a
second phase that unfreezes the encoder) is a deliberate change and stays silent, and
so does one that keeps no state (plain SGD).
"""

from __future__ import annotations


import torch

from ftdoctor.runtime.events import OptimizerAdded
from ftdoctor.runtime.rule import RuntimeRule, register_runtime_rule


@register_runtime_rule
class OptimizerRecreatedInLoop(RuntimeRule):
    slug = "optimizer-recreated-in-loop"
    needs = ("optimizer_step",)

    def on_optimizer_added(self, event: OptimizerAdded) -> None:
        if event.index == 0 or not event.earlier_steps or not event.params or event.shared_params < event.params:
            return
        if not _keeps_state(event.optimizer):
            return
        kind = type(event.optimizer).__name__
        self.emit(
            event.step,
            f"a new {kind} (optimizer {event.index}) was built after {event.earlier_steps} optimizer steps over "
            f"{event.shared_params} parameter tensors an earlier optimizer already held: its running state "
            f"(Adam's moments, momentum) starts again from zero — the optimizer is rebuilt inside the training loop",
            "build the optimizer (and its scheduler) once, before the loop over epochs, and reuse it",
            {"optimizer": event.index, "optimizer_class": kind, "shared_parameters": event.shared_params,
             "steps_before": event.earlier_steps},
        )


def _keeps_state(optimizer: torch.optim.Optimizer) -> bool:
    """Whether the optimizer carries state between steps (plain SGD without momentum does not)."""
    if isinstance(optimizer, torch.optim.SGD):
        return any(float(group.get("momentum", 0) or 0) > 0 for group in optimizer.param_groups)
    return True
