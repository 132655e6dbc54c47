"""missing-no-grad-eval: an evaluation loop runs the model with autograd on."""

from __future__ import annotations

from typing import TYPE_CHECKING, Iterator

from ftdoctor.findings import Finding
from ftdoctor.static.analysis_flow import FORWARD
from ftdoctor.static.rule import StaticRule, register_static_rule

if TYPE_CHECKING:
    from ftdoctor.static.model import ModuleModel


@register_static_rule
class MissingNoGradEval(StaticRule):
    slug = "missing-no-grad-eval"

    def check(self, module: "ModuleModel") -> Iterator[Finding]:
        for loop in module.evaluation_loops():
            with_grad = [e for e in loop.of_kind(FORWARD) if not e.grad_disabled]
            if not with_grad:
                continue
            call = with_grad[0]
            yield self.finding(
                module, loop.node,
                f"the evaluation loop (line {loop.line}) calls `{call.text}` (line {call.line}) with autograd "
                "enabled, building a graph nobody uses and wasting memory and time",
                "wrap the evaluation loop in `with torch.no_grad():` (or `torch.inference_mode()`), "
                "or decorate the evaluation function with @torch.no_grad()",
            )
