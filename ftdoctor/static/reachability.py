"""Which code runs and which assignments can reach a read: constant conditions, branches, early exits.

* :func:`constant_truth` folds ``if 1:`` / ``if False:`` / ``while True:`` / ``if not 0:``.
* :func:`is_dead` — a node in the arm a constant condition never takes (``if False:`` body,
  ``if True:``'s ``else``, ``while False:`` body). Findings there are not reported and
  bindings there reach nothing.
* :func:`branch_arms` — for every branching statement around a node (``if``, loops, ``try``),
  which arm holds it and whether that arm surely runs when the statement does.
* :func:`exits_before` — a binding in a block that ends in ``return``/``raise`` cannot reach a
  read outside that block.
"""

from __future__ import annotations

import ast
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ftdoctor.findings import Finding
    from ftdoctor.static.model import ModuleModel

_SCOPES = (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef, ast.Lambda, ast.Module)
_LOOPS = (ast.For, ast.AsyncFor, ast.While)
_BLOCK_FIELDS = ("body", "orelse", "finalbody")


def constant_truth(test: ast.expr) -> bool | None:
    """The truth of a condition the source fixes (``1``, ``False``, ``"x"``, ``not 0``), else None."""
    if isinstance(test, ast.Constant) and not isinstance(test.value, (bytes, type(...))):
        return bool(test.value)
    if isinstance(test, ast.UnaryOp) and isinstance(test.op, ast.Not):
        inner = constant_truth(test.operand)
        return None if inner is None else not inner
    return None


def _dead_arm(node: ast.AST, child: ast.AST) -> bool:
    """``child`` (a statement of ``node``) sits in the arm of ``node`` that a constant condition never runs."""
    if isinstance(node, ast.If):
        truth = constant_truth(node.test)
        return truth is not None and child in (node.orelse if truth else node.body)
    if isinstance(node, ast.While):
        truth = constant_truth(node.test)
        if truth is False:
            return child in node.body
        return truth is True and child in node.orelse and not _breaks(node)
    return False


def _breaks(loop: ast.While) -> bool:
    return any(isinstance(n, ast.Break) for n in ast.walk(loop))


def dead_lines(module: "ModuleModel") -> list[tuple[int, int]]:
    """First and last line of every statement in a dead arm (cached on the module)."""
    cache_key = "dead_lines"
    if cache_key not in module._cache:
        spans: list[tuple[int, int]] = []
        for node in module.nodes(ast.If, ast.While):
            if constant_truth(node.test) is None:  # type: ignore[attr-defined]
                continue
            for name in ("body", "orelse"):
                for statement in getattr(node, name):
                    if _dead_arm(node, statement):
                        spans.append((statement.lineno, statement.end_lineno or statement.lineno))
        module._cache[cache_key] = spans
    return module._cache[cache_key]  # type: ignore[return-value]


def is_dead(module: "ModuleModel", node: ast.AST) -> bool:
    """True when ``node`` sits in an arm a constant condition never runs."""
    if not dead_lines(module):
        return False
    child = node
    for ancestor in module.ancestors(node):
        if isinstance(child, ast.stmt) and _dead_arm(ancestor, child):
            return True
        child = ancestor
    return False


def branch_arms(module: "ModuleModel", node: ast.AST) -> dict[int, tuple[str, bool]]:
    """For each branching statement around ``node`` within its scope: ``(arm, sure)`` by the statement's id.

    ``arm`` names the part holding ``node`` (``body``, ``orelse``, ``handler2`` ...); ``sure`` says the
    arm runs whenever the statement does — an ``if`` arm with an ``else`` (or a constant condition that
    takes it), a ``try`` body without handlers. Loop bodies may run zero times; handlers may not run.
    """
    arms: dict[int, tuple[str, bool]] = {}
    child: ast.AST = node
    for ancestor in module.ancestors(node):
        if isinstance(ancestor, _SCOPES):
            break
        arm = _arm_of(ancestor, child)
        if arm is not None:
            arms[id(ancestor)] = arm
        child = ancestor
    return arms


def _arm_of(statement: ast.AST, child: ast.AST) -> tuple[str, bool] | None:
    if isinstance(statement, ast.If) and child is not statement.test:
        truth = constant_truth(statement.test)
        arm = "body" if child in statement.body else "orelse"
        if truth is not None:
            return arm, truth == (arm == "body")
        return arm, bool(statement.orelse) and not _is_elif_chain_end(statement)
    if isinstance(statement, _LOOPS) and (child in statement.body or child in statement.orelse):
        return ("body" if child in statement.body else "orelse"), False
    if isinstance(statement, ast.Try) or type(statement).__name__ == "TryStar":
        if child in statement.body:  # type: ignore[attr-defined]
            return "body", not statement.handlers  # type: ignore[attr-defined]
        if child in statement.orelse:  # type: ignore[attr-defined]
            return "orelse", False
        for index, handler in enumerate(statement.handlers):  # type: ignore[attr-defined]
            if child is handler:
                return f"handler{index}", False
    return None


def _is_elif_chain_end(node: ast.If) -> bool:
    """``if``/``elif`` chains end without a final ``else``: the last ``elif`` may be skipped too."""
    return len(node.orelse) == 1 and isinstance(node.orelse[0], ast.If) and not node.orelse[0].orelse


def exits_before(module: "ModuleModel", binding_node: ast.AST, at: tuple[int, int]) -> bool:
    """The block holding ``binding_node`` ends in ``return``/``raise`` after it, and ``at`` is outside that
    block: control never gets from the binding to ``at``."""
    child: ast.AST = binding_node
    for ancestor in module.ancestors(binding_node):
        if isinstance(ancestor, _SCOPES):
            return False
        for name in _BLOCK_FIELDS:
            block = getattr(ancestor, name, None)
            if isinstance(block, list) and child in block:
                last = block[-1]
                start, end = (block[0].lineno, block[0].col_offset), (last.end_lineno or 0, last.end_col_offset or 0)
                if isinstance(last, (ast.Return, ast.Raise)) and last is not child and not start <= at <= end:
                    return True
        if isinstance(ancestor, ast.ExceptHandler):
            block = ancestor.body
            last = block[-1]
            end = (last.end_lineno or 0, last.end_col_offset or 0)
            if isinstance(last, (ast.Return, ast.Raise)) and last is not child and at > end:
                return True
        child = ancestor
    return False


def drop_dead(findings: "list[Finding]", module: "ModuleModel") -> "list[Finding]":
    """Findings outside the arms a constant condition never runs (``if 0:`` keeps old code around)."""
    spans = dead_lines(module)
    if not spans:
        return findings
    return [f for f in findings if f.line is None or not any(a <= f.line <= b for a, b in spans)]
