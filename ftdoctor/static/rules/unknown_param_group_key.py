"""unknown-param-group-key: a param-group key the optimizer never reads (``weight_decay_rate`` for AdamW).

An optimizer reads only its own hyper-parameter names from each param group; any other key is
kept and silently ignored. Extra keys are legitimate (``"name"``, a custom ``"lr_scale"``), so a
key is reported only when it is a known foreign spelling of one of the optimizer's own keys
(:data:`FOREIGN_KEYS`) or a near-miss spelling of one (a typo), and the optimizer is one whose
keys :data:`OPTIMIZER_KEYS` lists.
"""

from __future__ import annotations

import ast
import difflib
from typing import Iterator

from ftdoctor.findings import Finding
from ftdoctor.static.constants import producers
from ftdoctor.static.model import ModuleModel, call_name, keyword
from ftdoctor.static.modelfacts import calls_of_kind
from ftdoctor.static.rule import StaticRule, register_static_rule

_COMMON = frozenset({"params", "lr", "weight_decay", "foreach", "maximize", "capturable", "differentiable", "fused",
                     "initial_lr"})  # initial_lr: written by every LR scheduler
_ADAM = _COMMON | {"betas", "eps", "amsgrad", "decoupled_weight_decay"}

#: the param-group keys each optimizer reads (its constructor's hyper-parameters), by class name and library:
#: torch.optim (https://pytorch.org/docs/stable/optim.html), transformers' AdamW and Adafactor
OPTIMIZER_KEYS: dict[tuple[str, str], frozenset[str]] = {
    ("torch", "Adam"): _ADAM,
    ("torch", "AdamW"): _ADAM,
    ("torch", "SGD"): _COMMON | {"momentum", "dampening", "nesterov"},
    ("torch", "RMSprop"): _COMMON | {"alpha", "eps", "momentum", "centered"},
    ("torch", "Adagrad"): _COMMON | {"lr_decay", "eps", "initial_accumulator_value"},
    ("torch", "Adadelta"): _COMMON | {"rho", "eps"},
    ("torch", "Adamax"): _COMMON | {"betas", "eps"},
    ("torch", "NAdam"): _ADAM | {"momentum_decay"},
    ("torch", "RAdam"): _ADAM,
    ("transformers", "AdamW"): frozenset({"params", "lr", "betas", "eps", "weight_decay", "correct_bias", "initial_lr"}),
    ("transformers", "Adafactor"): frozenset({"params", "lr", "eps", "clip_threshold", "decay_rate", "beta1",
                                              "weight_decay", "scale_parameter", "relative_step", "warmup_init",
                                              "initial_lr"}),
}

#: keys from other libraries' optimizers that mean one of torch's (TF/Keras, the original BERT code, timm)
FOREIGN_KEYS: dict[str, str] = {
    "weight_decay_rate": "weight_decay",  # google-research/bert AdamWeightDecayOptimizer, TF/Keras
    "wd": "weight_decay",
    "decay": "weight_decay",
    "l2": "weight_decay",
    "learning_rate": "lr",  # Keras / TrainingArguments spelling
    "epsilon": "eps",
    "beta_1": "betas",
    "beta_2": "betas",
    "beta1": "betas",
    "beta2": "betas",
}
_TYPO_CUTOFF = 0.85


@register_static_rule
class UnknownParamGroupKey(StaticRule):
    slug = "unknown-param-group-key"

    def check(self, module: ModuleModel) -> Iterator[Finding]:
        for call, info in calls_of_kind(module, "optimizer"):
            known = _known_keys(info.qualname or "")
            groups = keyword(call, "params", 0)
            if known is not None and groups is not None:
                yield from self._check_groups(module, list(_group_dicts(module, groups)), known, info.class_name)
        for call in module.calls():  # optimizer.add_param_group({...})
            if call_name(call) != "add_param_group" or not call.args or not isinstance(call.func, ast.Attribute):
                continue
            optimizer = module.value_of(call.func.value)
            known = _known_keys(optimizer.qualname or "") if optimizer.kind == "optimizer" else None
            if known is not None:
                groups = list(_group_dicts(module, call.args[0], single=True))
                yield from self._check_groups(module, groups, known, optimizer.class_name)

    def _check_groups(
        self, module: ModuleModel, groups: list[ast.Dict], known: frozenset[str], optimizer: str | None
    ) -> Iterator[Finding]:
        """One finding per misspelt key, at its first group."""
        by_key: dict[str, list[ast.Constant]] = {}
        for group in groups:
            for key in group.keys:
                if isinstance(key, ast.Constant) and isinstance(key.value, str) and key.value not in known:
                    by_key.setdefault(key.value, []).append(key)
        for name, keys in by_key.items():
            meant = _meant(name, known)
            if meant is None:
                continue
            where = f" (in {len(keys)} param groups)" if len(keys) > 1 else ""
            yield self.finding(
                module, keys[0],
                f"{optimizer or 'the optimizer'} has no param-group key \"{name}\"{where}: it keeps the key and "
                f"ignores it, so the group runs with the optimizer's default {meant}",
                f'use "{meant}"' + (" (a tuple: betas=(beta1, beta2))" if meant == "betas" else ""),
            )


def _known_keys(qualname: str) -> frozenset[str] | None:
    parts = qualname.split(".")
    return OPTIMIZER_KEYS.get((parts[0], parts[-1])) if len(parts) > 1 else None


def _meant(key: str, known: frozenset[str]) -> str | None:
    """The key of ``known`` that ``key`` stands for: a foreign spelling of it, or a near-miss typo."""
    foreign = FOREIGN_KEYS.get(key)
    if foreign is not None:
        return foreign if foreign in known else None
    close = difflib.get_close_matches(key, sorted(known - {"params", "initial_lr"}), n=1, cutoff=_TYPO_CUTOFF)
    return close[0] if close else None


def _group_dicts(module: ModuleModel, node: ast.expr, single: bool = False) -> Iterator[ast.Dict]:
    """The dict literals a param-groups expression is built from (a list of them, a comprehension, names)."""
    sources = producers(module, node) or [node]
    for source in sources:
        if single and isinstance(source, ast.Dict):
            yield source
        elif isinstance(source, (ast.List, ast.Tuple)):
            yield from (e for e in source.elts if isinstance(e, ast.Dict))
        elif isinstance(source, ast.ListComp) and isinstance(source.elt, ast.Dict):
            yield source.elt
