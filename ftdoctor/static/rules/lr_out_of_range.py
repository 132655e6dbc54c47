"""lr-out-of-range: a learning rate far outside what works for fine-tuning with this optimizer.

Reads the ``lr`` of Adam/AdamW/SGD optimizers and ``TrainingArguments(learning_rate=...)``
through constant propagation (module constants, argparse defaults, dataclass fields, dict
configs). Only scripts that fine-tune a pretrained model are checked: training a network
from scratch has other sensible ranges.

Each optimizer is judged by what it trains: the model its parameters come from (a PEFT
model, by its method: LoRA family, prompt-like, IA3/LN tuning; otherwise full fine-tuning,
even in a file that also uses PEFT), a head only (too-high is not reported), and a
``OneCycleLR``/``CyclicLR`` scheduler's ``max_lr`` instead of ``lr``. An optimizer that is
never stepped nor handed to other code (a Trainer, a helper, ``accelerator.prepare``) is not
training anything and is not judged.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass
from typing import Iterator, Mapping, Sequence

from ftdoctor.findings import Finding
from ftdoctor.static.constants import producers, resolve_constant
from ftdoctor.static.model import ModuleModel, call_name, expr_key, keyword
from ftdoctor.static.modelfacts import assigned_value, calls_of_kind, describe, is_layer_call, nodes_of_type, subject
from ftdoctor.static.rule import StaticRule, register_static_rule


@dataclass(frozen=True)
class LrRange:
    low: float
    high: float
    context: str  # how messages name the situation

    def __contains__(self, lr: float) -> bool:
        return self.low <= lr <= self.high


#: what an optimizer trains -> the working range with Adam/AdamW (see rules/FTD104-lr-out-of-range.md for sources)
ADAM_RANGES: dict[str, LrRange] = {
    "full": LrRange(1e-6, 1e-4, "full fine-tuning with {optimizer}"),
    "lora": LrRange(1e-5, 5e-3, "LoRA fine-tuning with {optimizer}"),
    "prompt": LrRange(1e-5, 1.0, "prompt/prefix tuning with {optimizer}"),
    "ia3": LrRange(1e-5, 1e-1, "IA3/LN tuning with {optimizer}"),
    "peft": LrRange(1e-6, 1.0, "PEFT fine-tuning with {optimizer}"),  # a method not in the table below
}
SGD_RANGE = LrRange(1e-4, 1e-1, "fine-tuning with SGD")

#: the names of `[tool.ftdoctor.lr-range]`; `peft` sets every PEFT method's range, the others one each
RANGE_NAMES: dict[str, tuple[str, ...]] = {
    "full": ("full",),
    "peft": ("lora", "prompt", "ia3", "peft"),
    "lora": ("lora",),
    "prompt": ("prompt",),
    "ia3": ("ia3",),
    "sgd": ("sgd",),
}

#: PEFT config classes -> method family (the range above); other PEFT configs get the `peft` range
PEFT_METHODS: dict[str, str] = {
    "LoraConfig": "lora", "AdaLoraConfig": "lora", "LoHaConfig": "lora", "LoKrConfig": "lora",
    "XLoraConfig": "lora", "DeloraConfig": "lora", "RoadConfig": "lora",
    "PromptTuningConfig": "prompt", "PrefixTuningConfig": "prompt", "PromptEncoderConfig": "prompt",
    "MultitaskPromptTuningConfig": "prompt", "AdaptionPromptConfig": "prompt", "CPTConfig": "prompt",
    "IA3Config": "ia3", "LNTuningConfig": "ia3",
}
#: calls that put adapters into a model: (model keyword, position), (config keyword, position)
_PEFT_WRAPPERS: dict[str, tuple[tuple[str, int], tuple[str, int]]] = {
    "get_peft_model": (("model", 0), ("peft_config", 1)),
    "inject_adapter_in_model": (("model", 1), ("peft_config", 0)),
}
#: schedulers whose own peak learning rate replaces the optimizer's `lr`
_PEAK_LR_SCHEDULERS = ("OneCycleLR", "CyclicLR")

_PEFT_MARKERS = ("get_peft_model", "LoraConfig", "prepare_model_for_kbit_training", "PeftModel", "AdaLoraConfig")


def lr_ranges(overrides: Mapping[str, Sequence[float]]) -> dict[str, LrRange]:
    """The default ranges by name (``full``, ``lora``, ... ``sgd``) with ``[tool.ftdoctor.lr-range]`` applied;
    ``peft`` first, so that a specific method's range wins over it."""
    ranges = {**ADAM_RANGES, "sgd": SGD_RANGE}
    for name in sorted(overrides, key=lambda n: n != "peft"):
        low, high = overrides[name]
        for key in RANGE_NAMES[name]:
            ranges[key] = LrRange(float(low), float(high), ranges[key].context)
    return ranges


@register_static_rule
class LrOutOfRange(StaticRule):
    slug = "lr-out-of-range"

    def check(self, module: ModuleModel) -> Iterator[Finding]:
        self.ranges = lr_ranges(self.options)
        if not _fine_tunes_pretrained(module):
            return
        peft_file = _uses_peft(module)
        freezes = _freezes_parameters(module)
        for call, info in calls_of_kind(module, "optimizer"):
            family = _optimizer_family(info.class_name or "")
            lr_node = _peak_lr(module, call) or keyword(call, "lr", 1)
            if family is None or lr_node is None or not _trains(module, call):
                continue
            optimizer = f"{info.class_name} {subject(module, call, '')}".strip()
            params = keyword(call, "params", 0)
            partial = freezes or _optimises_a_submodule(module, params)
            owners = _parameter_owners(module, params)
            trained = _trained_kind([_model_kind(module, owner) for owner in owners], peft_file)
            yield from self._check_lr(module, lr_node, family, trained, partial, optimizer)
        for call, _info in calls_of_kind(module, "training_args"):
            lr_node = keyword(call, "learning_rate")
            family = _training_args_family(module, call)
            if lr_node is not None and family is not None:
                arguments = subject(module, call, "TrainingArguments")
                trained = _trained_kind(_trainer_kinds(module, call), peft_file)
                yield from self._check_lr(
                    module, lr_node, family, trained, freezes, f"the Trainer's optimizer ({arguments})"
                )

    def _check_lr(
        self, module: ModuleModel, node: ast.expr, family: str, trained: str, partial: bool, optimizer: str
    ) -> Iterator[Finding]:
        lr = resolve_constant(module, node)
        if not isinstance(lr, (int, float)) or isinstance(lr, bool):
            yield from self._check_search_range(module, node, family, trained, partial, optimizer)
            return
        allowed = self.ranges["sgd" if family == "sgd" else trained]
        if lr in allowed or (partial and lr > allowed.high):
            return  # training only a head (linear probing) legitimately uses higher rates
        context = allowed.context.format(optimizer=optimizer)
        direction = "high" if lr > allowed.high else "low"
        shown = f"{lr:g}" if _is_literal(node) else f"`{describe(module, node)}` = {lr:g}"
        message = (
            f"learning rate {shown} (line {node.lineno}) is too {direction} for {context}: "
            f"the working range is {allowed.low:g} to {allowed.high:g}"
        )
        suggestion = _suggestion(family, trained)
        fix = f"use a learning rate around {suggestion:g}" + (
            "; if the value is deliberate, add `# noqa: FTD104` on this line" if direction == "low" else ""
        )
        yield self.finding(module, node, message, fix)

    def _check_search_range(
        self, module: ModuleModel, node: ast.expr, family: str, trained: str, partial: bool, optimizer: str
    ) -> Iterator[Finding]:
        """``lr = trial.suggest_float("lr", 1e-4, 1e-1)`` / ``tune.loguniform(...)``: judge the searched range's ends."""
        found = _search_range(module, node)
        if found is None:
            return
        search, low, high = found
        allowed = self.ranges["sgd" if family == "sgd" else trained]
        outside = [end for end in (low, high) if end not in allowed and not (partial and end > allowed.high)]
        if not outside:
            return
        context = allowed.context.format(optimizer=optimizer)
        yield self.finding(
            module, search,
            f"the learning-rate search range {low:g} to {high:g} (line {search.lineno}) reaches "
            f"{' and '.join(f'{end:g}' for end in outside)}, outside the working range for {context} "
            f"({allowed.low:g} to {allowed.high:g}): those trials are wasted on runs that diverge or barely move",
            f"search within {allowed.low:g} to {allowed.high:g} (log scale), e.g. around {_suggestion(family, trained):g}",
        )


# ------------------------------------------------------------------ what an optimizer trains


def _parameter_owners(module: ModuleModel, params: ast.expr | None) -> list[ast.expr]:
    """The modules whose ``.parameters()``/``.named_parameters()`` feed ``params`` (through ``filter``, param
    groups, comprehensions and one plain assignment)."""
    if params is None:
        return []
    if isinstance(params, (ast.Name, ast.Attribute)) and not _is_parameters_call(params):
        found = assigned_value(module, params)
        if found is not None:
            params = found[0]
    return [node.func.value for node in ast.walk(params) if _is_parameters_call(node)]  # type: ignore[attr-defined]


def _is_parameters_call(node: ast.AST) -> bool:
    return (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
            and node.func.attr in ("parameters", "named_parameters"))


def _trainer_kinds(module: ModuleModel, arguments: ast.Call) -> list[str | None]:
    """What the Trainers built with these TrainingArguments train: their ``peft_config=`` (trl) or ``model=``."""
    kinds: list[str | None] = []
    for call, _info in calls_of_kind(module, "trainer"):
        args = keyword(call, "args", 1)
        if args is None or module.value_of(args).call is not arguments:
            continue
        config, model = keyword(call, "peft_config"), keyword(call, "model", 0)
        kinds.append(_config_family(module, config) if config is not None else
                     _model_kind(module, model) if model is not None else None)
    return kinds


def _trained_kind(kinds: list[str | None], peft_file: bool) -> str:
    """``full`` or a PEFT method family when every owner agrees; when what is trained cannot be told, ``full``
    in a file without PEFT and the widest PEFT range in one with it."""
    if kinds and None not in kinds and len(set(kinds)) == 1:
        return kinds[0]  # type: ignore[return-value]
    return "peft" if peft_file else "full"


def _model_kind(module: ModuleModel, owner: ast.expr) -> str | None:
    info = module.value_of(owner)
    if info.kind != "model" or info.call is None:
        return None
    if info.via == "peft":
        return _peft_family(module, info.call)
    if info.via == "project":
        return _project_model_kind(module, info.qualname)
    for call in module.calls():  # the model handed to get_peft_model elsewhere has the adapters in place
        wrapper = _PEFT_WRAPPERS.get(_callee_name(call))
        wrapped = keyword(call, *wrapper[0]) if wrapper else None
        if wrapped is not None and module.value_of(wrapped).call is info.call:
            return _peft_family(module, call)
    if info.via in ("from_pretrained", "config", "from_config"):
        return "full"
    return None  # a class of this file, a PeftModel loaded from disk ...: cannot tell


def _project_model_kind(module: ModuleModel, helper: str | None) -> str | None:
    """A model another project module builds: PEFT (its config is out of sight) or full, as its summary says."""
    returned = module.project.returned(helper) if module.project is not None else None
    built = returned.built if returned is not None else None
    if built == "peft":
        return "peft"
    return "full" if built in ("from_pretrained", "config", "from_config") else None


def _peft_family(module: ModuleModel, wrapper: ast.Call) -> str:
    where = _PEFT_WRAPPERS.get(_callee_name(wrapper))
    return _config_family(module, keyword(wrapper, *where[1]) if where else None)


def _config_family(module: ModuleModel, config: ast.expr | None) -> str:
    """The method family of a PEFT config expression (``LoraConfig(...)`` or a name bound to one)."""
    if config is not None and not isinstance(config, ast.Call):
        found = assigned_value(module, config)
        config = found[0] if found is not None else None
    if isinstance(config, ast.Call):
        return PEFT_METHODS.get(_callee_name(config), "peft")
    return "peft"


# ------------------------------------------------------------------ is it training anything


def _trains(module: ModuleModel, optimizer: ast.Call) -> bool:
    """False only for an optimizer bound to a name and then never stepped nor handed to other code."""
    statement = module.parent(optimizer)
    if not isinstance(statement, (ast.Assign, ast.AnnAssign)):
        return True  # passed on or returned as it is built
    targets = statement.targets if isinstance(statement, ast.Assign) else [statement.target]
    keys = {key for key in map(expr_key, targets) if key}
    if not keys:
        return True
    for node in module.nodes(ast.Name, ast.Attribute):
        if not isinstance(node.ctx, ast.Load) or expr_key(node) not in keys:  # type: ignore[attr-defined]
            continue
        if module.value_of(node).call is not optimizer:
            continue
        if _steps_or_escapes(module, node):
            return True
    return False


def _steps_or_escapes(module: ModuleModel, reference: ast.AST) -> bool:
    parent = module.parent(reference)
    if isinstance(parent, ast.Attribute):
        return parent.attr == "step"  # opt.step(); opt.zero_grad() / opt.param_groups do not train
    if isinstance(parent, ast.Call) and reference is not parent.func:
        return module.value_of(parent).kind != "scheduler"  # a scheduler only reads it
    if isinstance(parent, ast.keyword):
        call = module.parent(parent)
        return not (isinstance(call, ast.Call) and module.value_of(call).kind == "scheduler")
    return True  # returned, stored, put in a tuple for Trainer(optimizers=...) ...


def _peak_lr(module: ModuleModel, optimizer: ast.Call) -> ast.expr | None:
    """``max_lr`` of a OneCycleLR/CyclicLR built on this optimizer: the rate it actually trains at."""
    for call, _info in calls_of_kind(module, "scheduler"):
        if _callee_name(call) not in _PEAK_LR_SCHEDULERS:
            continue
        target = keyword(call, "optimizer", 0)
        peak = keyword(call, "max_lr", 1)
        if target is not None and peak is not None and not isinstance(peak, (ast.List, ast.Tuple)):
            if target is optimizer or module.value_of(target).call is optimizer:
                return peak
    return None


def _is_literal(node: ast.expr) -> bool:
    return isinstance(node, ast.Constant) or (isinstance(node, ast.UnaryOp) and isinstance(node.operand, ast.Constant))


_SUGGESTIONS = {"full": 2e-5, "lora": 2e-4, "prompt": 3e-2, "ia3": 3e-3, "peft": 2e-4}


def _suggestion(family: str, trained: str) -> float:
    return 1e-2 if family == "sgd" else _SUGGESTIONS[trained]


def _optimizer_family(class_name: str) -> str | None:
    if "Adam" in class_name and "Adafactor" not in class_name:
        return "adam"
    if class_name in ("SGD", "SGD8bit"):
        return "sgd"
    return None


def _training_args_family(module: ModuleModel, call: ast.Call) -> str | None:
    """The Trainer's optimizer: AdamW unless ``optim=`` names something else."""
    optim_node = keyword(call, "optim")
    if optim_node is None:
        return "adam"
    optim = resolve_constant(module, optim_node)
    if isinstance(optim, str):
        return _optimizer_family("Adam" if "adam" in optim.lower() else optim.upper())
    name = getattr(optim_node, "attr", "")  # OptimizerNames.ADAMW_TORCH
    return "adam" if "ADAM" in name.upper() else None


def _fine_tunes_pretrained(module: ModuleModel) -> bool:
    """A model is loaded from a pretrained checkpoint or wrapped by PEFT; or the file builds no model itself but
    loads a tokenizer or config from a checkpoint (the model then comes from a helper). A file that builds
    models only from configs or its own classes trains from scratch, where other ranges apply."""
    models = [info for _call, info in calls_of_kind(module, "model")]
    if any(info.via in ("from_pretrained", "peft") for info in models):
        return True
    if models:
        return False
    return _imports(module, "peft") or any(
        info.via == "from_pretrained" for kind in ("tokenizer", "config") for _call, info in calls_of_kind(module, kind)
    )


def _imports(module: ModuleModel, *packages: str) -> bool:
    return any(target.split(".")[0] in packages for scope in module.scopes() for target in scope.imports.values())


def _freezes_parameters(module: ModuleModel) -> bool:
    """``p.requires_grad = False`` or ``m.requires_grad_(False)`` somewhere: only part of the model trains."""
    for node in nodes_of_type(module, ast.Assign):
        if any(isinstance(t, ast.Attribute) and t.attr == "requires_grad" for t in node.targets):  # type: ignore[attr-defined]
            if isinstance(node.value, ast.Constant) and node.value.value is False:  # type: ignore[attr-defined]
                return True
    return any(
        call_name(call) == "requires_grad_" and isinstance(keyword(call, "requires_grad", 0), ast.Constant)
        and keyword(call, "requires_grad", 0).value is False  # type: ignore[union-attr]
        for call in module.calls()
    )


def _optimises_a_submodule(module: ModuleModel, params: ast.expr | None) -> bool:
    """``AdamW(model.classifier.parameters())`` / ``AdamW(head.parameters())``: a head, not the whole model."""
    if not isinstance(params, ast.Call) or call_name(params) != "parameters":
        return False
    owner = params.func.value if isinstance(params.func, ast.Attribute) else None
    if owner is None:
        return False
    if isinstance(owner, ast.Attribute):
        return True  # model.classifier.parameters()
    found = assigned_value(module, owner)
    return found is not None and is_layer_call(module, found[0])


def _uses_peft(module: ModuleModel) -> bool:
    if _imports(module, "peft"):
        return True
    return any(isinstance(c.func, (ast.Name, ast.Attribute)) and _callee_name(c) in _PEFT_MARKERS for c in module.calls())


def _callee_name(call: ast.Call) -> str:
    func = call.func
    return func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")


#: hyper-parameter search calls whose arguments are (low, high), after the parameter name for optuna's
_SEARCH_SPACES = {"suggest_float": 1, "suggest_loguniform": 1, "suggest_uniform": 1, "loguniform": 0, "uniform": 0,
                  "qloguniform": 0, "quniform": 0}


def _search_range(module: ModuleModel, node: ast.expr) -> tuple[ast.Call, float, float] | None:
    """The (low, high) of the optuna ``trial.suggest_*`` / ray ``tune.*uniform`` call ``node`` takes its value from."""
    for source in [node, *(producers(module, node) or [])]:
        if not isinstance(source, ast.Call) or call_name(source) not in _SEARCH_SPACES:
            continue
        first = _SEARCH_SPACES[call_name(source)]  # type: ignore[index]
        if first == 0 and not (module.qualified_name(source.func) or "").startswith("ray."):
            continue  # numpy/random uniform draw, not a search space
        low = resolve_constant(module, keyword(source, "low", first))
        high = resolve_constant(module, keyword(source, "high", first + 1))
        if all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in (low, high)) and 0 < low <= high:
            return source, float(low), float(high)
    return None
