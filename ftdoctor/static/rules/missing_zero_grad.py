"""missing-zero-grad: a training loop steps the optimizer but never clears gradients."""

from __future__ import annotations

from typing import TYPE_CHECKING, Iterator

from ftdoctor.findings import Finding
from ftdoctor.static.analysis_flow import BACKWARD, OPAQUE, STEP, ZERO_GRAD
from ftdoctor.static.rule import StaticRule, register_static_rule

if TYPE_CHECKING:
    from ftdoctor.static.model import ModuleModel


@register_static_rule
class MissingZeroGrad(StaticRule):
    slug = "missing-zero-grad"

    def check(self, module: "ModuleModel") -> Iterator[Finding]:
        for loop in module.training_loops():
            steps = loop.of_kind(STEP, max_depth=0)
            if not steps or not loop.has(BACKWARD):
                continue
            # a call we cannot see into that receives the optimizer or model may clear them
            if loop.has(ZERO_GRAD) or loop.has(OPAQUE):
                continue
            if any(step.target is not None and not step.target.info.has_zero_grad for step in steps):
                continue  # e.g. DistributedOptimizer: the advice would raise AttributeError
            name = steps[0].text
            yield self.finding(
                module,
                steps[0].site,
                f"gradients of `{name}` are never cleared inside the training loop (line {loop.line}), "
                "so every step adds this batch's gradients to all previous ones",
                f"call {name}.zero_grad() once per optimizer step inside the loop: before loss.backward() "
                f"or right after {name}.step()",
                anchors={"optimizer": name},
            )
