"""Constant propagation: the literal value an expression has, when the source shows it.

One entry point, :func:`resolve_constant`. It follows names to their assignments,
``args.x`` to ``parser.add_argument("--x", default=...)``, ``cfg.x`` to dataclass
field defaults (or the keyword the instance was built with), ``config["lr"]`` /
``config.get("lr", d)`` to dict literals and ``dict(lr=...)``, and folds simple
arithmetic. Anything it cannot prove gives :data:`UNKNOWN`.
"""

from __future__ import annotations

import ast
import operator
from typing import TYPE_CHECKING, Any, Callable

from ftdoctor.static.model import Binding, expr_key, keyword, position

if TYPE_CHECKING:
    from ftdoctor.static.model import ModuleModel, Scope


class _Unknown:
    """The value of an expression that cannot be resolved statically (falsy, a singleton)."""

    _instance: "_Unknown | None" = None

    def __new__(cls) -> "_Unknown":
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __repr__(self) -> str:
        return "UNKNOWN"

    def __bool__(self) -> bool:
        return False


UNKNOWN: Any = _Unknown()

_BINARY: dict[type, Callable[[Any, Any], Any]] = {
    ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul, ast.Div: operator.truediv,
    ast.FloorDiv: operator.floordiv, ast.Pow: operator.pow, ast.Mod: operator.mod,
}
_MAX_DEPTH = 10


def resolve_constant(module: "ModuleModel", node: ast.AST | None, at: ast.AST | None = None) -> Any:
    """The literal value of ``node`` read at ``at`` (default: where it stands), or :data:`UNKNOWN`."""
    if node is None:
        return UNKNOWN
    anchor = at or node
    return _resolve(module, node, module.scope_of(anchor), position(anchor), 0)


def _resolve(module: "ModuleModel", node: ast.AST, scope: "Scope", at: tuple[int, int], depth: int) -> Any:
    if depth > _MAX_DEPTH:
        return UNKNOWN
    if isinstance(node, ast.Constant):
        return node.value
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.UAdd)):
        value = _resolve(module, node.operand, scope, at, depth + 1)
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return -value if isinstance(node.op, ast.USub) else value
        return UNKNOWN
    if isinstance(node, ast.BinOp) and type(node.op) in _BINARY:
        left = _resolve(module, node.left, scope, at, depth + 1)
        right = _resolve(module, node.right, scope, at, depth + 1)
        if _is_number(left) and _is_number(right):
            try:
                return _BINARY[type(node.op)](left, right)
            except (ArithmeticError, ValueError, OverflowError):
                return UNKNOWN
        return UNKNOWN
    if isinstance(node, (ast.Tuple, ast.List)):
        values = [_resolve(module, e, scope, at, depth + 1) for e in node.elts]
        if any(v is UNKNOWN for v in values):
            return UNKNOWN
        return tuple(values) if isinstance(node, ast.Tuple) else values
    if isinstance(node, ast.Call):
        return _resolve_call(module, node, scope, at, depth)
    key = expr_key(node)
    if key is not None:
        binding = module.binding_of_key(key, scope, at)
        if binding is not None:
            return _resolve_binding(module, binding, depth)
    if isinstance(node, ast.Attribute):
        return _resolve_attribute(module, node, scope, at, depth)
    if isinstance(node, ast.Subscript):
        container = _resolve_container(module, node.value, scope, at, depth)
        item = _resolve(module, node.slice, scope, at, depth + 1)
        if isinstance(container, dict) and item in container:
            return container[item]
    return UNKNOWN


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _resolve_binding(module: "ModuleModel", binding: Binding, depth: int) -> Any:
    if binding.value is None or binding.source not in ("assign", "annassign", "param"):
        return UNKNOWN
    if binding.source == "param":
        return _resolve_param_default(module, binding, depth)
    anchor = binding.value
    return _resolve(module, binding.value, module.scope_of(anchor), binding.position, depth + 1)


def _resolve_param_default(module: "ModuleModel", binding: Binding, depth: int) -> Any:
    """A parameter's default, when no call site in the module passes that parameter."""
    function = binding.scope
    for site in module.call_sites(function):
        if any(kw.arg == binding.name or kw.arg is None for kw in site.keywords):
            return UNKNOWN
        params = function.params[1:] if function.is_method else function.params
        if binding.name in params and params.index(binding.name) < len(site.args):
            return UNKNOWN
    return _resolve(module, binding.value, function.parent or function, binding.position, depth + 1)  # type: ignore[arg-type]


def _resolve_call(module: "ModuleModel", call: ast.Call, scope: "Scope", at: tuple[int, int], depth: int) -> Any:
    name = module.qualified_name(call.func, scope)
    if name in ("float", "int", "str") and len(call.args) == 1:
        value = _resolve(module, call.args[0], scope, at, depth + 1)
        try:
            return {"float": float, "int": int, "str": str}[name](value) if value is not UNKNOWN else UNKNOWN
        except (TypeError, ValueError):
            return UNKNOWN
    if name == "dict":
        return _resolve_container(module, call, scope, at, depth)
    if isinstance(call.func, ast.Attribute) and call.func.attr == "get" and call.args:
        container = _resolve_container(module, call.func.value, scope, at, depth)
        item = _resolve(module, call.args[0], scope, at, depth + 1)
        if isinstance(container, dict):
            if item in container:
                return container[item]
            return _resolve(module, call.args[1], scope, at, depth + 1) if len(call.args) > 1 else None
    return UNKNOWN


def _resolve_container(module: "ModuleModel", node: ast.AST, scope: "Scope", at: tuple[int, int], depth: int) -> Any:
    """A dict whose resolvable entries are known (unresolvable values map to UNKNOWN)."""
    if depth > _MAX_DEPTH:
        return UNKNOWN
    if isinstance(node, ast.Dict):
        result = {}
        for key_node, value_node in zip(node.keys, node.values):
            if key_node is None:
                continue
            key = _resolve(module, key_node, scope, at, depth + 1)
            if key is not UNKNOWN:
                result[key] = _resolve(module, value_node, scope, at, depth + 1)
        return result
    if isinstance(node, ast.Call) and module.qualified_name(node.func, scope) == "dict":
        return {kw.arg: _resolve(module, kw.value, scope, at, depth + 1) for kw in node.keywords if kw.arg}
    key = expr_key(node)
    if key is not None:
        binding = module.binding_of_key(key, scope, at)
        if binding is not None and binding.value is not None and binding.source in ("assign", "annassign"):
            return _resolve_container(module, binding.value, module.scope_of(binding.value), binding.position, depth + 1)
    return UNKNOWN


def _resolve_attribute(module: "ModuleModel", node: ast.Attribute, scope: "Scope", at: tuple[int, int], depth: int) -> Any:
    """``args.lr`` (argparse) and ``cfg.lr`` (dataclass instance)."""
    key = expr_key(node.value)
    owner = module.binding_of_key(key, scope, at) if key else None
    if owner is None or not isinstance(owner.value, ast.Call):
        return UNKNOWN
    call = owner.value
    if isinstance(call.func, ast.Attribute) and call.func.attr in ("parse_args", "parse_known_args"):
        return _argparse_default(module, call.func.value, node.attr, owner, depth)
    class_name = module.qualified_name(call.func, module.scope_of(call))
    class_scope = module.classes.get(class_name or "")
    if class_scope is not None:
        passed = keyword(call, node.attr)
        if passed is not None:
            return _resolve(module, passed, module.scope_of(call), owner.position, depth + 1)
        field_bindings = class_scope.bindings.get(node.attr)
        if field_bindings:
            return _resolve_binding(module, field_bindings[-1], depth)
    return UNKNOWN


def _argparse_default(module: "ModuleModel", parser_expr: ast.expr, dest: str, owner: Binding, depth: int) -> Any:
    parser_key = expr_key(parser_expr)
    if parser_key is None:
        return UNKNOWN
    for call in module.all_calls:
        func = call.func
        if not (isinstance(func, ast.Attribute) and func.attr == "add_argument" and expr_key(func.value) == parser_key):
            continue
        if dest not in _argparse_dests(call):
            continue
        default = keyword(call, "default")
        if default is None:
            return None
        value = _resolve(module, default, module.scope_of(call), position(call), depth + 1)
        converter = module.qualified_name(keyword(call, "type")) if keyword(call, "type") is not None else None
        if isinstance(value, str) and converter in ("float", "int"):
            try:
                return float(value) if converter == "float" else int(value)
            except ValueError:
                return UNKNOWN
        return value
    return UNKNOWN


def _argparse_dests(call: ast.Call) -> set[str]:
    explicit = keyword(call, "dest")
    if isinstance(explicit, ast.Constant) and isinstance(explicit.value, str):
        return {explicit.value}
    names = [a.value for a in call.args if isinstance(a, ast.Constant) and isinstance(a.value, str)]
    return {name.lstrip("-").replace("-", "_") for name in names}
