"""Tracing a loss expression back through its assignments.

Three questions the loop rules ask about the value handed to ``backward()`` or
added to a running total:

* :func:`detached_source` — is it cut from the autograd graph (``.item()``,
  ``.detach()``, ``.data``, ``torch.tensor(...)``)? Returns the cutting expression.
* :func:`is_scaled` — was it divided (or multiplied) by something, as gradient
  accumulation needs?
* :func:`is_graph_loss` — is it a loss tensor that still carries its graph?

Names are followed to the binding that reaches the use (a few levels deep).
"""

from __future__ import annotations

import ast
from typing import TYPE_CHECKING

from ftdoctor.static import library
from ftdoctor.static.model import Binding, call_name, expr_key, position

if TYPE_CHECKING:
    from ftdoctor.static.model import ModuleModel, Scope

_MAX_DEPTH = 6
#: methods whose result is no longer part of the autograd graph
DETACHING_METHODS = frozenset({"item", "detach", "tolist", "numpy"})
#: constructors that make a fresh leaf tensor from data
NEW_TENSOR = frozenset({"tensor", "as_tensor", "Tensor", "FloatTensor", "from_numpy", "scalar_tensor"})
#: ``torch.nn.functional`` losses
FUNCTIONAL_LOSSES = frozenset(
    {"cross_entropy", "nll_loss", "mse_loss", "l1_loss", "smooth_l1_loss", "huber_loss", "kl_div",
     "binary_cross_entropy", "binary_cross_entropy_with_logits", "cosine_embedding_loss", "margin_ranking_loss",
     "triplet_margin_loss", "soft_margin_loss", "multi_margin_loss", "multilabel_soft_margin_loss", "ctc_loss",
     "poisson_nll_loss", "gaussian_nll_loss", "hinge_embedding_loss"}
)


def backward_loss(module: "ModuleModel", call: ast.Call, scope: "Scope") -> ast.expr:
    """The loss a ``...backward(...)`` call differentiates: ``accelerator.backward(loss)`` -> ``loss``,
    ``scaler.scale(loss).backward()`` -> ``scaler.scale(loss)``, ``loss.backward()`` -> ``loss``."""
    func = call.func
    assert isinstance(func, ast.Attribute)
    receiver = func.value
    position_of_loss = library.BACKWARD_FUNCTIONS.get(module.qualified_name(func, scope) or "")
    if position_of_loss is not None and position_of_loss < len(call.args):
        roots = call.args[position_of_loss]  # dist_autograd.backward(context_id, [loss])
        return roots.elts[0] if isinstance(roots, (ast.List, ast.Tuple)) and len(roots.elts) == 1 else roots
    if call.args:
        key = expr_key(receiver)
        binding = module.binding_of_key(key, scope, position(call)) if key else None
        name = receiver.attr if isinstance(receiver, ast.Attribute) else getattr(receiver, "id", "")
        if (binding is not None and (binding.kind == "accelerator" or binding.info.via == "engine")) or name in (
            "accelerator", "engine", "model_engine", "fabric"
        ):
            return call.args[0]
    return receiver


def backpropagated_keys(module: "ModuleModel", scope: "Scope") -> frozenset[str]:
    """Names and ``obj.attr`` keys whose values flow into a ``backward()`` of ``scope``: the backward
    arguments, then (flow-insensitively, within the function) whatever their bindings, ``+=`` and
    ``.append``/``.extend`` were built from. ``policy_losses.append(-log_prob * advantage)`` then
    ``torch.stack(policy_losses).sum().backward()`` puts ``policy_losses``, ``log_prob``... in the set."""
    cache = module._cache.setdefault("backpropagated", {})  # type: ignore[assignment]
    if id(scope) in cache:
        return cache[id(scope)]  # type: ignore[index]
    pending: list[str] = []
    stores: dict[str, list[ast.AST]] = {}
    for call in scope.calls:
        if module.scope_of(call) is not scope or not isinstance(call.func, ast.Attribute):
            continue
        if call.func.attr == "backward":
            pending += _read_keys(backward_loss(module, call, scope))
            for arg in call.args:
                pending += _read_keys(arg)
        elif call.func.attr in ("append", "extend", "insert") and (key := expr_key(call.func.value)):
            stores.setdefault(key, []).extend(call.args)
    found: set[str] = set()
    while pending:
        key = pending.pop()
        if key in found:
            continue
        found.add(key)
        values: list[ast.AST] = list(stores.get(key, []))
        values += [b.value for b in module.bindings(key, scope) if b.value is not None and b.source != "param"]
        for value in values:
            pending += _read_keys(value)
        if not values and (base := _base_key(key)):
            pending.append(base)  # `outputs.loss` / `outputs[0]` was built with `outputs`
    result = frozenset(found)
    cache[id(scope)] = result  # type: ignore[index]
    return result


def _base_key(key: str) -> str | None:
    """``outputs`` for ``outputs.loss`` or ``outputs[0]``; None for a plain name."""
    cut = max(key.rfind("."), key.rfind("["))
    return key[:cut] if cut > 0 else None


def _read_keys(node: ast.AST) -> list[str]:
    """The outermost references an expression reads (``model.saved_actions``, not also ``model``)."""
    keys: list[str] = []
    stack = [node]
    while stack:
        current = stack.pop()
        key = expr_key(current) if isinstance(current, (ast.Name, ast.Attribute, ast.Subscript)) else None
        if key is not None:
            keys.append(key)
            continue
        if isinstance(current, (ast.Lambda, ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            continue
        stack.extend(ast.iter_child_nodes(current))
    return keys


def _returned(module: "ModuleModel", function: "Scope") -> list[ast.expr]:
    """The values a function of this module returns (its own ``return`` statements, not nested defs')."""
    return [
        node.value for node in ast.walk(function.node)
        if isinstance(node, ast.Return) and node.value is not None and module.scope_of(node) is function
    ]


def _reaching(module: "ModuleModel", node: ast.expr, scope: "Scope", at: tuple[int, int]) -> Binding | None:
    key = expr_key(node)
    return module.binding_of_key(key, scope, at) if key else None


def _unwrap_scale(node: ast.expr) -> ast.expr:
    """``scaler.scale(loss)`` -> ``loss``."""
    if isinstance(node, ast.Call) and call_name(node) == "scale" and len(node.args) == 1:
        return node.args[0]
    return node


def detached_source(
    module: "ModuleModel", node: ast.expr, scope: "Scope", at: tuple[int, int], depth: int = 0
) -> ast.expr | None:
    """The sub-expression that cuts ``node`` from the graph, or None when it may still carry gradients."""
    if depth > _MAX_DEPTH:
        return None
    node = _unwrap_scale(node)
    if isinstance(node, ast.Call):
        name = call_name(node)
        qualified = module.qualified_name(node.func, scope) or ""
        if isinstance(node.func, ast.Attribute) and name in DETACHING_METHODS:
            return node
        if isinstance(node.func, ast.Attribute) and name in ("requires_grad_", "float", "mean", "sum", "to", "cuda"):
            return detached_source(module, node.func.value, scope, at, depth + 1)
        if qualified in ("float", "int") or (qualified.startswith("torch.") and qualified.rsplit(".", 1)[-1] in NEW_TENSOR):
            return node
        callee = module.resolve_callee(node, scope)
        if callee is None:
            return None
        cuts = [detached_source(module, value, callee, position(value), depth + 1) for value in _returned(module, callee)]
        return cuts[0] if cuts and all(cut is not None for cut in cuts) else None
    if isinstance(node, ast.Attribute) and node.attr == "data":
        return node
    if isinstance(node, ast.BinOp):
        left = detached_source(module, node.left, scope, at, depth + 1)
        right = detached_source(module, node.right, scope, at, depth + 1)
        left_ok = left is not None or isinstance(node.left, ast.Constant)
        right_ok = right is not None or isinstance(node.right, ast.Constant)
        return (left or right) if left_ok and right_ok else None
    binding = _reaching(module, node, scope, at)
    if binding is not None and binding.source in ("assign", "annassign") and binding.value is not None:
        return detached_source(module, binding.value, module.scope_of(binding.value), binding.position, depth + 1)
    return None


def is_scaled(module: "ModuleModel", node: ast.expr, scope: "Scope", at: tuple[int, int], depth: int = 0) -> bool:
    """True when the loss was divided or multiplied on its way to ``backward()``."""
    if depth > _MAX_DEPTH:
        return False
    node = _unwrap_scale(node)
    if isinstance(node, ast.BinOp) and isinstance(node.op, (ast.Div, ast.Mult, ast.FloorDiv)):
        return True
    if isinstance(node, ast.Call):
        if isinstance(node.func, ast.Attribute) and node.func.attr in ("mean", "sum", "float", "to", "squeeze"):
            return is_scaled(module, node.func.value, scope, at, depth + 1)
        if isinstance(node.func, ast.Attribute) and node.func.attr in ("div", "div_", "mul", "mul_", "true_divide"):
            return True
        callee = module.resolve_callee(node, scope)
        return callee is not None and any(
            is_scaled(module, value, callee, position(value), depth + 1) for value in _returned(module, callee)
        )
    binding = _reaching(module, node, scope, at)
    if binding is None:
        return False
    if binding.source == "augassign":
        return isinstance(binding.node, ast.AugAssign) and isinstance(binding.node.op, (ast.Div, ast.Mult))
    if binding.source in ("assign", "annassign") and binding.value is not None:
        return is_scaled(module, binding.value, module.scope_of(binding.value), binding.position, depth + 1)
    return False


def is_graph_loss(
    module: "ModuleModel", node: ast.expr, scope: "Scope", at: tuple[int, int], backpropagated: set[str], depth: int = 0
) -> bool:
    """True when ``node`` is a loss tensor still attached to its graph: ``outputs.loss``, ``criterion(...)``,
    ``F.cross_entropy(...)``, a name that is backpropagated (``backpropagated``), or arithmetic on those."""
    if depth > _MAX_DEPTH:
        return False
    if isinstance(node, ast.Call):
        name = call_name(node)
        if isinstance(node.func, ast.Attribute) and name in DETACHING_METHODS:
            return False
        if isinstance(node.func, ast.Attribute) and name in ("mean", "sum", "cpu", "float", "squeeze"):
            return is_graph_loss(module, node.func.value, scope, at, backpropagated, depth + 1)
        qualified = module.qualified_name(node.func, scope) or ""
        if qualified.rsplit(".", 1)[-1] in FUNCTIONAL_LOSSES and qualified.startswith("torch."):
            return True
        key = expr_key(node.func)
        binding = module.binding_of_key(key, scope, at) if key else None
        if binding is not None and binding.kind == "loss":
            return True
        callee = module.resolve_callee(node, scope)
        return callee is not None and any(
            is_graph_loss(module, value, callee, position(value), set(), depth + 1)
            for value in _returned(module, callee)
        )
    if isinstance(node, ast.Attribute):
        return node.attr == "loss"
    if isinstance(node, ast.Subscript):
        return isinstance(node.slice, ast.Constant) and node.slice.value == "loss"
    if isinstance(node, ast.BinOp):
        return any(is_graph_loss(module, side, scope, at, backpropagated, depth + 1) for side in (node.left, node.right))
    binding = _reaching(module, node, scope, at)
    backpropagated_name = isinstance(node, ast.Name) and node.id in backpropagated
    if binding is None or binding.source not in ("assign", "annassign") or binding.value is None:
        return backpropagated_name
    value_scope = module.scope_of(binding.value)
    if is_graph_loss(module, binding.value, value_scope, binding.position, backpropagated, depth + 1):
        return True
    # whatever produced it (an external helper...), a backpropagated name holds a graph unless it was cut
    return backpropagated_name and detached_source(module, binding.value, value_scope, binding.position) is None
