"""The semantic model of one module: what rules query instead of walking the AST.

One iterative pass over the tree (:class:`_Builder`) records, pyflakes-style:

* scopes (module, classes, functions/methods) with their imports, parameters
  and **bindings** (every name, ``self.x``, ``obj.attr`` and ``cfg["key"]``
  assignment, in program order);
* the parent and scope of every node;
* every call, every loop and every ``name.attr`` read.

Everything else is derived lazily from that record and cached: what a binding
*is* (:mod:`ftdoctor.static.analysis_values`: model, optimizer, scheduler,
DataLoader, ...), and the training/evaluation loops with their optimizer-protocol
events (:mod:`ftdoctor.static.analysis_flow`).

Public query API for rules (all cheap lookups):

* :meth:`ModuleModel.qualified_name` — ``nn.Linear`` -> ``torch.nn.Linear``.
* :meth:`ModuleModel.binding_of` — the binding an expression refers to at a point.
* :meth:`ModuleModel.value_of` — what an expression is (a :class:`ValueInfo`).
* :meth:`ModuleModel.bindings_of_kind` — every binding of one kind.
* :meth:`ModuleModel.calls` / :meth:`ModuleModel.calls_to` — calls, optionally by qualified name.
* :meth:`ModuleModel.loops`, :meth:`ModuleModel.training_loops`, :meth:`ModuleModel.evaluation_loops`.
* :meth:`ModuleModel.resolve_callee` / :meth:`ModuleModel.call_sites` — call graph within the module.
* :meth:`ModuleModel.nodes` — every node of given types (use instead of ``ast.walk(module.tree)``).
* :meth:`ModuleModel.statement_calls` — the calls one statement makes, in evaluation order.
* :meth:`ModuleModel.source_segment` — exact source text of a node (cheap; messages).
* :meth:`ModuleModel.parent` / :meth:`ModuleModel.ancestors` / :meth:`ModuleModel.scope_of`.
* :attr:`ModuleModel.uses_trainer` — the script trains through ``Trainer(...).train()``;
  :attr:`ModuleModel.uses_torch` — it imports torch or a library built on it.
* :func:`ftdoctor.static.constants.resolve_constant` — literal values through names, argparse, dicts...

Loops (:class:`ftdoctor.static.analysis_flow.Loop`) expose ``events`` / ``of_kind(kind, max_depth=)``
(forward, backward, step, zero_grad, sched_step, train, eval, opaque, accumulate), ``is_training``,
``is_evaluation``, ``iterable``, ``forward_models``, ``accumulation_guard`` and
``uses_accelerate_accumulation``.
"""

from __future__ import annotations

import ast
import builtins
import re
from dataclasses import dataclass, field
from functools import cached_property
from typing import TYPE_CHECKING, Iterator

from ftdoctor.static.reachability import exits_before, is_dead

if TYPE_CHECKING:
    from ftdoctor.static.analysis_flow import Loop
    from ftdoctor.static.analysis_values import ValueInfo
    from ftdoctor.static.project import ModuleContext

_BUILTINS = frozenset(dir(builtins))

FunctionNode = ast.FunctionDef | ast.AsyncFunctionDef
_CONTEXTS = (ast.Load, ast.Store, ast.Del)
_TORCH_LIBRARIES = frozenset(
    {"torch", "transformers", "accelerate", "peft", "trl", "sentence_transformers", "setfit", "deepspeed",
     "lightning", "pytorch_lightning", "timm", "torchvision", "bitsandbytes"}
)
_COMPREHENSIONS = (ast.ListComp, ast.SetComp, ast.GeneratorExp, ast.DictComp)
_LINE_BREAK = re.compile(r"\r\n|\r|\n")
LoopNode = ast.For | ast.AsyncFor | ast.While


@dataclass(eq=False)
class Scope:
    """A module, class or function body.

    ``name`` is dotted: ``""`` for the module, ``"train"``, ``"Trainer"``,
    ``"Trainer.train_step"``, ``"main.inner"``. Methods see ``self.x`` bindings
    through :attr:`class_scope`.
    """

    kind: str  # "module" | "class" | "function"
    node: ast.AST
    name: str
    parent: "Scope | None"
    class_scope: "Scope | None" = None
    imports: dict[str, str] = field(default_factory=dict)
    bindings: dict[str, list["Binding"]] = field(default_factory=dict)
    params: list[str] = field(default_factory=list)
    calls: list[ast.Call] = field(default_factory=list)
    loops: list[ast.AST] = field(default_factory=list)
    functions: dict[str, "Scope"] = field(default_factory=dict)  # nested defs by simple name

    def __repr__(self) -> str:
        return f"Scope({self.kind} {self.name!r})"

    @property
    def short_name(self) -> str:
        return self.name.rsplit(".", 1)[-1]

    @property
    def is_method(self) -> bool:
        return self.kind == "function" and self.class_scope is not None

    @property
    def self_name(self) -> str | None:
        """The name of a method's first parameter (normally ``self``)."""
        return self.params[0] if self.is_method and self.params else None

    @property
    def decorators(self) -> list[ast.expr]:
        return list(getattr(self.node, "decorator_list", []))

    def lookup_scopes(self) -> Iterator["Scope"]:
        """This scope, then enclosing function scopes and the module (classes are skipped, as Python does)."""
        scope: Scope | None = self
        first = True
        while scope is not None:
            if first or scope.kind != "class":
                yield scope
            first = False
            scope = scope.parent


@dataclass(eq=False)
class Binding:
    """One assignment of a name (``model``), attribute (``self.model``, ``model.classifier``) or key (``cfg['lr']``).

    ``value`` is the bound expression: for ``a, b = x, y`` the matching element, for
    ``m, o = accelerator.prepare(model, opt)`` the matching argument of ``prepare``;
    ``None`` for parameters without default and unresolvable unpacking.
    ``source`` says how it was bound: ``assign``, ``augassign``, ``annassign``,
    ``param``, ``for`` (loop target: ``value`` is the iterable), ``with``,
    ``import``, ``def``, ``class``, ``unpack`` (element ``index`` of ``value``).
    """

    name: str
    node: ast.AST  # the binding statement (or the def / parameter), for locations
    value: ast.expr | None
    scope: Scope
    source: str
    module: "ModuleModel" = field(repr=False)
    index: int | None = None

    def __repr__(self) -> str:
        return f"Binding({self.name!r}, line {self.line}, {self.source})"

    @property
    def line(self) -> int:
        return getattr(self.node, "lineno", 0)

    @property
    def position(self) -> tuple[int, int]:
        return (getattr(self.node, "lineno", 0), getattr(self.node, "col_offset", 0))

    @property
    def end_position(self) -> tuple[int, int]:
        return (getattr(self.node, "end_lineno", 0) or 0, getattr(self.node, "end_col_offset", 0) or 0)

    @cached_property
    def info(self) -> "ValueInfo":
        """What this binding holds (kind, class, checkpoint, constructing call...)."""
        from ftdoctor.static.analysis_values import classify_binding

        return classify_binding(self.module, self)

    @property
    def kind(self) -> str:
        """Shortcut for ``info.kind``; see :mod:`ftdoctor.static.analysis_values` for the kinds."""
        return self.info.kind

    def origin(self) -> "Binding":
        """The first binding of an alias chain (``model = model.to(device)`` -> the ``from_pretrained`` one)."""
        binding, seen = self, set()
        while binding.info.origin is not None and id(binding) not in seen:
            seen.add(id(binding))
            binding = binding.info.origin
        return binding


def expr_key(node: ast.AST | None) -> str | None:
    """The binding key of a reference: ``model``, ``self.model``, ``model.classifier``, ``cfg['lr']``; else None."""
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        base = expr_key(node.value)
        return f"{base}.{node.attr}" if base else None
    if isinstance(node, ast.Subscript) and isinstance(node.slice, ast.Constant):
        base = expr_key(node.value)
        return f"{base}[{node.slice.value!r}]" if base else None
    return None


def keyword(call: ast.Call, name: str, position: int | None = None) -> ast.expr | None:
    """A call's argument by keyword, or by position when given and not passed by keyword."""
    for kw in call.keywords:
        if kw.arg == name:
            return kw.value
    if position is not None and position < len(call.args):
        arg = call.args[position]
        return None if isinstance(arg, ast.Starred) else arg
    return None


def call_name(call: ast.Call) -> str | None:
    """The last name of the called expression: ``optimizer.zero_grad()`` -> ``zero_grad``."""
    func = call.func
    if isinstance(func, ast.Attribute):
        return func.attr
    if isinstance(func, ast.Name):
        return func.id
    return None


def position(node: ast.AST) -> tuple[int, int]:
    return (getattr(node, "lineno", 0), getattr(node, "col_offset", 0))


def _end_position(node: ast.AST) -> tuple[int, int, int, int]:
    # a call ends after the calls in its arguments; ties (same end) cannot occur between two calls
    return (node.end_lineno or 0, node.end_col_offset or 0, -node.lineno, -node.col_offset)  # type: ignore[attr-defined]


class ModuleModel:
    """The semantic model of one module. Build it with :func:`build_model`."""

    def __init__(self, tree: ast.Module, source: str, path: str) -> None:
        self.tree = tree
        self.source = source
        self.path = path
        # the line breaks the tokenizer knows (str.splitlines also splits on \f, \x1c, ... and would shift lines)
        self.lines = _LINE_BREAK.split(source)
        self.module_scope = Scope("module", tree, "", None)
        #: every function/method scope by dotted name ("train", "Trainer.step")
        self.functions: dict[str, Scope] = {}
        #: every class scope by dotted name
        self.classes: dict[str, Scope] = {}
        self.parents: dict[ast.AST, ast.AST] = {}
        self.scope_by_node: dict[ast.AST, Scope] = {}
        self.scope_of_def: dict[ast.AST, Scope] = {}
        self.all_calls: list[ast.Call] = []
        self.all_loops: list[ast.AST] = []
        #: ``name.attr`` reads (Load context) whose base is a plain name
        self.name_attribute_reads: list[ast.Attribute] = []
        #: every node of the tree by its type (see :meth:`nodes`)
        self.nodes_by_type: dict[type, list[ast.AST]] = {}
        #: the calls each statement makes itself (not those of nested statements or lambdas), in source order
        self.calls_by_statement: dict[ast.stmt, list[ast.Call]] = {}
        self._cache: dict[object, object] = {}
        #: the rest of the project (summaries of the modules this one imports); None: this file alone
        self.project: "ModuleContext | None" = None

    # ----------------------------------------------------------------- structure
    def parent(self, node: ast.AST) -> ast.AST | None:
        return self.parents.get(node)

    def ancestors(self, node: ast.AST) -> Iterator[ast.AST]:
        """Enclosing nodes, innermost first, up to the module."""
        parent = self.parents.get(node)
        while parent is not None:
            yield parent
            parent = self.parents.get(parent)

    def scope_of(self, node: ast.AST) -> Scope:
        """The scope whose code contains ``node`` (a def's decorators belong to the enclosing scope)."""
        return self.scope_by_node.get(node, self.module_scope)

    def enclosing_statement(self, node: ast.AST) -> ast.stmt | None:
        current: ast.AST | None = node
        while current is not None and not isinstance(current, ast.stmt):
            current = self.parents.get(current)
        return current

    def exclusive(self, a: ast.AST, b: ast.AST) -> bool:
        """``a`` and ``b`` sit in different arms of one ``if``/``elif``/``else``: they never both run."""
        arms_a, arms_b = self._if_arms(a), self._if_arms(b)
        return any(node in arms_b and arms_b[node] != arm for node, arm in arms_a.items())

    def _if_arms(self, node: ast.AST) -> dict[ast.AST, str]:
        arms: dict[ast.AST, str] = {}
        child = node
        for ancestor in self.ancestors(node):
            if isinstance(ancestor, ast.If) and child is not ancestor.test:
                arms[ancestor] = "body" if child in ancestor.body else "orelse"
            child = ancestor
        return arms

    def nodes(self, *types: type) -> list[ast.AST]:
        """Every node of the given types, in source order — use instead of ``ast.walk(module.tree)``."""
        if len(types) == 1:
            return self.nodes_by_type.get(types[0], [])
        found = [n for t in types for n in self.nodes_by_type.get(t, [])]
        found.sort(key=position)
        return found

    def statement_calls(self, statement: ast.stmt) -> list[ast.Call]:
        """Calls a statement evaluates itself — for compound statements only the header (``if`` test,
        ``for`` iterable, ``with`` items) — in evaluation order: arguments before the call using them."""
        calls = self.calls_by_statement.get(statement, [])
        return sorted(calls, key=_end_position) if len(calls) > 1 else calls

    def source_segment(self, node: ast.AST) -> str:
        """The exact source text of ``node`` (like ``ast.get_source_segment`` without re-splitting the file),
        or its unparsed form when the node carries no location."""
        start, end = getattr(node, "lineno", None), getattr(node, "end_lineno", None)
        col, end_col = getattr(node, "col_offset", None), getattr(node, "end_col_offset", None)
        if None in (start, end, col, end_col) or end > len(self.lines):  # type: ignore[operator]
            return ast.unparse(node)
        lines = self.lines[start - 1:end]  # type: ignore[operator]
        if all(line.isascii() for line in lines):
            if len(lines) == 1:
                return lines[0][col:end_col]
            return "\n".join([lines[0][col:], *lines[1:-1], lines[-1][:end_col]])
        encoded = [line.encode("utf-8") for line in lines]
        if len(encoded) == 1:
            return encoded[0][col:end_col].decode("utf-8", "replace")
        parts = [encoded[0][col:], *encoded[1:-1], encoded[-1][:end_col]]
        return b"\n".join(parts).decode("utf-8", "replace")

    # ----------------------------------------------------------------- names
    def qualified_name(self, node: ast.AST | None, scope: Scope | None = None) -> str | None:
        """The dotted import path an expression refers to, or None.

        ``import torch.nn as nn; nn.Linear`` -> ``torch.nn.Linear``;
        ``from transformers import AutoModel as AM; AM.from_pretrained`` ->
        ``transformers.AutoModel.from_pretrained``. Classes and functions defined in
        this module give their own dotted name (``MyModel``, ``Trainer.step``);
        unshadowed builtins give their name (``dict``). Local variables give None:
        use :meth:`value_of` for those.
        """
        if not isinstance(node, (ast.Attribute, ast.Name)):
            return None
        key = ("qualified", id(node), id(scope))  # rules ask it of every call: the model never changes after build
        if key not in self._cache:
            self._cache[key] = self._qualified_name(node, scope)
        return self._cache[key]  # type: ignore[return-value]

    def _qualified_name(self, node: ast.AST, scope: Scope | None) -> str | None:
        if isinstance(node, ast.Attribute):
            base = self.qualified_name(node.value, scope)
            return f"{base}.{node.attr}" if base else None
        if not isinstance(node, ast.Name):
            return None
        scope = scope or self.scope_of(node)
        name = node.id
        for candidate in scope.lookup_scopes():
            if name in candidate.imports:
                return candidate.imports[name]
            bindings = candidate.bindings.get(name)
            if bindings:
                kinds = {b.source for b in bindings}
                if kinds <= {"def", "class"}:
                    return self._def_name(bindings[-1])
                return None
        return name if name in _BUILTINS else None

    def _def_name(self, binding: Binding) -> str:
        scope = self.scope_of_def.get(binding.node)
        return scope.name if scope is not None else binding.name

    # ----------------------------------------------------------------- bindings
    def bindings(self, key: str, scope: Scope | None = None) -> list[Binding]:
        """All bindings of ``key`` visible from ``scope`` (nearest scope that binds it), in program order."""
        scope = scope or self.module_scope
        for candidate in self._key_scopes(key, scope):
            found = candidate.bindings.get(key)
            if found:
                return found
        return []

    def _key_scopes(self, key: str, scope: Scope) -> Iterator[Scope]:
        self_name = scope.self_name
        if self_name and (key == self_name or key.startswith(self_name + ".")) and scope.class_scope:
            # self.x lives on the class; the method's own rebinding of `self` is not modelled.
            yield scope.class_scope
            return
        yield from scope.lookup_scopes()

    def _normalise_key(self, key: str, scope: Scope) -> str:
        self_name = scope.self_name
        if self_name and self_name != "self" and (key == self_name or key.startswith(self_name + ".")):
            return "self" + key[len(self_name):]
        return key

    def binding_of(self, node: ast.AST, at: ast.AST | None = None) -> Binding | None:
        """The binding that ``node`` (a name, ``self.x``, ``a.b`` or ``cfg['k']``) refers to at ``at``.

        The last binding in the same scope that ends before ``at`` and can reach it wins (one in
        a dead arm such as ``if False:``, or in a block that returns or raises first, cannot);
        a name read in a function but bound in an enclosing scope takes the enclosing scope's
        last binding before the read, else its first. Other bindings that may still hold (the
        other arm of an ``if``, the value before a loop or ``try``) are
        :func:`ftdoctor.static.constants` ``_reaching_bindings``. Returns None for unknown names and for
        expressions that are not references.
        """
        key = expr_key(node)
        if key is None:
            return None
        at = at or node
        return self.binding_of_key(key, self.scope_of(at), position(at))

    def binding_of_key(self, key: str, scope: Scope, at: tuple[int, int] | None = None) -> Binding | None:
        """Like :meth:`binding_of` for a key string seen from ``scope`` at source position ``at``."""
        key = self._normalise_key(key, scope)
        found = self.bindings(key, scope)
        if not found:
            return None
        if at is None:
            return found[-1]
        reaching = [b for b in found if b.end_position <= at]
        if reaching:
            return self._last_reaching(reaching, at) or (found[0] if found[0].scope is not scope else None)
        if found[0].scope is not scope:
            return found[0]
        return None

    def _last_reaching(self, candidates: list[Binding], at: tuple[int, int]) -> Binding | None:
        """The last binding that control can carry to ``at``: not in a dead arm (``if False:``), not in a
        block that returns or raises before ``at``."""
        for binding in reversed(candidates):
            if binding.source in ("param", "def", "class", "import"):
                return binding
            if not is_dead(self, binding.node) and not exits_before(self, binding.node, at):
                return binding
        return None

    def value_of(self, node: ast.AST, at: ast.AST | None = None) -> "ValueInfo":
        """What an arbitrary expression evaluates to (see :mod:`ftdoctor.static.analysis_values`)."""
        from ftdoctor.static.analysis_values import classify_expression

        return classify_expression(self, node, self.scope_of(at or node), position(at or node))

    def all_bindings(self) -> Iterator[Binding]:
        """Every binding in every scope (scope by scope, program order within each)."""
        for scope in self.scopes():
            for group in scope.bindings.values():
                yield from group

    def bindings_of_kind(self, *kinds: str) -> list[Binding]:
        """Every binding whose value is of one of ``kinds`` (``"model"``, ``"optimizer"`` ...), by line."""
        cache_key = ("kind", kinds)
        if cache_key not in self._cache:
            found = [b for b in self.all_bindings() if b.source not in ("def", "class", "import") and b.kind in kinds]
            found.sort(key=lambda b: b.position)
            self._cache[cache_key] = found
        return self._cache[cache_key]  # type: ignore[return-value]

    def scopes(self) -> Iterator[Scope]:
        yield self.module_scope
        yield from self.classes.values()
        yield from self.functions.values()

    # ----------------------------------------------------------------- calls
    def calls(self) -> list[ast.Call]:
        """Every call in the module, in source order."""
        return self.all_calls

    def calls_to(self, *qualified: str) -> list[ast.Call]:
        """Calls whose callee's qualified name is one of ``qualified`` or ends with ``.<one of them>``."""
        found = []
        for call in self.all_calls:
            name = self.qualified_name(call.func)
            if name and any(name == q or name.endswith("." + q) for q in qualified):
                found.append(call)
        return found

    def resolve_callee(self, call: ast.Call, scope: Scope | None = None) -> Scope | None:
        """The function or method of this module that ``call`` runs, or None.

        Handles ``helper(...)`` (nested, then module-level defs), ``self.method(...)``
        (including methods inherited from classes of this module), ``obj.method(...)``
        where ``obj`` is an instance of a class of this module, and ``Class.method(...)``.
        """
        scope = scope or self.scope_of(call)
        func = call.func
        if isinstance(func, ast.Name):
            for candidate in scope.lookup_scopes():
                if func.id in candidate.functions:
                    return candidate.functions[func.id]
                if candidate.bindings.get(func.id):
                    return None
            return None
        if not isinstance(func, ast.Attribute):
            return None
        owner = self._class_of_receiver(func.value, scope, position(call))
        return self.method_of(owner, func.attr) if owner else None

    def _class_of_receiver(self, receiver: ast.expr, scope: Scope, at: tuple[int, int]) -> Scope | None:
        if isinstance(receiver, ast.Name) and scope.self_name == receiver.id:
            return scope.class_scope
        qualified = self.qualified_name(receiver, scope)
        if qualified in self.classes:
            return self.classes[qualified]
        key = expr_key(receiver)
        binding = self.binding_of_key(key, scope, at) if key else None
        if binding is not None:
            return self.classes.get(binding.info.local_class or "")
        return None

    def method_of(self, class_scope: Scope, name: str, _depth: int = 0) -> Scope | None:
        """``Class.name`` or the same method inherited from a base class of this module."""
        method = class_scope.functions.get(name)
        if method is not None or _depth > 5:
            return method
        for base in getattr(class_scope.node, "bases", []):
            base_scope = self.classes.get(self.qualified_name(base, class_scope.parent) or "")
            if base_scope is not None:
                found = self.method_of(base_scope, name, _depth + 1)
                if found is not None:
                    return found
        return None

    def call_sites(self, function: Scope) -> list[ast.Call]:
        """Calls in this module that run ``function`` (for ``__init__``, also ``Class(...)``)."""
        cache_key = ("sites", id(function))
        if cache_key not in self._cache:
            owner = function.class_scope if function.short_name == "__init__" else None
            by_name = self._calls_by_name()
            sites = [call for call in by_name.get(function.short_name, ()) if self.resolve_callee(call) is function]
            if owner is not None:  # Class(...) runs its __init__
                sites += [call for call in by_name.get(owner.short_name, ())
                          if self.classes.get(self.qualified_name(call.func) or "") is owner]
            self._cache[cache_key] = sorted(sites, key=lambda call: (call.lineno, call.col_offset))
        return self._cache[cache_key]  # type: ignore[return-value]

    def _calls_by_name(self) -> dict[str | None, list[ast.Call]]:
        """Every call by the last name of its callee, in source order (indexed once: call sites are asked often)."""
        index = self._cache.get("calls_by_name")
        if index is None:
            index = {}
            for call in self.all_calls:
                index.setdefault(call_name(call), []).append(call)
            self._cache["calls_by_name"] = index
        return index  # type: ignore[return-value]

    def class_bases(self, class_scope: Scope, _depth: int = 0) -> set[str]:
        """Qualified names of a class's bases, transitively through this module's classes."""
        names: set[str] = set()
        for base in getattr(class_scope.node, "bases", []):
            qualified = self.qualified_name(base, class_scope.parent)
            if not qualified:
                continue
            names.add(qualified)
            if qualified in self.classes and _depth < 5:
                names |= self.class_bases(self.classes[qualified], _depth + 1)
        return names

    # ----------------------------------------------------------------- loops
    def loops(self) -> list["Loop"]:
        """Every ``for``/``while`` loop and comprehension, with its protocol events
        (see :mod:`ftdoctor.static.analysis_flow`; ``Loop.iterable`` is what it iterates)."""
        if "loops" not in self._cache:
            from ftdoctor.static.analysis_flow import build_loops

            self._cache["loops"] = build_loops(self)
        return self._cache["loops"]  # type: ignore[return-value]

    def loop(self, node: ast.AST) -> "Loop | None":
        return next((loop for loop in self.loops() if loop.node is node), None)

    def training_loops(self) -> list["Loop"]:
        """Loops that run ``backward()`` themselves (not only through a nested loop), or step an optimizer
        after an inner loop that does. Empty for loops inside ``Trainer`` subclasses."""
        return [loop for loop in self.loops() if loop.is_training]

    def evaluation_loops(self) -> list["Loop"]:
        """Loops that call a model but never ``backward()``, outside model ``forward`` code and not part of
        a training step (functions named like ``evaluate``/``validate``/``test`` count even when called
        from a training loop)."""
        return [loop for loop in self.loops() if loop.is_evaluation]

    @cached_property
    def uses_torch(self) -> bool:
        """True when the module imports torch or a library built on it (transformers, accelerate, peft ...)."""
        roots = {name.split(".", 1)[0] for scope in self.scopes() for name in scope.imports.values()}
        return bool(roots & _TORCH_LIBRARIES)

    @cached_property
    def uses_trainer(self) -> bool:
        """True when the module builds a ``transformers``/``trl`` Trainer (its loop is the library's)."""
        return bool(self.bindings_of_kind("trainer"))


def build_model(tree: ast.Module, source: str, path: str) -> ModuleModel:
    """Build the model of a parsed module in one pass."""
    module = ModuleModel(tree, source, path)
    _Builder(module).run()
    return module


class _Builder:
    """The single, iterative pass: parents, scopes, imports, bindings, calls, loops.

    Iterative (explicit stack) so that deeply nested expressions cannot exhaust the
    interpreter's recursion limit here.
    """

    def __init__(self, module: ModuleModel) -> None:
        self.module = module

    def run(self) -> None:
        module = self.module
        parents, scopes, by_type = module.parents, module.scope_by_node, module.nodes_by_type
        calls_by_statement = module.calls_by_statement
        recorded, outer_fields, stmt_type = self._RECORDED, self._OUTER_FIELDS, ast.stmt
        record = self._record
        Entry = tuple[ast.AST, "ast.AST | None", Scope, "ast.stmt | None"]
        stack: list[Entry] = [(module.tree, None, module.module_scope, None)]
        pop, push = stack.pop, stack.append
        while stack:
            node, parent, scope, statement = pop()
            if parent is not None:
                parents[node] = parent
            scopes[node] = scope
            node_type = type(node)
            group = by_type.get(node_type)
            if group is None:
                by_type[node_type] = [node]
            else:
                group.append(node)
            inner = record(node, scope) if node_type in recorded else None
            if node_type is ast.Call and statement is not None:
                calls_by_statement.setdefault(statement, []).append(node)  # type: ignore[arg-type]
            if node_type is ast.Lambda:
                statement = None  # a lambda's calls run when it is called, not with its statement
            # children in reverse source order so that popping visits them in source order
            for name in reversed(node._fields):
                value = getattr(node, name, None)
                child_scope = scope if inner is None or name in outer_fields else inner
                if isinstance(value, list):
                    for item in reversed(value):
                        if isinstance(item, ast.AST):
                            push((item, node, child_scope, item if isinstance(item, stmt_type) else statement))
                elif isinstance(value, ast.AST) and not isinstance(value, _CONTEXTS):
                    push((value, node, child_scope, value if isinstance(value, stmt_type) else statement))

    #: fields of a def/class that run in the enclosing scope (decorators, bases, return annotation)
    _OUTER_FIELDS = frozenset({"decorator_list", "returns", "bases", "keywords"})

    #: node types the pass records something about (everything else only gets parent and scope)
    _RECORDED = frozenset({
        ast.Call, ast.Attribute, ast.For, ast.AsyncFor, ast.While, ast.Assign, ast.AnnAssign, ast.AugAssign,
        ast.NamedExpr, ast.Import, ast.ImportFrom, ast.With, ast.AsyncWith, ast.FunctionDef, ast.AsyncFunctionDef,
        ast.ClassDef, ast.ListComp, ast.SetComp, ast.GeneratorExp, ast.DictComp,
    })

    def _record(self, node: ast.AST, scope: Scope) -> Scope | None:
        module = self.module
        if isinstance(node, ast.Call):
            module.all_calls.append(node)
            scope.calls.append(node)
        elif isinstance(node, ast.Attribute):
            if isinstance(node.value, ast.Name) and isinstance(node.ctx, ast.Load):
                module.name_attribute_reads.append(node)
        elif isinstance(node, (ast.For, ast.AsyncFor, ast.While)):
            module.all_loops.append(node)
            scope.loops.append(node)
            if not isinstance(node, ast.While):
                self._bind_target(node.target, node.iter, node, scope, "for")
        elif isinstance(node, _COMPREHENSIONS):
            # a loop too (`[model(**b) for b in loader]`); its targets live in its own scope: not bound here
            module.all_loops.append(node)
            scope.loops.append(node)
        elif isinstance(node, (ast.Assign, ast.AnnAssign, ast.AugAssign, ast.NamedExpr)):
            self._record_assignment(node, scope)
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            self._record_import(node, scope)
        elif isinstance(node, (ast.With, ast.AsyncWith)):
            for item in node.items:
                if item.optional_vars is not None:
                    self._bind_target(item.optional_vars, item.context_expr, node, scope, "with")
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            return self._record_function(node, scope)
        elif isinstance(node, ast.ClassDef):
            return self._record_class(node, scope)
        return None

    # ------------------------------------------------------------ definitions
    def _record_function(self, node: FunctionNode, scope: Scope) -> Scope:
        module = self.module
        name = f"{scope.name}.{node.name}" if scope.name else node.name
        class_scope = scope if scope.kind == "class" else None
        inner = Scope("function", node, name, scope, class_scope=class_scope)
        args = node.args
        positional = [*args.posonlyargs, *args.args]
        defaults: list[ast.expr | None] = [None] * (len(positional) - len(args.defaults)) + list(args.defaults)
        for arg, default in zip(positional, defaults):
            self._add(inner, arg.arg, arg, default, "param")
        for arg, default in zip(args.kwonlyargs, args.kw_defaults):
            self._add(inner, arg.arg, arg, default, "param")
        for arg in (args.vararg, args.kwarg):
            if arg is not None:
                self._add(inner, arg.arg, arg, None, "param")
        inner.params = [a.arg for a in positional] + [a.arg for a in args.kwonlyargs]
        module.functions[name] = inner
        module.scope_of_def[node] = inner
        scope.functions[node.name] = inner
        self._add(scope, node.name, node, None, "def")
        return inner

    def _record_class(self, node: ast.ClassDef, scope: Scope) -> Scope:
        module = self.module
        name = f"{scope.name}.{node.name}" if scope.name else node.name
        inner = Scope("class", node, name, scope)
        module.classes[name] = inner
        module.scope_of_def[node] = inner
        self._add(scope, node.name, node, None, "class")
        return inner

    def _record_import(self, node: ast.Import | ast.ImportFrom, scope: Scope) -> None:
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.asname:
                    scope.imports[alias.asname] = alias.name
                else:
                    first = alias.name.split(".", 1)[0]
                    scope.imports[first] = first
            return
        prefix = "." * node.level + (node.module or "")
        for alias in node.names:
            if alias.name == "*":
                continue
            local = alias.asname or alias.name
            scope.imports[local] = f"{prefix}.{alias.name}" if prefix and not prefix.endswith(".") else prefix + alias.name

    # ------------------------------------------------------------ assignments
    def _record_assignment(self, node: ast.AST, scope: Scope) -> None:
        if isinstance(node, ast.Assign):
            for target in node.targets:
                self._bind_target(target, node.value, node, scope, "assign")
        elif isinstance(node, ast.AnnAssign):
            if node.value is not None or scope.kind == "class":
                self._bind_target(node.target, node.value, node, scope, "annassign")
        elif isinstance(node, ast.AugAssign):
            self._bind_target(node.target, node.value, node, scope, "augassign")
        elif isinstance(node, ast.NamedExpr):
            self._bind_target(node.target, node.value, node, scope, "assign")

    def _bind_target(self, target: ast.AST, value: ast.expr | None, node: ast.AST, scope: Scope, source: str) -> None:
        if isinstance(target, (ast.Tuple, ast.List)):
            elements = target.elts
            values = self._unpacked_values(value, len(elements), source)
            for index, element in enumerate(elements):
                if isinstance(element, ast.Starred):
                    continue
                if values is not None:
                    self._bind_target(element, values[index], node, scope, source)
                else:
                    self._bind_one(element, value, node, scope, "unpack" if source != "for" else "for", index)
            return
        self._bind_one(target, value, node, scope, source, None)

    @staticmethod
    def _unpacked_values(value: ast.expr | None, count: int, source: str) -> list[ast.expr] | None:
        """Element-wise values for ``a, b = x, y`` and ``a, b = accelerator.prepare(x, y)``."""
        if source == "for" or value is None:
            return None
        if isinstance(value, (ast.Tuple, ast.List)) and len(value.elts) == count:
            if not any(isinstance(e, ast.Starred) for e in value.elts):
                return list(value.elts)
        if (
            isinstance(value, ast.Call)
            and isinstance(value.func, ast.Attribute)
            and value.func.attr == "prepare"
            and len(value.args) == count
            and not any(isinstance(a, ast.Starred) for a in value.args)
        ):
            return list(value.args)
        return None

    def _bind_one(
        self, target: ast.AST, value: ast.expr | None, node: ast.AST, scope: Scope, source: str, index: int | None
    ) -> None:
        key = expr_key(target)
        if key is None:
            return
        if source in ("for", "with"):
            node = target  # a loop/with target is bound before its body runs, not after the whole block
        owner = scope
        self_name = scope.self_name
        if self_name and (key == self_name or key.startswith(self_name + ".")) and scope.class_scope:
            owner = scope.class_scope
            key = "self" + key[len(self_name):]
        self._add(owner, key, node, value, source, index)

    def _add(
        self, scope: Scope, key: str, node: ast.AST, value: ast.expr | None, source: str, index: int | None = None
    ) -> None:
        binding = Binding(key, node, value, scope, source, self.module, index)
        scope.bindings.setdefault(key, []).append(binding)
