"""What a binding or expression holds: model, optimizer, scheduler, DataLoader, ...

Kinds (``ValueInfo.kind``):

``model``          a ``torch.nn.Module`` proven by construction (see :mod:`ftdoctor.static.library`):
                   model families of model libraries (``AutoModelFor*``, ``*Model``, ``*For<Task>``,
                   ``PeftModel``...), their ``from_pretrained``/``from_config``, model factories
                   (``timm.create_model``), classes of this module whose bases resolve to ``nn.Module`` /
                   ``PreTrainedModel`` / ``LightningModule``, wrappers (``torch.compile``, ``DataParallel``,
                   ``accelerator.prepare``) and training engines (``deepspeed.initialize``: ``via="engine"``)
``pipeline``       a grad-free callable: diffusers/transformers pipelines (calling one is no forward pass
                   with gradients, and it has no ``train()``)
``object``         a library object proven to be none of the other kinds (a diffusers noise scheduler)
``tokenizer``      ``*Tokenizer*.from_pretrained`` / ``AutoTokenizer`` / processors
``config``         ``*Config(...)`` / ``AutoConfig.from_pretrained``
``optimizer``      ``torch.optim.*``, ``transformers.AdamW/Adafactor``, ``bitsandbytes.optim.*`` ...
``scheduler``      ``torch.optim.lr_scheduler.*``, ``transformers.get_*schedule*`` / ``get_scheduler``
``loss``           ``torch.nn.*Loss`` modules
``dataloader``     ``torch.utils.data.DataLoader``
``dataset``        ``datasets`` objects (``load_dataset``, ``Dataset.from_*``, ``.map``, splits), and
                   instances of this module's ``torch.utils.data.Dataset`` subclasses
``batch``          the loop variable of ``for batch in <dataloader>`` (``origin`` = the loader binding)
``encoding``       the result of calling a tokenizer (a ``BatchEncoding``: attribute access works)
``trainer``        ``transformers.Trainer`` / ``Seq2SeqTrainer`` / ``trl`` trainers and subclasses
``training_args``  ``TrainingArguments`` / ``Seq2SeqTrainingArguments`` / ``trl`` configs
``accelerator``    ``accelerate.Accelerator``
``scaler``         AMP ``GradScaler``
``dict``           a dict literal, comprehension or ``dict(...)``
``list``           a list literal or comprehension
``param``          a function parameter nobody could resolve
``unknown``        anything else
"""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

from ftdoctor.static import library
from ftdoctor.static.constants import UNKNOWN, resolve_constant
from ftdoctor.static.model import Binding, Scope, call_name, expr_key, keyword, position

if TYPE_CHECKING:
    from ftdoctor.static.model import ModuleModel

#: methods that return the module itself (``model = model.to(device)`` keeps the same parameters)
SELF_RETURNING_METHODS = library.SELF_RETURNING_METHODS
#: calls that wrap a model and keep its parameters (the argument is the origin)
MODEL_WRAPPERS = library.MODEL_WRAPPERS
#: dataset methods that return a dataset of the same items
DATASET_METHODS = frozenset(
    {"map", "filter", "shuffle", "select", "with_format", "remove_columns", "rename_column", "rename_columns",
     "cast_column", "sort", "flatten", "train_test_split", "shard", "select_columns", "class_encode_column"}
)
_HEAD_CLASS = re.compile(r"For[A-Z]\w*$|LMHeadModel$|WithLMHead")
_TRAINER_LIBRARIES = library.TRAINER_LIBRARIES




@dataclass(frozen=True)
class ValueInfo:
    """What an expression evaluates to.

    * ``qualname``: the constructing callee, e.g. ``transformers.BertModel.from_pretrained``.
    * ``call``: the constructing call node.
    * ``class_name``: ``BertModel``, ``AdamW``, ``DataLoader``, ``MyClassifier``.
    * ``via`` (models): ``from_pretrained``, ``from_config``, ``config`` (``Cls(config)``),
      ``custom`` (class of this module), ``peft`` (``get_peft_model``), ``wrapper``.
    * ``is_head`` (models): True for task-head classes (``*ForSequenceClassification`` ...),
      False for base models (``BertModel``, ``AutoModel``), None when unknown (custom classes).
    * ``checkpoint``: the checkpoint string when resolvable (models, tokenizers, configs), else UNKNOWN.
    * ``origin``: for aliases (``model = model.to(device)``, ``accelerator.prepare``, loop
      variables), the binding this value comes from.
    * ``local_class``: dotted name of this module's class the value is an instance of.
    * ``pretrained`` (models): True when the weights come from ``from_pretrained`` (directly or
      under ``get_peft_model``/``torch.compile``/``DataParallel``); such models start in eval mode.
    * ``parameter_free`` (models): a module of this file that holds no parameters or submodules
      (``class Scale(nn.Module)`` with only a ``forward``): calling it is no model forward pass.
    * ``mode_free`` (models): a module of this file built only from layers that behave the same in
      train and eval mode (``Linear``, ``Conv2d``, ``LayerNorm``...): ``.eval()`` changes nothing.
    """

    kind: str
    qualname: str | None = None
    call: ast.Call | None = None
    class_name: str | None = None
    via: str | None = None
    is_head: bool | None = None
    checkpoint: object = UNKNOWN
    origin: Binding | None = None
    local_class: str | None = None
    pretrained: bool = False
    parameter_free: bool = False
    mode_free: bool = False

    @property
    def has_zero_grad(self) -> bool:
        """False for optimizers that have no ``zero_grad`` (their gradients live elsewhere): never advise it."""
        return self.qualname not in library.OPTIMIZERS_WITHOUT_ZERO_GRAD

    def argument(self, name: str, position: int | None = None) -> ast.expr | None:
        """An argument of the constructing call (by keyword, or position when given)."""
        return keyword(self.call, name, position) if self.call is not None else None


_UNKNOWN_INFO = ValueInfo("unknown")
#: class methods that build an instance (``Cls.from_pretrained(...)``)
_FACTORY_METHODS = frozenset({"from_pretrained", "from_config", "from_single_file"})
#: calls that give a module parameters or submodules without a ``self.x = ...`` binding
_REGISTERING = frozenset({"register_parameter", "register_buffer", "register_module", "add_module", "__setattr__",
                          "setattr"})
_MAX_DEPTH = 8


def classify_binding(module: "ModuleModel", binding: Binding) -> ValueInfo:
    """What ``binding`` holds, following aliases through earlier bindings."""
    in_progress: set[int] = module._cache.setdefault("classifying", set())  # type: ignore[assignment]
    if id(binding) in in_progress:
        return _UNKNOWN_INFO  # a cycle (recursive function passing its own parameter)
    in_progress.add(id(binding))
    try:
        return _classify_binding(module, binding)
    finally:
        in_progress.discard(id(binding))


def _classify_binding(module: "ModuleModel", binding: Binding) -> ValueInfo:
    if binding.source in ("def", "class", "import"):
        return ValueInfo(binding.source if binding.source != "import" else "unknown")
    at = binding.position
    scope = binding.scope
    value = binding.value
    if binding.source == "param":
        return _classify_param(module, binding)
    if value is None:
        return _UNKNOWN_INFO
    if binding.source == "for":
        return _classify_loop_element(module, value, scope, at, binding.index)
    if binding.source == "unpack":
        return _classify_unpacked(module, binding, value, _value_scope(module, binding), at)
    if binding.source == "augassign":
        return _UNKNOWN_INFO
    return classify_expression(module, value, _value_scope(module, binding), at)


def _classify_unpacked(module: "ModuleModel", binding: Binding, value: ast.expr, scope: Scope,
                       at: tuple[int, int]) -> ValueInfo:
    """``engine, optimizer, _, scheduler = deepspeed.initialize(model=model, ...)``: element kinds from the
    library's table of tuple-returning factories. An engine wraps the model it is given (same parameters)."""
    if not isinstance(value, ast.Call) or binding.index is None:
        return _UNKNOWN_INFO
    qualname = module.qualified_name(value.func, scope)
    elements = library.tuple_factory(qualname) if qualname else None
    if elements is None or binding.index >= len(elements):
        return _UNKNOWN_INFO
    kind, via = elements[binding.index]
    if kind == "model":
        arg = keyword(value, "model", 1)
        inner = classify_expression(module, arg, scope, at) if arg is not None else _UNKNOWN_INFO
        if inner.kind == "model":
            return replace(inner, qualname=qualname, via=via)
        return ValueInfo("model", qualname, None, via=via)
    return ValueInfo(kind, qualname, None, via=via)


def _value_scope(module: "ModuleModel", binding: Binding) -> Scope:
    # `self.x = ...` bindings are stored on the class but their value is evaluated in the method.
    return module.scope_of(binding.value) if binding.value is not None else binding.scope


def classify_expression(
    module: "ModuleModel", node: ast.AST, scope: Scope, at: tuple[int, int], depth: int = 0
) -> ValueInfo:
    """What expression ``node``, read in ``scope`` at source position ``at``, evaluates to."""
    if depth > _MAX_DEPTH:
        return _UNKNOWN_INFO
    if isinstance(node, (ast.Dict, ast.DictComp)):
        return ValueInfo("dict")
    if isinstance(node, (ast.List, ast.ListComp)):
        return ValueInfo("list")
    if isinstance(node, ast.Await):
        return classify_expression(module, node.value, scope, at, depth + 1)
    if isinstance(node, ast.Subscript):
        return _classify_subscript(module, node, scope, at, depth)
    if isinstance(node, ast.Call):
        return _classify_call(module, node, scope, at, depth)
    key = expr_key(node)
    if key is not None:
        binding = module.binding_of_key(key, scope, at)
        if binding is not None and binding.source not in ("def", "class", "import"):
            return replace(binding.info, origin=binding)
    return _UNKNOWN_INFO


def _classify_subscript(module: "ModuleModel", node: ast.Subscript, scope: Scope, at: tuple[int, int], depth: int) -> ValueInfo:
    base = classify_expression(module, node.value, scope, at, depth + 1)
    if base.kind == "dataset":
        # ds["train"] is a split, ds[0] / ds[:8] rows (a dict) — keep "dataset" for string keys
        key_kind = _subscript_key_kind(module, node.slice)
        if key_kind == "split":
            return base
        if key_kind is None or base.via == "table" or _formatted_in_place(module, node.value, scope, at):
            return _UNKNOWN_INFO  # an unknown key, a DataFrame / Arrow table / whatever a transform returns
        return ValueInfo("dict")
    key = expr_key(node)
    if key is not None:
        binding = module.binding_of_key(key, scope, at)
        if binding is not None:
            return replace(binding.info, origin=binding)
    return _UNKNOWN_INFO


def _classify_call(module: "ModuleModel", call: ast.Call, scope: Scope, at: tuple[int, int], depth: int) -> ValueInfo:
    func = call.func
    qualname = module.qualified_name(func, scope)
    if isinstance(func, ast.Attribute) and qualname is None:
        receiver = classify_expression(module, func.value, scope, at, depth + 1)
        derived = _classify_method_result(module, call, func.attr, receiver, scope, at, depth)
        if derived is not None:
            return derived
    if qualname is None:
        return _UNKNOWN_INFO
    if qualname in ("dict", "collections.OrderedDict"):
        return ValueInfo("dict", qualname, call)
    if qualname == "list":
        return ValueInfo("list", qualname, call)
    local = module.classes.get(qualname)
    if local is not None:
        return _classify_local_instance(module, local, qualname, call)
    function = module.functions.get(qualname)
    if function is not None:
        return _classify_returns(module, function, depth)
    info = _classify_library_call(module, qualname, call, scope, at, depth)
    if info.kind == "unknown" and module.project is not None:
        return module.project.value(qualname, call) or info  # a function or class of another project module
    return info


def _classify_returns(module: "ModuleModel", function: Scope, depth: int) -> ValueInfo:
    """A call to this module's function holds what its ``return`` statements give (the first known kind)."""
    for node in ast.walk(function.node):
        if isinstance(node, ast.Return) and node.value is not None and module.scope_of(node) is function:
            if isinstance(node.value, ast.Tuple):
                continue  # `return model, tokenizer` — unpacked by the caller, not modelled
            info = classify_expression(module, node.value, function, position(node), depth + 1)
            if info.kind not in ("unknown", "param"):
                return info
    return _UNKNOWN_INFO


def _classify_method_result(
    module: "ModuleModel", call: ast.Call, method: str, receiver: ValueInfo, scope: Scope, at: tuple[int, int], depth: int
) -> ValueInfo | None:
    """``model.to(device)``, ``accelerator.prepare(x)``, ``ds.map(...)``, ``tokenizer(...)``-like calls on values."""
    origin = receiver.origin
    if receiver.kind in ("model", "pipeline") and method in SELF_RETURNING_METHODS:
        return replace(receiver, call=receiver.call, origin=origin) if origin is None else _alias(origin)
    if method in _FACTORY_METHODS and receiver.kind in ("model", "tokenizer", "config") and receiver.class_name:
        # a classmethod called on an instance (`model.from_pretrained(path)`): a new object of the same class
        owner = receiver.qualname or receiver.class_name
        if owner.rsplit(".", 1)[-1] in _FACTORY_METHODS:
            owner = owner.rsplit(".", 1)[0]
        return _classify_factory(module, f"{owner}.{method}", receiver.class_name, method, call)
    if receiver.kind == "accelerator" and method in ("prepare", "prepare_model", "prepare_optimizer",
                                                     "prepare_data_loader", "prepare_scheduler") and len(call.args) == 1:
        return classify_expression(module, call.args[0], scope, at, depth + 1)
    if receiver.kind == "accelerator" and method == "unwrap_model" and call.args:
        return classify_expression(module, call.args[0], scope, at, depth + 1)
    if receiver.kind == "dataset" and method in library.FORMAT_METHODS and _makes_table(module, call, method):
        return ValueInfo("dataset", receiver.qualname, receiver.call, receiver.class_name, via="table", origin=origin)
    if receiver.kind == "dataset" and method in DATASET_METHODS:
        via = "table" if receiver.via == "table" else None
        return ValueInfo("dataset", receiver.qualname, receiver.call, receiver.class_name, via=via, origin=origin)
    if receiver.kind == "tokenizer" and method in ("__call__", "batch_encode_plus", "encode_plus"):
        return ValueInfo("encoding", call=call)
    if receiver.kind == "dict" and method == "copy":
        return ValueInfo("dict")
    return None


def _subscript_key_kind(module: "ModuleModel", key: ast.expr) -> str | None:
    """``"split"`` for a string key (``ds["validation_matched" if mnli else "validation"]``), ``"rows"`` for an
    int or a slice, None when unknown."""
    if isinstance(key, ast.Slice):
        return "rows"
    if isinstance(key, ast.IfExp):
        kinds = {_subscript_key_kind(module, key.body), _subscript_key_kind(module, key.orelse)}
        return kinds.pop() if len(kinds) == 1 else None
    if isinstance(key, ast.JoinedStr):
        return "split"
    if isinstance(key, ast.Name) and _is_loop_index(module, key):
        return "rows"
    value = resolve_constant(module, key)
    if isinstance(value, str):
        return "split"
    if isinstance(value, int) and not isinstance(value, bool):
        return "rows"
    return None


def _is_loop_index(module: "ModuleModel", name: ast.Name) -> bool:
    """``i`` of ``for i in range(...)`` or ``for i, x in enumerate(...)``: an int."""
    binding = module.binding_of(name)
    if binding is None or binding.source != "for" or not isinstance(binding.value, ast.Call):
        return False
    iterator = module.qualified_name(binding.value.func, binding.scope)
    return (iterator == "range" and binding.index is None) or (iterator == "enumerate" and binding.index == 0)


def _makes_table(module: "ModuleModel", call: ast.Call, method: str) -> bool:
    """``set_format("pandas")`` / ``with_transform(fn)``: indexing no longer returns dicts (unsure counts)."""
    _, takes_format = library.FORMAT_METHODS[method]
    if not takes_format:
        return True
    chosen = keyword(call, "type", 0)
    if chosen is None:
        return False  # set_format() with no type: python objects (dicts)
    value = resolve_constant(module, chosen)
    return not isinstance(value, str) or value in library.TABLE_FORMATS


def _formatted_in_place(module: "ModuleModel", node: ast.expr, scope: Scope, at: tuple[int, int]) -> bool:
    """``ds.set_format("pandas")`` / ``ds.set_transform(fn)`` anywhere on the same binding as ``node``."""
    key = expr_key(node)
    if key is None:
        return False
    binding = module.binding_of_key(key, scope, at)
    for call in module.all_calls:
        func = call.func
        if not (isinstance(func, ast.Attribute) and func.attr in library.FORMAT_METHODS and expr_key(func.value) == key):
            continue
        in_place, _ = library.FORMAT_METHODS[func.attr]
        if in_place and module.binding_of_key(key, module.scope_of(call), position(call)) is binding \
                and _makes_table(module, call, func.attr):
            return True
    return False


def _alias(binding: Binding) -> ValueInfo:
    return replace(binding.info, origin=binding)


def _classify_local_instance(module: "ModuleModel", local: Scope, qualname: str, call: ast.Call) -> ValueInfo:
    bases = module.class_bases(local)
    tails = {b.rsplit(".", 1)[-1] for b in bases}
    name = qualname.rsplit(".", 1)[-1]
    if is_model_class_scope(module, local):
        return ValueInfo("model", qualname, call, name, via="custom", local_class=qualname,
                         parameter_free=_holds_nothing(module, local), mode_free=_is_mode_free(module, local))
    if "Dataset" in tails or "IterableDataset" in tails:
        return ValueInfo("dataset", qualname, call, name, via="custom", local_class=qualname)
    if any(t.endswith("Trainer") for t in tails):
        return ValueInfo("trainer", qualname, call, name, local_class=qualname)
    return ValueInfo("unknown", qualname, call, name, local_class=qualname)


def _plain_module_chain(module: "ModuleModel", local: Scope) -> list[Scope] | None:
    """The class and its bases of this file when everything else they derive from is plain ``nn.Module``
    (so the classes' own code shows all they hold); None otherwise."""
    chain, pending = [], [local]
    while pending:
        current = pending.pop()
        if current in chain:
            continue
        if len(chain) > 6:
            return None
        chain.append(current)
        for base in getattr(current.node, "bases", []):
            qualified = module.qualified_name(base, current.parent) or ""
            if qualified in module.classes:
                pending.append(module.classes[qualified])
            elif qualified not in ("torch.nn.Module", "torch.nn.modules.module.Module"):
                return None
    return chain


def _self_values(chain: list[Scope]) -> list[ast.expr | None]:
    return [b.value for scope in chain for key, group in scope.bindings.items() if key.startswith("self.") for b in group]


def _calls_any(module: "ModuleModel", chain: list[Scope], names: frozenset[str]) -> bool:
    return any(call_name(call) in names for scope in chain for method in scope.functions.values()
               for call in method.calls)


def _holds_nothing(module: "ModuleModel", local: Scope) -> bool:
    """A module class that can hold no parameters: plain ``nn.Module`` bases, no ``self.x`` but constants,
    nothing registered."""
    chain = _plain_module_chain(module, local)
    return chain is not None and all(isinstance(v, ast.Constant) for v in _self_values(chain)) \
        and not _calls_any(module, chain, _REGISTERING)


def _is_mode_free(module: "ModuleModel", local: Scope) -> bool:
    """A module class whose behaviour cannot depend on train/eval mode: plain ``nn.Module`` bases, ``self.x``
    only constants or mode-free ``torch.nn`` layers, no functional dropout or batch norm, no ``self.training``."""
    chain = _plain_module_chain(module, local)
    if chain is None or _calls_any(module, chain, library.MODE_DEPENDENT_FUNCTIONS | _REGISTERING):
        return False
    for value in _self_values(chain):
        if isinstance(value, ast.Constant):
            continue
        layer = module.qualified_name(value.func, module.scope_of(value)) if isinstance(value, ast.Call) else None
        if not (layer or "").startswith("torch.nn.") or layer.rsplit(".", 1)[-1] not in library.MODE_FREE_LAYERS:
            return False
    return not any(isinstance(node, ast.Attribute) and node.attr == "training"
                   for scope in chain for method in scope.functions.values() for node in ast.walk(method.node))


def is_model_class_scope(module: "ModuleModel", local: Scope) -> bool:
    """A class of this module whose bases resolve (transitively) to a model base (``nn.Module``,
    ``PreTrainedModel``, ``LightningModule``, a library model class)."""
    return any(library.is_model_base(base) for base in module.class_bases(local))


def _classify_library_call(
    module: "ModuleModel", qualname: str, call: ast.Call, scope: Scope, at: tuple[int, int], depth: int
) -> ValueInfo:
    parts = qualname.split(".")
    last = parts[-1]
    owner = parts[-2] if len(parts) > 1 else ""
    root = parts[0]
    if last in _FACTORY_METHODS:
        return _classify_factory(module, qualname, owner, last, call)
    if qualname.endswith(MODEL_WRAPPERS):
        arg = keyword(call, "model", 0) or keyword(call, "module", 0)
        if arg is not None:
            inner = classify_expression(module, arg, scope, at, depth + 1)
            if inner.kind == "model":
                return replace(inner, via=inner.via, call=inner.call)
        if last == "compile":  # torch.compile also compiles plain functions
            return ValueInfo("unknown", qualname, call, last)
        return ValueInfo("model", qualname, call, last, via="wrapper")
    if last == "get_peft_model" or (root == "peft" and last.startswith("PeftModel")):
        base_expr = keyword(call, "model", 0)
        base = classify_expression(module, base_expr, scope, at, depth + 1) if base_expr is not None else _UNKNOWN_INFO
        # a new wrapper object whose adapter parameters did not exist before: not an alias
        return ValueInfo("model", qualname, call, base.class_name, via="peft", is_head=base.is_head,
                         checkpoint=base.checkpoint, pretrained=base.pretrained)
    if library.is_model_factory(qualname):
        return ValueInfo("model", qualname, call, last, via="factory")
    if qualname in library.GRAD_FREE_FACTORIES:
        return ValueInfo("pipeline", qualname, call, last)
    kind = _library_kind(qualname, root, owner, last)
    if kind == "model":
        return ValueInfo("model", qualname, call, last, via="config", is_head=bool(_HEAD_CLASS.search(last)))
    if kind is not None:
        return ValueInfo(kind, qualname, call, last)
    return ValueInfo("unknown", qualname, call, last)


def _library_kind(qualname: str, root: str, owner: str, last: str) -> str | None:
    """The kind of a library constructor call, by its qualified name."""
    if qualname.startswith("torch.optim.lr_scheduler.") or (
        root == "transformers" and last.startswith("get_") and "schedule" in last
    ):
        return "scheduler"
    if (qualname.startswith("torch.optim.") and last[:1].isupper()) or qualname in library.OPTIMIZER_CLASSES:
        return "optimizer"
    if last in ("AdamW", "Adafactor", "AdamW8bit", "PagedAdamW", "PagedAdamW8bit", "Lion", "Adam8bit") and root in (
        "transformers", "bitsandbytes", "torch_optimizer", "apex", "lion_pytorch", "timm"
    ):
        return "optimizer"
    if root in ("bitsandbytes", "torch_optimizer") and last[:1].isupper():
        return "optimizer"
    if qualname.startswith(("torch.nn.", "torch.nn.modules.loss.")) and last.endswith("Loss"):
        return "loss"
    if last == "DataLoader" and root == "torch":
        return "dataloader"
    if root == "datasets" and (last in ("load_dataset", "load_from_disk") or owner in ("Dataset", "DatasetDict")):
        return "dataset"
    if root in _TRAINER_LIBRARIES and last.endswith("Trainer"):
        return "trainer"
    if root in _TRAINER_LIBRARIES and (last.endswith("TrainingArguments") or last in ("SFTConfig", "DPOConfig")):
        return "training_args"
    if root == "accelerate" and last == "Accelerator":
        return "accelerator"
    if last == "GradScaler" and root == "torch":
        return "scaler"
    if root == "transformers" and last.endswith("Config"):
        return "config"
    if root == "transformers" and ("Tokenizer" in last or last.endswith(("Processor", "FeatureExtractor"))):
        return "tokenizer"
    if library.is_model_class(qualname):
        return "model"
    if root in library.MODEL_LIBRARIES and library.pretrained_kind(last) == "pipeline":
        return "pipeline"  # TextClassificationPipeline(model=..., tokenizer=...)
    return None


def _classify_factory(module: "ModuleModel", qualname: str, owner: str, method: str, call: ast.Call) -> ValueInfo:
    """``Cls.from_pretrained(...)`` / ``Cls.from_config(...)``."""
    checkpoint_expr = keyword(call, "pretrained_model_name_or_path", 0)
    checkpoint = resolve_constant(module, checkpoint_expr) if checkpoint_expr is not None and method == "from_pretrained" else UNKNOWN
    local = module.classes.get(qualname.rsplit(".", 1)[0])
    kind = library.pretrained_kind(owner)
    if local is not None:  # a class of this file: its bases decide, whatever its name
        kind = "model" if is_model_class_scope(module, local) else None
    if kind is None:
        return ValueInfo("unknown", qualname, call, owner, via=method)  # not a known family: no guess
    if kind != "model":
        return ValueInfo(kind, qualname, call, owner, via=method, checkpoint=checkpoint)
    is_head = bool(_HEAD_CLASS.search(owner)) if owner else None
    pretrained = method == "from_pretrained"
    if owner.startswith(("PeftModel", "AutoPeftModel")):
        return ValueInfo("model", qualname, call, owner, via="from_pretrained", checkpoint=checkpoint, pretrained=True)
    local_name = local.name if local is not None else None
    return ValueInfo("model", qualname, call, owner, via=method, is_head=is_head, checkpoint=checkpoint,
                     local_class=local_name, pretrained=pretrained)


def _classify_loop_element(
    module: "ModuleModel", iterable: ast.expr, scope: Scope, at: tuple[int, int], index: int | None
) -> ValueInfo:
    """``for batch in loader`` / ``for step, batch in enumerate(tqdm(loader))``."""
    inner = _unwrap_iteration(module, iterable, scope)
    if inner is None:
        return _UNKNOWN_INFO
    expr, element_index = inner
    if element_index != index:
        return _UNKNOWN_INFO
    source = classify_expression(module, expr, scope, at)
    if source.kind == "dataloader":
        return ValueInfo("batch", origin=source.origin)
    return _UNKNOWN_INFO


def _unwrap_iteration(module: "ModuleModel", iterable: ast.expr, scope: Scope) -> tuple[ast.expr, int | None] | None:
    """Peel ``enumerate``/``tqdm``: returns the underlying iterable and which target element gets its items."""
    element_index: int | None = None
    for _ in range(4):
        if not isinstance(iterable, ast.Call) or not iterable.args:
            return iterable, element_index
        name = (module.qualified_name(iterable.func, scope) or "").rsplit(".", 1)[-1]
        if name == "enumerate" and element_index is None:
            element_index = 1
        elif name not in ("tqdm", "trange", "track", "iter", "progress_bar"):
            return iterable, element_index
        iterable = iterable.args[0]
    return None


def _classify_param(module: "ModuleModel", binding: Binding) -> ValueInfo:
    """A parameter takes the kind that every resolvable call site passes, if they agree."""
    function = module.scope_of_def.get(_function_node(module, binding))
    if function is None:
        return ValueInfo("param")
    kinds: list[ValueInfo] = []
    for site in module.call_sites(function)[:8]:
        arg = _argument_for(function, binding.name, site)
        if arg is None:
            continue
        site_scope = module.scope_of(site)
        kinds.append(classify_expression(module, arg, site_scope, position(site), depth=2))
    known = [k for k in kinds if k.kind not in ("unknown", "param")]
    if known and all(k.kind == known[0].kind for k in known) and len(known) == len(kinds):
        first = known[0]
        return replace(first, origin=first.origin)
    return ValueInfo("param")


def _function_node(module: "ModuleModel", binding: Binding) -> ast.AST | None:
    return binding.scope.node if binding.scope.kind == "function" else None


def _argument_for(function: Scope, param: str, call: ast.Call) -> ast.expr | None:
    """The argument a call passes for ``param`` (``self`` skipped for methods)."""
    params = function.params[1:] if function.is_method else function.params
    for kw in call.keywords:
        if kw.arg == param:
            return kw.value
    if param in params:
        index = params.index(param)
        if index < len(call.args) and not any(isinstance(a, ast.Starred) for a in call.args[: index + 1]):
            return call.args[index]
    return None


def argument_for(function: Scope, param: str, call: ast.Call) -> ast.expr | None:
    """Public form of the call-site argument mapping (used by the flow analysis)."""
    return _argument_for(function, param, call)
