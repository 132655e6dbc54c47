"""grad-accum-unscaled-loss: gradient accumulation without dividing the loss by the number of steps."""

from __future__ import annotations

import ast
from typing import TYPE_CHECKING, Iterator

from ftdoctor.findings import Finding
from ftdoctor.static.analysis_flow import BACKWARD
from ftdoctor.static.analysis_tensors import is_scaled
from ftdoctor.static.model import position
from ftdoctor.static.rule import StaticRule, register_static_rule

if TYPE_CHECKING:
    from ftdoctor.static.model import ModuleModel


@register_static_rule
class GradAccumUnscaledLoss(StaticRule):
    slug = "grad-accum-unscaled-loss"

    def check(self, module: "ModuleModel") -> Iterator[Finding]:
        for loop in module.training_loops():
            guard = loop.accumulation_guard
            if guard is None or loop.uses_accelerate_accumulation or _mentions(guard.test, "sync_gradients"):
                continue
            for event in loop.of_kind(BACKWARD, max_depth=0):
                if event.under(guard.node) or event.argument is None:
                    continue
                if is_scaled(module, event.argument, module.scope_of(event.node), position(event.node)):
                    continue
                period = _period(guard.test)
                loss = ast.unparse(event.argument)
                yield self.finding(
                    module, event.site,
                    f"gradients are accumulated over `{period}` batches (step under `{ast.unparse(guard.test)}`, "
                    f"line {guard.node.lineno}) but `{loss}` is not divided by it, so each update is "
                    f"`{period}` times too large",
                    f"divide the loss before backward: `({loss} / {period}).backward()`",
                )
                break


def _mentions(node: ast.AST | None, name: str) -> bool:
    return node is not None and any(
        (isinstance(n, ast.Name) and n.id == name) or (isinstance(n, ast.Attribute) and n.attr == name)
        for n in ast.walk(node)
    )


def _period(test: ast.expr | None) -> str:
    """The right operand of the ``%`` in the accumulation test (``args.grad_accum``), else a generic name."""
    for node in ast.walk(test) if test is not None else []:
        if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Mod):
            return ast.unparse(node.right)
    return "accumulation_steps"
