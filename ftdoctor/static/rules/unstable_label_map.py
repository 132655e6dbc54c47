"""unstable-label-map: a label<->id map numbered in ``set`` iteration order.

A ``set`` of strings iterates in hash order, and string hashes are salted per process
(``PYTHONHASHSEED``), so ``{label: i for i, label in enumerate(set(labels))}`` numbers the
classes differently in every run, every DDP rank and the later inference script.

Reported only when every value the enumerated expression may hold is a set (``set(...)``,
``frozenset(...)``, a set literal or comprehension, possibly through ``list``/``tuple`` and
names, parameters and helper returns). Silent when the names are sorted in place
(``labels.sort()``) or the set holds only numbers (whose hashes are not salted).
"""

from __future__ import annotations

import ast
from typing import Iterator

from ftdoctor.findings import Finding
from ftdoctor.static.constants import producers
from ftdoctor.static.model import ModuleModel, call_name, expr_key
from ftdoctor.static.modelfacts import describe
from ftdoctor.static.rule import StaticRule, register_static_rule

_SET_BUILDERS = frozenset({"set", "frozenset"})
_ORDER_KEEPING = frozenset({"list", "tuple", "iter"})
_COUNTERS = frozenset({"range", "itertools.count", "count"})
_MAX_DEPTH = 5


@register_static_rule
class UnstableLabelMap(StaticRule):
    slug = "unstable-label-map"

    def check(self, module: ModuleModel) -> Iterator[Finding]:
        for node, labels in _numbered_maps(module):
            source = _unordered_source(module, labels, labels, 0)
            if source is None:
                continue
            yield self.finding(
                module, node,
                f"this label map numbers the classes in the iteration order of a set ({describe(module, source)}, "
                f"line {source.lineno}); string hashes are salted per process, so the ids differ between runs, "
                "DDP ranks and the script that later loads the model",
                f"number the labels in a fixed order: enumerate(sorted({describe(module, source)}))",
            )


def _numbered_maps(module: ModuleModel) -> Iterator[tuple[ast.AST, ast.expr]]:
    """``(map node, the expression whose items get numbered)`` for dict comprehensions and ``dict(...)``."""
    for comp in module.nodes(ast.DictComp):
        assert isinstance(comp, ast.DictComp)
        if len(comp.generators) != 1 or comp.generators[0].ifs:
            continue
        generator = comp.generators[0]
        pair = _numbering(module, generator.target, generator.iter)
        if pair is None:
            continue
        item, index, labels = pair
        names = {_name(comp.key), _name(comp.value)}
        if names == {item, index}:
            yield comp, labels
    for loop in module.nodes(ast.For):
        assert isinstance(loop, ast.For)
        pair = _numbering(module, loop.target, loop.iter)
        if pair is not None and any(_stores_pair(statement, pair[0], pair[1]) for statement in loop.body):
            yield loop, pair[2]  # for i, label in enumerate(X): label2id[label] = i
    for call in module.nodes(ast.Call):
        assert isinstance(call, ast.Call)
        if module.qualified_name(call.func) != "dict" or len(call.args) != 1 or call.keywords:
            continue
        argument = call.args[0]
        if isinstance(argument, ast.Call) and _called(module, argument) == "enumerate" and argument.args:
            yield call, argument.args[0]  # dict(enumerate(set(labels))): id -> label
        elif isinstance(argument, ast.Call) and _called(module, argument) == "zip" and len(argument.args) == 2:
            first, second = argument.args
            if _is_counter(module, second):
                yield call, first
            elif _is_counter(module, first):
                yield call, second


def _stores_pair(statement: ast.stmt, item: str, index: str) -> bool:
    """``mapping[item] = index`` or ``mapping[index] = item``."""
    if not (isinstance(statement, ast.Assign) and len(statement.targets) == 1):
        return False
    target = statement.targets[0]
    if not isinstance(target, ast.Subscript):
        return False
    return {_name(target.slice), _name(statement.value)} == {item, index}


def _numbering(module: ModuleModel, target: ast.expr, iterable: ast.expr) -> tuple[str, str, ast.expr] | None:
    """``(item name, index name, numbered expression)`` for ``i, x in enumerate(X)`` / ``x, i in zip(X, range(n))``."""
    if not (isinstance(target, ast.Tuple) and len(target.elts) == 2 and isinstance(iterable, ast.Call)):
        return None
    first, second = (_name(e) for e in target.elts)
    if first is None or second is None:
        return None
    called = _called(module, iterable)
    if called == "enumerate" and iterable.args and len(iterable.args) + len(iterable.keywords) <= 2:
        return second, first, iterable.args[0]
    if called == "zip" and len(iterable.args) == 2:
        if _is_counter(module, iterable.args[1]):
            return first, second, iterable.args[0]
        if _is_counter(module, iterable.args[0]):
            return second, first, iterable.args[1]
    return None


def _unordered_source(module: ModuleModel, node: ast.expr, at: ast.AST, depth: int) -> ast.expr | None:
    """The set expression ``node`` iterates in hash order, when every value it may hold is such a set."""
    if depth > _MAX_DEPTH or _sorted_in_place(module, node):
        return None
    if isinstance(node, ast.Call) and _called(module, node) in _ORDER_KEEPING and len(node.args) == 1:
        return _unordered_source(module, node.args[0], node, depth + 1)
    if _is_set(module, node):
        return node if not _numbers_only(module, node) else None
    sources = [p for p in producers(module, node, at) if p is not node]
    if not sources:
        return None
    found = [_unordered_source(module, p, p, depth + 1) for p in sources]
    return found[0] if all(f is not None for f in found) else None


def _is_set(module: ModuleModel, node: ast.expr) -> bool:
    if isinstance(node, (ast.Set, ast.SetComp)):
        return True
    if isinstance(node, ast.Call) and _called(module, node) in _SET_BUILDERS:
        return True
    if isinstance(node, ast.BinOp) and isinstance(node.op, (ast.BitOr, ast.BitAnd, ast.Sub)):
        return _is_set(module, node.left) and _is_set(module, node.right)
    return False


def _numbers_only(module: ModuleModel, node: ast.expr) -> bool:
    """A set whose elements are evidently numbers (int/float hashes are not salted): int literals,
    ``set(range(n))``, ``set(map(int, xs))``, ``set(col.astype(int))``, ``{int(x) for x in xs}``."""
    if isinstance(node, ast.Set):
        return all(isinstance(e, ast.Constant) and isinstance(e.value, (int, float)) for e in node.elts)
    if isinstance(node, ast.SetComp):
        return _numeric(module, node.elt)
    if isinstance(node, ast.Call) and node.args:
        return _numeric(module, node.args[0])
    return False


def _numeric(module: ModuleModel, node: ast.expr) -> bool:
    """Values that are numbers by construction."""
    if not isinstance(node, ast.Call):
        return isinstance(node, ast.Constant) and isinstance(node.value, (int, float))
    name = module.qualified_name(node.func)
    if name in ("range", "int", "float", "len"):
        return True
    if name == "map" and node.args:
        return module.qualified_name(node.args[0]) in ("int", "float")
    if isinstance(node.func, ast.Attribute) and node.func.attr == "astype" and node.args:
        return module.qualified_name(node.args[0]) in ("int", "float") or (
            isinstance(node.args[0], ast.Constant) and str(node.args[0].value).startswith(("int", "float"))
        )
    return False


def _sorted_in_place(module: ModuleModel, node: ast.expr) -> bool:
    """``labels.sort()`` anywhere in the scope that binds ``labels``."""
    key = expr_key(node)
    if key is None:
        return False
    scope = module.scope_of(node)
    return any(
        call_name(call) == "sort" and isinstance(call.func, ast.Attribute) and expr_key(call.func.value) == key
        for call in module.calls()
        if module.scope_of(call) is scope
    )


def _is_counter(module: ModuleModel, node: ast.expr) -> bool:
    return isinstance(node, ast.Call) and (module.qualified_name(node.func) or "") in _COUNTERS


def _called(module: ModuleModel, call: ast.Call) -> str | None:
    name = module.qualified_name(call.func)
    return name if name in ("set", "frozenset", "list", "tuple", "iter", "enumerate", "zip", "range", "dict") else None


def _name(node: ast.AST) -> str | None:
    return node.id if isinstance(node, ast.Name) else None
