"""detached-loss: backward() runs on a value cut from the autograd graph."""

from __future__ import annotations

import ast
from typing import TYPE_CHECKING, Iterator

from ftdoctor.findings import Finding
from ftdoctor.static.analysis_tensors import backward_loss, detached_source
from ftdoctor.static.model import call_name, position
from ftdoctor.static.rule import StaticRule, register_static_rule

if TYPE_CHECKING:
    from ftdoctor.static.model import ModuleModel


@register_static_rule
class DetachedLoss(StaticRule):
    slug = "detached-loss"

    def check(self, module: "ModuleModel") -> Iterator[Finding]:
        for call in module.calls():
            if call_name(call) != "backward" or not isinstance(call.func, ast.Attribute):
                continue
            scope = module.scope_of(call)
            loss = backward_loss(module, call, scope)
            cut = detached_source(module, loss, scope, position(call))
            if cut is None:
                continue
            yield self.finding(
                module, call,
                f"`{ast.unparse(call)}` (line {call.lineno}) differentiates a value cut from the autograd graph "
                f"by `{ast.unparse(cut)}` (line {cut.lineno}), so no gradient reaches the model",
                "call backward() on the loss tensor the model produced (e.g. `outputs.loss`); use .item() or "
                ".detach() only on a separate copy for logging",
            )
