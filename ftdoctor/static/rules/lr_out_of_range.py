"""lr-out-of-range: a learning rate far outside what works for fine-tuning with this optimizer.

Reads the ``lr`` of Adam/AdamW/SGD optimizers and ``TrainingArguments(learning_rate=...)``
through constant propagation (module constants, argparse defaults, dataclass fields, dict
configs). Only scripts that fine-tune a pretrained model are checked: training a network
from scratch has other sensible ranges.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass
from typing import Iterator, Mapping, Sequence

from ftdoctor.findings import Finding
from ftdoctor.static.constants import producers, resolve_constant
from ftdoctor.static.model import ModuleModel, call_name, keyword
from ftdoctor.static.modelfacts import assigned_value, calls_of_kind, describe, is_layer_call, nodes_of_type, subject
from ftdoctor.static.rule import StaticRule, register_static_rule


@dataclass(frozen=True)
class LrRange:
    low: float
    high: float
    context: str  # how messages name the situation

    def __contains__(self, lr: float) -> bool:
        return self.low <= lr <= self.high


#: (optimizer family, PEFT context) -> range; `[tool.ftdoctor.lr-range]` overrides them by name.
DEFAULT_LR_RANGES: dict[tuple[str, bool], LrRange] = {
    ("adam", False): LrRange(1e-6, 1e-4, "full fine-tuning with {optimizer}"),
    ("adam", True): LrRange(1e-5, 1e-3, "LoRA/PEFT fine-tuning with {optimizer}"),
    ("sgd", False): LrRange(1e-4, 1e-1, "fine-tuning with SGD"),
    ("sgd", True): LrRange(1e-4, 1e-1, "fine-tuning with SGD"),
}

#: the names of `[tool.ftdoctor.lr-range]` and the ranges each one sets
RANGE_NAMES: dict[str, tuple[tuple[str, bool], ...]] = {
    "full": (("adam", False),),
    "peft": (("adam", True),),
    "sgd": (("sgd", False), ("sgd", True)),
}

_PEFT_MARKERS = ("get_peft_model", "LoraConfig", "prepare_model_for_kbit_training", "PeftModel", "AdaLoraConfig")


def lr_ranges(overrides: Mapping[str, Sequence[float]]) -> dict[tuple[str, bool], LrRange]:
    """The default ranges with ``{"full"|"peft"|"sgd": (low, high)}`` applied."""
    ranges = dict(DEFAULT_LR_RANGES)
    for name, (low, high) in overrides.items():
        for key in RANGE_NAMES[name]:
            ranges[key] = LrRange(float(low), float(high), DEFAULT_LR_RANGES[key].context)
    return ranges


@register_static_rule
class LrOutOfRange(StaticRule):
    slug = "lr-out-of-range"

    def check(self, module: ModuleModel) -> Iterator[Finding]:
        self.ranges = lr_ranges(self.options)
        if not _fine_tunes_pretrained(module):
            return
        peft = _uses_peft(module)
        freezes = _freezes_parameters(module)
        for call, info in calls_of_kind(module, "optimizer"):
            family = _optimizer_family(info.class_name or "")
            lr_node = keyword(call, "lr", 1)
            if family is not None and lr_node is not None:
                optimizer = f"{info.class_name} {subject(module, call, '')}".strip()
                partial = freezes or _optimises_a_submodule(module, keyword(call, "params", 0))
                yield from self._check_lr(module, lr_node, family, peft, partial, optimizer)
        for call, _info in calls_of_kind(module, "training_args"):
            lr_node = keyword(call, "learning_rate")
            family = _training_args_family(module, call)
            if lr_node is not None and family is not None:
                arguments = subject(module, call, "TrainingArguments")
                yield from self._check_lr(
                    module, lr_node, family, peft, freezes, f"the Trainer's optimizer ({arguments})"
                )

    def _check_lr(
        self, module: ModuleModel, node: ast.expr, family: str, peft: bool, partial: bool, optimizer: str
    ) -> Iterator[Finding]:
        lr = resolve_constant(module, node)
        if not isinstance(lr, (int, float)) or isinstance(lr, bool):
            yield from self._check_search_range(module, node, family, peft, partial, optimizer)
            return
        allowed = self.ranges[(family, peft)]
        if lr in allowed or (partial and lr > allowed.high):
            return  # training only a head (linear probing) legitimately uses higher rates
        context = allowed.context.format(optimizer=optimizer)
        direction = "high" if lr > allowed.high else "low"
        shown = f"{lr:g}" if _is_literal(node) else f"`{describe(module, node)}` = {lr:g}"
        message = (
            f"learning rate {shown} (line {node.lineno}) is too {direction} for {context}: "
            f"the working range is {allowed.low:g} to {allowed.high:g}"
        )
        suggestion = _suggestion(family, peft)
        fix = f"use a learning rate around {suggestion:g}" + (
            "; if the value is deliberate, add `# noqa: FTD104` on this line" if direction == "low" else ""
        )
        yield self.finding(module, node, message, fix)


    def _check_search_range(
        self, module: ModuleModel, node: ast.expr, family: str, peft: bool, partial: bool, optimizer: str
    ) -> Iterator[Finding]:
        """``lr = trial.suggest_float("lr", 1e-4, 1e-1)`` / ``tune.loguniform(...)``: judge the searched range's ends."""
        found = _search_range(module, node)
        if found is None:
            return
        search, low, high = found
        allowed = self.ranges[(family, peft)]
        outside = [end for end in (low, high) if end not in allowed and not (partial and end > allowed.high)]
        if not outside:
            return
        context = allowed.context.format(optimizer=optimizer)
        yield self.finding(
            module, search,
            f"the learning-rate search range {low:g} to {high:g} (line {search.lineno}) reaches "
            f"{' and '.join(f'{end:g}' for end in outside)}, outside the working range for {context} "
            f"({allowed.low:g} to {allowed.high:g}): those trials are wasted on runs that diverge or barely move",
            f"search within {allowed.low:g} to {allowed.high:g} (log scale), e.g. around {_suggestion(family, peft):g}",
        )


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


def _is_literal(node: ast.expr) -> bool:
    return isinstance(node, ast.Constant) or (isinstance(node, ast.UnaryOp) and isinstance(node.operand, ast.Constant))


def _suggestion(family: str, peft: bool) -> float:
    if family == "sgd":
        return 1e-2
    return 2e-4 if peft else 2e-5


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
