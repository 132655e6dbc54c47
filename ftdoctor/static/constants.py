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
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Iterable

from ftdoctor.static.model import Binding, call_name, expr_key, keyword, position

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
_MAX_CALL_SITES = 8


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
    if isinstance(node, ast.IfExp):
        return _agree(_resolve(module, arm, scope, at, depth + 1) for arm in _if_exp_arms(node))
    key = expr_key(node)
    if key is not None:
        binding = module.binding_of_key(key, scope, at)
        if binding is not None:
            return _agree(_resolve_binding(module, b, depth) for b in _reaching_bindings(module, binding))
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
    if binding.source not in ("assign", "annassign", "param", "unpack"):
        return UNKNOWN
    return _agree(_resolve(module, site.node, site.scope, site.at, depth + 1) for site in _binding_sites(module, binding, depth))


@dataclass(frozen=True)
class _Site:
    """An expression that may have produced a value, and where it is evaluated.

    ``context`` is the chain of calls to this module's functions through which it was reached
    (innermost last): inside ``def get(split): return ds[split]`` reached from ``get("test")``,
    ``split`` is that call's argument, not every caller's.
    """

    node: ast.expr
    scope: "Scope"
    at: tuple[int, int]
    context: tuple[ast.Call, ...] = ()


def _agree(values: Iterable[Any]) -> Any:
    """The one value every producer gives; UNKNOWN when any is unknown, they differ, or there is none."""
    result: Any = UNKNOWN
    for value in values:
        if value is UNKNOWN or (result is not UNKNOWN and value != result):
            return UNKNOWN
        result = value
    return result


def _binding_sites(module: "ModuleModel", binding: Binding, depth: int) -> list[_Site]:
    """What a binding may hold: its assigned value; for a parameter, each call site's argument (or the default)."""
    if binding.source in ("assign", "annassign"):
        if binding.value is None:
            return []
        return [_Site(binding.value, module.scope_of(binding.value), binding.position)]
    if binding.source == "unpack":
        return _unpacked_sites(module, binding, depth)
    if binding.source != "param" or depth > _MAX_DEPTH:
        return []
    from ftdoctor.static.analysis_values import argument_for  # analysis_values imports this module

    function = binding.scope
    default = _Site(binding.value, function.parent or function, binding.position) if binding.value is not None else None
    sites = module.call_sites(function)
    if not sites:
        return [default] if default is not None else []
    found: list[_Site] = []
    for call in sites[:_MAX_CALL_SITES]:
        if any(isinstance(a, ast.Starred) for a in call.args) or any(kw.arg is None for kw in call.keywords):
            return []
        argument = argument_for(function, binding.name, call)
        if argument is not None:
            found.append(_Site(argument, module.scope_of(call), position(call)))
        elif default is not None:
            found.append(default)
        else:
            return []
    return found


def _unpacked_sites(module: "ModuleModel", binding: Binding, depth: int) -> list[_Site]:
    """``a, b = make()`` where ``make`` returns ``x, y``: element ``index`` of each produced tuple."""
    if binding.value is None or binding.index is None:
        return []
    found: list[_Site] = []
    for site in _producers(module, binding.value, module.scope_of(binding.value), binding.position, depth + 1):
        elements = site.node.elts if isinstance(site.node, (ast.Tuple, ast.List)) else None
        if elements is None or binding.index >= len(elements) or any(isinstance(e, ast.Starred) for e in elements):
            return []
        found.append(_Site(elements[binding.index], site.scope, site.at))
    return found


def data_identity(module: "ModuleModel", node: ast.AST, at: ast.AST | None = None) -> frozenset[Any]:
    """What ``node`` holds, as a set comparable across expressions: each producing expression together with the
    arguments of the calls that led to it. ``get_dataset("train")`` and ``get_dataset("test")`` return the
    same expression of ``get_dataset`` but are different data; two reads of one variable are the same data.
    Empty when unknown."""
    anchor = at or node
    return _identity(module, _producers(module, node, module.scope_of(anchor), position(anchor), 0), 0)


def _identity(module: "ModuleModel", sites: list[_Site], depth: int) -> frozenset[Any]:
    keys: set[Any] = set()
    for site in sites:
        node = site.node
        if isinstance(node, ast.Subscript) and isinstance(node.slice, ast.Constant) and depth < _MAX_DEPTH:
            # `data["train"]` written twice is one object: the same container, the same key
            base = _identity(module, _producers(module, node.value, site.scope, site.at, depth + 1, site.context),
                             depth + 1)
            if base:
                keys.add(("item", base, node.slice.value))
                continue
        keys.add((id(node), tuple(_call_key(module, call) for call in site.context)))
    return frozenset(keys)


def _call_key(module: "ModuleModel", call: ast.Call) -> tuple[Any, ...]:
    """The values a call binds to its function's parameters (defaults included): constants by value, other
    expressions by what produces them."""
    from ftdoctor.static.analysis_values import argument_for  # analysis_values imports this module

    function = module.resolve_callee(call)
    if function is None:
        return (id(call),)
    key = []
    for param in function.params[1:] if function.is_method else function.params:
        argument = argument_for(function, param, call)
        if argument is None:
            bound = function.bindings.get(param)
            argument = bound[0].value if bound and bound[0].source == "param" else None
        value = resolve_constant(module, argument) if argument is not None else None
        if value is UNKNOWN or isinstance(value, (list, dict)):
            value = frozenset(id(node) for node in producers(module, argument)) or id(argument)
        key.append((param, value))
    return tuple(key)


def producers(module: "ModuleModel", node: ast.AST, at: ast.AST | None = None) -> list[ast.expr]:
    """The expressions whose value ``node`` may hold (see :func:`_producers`); empty when unknown.

    ``loader`` -> ``DataLoader(...)`` through ``loader = ...``, parameters (every call site's
    argument), ``a, b = make()`` and the values this module's functions return.
    """
    anchor = at or node
    return [site.node for site in _producers(module, node, module.scope_of(anchor), position(anchor), 0)]


def _producers(
    module: "ModuleModel", node: ast.AST, scope: "Scope", at: tuple[int, int], depth: int,
    context: tuple[ast.Call, ...] = (),
) -> list[_Site]:
    """The expressions (not references) whose value ``node`` holds.

    Follows names and attributes to their assignments and parameters to their call sites'
    arguments (only the call in ``context`` when the read was reached through it), and replaces
    calls of this module's functions by their returned expressions. An empty list means "unknown".
    """
    if depth > _MAX_DEPTH:
        return []
    key = expr_key(node)
    if key is not None:
        binding = module.binding_of_key(key, scope, at)
        if binding is None:
            return [_Site(node, scope, at, context)] if not isinstance(node, ast.Name) else []  # type: ignore[arg-type]
        found: list[_Site] = []
        for reaching in _reaching_bindings(module, binding):
            for site in _bound_sites(module, reaching, depth + 1, context):
                expanded = _producers(module, site.node, site.scope, site.at, depth + 1, site.context)
                if not expanded:
                    return []
                found.extend(expanded)
        return found
    if isinstance(node, ast.IfExp):  # `a if cond else b`: either arm (only the live one of a constant condition)
        found = []
        for arm in _if_exp_arms(node):
            expanded = _producers(module, arm, scope, at, depth + 1, context)
            if not expanded:
                return []
            found.extend(expanded)
        return found
    if isinstance(node, ast.Call):
        function = module.resolve_callee(node, scope)
        if function is not None and function.kind == "function" and not function.is_method:
            returns = _returned_expressions(module, function)
            found = []
            for returned in returns:
                expanded = _producers(module, returned, function, position(returned), depth + 1, (*context, node))
                if not expanded:
                    return []
                found.extend(expanded)
            return found
    return [_Site(node, scope, at, context)]  # type: ignore[arg-type]


def _if_exp_arms(node: ast.IfExp) -> list[ast.expr]:
    from ftdoctor.static.reachability import constant_truth

    truth = constant_truth(node.test)
    return [node.body, node.orelse] if truth is None else [node.body if truth else node.orelse]


def _bound_sites(module: "ModuleModel", binding: Binding, depth: int, context: tuple[ast.Call, ...]) -> list[_Site]:
    """:func:`_binding_sites` read through ``context``: a parameter of the function the innermost call runs is
    that call's argument (or the default); other bindings keep the context they were read in."""
    if binding.source == "param" and context and binding.scope.node is _callee_node(module, context[-1]):
        from ftdoctor.static.analysis_values import argument_for  # analysis_values imports this module

        call = context[-1]
        if any(isinstance(a, ast.Starred) for a in call.args) or any(kw.arg is None for kw in call.keywords):
            return []
        argument = argument_for(binding.scope, binding.name, call)
        if argument is not None:
            return [_Site(argument, module.scope_of(call), position(call), context[:-1])]
        parent = binding.scope.parent or binding.scope
        return [_Site(binding.value, parent, binding.position, context[:-1])] if binding.value is not None else []
    sites = _binding_sites(module, binding, depth)
    if binding.source == "param":
        return sites  # read without knowing the caller: every call site, each in its own context
    return [_Site(site.node, site.scope, site.at, context) for site in sites]


def _callee_node(module: "ModuleModel", call: ast.Call) -> ast.AST | None:
    function = module.resolve_callee(call)
    return function.node if function is not None else None


def _reaching_bindings(module: "ModuleModel", binding: Binding) -> list[Binding]:
    """``binding`` and the earlier bindings of the same name that may still hold at the read.

    The model resolves a read to the last binding that reaches it; when that binding sits in an
    arm that may not run — one arm of an ``if`` (``if c: x = a`` / ``else: x = b``, or an ``if``
    without ``else`` after ``x = a``), a loop body, a ``try`` body with handlers or a handler —
    the other arm's binding (or the one before the statement) may be the value too. Bindings in
    dead arms (``if False:``) are never values.
    """
    from ftdoctor.static.reachability import branch_arms, exits_before, is_dead

    if binding.source not in ("assign", "annassign"):
        return [binding]
    arms = branch_arms(module, binding.node)
    if not arms:
        return [binding]
    found = [binding]
    for earlier in reversed(binding.scope.bindings.get(binding.name, [])):
        if earlier is binding or earlier.position >= binding.position or earlier.source not in ("assign", "annassign"):
            continue
        if is_dead(module, earlier.node) or exits_before(module, earlier.node, binding.position):
            continue  # never runs, or its block returns before the read (which comes after `binding`)
        earlier_arms = branch_arms(module, earlier.node)
        shared = arms.keys() & earlier_arms.keys()
        if any(arms[i][0] != earlier_arms[i][0] for i in shared):
            found.append(earlier)  # the other arm of an if/else, the try body next to a handler
            continue
        if not all(arms[i][1] for i in arms.keys() - shared):  # an arm that may not run
            found.append(earlier)
        break
    return found


def _returned_expressions(module: "ModuleModel", function: "Scope") -> list[ast.expr]:
    """The values a function returns (empty when some return is bare or there is none)."""
    returns = [
        node for node in ast.walk(function.node) if isinstance(node, ast.Return) and module.scope_of(node) is function
    ]
    if not returns or any(r.value is None for r in returns):
        return []
    return [r.value for r in returns if r.value is not None]


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
    if name is not None and name in module.functions:  # a function of this module: what it returns
        sites = _producers(module, call, scope, at, depth + 1)
        if sites and all(site.node is not call for site in sites):
            return _agree(_resolve(module, s.node, s.scope, s.at, depth + 1) for s in sites)
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
                nested = isinstance(value_node, ast.Dict)  # a config section: {"optim": {"lr": 3e-5}}
                result[key] = (_resolve_container if nested else _resolve)(module, value_node, scope, at, depth + 1)
        return result
    if isinstance(node, ast.Call) and module.qualified_name(node.func, scope) == "dict":
        return {kw.arg: _resolve(module, kw.value, scope, at, depth + 1) for kw in node.keywords if kw.arg}
    external = _config_container(module, node, scope, at, depth)
    if external is not UNKNOWN:
        return external
    if expr_key(node) is None and not isinstance(node, ast.Call):
        return UNKNOWN
    sites = _producers(module, node, scope, at, depth + 1)
    if len(sites) == 1 and sites[0].node is node:
        return UNKNOWN  # nothing more is known about it
    return _agree(_resolve_container(module, s.node, s.scope, s.at, depth + 1) for s in sites)


def _resolve_attribute(module: "ModuleModel", node: ast.Attribute, scope: "Scope", at: tuple[int, int], depth: int) -> Any:
    """``args.lr`` (argparse), ``cfg.lr`` (dataclass instance), through assignments, parameters and returns."""
    if expr_key(node.value) is None and not isinstance(node.value, ast.Call):
        return UNKNOWN
    sites = _producers(module, node.value, scope, at, depth + 1)
    value = _agree(_attribute_of(module, site, node.attr, depth) for site in sites)
    if value is UNKNOWN:  # cfg.lr on an OmegaConf / wandb / YAML config
        container = _config_container(module, node.value, scope, at, depth + 1)
        if isinstance(container, dict) and node.attr in container:
            return container[node.attr]
    return value


#: calls that wrap a dict into an attribute-access config with the same entries
_DICT_WRAPPERS = frozenset({"omegaconf.OmegaConf.create", "easydict.EasyDict", "addict.Dict", "munch.Munch",
                            "munch.munchify", "types.SimpleNamespace"})
#: calls that parse a YAML document (their first argument: a stream, a path for OmegaConf.load)
_YAML_LOADERS = frozenset({"yaml.safe_load", "yaml.load", "yaml.full_load", "yaml.unsafe_load",
                           "omegaconf.OmegaConf.load"})
#: anything that changes wandb.config after wandb.init (sweeps override it per run)
_WANDB_OVERRIDES = frozenset({"wandb.agent", "wandb.sweep", "wandb.config.update", "wandb.config.setdefaults"})


def _config_container(module: "ModuleModel", node: ast.AST, scope: "Scope", at: tuple[int, int], depth: int) -> Any:
    """Experiment configs the literals of this file do not show directly: ``wandb.config`` (what
    ``wandb.init(config=...)`` was given), ``OmegaConf.create(d)``, YAML files loaded by a literal path,
    and nested sections of those (``cfg["train"]``, ``cfg.train``)."""
    if depth > _MAX_DEPTH:
        return UNKNOWN
    if isinstance(node, ast.Name):
        return _hydra_config(module, node, scope, at)
    if isinstance(node, ast.Attribute):
        if module.qualified_name(node, scope) == "wandb.config" or (node.attr == "config" and _is_wandb_run(module, node.value)):
            return _wandb_config(module, depth)
        section = _resolve_container(module, node.value, scope, at, depth + 1)
        return _section(section, node.attr)
    if isinstance(node, ast.Subscript):
        section = _resolve_container(module, node.value, scope, at, depth + 1)
        return _section(section, _resolve(module, node.slice, scope, at, depth + 1))
    if not isinstance(node, ast.Call) or not node.args:
        return UNKNOWN
    name = module.qualified_name(node.func, scope) or ""
    if name in _DICT_WRAPPERS:
        return _resolve_container(module, node.args[0], scope, at, depth + 1)
    if name in _YAML_LOADERS:
        stream = node.args[0]
        path = _resolve(module, stream, scope, at, depth + 1) if name.startswith("omegaconf") else _opened_path(
            module, stream, scope, at, depth)
        return _yaml_document(module.path, path) if isinstance(path, str) else UNKNOWN
    return UNKNOWN


def _hydra_config(module: "ModuleModel", node: ast.Name, scope: "Scope", at: tuple[int, int]) -> Any:
    """``cfg`` in ``@hydra.main(config_path="conf", config_name="train") def main(cfg)``: conf/train.yaml beside
    the script, when it composes nothing (a ``defaults`` list merges other files, which is not followed)."""
    binding = module.binding_of_key(node.id, scope, at)
    function = binding.scope if binding is not None and binding.source == "param" else None
    if function is None or function.kind != "function" or not function.params or function.params[0] != node.id:
        return UNKNOWN
    for decorator in function.decorators:
        if isinstance(decorator, ast.Call) and module.qualified_name(decorator.func) == "hydra.main":
            folder = resolve_constant(module, keyword(decorator, "config_path", 0))
            name = resolve_constant(module, keyword(decorator, "config_name", 1))
            if not isinstance(folder, str) or not isinstance(name, str):
                return UNKNOWN
            suffix = "" if Path(name).suffix in (".yaml", ".yml") else ".yaml"
            document = _yaml_document(module.path, f"{folder}/{name}{suffix}")
            return UNKNOWN if isinstance(document, dict) and "defaults" in document else document
    return UNKNOWN


def _section(container: Any, key: Any) -> Any:
    value = container.get(key, UNKNOWN) if isinstance(container, dict) and key is not UNKNOWN else UNKNOWN
    return value if isinstance(value, dict) else UNKNOWN


def _is_wandb_run(module: "ModuleModel", node: ast.AST) -> bool:
    sites = producers(module, node)
    return bool(sites) and all(isinstance(s, ast.Call) and module.qualified_name(s.func) == "wandb.init" for s in sites)


def _wandb_config(module: "ModuleModel", depth: int) -> Any:
    """What every ``wandb.init(config=...)`` of the file was given, unless a sweep or an update may change it."""
    calls = module.calls()
    if any((module.qualified_name(c.func) or "") in _WANDB_OVERRIDES for c in calls):
        return UNKNOWN
    configs = [keyword(c, "config") for c in calls if module.qualified_name(c.func) == "wandb.init"]
    if not configs or any(c is None for c in configs):
        return UNKNOWN
    return _agree(
        _resolve_container(module, c, module.scope_of(c), position(c), depth + 1) for c in configs  # type: ignore[arg-type]
    )


def _opened_path(module: "ModuleModel", stream: ast.AST, scope: "Scope", at: tuple[int, int], depth: int) -> Any:
    """The literal path of ``open("cfg.yaml")``, of ``f`` in ``with open("cfg.yaml") as f``, or of ``f.read()``."""
    if isinstance(stream, ast.Call) and isinstance(stream.func, ast.Attribute) and stream.func.attr == "read":
        return _opened_path(module, stream.func.value, scope, at, depth)
    if isinstance(stream, ast.Name):
        binding = module.binding_of_key(stream.id, scope, at)
        if binding is None or binding.value is None or binding.source not in ("with", "assign"):
            return UNKNOWN
        return _opened_path(module, binding.value, module.scope_of(binding.value), binding.position, depth + 1)
    if isinstance(stream, ast.Call) and module.qualified_name(stream.func, scope) in ("open", "io.open") and stream.args:
        return _resolve(module, stream.args[0], scope, at, depth + 1)
    if isinstance(stream, ast.Call) and call_name(stream) == "open" and isinstance(stream.func, ast.Attribute):
        return _resolve(module, stream.func.value, scope, at, depth + 1)  # Path("cfg.yaml").open()
    return UNKNOWN


_ROOT_MARKERS = ("pyproject.toml", "setup.py", "setup.cfg", ".git")


def _yaml_document(module_path: str, relative: str) -> Any:
    """The mapping in a YAML file named by a literal path: beside the script, or up to the project root
    (scripts are run from there)."""
    try:
        base = Path(module_path).resolve().parent
    except (OSError, RuntimeError):
        return UNKNOWN
    for directory in [base, *list(base.parents)[:5]]:
        candidate = directory / relative
        if candidate.is_file():
            return _parse_yaml(str(candidate))
        if any((directory / marker).exists() for marker in _ROOT_MARKERS):
            break
    return UNKNOWN


@lru_cache(maxsize=64)
def _parse_yaml(path: str) -> Any:
    import yaml  # only when a script loads a YAML config

    try:
        with open(path, encoding="utf-8") as handle:
            document = yaml.safe_load(handle.read(1_000_000))
    except (OSError, UnicodeDecodeError, yaml.YAMLError):
        return UNKNOWN
    return document if isinstance(document, dict) else UNKNOWN


def _attribute_of(module: "ModuleModel", site: _Site, attribute: str, depth: int) -> Any:
    call = site.node
    if not isinstance(call, ast.Call):
        return UNKNOWN
    if isinstance(call.func, ast.Attribute) and call.func.attr in ("parse_args", "parse_known_args"):
        return _argparse_default(module, call.func.value, attribute, depth)
    class_scope = module.classes.get(module.qualified_name(call.func, site.scope) or "")
    if class_scope is None:
        return UNKNOWN
    passed = keyword(call, attribute, _field_index(class_scope, attribute))
    if passed is not None:
        return _resolve(module, passed, site.scope, site.at, depth + 1)
    field_bindings = class_scope.bindings.get(attribute)
    if field_bindings and field_bindings[-1].value is not None:
        default = field_bindings[-1]
        return _resolve(module, default.value, class_scope, default.position, depth + 1)  # type: ignore[arg-type]
    return UNKNOWN


def _field_index(class_scope: "Scope", attribute: str) -> int | None:
    """The position of a dataclass-style field (annotated class attribute) in the generated ``__init__``."""
    fields = [name for name, bindings in class_scope.bindings.items() if bindings[0].source == "annassign"]
    return fields.index(attribute) if attribute in fields and "__init__" not in class_scope.functions else None


def _argparse_default(module: "ModuleModel", parser_expr: ast.expr, dest: str, depth: int) -> Any:
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
            return _implicit_default(module, call)
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


def _implicit_default(module: "ModuleModel", call: ast.Call) -> Any:
    """argparse's default when none is given: False for store_true, True for store_false, else None."""
    action = resolve_constant(module, keyword(call, "action"))
    return {"store_true": False, "store_false": True}.get(action, None) if isinstance(action, str) else None
