"""Attaching and detaching the doctor's hooks — public torch APIs only.

- :class:`HookSet` owns every handle and every wrapped method of one doctor and
  undoes them all in :meth:`HookSet.remove_all` (idempotent).
- :func:`listen_to_losses` intercepts the functional losses in
  ``torch.nn.functional`` (what ``nn.CrossEntropyLoss`` & co. and transformers'
  own loss functions call), so a loss computed outside the model's forward is
  seen too. The patch is shared by every active listener and is removed when
  the last one leaves.
"""

from __future__ import annotations

import functools
from typing import Any, Callable

import torch

#: functional loss -> the name of the loss module that calls it
FUNCTIONAL_LOSSES = {
    "cross_entropy": "CrossEntropyLoss",
    "nll_loss": "NLLLoss",
    "binary_cross_entropy": "BCELoss",
    "binary_cross_entropy_with_logits": "BCEWithLogitsLoss",
    "mse_loss": "MSELoss",
}

#: listener(loss_name, input, target, output)
LossListener = Callable[[str, torch.Tensor, "torch.Tensor | None", torch.Tensor], None]
#: before(loss_name, input, target) — before the loss runs, so labels that crash it are seen first
LossTargetListener = Callable[[str, torch.Tensor, "torch.Tensor | None"], None]

_MISSING = object()


class HookSet:
    """The handles and method wrappers of one doctor, removable in one call."""

    def __init__(self) -> None:
        self._undo: list[Callable[[], None]] = []

    def add(self, handle: Any) -> None:
        """A ``RemovableHandle`` from any ``register_*_hook``."""
        self._undo.append(handle.remove)

    def wrap_method(self, owner: Any, name: str, make_wrapper: Callable[[Callable[..., Any]], Callable[..., Any]]) -> None:
        """Replace ``owner.name`` on the instance; the original comes back on removal."""
        saved = owner.__dict__.get(name, _MISSING)
        original = getattr(owner, name)
        wrapper = make_wrapper(original)
        setattr(owner, name, wrapper)

        def restore() -> None:
            if owner.__dict__.get(name) is not wrapper:
                return  # someone re-wrapped it after us; leave their wrapper in place
            if saved is _MISSING:
                delattr(owner, name)
            else:
                setattr(owner, name, saved)

        self._undo.append(restore)

    def on_remove(self, undo: Callable[[], None]) -> None:
        self._undo.append(undo)

    def remove_all(self) -> None:
        while self._undo:
            self._undo.pop()()

    def __len__(self) -> int:
        return len(self._undo)


# --- functional losses --------------------------------------------------------

_listeners: list[LossListener] = []
_before_listeners: list[LossTargetListener] = []
_originals: dict[str, Callable[..., Any]] = {}
_wrappers: dict[str, Callable[..., Any]] = {}


def listen_to_losses(listener: LossListener, before: LossTargetListener | None = None) -> Callable[[], None]:
    """Call ``listener`` after every functional loss (and ``before`` ahead of it); returns the function that stops it."""
    if not _listeners:
        _install()
    _listeners.append(listener)
    if before is not None:
        _before_listeners.append(before)

    def stop() -> None:
        if listener in _listeners:
            _listeners.remove(listener)
        if before in _before_listeners:
            _before_listeners.remove(before)  # type: ignore[arg-type]
        if not _listeners:
            _uninstall()

    return stop


def losses_patched() -> bool:
    return any(getattr(torch.nn.functional, name) is wrapper for name, wrapper in _wrappers.items())


def _install() -> None:
    for name, loss_name in FUNCTIONAL_LOSSES.items():
        original = getattr(torch.nn.functional, name)
        wrapper = _make_loss_wrapper(original, loss_name)
        _originals[name], _wrappers[name] = original, wrapper
        setattr(torch.nn.functional, name, wrapper)


def _uninstall() -> None:
    for name, wrapper in list(_wrappers.items()):
        if getattr(torch.nn.functional, name) is wrapper:
            setattr(torch.nn.functional, name, _originals[name])
    _originals.clear()
    _wrappers.clear()


def _make_loss_wrapper(original: Callable[..., Any], loss_name: str) -> Callable[..., Any]:
    @functools.wraps(original)
    def wrapper(input: Any, target: Any = None, *args: Any, **kwargs: Any) -> Any:
        if _before_listeners and isinstance(input, torch.Tensor):
            for each in tuple(_before_listeners):
                each(loss_name, input, target if isinstance(target, torch.Tensor) else None)
        output = original(input, target, *args, **kwargs)
        if isinstance(input, torch.Tensor) and isinstance(output, torch.Tensor):
            for listener in tuple(_listeners):
                listener(loss_name, input, target if isinstance(target, torch.Tensor) else None, output)
        return output

    return wrapper


# --- backward passes ------------------------------------------------------------

#: listener(root) — ``root`` is the tensor backward starts from (the loss), called before the pass runs
BackwardListener = Callable[[torch.Tensor], None]

_backward_listeners: list[BackwardListener] = []
_backward_original: list[Callable[..., Any]] = []


def listen_to_backward(listener: BackwardListener) -> Callable[[], None]:
    """Call ``listener(loss)`` before every ``torch.autograd.backward`` (``loss.backward()`` goes through it).

    Seeing the pass there, not on one module's output, is what lets a loss built
    outside any model (a separate head, ``model.forward(x)``) still count.
    Returns the function that stops listening; the patch goes with the last listener.
    """
    if not _backward_listeners:
        original = torch.autograd.backward
        _backward_original.append(original)

        @functools.wraps(original)
        def backward(tensors: Any, *args: Any, **kwargs: Any) -> Any:
            root = tensors if isinstance(tensors, torch.Tensor) else next(iter(tensors or ()), None)
            if isinstance(root, torch.Tensor) and root.requires_grad:
                for each in tuple(_backward_listeners):
                    each(root)
            return original(tensors, *args, **kwargs)

        torch.autograd.backward = backward  # type: ignore[assignment]
    _backward_listeners.append(listener)

    def stop() -> None:
        if listener in _backward_listeners:
            _backward_listeners.remove(listener)
        if not _backward_listeners and _backward_original:
            torch.autograd.backward = _backward_original.pop()  # type: ignore[assignment]

    return stop


def backward_patched() -> bool:
    return bool(_backward_original)
