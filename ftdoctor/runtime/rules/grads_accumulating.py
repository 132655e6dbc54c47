"""grads-accumulating: gradients are never cleared between optimizer steps.

Legitimate gradient accumulation (several backward passes, then one step, then
zero_grad) keeps ``backwards_since_zero_grad == backwards_since_last_step``;
a missing ``zero_grad`` makes the step consume gradients from backward passes
that already fed an earlier step. Clearing by any means counts: optimizer or
model ``zero_grad`` (wrapped by the doctor) or ``p.grad = None`` (seen at the
next backward).
"""

from __future__ import annotations

from ftdoctor.runtime.events import OptimizerStep
from ftdoctor.runtime.rule import RuntimeRule, register_runtime_rule


@register_runtime_rule
class GradsAccumulating(RuntimeRule):
    slug = "grads-accumulating"
    explains_findings = frozenset({"exploding-gradients", "lr-too-high"})
    needs = ("backward", "optimizer_step")
    skip_routine = frozenset({"on_before_step"})  # the backward counts only grow until gradients are cleared: a measured step sees them

    def on_before_step(self, event: OptimizerStep) -> None:
        stale = event.backwards_since_zero_grad - event.backwards_since_last_step
        if self.fired or event.step == 0 or stale <= 0:
            return
        self.emit(
            event.step + 1,  # established while that step is taken
            f"optimizer step {event.step + 1} applies gradients of {event.backwards_since_zero_grad} backward passes, "
            f"{stale} of them already applied by earlier steps: gradients are never cleared between steps",
            "call optimizer.zero_grad() once per optimizer step (after optimizer.step() or before loss.backward())",
            {
                "backwards_since_zero_grad": event.backwards_since_zero_grad,
                "backwards_since_last_step": event.backwards_since_last_step,
            },
        )
