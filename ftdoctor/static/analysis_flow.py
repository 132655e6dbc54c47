"""Loops and the optimizer protocol inside them.

For every ``for``/``while`` loop the body is walked once in program order,
following calls into this module's functions and methods (up to
:data:`MAX_CALL_DEPTH` levels, arguments mapped to parameters), and turned into
a flat list of :class:`Event` s:

========== ===============================================================
forward    a value proven to be a model is called (``model(**batch)``, ``model.generate``/``forward``);
           a callee merely *named* like a model is not (see :mod:`ftdoctor.static.library`)
backward   ``loss.backward()``, ``accelerator.backward(loss)``, ``scaler.scale(loss).backward()``
step       ``optimizer.step()`` / ``scaler.step(optimizer)`` / ``engine.step()``; ``optimizer.step(closure)``
           runs the closure's events first (LBFGS: the forward and backward are in the closure)
zero_grad  ``optimizer.zero_grad()``, ``model.zero_grad()``, ``p.grad = None``, ``p.grad.zero_()``,
           entering a context that starts from fresh gradients (``dist_autograd.context()``),
           a training engine's ``step()`` (DeepSpeed)
sched_step ``scheduler.step()``
train      ``model.train()`` / ``model.train(True)``
eval       ``model.eval()`` / ``model.train(False)``
opaque     a call this module cannot see into that receives the optimizer or model
accumulate ``total += x``, ``total = total + x``, ``items.append(x)`` (``argument`` = ``x``)
========== ===============================================================

Each event knows the conditions it sits under (:class:`Guard`: ``if`` arms,
nested loops, ``with`` blocks, ``try`` arms — including those inside called
functions), whether autograd is disabled there, and the binding its receiver
resolves to in the loop's own context.
"""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass, field
from functools import cached_property
from typing import TYPE_CHECKING, Iterable, Iterator

from ftdoctor.static import library
from ftdoctor.static.analysis_tensors import backpropagated_keys, backward_loss
from ftdoctor.static.analysis_values import argument_for
from ftdoctor.static.model import Binding, Scope, call_name, expr_key, position

if TYPE_CHECKING:
    from ftdoctor.static.model import ModuleModel

FORWARD = "forward"
BACKWARD = "backward"
STEP = "step"
ZERO_GRAD = "zero_grad"
SCHED_STEP = "sched_step"
TRAIN = "train"
EVAL = "eval"
OPAQUE = "opaque"
ACCUMULATE = "accumulate"

#: how many levels of calls into this module's functions a loop body is followed
MAX_CALL_DEPTH = 4

COMPREHENSIONS = (ast.ListComp, ast.SetComp, ast.GeneratorExp, ast.DictComp)
_COMPOUND = (ast.If, ast.While, ast.For, ast.AsyncFor, ast.With, ast.AsyncWith, ast.Match)
#: every node the model treats as a loop: statements and comprehensions
LOOP_NODES = (ast.For, ast.AsyncFor, ast.While, *COMPREHENSIONS)

_EVAL_FUNCTION = re.compile(r"eval|valid|test|predict|infer|score|metric", re.I)
_NO_GRAD = library.NO_GRAD_CONTEXTS
#: callee roots whose functions never clear gradients or step an optimizer behind our back
_TRANSPARENT_ROOTS = frozenset(
    {"torch", "transformers", "accelerate", "numpy", "np", "math", "logging", "tqdm", "wandb", "mlflow", "datasets",
     "sklearn", "evaluate", "os", "sys", "json", "time", "random", "print", "len", "range", "enumerate", "zip",
     "float", "int", "str", "list", "dict", "tuple", "sum", "min", "max", "round", "isinstance", "hasattr", "getattr"}
)


@dataclass(frozen=True)
class Guard:
    """A condition an event sits under: ``arm`` is ``body``/``orelse`` (``if``/``try``), ``handler``,
    ``finally``, ``loop`` (a nested loop's body), ``with`` or ``caseN``."""

    node: ast.AST
    arm: str

    @property
    def test(self) -> ast.expr | None:
        return getattr(self.node, "test", None) if self.arm in ("body", "orelse") else None


@dataclass(frozen=True)
class Frame:
    """A function being walked, with its parameters mapped to the caller's arguments."""

    scope: Scope
    args: tuple[tuple[str, ast.expr, "Frame"], ...] = ()
    caller: "Frame | None" = None

    def argument(self, name: str) -> tuple[ast.expr, "Frame"] | None:
        for param, expr, frame in self.args:
            if param == name:
                return expr, frame
        return None


@dataclass(eq=False)
class Event:
    """One protocol event in a loop (see the module docstring for kinds)."""

    kind: str
    node: ast.AST  # where it happens (maybe inside a called function)
    site: ast.AST  # the statement-level call or node in the loop's own code that leads to it
    target: Binding | None  # the receiver's binding, resolved in the loop's context
    text: str  # the receiver as written at `site` when it can be traced, else at `node`
    guards: tuple[Guard, ...]
    loops: tuple[ast.AST, ...]  # nested loops between the analysed loop and the event
    grad_disabled: bool
    argument: ast.expr | None = None  # backward: the loss; accumulate: the added value; step: scaler's optimizer
    frame: Frame | None = field(default=None, repr=False)
    order: int = 0

    @property
    def depth(self) -> int:
        return len(self.loops)

    @property
    def line(self) -> int:
        return getattr(self.site, "lineno", 0)

    def exclusive_with(self, other: "Event") -> bool:
        """True when the two events sit in different arms of the same ``if``/``try``/``match``."""
        arms = {g.node: g.arm for g in self.guards if g.arm not in ("loop", "with", "finally")}
        return any(g.node in arms and arms[g.node] != g.arm for g in other.guards)

    def under(self, node: ast.AST) -> bool:
        return any(g.node is node for g in self.guards)

    def target_origin(self) -> Binding | None:
        return self.target.origin() if self.target is not None else None


@dataclass(eq=False)
class Loop:
    """A loop and its events. ``scope`` is the function (or module) containing it."""

    node: ast.AST
    scope: Scope
    module: "ModuleModel" = field(repr=False)
    #: definitions of the functions the event walk went into (filled with :attr:`events`)
    followed_functions: frozenset[ast.AST] = field(default=frozenset(), repr=False)

    @property
    def line(self) -> int:
        return getattr(self.node, "lineno", 0)

    @property
    def is_comprehension(self) -> bool:
        return isinstance(self.node, COMPREHENSIONS)

    @property
    def iterable(self) -> ast.expr | None:
        """What the loop iterates (``loader`` in ``for batch in loader`` or ``[... for batch in loader]``)."""
        if isinstance(self.node, (ast.For, ast.AsyncFor)):
            return self.node.iter
        if isinstance(self.node, COMPREHENSIONS):
            return self.node.generators[0].iter
        return None

    @cached_property
    def events(self) -> list[Event]:
        walker = _Walker(self.module, self)
        root = Frame(self.scope)
        disabled = grad_disabled_at(self.module, self.node)
        visiting = frozenset({self.scope.node})
        if isinstance(self.node, ast.While):
            walker.walk_expression(self.node.test, root, (), (), disabled, None, 0, visiting)
        if isinstance(self.node, COMPREHENSIONS):
            for part in _comprehension_body(self.node):
                walker.walk_expression(part, root, (), (), disabled, None, 0, visiting)
        else:
            walker.walk_block(getattr(self.node, "body", []), root, (), (), disabled, None, 0, visiting)
        for index, event in enumerate(walker.events):
            event.order = index
        self.followed_functions = walker.followed
        return walker.events

    def of_kind(self, *kinds: str, max_depth: int | None = None) -> list[Event]:
        """Events of ``kinds`` in program order; ``max_depth=0`` keeps those not inside a nested loop."""
        return [e for e in self.events if e.kind in kinds and (max_depth is None or e.depth <= max_depth)]

    def has(self, kind: str, max_depth: int | None = None) -> bool:
        return any(e.kind == kind and (max_depth is None or e.depth <= max_depth) for e in self.events)

    @cached_property
    def is_training(self) -> bool:
        """Runs backward itself, or steps an optimizer after an inner loop that runs backward."""
        if self.in_trainer_subclass:
            return False
        if self.has(BACKWARD, max_depth=0):
            return True
        return self.has(STEP, max_depth=0) and self.has(BACKWARD)

    @cached_property
    def in_trainer_subclass(self) -> bool:
        scope: Scope | None = self.scope
        while scope is not None and scope.kind != "module":
            if scope.kind == "class" and any(library.owns_training_loop(b) for b in self.module.class_bases(scope)):
                return True
            scope = scope.parent
        return False

    @cached_property
    def forward_models(self) -> list[Binding]:
        """Origins of the models this loop calls (with autograd on) — the models it trains when training."""
        found: list[Binding] = []
        for event in self.of_kind(FORWARD):
            origin = event.target_origin()
            if origin is not None and not event.grad_disabled and origin not in found:
                found.append(origin)
        return found

    @cached_property
    def is_evaluation(self) -> bool:
        """Calls a model and never runs backward, outside model code. Inside a training loop of the same
        function it must not feed that loop's backward; in a function a training loop calls, the function
        must be named for evaluation (``evaluate``, ``validate``, ``test_*``, ``predict``...)."""
        if self.has(BACKWARD) or not self.has(FORWARD) or self.in_trainer_subclass:
            return False
        if _in_model_class(self.module, self.scope):
            return False
        enclosing = [loop for loop in self._enclosing_loops() if loop.is_training]
        if enclosing:
            return not any(self._feeds_backward_of(loop) for loop in enclosing)
        function = self.scope.node
        called_in_training = any(
            function in loop.events_followed() for loop in self.module.training_loops() if loop is not self
        )
        return not called_in_training or any(_EVAL_FUNCTION.search(s.short_name) for s in _function_chain(self.scope))

    def events_followed(self) -> frozenset[ast.AST]:
        """Definitions of the functions this loop's walk went into."""
        self.events  # noqa: B018 - computing the events records them
        return self.followed_functions

    def _enclosing_loops(self) -> Iterator["Loop"]:
        for ancestor in self.module.ancestors(self.node):
            if isinstance(ancestor, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda, ast.ClassDef)):
                return
            if isinstance(ancestor, LOOP_NODES):
                loop = self.module.loop(ancestor)
                if loop is not None:
                    yield loop

    def _feeds_backward_of(self, training: "Loop") -> bool:
        """True when what this loop computes is backpropagated by ``training`` (``for chunk in batch:
        total += model(chunk).loss`` then ``total.backward()``; ``sum(model(c).loss for c in chunks).backward()``)."""
        if isinstance(self.node, COMPREHENSIONS):
            statement = self.module.enclosing_statement(self.node)
            targets = _assigned_names(statement) if statement is not None else set()
        else:
            targets = {name for node in ast.walk(self.node) for name in _assigned_names(node)}
        stored = {event.text for event in self.of_kind(ACCUMULATE)}
        for event in training.of_kind(BACKWARD):
            if event.argument is None:
                continue
            if any(ancestor is event.node for ancestor in self.module.ancestors(self.node)):
                return True
            if {n.id for n in ast.walk(event.argument) if isinstance(n, ast.Name)} & targets:
                return True
            # a rollout: what this loop stores (`policy.saved_log_probs.append(...)`) is what the loss is built from
            scope = event.frame.scope if event.frame is not None else training.scope
            if stored & backpropagated_keys(self.module, scope):
                return True
        return False

    @cached_property
    def accumulation_guard(self) -> Guard | None:
        """The ``if`` that makes optimizer steps periodic (``if (i + 1) % k == 0``), if any."""
        for event in self.of_kind(STEP):
            for guard in event.guards:
                if guard.test is not None and _is_periodic_test(guard.test):
                    return guard
        return None

    @cached_property
    def uses_accelerate_accumulation(self) -> bool:
        """Backward runs inside ``with accelerator.accumulate(model):`` (accelerate scales and syncs)."""
        for event in self.of_kind(BACKWARD):
            for guard in event.guards:
                if guard.arm == "with" and any(
                    isinstance(item.context_expr, ast.Call)
                    and call_name(item.context_expr) in library.ACCUMULATION_CONTEXTS
                    for item in getattr(guard.node, "items", [])
                ):
                    return True
        return False



def _comprehension_body(node: ast.AST) -> list[ast.AST]:
    """What a comprehension evaluates per item: the filters, inner iterables, and the element."""
    parts: list[ast.AST] = []
    for index, generator in enumerate(node.generators):  # type: ignore[attr-defined]
        if index:
            parts.append(generator.iter)
        parts.extend(generator.ifs)
    if isinstance(node, ast.DictComp):
        parts += [node.key, node.value]
    else:
        parts.append(node.elt)  # type: ignore[attr-defined]
    return parts


def _assigned_names(node: ast.AST) -> set[str]:
    if isinstance(node, ast.Assign):
        targets = node.targets
    elif isinstance(node, (ast.AugAssign, ast.AnnAssign)):
        targets = [node.target]
    else:
        return set()
    return {n.id for target in targets for n in ast.walk(target) if isinstance(n, ast.Name)}


def build_loops(module: "ModuleModel") -> list["Loop"]:
    return [Loop(node, module.scope_of(node), module) for node in module.all_loops]


def _function_chain(scope: Scope) -> Iterator[Scope]:
    current: Scope | None = scope
    while current is not None and current.kind == "function":
        yield current
        current = current.parent


def _in_model_class(module: "ModuleModel", scope: Scope) -> bool:
    for function in _function_chain(scope):
        if function.class_scope is not None:
            bases = module.class_bases(function.class_scope)
            return any(b.endswith(("Module", "PreTrainedModel")) for b in bases)
    return False


def _is_periodic_test(test: ast.expr) -> bool:
    for node in ast.walk(test):
        if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Mod):
            return True
        if isinstance(node, (ast.Name, ast.Attribute)):
            name = node.id if isinstance(node, ast.Name) else node.attr
            if "accum" in name.lower() or name == "sync_gradients":
                return True
    return False


def is_grad_disabling(call: ast.AST, module: "ModuleModel") -> bool:
    """``torch.no_grad()``, ``torch.inference_mode()``, ``torch.set_grad_enabled(False)`` (or the bare names),
    also through a name bound to one (``ctx = torch.no_grad() if eval_only else nullcontext()``): a context that
    may disable gradients counts, since a linter must not claim autograd is on where it may be off."""
    if isinstance(call, ast.IfExp):
        return is_grad_disabling(call.body, module) or is_grad_disabling(call.orelse, module)
    if isinstance(call, ast.Name) and module.qualified_name(call) is None:
        from ftdoctor.static.constants import producers

        return any(is_grad_disabling(value, module) for value in producers(module, call) if value is not call)
    if not isinstance(call, ast.Call):
        call_target = call
        name = (module.qualified_name(call_target) or "").rsplit(".", 1)[-1]
        return name in _NO_GRAD
    name = call_name(call) or ""
    if name in _NO_GRAD:
        return not (call.args and isinstance(call.args[0], ast.Constant) and call.args[0].value is False)
    if name == "set_grad_enabled":
        return bool(call.args) and isinstance(call.args[0], ast.Constant) and call.args[0].value is False
    return False


def grad_disabled_at(module: "ModuleModel", node: ast.AST, _depth: int = 0) -> bool:
    """Whether autograd is off where ``node`` runs: inside a no-grad ``with``, a no-grad decorated function,
    after ``torch.set_grad_enabled(False)`` in the same scope, or in a function every caller runs under no-grad."""
    cache = module._cache.setdefault("grad_disabled", {})  # type: ignore[assignment]
    if node in cache:
        return cache[node]  # type: ignore[index]
    cache[node] = False  # cycle guard (recursive functions)
    result = _grad_disabled_at(module, node, _depth)
    cache[node] = result
    return result


def _grad_disabled_at(module: "ModuleModel", node: ast.AST, depth: int) -> bool:
    scope = module.scope_of(node)
    for call in scope.calls:
        if call_name(call) == "set_grad_enabled" and is_grad_disabling(call, module) and position(call) < position(node):
            return True
    for ancestor in module.ancestors(node):
        if isinstance(ancestor, (ast.With, ast.AsyncWith)):
            if any(is_grad_disabling(item.context_expr, module) for item in ancestor.items):
                return True
        if isinstance(ancestor, (ast.FunctionDef, ast.AsyncFunctionDef)):
            if any(is_grad_disabling(d, module) for d in ancestor.decorator_list):
                return True
            function = module.scope_of_def.get(ancestor)
            sites = module.call_sites(function) if function is not None else []
            return depth < MAX_CALL_DEPTH and bool(sites) and all(
                grad_disabled_at(module, site, depth + 1) for site in sites
            )
        if isinstance(ancestor, (ast.ClassDef, ast.Lambda)):
            return False
    return False


class _Walker:
    """Walks a loop body in program order and collects events (see :class:`Loop`)."""

    def __init__(self, module: "ModuleModel", loop: Loop | None) -> None:
        self.module = module
        self.loop = loop
        self.events: list[Event] = []
        self.followed: frozenset[ast.AST] = frozenset()
        #: the function whose project summary is being made: a call of its parameter is recorded as a forward,
        #: which a caller replays only when its argument is proven a model
        self.summarized: Scope | None = None

    # ------------------------------------------------------------- statements
    def walk_block(
        self, body: Iterable[ast.stmt], frame: Frame, guards: tuple[Guard, ...], loops: tuple[ast.AST, ...],
        disabled: bool, site: ast.AST | None, depth: int, visiting: frozenset[ast.AST],
    ) -> None:
        for statement in body:
            self.walk_statement(statement, frame, guards, loops, disabled, site, depth, visiting)

    def walk_statement(
        self, stmt: ast.stmt, frame: Frame, guards: tuple[Guard, ...], loops: tuple[ast.AST, ...],
        disabled: bool, site: ast.AST | None, depth: int, visiting: frozenset[ast.AST],
    ) -> None:
        args = (frame, guards, loops, disabled, site, depth, visiting)
        if isinstance(stmt, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            return
        if isinstance(stmt, ast.If):
            self.walk_expression(stmt.test, *args)
            inner = (frame, loops, disabled, site, depth, visiting)
            self._block(stmt.body, guards + (Guard(stmt, "body"),), *inner)
            self._block(stmt.orelse, guards + (Guard(stmt, "orelse"),), *inner)
        elif isinstance(stmt, (ast.For, ast.AsyncFor, ast.While)):
            self.walk_expression(stmt.iter if not isinstance(stmt, ast.While) else stmt.test, *args)
            self.walk_block(stmt.body, frame, guards + (Guard(stmt, "loop"),), loops + (stmt,), disabled, site, depth, visiting)
            self.walk_block(stmt.orelse, *args)
        elif isinstance(stmt, (ast.With, ast.AsyncWith)):
            off = disabled
            for item in stmt.items:
                self.walk_expression(item.context_expr, *args)
                if self._starts_fresh_gradients(item.context_expr, frame):
                    self.emit(ZERO_GRAD, item.context_expr, None, ast.unparse(item.context_expr), guards, loops,
                              disabled, site or stmt, frame)
                if is_grad_disabling(item.context_expr, self.module):
                    off = True
                elif isinstance(item.context_expr, ast.Call) and call_name(item.context_expr) == "enable_grad":
                    off = False
            self.walk_block(stmt.body, frame, guards + (Guard(stmt, "with"),), loops, off, site, depth, visiting)
        elif isinstance(stmt, (ast.Try, getattr(ast, "TryStar", ast.Try))):
            inner = (frame, loops, disabled, site, depth, visiting)
            self._block(stmt.body, guards + (Guard(stmt, "body"),), *inner)
            for handler in stmt.handlers:
                self._block(handler.body, guards + (Guard(stmt, "handler"),), *inner)
            self._block(stmt.orelse, guards + (Guard(stmt, "orelse"),), *inner)
            self._block(stmt.finalbody, guards + (Guard(stmt, "finally"),), *inner)
        elif isinstance(stmt, ast.Match):
            self.walk_expression(stmt.subject, *args)
            for index, case in enumerate(stmt.cases):
                self._block(case.body, guards + (Guard(stmt, f"case{index}"),), frame, loops, disabled, site, depth, visiting)
        else:
            self.walk_expression(stmt, *args)
            self._simple_statement_events(stmt, *args)

    def _starts_fresh_gradients(self, context: ast.expr, frame: Frame) -> bool:
        """``with dist_autograd.context() as ctx:``: gradients live in the context, each one starts empty."""
        if not isinstance(context, ast.Call):
            return False
        return self.module.qualified_name(context.func, frame.scope) in library.FRESH_GRADIENT_CONTEXTS

    def _block(self, body: list[ast.stmt], guards: tuple[Guard, ...], frame: Frame, loops: tuple[ast.AST, ...],
               disabled: bool, site: ast.AST | None, depth: int, visiting: frozenset[ast.AST]) -> None:
        self.walk_block(body, frame, guards, loops, disabled, site, depth, visiting)

    def _simple_statement_events(
        self, stmt: ast.stmt, frame: Frame, guards: tuple[Guard, ...], loops: tuple[ast.AST, ...],
        disabled: bool, site: ast.AST | None, depth: int, visiting: frozenset[ast.AST],
    ) -> None:
        context = (guards, loops, disabled, site or stmt, frame)
        if isinstance(stmt, ast.Assign):
            for target in stmt.targets:
                if isinstance(target, ast.Attribute) and target.attr == "grad" and _is_none(stmt.value):
                    self.emit(ZERO_GRAD, stmt, None, ast.unparse(target.value), *context)
            if len(stmt.targets) == 1 and isinstance(stmt.value, ast.BinOp) and isinstance(stmt.value.op, ast.Add):
                key = expr_key(stmt.targets[0])
                if key is not None and expr_key(stmt.value.left) == key:
                    self.emit(ACCUMULATE, stmt, None, key, *context, argument=stmt.value.right)
        elif isinstance(stmt, ast.AugAssign) and isinstance(stmt.op, ast.Add):
            key = expr_key(stmt.target)
            if key is not None:
                self.emit(ACCUMULATE, stmt, None, key, *context, argument=stmt.value)

    # ------------------------------------------------------------- calls
    def walk_expression(
        self, node: ast.AST, frame: Frame, guards: tuple[Guard, ...], loops: tuple[ast.AST, ...],
        disabled: bool, site: ast.AST | None, depth: int, visiting: frozenset[ast.AST],
    ) -> None:
        for call in self._calls(node):
            self.on_call(call, frame, guards, loops, disabled, site or call, depth, visiting)

    def _calls(self, node: ast.AST) -> list[ast.Call]:
        """A simple statement's calls, or a compound statement header's, from the model's index."""
        if isinstance(node, ast.stmt):
            return self.module.statement_calls(node)
        parent = self.module.parent(node)
        if isinstance(parent, ast.withitem):
            parent = self.module.parent(parent)
        if isinstance(parent, _COMPOUND):
            return [c for c in self.module.statement_calls(parent) if _inside(self.module, c, node)]  # type: ignore[arg-type]
        return _calls_in_evaluation_order(node)

    def on_call(
        self, call: ast.Call, frame: Frame, guards: tuple[Guard, ...], loops: tuple[ast.AST, ...],
        disabled: bool, site: ast.AST, depth: int, visiting: frozenset[ast.AST],
    ) -> None:
        context = (guards, loops, disabled, site, frame)
        func = call.func
        name = call_name(call)
        if name == "step" and isinstance(func, ast.Attribute) and call.args:
            self._follow_closure(call.args[0], frame, guards, loops, disabled, site, depth, visiting)
        if isinstance(func, ast.Attribute) and self._protocol_call(call, func, name, context):
            return
        target = self.resolve(func, frame, call)
        if _is_model(target):
            self.emit(FORWARD, call, target, ast.unparse(func), *context)
            return
        if self.module.project is not None and self._imported_call(call, context):
            return  # a function of another project module: what its summary says it does
        if self.summarized is not None and _is_parameter_of(target, self.summarized):
            self.emit(FORWARD, call, target, ast.unparse(func), *context)
            return
        callee = self.module.resolve_callee(call, frame.scope)
        if callee is not None:
            self._follow(call, callee, frame, guards, loops, disabled, site, depth, visiting)
            return
        self._maybe_opaque(call, context)

    def _follow_closure(
        self, closure: ast.expr, frame: Frame, guards: tuple[Guard, ...], loops: tuple[ast.AST, ...],
        disabled: bool, site: ast.AST, depth: int, visiting: frozenset[ast.AST],
    ) -> None:
        """``optimizer.step(closure)`` calls the closure (LBFGS re-evaluates the loss): walk it before the step."""
        if isinstance(closure, ast.Lambda):
            self.walk_expression(closure.body, frame, guards, loops, disabled, site, depth, visiting)
            return
        if not isinstance(closure, ast.Name):
            return
        as_call = ast.copy_location(ast.Call(func=closure, args=[], keywords=[]), closure)
        callee = self.module.resolve_callee(as_call, frame.scope)
        if callee is not None and callee.kind == "function" and not callee.params:
            self._follow(as_call, callee, frame, guards, loops, disabled, site, depth, visiting)

    def _protocol_call(self, call: ast.Call, func: ast.Attribute, name: str | None, context: tuple) -> bool:
        receiver = func.value
        frame: Frame = context[-1]
        text = ast.unparse(receiver)
        if name == "backward":
            loss = backward_loss(self.module, call, frame.scope)
            self.emit(BACKWARD, call, None, ast.unparse(loss), *context, argument=loss)
            return True
        if name == "zero_grad":
            self.emit(ZERO_GRAD, call, self.resolve(receiver, frame, call), text, *context)
            return True
        if name == "zero_" and isinstance(receiver, ast.Attribute) and receiver.attr in ("grad", "data"):
            self.emit(ZERO_GRAD, call, None, text, *context)
            return True
        if name == "step":
            return self._step_call(call, receiver, text, context)
        if name in ("train", "eval"):
            target = self.resolve(receiver, frame, call)
            if (target is not None and target.kind == "trainer") or _last_name(receiver).endswith("trainer"):
                return True
            if target is not None and self._own_method(target, name):
                return False  # a project class's own train()/eval(): followed as a call, not a mode switch
            off = name == "eval" or bool(call.args and isinstance(call.args[0], ast.Constant) and call.args[0].value is False)
            off = off or any(kw.arg == "mode" and isinstance(kw.value, ast.Constant) and kw.value.value is False
                             for kw in call.keywords)
            self.emit(EVAL if off else TRAIN, call, target, text, *context)
            return True
        if name in library.FORWARD_METHODS or name in library.GRAD_FREE_METHODS:
            target = self.resolve(receiver, frame, call)
            if _is_model(target):
                guards, loops, disabled, site, _ = context
                grad_free = disabled or name in library.GRAD_FREE_METHODS
                self.emit(FORWARD, call, target, text, guards, loops, grad_free, site, frame)
                return True
        if name in ("append", "extend") and len(call.args) == 1:
            key = expr_key(receiver)
            if key is not None:
                self.emit(ACCUMULATE, call, None, key, *context, argument=call.args[0])
            return False
        return False

    def _own_method(self, target: Binding, name: str) -> bool:
        """``target`` is an instance of a class of this module that is not a model and defines ``name`` itself."""
        info = target.info
        owner = self.module.classes.get(info.local_class or "")
        return owner is not None and info.kind != "model" and self.module.method_of(owner, name) is not None

    def _step_call(self, call: ast.Call, receiver: ast.expr, text: str, context: tuple) -> bool:
        """A ``step()`` by what its receiver is; a receiver nothing is known about (a parameter no caller
        shows) is still read by its name (``optimizer``, ``scheduler``), but a value proven to be something
        else (a diffusers noise scheduler, a model) never is."""
        frame: Frame = context[-1]
        target = self.resolve(receiver, frame, call)
        kind = target.kind if target is not None else None
        if kind == "model" and target is not None and target.info.via == "engine":
            for event in library.ENGINE_METHODS["step"]:
                self.emit(event, call, target, text, *context)
            return True
        unresolved = target is None or kind == "param" or (kind == "unknown" and target.info.qualname is None)
        if kind == "scaler" or (unresolved and "scaler" in text.lower()):
            optimizer = call.args[0] if call.args else None
            resolved = self.resolve(optimizer, frame, call) if optimizer is not None else None
            self.emit(STEP, call, resolved, ast.unparse(optimizer) if optimizer is not None else text, *context,
                      argument=optimizer)
            return True
        if kind == "scheduler" or (unresolved and re.search(r"sched|^lr_|warmup", _last_name(receiver), re.I)):
            self.emit(SCHED_STEP, call, target, text, *context)
            return True
        if kind == "optimizer" or (unresolved and re.search(r"optim|^opt", _last_name(receiver), re.I)):
            self.emit(STEP, call, target, text, *context)
            return True
        return False

    def _follow(
        self, call: ast.Call, callee: Scope, frame: Frame, guards: tuple[Guard, ...], loops: tuple[ast.AST, ...],
        disabled: bool, site: ast.AST, depth: int, visiting: frozenset[ast.AST],
    ) -> None:
        if depth >= MAX_CALL_DEPTH or callee.node in visiting:
            return
        mapping = tuple(
            (param, arg, frame)
            for param in callee.params
            if (arg := argument_for(callee, param, call)) is not None
        )
        inner = Frame(callee, mapping, frame)
        self.followed |= {callee.node}
        off = disabled or any(is_grad_disabling(d, self.module) for d in callee.decorators)
        body = getattr(callee.node, "body", [])
        self.walk_block(body, inner, guards, loops, off, site, depth + 1, visiting | {callee.node})

    def _imported_call(self, call: ast.Call, context: tuple) -> bool:
        """Emit the events of an imported project function from its summary, its parameters mapped to this
        call's arguments. What it does to its own models is its module's business; a function that trains
        through a framework (Trainer, Lightning) owns its loop and shows as opaque."""
        guards, loops, disabled, site, frame = context
        summary = self.module.project.function_called(self.module, call, frame.scope)  # type: ignore[union-attr]
        if summary is None:
            return False
        if summary.framework_training:
            self._maybe_opaque(call, context)
            return True
        for effect in summary.effects:
            arg = self.module.project.argument(summary, effect.param, call) if effect.param else None  # type: ignore[union-attr]
            if arg is None and effect.kind in (FORWARD, TRAIN, EVAL, OPAQUE):
                continue
            extra = ((Guard(call, "loop"),) if effect.in_loop else ()) + ((Guard(call, "body"),) if effect.conditional else ())
            target = self.resolve(arg, frame, call) if arg is not None else None
            if effect.kind == OPAQUE and (target is None or target.kind not in ("optimizer", "model")):
                continue  # as for calls of this module: only a hidden hand on the optimizer or model matters
            if effect.kind == FORWARD and not _is_model(target):
                continue  # a called parameter is a forward only when this caller passes a proven model
            text = ast.unparse(arg) if arg is not None else effect.text
            self.emit(effect.kind, call, target, text, guards + extra, loops + ((call,) if effect.in_loop else ()),
                      disabled or effect.grad_disabled, site, frame)
        return True

    def _maybe_opaque(self, call: ast.Call, context: tuple) -> None:
        qualified = self.module.qualified_name(call.func, context[-1].scope) or ""
        if qualified.split(".", 1)[0] in _TRANSPARENT_ROOTS:
            return
        frame: Frame = context[-1]
        for arg in [*call.args, *(kw.value for kw in call.keywords)]:
            target = self.resolve(arg, frame, call)
            if target is not None and target.kind in ("optimizer", "model"):
                self.emit(OPAQUE, call, target, ast.unparse(arg), *context)
                return

    # ------------------------------------------------------------- resolution
    def resolve(self, expr: ast.AST | None, frame: Frame, at: ast.AST) -> Binding | None:
        """The binding ``expr`` refers to, mapping parameters to the caller's arguments."""
        for _ in range(MAX_CALL_DEPTH + 2):
            if expr is None:
                return None
            if isinstance(expr, ast.Call) and isinstance(expr.func, ast.Attribute) and expr.func.attr in (
                "module", "unwrap_model", "to", "cuda"
            ):
                expr = expr.args[0] if expr.func.attr == "unwrap_model" and expr.args else expr.func.value
                continue
            key = expr_key(expr)
            if key is None:
                return None
            root = re.split(r"[.\[]", key, maxsplit=1)[0]
            mapped = frame.argument(root)
            if mapped is None or root == frame.scope.self_name:
                return self.module.binding_of_key(key, frame.scope, position(at))
            arg, caller = mapped
            arg_key = expr_key(arg)
            if key == root:
                expr, frame, at = arg, caller, arg
                continue
            if arg_key is None:
                return None
            return self.module.binding_of_key(arg_key + key[len(root):], caller.scope, position(arg))
        return None

    def emit(
        self, kind: str, node: ast.AST, target: Binding | None, text: str, guards: tuple[Guard, ...],
        loops: tuple[ast.AST, ...], disabled: bool, site: ast.AST, frame: Frame, argument: ast.expr | None = None,
    ) -> None:
        self.events.append(Event(kind, node, site, target, text, guards, loops, disabled, argument, frame))


def _is_none(node: ast.AST) -> bool:
    return isinstance(node, ast.Constant) and node.value is None


def _last_name(node: ast.AST | None) -> str:
    if isinstance(node, ast.Attribute):
        return node.attr
    if isinstance(node, ast.Name):
        return node.id
    return ""


def _is_model(target: Binding | None) -> bool:
    """The callee is proven to be a model with parameters by how it was built (never by its name)."""
    return target is not None and target.kind == "model" and not target.info.parameter_free


def _is_parameter_of(target: Binding | None, function: Scope) -> bool:
    """``target`` is one of ``function``'s own parameters, not resolved to anything else."""
    return target is not None and target.source == "param" and target.scope is function


def _inside(module: "ModuleModel", node: ast.AST, container: ast.AST) -> bool:
    while node is not None:
        if node is container:
            return True
        node = module.parents.get(node)  # type: ignore[assignment]
    return False


def _calls_in_evaluation_order(node: ast.AST) -> list[ast.Call]:
    """Calls inside ``node`` (not inside nested defs/lambdas), arguments before the call that uses them."""
    ordered: list[ast.Call] = []
    stack: list[tuple[ast.AST, bool]] = [(node, False)]
    while stack:
        current, done = stack.pop()
        if done:
            ordered.append(current)  # type: ignore[arg-type]
            continue
        if isinstance(current, ast.Call):
            stack.append((current, True))
        children = [c for c in ast.iter_child_nodes(current)
                    if not isinstance(c, (ast.Lambda, ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef))
                    and not isinstance(c, ast.stmt)]
        for child in reversed(children):
            stack.append((child, False))
    return ordered


# --------------------------------------------------------------------------- train/eval mode
def statement_events(
    module: "ModuleModel", statements: list[ast.stmt], scope: Scope, *, summary: bool = False
) -> list[Event]:
    """Events of straight-line code (not a loop body), following calls like a loop walk does; with ``summary``,
    calls of ``scope``'s own parameters count as forwards (for a project summary, proven at each call site)."""
    walker = _Walker(module, None)
    walker.summarized = scope if summary else None
    walker.walk_block(statements, Frame(scope), (), (), False, None, 0, frozenset({scope.node}))
    return walker.events


def switches_model(event: Event, model: Binding) -> bool:
    """A train/eval event that (may) switch ``model``: its receiver is that model or cannot be resolved."""
    if event.kind not in (TRAIN, EVAL):
        return False
    target = event.target
    return target is None or target.kind in ("param", "unknown") or target.origin() is model


def mode_switch_calls(module: "ModuleModel", model: Binding) -> list[Event]:
    """Every ``.train()``/``.eval()`` call in the module that may switch ``model``."""
    walker = _Walker(module, None)
    for call in module.calls():
        if isinstance(call.func, ast.Attribute) and call_name(call) in ("train", "eval"):
            walker.on_call(call, Frame(module.scope_of(call)), (), (), False, call, MAX_CALL_DEPTH, frozenset())
        elif module.project is not None:  # an imported project function may switch it
            walker._imported_call(call, ((), (), False, call, Frame(module.scope_of(call))))
    return [e for e in walker.events if switches_model(e, model)]


#: ``mode_before`` result when the mode depends on callers this module does not show
UNDECIDED = "undecided"


def mode_before(module: "ModuleModel", node: ast.AST, model: Binding, _depth: int = 0) -> str | None:
    """The mode (``"train"``/``"eval"``) ``model`` is in when ``node`` runs, from the last switch before it.

    Looks back through the enclosing blocks (wrapping around enclosing loops, whose later statements
    ran in the previous iteration), then through every call site of the enclosing function.
    Returns None when nothing before ``node`` switches the model (its initial mode applies), or
    :data:`UNDECIDED` when the enclosing function has no call sites here or callers disagree.
    """
    current: ast.AST = node
    for ancestor in module.ancestors(node):
        if isinstance(ancestor, (ast.Lambda, ast.ClassDef)):
            return UNDECIDED
        for block in _blocks_of(ancestor):
            if current in block:
                index = block.index(current)  # type: ignore[arg-type]
                scope = module.scope_of(current)
                mode = _last_mode(statement_events(module, block[:index], scope), model)
                if mode is None and isinstance(ancestor, (ast.For, ast.AsyncFor, ast.While)) and block is ancestor.body:
                    mode = _last_mode(statement_events(module, block[index + 1:], scope), model)
                if mode is not None:
                    return mode
        if isinstance(ancestor, (ast.FunctionDef, ast.AsyncFunctionDef)):
            return _mode_from_callers(module, ancestor, model, _depth)
        current = ancestor
    return None


def _mode_from_callers(module: "ModuleModel", definition: ast.AST, model: Binding, depth: int) -> str | None:
    function = module.scope_of_def.get(definition)
    sites = module.call_sites(function) if function is not None else []
    if not sites or depth >= MAX_CALL_DEPTH:
        return UNDECIDED
    modes = {mode_before(module, site, model, depth + 1) for site in sites}
    if len(modes) == 1:
        return modes.pop()
    return "train" if "train" in modes else UNDECIDED


def _blocks_of(node: ast.AST) -> list[list[ast.stmt]]:
    blocks = [getattr(node, name) for name in ("body", "orelse", "finalbody") if isinstance(getattr(node, name, None), list)]
    blocks += [handler.body for handler in getattr(node, "handlers", [])]
    blocks += [case.body for case in getattr(node, "cases", [])]
    return blocks


def _last_mode(events: list[Event], model: Binding) -> str | None:
    # a conditional switch counts too: the code evidently means to manage the mode there
    return next((event.kind for event in reversed(events) if switches_model(event, model)), None)
