"""missing-no-grad-eval: evaluation runs the model with autograd on.

Two shapes: an evaluation loop (see :meth:`ModuleModel.evaluation_loops`), and a single forward
outside any loop — a ``predict()`` function, or a notebook's top level — that follows
``model.eval()`` on that very model, in a function (or file) that never computes gradients
(no ``backward``, ``torch.autograd.grad``, ``requires_grad``) and that no training loop calls.
"""

from __future__ import annotations

import ast
from pathlib import PurePath
from typing import TYPE_CHECKING, Iterator

from ftdoctor.findings import Finding
from ftdoctor.static.analysis_flow import BACKWARD, EVAL, FORWARD, STEP, TRAIN, grad_disabled_at, statement_events
from ftdoctor.static.model import call_name
from ftdoctor.static.rule import StaticRule, register_static_rule

if TYPE_CHECKING:
    from ftdoctor.static.model import ModuleModel, Scope

#: calls that show gradients are wanted (saliency maps, adversarial inputs, input attribution)
_GRADIENT_USE = frozenset({"backward", "grad", "requires_grad_", "enable_grad", "vjp", "jacobian"})


@register_static_rule
class MissingNoGradEval(StaticRule):
    slug = "missing-no-grad-eval"

    def check(self, module: "ModuleModel") -> Iterator[Finding]:
        for loop in module.evaluation_loops():
            with_grad = [e for e in loop.of_kind(FORWARD) if not e.grad_disabled]
            if not with_grad:
                continue
            call = with_grad[0]
            yield self.finding(
                module, loop.node,
                f"the evaluation loop (line {loop.line}) calls `{call.text}` (line {call.line}) with autograd "
                "enabled, building a graph nobody uses and wasting memory and time",
                "wrap the evaluation loop in `with torch.no_grad():` (or `torch.inference_mode()`), "
                "or decorate the evaluation function with @torch.no_grad()",
            )
        yield from self._single_forwards(module)

    def _single_forwards(self, module: "ModuleModel") -> Iterator[Finding]:
        if _is_test_code(module.path):
            return  # a test's one forward to compare outputs costs nothing worth a finding
        followed = {node for loop in module.training_loops() for node in loop.events_followed()}
        scopes = [s for s in module.functions.values() if s.node not in followed and not _in_model_class(module, s)
                  and not s.short_name.startswith("test_")]
        if not module.training_loops():
            scopes.append(module.module_scope)
        for scope in scopes:
            if not any(call_name(c) == "eval" and not c.args for c in scope.calls) or _wants_gradients(module, scope):
                continue  # cheap filter first: the shape needs a `.eval()` call in this very scope
            event = _forward_after_eval(module, scope)
            if event is None:
                continue
            yield self.finding(
                module, event.node,
                f"`{event.text}` runs after `{event.text}.eval()` with autograd enabled: this inference builds a "
                "graph nobody uses, holding every activation in memory",
                "wrap the call in `with torch.no_grad():` (or `torch.inference_mode()`), or decorate the function "
                "with @torch.no_grad()",
            )


def _is_test_code(path: str) -> bool:
    """Test and benchmark code as the contract defines it (pytest files, tests/, test/, benchmarks/ folders).
    Remove once the engine exempts test code for every rule whose entry says so."""
    parts = PurePath(path).parts
    name = parts[-1] if parts else ""
    return (name.startswith("test_") or name.endswith("_test.py") or name == "conftest.py"
            or any(part in ("tests", "test", "benchmarks") for part in parts[:-1]))


def _statements(scope: "Scope") -> list[ast.stmt]:
    return list(getattr(scope.node, "body", []))


def _wants_gradients(module: "ModuleModel", scope: "Scope") -> bool:
    return any(call_name(call) in _GRADIENT_USE for call in scope.calls) or any(
        isinstance(node, ast.Attribute) and node.attr == "requires_grad" and isinstance(node.ctx, ast.Store)
        and module.scope_of(node) is scope
        for node in module.nodes(ast.Attribute)
    )


def _forward_after_eval(module: "ModuleModel", scope: "Scope"):  # type: ignore[no-untyped-def]
    """The first forward (outside loops, autograd on) of a model that ``scope`` switched to eval mode before."""
    events = statement_events(module, _statements(scope), scope)
    if any(e.kind in (BACKWARD, STEP) for e in events):
        return None
    in_eval: set[int] = set()
    for event in events:
        origin = event.target_origin()
        if origin is None or origin.kind != "model":
            continue
        if event.kind == EVAL:
            in_eval.add(id(origin))
        elif event.kind == TRAIN:
            in_eval.discard(id(origin))
        elif (
            event.kind == FORWARD and id(origin) in in_eval and not event.loops and not event.grad_disabled
            and module.scope_of(event.node) is scope and not _in_loop(module, event.node, scope)
            and not grad_disabled_at(module, event.node)
        ):
            return event
    return None


def _in_loop(module: "ModuleModel", node: ast.AST, scope: "Scope") -> bool:
    for ancestor in module.ancestors(node):
        if ancestor is scope.node:
            return False
        if isinstance(ancestor, (ast.For, ast.AsyncFor, ast.While, ast.ListComp, ast.GeneratorExp, ast.DictComp,
                                 ast.SetComp)):
            return True
    return False


def _in_model_class(module: "ModuleModel", scope: "Scope") -> bool:
    owner = scope.class_scope
    return owner is not None and any(b.endswith(("Module", "PreTrainedModel")) for b in module.class_bases(owner))
