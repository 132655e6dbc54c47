"""loss-accumulates-graph: the loss tensor itself is summed across steps."""

from __future__ import annotations

import ast
from typing import TYPE_CHECKING, Iterator

from ftdoctor.findings import Finding
from ftdoctor.static.analysis_flow import ACCUMULATE, BACKWARD
from ftdoctor.static.analysis_tensors import backpropagated_keys, is_graph_loss
from ftdoctor.static.model import position
from ftdoctor.static.rule import StaticRule, register_static_rule, span

if TYPE_CHECKING:
    from ftdoctor.static.model import ModuleModel


@register_static_rule
class LossAccumulatesGraph(StaticRule):
    slug = "loss-accumulates-graph"

    def check(self, module: "ModuleModel") -> Iterator[Finding]:
        reported: set[int] = set()
        for loop in module.training_loops():
            backpropagated = {
                name.id for event in loop.of_kind(BACKWARD) if event.argument is not None
                for name in ast.walk(event.argument) if isinstance(name, ast.Name)
            }
            for event in loop.of_kind(ACCUMULATE):
                total = event.text.split(".")[-1].split("[")[0]
                if event.grad_disabled or total in backpropagated or event.text in backpropagated:
                    continue
                if id(event.node) in reported or event.argument is None:
                    continue
                scope = module.scope_of(event.node)
                if event.text in backpropagated_keys(module, scope):
                    continue  # the accumulator is itself a loss term: `.item()` would drop it from training
                if not is_graph_loss(module, event.argument, scope, position(event.node), backpropagated):
                    continue
                reported.add(id(event.node))
                added = ast.unparse(event.argument)
                yield self.finding(
                    module, event.site,
                    f"`{event.text}` accumulates the loss tensor `{added}` (line {event.node.lineno}), keeping every "
                    "step's autograd graph alive until memory runs out",
                    f"accumulate a number instead: use `{added}.item()` (or `{added}.detach()`)",
                    anchors={"value": span(event.argument), "total": event.text},
                )
