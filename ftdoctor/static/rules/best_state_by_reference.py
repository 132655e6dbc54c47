"""best-state-by-reference: the "best" weights are kept as ``model.state_dict()``, which aliases the live weights.

``state_dict()`` returns references to the parameter tensors, and the optimizer updates them in
place, so a snapshot taken at the best epoch holds the last epoch's weights by the time it is
loaded or saved. Reported when the snapshot (``model.state_dict()``, a shallow ``dict(...)`` /
``.copy()`` of it, or ``{k: v for k, v in ...items()}`` without ``clone()``) is taken inside a loop
that keeps training that same model, and is loaded, saved or returned after that loop.
"""

from __future__ import annotations

import ast
from typing import Iterator

from ftdoctor.findings import Finding
from ftdoctor.static.analysis_flow import BACKWARD, LOOP_NODES, Loop
from ftdoctor.static.model import Binding, ModuleModel, call_name, expr_key
from ftdoctor.static.modelfacts import describe
from ftdoctor.static.rule import StaticRule, register_static_rule

#: shallow copies: a new dict whose values are the same tensors
_SHALLOW = frozenset({"dict", "collections.OrderedDict", "OrderedDict"})
#: methods that return a tensor sharing the parameter's storage
_SAME_STORAGE = frozenset({"detach", "detach_", "view_as", "requires_grad_"})
#: calls that use a state dict's current values
_USES = frozenset({"load_state_dict", "save", "save_file", "set_peft_model_state_dict"})


@register_static_rule
class BestStateByReference(StaticRule):
    slug = "best-state-by-reference"

    def check(self, module: ModuleModel) -> Iterator[Finding]:
        for binding in module.all_bindings():
            if binding.source != "assign" or binding.value is None:
                continue
            receiver = _referenced_model(module, binding.value)
            if receiver is None:
                continue
            model = module.value_of(receiver)
            if model.kind != "model" or model.origin is None:
                continue
            loop = _training_loop_around(module, binding.node, model.origin.origin())
            if loop is None or _no_training_after(module, binding.node, loop):
                continue
            use = _use_after(module, binding, loop)
            if use is None:
                continue
            name = describe(module, use)
            yield self.finding(
                module, binding.value,
                f"`{name}` keeps references to the live weights of `{describe(module, receiver)}`, not a copy: the "
                f"training loop (line {loop.line}) keeps updating them in place, so `{name}` used at line "
                f"{use.lineno} holds the last weights, not the best ones",
                f"copy the tensors: {name} = copy.deepcopy({describe(module, receiver)}.state_dict()) "
                "(or {k: v.detach().clone() for k, v in ....state_dict().items()})",
            )


def _referenced_model(module: ModuleModel, value: ast.expr) -> ast.expr | None:
    """The model whose ``state_dict()`` ``value`` aliases, or None when ``value`` is (or may be) a copy."""
    if isinstance(value, ast.Call) and isinstance(value.func, ast.Attribute):
        if value.func.attr == "state_dict" and not value.args and not value.keywords:
            return _unwrap(value.func.value)
        if value.func.attr == "copy" and not value.args:
            return _referenced_model(module, value.func.value)
    if isinstance(value, ast.Call) and module.qualified_name(value.func) in _SHALLOW and len(value.args) == 1:
        return _referenced_model(module, value.args[0])
    if isinstance(value, ast.DictComp) and len(value.generators) == 1:
        generator = value.generators[0]
        items = generator.iter
        if (
            isinstance(items, ast.Call) and call_name(items) == "items" and isinstance(items.func, ast.Attribute)
            and isinstance(generator.target, ast.Tuple) and len(generator.target.elts) == 2
            and _same_tensor(value.value, generator.target.elts[1])
        ):
            return _referenced_model(module, items.func.value)
    return None


def _same_tensor(value: ast.expr, element: ast.expr) -> bool:
    """``v``, ``v.detach()``, ``v.data``: the parameter's own storage."""
    if not isinstance(element, ast.Name):
        return False
    while True:
        if isinstance(value, ast.Name):
            return value.id == element.id
        if isinstance(value, ast.Attribute) and value.attr == "data":
            value = value.value
        elif isinstance(value, ast.Call) and call_name(value) in _SAME_STORAGE and isinstance(value.func, ast.Attribute):
            value = value.func.value
        else:
            return False


def _unwrap(receiver: ast.expr) -> ast.expr:
    """``model.module`` (DDP) -> ``model``."""
    if isinstance(receiver, ast.Attribute) and receiver.attr == "module":
        return receiver.value
    return receiver


def _training_loop_around(module: ModuleModel, node: ast.AST, model: Binding) -> Loop | None:
    """The outermost loop around ``node`` (in its function) that runs backward and calls ``model`` with grad."""
    found = None
    for ancestor in module.ancestors(node):
        if isinstance(ancestor, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda, ast.ClassDef)):
            break
        if isinstance(ancestor, LOOP_NODES):
            loop = module.loop(ancestor)
            if loop is not None and loop.has(BACKWARD) and model in loop.forward_models:
                found = loop
    return found


def _no_training_after(module: ModuleModel, node: ast.AST, loop: Loop) -> bool:
    """The snapshot is taken on the way out: its block then leaves the loop (``break``/``return``), or an
    ``if`` around it tests the loop variable for equality (``if epoch == epochs - 1``)."""
    targets = {n.id for n in ast.walk(getattr(loop.node, "target", ast.Pass())) if isinstance(n, ast.Name)}
    child: ast.AST = node
    for ancestor in module.ancestors(node):
        if ancestor is loop.node:
            return False
        for block in (getattr(ancestor, "body", None), getattr(ancestor, "orelse", None)):
            if isinstance(block, list) and child in block and any(
                isinstance(s, (ast.Break, ast.Return)) for s in block[block.index(child) + 1:]
            ):
                return True
        if isinstance(ancestor, ast.If) and child is not ancestor.test and any(
            isinstance(n, ast.Compare) and any(isinstance(op, ast.Eq) for op in n.ops)
            and targets & {m.id for m in ast.walk(n) if isinstance(m, ast.Name)}
            for n in ast.walk(ancestor.test)
        ):
            return True
        child = ancestor
    return False


def _use_after(module: ModuleModel, snapshot: Binding, loop: Loop) -> ast.AST | None:
    """A read of the snapshot after ``loop`` ends that loads, saves or returns it."""
    scope = module.scope_of(snapshot.node)
    end = (loop.node.end_lineno or 0, loop.node.end_col_offset or 0)  # type: ignore[attr-defined]
    for node in module.nodes(ast.Name, ast.Attribute):
        key = expr_key(node)
        if key is None or key.rsplit(".", 1)[-1] != snapshot.name.rsplit(".", 1)[-1]:
            continue
        if not isinstance(getattr(node, "ctx", None), ast.Load):
            continue
        if module.scope_of(node) is not scope or (node.lineno, node.col_offset) <= end:  # type: ignore[attr-defined]
            continue
        if module.binding_of(node) is not snapshot:
            continue
        parent = module.parent(node)
        if isinstance(parent, ast.Return):
            return node
        if isinstance(parent, ast.Call) and node in parent.args and call_name(parent) in _USES:
            return node
    return None
