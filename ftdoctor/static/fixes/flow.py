"""What a fixer must know about a loop before changing how it runs: does it train, and what leaves it.

Name-level and conservative (every doubt counts against the fix): a fixer declines when
the code trains, and downgrades its edit to unsafe when values may leave the loop for a
backward pass it cannot follow.
"""

from __future__ import annotations

import ast
from pathlib import Path
from typing import Iterable, Iterator

#: Method calls that make a loop a training loop (one that must keep autograd and training mode):
#: the optimizer protocol, and handing the work to a trainer (`trainer.train()`, `trainer.fit()`).
TRAINING_CALLS = frozenset({"backward", "step", "zero_grad", "train", "fit"})
#: A call to a function of another module by one of these names may train: a fix cannot look inside.
_TRAINING_NAMES = ("train", "fit")
MUTATORS = frozenset({"append", "extend", "insert", "add", "update", "setdefault", "put", "appendleft"})
_AUTOGRAD = frozenset({"backward", "grad"})
_MAX_DEPTH = 6


def functions(tree: ast.Module) -> dict[str, list[ast.AST]]:
    """Every function and method of the file by name (methods too: ``self.name(...)`` calls reach them)."""
    found: dict[str, list[ast.AST]] = {}
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            found.setdefault(node.name, []).append(node)
    return found


def called_functions(tree: ast.Module, node: ast.AST) -> Iterator[ast.AST]:
    """The file's functions that calls inside ``node`` may reach (by name, ``self.name`` included)."""
    table = functions(tree)
    for call in ast.walk(node):
        if isinstance(call, ast.Call):
            name = call.func.id if isinstance(call.func, ast.Name) else None
            if isinstance(call.func, ast.Attribute) and isinstance(call.func.value, ast.Name) \
                    and call.func.value.id in ("self", "cls"):
                name = call.func.attr
            yield from table.get(name or "", [])


def trains(tree: ast.Module, node: ast.AST, depth: int = 0, seen: set[int] | None = None) -> bool:
    """``node`` (or a function of this file it calls, transitively) may train.

    Seen: backward/step/zero_grad/train/fit calls, and calls of functions named like
    ``train*``/``fit*`` whose body is elsewhere (declining a fix is always safe).
    """
    seen = set() if seen is None else seen
    if id(node) in seen or depth > _MAX_DEPTH:
        return depth > _MAX_DEPTH
    seen.add(id(node))
    for call in ast.walk(node):
        if isinstance(call, ast.Call) and isinstance(call.func, ast.Attribute) and call.func.attr in TRAINING_CALLS:
            return True
        if isinstance(call, ast.Call) and isinstance(call.func, ast.Name) \
                and call.func.id.lower().startswith(_TRAINING_NAMES) and call.func.id not in functions(tree):
            return True
    return any(trains(tree, function, depth + 1, seen) for function in called_functions(tree, node))


def calls_project_code(tree: ast.Module, node: ast.AST, path: str | None) -> bool:
    """A call in ``node`` goes to a module of this project (a file beside this one, or a folder
    above): code the fix cannot see, which may train or keep what the loop makes."""
    if not path:
        return False
    imported = _project_names(tree, Path(path).parent)
    return any(isinstance(call, ast.Call) and _root(call.func) in imported for call in ast.walk(node))


def _project_names(tree: ast.Module, folder: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update((a.asname or a.name.split(".")[0]) for a in node.names if _local(a.name, folder))
        elif isinstance(node, ast.ImportFrom) and (node.level or _local(node.module or "", folder)):
            names.update(a.asname or a.name for a in node.names)
    return names


def _local(module: str, folder: Path) -> bool:
    first = module.split(".")[0]
    return bool(first) and any((parent / first).is_dir() or (parent / f"{first}.py").is_file()
                               for parent in [folder, *list(folder.parents)[:2]])


def leaks_state(tree: ast.Module, node: ast.AST) -> bool:
    """``node`` or a function it calls stores into attributes or globals, or grows an attribute's container."""
    for inner in [node, *called_functions(tree, node)]:
        for child in ast.walk(inner):
            if isinstance(child, (ast.Global, ast.Nonlocal)):
                return True
            if isinstance(child, (ast.Attribute, ast.Subscript)) and isinstance(child.ctx, ast.Store) \
                    and _root(child) in ("self", None):
                return True
            if isinstance(child, ast.Call) and isinstance(child.func, ast.Attribute) \
                    and child.func.attr in MUTATORS and isinstance(child.func.value, ast.Attribute):
                return True
    return False


def grown_containers(node: ast.AST) -> set[str]:
    """Containers ``node`` grows or writes into (``preds.append(x)``, ``out[i] = x``, ``self.log.append(x)``)."""
    grown: set[str] = set()
    for child in ast.walk(node):
        if isinstance(child, ast.Call) and isinstance(child.func, ast.Attribute) and child.func.attr in MUTATORS:
            container = _container(child.func.value)
            if container:
                grown.add(container)
        if isinstance(child, ast.Subscript) and isinstance(child.ctx, ast.Store):
            container = _container(child)
            if container:
                grown.add(container)
    return grown


def reaches_autograd(tree: ast.Module, names: Iterable[str]) -> bool:
    """A value flowing from ``names`` (through assignments and container growth) is backpropagated."""
    tainted = set(names)
    changed = True
    while changed:
        changed = False
        for node in ast.walk(tree):
            for target, value in _flows(node):
                if target not in tainted and _reads(value, tainted):
                    tainted.add(target)
                    changed = True
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr in _AUTOGRAD:
            if _reads(node, tainted):
                return True
    return False


def _flows(node: ast.AST) -> Iterator[tuple[str, ast.AST]]:
    """(name written, expression it comes from) for one statement or call."""
    if isinstance(node, ast.Assign):
        for target in node.targets:
            for name in _stored_roots(target):
                yield name, node.value
    elif isinstance(node, (ast.AugAssign, ast.AnnAssign)) and node.value is not None:
        for name in _stored_roots(node.target):
            yield name, node.value
    elif isinstance(node, (ast.For, ast.AsyncFor, ast.comprehension)):
        for name in _stored_roots(node.target):
            yield name, node.iter
    elif isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr in MUTATORS:
        container = _container(node.func.value)
        if container:
            for argument in [*node.args, *(k.value for k in node.keywords)]:
                yield container, argument


def _stored_roots(target: ast.AST) -> Iterator[str]:
    if isinstance(target, (ast.Tuple, ast.List)):
        for element in target.elts:
            yield from _stored_roots(element)
    elif isinstance(target, ast.Starred):
        yield from _stored_roots(target.value)
    else:
        container = _container(target)
        if container:
            yield container


def _reads(node: ast.AST, names: set[str]) -> bool:
    return any(_dotted(n) in names for n in ast.walk(node))


def _container(node: ast.AST) -> str | None:
    """What a write goes into: `total`, `self.history` (for `self.history[i] = x` too)."""
    while isinstance(node, (ast.Subscript, ast.Starred)):
        node = node.value
    return _dotted(node)


def _dotted(node: ast.AST) -> str | None:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        base = _dotted(node.value)
        return f"{base}.{node.attr}" if base else None
    return None


def _root(node: ast.AST) -> str | None:
    while isinstance(node, (ast.Attribute, ast.Subscript, ast.Starred)):
        node = node.value
    return node.id if isinstance(node, ast.Name) else None
