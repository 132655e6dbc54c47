"""Fixes that switch a model's mode (train/eval) or autograd around a loop."""

from __future__ import annotations

import ast
import re

import libcst as cst

from ftdoctor.findings import Finding
from ftdoctor.static.fixes.base import (
    Edit, FixSource, Fixer, dotted_name, expression_text, insert_after, insert_before, register_fixer, splice,
    statement,
)
from ftdoctor.static.fixes.flow import calls_project_code, grown_containers, leaks_state, reaches_autograd, trains

_LOOPS = (cst.For, cst.While)


def _loop(source: FixSource, finding: Finding) -> cst.For | cst.While | None:
    loop = source.finding_node(finding, _LOOPS, exact_end=False)
    return loop if loop is not None and source.block_of(loop) is not None else None


def _bound_before(source: FixSource, name: str, line: int) -> bool:
    """The first part of ``name`` is assigned, imported or a parameter somewhere above ``line``."""
    root = name.split(".")[0]
    for node in ast.walk(source.tree):
        if getattr(node, "lineno", line) >= line:
            continue
        if isinstance(node, ast.Name) and node.id == root and isinstance(node.ctx, ast.Store):
            return True
        if isinstance(node, ast.arg) and node.arg == root:
            return True
        if isinstance(node, ast.alias) and (node.asname or node.name.split(".")[0]) == root:
            return True
    return False


def _leaves_early(source: FixSource, finding: Finding) -> bool:
    """The loop at the finding can leave its function without reaching the next statement."""
    loop = _ast_loop(source, finding)
    return loop is None or any(isinstance(n, (ast.Return, ast.Raise, ast.Yield, ast.YieldFrom)) for n in ast.walk(loop))


def _ast_loop(source: FixSource, finding: Finding) -> ast.For | ast.AsyncFor | ast.While | None:
    for node in ast.walk(source.tree):
        if isinstance(node, (ast.For, ast.AsyncFor, ast.While)) and node.lineno == finding.line \
                and node.col_offset + 1 == finding.column:
            return node
    return None


@register_fixer
class AddTrainMode(Fixer):
    """missing-train-mode: `model.train()` right above the training loop."""

    slug = "missing-train-mode"

    def fix(self, source: FixSource, finding: Finding) -> Edit | None:
        model = (finding.anchors or {}).get("model")
        loop = _loop(source, finding)
        if loop is None or not dotted_name(model) or not _bound_before(source, model, finding.line or 0):
            return None
        return self.edit(insert_before(source.module, loop, statement(f"{model}.train()")))


@register_fixer
class AddEvalMode(Fixer):
    """missing-eval-mode: `model.eval()` above the evaluation loop and `model.train()` below it.

    The rule fires only when the model is in training mode before the loop, so switching
    it back afterwards leaves every later line as it was. A loop that trains (or calls this
    file's code that does) gets no fix. It is unsafe when the loop can return or raise out
    of its function (skipping the switch back) or its values may reach a backward pass
    (a rollout, not an evaluation: dropout would change what is trained on).
    """

    slug = "missing-eval-mode"

    def fix(self, source: FixSource, finding: Finding) -> Edit | None:
        model = (finding.anchors or {}).get("model")
        loop, ast_loop = _loop(source, finding), _ast_loop(source, finding)
        if loop is None or ast_loop is None or not dotted_name(model):
            return None
        if not _bound_before(source, model, finding.line or 0) or trains(source.tree, ast_loop):
            return None
        leading = loop.leading_lines
        edited = splice(source.module, {loop: [
            statement(f"{model}.eval()").with_changes(leading_lines=leading),
            loop.with_changes(leading_lines=()),
            statement(f"{model}.train()"),
        ]})
        return self.edit(edited, safe=not _leaves_early(source, finding) and not _may_feed_backward(source, ast_loop))


@register_fixer
class AddTrainAfterEval(Fixer):
    """missing-train-after-eval: `model.train()` once the evaluation is over.

    The evaluation is over when the call that evaluates returns, or at the end of the
    block (a loop body, an ``if``, a ``with``) in which ``model.eval()`` was called, when
    nothing after it in that block trains or leaves the block early.
    """

    slug = "missing-train-after-eval"

    def fix(self, source: FixSource, finding: Finding) -> Edit | None:
        model = (finding.anchors or {}).get("model")
        call = source.finding_node(finding, cst.Call)
        if call is None or not dotted_name(model):
            return None
        line = next((n for n in source.ancestors(call) if isinstance(n, cst.SimpleStatementLine)), None)
        block = source.block_of(line) if line is not None and len(line.body) == 1 else None
        if line is None or block is None:
            return None
        train = statement(f"{model}.train()")
        if not _switches_to_eval(call, model):  # a call that evaluates: train again when it returns
            if model.split(".")[0] not in expression_text(call):
                return None
            return self.edit(insert_after(source.module, line, train))
        if isinstance(block, cst.Module):
            return None
        body = list(block.body)
        rest = "".join(source.module.code_for_node(node) for node in body[body.index(line) + 1 :])
        if re.search(r"backward\(|\b(continue|break|return|raise|yield)\b", rest):
            return None
        return self.edit(insert_after(source.module, body[-1], train))


def _switches_to_eval(call: cst.Call, model: str) -> bool:
    func = call.func
    return isinstance(func, cst.Attribute) and func.attr.value == "eval" and expression_text(func.value) == model


@register_fixer
class WrapInNoGrad(Fixer):
    """missing-no-grad-eval: wrap the evaluation loop in `with torch.no_grad():`.

    Needs `torch` imported as a module in the file (its alias is used). A loop that trains
    (or calls this file's code that does) gets no fix. Unsafe when a value made in the loop
    may later be backpropagated (it would no longer carry a graph).
    """

    slug = "missing-no-grad-eval"

    def fix(self, source: FixSource, finding: Finding) -> Edit | None:
        loop = _loop(source, finding)
        torch = _torch_alias(source.tree)
        ast_loop = _ast_loop(source, finding)
        if loop is None or torch is None or ast_loop is None:
            return None
        if any(isinstance(n, (ast.Yield, ast.YieldFrom)) for n in ast.walk(ast_loop)):
            return None  # a generator's body runs later, outside the `with`
        if trains(source.tree, ast_loop):
            return None
        wrapped = cst.With(
            items=[cst.WithItem(cst.parse_expression(f"{torch}.no_grad()"))],
            body=cst.IndentedBlock(body=[loop.with_changes(leading_lines=())]),
            leading_lines=loop.leading_lines,
        )
        return self.edit(splice(source.module, {loop: [wrapped]}), safe=not _may_feed_backward(source, ast_loop))


def _may_feed_backward(source: FixSource, loop: ast.AST) -> bool:
    """Values made in the loop may reach a backward pass (by name, through containers or state), or the
    loop calls the project's other modules, which the fix cannot see."""
    tree = source.tree
    return _feeds_backward(tree, loop) or leaks_state(tree, loop) or reaches_autograd(tree, grown_containers(loop)) \
        or calls_project_code(tree, loop, source.path)


def _torch_alias(tree: ast.Module) -> str | None:
    for node in tree.body:
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name == "torch":
                    return alias.asname or "torch"
    return None


def _feeds_backward(tree: ast.Module, loop: ast.AST) -> bool:
    """A name assigned in the loop may reach a `.backward()` / autograd call in the file.

    A backward call sees a fresh value (not the loop's) when the name is assigned again
    after the loop and before the call, or earlier in a loop around the call.
    """
    made = {n.id for n in ast.walk(loop) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Store)}
    inside = {id(n) for n in ast.walk(loop)}
    stores: dict[str, list[int]] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store) and id(node) not in inside:
            stores.setdefault(node.id, []).append(node.lineno)
    enclosing: dict[int, list[ast.AST]] = {}
    _loops_around(tree, [], enclosing)
    for node in ast.walk(tree):
        if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
                and node.func.attr in ("backward", "grad")) or id(node) in inside:
            continue
        for name in {n.id for n in ast.walk(node) if isinstance(n, ast.Name)} & made:
            starts = [outer.lineno for outer in enclosing.get(id(node), [])]
            after = loop.end_lineno or loop.lineno  # type: ignore[attr-defined]
            fresh = any(after < line < node.lineno or any(s <= line < node.lineno for s in starts)
                        for line in stores.get(name, []))
            if not fresh:
                return True
    return False


def _loops_around(node: ast.AST, loops: list[ast.AST], out: dict[int, list[ast.AST]]) -> None:
    out[id(node)] = loops
    inner = [*loops, node] if isinstance(node, (ast.For, ast.AsyncFor, ast.While)) else loops
    for child in ast.iter_child_nodes(node):
        _loops_around(child, inner, out)
