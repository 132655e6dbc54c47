"""The project around the checked files: its root, a summary of each module, and imports between them.

Real training code is split across files: the seed is set in the entry module, the loader is built in
``data.py``, the epoch loop calls ``train_step()`` from ``training.py``. The semantic model of a checked
module asks its :class:`ModuleContext` about every name it imports from the project:

* :meth:`ModuleContext.function` — the :class:`FunctionSummary` of an imported project function: what it
  returns (a model — how it was built, whether it is a transformers model with the library's output and a
  new head —, optimizer, scheduler, loader and whether it keeps order, dataset, tokenizer; whether each call
  builds a new one) and what it does with its arguments (forward, backward, step, zero_grad, train/eval switches, calls nobody can see
  into), whether it seeds and whether it trains through a framework that owns the loop (Trainer, Lightning);
* :meth:`ModuleContext.value` — what a call of an imported function or class evaluates to;
* :meth:`ModuleContext.seeded_elsewhere` — an imported function the module calls seeds, or a project
  module that imports this one does (the entry script).

Summaries hold only the facts of their own module (plus the raw names it imports), so they are valid for
as long as the file's bytes are; they are cached by content hash (:mod:`ftdoctor.static.cache`).
Imports resolve as Python would run the project: relative to the importing package, from the importing
script's folder, the project root and its ``src/`` folder; only files inside the project root count.
The project root is the nearest folder above a checked file holding ``pyproject.toml``, ``setup.py``,
``setup.cfg`` or ``.git``.
"""

from __future__ import annotations

import ast
import os
import re
import warnings
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterator

from ftdoctor.static.cache import SummaryCache, content_key
from ftdoctor.sources import SKIPPED_DIRS, UndecodableSource, decode_python

if TYPE_CHECKING:
    from ftdoctor.static.analysis_values import ValueInfo
    from ftdoctor.static.model import ModuleModel, Scope

ROOT_MARKERS = ("pyproject.toml", "setup.py", "setup.cfg", ".git")
#: how many import hops a re-export or a function's callees are followed
MAX_HOPS = 4
#: the most files the reverse-import search reads (the entry module that seeds)
MAX_PROJECT_FILES = 5000
#: parsed trees kept for reuse between a module's summary and its check
TREES_KEPT = 64
#: value kinds a summary records for returns (others say nothing the rules use)
RETURN_KINDS = frozenset({"model", "optimizer", "scheduler", "dataloader", "dataset", "tokenizer", "trainer",
                          "accelerator", "scaler", "loss"})
#: constructors of trainers whose ``fit``/``train`` owns the training loop, by qualified-name suffix
FRAMEWORK_TRAINERS = ("lightning.Trainer", "lightning.pytorch.Trainer", "pytorch_lightning.Trainer")
_FRAMEWORK_METHODS = frozenset({"train", "fit"})


def find_project_root(path: Path) -> Path | None:
    """The nearest folder at or above ``path`` (a file's folder) holding a project marker."""
    start = path if path.is_dir() else path.parent
    for folder in (start, *start.parents):
        if any((folder / marker).exists() for marker in ROOT_MARKERS):
            return folder
    return None


# ----------------------------------------------------------------------------- summaries


@dataclass(frozen=True)
class Returned:
    """What a function returns: a value kind, with the facts rules use about it."""

    kind: str
    class_name: str | None = None
    pretrained: bool = False
    is_head: bool | None = None
    checkpoint: str | None = None
    keeps_order: bool | None = None  # loaders: iterates its dataset in order (no shuffle, no sampler)
    line: int = 0
    built: str | None = None  # models: how (ValueInfo.via): from_pretrained, config, peft (adapters in place) ...
    per_call: bool = False  # a new object on every call: constructed unconditionally by the function's only return
    library: bool = False  # models: a transformers model (or its peft wrapper) returning the library's ModelOutput
    new_head: bool = False  # models: a transformers task model whose head is created here (has_new_head)


@dataclass(frozen=True)
class Effect:
    """A protocol event inside a function (``analysis_flow`` kinds); ``param`` names the parameter it acts on."""

    kind: str
    param: str | None
    text: str
    in_loop: bool = False
    conditional: bool = False
    grad_disabled: bool = False


@dataclass(frozen=True)
class FunctionSummary:
    name: str
    params: tuple[str, ...]
    returns: Returned | None = None
    effects: tuple[Effect, ...] = ()
    seeds: bool = False
    framework_training: bool = False
    #: raw qualified names of the imported callables it calls (resolved when asked)
    callees: tuple[str, ...] = ()
    line: int = 0


@dataclass
class ModuleSummary:
    functions: dict[str, FunctionSummary] = field(default_factory=dict)
    #: top-level classes by name -> the kind of their instances (``model``, ``dataset``, ``trainer``, ``unknown``)
    classes: dict[str, str] = field(default_factory=dict)
    #: module-level imports: local name -> raw target (``.data.build_loader``), for re-exports
    imports: dict[str, str] = field(default_factory=dict)
    #: every module the file imports anywhere (raw, with leading dots for relative imports)
    imported_modules: tuple[str, ...] = ()
    seeds: bool = False
    #: model classes built only from layers that act the same in train and eval mode (no dropout, no batch norm)
    mode_free_classes: tuple[str, ...] = ()

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> "ModuleSummary":
        functions = {}
        for name, raw in data["functions"].items():
            returns = Returned(**raw["returns"]) if raw.get("returns") else None
            effects = tuple(Effect(**effect) for effect in raw["effects"])
            functions[name] = FunctionSummary(
                raw["name"], tuple(raw["params"]), returns, effects, raw["seeds"], raw["framework_training"],
                tuple(raw["callees"]), raw["line"],
            )
        return cls(functions, dict(data["classes"]), dict(data["imports"]), tuple(data["imported_modules"]),
                   bool(data["seeds"]), tuple(data.get("mode_free_classes", ())))


def parse_source(source: str, path: str) -> ast.Module:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # SyntaxWarning for invalid escapes etc. is not our business
        return ast.parse(source, filename=path)


def summarize(source: str, path: str, tree: ast.Module | None = None, outlined: bool = False) -> ModuleSummary:
    """The summary of one module's source; empty when it does not parse or cannot be analysed (another
    module's trouble must not cost the checked file its findings; FTDOCTOR_DEBUG=1 re-raises)."""
    from ftdoctor.static.model import build_model

    try:
        module = build_model(tree if tree is not None else parse_source(source, path), source, path)
        summary = _Summarizer(module).summary()
        if outlined:  # the outline leaves out module-level code, where an entry script seeds
            summary.seeds = bool(_SEED_CALL.search(source))
        return summary
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return ModuleSummary()
    except Exception:
        if os.environ.get("FTDOCTOR_DEBUG") == "1":
            raise
        return ModuleSummary()


class _Summarizer:
    def __init__(self, module: "ModuleModel") -> None:
        self.module = module
        #: (function, hops left) -> its opaque parameters: local helpers call each other, often many times over
        self._opaque: dict[tuple[int, int], set[str]] = {}

    def summary(self) -> ModuleSummary:
        module = self.module
        scope = module.module_scope
        functions = {name: self.function(function) for name, function in scope.functions.items()}
        classes = {name: self.class_kind(name) for name, inner in module.classes.items() if inner.parent is scope}
        mode_free = tuple(sorted(name for name, kind in classes.items() if kind == "model" and self.mode_free(name)))
        imported = {target for each in module.scopes() for target in each.imports.values()}
        modules = {target.rsplit(".", 1)[0] for target in imported if "." in target.lstrip(".")} | imported
        return ModuleSummary(
            functions, classes, dict(scope.imports), tuple(sorted(modules)),
            any(_is_seeding(call) for call in module.calls()), mode_free,
        )

    def mode_free(self, name: str) -> bool:
        call = ast.Call(func=ast.Name(id=name, ctx=ast.Load()), args=[], keywords=[])
        return self.module.value_of(call, self.module.tree).mode_free

    def class_kind(self, name: str) -> str:
        """What ``name(...)`` builds, asked as the module itself would ask it (bases resolved there)."""
        call = ast.Call(func=ast.Name(id=name, ctx=ast.Load()), args=[], keywords=[])
        kind = self.module.value_of(call, self.module.tree).kind
        return kind if kind in RETURN_KINDS else "unknown"

    def function(self, function: "Scope") -> FunctionSummary:
        node = function.node
        decorated_off = any(_is_no_grad_decorator(self.module, d) for d in function.decorators)
        callees, seeds, framework = self._calls(function)
        return FunctionSummary(
            function.short_name, tuple(function.params), self._returns(function), self._effects(function, decorated_off),
            seeds, framework, tuple(sorted(callees)), getattr(node, "lineno", 0),
        )

    def _returns(self, function: "Scope") -> Returned | None:
        from ftdoctor.static.loaders import keeps_order
        from ftdoctor.static.modelfacts import has_new_head, is_library_model, output_type_kept

        module = self.module
        for node in module.nodes(ast.Return):
            if module.scope_of(node) is not function or node.value is None or isinstance(node.value, ast.Tuple):
                continue
            info = module.value_of(node.value, node)
            if info.kind not in RETURN_KINDS:
                continue
            ordered = keeps_order(module, info.call) if info.kind == "dataloader" and info.call is not None else None
            checkpoint = info.checkpoint if isinstance(info.checkpoint, str) else None
            built = info.via if info.kind == "model" else None
            library = info.kind == "model" and is_library_model(module, info) and output_type_kept(module, info)
            loaded = info.kind == "model" and info.via in ("from_pretrained", "from_config", "config")
            new_head = loaded and has_new_head(info)
            return Returned(
                info.kind, info.class_name, info.pretrained, info.is_head, checkpoint, ordered, node.lineno, built,
                self._built_per_call(function, info.call), library,
                new_head,
            )
        return None

    def _built_per_call(self, function: "Scope", construction: ast.Call | None) -> bool:
        """The function's only return gives an object its own body constructs on every call: no cache around it
        (a decorator, ``global``/``nonlocal``, an ``if``/``try``/loop between the construction and the body)."""
        module, node = self.module, function.node
        if construction is None or function.is_method or function.decorators:
            return False
        if module.scope_of(construction) is not function:
            return False
        if any(isinstance(n, (ast.Global, ast.Nonlocal)) for n in ast.walk(node)):
            return False
        if sum(module.scope_of(r) is function for r in module.nodes(ast.Return)) != 1:
            return False
        for ancestor in module.ancestors(construction):
            if ancestor is node:
                return True
            if isinstance(ancestor, (ast.If, ast.Try, ast.For, ast.AsyncFor, ast.While, ast.With, ast.AsyncWith,
                                     ast.IfExp, ast.BoolOp, ast.Lambda, ast.comprehension)):
                return False
        return False

    def _effects(self, function: "Scope", decorated_off: bool) -> tuple[Effect, ...]:
        from ftdoctor.static.analysis_flow import ACCUMULATE, statement_events

        body = getattr(function.node, "body", [])
        effects = []
        for event in statement_events(self.module, body, function, summary=True):
            if event.kind == ACCUMULATE:
                continue
            param = _param_of(event.target, function)
            conditional = any(g.arm not in ("loop", "with", "finally") for g in event.guards)
            effects.append(Effect(event.kind, param, event.text, bool(event.loops), conditional,
                                  event.grad_disabled or decorated_off))
        effects.extend(Effect("opaque", name, name) for name in sorted(self._opaque_params(function, 0)))
        return tuple(effects)

    def _opaque_params(self, function: "Scope", depth: int) -> set[str]:
        """Parameters handed to a call nobody can see into (another module, an unknown object)."""
        key = (id(function), depth)
        if key not in self._opaque:
            self._opaque[key] = self._find_opaque_params(function, depth)
        return self._opaque[key]

    def _find_opaque_params(self, function: "Scope", depth: int) -> set[str]:
        from ftdoctor.static.analysis_flow import _TRANSPARENT_ROOTS, argument_for

        module = self.module
        found: set[str] = set()
        params = set(function.params)
        for call in function.calls:
            passed = {a.id for a in [*call.args, *(k.value for k in call.keywords)] if isinstance(a, ast.Name)} & params
            if not passed or _is_protocol_call(call, params):
                continue
            callee = module.resolve_callee(call, function)
            if callee is not None:  # a local helper: what it hands on, mapped back to these parameters
                if depth < MAX_HOPS:
                    inner = self._opaque_params(callee, depth + 1)
                    found |= {_name_of(argument_for(callee, q, call)) for q in inner} & passed  # type: ignore[operator]
                continue
            qualified = module.qualified_name(call.func, function) or ""
            if qualified.split(".", 1)[0] not in _TRANSPARENT_ROOTS:
                found |= passed
        return found

    def _calls(self, function: "Scope") -> tuple[set[str], bool, bool]:
        """Imported callees, whether it seeds, whether a framework trains — through local calls too."""
        module = self.module
        callees: set[str] = set()
        seeds = framework = False
        pending, seen = [function], {id(function)}
        while pending:
            scope = pending.pop()
            for call in scope.calls:
                seeds = seeds or _is_seeding(call)
                framework = framework or self._framework_trains(call, scope)
                local = module.resolve_callee(call, scope)
                if local is not None:
                    if id(local) not in seen and len(seen) < 32:
                        seen.add(id(local))
                        pending.append(local)
                    continue
                qualified = module.qualified_name(call.func, scope)
                if qualified and ("." in qualified or qualified in _imported_names(scope)):
                    callees.add(qualified)
        return callees, seeds, framework

    def _framework_trains(self, call: ast.Call, scope: "Scope") -> bool:
        func = call.func
        if not isinstance(func, ast.Attribute) or func.attr not in _FRAMEWORK_METHODS:
            return False
        info = self.module.value_of(func.value, call)
        if info.kind == "trainer" and func.attr == "train":
            return True
        return func.attr == "fit" and (info.qualname or "").endswith(FRAMEWORK_TRAINERS)


_SEED_CALL = re.compile(r"seed\w*\s*\(", re.I)
_PROTOCOL_METHODS = frozenset({"backward", "step", "zero_grad", "train", "eval", "forward", "generate"})


def _is_protocol_call(call: ast.Call, params: set[str]) -> bool:
    """A call the event walk already reads: an optimizer/model method, or a parameter called (a forward)."""
    from ftdoctor.static.model import call_name

    return call_name(call) in _PROTOCOL_METHODS or (isinstance(call.func, ast.Name) and call.func.id in params)


def _imported_names(scope: "Scope") -> set[str]:
    return {target for each in scope.lookup_scopes() for target in each.imports.values()}


def _name_of(node: ast.AST | None) -> str | None:
    return node.id if isinstance(node, ast.Name) else None


def _param_of(binding: object, function: "Scope") -> str | None:
    if binding is None:
        return None
    origin = binding.origin()  # type: ignore[attr-defined]
    for candidate in (binding, origin):
        if candidate.source == "param" and candidate.scope is function:  # type: ignore[attr-defined]
            return candidate.name  # type: ignore[attr-defined]
    return None


def _is_seeding(call: ast.Call) -> bool:
    """``manual_seed``, ``set_seed``, ``seed_everything``, ``np.random.seed``, a ``seed_all`` helper...
    (a name may only silence seed-not-set, never raise a finding)."""
    from ftdoctor.static.model import call_name

    return "seed" in (call_name(call) or "").lower()


def _is_no_grad_decorator(module: "ModuleModel", decorator: ast.expr) -> bool:
    from ftdoctor.static.analysis_flow import is_grad_disabling

    return is_grad_disabling(decorator, module)


# ----------------------------------------------------------------------------- the project


class Project:
    """One project root: resolves imports between its files and serves their summaries (memoised, cached)."""

    def __init__(self, root: Path, cache: SummaryCache | None) -> None:
        self.root = root
        self.cache = cache
        self._summaries: dict[Path, ModuleSummary | None] = {}
        self._resolved: dict[tuple[str, str], tuple[Path, tuple[str, ...]] | None] = {}
        self._seeding_importers: dict[Path, bool] = {}
        self._files: list[Path] | None = None
        self._seeding_files: list[tuple[Path, bytes]] | None = None
        self._root = str(root)
        self._trees: dict[tuple[str, int, int], ast.Module] = {}
        self._stems: dict[str, bool] = {}
        self._files_seen: dict[str, bool] = {}

    # ------------------------------------------------------------ files
    def summary(self, path: Path, data: bytes | None = None) -> ModuleSummary | None:
        if path in self._summaries:
            return self._summaries[path]
        summary = None
        try:
            data = data if data is not None else path.read_bytes()
            summary = self._load_or_build(path, data)
        except (OSError, UndecodableSource):
            pass
        self._summaries[path] = summary
        return summary

    def _load_or_build(self, path: Path, data: bytes) -> ModuleSummary:
        key = content_key(data)
        if self.cache is not None:
            cached = self.cache.load(key)
            if cached is not None:
                try:
                    return ModuleSummary.from_json(cached)
                except (KeyError, TypeError, ValueError, AttributeError):
                    pass  # an older or damaged entry: rebuild and overwrite it
        source = decode_python(data)
        try:
            tree, outlined = self._summary_tree(source, path)
        except (SyntaxError, ValueError, RecursionError, MemoryError):
            return ModuleSummary()
        summary = summarize(source, str(path), tree, outlined)
        if self.cache is not None:
            self.cache.store(key, summary.to_json())
        return summary

    def parse(self, source: str, path: Path) -> ast.Module:
        """The syntax tree of ``source`` (the file at ``path``), parsed once for its summary and its check:
        a module checked and imported in one run is parsed once. Trees are never modified by the analysis."""
        key = (str(path), len(source), hash(source))
        tree = self._trees.pop(key, None)
        if tree is None:
            tree = parse_source(source, str(path))
        self._trees[key] = tree  # most recent last
        if len(self._trees) > TREES_KEPT:
            del self._trees[next(iter(self._trees))]
        return tree

    def _summary_tree(self, source: str, path: Path) -> tuple[ast.Module, bool]:
        """The tree a summary is made from: the whole file when it is small or already parsed for its check,
        else its outline (:mod:`ftdoctor.static.outline`); True when it is the outline."""
        from ftdoctor.static.outline import OUTLINE_ABOVE, outline

        key = (str(path), len(source), hash(source))
        if len(source) > OUTLINE_ABOVE and key not in self._trees:
            try:
                return parse_source(outline(source), str(path)), True
            except (SyntaxError, ValueError):
                pass  # a layout the line cut does not follow: read it whole
        return self.parse(source, path), False

    def files(self) -> list[Path]:
        """Every ``.py`` file of the project (hidden, virtualenv and build folders skipped)."""
        if self._files is None:
            found: list[Path] = []
            for dirpath, dirnames, filenames in os.walk(self.root):
                here = Path(dirpath)
                dirnames[:] = sorted(d for d in dirnames if not d.startswith(".") and d not in SKIPPED_DIRS
                                     and not (here / d / "pyvenv.cfg").exists())
                found.extend(here / name for name in sorted(filenames) if name.endswith(".py"))
                if len(found) > MAX_PROJECT_FILES:
                    break
            self._files = found
        return self._files

    # ------------------------------------------------------------ imports
    def resolve(self, importer: Path, target: str) -> tuple[Path, tuple[str, ...]] | None:
        """The project file a raw import target names, with the attribute names that follow it
        (``pkg.data.build_loader`` -> ``(…/pkg/data.py, ("build_loader",))``), or None."""
        key = (os.path.dirname(importer), target)
        found = self._resolved.get(key, False)
        if found is False:
            found = self._resolved[key] = self._resolve(importer, target)
        return found  # type: ignore[return-value]

    def _resolve(self, importer: Path, target: str) -> tuple[Path, tuple[str, ...]] | None:
        level = len(target) - len(target.lstrip("."))
        parts = tuple(p for p in target[level:].split(".") if p)
        folder = os.path.dirname(importer)
        if level:
            for _ in range(level - 1):
                folder = os.path.dirname(folder)
            bases = [folder]
        else:
            bases = list(dict.fromkeys([folder, self._root, os.path.join(self._root, "src")]))
        for base in bases:
            if not (base == self._root or base.startswith(self._root + os.sep)):
                continue
            if parts and not level and not self._exists(os.path.join(base, parts[0])):
                continue  # the usual case: a library (torch, transformers) is no file of the project
            for cut in range(len(parts), -1, -1):
                module = self._module_file(base, parts[:cut], allow_package_root=bool(level) or cut > 0)
                if module is not None:
                    return Path(module), parts[cut:]
        return None

    def _exists(self, stem: str) -> bool:
        """A module ``stem.py`` or a folder ``stem`` exists (memoised: many imports share their first name)."""
        found = self._stems.get(stem)
        if found is None:
            found = self._stems[stem] = os.path.isfile(stem + ".py") or os.path.isdir(stem)
        return found

    def _module_file(self, base: str, parts: tuple[str, ...], allow_package_root: bool) -> str | None:
        folder = os.path.join(base, *parts)
        if parts and self._is_file(folder + ".py"):
            return folder + ".py"
        init = os.path.join(folder, "__init__.py")
        return init if (parts or allow_package_root) and self._is_file(init) else None

    def _is_file(self, path: str) -> bool:
        found = self._files_seen.get(path)
        if found is None:
            found = self._files_seen[path] = os.path.isfile(path)
        return found

    def function(self, importer: Path, qualified: str, hops: int = 0) -> FunctionSummary | None:
        found = self._lookup(importer, qualified, hops)
        return found if isinstance(found, FunctionSummary) else None

    def class_kind(self, importer: Path, qualified: str) -> str | None:
        found = self._lookup(importer, qualified, 0)
        return found if isinstance(found, str) else None

    def _lookup(self, importer: Path, qualified: str, hops: int) -> FunctionSummary | str | None:
        located = self.locate(importer, qualified, hops)
        if located is None:
            return None
        summary, name = located
        return summary.functions[name] if name in summary.functions else summary.classes[name]

    def locate(self, importer: Path, qualified: str, hops: int = 0) -> tuple[ModuleSummary, str] | None:
        """The summary of the module defining the function or class ``qualified`` names, and its name there."""
        resolved = self.resolve(importer, qualified)
        if resolved is None or hops > MAX_HOPS:
            return None
        path, rest = resolved
        if len(rest) != 1:
            return None
        summary = self.summary(path)
        if summary is None:
            return None
        name = rest[0]
        if name in summary.functions or name in summary.classes:
            return summary, name
        if name in summary.imports:  # a re-export: `from .data import build_loader` in __init__.py
            return self.locate(path, summary.imports[name], hops + 1)
        return None

    def seeds(self, importer: Path, function: FunctionSummary, hops: int = 0) -> bool:
        """The function seeds, itself or through the project functions it calls."""
        if function.seeds:
            return True
        if hops >= MAX_HOPS:
            return False
        for callee in function.callees:
            inner = self.function(importer, callee)
            resolved = self.resolve(importer, callee)
            if inner is not None and resolved is not None and self.seeds(resolved[0], inner, hops + 1):
                return True
        return False

    def _files_mentioning_seed(self) -> list[tuple[Path, bytes]]:
        """The project's files whose text mentions a seed (read once: the only candidates for seeding)."""
        if self._seeding_files is None:
            self._seeding_files = []
            for path in self.files():
                try:
                    data = path.read_bytes()
                except OSError:
                    continue
                if b"seed" in data:
                    self._seeding_files.append((path, data))
        return self._seeding_files

    def imported_by_seeding_module(self, path: Path) -> bool:
        """A project module that imports ``path`` seeds (the entry script sets the seed, then calls in)."""
        if path not in self._seeding_importers:
            self._seeding_importers[path] = any(self._seeding_importers_of(path))
        return self._seeding_importers[path]

    def _seeding_importers_of(self, path: Path) -> Iterator[bool]:
        name = re.escape(path.parent.name if path.name == "__init__.py" else path.stem).encode()
        imports_it = re.compile(rb"^\s*(from|import)\s[^#\n]*\b" + name + rb"\b", re.M)
        for other, data in self._files_mentioning_seed():
            if other == path or name not in data or not imports_it.search(data):
                continue
            summary = self.summary(other, data)
            if summary is None or not summary.seeds:
                continue
            yield any((self.resolve(other, target) or (None,))[0] == path for target in summary.imported_modules)


class ModuleContext:
    """What one checked module may ask about the rest of its project."""

    def __init__(self, project: Project, path: Path) -> None:
        self.project = project
        self.path = path
        self._found: dict[str, FunctionSummary | str | None] = {}

    def parse(self, source: str) -> ast.Module:
        """This module's syntax tree (shared with its summary when another module imports it)."""
        return self.project.parse(source, self.path)

    def lookup(self, qualified: str) -> FunctionSummary | str | None:
        """The summary of the project function (or the kind of the project class) ``qualified`` names."""
        found = self._found.get(qualified, False)
        if found is False:
            found = self._found[qualified] = self.project._lookup(self.path, qualified, 0)
        return found  # type: ignore[return-value]

    def function(self, qualified: str | None) -> FunctionSummary | None:
        found = self.lookup(qualified) if qualified else None
        return found if isinstance(found, FunctionSummary) else None

    def function_called(self, module: "ModuleModel", call: ast.Call, scope: "Scope") -> FunctionSummary | None:
        """The summary of the imported project function ``call`` runs, or None."""
        qualified = module.qualified_name(call.func, scope)
        if not qualified or qualified in module.functions or qualified in module.classes:
            return None
        return self.function(qualified)

    def value(self, qualified: str, call: ast.Call) -> "ValueInfo | None":
        """What calling an imported project function or class gives, when its summary proves a kind."""
        from ftdoctor.static.analysis_values import ValueInfo

        found = self.lookup(qualified)
        name = qualified.rsplit(".", 1)[-1]
        if isinstance(found, str):
            if found == "unknown":
                return None
            located = self.project.locate(self.path, qualified)
            mode_free = located is not None and located[1] in located[0].mode_free_classes
            return ValueInfo(found, qualified, call, name, via="project", mode_free=mode_free)
        if found is None or found.returns is None:
            return None
        returned = found.returns
        from ftdoctor.static.constants import UNKNOWN

        return ValueInfo(returned.kind, qualified, call, returned.class_name, via="project", is_head=returned.is_head,
                         checkpoint=returned.checkpoint if returned.checkpoint is not None else UNKNOWN,
                         pretrained=returned.pretrained)

    def returned(self, qualified: str | None) -> Returned | None:
        function = self.function(qualified)
        return function.returns if function is not None else None

    def seeded_elsewhere(self, module: "ModuleModel") -> bool:
        """An imported project function this module calls seeds, or a project module importing it seeds."""
        for call in module.calls():
            qualified = module.qualified_name(call.func)
            function = self.function(qualified) if qualified and qualified not in module.functions else None
            resolved = self.project.resolve(self.path, qualified) if function is not None else None
            if function is not None and resolved is not None and self.project.seeds(resolved[0], function):
                return True
        return self.project.imported_by_seeding_module(self.path)

    @staticmethod
    def argument(function: FunctionSummary, param: str, call: ast.Call) -> ast.expr | None:
        """The argument ``call`` passes for ``param`` of an imported function."""
        for kw in call.keywords:
            if kw.arg == param:
                return kw.value
        if param in function.params:
            index = function.params.index(param)
            if index < len(call.args) and not any(isinstance(a, ast.Starred) for a in call.args[: index + 1]):
                return call.args[index]
        return None


_RUNS: dict[str, "Projects"] = {}


class Projects:
    """The projects of one check run, found and summarised lazily; ``cache=False`` (``--no-cache``) keeps
    summaries in memory only. Picklable before use, so a process pool's workers each get their own."""

    def __init__(self, cache: bool = True) -> None:
        self.use_cache = cache
        self.token = os.urandom(8).hex()
        self._roots: dict[Path, Path] = {}
        self._projects: dict[Path, Project] = {}

    def in_this_process(self) -> "Projects":
        """The copy this process already uses for the same run: a pool worker gets each chunk's pickled copy,
        and should keep one memo across its chunks."""
        return _RUNS.setdefault(self.token, self)

    def context(self, path: Path) -> ModuleContext:
        """The place of the file at ``path`` in its project."""
        absolute = Path(os.path.abspath(path))
        folder = absolute.parent
        root = self._roots.get(folder)
        if root is None:
            marked = find_project_root(folder)
            # a script outside any project still sees the modules beside it, but gets no cache folder
            root = marked if marked is not None else folder
            self._roots[folder] = root
            if root not in self._projects:
                cache = SummaryCache(root) if self.use_cache and marked is not None else None
                self._projects[root] = Project(root, cache)
        return ModuleContext(self._projects[root], absolute)
