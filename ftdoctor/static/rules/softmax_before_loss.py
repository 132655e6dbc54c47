"""softmax-before-loss (static side): probabilities fed to a loss that applies softmax/sigmoid itself.

``CrossEntropyLoss``/``cross_entropy`` expect logits; so do ``BCEWithLogitsLoss`` and
``binary_cross_entropy_with_logits``. The loss input is traced back through assignments
(and a custom model's ``forward`` returns) to a softmax or sigmoid.
"""

from __future__ import annotations

import ast
from typing import Iterator

from ftdoctor.findings import Finding
from ftdoctor.static.model import ModuleModel, expr_key, keyword
from ftdoctor.static.modelfacts import assigned_value, describe, torch_nn_class
from ftdoctor.static.rule import StaticRule, register_static_rule

_SOFTMAX_FUNCTIONS = frozenset({"torch.softmax", "torch.nn.functional.softmax", "torch.special.softmax"})
_SIGMOID_FUNCTIONS = frozenset({"torch.sigmoid", "torch.nn.functional.sigmoid", "torch.special.expit"})
_LAYER_ACTIVATIONS = {"Softmax": "softmax", "Sigmoid": "sigmoid"}
#: losses that apply the activation themselves -> the activations that must not precede them
_LOGIT_LOSS_FUNCTIONS = {
    "torch.nn.functional.cross_entropy": ("CrossEntropyLoss", frozenset({"softmax"})),
    "torch.nn.functional.binary_cross_entropy_with_logits": ("BCEWithLogitsLoss", frozenset({"sigmoid", "softmax"})),
}
_LOGIT_LOSS_CLASSES = {
    "CrossEntropyLoss": frozenset({"softmax"}),
    "BCEWithLogitsLoss": frozenset({"sigmoid", "softmax"}),
}
#: tensor methods that keep probabilities probabilities
_KEEPING_METHODS = frozenset({"float", "double", "half", "to", "squeeze", "view", "reshape", "contiguous", "cuda",
                              "cpu", "clone", "type"})
_MAX_DEPTH = 10


@register_static_rule
class SoftmaxBeforeLoss(StaticRule):
    slug = "softmax-before-loss"

    def check(self, module: ModuleModel) -> Iterator[Finding]:
        for call in module.calls():
            loss = _logit_loss(module, call)
            if loss is None:
                continue
            loss_name, forbidden = loss
            argument = keyword(call, "input", 0)
            if argument is None:
                continue
            found = _activation(module, argument, 0)
            if found is None or found[0] not in forbidden:
                continue
            activation, where = found
            yield self.finding(
                module,
                argument,
                f"`{describe(module, argument)}` passed to {loss_name} (line {call.lineno}) is already a "
                f"{activation} output (line {where.lineno}); {loss_name} applies "
                f"{'log-softmax' if loss_name == 'CrossEntropyLoss' else 'sigmoid'} itself, so training "
                "sees a flattened, nearly constant loss and tiny gradients",
                f"pass the raw logits to {loss_name} and apply {activation} only for predictions or metrics"
                + (" (or use log_softmax with NLLLoss)" if activation == "softmax" else " (or use BCELoss)"),
            )


def _logit_loss(module: ModuleModel, call: ast.Call) -> tuple[str, frozenset[str]] | None:
    """``(loss class name, forbidden activations)`` when ``call`` computes a logit-taking loss."""
    func = call.func
    qualified = module.qualified_name(func)
    if qualified in _LOGIT_LOSS_FUNCTIONS:
        return _LOGIT_LOSS_FUNCTIONS[qualified]
    if isinstance(func, ast.Call):  # nn.CrossEntropyLoss()(x, y)
        layer = torch_nn_class(module, func)
        return (layer, _LOGIT_LOSS_CLASSES[layer]) if layer in _LOGIT_LOSS_CLASSES else None
    if isinstance(func, (ast.Name, ast.Attribute)) and expr_key(func) is not None:
        info = module.value_of(func, call)
        if info.kind == "loss" and info.class_name in _LOGIT_LOSS_CLASSES:
            return info.class_name, _LOGIT_LOSS_CLASSES[info.class_name]
    return None


def _activation(module: ModuleModel, node: ast.AST, depth: int) -> tuple[str, ast.AST] | None:
    """``("softmax"|"sigmoid", the call)`` when ``node`` evaluates to an activation's output."""
    if depth > _MAX_DEPTH:
        return None
    if isinstance(node, (ast.Name, ast.Attribute)) and expr_key(node) is not None:
        found = assigned_value(module, node)
        return _activation(module, found[0], depth + 1) if found is not None else None
    if isinstance(node, ast.Subscript):
        return _activation(module, node.value, depth + 1)
    if not isinstance(node, ast.Call):
        return None
    func = node.func
    qualified = module.qualified_name(func)
    if qualified in _SOFTMAX_FUNCTIONS:
        return "softmax", node
    if qualified in _SIGMOID_FUNCTIONS:
        return "sigmoid", node
    if isinstance(func, ast.Attribute) and qualified is None:
        if func.attr in ("softmax", "sigmoid"):  # logits.softmax(dim=-1)
            return func.attr, node
        if func.attr in _KEEPING_METHODS:
            return _activation(module, func.value, depth + 1)
    layer = _called_layer(module, func, node)
    if layer in _LAYER_ACTIVATIONS:
        return _LAYER_ACTIVATIONS[layer], node
    return _forward_activation(module, node, depth)


def _called_layer(module: ModuleModel, func: ast.expr, call: ast.Call) -> str | None:
    """``Softmax`` for ``nn.Softmax(dim=1)(x)`` or ``self.softmax(x)`` bound to ``nn.Softmax(...)``."""
    if isinstance(func, ast.Call):
        return torch_nn_class(module, func)
    if expr_key(func) is None:
        return None
    found = assigned_value(module, func, call)
    if found is None:
        return None
    layer = torch_nn_class(module, found[0])
    if layer == "Sequential" and isinstance(found[0], ast.Call) and found[0].args:
        return torch_nn_class(module, found[0].args[-1])  # the last layer decides the output
    return layer


def _forward_activation(module: ModuleModel, call: ast.Call, depth: int) -> tuple[str, ast.AST] | None:
    """A call to a model of this module whose ``forward`` always returns an activation's output."""
    if not isinstance(call.func, (ast.Name, ast.Attribute)):
        return None
    info = module.value_of(call.func, call)
    class_scope = module.classes.get(info.local_class or "") if info.kind == "model" else None
    forward = module.method_of(class_scope, "forward") if class_scope is not None else None
    if forward is None:
        return None
    returns = [n for n in ast.walk(forward.node) if isinstance(n, ast.Return) and module.scope_of(n) is forward]
    if not returns or any(r.value is None for r in returns):
        return None
    found = [_activation(module, r.value, depth + 1) for r in returns]  # type: ignore[arg-type]
    first = found[0]
    if first is not None and all(f is not None and f[0] == first[0] for f in found):
        return first
    return None
