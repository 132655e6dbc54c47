"""See what a user's script trains without changing the script.

While a :class:`Capture` is active:

- every ``torch.optim.Optimizer`` is reported as soon as it is constructed
  (``Optimizer.__init__`` is wrapped: torch's global optimizer hooks only fire
  at the first ``step()``, too late for the pre-flight checks);
- the first call of a module holding parameters (``on_first_forward``) is
  reported, through a global forward pre-hook removed right after it: the model
  is watched from its next call on, so an evaluation before any optimizer is
  built is seen (torch's hook-free fast path comes back at once);
- every ``transformers.Trainer`` is reported at the end of its ``__init__``
  (patched when ``transformers.trainer`` is imported, so scripts that never
  use transformers never pay for importing it);

and :func:`find_model` names the module an optimizer trains: the outermost
live module with a ``forward`` that holds the optimizer's parameters. Finding
it when the optimizer is built, rather than at the model's first call through a
global forward hook, lets the doctor see the very first batch (the one whose
labels crash cross-entropy) and keeps torch's hook-free fast path for every
other module call.

Everything is undone on exit, even when the script raised. A failure inside
these hooks is reported on stderr and never breaks the user's script.
"""

from __future__ import annotations

import functools
import gc
import importlib.abc
import importlib.machinery
import sys
import types
from collections.abc import Callable, Iterable, Iterator
from typing import Any

import torch

TRAINER_MODULE = "transformers.trainer"


def _warn_internal(action: str, exc: BaseException) -> None:
    print(f"ftdoctor: internal error while {action}: {type(exc).__name__}: {exc}", file=sys.stderr)


def _guarded(action: str, callback: Callable[[Any], None], subject: Any) -> None:
    try:
        callback(subject)
    except Exception as exc:  # the user's training must go on
        _warn_internal(action, exc)


class _PatchOnImport(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Runs ``on_loaded(module)`` right after ``module_name`` is first executed."""

    def __init__(self, module_name: str, on_loaded: Callable[[types.ModuleType], None]) -> None:
        self.module_name = module_name
        self.on_loaded = on_loaded
        self._loader: importlib.abc.Loader | None = None

    def find_spec(self, fullname: str, path: Any, target: Any = None) -> importlib.machinery.ModuleSpec | None:
        if fullname != self.module_name:
            return None
        for finder in sys.meta_path:
            if finder is self or not hasattr(finder, "find_spec"):
                continue
            spec = finder.find_spec(fullname, path, target)
            if spec is not None and spec.loader is not None:
                self._loader = spec.loader
                spec.loader = self
                return spec
        return None

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> types.ModuleType | None:
        assert self._loader is not None
        return self._loader.create_module(spec)

    def exec_module(self, module: types.ModuleType) -> None:
        loader = self._loader
        assert loader is not None
        # Hand the module back to its real loader before it runs: nothing keeps a reference to us.
        module.__loader__ = loader
        if module.__spec__ is not None:
            module.__spec__.loader = loader
        loader.exec_module(module)
        _guarded(f"patching {module.__name__}", self.on_loaded, module)


def patch_when_imported(module_name: str, patch: Callable[[types.ModuleType], None]) -> Callable[[], None]:
    """Run ``patch(module)`` now if ``module_name`` is loaded, else right after it is first imported.

    Returns what stops waiting for the import (the patch undoes itself separately), so
    scripts that never import the module never pay for importing it.
    """
    loaded = sys.modules.get(module_name)
    if loaded is not None:
        _guarded(f"patching {module_name}", patch, loaded)
        return lambda: None
    finder = _PatchOnImport(module_name, patch)
    sys.meta_path.insert(0, finder)
    return lambda: sys.meta_path.remove(finder) if finder in sys.meta_path else None


class Capture:
    """Context manager reporting optimizers and Trainers as the script builds them."""

    def __init__(
        self,
        on_optimizer: Callable[[torch.optim.Optimizer], None],
        on_trainer: Callable[[Any], None] | None = None,
        on_first_forward: Callable[[torch.nn.Module], None] | None = None,
    ) -> None:
        self.on_optimizer = on_optimizer
        self.on_trainer = on_trainer
        self.on_first_forward = on_first_forward
        self._undo: list[Callable[[], None]] = []

    def __enter__(self) -> "Capture":
        try:
            self._wrap_optimizer_init()
            if self.on_trainer is not None:
                self._wrap_trainer_init_when_imported()
            if self.on_first_forward is not None:
                self._hook_first_forward()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        """Undo every patch, newest first."""
        while self._undo:
            self._undo.pop()()

    def _wrap_optimizer_init(self) -> None:
        original = torch.optim.Optimizer.__init__
        on_optimizer = self.on_optimizer

        @functools.wraps(original)
        def __init__(optimizer: torch.optim.Optimizer, *args: Any, **kwargs: Any) -> None:
            original(optimizer, *args, **kwargs)
            _guarded("capturing an optimizer", on_optimizer, optimizer)

        torch.optim.Optimizer.__init__ = __init__  # type: ignore[method-assign]
        self._undo.append(lambda: setattr(torch.optim.Optimizer, "__init__", original))

    def _hook_first_forward(self) -> None:
        from torch.nn.modules.module import register_module_forward_pre_hook

        on_first_forward = self.on_first_forward
        assert on_first_forward is not None
        handle: list[Any] = []

        def first(module: torch.nn.Module, args: Any) -> None:
            if not handle or next(module.parameters(), None) is None:
                return  # a parameter-free module (an activation, a loss) is not a model
            handle.pop().remove()  # once: every later call takes torch's fast path again
            _guarded("watching the first model call", on_first_forward, module)

        handle.append(register_module_forward_pre_hook(first))
        self._undo.append(lambda: handle.pop().remove() if handle else None)

    def _wrap_trainer_init_when_imported(self) -> None:
        self._undo.append(patch_when_imported(TRAINER_MODULE, self._wrap_trainer_init))

    def _wrap_trainer_init(self, trainer_module: types.ModuleType) -> None:
        trainer_class = trainer_module.Trainer
        original = trainer_class.__init__
        on_trainer = self.on_trainer
        assert on_trainer is not None

        @functools.wraps(original)
        def __init__(trainer: Any, *args: Any, **kwargs: Any) -> None:
            original(trainer, *args, **kwargs)
            # Subclasses call this through super(); report the trainer once, from the base class.
            _guarded("adding the doctor to a Trainer", on_trainer, trainer)

        trainer_class.__init__ = __init__
        self._undo.append(lambda: setattr(trainer_class, "__init__", original))


def watch_top_level_calls(on_call: Callable[[torch.nn.Module], bool]) -> Callable[[], None]:
    """Report every outermost module call (none of whose callers is a module) made with gradients on,
    of a module holding trainable parameters, until ``on_call`` returns False; returns the remover.

    Global forward hooks take every module call off torch's fast path, so this is
    armed for the first training iteration only.
    """
    from torch.nn.modules.module import register_module_forward_hook, register_module_forward_pre_hook

    depth = [0]
    handles: list[Any] = []

    def remove() -> None:
        while handles:
            handles.pop().remove()

    def before(module: torch.nn.Module, args: Any) -> None:
        depth[0] += 1
        if depth[0] != 1 or not torch.is_grad_enabled():
            return
        if not any(param.requires_grad for param in module.parameters()):
            return
        keep = True
        try:
            keep = on_call(module)
        except Exception as exc:  # the user's training must go on
            _warn_internal("watching a module called in training", exc)
        if not keep:
            remove()

    def after(module: torch.nn.Module, args: Any, output: Any) -> None:
        depth[0] = max(0, depth[0] - 1)

    handles.append(register_module_forward_pre_hook(before))
    handles.append(register_module_forward_hook(after, always_call=True))
    return remove


def optimizer_parameters(optimizer: torch.optim.Optimizer) -> list[torch.Tensor]:
    return [param for group in optimizer.param_groups for param in group["params"]]


def find_model(params: Iterable[torch.Tensor]) -> torch.nn.Module | None:
    """The outermost live module with a ``forward`` that holds most of ``params``.

    Outermost, so that a head left out of the optimizer still belongs to the
    watched model; with a ``forward``, so that a ``ModuleDict`` of models is
    looked into rather than watched (it is never called).
    """
    wanted = {id(param) for param in params}
    if not wanted:
        return None
    best: torch.nn.Module | None = None
    best_overlap = 0
    for top in (top for root in _root_modules() for top in _callable_tops(root)):
        overlap = sum(1 for param in top.parameters() if id(param) in wanted)
        if overlap > best_overlap:
            best, best_overlap = top, overlap
    return unwrap_parallel(best) if best is not None else None


def find_models(params: Iterable[torch.Tensor]) -> list[torch.nn.Module]:
    """Every outermost live module with a ``forward`` holding some of ``params``, most first.

    An encoder and a separate head trained by one optimizer are two such modules:
    both are the model under training.
    """
    wanted = {id(param) for param in params}
    if not wanted:
        return []
    found: list[tuple[int, torch.nn.Module]] = []
    for top in (top for root in _root_modules() for top in _callable_tops(root)):
        overlap = sum(1 for param in top.parameters() if id(param) in wanted)
        if overlap:
            found.append((overlap, top))
    found.sort(key=lambda pair: -pair[0])
    return [unwrap_parallel(top) for _, top in found]


def unwrap_parallel(model: torch.nn.Module) -> torch.nn.Module:
    """The model inside ``DistributedDataParallel``/``DataParallel``.

    The wrapper calls the inner model's forward, so hooks there see every
    batch, and only the inner model has the ``config`` (``num_labels``) the
    pre-flight checks need.
    """
    wrappers = (torch.nn.parallel.DistributedDataParallel, torch.nn.DataParallel)
    while isinstance(model, wrappers):
        model = model.module
    return model


def _root_modules() -> list[torch.nn.Module]:
    # gc sees every live module, also those built before the capture started,
    # deep-copied or unpickled (none of which pass through registration hooks).
    modules = [obj for obj in gc.get_objects() if issubclass(type(obj), torch.nn.Module)]
    children = {id(child) for module in modules for child in module.children()}
    return [module for module in modules if id(module) not in children]


def _callable_tops(module: torch.nn.Module) -> Iterator[torch.nn.Module]:
    if type(module).forward is not torch.nn.Module.forward:
        yield module
        return
    for child in module.children():
        yield from _callable_tops(child)
