"""load-best-strategy-mismatch: ``load_best_model_at_end=True`` with strategies transformers rejects.

Mirrors ``TrainingArguments._validate_args`` (transformers 5.x): unless
``save_strategy="best"``, eval and save strategies must be equal, and with ``"steps"``
``save_steps`` must be a round multiple of ``eval_steps``. Also reports both strategies
``"no"``, which transformers accepts but which never evaluates anything.
"""

from __future__ import annotations

import ast
from typing import Iterator

from ftdoctor.findings import Finding
from ftdoctor.static.constants import UNKNOWN, resolve_constant
from ftdoctor.static.model import ModuleModel, expr_key, keyword
from ftdoctor.static.modelfacts import calls_of_kind, subject
from ftdoctor.static.rule import StaticRule, register_static_rule

#: TrainingArguments defaults (transformers 5.x)
DEFAULTS = {"eval_strategy": "no", "save_strategy": "steps", "save_steps": 500, "logging_steps": 500}
_EVAL_STRATEGY_NAMES = ("eval_strategy", "evaluation_strategy")  # the second is the pre-4.46 name
_LARGE_MULTIPLIER = 1_000_000


@register_static_rule
class LoadBestStrategyMismatch(StaticRule):
    slug = "load-best-strategy-mismatch"

    def check(self, module: ModuleModel) -> Iterator[Finding]:
        for call, _info in calls_of_kind(module, "training_args"):
            if resolve_constant(module, keyword(call, "load_best_model_at_end")) is not True:
                continue
            if _mutated_later(module, call):
                continue
            problem = _problem(module, call)
            if problem is not None:
                message, fix = problem
                yield self.finding(module, call, message, fix)


def _argument(module: ModuleModel, call: ast.Call, *names: str) -> object:
    """A keyword's literal value; its default when absent; UNKNOWN when it may come from ``**kwargs``."""
    for name in names:
        node = keyword(call, name)
        if node is not None:
            return _strategy_value(resolve_constant(module, node), node)
    if any(kw.arg is None for kw in call.keywords):
        return UNKNOWN
    return DEFAULTS.get(names[0])


def _strategy_value(value: object, node: ast.expr) -> object:
    """``IntervalStrategy.EPOCH`` -> ``"epoch"``; strings lower-cased."""
    if value is UNKNOWN and isinstance(node, ast.Attribute) and node.attr.isupper():
        return node.attr.lower()
    return value.lower() if isinstance(value, str) else value


def _problem(module: ModuleModel, call: ast.Call) -> tuple[str, str] | None:
    line = call.lineno
    who = f"TrainingArguments {subject(module, call, '')}".strip()
    evaluation = _argument(module, call, *_EVAL_STRATEGY_NAMES)
    save = _argument(module, call, "save_strategy")
    if not isinstance(evaluation, str) or not isinstance(save, str) or save == "best":
        return None
    if evaluation == "no" and save == "no":
        return (
            f"{who} (line {line}) sets load_best_model_at_end=True but never evaluates "
            "(eval_strategy is \"no\"), so there is no best model to load",
            'set eval_strategy and save_strategy to the same value, e.g. "epoch", or drop load_best_model_at_end',
        )
    if evaluation != save:
        return (
            f"{who} (line {line}) sets load_best_model_at_end=True with eval_strategy "
            f"\"{evaluation}\" but save_strategy \"{save}\"; transformers raises ValueError because they must match",
            f'pass save_strategy="{evaluation}" to match eval_strategy'
            if evaluation != "no"
            else 'set eval_strategy and save_strategy to the same value, e.g. "epoch"',
        )
    if evaluation == "steps":
        return _steps_problem(module, call)
    return None


def _steps_problem(module: ModuleModel, call: ast.Call) -> tuple[str, str] | None:
    save_steps = _argument(module, call, "save_steps")
    eval_steps = _argument(module, call, "eval_steps")
    if eval_steps is None:  # transformers falls back to logging_steps
        eval_steps = _argument(module, call, "logging_steps")
    if not _is_number(save_steps) or not _is_number(eval_steps) or not eval_steps:
        return None
    if _steps_compatible(float(save_steps), float(eval_steps)):  # type: ignore[arg-type]
        return None
    who = f"TrainingArguments {subject(module, call, '')}".strip()
    return (
        f"{who} (line {call.lineno}) sets load_best_model_at_end=True with save_steps={save_steps}, "
        f"which is not a round multiple of eval_steps={eval_steps}; transformers raises ValueError",
        f"make save_steps a multiple of eval_steps, e.g. save_steps={_next_multiple(save_steps, eval_steps)}",
    )


def _steps_compatible(save_steps: float, eval_steps: float) -> bool:
    if save_steps % eval_steps == 0:
        return True
    if save_steps < 1 and eval_steps < 1:  # both ratios of the total steps
        return round(save_steps * _LARGE_MULTIPLIER) % round(eval_steps * _LARGE_MULTIPLIER) == 0
    return False


def _next_multiple(save_steps: object, eval_steps: object) -> object:
    if isinstance(save_steps, int) and isinstance(eval_steps, int) and eval_steps >= 1:
        return max(eval_steps, (save_steps // eval_steps) * eval_steps)
    return eval_steps


def _is_number(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _mutated_later(module: ModuleModel, call: ast.Call) -> bool:
    """``args.save_strategy = ...`` or ``args.set_save(...)`` after construction: the literal is not final."""
    statement = module.enclosing_statement(call)
    if not isinstance(statement, ast.Assign) or len(statement.targets) != 1:
        return False
    name = expr_key(statement.targets[0])
    if name is None:
        return False
    prefix = name + "."
    scope = module.scope_of(call)
    touched = any(key.startswith(prefix) for s in scope.lookup_scopes() for key in s.bindings)
    setters = any(
        isinstance(c.func, ast.Attribute)
        and c.func.attr.startswith("set_")
        and expr_key(c.func.value) == name
        for c in module.calls()
    )
    return touched or setters
