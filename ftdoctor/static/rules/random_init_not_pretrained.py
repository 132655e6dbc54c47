"""random-init-not-pretrained: a task model built from a config where pretrained weights were meant.

``Cls(config)`` and ``AutoModel*.from_config(config)`` give random weights. Reported for
task-head models, and for base encoders (``BertModel(config)``) built inside a custom ``nn.Module``, when the config comes from ``*.from_pretrained(checkpoint)``, or when it
is a default-sized config while the tokenizer is pretrained — and nothing loads weights
into the model later. Custom configs with explicit sizes are deliberate from-scratch
models; pretraining heads (masked/causal LM) are left alone.
"""

from __future__ import annotations

import ast
from typing import Iterator

from ftdoctor.findings import Finding
from ftdoctor.static.analysis_values import ValueInfo
from ftdoctor.static.model import ModuleModel, call_name, keyword
from ftdoctor.static.modelfacts import (calls_of_kind, checkpoint_name, definitions, describe,
                                        is_transformers_base_model, subject)
from ftdoctor.static.rule import StaticRule, register_static_rule

#: heads used for pretraining from scratch as often as for fine-tuning
_PRETRAINING_HEADS = ("ForMaskedLM", "ForCausalLM", "ForPreTraining", "LMHeadModel", "WithLMHead",
                      "ForConditionalGeneration", "ForSeq2SeqLM")
#: config keywords that size a model: a config built with them is a deliberate architecture
_SIZE_KEYWORDS = frozenset(
    {"hidden_size", "num_hidden_layers", "num_attention_heads", "intermediate_size", "vocab_size", "n_layer",
     "n_embd", "n_head", "d_model", "dim", "n_layers", "n_heads", "hidden_dim", "num_layers", "embedding_size",
     "max_position_embeddings", "encoder_layers", "decoder_layers"}
)
#: calls that put weights into an existing model
_WEIGHT_LOADERS = frozenset(
    {"load_state_dict", "load_model", "load_checkpoint_in_model", "load_checkpoint_and_dispatch", "load_state",
     "load_adapter", "load_sharded_checkpoint", "load_tf_weights", "from_pretrained"}
)


@register_static_rule
class RandomInitNotPretrained(StaticRule):
    slug = "random-init-not-pretrained"

    def check(self, module: ModuleModel) -> Iterator[Finding]:
        candidates = [
            (call, info) for call, info in calls_of_kind(module, "model")
            if _is_config_built_task_model(info) or _is_config_built_encoder_in_module(module, call, info)
        ]
        if not candidates or _loads_weights(module) or _loads_a_pretrained_model(module):
            return
        pretrained_tokenizer = _pretrained_tokenizer(module)
        for call, info in candidates:
            config = _config_argument(info)
            origin = _config_origin(module, config, call) if config is not None else None
            if origin is None:
                continue
            evidence = _evidence(module, origin, pretrained_tokenizer)
            if evidence is None:
                continue
            yield self.finding(
                module,
                call,
                f"{subject(module, call, 'the model')} (line {call.lineno}) is built with "
                f"`{describe(module, call.func)}(...)` from a config, so its weights are random, although "
                f"{evidence}; nothing loads pretrained weights into it",
                f"load the weights: {_from_pretrained_fix(module, info, origin, pretrained_tokenizer)}",
            )


def _is_config_built_task_model(info: ValueInfo) -> bool:
    name = info.class_name or ""
    return (
        info.via in ("from_config", "config")
        and bool(info.is_head)
        and not any(marker in name for marker in _PRETRAINING_HEADS)
    )


def _is_config_built_encoder_in_module(module: ModuleModel, call: ast.Call, info: ValueInfo) -> bool:
    """``self.bert = BertModel(config)`` in a custom ``nn.Module``: the encoder a head is put on, built random."""
    if info.via not in ("from_config", "config") or not is_transformers_base_model(info):
        return False
    scope = module.scope_of(call)
    owner = scope.class_scope if scope.is_method else None
    if owner is None:
        return False
    bases = module.class_bases(owner)
    return any(b.startswith("torch.nn") or b.endswith(".Module") for b in bases) and not any(
        b.endswith("PreTrainedModel") for b in bases  # from_pretrained on the subclass loads the weights
    )


def _config_argument(info: ValueInfo) -> ast.expr | None:
    return info.argument("config", 0)


def _config_origin(module: ModuleModel, config: ast.expr, at: ast.AST) -> ast.Call | None:
    """The call that built the config (``AutoConfig.from_pretrained(...)``, ``BertConfig(...)``), if visible."""
    for expression in definitions(module, config, at):
        if isinstance(expression, ast.Call):
            return expression if module.value_of(expression).kind == "config" else None
    return None


def _evidence(module: ModuleModel, origin: ast.Call, pretrained_tokenizer: tuple[int, str] | None) -> str | None:
    """Why a checkpoint was evidently meant, or None for a deliberate from-scratch model."""
    if call_name(origin) == "from_pretrained":
        checkpoint = checkpoint_name(module.value_of(origin))
        where = f' "{checkpoint}"' if checkpoint else ""
        return f"its config is loaded from the pretrained checkpoint{where} (line {origin.lineno})"
    if any(kw.arg in _SIZE_KEYWORDS or kw.arg is None for kw in origin.keywords) or origin.args:
        return None
    if pretrained_tokenizer is None:
        return None
    line, checkpoint = pretrained_tokenizer
    return (
        f"its config has the default (pretrained-sized) architecture and the tokenizer is loaded from the "
        f"pretrained checkpoint {checkpoint} (line {line})"
    )


def _loads_a_pretrained_model(module: ModuleModel) -> bool:
    """``from_pretrained`` elsewhere in the file: the config-built model is the deliberate other branch
    (``if args.model_name_or_path: ... else: from_config``) or a from-scratch student."""
    return any(info.via == "from_pretrained" for _call, info in calls_of_kind(module, "model"))


def _pretrained_tokenizer(module: ModuleModel) -> tuple[int, str] | None:
    for call, info in calls_of_kind(module, "tokenizer"):
        if info.via == "from_pretrained":
            name = checkpoint_name(info)
            return call.lineno, f'"{name}"' if name else f"`{describe(module, call.args[0]) if call.args else '?'}`"
    return None


def _loads_weights(module: ModuleModel) -> bool:
    """Anything that could put trained weights into a model (then a config-built model is deliberate)."""
    for call in module.calls():
        name = call_name(call)
        if name in _WEIGHT_LOADERS and name != "from_pretrained":
            return True
        if keyword(call, "resume_from_checkpoint") is not None:
            return True
    return False


def _from_pretrained_fix(
    module: ModuleModel, info: ValueInfo, origin: ast.Call, pretrained_tokenizer: tuple[int, str] | None
) -> str:
    owner = info.class_name or "the model class"
    if call_name(origin) == "from_pretrained":
        checkpoint_node = keyword(origin, "pretrained_model_name_or_path", 0)
        checkpoint = describe(module, checkpoint_node) if checkpoint_node is not None else "checkpoint"
        return f"{owner}.from_pretrained({checkpoint}, config=config) instead of building it from the config"
    checkpoint = pretrained_tokenizer[1].strip("`") if pretrained_tokenizer else "checkpoint"
    return f"{owner}.from_pretrained({checkpoint}, num_labels=...) instead of building it from a default config"
