"""optimizer-recreated-in-loop: the optimizer (its Adam moments) or the LR scheduler is rebuilt on every epoch.

Reported when an optimizer/scheduler construction runs unconditionally on every pass of a loop that
trains with it (the loop, or a loop nested in it, steps that very optimizer/scheduler), or in a
per-epoch function that every call site runs on every pass of such a loop — and the model it
holds is the same one each time. Silent when the pass rebuilds or reloads the model (k-fold,
hyper-parameter search), when the construction depends on the pass (loop variable, names the pass
assigns), and when the pass changes which parameters train (gradual unfreezing).
"""

from __future__ import annotations

import ast
from typing import Iterator

from ftdoctor.findings import Finding
from ftdoctor.static.analysis_flow import BACKWARD, LOOP_NODES, SCHED_STEP, STEP, Loop
from ftdoctor.static.constants import resolve_constant
from ftdoctor.static.model import Binding, ModuleModel, Scope, call_name, expr_key, keyword
from ftdoctor.static.modelfacts import calls_of_kind, dataloader_calls, describe, iterated_expression
from ftdoctor.static.rule import StaticRule, register_static_rule

_STATEMENT_LOOPS = (ast.For, ast.AsyncFor, ast.While)
#: calls in a pass that reset or swap the model, or change which parameters train
_MODEL_RESETS = frozenset({"load_state_dict", "requires_grad_", "from_pretrained", "reset_parameters",
                           "init_weights", "apply", "get_peft_model", "freeze", "unfreeze"})


@register_static_rule
class OptimizerRecreatedInLoop(StaticRule):
    slug = "optimizer-recreated-in-loop"

    def check(self, module: ModuleModel) -> Iterator[Finding]:
        for kind, event in (("optimizer", STEP), ("scheduler", SCHED_STEP)):
            for call in _constructions(module, kind):
                binding = _bound_to(module, call)
                if binding is None or (kind == "optimizer" and _stateless(module, call)):
                    continue
                if kind == "scheduler" and _one_pass_long(call):
                    continue  # a schedule exactly one epoch long, rebuilt per epoch: warm restarts on purpose
                found = _recreating_loop(module, call, binding, event)
                if found is None:
                    continue
                loop, via = found
                what = "its Adam moments and step count restart" if kind == "optimizer" else \
                    "its schedule (warm-up, decay) restarts from step 0"
                yield self.finding(
                    module, call,
                    f"`{binding.name}` is rebuilt on every pass of the loop at line {loop.line}{via}, so {what} "
                    "every time while the model keeps training",
                    f"create the {kind} once, before the loop, and keep stepping the same one",
                )


def _stateless(module: ModuleModel, call: ast.Call) -> bool:
    """Plain SGD (no momentum) keeps no state: rebuilding it loses nothing."""
    if (module.qualified_name(call.func) or "").rsplit(".", 1)[-1] != "SGD":
        return False
    momentum = keyword(call, "momentum", 2)
    return momentum is None or resolve_constant(module, momentum) == 0


def _one_pass_long(call: ast.Call) -> bool:
    """A length argument that is exactly ``len(loader)``."""
    return any(
        isinstance(arg, ast.Call) and isinstance(arg.func, ast.Name) and arg.func.id == "len"
        for arg in [*call.args, *(kw.value for kw in call.keywords)]
    )


def _bound_to(module: ModuleModel, call: ast.Call) -> Binding | None:
    statement = module.enclosing_statement(call)
    if not (isinstance(statement, ast.Assign) and statement.value is call and len(statement.targets) == 1):
        return None
    key = expr_key(statement.targets[0])
    if key is None:
        return None
    end = (statement.end_lineno or statement.lineno, (statement.end_col_offset or 0) + 1)  # just after it
    return module.binding_of_key(key, module.scope_of(statement), end)


def _constructions(module: ModuleModel, kind: str) -> list[ast.Call]:
    """Calls that build an optimizer / scheduler (``get_linear_schedule_with_warmup`` is lower-case), and calls of
    another project module's function that builds a new one on every call (``build_optimizer(model)``)."""
    found = [call for call, _ in calls_of_kind(module, kind)]
    if kind == "scheduler":
        found += [c for c in module.calls() if "schedul" in (call_name(c) or "") and not (call_name(c) or "A")[0].isupper()
                  and module.value_of(c).kind == "scheduler" and module.value_of(c).call is c]
    if module.project is not None:
        found += [c for c in module.calls() if _built_per_call_elsewhere(module, c, kind)]
    return found


def _built_per_call_elsewhere(module: ModuleModel, call: ast.Call, kind: str) -> bool:
    """A project helper returning a fresh ``kind`` on each call; a plain SGD (maybe stateless) is left alone."""
    qualified = module.qualified_name(call.func)
    summary = module.project.function(qualified) if module.project is not None and qualified else None
    if summary is None or summary.returns is None or summary.returns.kind != kind or not summary.returns.per_call:
        return False  # the summary decides first: classifying every call of the module costs a quarter of a check
    info = module.value_of(call)  # and this module reads the call as that helper's product, not a local value
    return info.via == "project" and info.kind == kind and info.call is call and info.class_name != "SGD"


def _recreating_loop(module: ModuleModel, call: ast.Call, binding: Binding, event: str) -> tuple[Loop, str] | None:
    """The loop that rebuilds ``binding`` on every pass and trains with it, and how (``via`` text)."""
    loop_node = _unconditional_loop(module, call)
    if loop_node is not None:
        loop = module.loop(loop_node)
        if loop is not None and _trains_with(loop, binding, event) and not _pass_changes_model(module, loop, _inputs(module, call)):
            return loop, ""
        return None
    function = module.scope_of(call)
    if function.kind != "function" or function.is_method or _inside_loop(module, call, function.node):
        return None
    return _per_epoch_function(module, function, call, binding, event)


def _unconditional_loop(module: ModuleModel, node: ast.AST) -> ast.AST | None:
    """The innermost loop around ``node`` in its function, when nothing but ``with`` blocks lies between."""
    for ancestor in module.ancestors(node):
        if isinstance(ancestor, _STATEMENT_LOOPS):
            return ancestor if _repeats_training(module, ancestor) else None
        if isinstance(ancestor, (ast.If, ast.Try, ast.Match, ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda,
                                 ast.ClassDef, ast.IfExp, ast.BoolOp, *LOOP_NODES)):
            return None
    return None


def _repeats_training(module: ModuleModel, loop: ast.AST) -> bool:
    """An epoch loop (``while``, ``for _ in range(n)``, also under ``tqdm``/``trange``) or a loop over batches —
    not a loop over a collection of tasks, datasets or configurations, where a fresh optimizer may be the point."""
    if isinstance(loop, ast.While):
        return True
    iterable = iterated_expression(module, loop.iter)  # type: ignore[attr-defined]
    if isinstance(iterable, ast.Call) and (module.qualified_name(iterable.func) or "").rsplit(".", 1)[-1] in (
        "range", "trange"
    ):
        return True
    return any(True for _ in dataloader_calls(module, loop.iter))  # type: ignore[attr-defined]


def _inside_loop(module: ModuleModel, node: ast.AST, stop: ast.AST) -> bool:
    for ancestor in module.ancestors(node):
        if ancestor is stop:
            return False
        if isinstance(ancestor, LOOP_NODES):
            return True
    return False


def _trains_with(loop: Loop, binding: Binding, event: str) -> bool:
    """The loop runs backward and steps ``binding`` (the optimizer/scheduler built in it)."""
    return loop.has(BACKWARD) and any(e.target is not None and e.target.origin() is binding for e in loop.of_kind(event))


def _inputs(module: ModuleModel, call: ast.Call) -> set[str]:
    """Names a construction reads, less the optimizer a scheduler wraps (rebuilt in the same pass, reported
    on its own)."""
    names = set()
    for node in ast.walk(call):
        if isinstance(node, ast.Name) and module.value_of(node).kind not in ("optimizer", "scheduler"):
            names.add(node.id)
    return names


def _names(node: ast.AST) -> set[str]:
    return {n.id for n in ast.walk(node) if isinstance(n, ast.Name)}


def _pass_changes_model(module: ModuleModel, loop: Loop, used: set[str]) -> bool:
    """The pass builds a model, resets/unfreezes one, or the construction depends on the pass (``used``:
    the names the construction reads, in the loop's own code)."""
    body = getattr(loop.node, "body", [])
    assigned = {n for statement in body for node in ast.walk(statement) for n in _stored_names(node)}
    assigned |= _stored_names_of_target(getattr(loop.node, "target", None))
    if used & assigned:
        return True
    for statement in body:
        for node in ast.walk(statement):
            if _resets_model(module, node):
                return True
    for event in loop.events:  # reached through called functions
        if isinstance(event.node, ast.Call) and call_name(event.node) in _MODEL_RESETS:
            return True
    return _calls_reset(module, loop)


def _calls_reset(module: ModuleModel, loop: Loop) -> bool:
    """A function the pass calls (followed by the loop's walk) builds or resets a model."""
    loop.events  # noqa: B018 - fills followed_functions
    return any(_resets_model(module, node) for definition in loop.followed_functions for node in ast.walk(definition))


def _resets_model(module: ModuleModel, node: ast.AST) -> bool:
    """A call that builds or reloads a model or changes which parameters train, or ``p.requires_grad = ...``."""
    if isinstance(node, ast.Attribute):
        return node.attr == "requires_grad" and isinstance(node.ctx, ast.Store)
    if not isinstance(node, ast.Call):
        return False
    if call_name(node) in _MODEL_RESETS:
        return True
    info = module.value_of(node)
    return info.kind == "model" and info.origin is None


def _argument_names(function: Scope, site: ast.Call, construction: ast.Call) -> set[str]:
    """The caller's names that reach the construction through the function's parameters."""
    from ftdoctor.static.analysis_values import argument_for

    names: set[str] = set()
    for param in _names(construction) & set(function.params):
        argument = argument_for(function, param, site)
        if argument is not None:
            names |= _names(argument)
    return names


def _stored_names(node: ast.AST) -> set[str]:
    if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
        return {node.id}
    return set()


def _stored_names_of_target(target: ast.AST | None) -> set[str]:
    return {n.id for n in ast.walk(target) if isinstance(n, ast.Name)} if target is not None else set()


def _per_epoch_function(
    module: ModuleModel, function: Scope, call: ast.Call, binding: Binding, event: str
) -> tuple[Loop, str] | None:
    """``def train_epoch(model, ...): optimizer = AdamW(...); for batch in loader: ...`` run on every pass
    of a caller's loop: every call site sits unconditionally in a loop, over a model the loop keeps."""
    inner = [loop for loop in module.loops() if loop.scope is function and _trains_with(loop, binding, event)]
    if not inner:
        return None
    sites = module.call_sites(function)
    if not sites:
        return None
    found: tuple[Loop, str] | None = None
    for site in sites:
        loop_node = _unconditional_loop(module, site)
        loop = module.loop(loop_node) if loop_node is not None else None
        if loop is None or _pass_changes_model(module, loop, _argument_names(function, site, call)):
            return None
        found = found or (loop, f" (through `{function.short_name}()`, line {site.lineno})")
    return found
