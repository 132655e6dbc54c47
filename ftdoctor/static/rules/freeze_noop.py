"""freeze-noop: code meant to (un)freeze parameters that changes nothing.

``module.requires_grad = False`` (a plain attribute on a Module), ``p.requires_grad == False``
(a comparison statement), misspelt flags (``p.require_grad = False``), flags set on copies
(``p.data``, ``p.detach()``), ``model.requires_grad_`` without the call, and
``(p.requires_grad_(False) for p in ...)`` generators nobody consumes.
"""

from __future__ import annotations

import ast
from typing import Iterator

from ftdoctor.findings import Finding
from ftdoctor.static.analysis_values import ValueInfo
from ftdoctor.static.model import ModuleModel, keyword
from ftdoctor.static.modelfacts import assigned_value, describe, is_layer_call, nodes_of_type
from ftdoctor.static.rule import StaticRule, register_static_rule

_FLAG = "requires_grad"
_METHOD = "requires_grad_"
#: attribute names that hold parameters (tensors), not modules
_PARAMETER_ATTRIBUTES = frozenset({"weight", "bias", "data", "grad", "in_proj_weight", "in_proj_bias", "position_ids"})
#: iterating over these yields modules
_MODULE_ITERATORS = frozenset({"children", "modules"})
_PARAMETER_ITERATORS = frozenset({"parameters", "named_parameters", "buffers", "named_buffers"})
#: calls returning a copy of a tensor: setting a flag on it leaves the parameter alone
_COPYING_METHODS = frozenset({"detach", "clone"})
_MAX_DEPTH = 8


@register_static_rule
class FreezeNoop(StaticRule):
    slug = "freeze-noop"

    def check(self, module: ModuleModel) -> Iterator[Finding]:
        for node in nodes_of_type(module, ast.Assign, ast.AnnAssign, ast.Expr, ast.Call):
            if isinstance(node, (ast.Assign, ast.AnnAssign)):
                targets = node.targets if isinstance(node, ast.Assign) else [node.target]
                for target in targets:
                    if isinstance(target, ast.Attribute):
                        yield from self._check_assignment(module, node, target)
            elif isinstance(node, ast.Expr):
                yield from self._check_statement(module, node)
            elif isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == _METHOD:
                if _is_copy(node.func.value) and _freezes(keyword(node, "requires_grad", 0)):
                    yield self._copy_finding(module, node, node.func.value)

    def _check_assignment(self, module: ModuleModel, statement: ast.stmt, target: ast.Attribute) -> Iterator[Finding]:
        text = describe(module, target)
        if target.attr == _FLAG:
            if _is_copy(target.value) and _freezes(getattr(statement, "value", None)):
                yield self._copy_finding(module, target, target.value)
            elif _is_module(module, target.value, 0):
                owner = describe(module, target.value)
                yield self.finding(
                    module,
                    target,
                    f"`{text}` (line {target.lineno}) sets a plain attribute on the module `{owner}`; "
                    "modules have no requires_grad flag, so every parameter stays trainable",
                    f"call `{owner}.requires_grad_(False)` or loop: "
                    f"`for p in {owner}.parameters(): p.requires_grad = False`",
                )
        elif _is_misspelt_flag(target.attr) and _is_flag_value(statement) and not _is_bare_self(target.value):
            yield self.finding(
                module,
                target,
                f"`{text}` (line {target.lineno}) sets `{target.attr}`, not `requires_grad`: Python silently "
                "creates a new attribute and the parameter stays trainable",
                f"spell it `{describe(module, target.value)}.requires_grad = ...`",
            )

    def _check_statement(self, module: ModuleModel, statement: ast.Expr) -> Iterator[Finding]:
        value = statement.value
        if _is_flag_comparison(value):
            text = describe(module, value)
            yield self.finding(
                module,
                value,
                f"`{text}` (line {value.lineno}) compares requires_grad instead of setting it: the statement has "
                "no effect and the parameter stays trainable",
                f"use `=`: `{text.replace('==', '=', 1)}`" if "==" in text else "assign with `=` instead of comparing",
            )
        elif isinstance(value, ast.Attribute) and value.attr == _METHOD:
            owner = describe(module, value.value)
            yield self.finding(
                module,
                value,
                f"`{describe(module, value)}` (line {value.lineno}) names the method without calling it: "
                "nothing is frozen",
                f"call it: `{owner}.requires_grad_(False)`",
            )
        elif _is_lazy_freeze(value):
            yield self.finding(
                module,
                value,
                f"the lazy `{'map' if isinstance(value, ast.Call) else 'generator'}` on line {value.lineno} that "
                "calls requires_grad_ is never consumed, so it never runs and nothing is frozen",
                "use a plain for loop: `for p in params: p.requires_grad_(False)`",
            )

    def _copy_finding(self, module: ModuleModel, node: ast.AST, copy: ast.expr) -> Finding:
        return self.finding(
            module,
            node,
            f"`{describe(module, node)}` (line {node.lineno}) sets the flag on `{describe(module, copy)}`, "
            "a copy of the parameter: the parameter itself stays trainable",
            "set it on the parameter itself: `param.requires_grad = False`",
        )


def _freezes(value: ast.expr | None) -> bool:
    """The flag value is a literal False: a freeze (``requires_grad_()`` defaults to True)."""
    return isinstance(value, ast.Constant) and value.value is False


def _is_copy(node: ast.expr) -> bool:
    if isinstance(node, ast.Attribute) and node.attr == "data":
        return True
    return isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr in _COPYING_METHODS


def _is_misspelt_flag(attribute: str) -> bool:
    """``require_grad``, ``requires_grads``, ``requiresGrad``, ``requires_grad_`` (assigning over the method)..."""
    if attribute == _FLAG:
        return False
    if attribute == _METHOD:
        return True
    if "gr" not in attribute.lower():  # cheap rejection before the edit distance
        return False
    return _edit_distance(attribute.lower().replace("_", ""), "requiresgrad") <= 2


def _is_bare_self(node: ast.expr) -> bool:
    """``self.require_grad = False`` may be an object's own setting, not a tensor flag."""
    return isinstance(node, ast.Name) and node.id == "self"


def _is_flag_value(statement: ast.stmt) -> bool:
    value = getattr(statement, "value", None)
    return isinstance(value, ast.Constant) and isinstance(value.value, bool)


def _is_flag_comparison(node: ast.expr) -> bool:
    return (
        isinstance(node, ast.Compare)
        and len(node.ops) == 1
        and isinstance(node.ops[0], (ast.Eq, ast.Is))
        and isinstance(node.left, ast.Attribute)
        and node.left.attr == _FLAG
    )


def _is_lazy_freeze(node: ast.expr) -> bool:
    """A generator expression or ``map(...)`` statement whose work is a ``requires_grad_`` call."""
    if isinstance(node, ast.GeneratorExp):
        body: ast.AST = node.elt
    elif isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "map" and node.args:
        body = node.args[0]
    else:
        return False
    return any(
        isinstance(n, ast.Call) and isinstance(n.func, ast.Attribute) and n.func.attr == _METHOD for n in ast.walk(body)
    )


def _is_module(module: ModuleModel, node: ast.AST, depth: int) -> bool:
    """True when ``node`` evaluates to an ``nn.Module`` (a model, a submodule chain, a layer, a loop over layers)."""
    if depth > _MAX_DEPTH:
        return False
    if isinstance(node, (ast.Name, ast.Attribute)) and module.value_of(node).kind == "model":
        return True
    if isinstance(node, ast.Attribute):
        if node.attr in _PARAMETER_ATTRIBUTES or node.attr.endswith(("_weight", "_bias")):
            return False
        owner = module.value_of(node.value) if isinstance(node.value, (ast.Name, ast.Attribute)) else None
        if owner is not None and owner.kind == "model":
            return _is_submodule(module, owner, node.attr)
        return _is_module(module, node.value, depth + 1)
    if isinstance(node, ast.Subscript):
        return _is_module(module, node.value, depth + 1)
    if isinstance(node, ast.Call):
        return is_layer_call(module, node)
    if isinstance(node, ast.Name):
        return _is_module_name(module, node, depth)
    return False


def _is_submodule(module: ModuleModel, owner: "ValueInfo", attribute: str) -> bool:
    """Whether ``owner.attribute`` is proven a module: for a class of this file, by what ``__init__`` binds
    to ``self.attribute`` (an ``nn.Parameter`` or ``ParameterDict`` is none); for a library model family, its
    attributes are its submodules; for a model of unknown class (adapters over an unknown base), unsure."""
    local = module.classes.get(owner.local_class or "")
    if local is not None:
        bindings = local.bindings.get(f"self.{attribute}", [])
        return bool(bindings) and all(
            b.value is not None and (b.kind == "model" or is_layer_call(module, b.value)) for b in bindings
        )
    return owner.class_name is not None and owner.via in ("from_pretrained", "from_config", "config", "peft", "factory")


def _is_module_name(module: ModuleModel, node: ast.Name, depth: int) -> bool:
    binding = module.binding_of(node)
    if binding is None:
        return False
    if binding.source == "for":
        return _iterates_modules(module, binding.value, binding.index, depth)
    found = assigned_value(module, node)
    return found is not None and _is_module(module, found[0], depth + 1)


def _iterates_modules(module: ModuleModel, iterable: ast.expr | None, index: int | None, depth: int) -> bool:
    """``for layer in model.encoder.layer`` / ``model.children()`` / ``enumerate(...)`` / ``named_children()``."""
    if isinstance(iterable, ast.Call) and isinstance(iterable.func, ast.Name) and iterable.func.id == "enumerate":
        return index == 1 and bool(iterable.args) and _iterates_modules(module, iterable.args[0], None, depth + 1)
    if isinstance(iterable, ast.Call) and isinstance(iterable.func, ast.Attribute):
        method = iterable.func.attr
        if method in _PARAMETER_ITERATORS:
            return False
        if method in _MODULE_ITERATORS:
            return index is None and _is_module(module, iterable.func.value, depth + 1)
        if method in ("named_children", "named_modules"):
            return index == 1 and _is_module(module, iterable.func.value, depth + 1)
        return False
    return iterable is not None and index is None and _is_module(module, iterable, depth + 1)


def _edit_distance(a: str, b: str) -> int:
    previous = list(range(len(b) + 1))
    for i, char_a in enumerate(a, 1):
        current = [i]
        for j, char_b in enumerate(b, 1):
            current.append(min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (char_a != char_b)))
        previous = current
    return previous[-1]
