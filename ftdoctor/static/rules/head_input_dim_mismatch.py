"""head-input-dim-mismatch: a Linear head whose in_features is not the checkpoint's hidden size.

A head is "fed by" an encoder when it is applied to the encoder's output (through
attribute/index access, dropout, activations, pooling arithmetic) or assigned onto the
model itself. Only checkpoints in :mod:`ftdoctor.static.checkpoints` are checked.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass
from typing import Iterator

from ftdoctor.findings import Finding
from ftdoctor.static.analysis_values import ValueInfo
from ftdoctor.static.model import ModuleModel, expr_key
from ftdoctor.static.modelfacts import (
    SHAPE_KEEPING_LAYERS,
    assigned_to,
    assigned_value,
    describe,
    checkpoint_name,
    first_linear,
    hidden_size_of,
    linear_features,
    torch_nn_class,
)
from ftdoctor.static.rule import StaticRule, register_static_rule

#: output fields of a base model that carry hidden_size-wide vectors
_HIDDEN_FIELDS = frozenset({"last_hidden_state", "pooler_output", "hidden_states"})
#: tensor methods that keep the last dimension
_KEEPING_METHODS = frozenset({"mean", "sum", "relu", "tanh", "squeeze", "contiguous", "float", "half", "to", "detach",
                              "clone", "sigmoid", "amax", "nan_to_num"})
#: functions that keep the last dimension of their first argument
_KEEPING_FUNCTIONS = frozenset(
    {"torch.mean", "torch.sum", "torch.tanh", "torch.relu", "torch.sigmoid", "torch.squeeze", "torch.amax",
     "torch.nn.functional.dropout", "torch.nn.functional.relu", "torch.nn.functional.gelu",
     "torch.nn.functional.tanh", "torch.nn.functional.silu", "torch.nn.functional.layer_norm",
     "torch.nn.functional.normalize", "torch.nn.functional.leaky_relu", "torch.nn.functional.elu"}
)
_MAX_DEPTH = 12


@dataclass(frozen=True)
class _Encoder:
    info: ValueInfo
    reference: str  # how the script names it: `self.encoder`


@register_static_rule
class HeadInputDimMismatch(StaticRule):
    slug = "head-input-dim-mismatch"

    def check(self, module: ModuleModel) -> Iterator[Finding]:
        reported: set[int] = set()
        for linear, encoder in _fed_heads(module):
            hidden = hidden_size_of(encoder.info)
            in_features, _ = linear_features(module, linear)
            if hidden is None or not isinstance(in_features, int) or in_features == hidden or id(linear) in reported:
                continue
            reported.add(id(linear))
            yield self.finding(
                module,
                linear,
                f"{_head_name(module, linear)} (line {linear.lineno}) expects {in_features} input features "
                f"but is fed by `{encoder.reference}`, {checkpoint_name(encoder.info)} with hidden size {hidden} "
                f"(line {encoder.info.call.lineno if encoder.info.call else '?'}): the first forward pass fails "
                "with a shape mismatch",
                f"size the head from the model: nn.Linear({encoder.reference}.config.hidden_size, ...) "
                f"({hidden} for this checkpoint)",
            )


def _head_name(module: ModuleModel, linear: ast.Call) -> str:
    """"`head` = `nn.Linear(768, 2)`" when the layer is assigned to a name, else the layer's source."""
    layer = f"`{describe(module, linear)}`"
    name = assigned_to(module, linear)
    return f"`{name}` = {layer}" if name else layer


def _fed_heads(module: ModuleModel) -> Iterator[tuple[ast.Call, _Encoder]]:
    yield from _heads_applied_to_encoder_output(module)
    yield from _heads_assigned_onto_model(module)


def _heads_applied_to_encoder_output(module: ModuleModel) -> Iterator[tuple[ast.Call, _Encoder]]:
    for call in module.calls():
        if not call.args or not isinstance(call.func, (ast.Name, ast.Attribute)) or expr_key(call.func) is None:
            continue
        found = assigned_value(module, call.func, call)
        linear = first_linear(module, found[0]) if found else None
        if linear is None:
            continue
        encoder = _feeding_encoder(module, call.args[0], 0)
        if encoder is not None:
            yield linear, encoder


def _heads_assigned_onto_model(module: ModuleModel) -> Iterator[tuple[ast.Call, _Encoder]]:
    """``model.classifier = nn.Linear(768, k)``: the model's forward feeds it its hidden states."""
    for binding in module.all_bindings():
        statement = binding.node
        if "." not in binding.name or not isinstance(statement, ast.Assign):
            continue
        linear = first_linear(module, statement.value)
        for target in statement.targets:
            if linear is not None and isinstance(target, ast.Attribute):
                info = module.value_of(target.value, statement)
                if _is_pretrained_transformer(info):
                    yield linear, _Encoder(info, describe(module, target.value))


def _is_pretrained_transformer(info: ValueInfo) -> bool:
    return info.kind == "model" and info.via == "from_pretrained" and info.is_head is not None


def _feeding_encoder(module: ModuleModel, node: ast.AST, depth: int) -> _Encoder | None:
    """The pretrained encoder whose hidden-size-wide output ``node`` is, if any."""
    if depth > _MAX_DEPTH:
        return None
    if isinstance(node, (ast.Name, ast.Attribute)) and expr_key(node) is not None:
        found = assigned_value(module, node)
        if found is not None:
            return _feeding_encoder(module, found[0], depth + 1)
    if isinstance(node, ast.Attribute):
        return _feeding_encoder(module, node.value, depth + 1) if node.attr in _HIDDEN_FIELDS else None
    if isinstance(node, ast.Subscript):
        return _feeding_encoder(module, node.value, depth + 1)
    if isinstance(node, ast.BinOp) and not isinstance(node.op, ast.MatMult):
        return _feeding_encoder(module, node.left, depth + 1) or _feeding_encoder(module, node.right, depth + 1)
    if isinstance(node, ast.Call):
        return _encoder_of_call(module, node, depth)
    return None


def _encoder_of_call(module: ModuleModel, call: ast.Call, depth: int) -> _Encoder | None:
    func = call.func
    if isinstance(func, (ast.Name, ast.Attribute)):
        info = module.value_of(func, call)
        if info.kind == "model" and info.via == "from_pretrained" and info.is_head is False:
            return _Encoder(info, describe(module, func))
    if isinstance(func, ast.Attribute) and func.attr in _KEEPING_METHODS and module.qualified_name(func) is None:
        return _feeding_encoder(module, func.value, depth + 1)
    if call.args and _keeps_last_dimension(module, func, call):
        return _feeding_encoder(module, call.args[0], depth + 1)
    return None


def _keeps_last_dimension(module: ModuleModel, func: ast.expr, call: ast.Call) -> bool:
    if module.qualified_name(func) in _KEEPING_FUNCTIONS:
        return True
    if torch_nn_class(module, func) in SHAPE_KEEPING_LAYERS:  # nn.Dropout(0.1)(x)
        return True
    found = assigned_value(module, func, call) if expr_key(func) is not None else None
    return found is not None and torch_nn_class(module, found[0]) in SHAPE_KEEPING_LAYERS
