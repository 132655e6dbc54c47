"""head-not-trained: PEFT wraps a classification model without telling it the task, so the new head stays frozen.

``get_peft_model`` freezes every parameter that is not an adapter. With ``task_type="SEQ_CLS"``
(``TOKEN_CLS``, ``QUESTION_ANS``) peft adds the task head (``classifier``/``score``/``qa_outputs``)
to ``modules_to_save`` and trains it; without a task type or ``modules_to_save``, the freshly
initialised head stays frozen at random weights. Reported only when the model is proven to be a
transformers task model with a new head (``num_labels``/label maps passed, or a known pretraining
checkpoint), the config is a peft config built in this file without ``task_type``,
``modules_to_save`` or ``**kwargs``, and the file never re-enables gradients by hand.
"""

from __future__ import annotations

import ast
import re
from typing import Iterator

from ftdoctor.findings import Finding
from ftdoctor.static.analysis_values import ValueInfo
from ftdoctor.static.constants import producers
from ftdoctor.static.model import ModuleModel, call_name, keyword
from ftdoctor.static.modelfacts import describe, has_new_head
from ftdoctor.static.rule import StaticRule, register_static_rule

#: task-model class suffix -> the peft task type that trains its head
_TASKS = {"ForSequenceClassification": "SEQ_CLS", "ForTokenClassification": "TOKEN_CLS",
          "ForQuestionAnswering": "QUESTION_ANS"}
_TASK_CLASS = re.compile(r"(" + "|".join(_TASKS) + r")$")
#: config fields that make peft train the head
_HEAD_FIELDS = ("task_type", "modules_to_save")


@register_static_rule
class HeadNotTrained(StaticRule):
    slug = "head-not-trained"

    def check(self, module: ModuleModel) -> Iterator[Finding]:
        if _gradients_reenabled(module):
            return
        for call in module.calls():
            if call_name(call) != "get_peft_model" or not (module.qualified_name(call.func) or "").startswith("peft"):
                continue
            model_expr, config_expr = keyword(call, "model", 0), keyword(call, "peft_config", 1)
            if model_expr is None or config_expr is None:
                continue
            model = module.value_of(model_expr)
            task = _task_of(module, model)
            if task is None:
                continue
            config = _peft_config_call(module, config_expr)
            if config is None:
                continue
            yield self.finding(
                module, call,
                f"`{describe(module, model_expr)}` ({model.class_name}) has a newly initialised head, but "
                f"`{describe(module, config.func)}` (line {config.lineno}) has no task_type or modules_to_save, so "
                "get_peft_model freezes the head with everything else: the classifier stays at its random weights",
                f'pass task_type="{task}" (TaskType.{task}) to {describe(module, config.func)}, or '
                'modules_to_save=["classifier"] (the head\'s module name: "score" for decoder models)',
            )


def _task_of(module: ModuleModel, model: ValueInfo) -> str | None:
    """The peft task type of a transformers task model with a new head (built here, or by another project module
    whose summary says so)."""
    if model.kind == "model" and model.via == "project":
        returned = module.project.returned(model.qualname) if module.project is not None else None
        if returned is None or not returned.library or not returned.new_head:
            return None
    elif model.kind != "model" or model.via not in ("from_pretrained", "from_config", "config"):
        return None
    elif not (model.qualname or "").startswith("transformers.") or model.local_class or not has_new_head(model):
        return None
    match = _TASK_CLASS.search(model.class_name or "")
    return _TASKS[match.group(1)] if match else None


def _peft_config_call(module: ModuleModel, config: ast.expr) -> ast.Call | None:
    """The peft ``*Config(...)`` call the config comes from, when it sets neither task_type nor modules_to_save."""
    sources = producers(module, config)
    if len(sources) != 1 or not isinstance(sources[0], ast.Call):
        return None
    call = sources[0]
    name = module.qualified_name(call.func) or ""
    if not (name.startswith("peft.") and name.endswith("Config")):
        return None
    if any(kw.arg is None or kw.arg in _HEAD_FIELDS for kw in call.keywords):
        return None
    return call


def _gradients_reenabled(module: ModuleModel) -> bool:
    """``p.requires_grad = True``, ``requires_grad_()`` or a ``.task_type``/``.modules_to_save`` set later:
    the author manages the trainable set by hand, which this rule cannot follow."""
    for node in module.nodes(ast.Attribute):
        assert isinstance(node, ast.Attribute)
        if isinstance(node.ctx, ast.Store) and node.attr in ("requires_grad", *_HEAD_FIELDS):
            return True
    for call in module.calls():
        if call_name(call) == "requires_grad_" and not (
            call.args and isinstance(call.args[0], ast.Constant) and call.args[0].value is False
        ):
            return True
        if call_name(call) == "set_trainable" or call_name(call) == "enable_adapters":
            return True
    return False
