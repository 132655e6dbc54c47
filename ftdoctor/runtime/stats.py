"""Cheap statistics the doctor computes once per optimizer step for every rule.

Per step the doctor does a handful of fused reductions: one ``_foreach_norm``
over the gradients and, on sampled steps, one ``_foreach_sub`` + two
``_foreach_norm`` over a bounded slice of the weights. Everything is gathered
into one tensor and read back with a single device sync.
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass
from typing import Iterable, Sequence

import torch


@dataclass
class GradStats:
    """Gradient norms of one optimizer step's parameters."""

    global_norm: float
    norms: list[float | None]  # per parameter, None when it has no gradient


def gradient_stats(params: Sequence[torch.Tensor], extra: Sequence[torch.Tensor] = ()) -> tuple[GradStats, list[float]]:
    """Per-parameter and global gradient L2 norms, plus ``extra`` scalars, in one sync.

    ``extra`` lets the caller piggy-back other 0-d tensors (e.g. the step's
    summed loss) on the same read-back.
    """
    with_grad = [i for i, p in enumerate(params) if p.grad is not None]
    grads = [params[i].grad for i in with_grad]
    scalars: list[torch.Tensor] = _norms(grads) if grads else []  # type: ignore[arg-type]
    scalars += [e.detach().float().reshape(()) for e in extra]
    values = _read_back(scalars)
    grad_values, extra_values = values[: len(grads)], values[len(grads) :]
    norms: list[float | None] = [None] * len(params)
    for index, value in zip(with_grad, grad_values):
        norms[index] = value
    global_norm = math.sqrt(sum(v * v for v in grad_values)) if grad_values else 0.0
    return GradStats(global_norm, norms), extra_values


def _norms(tensors: list[torch.Tensor]) -> list[torch.Tensor]:
    """Float32 L2 norms (one fused op; half-precision gradients are accumulated in float32)."""
    if any(t.is_sparse for t in tensors):
        return [(t.coalesce().values() if t.is_sparse else t).norm(dtype=torch.float32) for t in tensors]
    return list(torch._foreach_norm(tensors, 2, dtype=torch.float32))


def _read_back(scalars: list[torch.Tensor]) -> list[float]:
    """One device-to-host copy for all scalars (one per scalar when they live on several devices)."""
    if not scalars:
        return []
    try:
        return torch.stack(scalars).tolist()
    except RuntimeError:  # several devices (a model split across GPUs): rare, and never per step
        return [s.item() for s in scalars]


class UpdateRatioProbe:
    """Global ||Δw|| / ||w|| of an optimizer step, on a bounded sample of weights.

    The sample is a leading slice of each chosen weight matrix (at most
    ``max_elements`` in all), so the cost stays flat as models grow. Adaptive
    optimizers move every element by roughly the learning rate, so a slice is
    representative of its tensor. The slices are copied into one flat buffer
    per dtype/device, so a measurement is a handful of ops however many tensors
    the sample spans.
    """

    def __init__(self, params: Iterable[torch.Tensor], max_elements: int) -> None:
        slices = _sample_slices([p for p in params if p.dim() >= 2], max_elements)
        groups: dict[tuple[torch.dtype, torch.device], list[torch.Tensor]] = {}
        for piece in slices:
            groups.setdefault((piece.dtype, piece.device), []).append(piece)
        self.groups = list(groups.values())
        self._before: list[torch.Tensor] | None = None

    @property
    def empty(self) -> bool:
        return not self.groups

    def before_step(self) -> None:
        if self.groups:
            self._before = [torch.cat(group) for group in self.groups]

    def after_step(self) -> float | None:
        """The ratio of the step since :meth:`before_step` (None when not sampled)."""
        if self._before is None:
            return None
        before, self._before = self._before, None
        deltas = [torch.cat(group).sub_(old) for group, old in zip(self.groups, before)]
        values = _read_back([*_norms(deltas), *_norms(before)])
        half = len(values) // 2
        delta = math.sqrt(sum(v * v for v in values[:half]))
        weight = math.sqrt(sum(v * v for v in values[half:]))
        return delta / weight if weight > 0 else None


def _sample_slices(params: list[torch.Tensor], max_elements: int) -> list[torch.Tensor]:
    """Leading slices of up to ``max_elements`` elements, spread over the tensors."""
    if not params:
        return []
    params = [p for p in params if p.is_contiguous()]  # a view of the storage the optimizer updates
    per_tensor = max(1, max_elements // max(1, len(params)))
    return [p.detach().reshape(-1)[:per_tensor] for p in params]


def all_finite(value: object) -> bool:
    """True when every floating tensor inside ``value`` (nested outputs, args) is finite."""
    return all(bool(torch.isfinite(t).all()) for t in iter_tensors(value) if t.is_floating_point())


class LabelCounter:
    """A histogram of integer labels, counted in batches of batches.

    Label tensors are kept (detached, flattened) and folded into the Counter
    every ``fold_every`` additions or when read, so a training step pays one
    list append instead of a device-to-host copy. ``-100`` (the ignore index)
    is left out.
    """

    def __init__(self, fold_every: int = 64) -> None:
        self.fold_every = fold_every
        self._counts: Counter[int] = Counter()
        self._pending: list[torch.Tensor] = []

    def add(self, labels: torch.Tensor) -> None:
        # integer labels carry no autograd graph: keeping the tensor itself is as safe as a
        # detached view, and flattening waits for the fold (one pass per ``fold_every`` steps)
        self._pending.append(labels)
        if len(self._pending) >= self.fold_every:
            self._fold()

    @property
    def counts(self) -> Counter[int]:
        self._fold()
        return self._counts

    def _fold(self) -> None:
        if not self._pending:
            return
        pending, self._pending = self._pending, []
        # counted on the device: two short lists come back, not every label
        try:
            labels = torch.cat(pending).reshape(-1)  # integer labels: no graph to detach from
        except RuntimeError:  # shapes that do not stack (token labels of different lengths)
            labels = torch.cat([t.reshape(-1) for t in pending])
        values, counts = torch.unique(labels, return_counts=True)
        self._counts.update(dict(zip(values.tolist(), counts.tolist())))
        self._counts.pop(-100, None)


def iter_tensors(value: object) -> Iterable[torch.Tensor]:
    """Tensors inside a (nested) output: tensor, tuple/list, dict or ModelOutput."""
    if isinstance(value, torch.Tensor):
        yield value
    elif isinstance(value, dict):  # ModelOutput is an OrderedDict
        for item in value.values():
            yield from iter_tensors(item)
    elif isinstance(value, (tuple, list)):
        for item in value:
            yield from iter_tensors(item)
