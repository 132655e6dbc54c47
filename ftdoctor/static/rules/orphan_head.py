"""orphan-head: a layer attached to a pretrained model that nothing ever calls.

``model.classifier = nn.Linear(768, 2)`` on a ``BertModel`` registers parameters, but
``BertModel.forward`` never uses a ``classifier`` attribute. Silent when the script calls the
layer itself anywhere, or when the attribute replaces a module the model's forward uses
(``classifier`` on a ``*ForSequenceClassification``).
"""

from __future__ import annotations

import ast
from typing import Iterator

from ftdoctor.findings import Finding
from ftdoctor.static.model import ModuleModel
from ftdoctor.static.modelfacts import (
    describe,
    is_layer_call,
    is_transformers_base_model,
    is_transformers_head_model,
    nodes_of_type,
)
from ftdoctor.static.rule import StaticRule, register_static_rule

#: submodules a transformers base model's forward uses (replacing one is not an orphan)
BASE_MODEL_SUBMODULES = frozenset(
    {"embeddings", "encoder", "pooler", "transformer", "layer", "layers", "embed_tokens", "norm",
     "final_layer_norm", "decoder", "shared", "wte", "wpe", "h", "ln_f", "rotary_emb", "embed_positions",
     "layernorm", "post_layernorm", "dropout", "emb_dropout", "rel_embeddings", "embeddings_project"}
)
#: submodules task-head models' forwards use, across architectures
HEAD_MODEL_SUBMODULES = BASE_MODEL_SUBMODULES | frozenset(
    {"classifier", "pre_classifier", "score", "qa_outputs", "cls", "lm_head", "sequence_summary", "logits_proj",
     "vocab_projector", "vocab_transform", "vocab_layer_norm", "predictions", "generator_predictions",
     "discriminator_predictions", "classification_head", "out_proj", "bert", "roberta", "distilbert", "albert",
     "electra", "deberta", "model", "xlnet", "longformer", "mpnet", "camembert", "xlm", "funnel", "ernie",
     "mobilebert", "squeezebert", "convbert", "rembert", "nystromformer", "bart", "t5", "gpt2", "esm"}
)
#: attribute reads on a layer that do not run it (``model.classifier.parameters()``)
_NOT_APPLYING = frozenset(
    {"parameters", "named_parameters", "weight", "bias", "to", "cuda", "cpu", "train", "eval", "requires_grad_",
     "apply", "state_dict", "load_state_dict", "zero_grad", "half", "float", "register_forward_hook"}
)


@register_static_rule
class OrphanHead(StaticRule):
    slug = "orphan-head"

    def check(self, module: ModuleModel) -> Iterator[Finding]:
        for statement in _attribute_assignments(module):
            for target in statement.targets:
                if not isinstance(target, ast.Attribute) or not is_layer_call(module, statement.value):
                    continue
                info = module.value_of(target.value, statement)
                if not _is_orphan(info, target.attr) or _is_applied(module, target.attr):
                    continue
                owner = describe(module, target.value)
                line = info.call.lineno if info.call is not None else statement.lineno
                yield self.finding(
                    module,
                    target,
                    f"`{describe(module, target)}` (line {statement.lineno}) attaches a new layer to `{owner}` "
                    f"({info.class_name}, line {line}), whose forward never calls it, and nothing in this file "
                    "calls it either: it gets no gradient and makes no prediction",
                    "load a model with the head built in (AutoModelForSequenceClassification.from_pretrained("
                    f"checkpoint, num_labels=k)), or call the layer yourself: "
                    f"logits = {describe(module, target)}(outputs.pooler_output)",
                )


def _attribute_assignments(module: ModuleModel) -> Iterator[ast.Assign]:
    """``x.attr = <call>`` statements, from the bindings the model recorded."""
    seen: set[int] = set()
    for binding in module.all_bindings():
        node = binding.node
        if "." in binding.name and isinstance(node, ast.Assign) and id(node) not in seen:
            seen.add(id(node))
            if isinstance(node.value, ast.Call):
                yield node


def _is_orphan(info: object, attribute: str) -> bool:
    if is_transformers_base_model(info):  # type: ignore[arg-type]
        return attribute not in BASE_MODEL_SUBMODULES
    if is_transformers_head_model(info):  # type: ignore[arg-type]
        return attribute not in HEAD_MODEL_SUBMODULES
    return False


def _is_applied(module: ModuleModel, attribute: str) -> bool:
    """Anything in the file calls ``<anything>.attribute(...)`` or hands the layer on (``head = m.attr``)."""
    for node in nodes_of_type(module, ast.Attribute, ast.Constant):
        if isinstance(node, ast.Attribute) and node.attr == attribute and isinstance(node.ctx, ast.Load):
            parent = module.parent(node)
            if isinstance(parent, ast.Attribute) and parent.attr in _NOT_APPLYING:
                continue
            return True
        if isinstance(node, ast.Constant) and node.value == attribute:  # getattr(model, "classifier")
            return True
    return False
