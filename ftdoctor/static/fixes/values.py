"""Fixes inside one expression: `.item()`, `shuffle=True`, `batch["key"]`."""

from __future__ import annotations

import ast

import libcst as cst

from ftdoctor.findings import Finding
from ftdoctor.static.fixes.base import Edit, FixSource, Fixer, register_fixer, with_keyword
from ftdoctor.static.fixes.flow import reaches_autograd

#: Where a number serves as well as a one-element tensor (the accumulator after `.item()`).
_NUMBER_CALLS = frozenset({"print", "float", "int", "round", "str", "abs", "sum", "min", "max", "len", "format"})
_ARITHMETIC = (ast.BinOp, ast.UnaryOp, ast.Compare, ast.FormattedValue, ast.JoinedStr)
_MAX_DEPTH = 4


@register_fixer
class AccumulateItem(Fixer):
    """loss-accumulates-graph: accumulate `loss.item()`, a number, instead of the tensor.

    Safe when every later read of the accumulator works the same on a number: arithmetic,
    f-strings, ``print``/``float``/``round``/``sum``/``len``..., and names computed from it
    under the same condition. Anything else (``total.item()``, ``torch.stack(losses)``, a
    return, ``reduction="none"`` anywhere in the file) makes the fix unsafe. When the
    accumulator itself may be backpropagated (`(total + other).backward()`), no fix.
    """

    slug = "loss-accumulates-graph"

    def fix(self, source: FixSource, finding: Finding) -> Edit | None:
        anchors = finding.anchors or {}
        value = source.node_at(anchors.get("value"), cst.BaseExpression)
        total = anchors.get("total")
        if value is None or not isinstance(total, str) or reaches_autograd(source.tree, {total}):
            return None
        if not isinstance(value, (cst.Name, cst.Attribute, cst.Call, cst.Subscript)):
            value = value.with_changes(lpar=[cst.LeftParen()], rpar=[cst.RightParen()])
        item = cst.Call(func=cst.Attribute(value=value, attr=cst.Name("item")))
        original = source.node_at(anchors.get("value"), cst.BaseExpression)
        edited = source.module.deep_replace(original, item)  # type: ignore[arg-type]
        safe = total.isidentifier() and "reduction" not in source.text and _reads_take_numbers(
            source.tree, total, finding.line or 0)
        return self.edit(edited, safe=safe)  # type: ignore[arg-type]


def _reads_take_numbers(tree: ast.Module, name: str, line: int, depth: int = 0) -> bool:
    scope = _scope_at(tree, line)
    parents = {id(child): parent for parent in ast.walk(scope) for child in ast.iter_child_nodes(parent)}
    for node in ast.walk(scope):
        if not (isinstance(node, ast.Name) and node.id == name and isinstance(node.ctx, ast.Load)):
            continue
        if not _number_use(node, parents, tree, depth):
            return False
    return True


def _number_use(node: ast.AST, parents: dict[int, ast.AST], tree: ast.Module, depth: int) -> bool:
    parent = parents.get(id(node))
    while isinstance(parent, _ARITHMETIC):
        node, parent = parent, parents.get(id(parent))
    if isinstance(parent, ast.AugAssign):
        return True  # `total += ...` / `total /= n`: stays a number
    if isinstance(parent, ast.Expr):
        return True  # a bare expression statement
    if isinstance(parent, ast.Attribute) and parent.attr in ("append", "extend", "clear"):
        return isinstance(parents.get(id(parent)), ast.Call)  # a list accumulator growing or emptied
    if isinstance(parent, ast.Call) and node is not parent.func:
        func = parent.func
        if isinstance(func, ast.Name) and func.id in _NUMBER_CALLS:
            return True
        # `history.append(total)`: fine when the list itself only meets numbers
        if isinstance(func, ast.Attribute) and func.attr == "append" and isinstance(func.value, ast.Name):
            return depth < _MAX_DEPTH and _reads_take_numbers(tree, func.value.id, parent.lineno, depth + 1)
        return False
    if isinstance(parent, ast.Assign) and depth < _MAX_DEPTH and all(isinstance(t, ast.Name) for t in parent.targets):
        return all(_reads_take_numbers(tree, t.id, t.lineno, depth + 1) for t in parent.targets)  # type: ignore[attr-defined]
    return False


def _scope_at(tree: ast.Module, line: int) -> ast.AST:
    """The innermost function holding ``line`` (else the module)."""
    best: ast.AST = tree
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.lineno <= line <= (node.end_lineno or 0):
            if best is tree or node.lineno >= best.lineno:  # type: ignore[attr-defined]
                best = node
    return best


@register_fixer
class ShuffleTrainLoader(Fixer):
    """train-loader-not-shuffled: `shuffle=True` on the training DataLoader (the rule proved no sampler)."""

    slug = "train-loader-not-shuffled"

    def fix(self, source: FixSource, finding: Finding) -> Edit | None:
        call = source.finding_node(finding, cst.Call)
        if call is None or any(arg.star for arg in call.args):
            return None
        true = cst.Name("True")
        args = list(call.args)
        for index, arg in enumerate(args):
            if (arg.keyword is not None and arg.keyword.value == "shuffle") or (arg.keyword is None and index == 2):
                args[index] = arg.with_changes(value=true)
                return self.edit(source.module.deep_replace(call, call.with_changes(args=args)))  # type: ignore[arg-type]
        return self.edit(source.module.deep_replace(call, with_keyword(call, "shuffle", true)))  # type: ignore[arg-type]


@register_fixer
class DictBatchItem(Fixer):
    """dict-batch-attribute-access: `batch["labels"]` for `batch.labels` read from a plain dict."""

    slug = "dict-batch-attribute-access"

    def fix(self, source: FixSource, finding: Finding) -> Edit | None:
        attribute = source.finding_node(finding, cst.Attribute)
        if attribute is None:
            return None
        parent = source.parents.get(attribute)
        if isinstance(parent, cst.Call) and parent.func is attribute:
            return None  # `batch.to(device)`: a method call, not a key
        if isinstance(parent, (cst.AssignTarget, cst.AugAssign, cst.Del)):
            return None
        key = cst.SimpleString(f'"{attribute.attr.value}"')
        item = cst.Subscript(value=attribute.value, slice=[cst.SubscriptElement(cst.Index(key))],
                             lpar=attribute.lpar, rpar=attribute.rpar)
        return self.edit(source.module.deep_replace(attribute, item))  # type: ignore[arg-type]
