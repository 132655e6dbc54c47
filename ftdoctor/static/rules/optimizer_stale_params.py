"""optimizer-stale-params: the optimizer captured parameters that were replaced afterwards."""

from __future__ import annotations

import ast
from typing import TYPE_CHECKING, Iterator

from ftdoctor.findings import Finding
from ftdoctor.static import library
from ftdoctor.static.model import Binding, Scope, call_name, expr_key, position
from ftdoctor.static.rule import StaticRule, register_static_rule

if TYPE_CHECKING:
    from ftdoctor.static.model import ModuleModel



@register_static_rule
class OptimizerStaleParams(StaticRule):
    slug = "optimizer-stale-params"

    def check(self, module: "ModuleModel") -> Iterator[Finding]:
        for optimizer in module.bindings_of_kind("optimizer"):
            if optimizer.info.origin is not None or optimizer.info.call is None:
                continue  # aliases (accelerator.prepare) capture nothing new
            code_scope = module.scope_of(optimizer.node)
            for key in _captured_models(module, optimizer, code_scope):
                stale = _first_replacement(module, key, code_scope, optimizer)
                if stale is None or _recreated_after(module, optimizer, code_scope, position(stale[0])):
                    continue
                if _done_before(module, optimizer, code_scope, stale[0]):
                    continue  # a model reloaded after training has ended (to compare outputs)
                node, what = stale
                yield self.finding(
                    module, node,
                    f"`{optimizer.name}` (line {optimizer.line}) holds the parameters of `{key}`, but {what} at line "
                    f"{node.lineno} replaces them, so the optimizer keeps updating the old tensors",
                    f"create {optimizer.name} after the model is final (move the optimizer below line {node.lineno}), "
                    f"or rebuild it there",
                )


def _captured_models(module: "ModuleModel", optimizer: Binding, scope: Scope, depth: int = 0) -> list[str]:
    """Keys of the modules whose ``.parameters()`` / ``.named_parameters()`` the optimizer was built from."""
    params = optimizer.info.argument("params", 0)
    return _parameter_owners(module, params, scope, optimizer.position, 0) if params is not None else []


def _parameter_owners(module: "ModuleModel", node: ast.AST, scope: Scope, at: tuple[int, int], depth: int) -> list[str]:
    owners: list[str] = []
    for sub in ast.walk(node):
        if isinstance(sub, ast.Call) and call_name(sub) in ("parameters", "named_parameters") and isinstance(
            sub.func, ast.Attribute
        ):
            key = expr_key(sub.func.value)
            if key and key not in owners:
                owners.append(key)
        elif isinstance(sub, ast.Name) and depth < 2:
            binding = module.binding_of_key(sub.id, scope, at)
            if binding is not None and binding.value is not None and binding.kind in ("list", "unknown", "dict"):
                owners += [k for k in _parameter_owners(module, binding.value, scope, binding.position, depth + 1)
                           if k not in owners]
    return owners


def _first_replacement(
    module: "ModuleModel", key: str, scope: Scope, optimizer: Binding
) -> tuple[ast.AST, str] | None:
    """The first statement after the optimizer in ``scope`` that swaps out ``key``'s parameters (not one in
    the other arm of an ``if`` than the optimizer: those never both run)."""
    after = optimizer.end_position
    candidates: list[tuple[ast.AST, str]] = []
    for bound, bindings in _scope_bindings(scope):
        for binding in bindings:
            if binding.position <= after or module.scope_of(binding.node) is not scope:
                continue
            if module.exclusive(binding.node, optimizer.node):
                continue
            if (bound == key or key.startswith(bound + ".")) and _is_new_model(binding):
                candidates.append((binding.node, f"`{bound} = {_short(binding.value)}`"))
            elif bound.startswith(key + ".") and _creates_parameters(module, binding):
                candidates.append((binding.node, f"`{bound} = {_short(binding.value)}`"))
    for call in scope.calls:
        func = call.func
        if (position(call) > after and isinstance(func, ast.Attribute) and func.attr == "resize_token_embeddings"
                and expr_key(func.value) == key):
            candidates.append((module.enclosing_statement(call) or call, f"`{key}.resize_token_embeddings(...)`"))
    return min(candidates, key=lambda c: position(c[0])) if candidates else None


def _scope_bindings(scope: Scope) -> Iterator[tuple[str, list[Binding]]]:
    yield from scope.bindings.items()
    if scope.class_scope is not None:
        yield from scope.class_scope.bindings.items()


def _is_new_model(binding: Binding) -> bool:
    """A model built here, not an alias of one (``model.to(device)``, ``accelerator.prepare(model)``,
    ``torch.compile(model)`` keep the same parameters whatever the original was built with)."""
    if binding.source not in ("assign", "annassign") or binding.kind != "model":
        return False
    return binding.info.origin is None


def _creates_parameters(module: "ModuleModel", binding: Binding) -> bool:
    """``model.classifier = nn.Linear(...)``: a new module with parameters (not Dropout/ReLU ...)."""
    value = binding.value
    if binding.source != "assign" or not isinstance(value, ast.Call):
        return False
    qualified = module.qualified_name(value.func, module.scope_of(value)) or ""
    if qualified.startswith("torch.nn."):
        return not library.is_parameter_free_layer(qualified)  # replacing a Dropout loses no parameters
    return binding.kind == "model"


def _recreated_after(module: "ModuleModel", optimizer: Binding, scope: Scope, at: tuple[int, int]) -> bool:
    for _, bindings in _scope_bindings(scope):
        for binding in bindings:
            if binding.name == optimizer.name and binding.position > at and binding.kind == "optimizer" \
                    and binding.info.origin is None:
                return True
    return any(
        call_name(c) == "add_param_group" and position(c) > at and expr_key(c.func.value) == optimizer.name  # type: ignore[attr-defined]
        for c in scope.calls
    )


def _done_before(module: "ModuleModel", optimizer: Binding, scope: Scope, replacement: ast.AST) -> bool:
    """The optimizer stepped (training ran) before ``replacement`` and is never read again: neither after it
    (``return model, optimizer`` counts) nor in a loop around it. An attribute (``self.optimizer``) may be
    used anywhere: never done."""
    if "." in optimizer.name or "[" in optimizer.name:
        return False
    loops = [a for a in module.ancestors(replacement) if isinstance(a, (ast.For, ast.AsyncFor, ast.While))
             and module.scope_of(a) is scope]
    replaced, used = position(replacement), False
    for name in module.nodes(ast.Name):
        if name.id != optimizer.name or not isinstance(name.ctx, ast.Load):  # type: ignore[attr-defined]
            continue
        if scope not in module.scope_of(name).lookup_scopes() or position(name) < optimizer.end_position:
            continue
        if position(name) > replaced or any(_inside(module, name, loop) for loop in loops):
            return False
        used = used or _is_stepped(module, name)
    return used


def _is_stepped(module: "ModuleModel", name: ast.Name) -> bool:
    """``optimizer.step()`` or ``scaler.step(optimizer)``."""
    parent = module.parent(name)
    if isinstance(parent, ast.Attribute) and parent.attr == "step":
        return isinstance(module.parent(parent), ast.Call)
    return isinstance(parent, ast.Call) and call_name(parent) == "step" and name in parent.args


def _inside(module: "ModuleModel", node: ast.AST, container: ast.AST) -> bool:
    return any(ancestor is container for ancestor in module.ancestors(node))


def _short(node: ast.AST | None) -> str:
    text = ast.unparse(node) if node is not None else "..."
    return text if len(text) <= 60 else text[:57] + "..."
