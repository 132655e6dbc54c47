"""metric-args-swapped: a scikit-learn metric called as ``(y_pred, y_true)``.

scikit-learn metrics take ``y_true`` first. For the metrics whose value depends on the order
(precision and recall trade places, the confusion matrix is transposed, weighted averages use the
wrong supports) the swap goes unnoticed. Reported only when the order is proven by the code: the
first argument is computed from model outputs (a forward call, ``.logits``, ``.predictions``,
``.predict(...)``) and the second from the data (a DataLoader batch, a dataset column,
``.label_ids``), through names, list accumulation (``preds.extend(...)``) and ``torch.max`` unpacking.
Names alone never produce a finding; a name that says otherwise (``y_true`` first) suppresses one.
Keyword calls (``y_true=..., y_pred=...``) are always fine.
"""

from __future__ import annotations

import ast
import re
from typing import Iterator

from ftdoctor.findings import Finding
from ftdoctor.static.constants import producers, resolve_constant
from ftdoctor.static.model import Binding, ModuleModel, call_name, expr_key, keyword
from ftdoctor.static.modelfacts import describe, iterated_expression
from ftdoctor.static.rule import StaticRule, register_static_rule

#: metrics whose result changes when y_true and y_pred trade places, and what the swap does
ORDER_SENSITIVE: dict[str, str] = {
    "precision_score": "this computes recall, not precision",
    "recall_score": "this computes precision, not recall",
    "precision_recall_fscore_support": "precision and recall trade places, and support counts predictions",
    "classification_report": "precision and recall trade places, and support counts predictions",
    "confusion_matrix": "rows become predictions and columns labels (the matrix is transposed)",
    "balanced_accuracy_score": "this averages precision per class instead of recall",
    "roc_auc_score": "the scores are taken for labels and the labels for scores",
    "average_precision_score": "the scores are taken for labels and the labels for scores",
    "r2_score": "the variance is taken from the predictions instead of the targets",
}
#: metrics that are order-sensitive only with some averaging
_WEIGHTED_ONLY = {"f1_score": "with average=\"weighted\" the per-class weights become prediction counts"}

_PREDICTION_ATTRIBUTES = frozenset({"logits", "predictions", "start_logits", "end_logits"})
_PREDICTING_METHODS = frozenset({"predict", "predict_proba", "decision_function", "generate"})
_LABEL_ATTRIBUTES = frozenset({"label_ids"})
_SAYS_TRUE = re.compile(r"true|gold|label|target|truth|ref", re.I)
_SAYS_PRED = re.compile(r"pred|hyp|out|logit|score|prob", re.I)
_MAX_DEPTH = 8

PRED, DATA, UNKNOWN = "prediction", "data", "unknown"


@register_static_rule
class MetricArgsSwapped(StaticRule):
    slug = "metric-args-swapped"

    def check(self, module: ModuleModel) -> Iterator[Finding]:
        for call in module.calls():
            effect = _order_effect(module, call)
            if effect is None or len(call.args) < 2 or any(isinstance(a, ast.Starred) for a in call.args[:2]):
                continue
            first, second = call.args[0], call.args[1]
            if _SAYS_TRUE.search(_text(first)) or _SAYS_PRED.search(_text(second)):
                continue  # the names say the order is intended
            if _origins(module, first, 0) != {PRED} or _origins(module, second, 0) != {DATA}:
                continue
            name = call_name(call)
            yield self.finding(
                module, call,
                f"{name}() takes y_true first, but `{describe(module, first)}` holds model predictions and "
                f"`{describe(module, second)}` the labels: {effect}",
                f"swap the arguments, or pass them by keyword: {name}(y_true={describe(module, second)}, "
                f"y_pred={describe(module, first)}, ...)",
            )


def _order_effect(module: ModuleModel, call: ast.Call) -> str | None:
    qualified = module.qualified_name(call.func) or ""
    if not qualified.startswith("sklearn.metrics"):
        return None
    last = qualified.rsplit(".", 1)[-1]
    if last in ORDER_SENSITIVE:
        return ORDER_SENSITIVE[last]
    if last in _WEIGHTED_ONLY and resolve_constant(module, keyword(call, "average")) == "weighted":
        return _WEIGHTED_ONLY[last]
    return None


def _text(node: ast.AST) -> str:
    key = expr_key(node)
    if key is not None:
        return key
    return " ".join(n.id for n in ast.walk(node) if isinstance(n, ast.Name))


def _origins(module: ModuleModel, node: ast.AST, depth: int) -> set[str]:
    """Where a value comes from: model predictions, the data, or unknown (any mix is reported as is)."""
    if depth > _MAX_DEPTH:
        return {UNKNOWN}
    if isinstance(node, ast.Attribute):
        if node.attr in _PREDICTION_ATTRIBUTES:
            return {PRED}
        if node.attr in _LABEL_ATTRIBUTES:
            return {DATA}
        if expr_key(node) is not None and module.binding_of(node) is not None:
            return _binding_origins(module, module.binding_of(node), depth + 1)  # type: ignore[arg-type]
        return _origins(module, node.value, depth + 1)  # .data, .T, ...
    if isinstance(node, ast.Subscript):
        return _subscript_origins(module, node, depth)
    if isinstance(node, ast.Call):
        return _call_origins(module, node, depth)
    if isinstance(node, ast.Name):
        binding = module.binding_of(node)
        return _binding_origins(module, binding, depth + 1) if binding is not None else {UNKNOWN}
    if isinstance(node, (ast.Compare, ast.BinOp, ast.UnaryOp)):
        parts = [node.left, *node.comparators] if isinstance(node, ast.Compare) else (
            [node.left, node.right] if isinstance(node, ast.BinOp) else [node.operand])
        found = set().union(*(_origins(module, p, depth + 1) for p in parts if not isinstance(p, ast.Constant)))
        return found or {UNKNOWN}
    if isinstance(node, (ast.ListComp, ast.GeneratorExp)):
        return _origins(module, node.elt, depth + 1)
    return {UNKNOWN}


def _subscript_origins(module: ModuleModel, node: ast.Subscript, depth: int) -> set[str]:
    base = module.value_of(node.value)
    if base.kind in ("batch", "dataset"):
        return {DATA}
    if isinstance(node.slice, ast.Constant) and node.slice.value in _PREDICTION_ATTRIBUTES:
        return {PRED}
    if isinstance(node.slice, ast.Constant) and node.slice.value in _LABEL_ATTRIBUTES:
        return {DATA}
    return _origins(module, node.value, depth + 1)


def _call_origins(module: ModuleModel, call: ast.Call, depth: int) -> set[str]:
    name = call_name(call)
    if name in _PREDICTING_METHODS:
        return {PRED}
    func = call.func
    if isinstance(func, (ast.Name, ast.Attribute)) and module.value_of(func).kind == "model":
        return {PRED}  # a forward pass
    if isinstance(func, ast.Attribute) and module.qualified_name(func) is None:
        return _origins(module, func.value, depth + 1)  # x.argmax(-1).cpu().numpy(), x.tolist()
    arguments = [a for a in call.args if not isinstance(a, ast.Starred)]
    if arguments:  # np.argmax(x, 1), np.concatenate(preds), torch.cat(...), list(...)
        return _origins(module, arguments[0], depth + 1)
    return {UNKNOWN}


def _binding_origins(module: ModuleModel, binding: Binding, depth: int) -> set[str]:
    if depth > _MAX_DEPTH:
        return {UNKNOWN}
    if binding.kind == "batch":
        return {DATA}
    if binding.source == "for":
        return _loop_target_origins(module, binding, depth)
    if binding.source == "unpack":
        return _unpacked_origins(module, binding, depth)
    if binding.source == "param":
        return _param_origins(module, binding, depth)
    if binding.source == "augassign":  # preds += x: what it held before, and x
        earlier = [b for b in binding.scope.bindings.get(binding.name, []) if b.position < binding.position
                   and b.source != "augassign"]
        added = _origins(module, binding.value, depth + 1) if binding.value is not None else {UNKNOWN}
        return added | (_binding_origins(module, earlier[-1], depth + 1) if earlier else {UNKNOWN})
    if binding.source not in ("assign", "annassign") or binding.value is None:
        return {UNKNOWN}
    value = binding.value
    assert value is not None
    if isinstance(value, ast.List) and not value.elts:
        return _accumulated_origins(module, binding, depth)
    return _origins(module, value, depth + 1)


def _unpacked_origins(module: ModuleModel, binding: Binding, depth: int) -> set[str]:
    value = binding.value
    # _, preds = torch.max(outputs, 1) / outputs.max(dim=1): element 1 holds the argmax positions
    if isinstance(value, ast.Call) and call_name(value) in ("max", "topk") and binding.index == 1:
        if module.qualified_name(value.func) is not None:
            inner = value.args[0] if value.args else None
        else:
            inner = value.func.value if isinstance(value.func, ast.Attribute) else None
        return _origins(module, inner, depth + 1) if inner is not None else {UNKNOWN}
    # logits, labels = eval_pred, in a function given to Trainer(compute_metrics=...): an EvalPrediction
    source = module.binding_of(value) if isinstance(value, ast.Name) else None
    if source is not None and source.source == "param" and binding.index in (0, 1) and _is_compute_metrics(module, source):
        return {PRED} if binding.index == 0 else {DATA}
    return {UNKNOWN}


def _is_compute_metrics(module: ModuleModel, parameter: Binding) -> bool:
    """The first parameter of a function passed as ``compute_metrics=`` (it receives an EvalPrediction)."""
    function = parameter.scope
    if function.kind != "function" or not function.params or function.params[0] != parameter.name:
        return False
    return any(
        kw.arg == "compute_metrics" and module.qualified_name(kw.value) == function.name
        for node in module.nodes(ast.keyword) for kw in [node]  # type: ignore[list-item]
    )


def _param_origins(module: ModuleModel, binding: Binding, depth: int) -> set[str]:
    from ftdoctor.static.analysis_values import argument_for

    function = binding.scope
    sites = module.call_sites(function) if function.kind == "function" else []
    found: set[str] = set()
    for site in sites[:8]:
        argument = argument_for(function, binding.name, site)
        found |= _origins(module, argument, depth + 1) if argument is not None else {UNKNOWN}
    return found or {UNKNOWN}


def _accumulated_origins(module: ModuleModel, binding: Binding, depth: int) -> set[str]:
    """``preds = []`` then ``preds.extend(x)`` / ``preds.append(x)`` / ``preds += x`` in the same scope."""
    found: set[str] = set()
    scope = binding.scope
    for call in scope.calls:
        func = call.func
        if (isinstance(func, ast.Attribute) and func.attr in ("append", "extend") and expr_key(func.value) == binding.name
                and len(call.args) == 1 and module.binding_of(func.value) is binding):
            found |= _origins(module, call.args[0], depth + 1)
    for later in scope.bindings.get(binding.name, []):
        if later.source == "augassign" and later.value is not None:
            found |= _origins(module, later.value, depth + 1)
    return found or {UNKNOWN}


def _loop_target_origins(module: ModuleModel, binding: Binding, depth: int) -> set[str]:
    """``for input_ids, mask, labels in loader``: any element of a DataLoader's batches is data."""
    iterable = binding.value
    if iterable is None:
        return {UNKNOWN}
    if isinstance(iterable, ast.Call) and call_name(iterable) == "enumerate" and binding.index == 0:
        return {UNKNOWN}  # the counter
    inner = iterated_expression(module, iterable)
    return {DATA} if module.value_of(inner).kind == "dataloader" else {UNKNOWN}
