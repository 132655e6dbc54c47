"""num-labels-mismatch: a classifier's number of outputs disagrees with the script's own label set.

Claims: ``num_labels=k`` on a model or config call, and the ``out_features`` of a Linear
assigned as a classification head. Evidence: ``id2label``/``label2id`` in the same call, or
— when all of it agrees on one count — label lists (``labels = ["neg", "pos", "neutral"]``),
``id2label``/``label2id`` maps and ``ClassLabel(names=...)``/``ClassLabel(num_classes=...)``
anywhere in the file.
"""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass
from typing import Iterator

from ftdoctor.findings import Finding
from ftdoctor.static.constants import producers, resolve_constant
from ftdoctor.static.model import ModuleModel, call_name, keyword
from ftdoctor.static.modelfacts import (
    describe,
    first_linear,
    linear_features,
    nodes_of_type,
    resolved_int,
    subject,
    torch_nn_class,
)
from ftdoctor.static.rule import StaticRule, register_static_rule

_LABEL_LIST_NAME = re.compile(
    r"^(all_)?(labels?|label_names?|label_list|class_names|classes|class_labels|categories|category_names|"
    r"target_names|label_vocab|intents|emotions|sentiments|topics)$",
    re.I,
)
_LABEL_MAP_NAME = re.compile(r"(id2label|label2id|id_to_label|label_to_id|idx2label|label2idx)$", re.I)
_HEAD_ATTRIBUTE = re.compile(r"classifier|head|^score$|^out_proj$|^output_layer$|^fc_out$", re.I)
_LABEL_MAP_KEYWORDS = ("id2label", "label2id")
_MAX_DEPTH = 6


@dataclass(frozen=True)
class _Evidence:
    count: int
    node: ast.AST
    what: str  # "`labels`", "`id2label=id2label`", "`ClassLabel(names=[...])`"
    derived: str  # the expression num_labels should be: "len(labels)"


@register_static_rule
class NumLabelsMismatch(StaticRule):
    slug = "num-labels-mismatch"

    def check(self, module: ModuleModel) -> Iterator[Finding]:
        global_evidence = _file_evidence(module)
        counts = {e.count for e in global_evidence}
        for claimed, node, owner in _claims(module):
            local = _call_evidence(module, owner) if isinstance(owner, ast.Call) else []
            contradicting = next((e for e in local if e.count != claimed), None)
            if contradicting is None and not local and len(counts) == 1 and _contradicts(claimed, next(iter(counts))):
                contradicting = global_evidence[0]
            if contradicting is None:
                continue
            yield self.finding(
                module,
                node,
                f"{_describe_claim(module, node, owner, claimed)} but {contradicting.what} (line "
                f"{contradicting.node.lineno}) lists {contradicting.count} classes",  # type: ignore[attr-defined]
                f"derive the count from the labels instead of typing it: num_labels={contradicting.derived}",
            )


def _contradicts(claimed: int, count: int) -> bool:
    # one output for two classes is a legitimate binary (sigmoid/BCE) head
    return claimed != count and not (claimed == 1 and count == 2)


def _describe_claim(module: ModuleModel, node: ast.AST, owner: ast.AST, claimed: int) -> str:
    if isinstance(node, ast.Call):  # a Linear head
        return f"the head `{describe(module, node)}` (line {node.lineno}) has {claimed} outputs"
    who = subject(module, owner, "the model") if isinstance(owner, ast.Call) else "the model"  # type: ignore[arg-type]
    return f"{who} is built with num_labels={claimed} (line {node.lineno})"  # type: ignore[attr-defined]


def _claims(module: ModuleModel) -> Iterator[tuple[int, ast.AST, ast.AST]]:
    """``(count, node to report, owning call or assignment)`` for each stated number of outputs."""
    for call in module.calls():
        num_labels = keyword(call, "num_labels")
        if num_labels is None:
            continue
        count = resolved_int(module, num_labels)
        if count is not None and module.value_of(call).kind in ("model", "config"):
            yield count, num_labels, call
    for statement in nodes_of_type(module, ast.Assign):
        if not isinstance(statement, ast.Assign) or len(statement.targets) != 1:
            continue
        target = statement.targets[0]
        if isinstance(target, ast.Attribute) and _HEAD_ATTRIBUTE.search(target.attr):
            linear = _last_linear(module, statement.value)
            out_features = linear_features(module, linear)[1] if linear is not None else None
            if isinstance(out_features, int) and not isinstance(out_features, bool) and out_features >= 2:
                yield out_features, linear, statement  # type: ignore[misc]


def _last_linear(module: ModuleModel, node: ast.expr) -> ast.Call | None:
    """The Linear that produces a head's output: the layer itself or the last one of a Sequential."""
    if torch_nn_class(module, node) == "Sequential" and isinstance(node, ast.Call):
        linears = [element for element in node.args if torch_nn_class(module, element) == "Linear"]
        return linears[-1] if linears else None
    return first_linear(module, node)


def _call_evidence(module: ModuleModel, call: ast.Call) -> list[_Evidence]:
    found = []
    for name in _LABEL_MAP_KEYWORDS:
        value = keyword(call, name)
        count = _collection_size(module, value, 0) if value is not None else None
        if count is not None:
            text = describe(module, value, 40)  # type: ignore[arg-type]
            derived = f"len({text})" if isinstance(value, ast.Name) else str(count)
            found.append(_Evidence(count, value, f"`{name}={text}`", derived))  # type: ignore[arg-type]
    return found


def _file_evidence(module: ModuleModel) -> list[_Evidence]:
    found: list[_Evidence] = []
    for statement in nodes_of_type(module, ast.Assign, ast.Call):
        if isinstance(statement, ast.Assign) and len(statement.targets) == 1:
            name = _target_name(statement.targets[0])
            count = _named_collection_size(module, name, statement.value) if name else None
            if count is not None:
                found.append(_Evidence(count, statement, f"`{name}`", f"len({name})"))
        elif isinstance(statement, ast.Call) and call_name(statement) == "ClassLabel":
            count = _class_label_size(module, statement)
            if count is not None:
                found.append(_Evidence(count, statement, "`ClassLabel(...)`", f"{count} (the ClassLabel's num_classes)"))
    return found


def _target_name(target: ast.expr) -> str | None:
    """``labels`` for ``labels = ...`` and ``self.labels = ...``."""
    if isinstance(target, ast.Name):
        return target.id
    return target.attr if isinstance(target, ast.Attribute) else None


def _named_collection_size(module: ModuleModel, name: str, value: ast.expr) -> int | None:
    if _LABEL_LIST_NAME.match(name):
        return _string_list_size(value)
    if _LABEL_MAP_NAME.search(name):
        return _collection_size(module, value, 0)
    return None


def _string_list_size(node: ast.expr) -> int | None:
    """The length of a literal list/tuple of distinct strings (a label set, not a data column)."""
    if not isinstance(node, (ast.List, ast.Tuple)) or len(node.elts) < 2:
        return None
    values = [e.value for e in node.elts if isinstance(e, ast.Constant) and isinstance(e.value, str)]
    return len(values) if len(values) == len(node.elts) and len(set(values)) == len(values) else None


def _class_label_size(module: ModuleModel, call: ast.Call) -> int | None:
    names = keyword(call, "names")
    if names is not None:
        return _collection_size(module, names, 0)
    return resolved_int(module, keyword(call, "num_classes", 0))


def _collection_size(module: ModuleModel, node: ast.expr, depth: int) -> int | None:
    """How many entries a label list or label map has, when the source shows it."""
    if depth > _MAX_DEPTH:
        return None
    if isinstance(node, (ast.List, ast.Tuple, ast.Set)):
        return None if any(isinstance(e, ast.Starred) for e in node.elts) else len(node.elts)
    if isinstance(node, ast.Dict):
        return None if any(k is None for k in node.keys) else len(node.keys)
    if isinstance(node, (ast.DictComp, ast.ListComp)):
        return _comprehension_size(module, node, depth)
    if isinstance(node, ast.Call):
        return _call_size(module, node, depth)
    if isinstance(node, (ast.Name, ast.Attribute, ast.Subscript)):
        sizes = {_collection_size(module, p, depth + 1) for p in producers(module, node) if p is not node}
        return sizes.pop() if len(sizes) == 1 else None
    return None


def _comprehension_size(module: ModuleModel, node: ast.DictComp | ast.ListComp, depth: int) -> int | None:
    if len(node.generators) != 1 or node.generators[0].ifs:
        return None
    return _iterable_size(module, node.generators[0].iter, depth)


def _iterable_size(module: ModuleModel, node: ast.expr, depth: int) -> int | None:
    """``enumerate(x)``, ``x.items()``, ``range(n)``, ``zip(x, y)`` and ``x`` itself."""
    if isinstance(node, ast.Call):
        name = call_name(node)
        if name in ("enumerate", "sorted", "list", "tuple", "reversed") and node.args:
            return _collection_size(module, node.args[0], depth + 1)
        if name in ("items", "keys", "values") and isinstance(node.func, ast.Attribute):
            return _collection_size(module, node.func.value, depth + 1)
        if name == "range" and len(node.args) == 1:
            return resolved_int(module, node.args[0])
        return None
    return _collection_size(module, node, depth + 1)


def _call_size(module: ModuleModel, call: ast.Call, depth: int) -> int | None:
    name = call_name(call)
    if name in ("dict", "list", "tuple", "sorted") and len(call.args) == 1 and not call.keywords:
        return _iterable_size(module, call.args[0], depth)
    if name == "ClassLabel":
        return _class_label_size(module, call)
    value = resolve_constant(module, call)
    return len(value) if isinstance(value, (list, tuple, dict)) else None
