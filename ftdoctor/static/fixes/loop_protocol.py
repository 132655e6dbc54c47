"""Fixes for the order of zero_grad / backward / step / scheduler.step inside a training step."""

from __future__ import annotations

import re

import libcst as cst

from ftdoctor.findings import Finding
from ftdoctor.static.fixes.base import (
    Edit, FixSource, Fixer, detached, dotted_name, expression_text, insert_after, register_fixer, splice, statement,
)


def _method_call(node: cst.CSTNode | None, method: str) -> cst.Call | None:
    if isinstance(node, cst.Call) and isinstance(node.func, cst.Attribute) and node.func.attr.value == method:
        return node
    return None


def _steps_optimizer(call: cst.Call, optimizer: str) -> bool:
    """`optimizer.step()`, `scaler.step(optimizer)` with AMP, or a helper handed the optimizer that steps it."""
    func = call.func
    if isinstance(func, cst.Attribute) and expression_text(func.value) == optimizer and not call.args:
        return func.attr.value == "step"
    return any(expression_text(arg.value) == optimizer for arg in call.args)


@register_fixer
class AddZeroGrad(Fixer):
    """missing-zero-grad: `optimizer.zero_grad()` right after the statement that steps it.

    After the step rather than before the forward pass: under gradient accumulation the
    step sits inside the accumulation condition, and so does the new call. The statement
    may be a helper the optimizer is handed to (`train_step(model, batch, optimizer)`).
    """

    slug = "missing-zero-grad"

    def fix(self, source: FixSource, finding: Finding) -> Edit | None:
        optimizer = (finding.anchors or {}).get("optimizer")
        call = source.finding_node(finding, cst.Call)
        if call is None or not dotted_name(optimizer) or not _steps_optimizer(call, optimizer):
            return None
        line = next((n for n in source.ancestors(call) if isinstance(n, cst.SimpleStatementLine)), None)
        if line is None or len(line.body) != 1 or source.block_of(line) is None:
            return None
        return self.edit(insert_after(source.module, line, statement(f"{optimizer}.zero_grad()")))


@register_fixer
class MoveZeroGrad(Fixer):
    """zero-grad-misplaced: move `zero_grad()` to right after the step it was wiping."""

    slug = "zero-grad-misplaced"

    def fix(self, source: FixSource, finding: Finding) -> Edit | None:
        zero = _method_call(source.finding_node(finding, cst.Call), "zero_grad")
        step = _method_call(source.node_at((finding.anchors or {}).get("step"), cst.Call), "step")
        zero_line = source.statement_of(zero) if zero is not None else None
        step_line = source.statement_of(step) if step is not None else None
        if zero_line is None or step_line is None or zero_line is step_line:
            return None
        if source.block_of(zero_line) is None or source.block_of(step_line) is None:
            return None
        return self.edit(splice(source.module, {zero_line: [], step_line: [step_line, detached(zero_line)]}))


@register_fixer
class SwapSchedulerStep(Fixer):
    """scheduler-before-optimizer: move `scheduler.step()` to right after the optimizer's step.

    "After" is the statement of the scheduler's own block that holds the optimizer step (the
    step itself, or the inner loop around it). Only when nothing the move jumps over reads
    the scheduler: a learning rate logged there would change meaning. Reads after the new
    place see the same number of scheduler steps as before.
    """

    slug = "scheduler-before-optimizer"

    def fix(self, source: FixSource, finding: Finding) -> Edit | None:
        sched = _method_call(source.finding_node(finding, cst.Call), "step")
        step = _method_call(source.node_at((finding.anchors or {}).get("step"), cst.Call), "step")
        sched_line = source.statement_of(sched) if sched is not None else None
        step_line = source.statement_of(step) if step is not None else None
        if sched_line is None or step_line is None:
            return None
        block = source.block_of(sched_line)
        holder = next((n for n in (step_line, *source.ancestors(step_line)) if source.parents.get(n) is block), None)
        if block is None or holder is None:
            return None
        body = list(block.body)
        first, last = body.index(sched_line), body.index(holder)
        if first >= last:
            return None
        scheduler = re.escape(expression_text(sched.func.value))  # type: ignore[union-attr]
        jumped = body[first + 1 : last] + ([holder] if holder is not step_line else [])
        if re.search(rf"(?<![\w.]){scheduler}(?!\w)", "".join(source.module.code_for_node(n) for n in jumped)):
            return None
        return self.edit(splice(source.module, {sched_line: [], holder: [holder, detached(sched_line)]}))
