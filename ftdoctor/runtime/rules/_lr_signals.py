"""The per-step series the two learning-rate rules judge (not a rule itself).

Both rules look at the same things over the first ``lr_judge_until`` steps:
the loss at the first step (the model before any update), the mean loss of the
latest ``lr_window`` steps, the sampled update/weight ratios and the learning
rate of those steps.
"""

from __future__ import annotations

import math
import statistics
from collections import deque
from dataclasses import dataclass, field

from typing import TYPE_CHECKING

from ftdoctor.runtime.events import OptimizerStep, Preflight

if TYPE_CHECKING:
    import torch


@dataclass
class LrSignals:
    window: int
    start_loss: float | None = None
    losses: deque[float] = field(default_factory=deque)
    ratios: deque[float] = field(default_factory=deque)
    lrs: deque[float] = field(default_factory=deque)

    def add(self, event: OptimizerStep) -> None:
        loss = event.loss
        if loss is not None and math.isfinite(loss):
            if self.start_loss is None:
                self.start_loss = loss
            self.losses.append(loss)
        self.lrs.append(event.lr)
        if event.update_ratio is not None and math.isfinite(event.update_ratio):
            self.ratios.append(event.update_ratio)
        for series in (self.losses, self.lrs):
            while len(series) > self.window:
                series.popleft()
        while len(self.ratios) > max(1, self.window // 2):
            self.ratios.popleft()

    @property
    def full(self) -> bool:
        return self.start_loss is not None and len(self.losses) >= self.window and bool(self.ratios)

    @property
    def window_loss(self) -> float:
        return statistics.fmean(self.losses)

    @property
    def loss_change(self) -> float:
        """Relative change of the latest window's mean loss against the first step's loss."""
        assert self.start_loss is not None
        return (self.window_loss - self.start_loss) / self.start_loss if self.start_loss else 0.0

    @property
    def median_ratio(self) -> float:
        return statistics.median(self.ratios)

    @property
    def lr_settled(self) -> bool:
        """No warm-up inside the window: the learning rate never rose."""
        lrs = list(self.lrs)
        return all(b <= a * (1 + 1e-9) for a, b in zip(lrs, lrs[1:]))


#: the bundled model that is random-init although scripts load it with from_pretrained
RANDOM_BUILTIN = "builtin:tiny"


def is_pretrained(model: "torch.nn.Module") -> bool:
    """Loaded with ``from_pretrained`` (transformers records where the weights came from).

    ``builtin:tiny`` is loaded that way inside ``ftdoctor run SCRIPT.py`` but its weights are random.
    """
    config = getattr(model, "config", None)
    source = getattr(config, "_name_or_path", "") or ""
    return bool(source) and source != RANDOM_BUILTIN


def weights_kind(event: Preflight) -> str:
    """``"pretrained"`` (the optimizers move checkpoint weights), ``"new"`` (a checkpoint is there but
    only new weights train: a head over a frozen encoder, adapters) or ``"scratch"`` (no checkpoint)."""
    if updates_pretrained_weights(event):
        return "pretrained"
    modules = (event.modules or {"": event.model}).values()
    return "new" if any(is_pretrained(m) for top in modules for m in top.modules()) else "scratch"


def updates_pretrained_weights(event: Preflight, share: float = 0.5) -> bool:
    """Whether the optimizers mostly move checkpoint weights (full fine-tuning), which must move far
    less than new ones. A head-only optimizer over a frozen encoder, or LoRA-like adapters, update
    freshly initialised weights: judged by a from-scratch model's norms (a head-only lr of 1e-2 is normal).

    The checkpoint's weights are those of every module loaded with ``from_pretrained`` in the
    watched modules (an encoder inside a wrapper, or beside a separate head, counts).
    """
    sizes: dict[int, int] = {}
    for top in (event.modules or {"": event.model}).values():
        for module in top.modules():
            if is_pretrained(module):
                sizes.update((id(p), p.numel()) for p in module.parameters())
    if not sizes:
        return False
    trained = {id(p) for opt in event.optimizers for group in opt.param_groups for p in group["params"] if p.requires_grad}
    if not event.optimizers:
        trained = {id(p) for top in (event.modules or {"": event.model}).values() for p in top.parameters() if p.requires_grad}
    moved = sum(size for key, size in sizes.items() if key in trained)
    return moved >= share * sum(sizes.values())
