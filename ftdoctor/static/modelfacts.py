"""Small facts about models, layers and data that the model/config rules share.

Everything here is a thin query over the semantic model (:mod:`ftdoctor.static.model`):
which models are base models without a task head, which calls build ``torch.nn``
layers, what expression a name was last assigned, what checkpoint a model came from.
"""

from __future__ import annotations

import ast
import weakref
from typing import TYPE_CHECKING, Iterator

from ftdoctor.static import checkpoints
from ftdoctor.static.constants import UNKNOWN, producers, resolve_constant
from ftdoctor.static.model import Binding, call_name, expr_key, keyword

if TYPE_CHECKING:
    from ftdoctor.static.analysis_values import ValueInfo
    from ftdoctor.static.model import ModuleModel

#: transformers classes that return hidden states only: no ``logits``, no ``loss``, no task head.
#: An explicit list: ``EncoderDecoderModel`` or ``MarianMTModel`` end in "Model" but do have heads.
BASE_MODEL_CLASSES = frozenset(
    {
        "AutoModel", "BertModel", "RobertaModel", "DistilBertModel", "AlbertModel", "ElectraModel",
        "DebertaModel", "DebertaV2Model", "XLMRobertaModel", "MPNetModel", "CamembertModel",
        "LongformerModel", "BigBirdModel", "ModernBertModel", "ErnieModel", "MobileBertModel",
        "SqueezeBertModel", "FunnelModel", "XLNetModel", "GPT2Model", "LlamaModel", "MistralModel",
        "T5Model", "T5EncoderModel", "BartModel", "MT5Model", "OPTModel", "GPTNeoModel", "GPTNeoXModel",
        "Qwen2Model", "GemmaModel", "Gemma2Model", "PhiModel", "Phi3Model", "FalconModel", "BloomModel",
        "ViTModel", "CLIPTextModel", "CLIPVisionModel", "WhisperModel", "Wav2Vec2Model", "HubertModel",
        "XLMModel", "FlaubertModel", "ConvBertModel", "RemBertModel", "NystromformerModel",
    }
)

#: base models whose output always starts ``(last_hidden_state, pooler_output)``, as their tuple did
#: (``BaseModelOutputWithPooling...``); other base models (DistilBERT, ELECTRA, DeBERTa) have no pooler.
POOLED_BASE_MODELS = frozenset(
    {
        "BertModel", "RobertaModel", "XLMRobertaModel", "CamembertModel", "AlbertModel", "ErnieModel",
        "MPNetModel", "MobileBertModel", "LongformerModel", "BigBirdModel",
    }
)
#: task-head class endings -> the fields after the loss, in their output class's order
#: (``SequenceClassifierOutput(loss, logits, ...)``, ``QuestionAnsweringModelOutput(loss, start_logits, ...)``)
HEAD_OUTPUT_FIELDS = {
    "ForSequenceClassification": ("logits",), "ForTokenClassification": ("logits",),
    "ForMultipleChoice": ("logits",), "ForMaskedLM": ("logits",), "ForCausalLM": ("logits",),
    "ForNextSentencePrediction": ("logits",), "ForQuestionAnswering": ("start_logits", "end_logits"),
}
#: the keywords a head computes its loss from (the loss is the first field only when it is computed)
_LOSS_KEYWORDS = {"ForQuestionAnswering": ("start_positions", "end_positions")}

#: ways a model gets pretrained weights or random weights from a config
_LOADED_VIA = ("from_pretrained", "from_config", "config", "peft")


def is_transformers_base_model(info: "ValueInfo") -> bool:
    """True for a transformers base model (``AutoModel``/``BertModel``...) built by the library."""
    return info.kind == "model" and info.via in _LOADED_VIA and info.class_name in BASE_MODEL_CLASSES


def is_transformers_head_model(info: "ValueInfo") -> bool:
    return info.kind == "model" and info.via in _LOADED_VIA and bool(info.is_head)


def is_library_model(module: "ModuleModel", info: "ValueInfo", _depth: int = 0) -> bool:
    """A transformers model (or a peft wrapper of one) whose ``forward`` is the library's, not a custom module's;
    one that another project module builds, when its summary says so (:attr:`Returned.library`)."""
    if info.kind == "model" and info.via == "project":
        returned = module.project.returned(info.qualname) if module.project is not None else None
        return returned is not None and returned.library
    if info.kind != "model" or info.via not in _LOADED_VIA or info.local_class:
        return False
    qualname = info.qualname or ""
    if qualname.startswith("peft."):
        base = keyword(info.call, "model", 0) if info.call is not None else None
        inner = module.value_of(base) if base is not None and _depth < 3 else None
        return inner is not None and is_library_model(module, inner, _depth + 1)
    return qualname.startswith("transformers.")


#: arguments of a task model's construction that size or name a new head
_NEW_HEAD_ARGUMENTS = ("num_labels", "id2label", "label2id")


def has_new_head(info: "ValueInfo") -> bool:
    """A transformers model whose task head is created here: random weights from a config, label arguments, or a
    pretraining checkpoint (that has no head for the task)."""
    if info.via in ("from_config", "config"):
        return True
    if any(info.argument(name) is not None for name in _NEW_HEAD_ARGUMENTS):
        return True
    return checkpoints.lookup(checkpoint_name(info)) is not None


def output_type_kept(module: "ModuleModel", info: "ValueInfo") -> bool:
    """The construction leaves the forward's output type at the library default (a ModelOutput): no
    ``return_dict`` (or ``**kwargs`` that may carry it) for the model, the model a peft wrapper holds, or a
    config built in the call."""
    while (info.qualname or "").startswith("peft.") and info.call is not None:  # judge the transformers model inside
        info = module.value_of(keyword(info.call, "model", 0))  # type: ignore[arg-type]
    if info.call is not None and any(kw.arg in ("return_dict", None) for kw in info.call.keywords):
        return False
    config = keyword(info.call, "config") if info.call is not None else None
    return config is None or not isinstance(config, ast.Call) or all(kw.arg != "return_dict" for kw in config.keywords)


def output_fields(info: "ValueInfo", call: ast.Call) -> tuple[str, ...] | None:
    """The output fields of a transformers forward ``call``, position by position, as far as the
    class and the call fix them (what ``return_dict=False`` returned); None when they do not."""
    name = info.class_name or ""
    if not info.is_head:
        if name in POOLED_BASE_MODELS:
            return ("last_hidden_state", "pooler_output")
        return ("last_hidden_state",) if name in BASE_MODEL_CLASSES and name != "AutoModel" else None
    ending = next((end for end in HEAD_OUTPUT_FIELDS if name.endswith(end)), None)
    if ending is None or len(call.args) > 1 or any(kw.arg is None for kw in call.keywords):
        return None  # labels may come positionally or inside **batch: the loss may or may not lead
    given = {kw.arg for kw in call.keywords if not (isinstance(kw.value, ast.Constant) and kw.value.value is None)}
    needed = _LOSS_KEYWORDS.get(ending, ("labels",))
    if all(key in given for key in needed):
        return ("loss", *HEAD_OUTPUT_FIELDS[ending])
    return HEAD_OUTPUT_FIELDS[ending] if not any(key in given for key in needed) else None


def checkpoint_name(info: "ValueInfo") -> str | None:
    """The checkpoint string a model/tokenizer/config was loaded from, when the source shows it."""
    return info.checkpoint if isinstance(info.checkpoint, str) else None


def hidden_size_of(info: "ValueInfo") -> int | None:
    return checkpoints.hidden_size(checkpoint_name(info))


# ----------------------------------------------------------------------------- layers
def torch_nn_class(module: "ModuleModel", call: ast.AST) -> str | None:
    """``Linear`` for a call ``nn.Linear(...)`` / ``torch.nn.Linear(...)``; None for anything else."""
    if not isinstance(call, ast.Call):
        return None
    name = module.qualified_name(call.func)
    if name and name.startswith("torch.nn.") and name.count(".") == 2:
        last = name.rsplit(".", 1)[-1]
        return last if last[:1].isupper() else None
    return None


def is_layer_call(module: "ModuleModel", node: ast.AST) -> bool:
    """A call that builds an ``nn.Module``: a ``torch.nn`` layer (not a loss) or a module class of this file."""
    if not isinstance(node, ast.Call):
        return False
    layer = torch_nn_class(module, node)
    if layer is not None:
        return not layer.endswith("Loss") and layer not in ("Parameter", "ParameterList", "ParameterDict")
    info = module.value_of(node)
    return info.kind == "model" and info.via == "custom"


def first_linear(module: "ModuleModel", node: ast.AST) -> ast.Call | None:
    """The ``nn.Linear`` call that first sees the input of a layer expression.

    ``nn.Linear(768, 2)`` itself, or the first Linear of an ``nn.Sequential`` after
    shape-keeping layers (dropout, activations, normalisation).
    """
    layer = torch_nn_class(module, node)
    if layer == "Linear":
        return node  # type: ignore[return-value]
    if layer == "Sequential" and isinstance(node, ast.Call):
        for element in node.args:
            element_layer = torch_nn_class(module, element)
            if element_layer == "Linear":
                return element  # type: ignore[return-value]
            if element_layer not in SHAPE_KEEPING_LAYERS:
                return None
    return None


#: layers whose output has the input's last dimension
SHAPE_KEEPING_LAYERS = frozenset(
    {"Dropout", "ReLU", "GELU", "Tanh", "SiLU", "LeakyReLU", "ELU", "Mish", "Sigmoid", "LayerNorm", "Identity",
     "BatchNorm1d", "Softmax", "LogSoftmax", "Hardtanh", "PReLU", "SELU", "Softplus"}
)


def linear_features(module: "ModuleModel", call: ast.Call) -> tuple[object, object]:
    """``(in_features, out_features)`` of an ``nn.Linear`` call, each a literal or UNKNOWN."""
    return (
        resolve_constant(module, keyword(call, "in_features", 0)),
        resolve_constant(module, keyword(call, "out_features", 1)),
    )


# ----------------------------------------------------------------------------- data flow
def assigned_value(module: "ModuleModel", node: ast.AST, at: ast.AST | None = None) -> tuple[ast.expr, Binding] | None:
    """For a name/attribute read, the expression last assigned to it (plain ``=`` only) and the binding."""
    binding = module.binding_of(node, at)
    if binding is None or binding.source not in ("assign", "annassign") or binding.value is None:
        return None
    return binding.value, binding


def definitions(module: "ModuleModel", node: ast.AST, at: ast.AST | None = None, limit: int = 6) -> Iterator[ast.expr]:
    """``node`` and then the expressions it was assigned from, following ``a = b`` chains."""
    current: ast.AST | None = node
    anchor = at
    for _ in range(limit):
        if current is None:
            return
        yield current  # type: ignore[misc]
        if expr_key(current) is None:
            return
        found = assigned_value(module, current, anchor)
        if found is None:
            return
        current, anchor = found[0], found[0]


def is_bool_constant(node: ast.AST | None, value: bool | None = None) -> bool:
    if not isinstance(node, ast.Constant) or not isinstance(node.value, bool):
        return False
    return value is None or node.value is value


def resolved_int(module: "ModuleModel", node: ast.AST | None) -> int | None:
    value = resolve_constant(module, node) if node is not None else UNKNOWN
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def describe(module: "ModuleModel", node: ast.AST, limit: int = 60) -> str:
    """Short source text for messages (``model.classifier``), exactly as the user wrote it, on one line."""
    text = _source_text(module, node) or module.source_segment(node)
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _source_text(module: "ModuleModel", node: ast.AST) -> str | None:
    """The node's source from the model's line list (``ast.get_source_segment`` re-splits the file per call)."""
    start, end = getattr(node, "lineno", None), getattr(node, "end_lineno", None)
    first, last = getattr(node, "col_offset", None), getattr(node, "end_col_offset", None)
    if None in (start, end, first, last) or end > len(module.lines):  # type: ignore[operator]
        return None
    # column offsets count UTF-8 bytes
    chunk = [line.encode("utf-8") for line in module.lines[start - 1 : end]]  # type: ignore[operator]
    if len(chunk) == 1:
        return chunk[0][first:last].decode("utf-8", "replace")
    chunk[0], chunk[-1] = chunk[0][first:], chunk[-1][:last]
    return b"\n".join(chunk).decode("utf-8", "replace")


# ----------------------------------------------------------------------------- cached queries
_CALL_KINDS: "weakref.WeakKeyDictionary[ModuleModel, dict[str, list[tuple[ast.Call, ValueInfo]]]]" = (
    weakref.WeakKeyDictionary()
)


#: lower-case callees that construct models, optimizers, loaders... (constructors are Capitalised)
_FACTORIES = frozenset({"from_pretrained", "from_config", "from_single_file", "get_peft_model", "compile"})


def _may_construct(call: ast.Call) -> bool:
    """Cheap pre-filter: ``AdamW(...)``, ``Cls.from_pretrained(...)``; not ``print(...)`` or ``model(...)``."""
    name = call_name(call)
    return bool(name) and (name[0].isupper() or name in _FACTORIES)  # type: ignore[index]


def calls_of_kind(module: "ModuleModel", kind: str) -> list[tuple[ast.Call, "ValueInfo"]]:
    """Every call in the module that constructs a value of ``kind`` (``"optimizer"``, ``"training_args"``...)."""
    by_kind = _CALL_KINDS.get(module)
    if by_kind is None:
        by_kind = {}
        for call in module.calls():
            if not _may_construct(call):
                continue
            info = module.value_of(call)
            if info.call is call:
                by_kind.setdefault(info.kind, []).append((call, info))
        _CALL_KINDS[module] = by_kind
    return by_kind.get(kind, [])


def assigned_to(module: "ModuleModel", node: ast.AST) -> str | None:
    """The variable a call's result is assigned to (``model`` in ``model = Cls(...)``), for messages."""
    statement = module.enclosing_statement(node)
    if isinstance(statement, ast.Assign) and statement.value is node and len(statement.targets) == 1:
        return describe(module, statement.targets[0])
    if isinstance(statement, ast.AnnAssign) and statement.value is node:
        return describe(module, statement.target)
    return None


def subject(module: "ModuleModel", call: ast.Call, fallback: str) -> str:
    """How a message names what ``call`` builds: "`model`" or, unassigned, the fallback text."""
    name = assigned_to(module, call)
    return f"`{name}`" if name else fallback


#: wrappers whose iteration yields the wrapped iterable's items (``enumerate`` yields them second)
_ITERATION_WRAPPERS = frozenset({"tqdm", "trange", "track", "iter", "progress_bar", "enumerate", "islice",
                                 "skip_first_batches"})
#: wrappers that iterate several iterables at once (each keeps its identity)
_MULTI_WRAPPERS = frozenset({"zip", "chain"})


def iterated_expression(module: "ModuleModel", node: ast.expr) -> ast.expr:
    """The iterable under ``enumerate(...)``/``tqdm(...)`` wrappers of a ``for`` loop."""
    for _ in range(4):
        if not isinstance(node, ast.Call) or not node.args:
            return node
        name = (module.qualified_name(node.func) or "").rsplit(".", 1)[-1]
        if name not in _ITERATION_WRAPPERS:
            return node
        node = node.args[0]
    return node


def dataloader_calls(module: "ModuleModel", node: ast.expr, _depth: int = 0) -> Iterator[ast.Call]:
    """The ``DataLoader(...)`` constructions a loop's iterable reads: through names, parameters and helper returns,
    and through wrappers that keep the loader's items (``tqdm``, ``enumerate``, ``zip``, ``islice``,
    accelerate's ``skip_first_batches``), also when the wrapper is bound to a name first (``bar = tqdm(loader)``)."""
    if _depth > 6:
        return
    for produced in producers(module, node):
        wrapped = _wrapped_iterables(module, produced)
        if wrapped:
            for inner in wrapped:
                yield from dataloader_calls(module, inner, _depth + 1)
            continue
        info = module.value_of(produced)
        if info.kind == "dataloader" and info.call is not None:
            yield info.call


def _wrapped_iterables(module: "ModuleModel", node: ast.expr) -> list[ast.expr]:
    if not isinstance(node, ast.Call) or not node.args:
        return []
    name = (module.qualified_name(node.func) or call_name(node) or "").rsplit(".", 1)[-1]
    if name in _MULTI_WRAPPERS:
        return [a for a in node.args if not isinstance(a, ast.Starred)]
    if name in _ITERATION_WRAPPERS and not isinstance(node.args[0], ast.Starred):
        return [node.args[0]]
    return []


def chain_root(node: ast.AST) -> ast.Name | None:
    """The leftmost name node of ``a.b(...)["c"].d`` chains."""
    while isinstance(node, (ast.Attribute, ast.Subscript, ast.Call)):
        node = node.func if isinstance(node, ast.Call) else node.value
    return node if isinstance(node, ast.Name) else None


_NODES_BY_TYPE: "weakref.WeakKeyDictionary[ModuleModel, dict[type, list[ast.AST]]]" = weakref.WeakKeyDictionary()


def nodes_of_type(module: "ModuleModel", *types: type) -> Iterator[ast.AST]:
    """Every node of the given AST types, in source order, without walking the tree again.

    The model's single building pass recorded every node's parent; the nodes are grouped once per module.
    """
    groups = _NODES_BY_TYPE.get(module)
    if groups is None:
        groups = {}
        for node in module.parents:
            groups.setdefault(type(node), []).append(node)
        _NODES_BY_TYPE[module] = groups
    for node_type in types:
        yield from groups.get(node_type, [])
