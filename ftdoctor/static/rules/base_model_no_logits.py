"""base-model-no-logits: ``.logits``/``.loss`` read from, or ``labels=`` passed to, a base model.

A base model (``AutoModel``, ``BertModel``...) returns hidden states only; it has no task
head, computes no logits and ignores ``labels``.
"""

from __future__ import annotations

import ast
from typing import Iterator

from ftdoctor.findings import Finding
from ftdoctor.static.analysis_values import ValueInfo
from ftdoctor.static.model import ModuleModel
from ftdoctor.static.modelfacts import definitions, describe, is_transformers_base_model, nodes_of_type
from ftdoctor.static.rule import StaticRule, register_static_rule

_HEAD_OUTPUTS = ("logits", "loss")


@register_static_rule
class BaseModelNoLogits(StaticRule):
    slug = "base-model-no-logits"

    def check(self, module: ModuleModel) -> Iterator[Finding]:
        for call in module.calls():
            labels = next((kw for kw in call.keywords if kw.arg == "labels"), None)
            if labels is None:
                continue
            model = _called_base_model(module, call)
            if model is not None:
                name, info = model
                yield self.finding(
                    module,
                    labels.value,
                    f"`labels=` is passed to `{name}`, a base {info.class_name} (line {_line(info)}) without a "
                    "task head; it ignores the labels and computes no loss",
                    _fix(info),
                )
        for node in nodes_of_type(module, ast.Attribute):
            if isinstance(node, ast.Attribute) and node.attr in _HEAD_OUTPUTS and isinstance(node.ctx, ast.Load):
                found = _base_model_output(module, node.value)
                if found is not None:
                    name, info = found
                    yield self.finding(
                        module,
                        node,
                        f"`{describe(module, node)}` reads .{node.attr} from the output of `{name}`, a base "
                        f"{info.class_name} (line {_line(info)}) without a task head; base models return "
                        "hidden states only, so this raises AttributeError",
                        _fix(info),
                    )


def _called_base_model(module: ModuleModel, call: ast.Call) -> tuple[str, ValueInfo] | None:
    """The base model a call runs (``model(...)``, ``model.forward(...)``, ``self.bert(...)``)."""
    func = call.func
    if isinstance(func, ast.Attribute) and func.attr == "forward":
        func = func.value
    if not isinstance(func, (ast.Name, ast.Attribute)):
        return None
    info = module.value_of(func, call)
    if is_transformers_base_model(info):
        return describe(module, func), info
    return None


def _base_model_output(module: ModuleModel, node: ast.expr) -> tuple[str, ValueInfo] | None:
    """When ``node`` holds the direct output of a base model call (``outputs = model(...)``)."""
    for expression in definitions(module, node):
        if isinstance(expression, ast.Call):
            return _called_base_model(module, expression)
    return None


def _line(info: ValueInfo) -> int:
    return info.call.lineno if info.call is not None else 0


def _fix(info: ValueInfo) -> str:
    task_class = "AutoModelForSequenceClassification"
    return (
        f"load the model with a task head ({task_class}.from_pretrained(checkpoint, num_labels=k)), or keep "
        f"the {info.class_name} and apply your own head to outputs.last_hidden_state[:, 0] or outputs.pooler_output, "
        "computing the loss yourself"
    )
