"""How much of an optimizer step is weight decay rather than the learning rate (not a rule itself).

SGD and the decoupled optimizers (AdamW, Adam with ``decoupled_weight_decay``, Lion,
Adafactor) shrink every decayed weight by ``lr x weight_decay`` per step whatever the
gradient says; the coupled adaptive ones (Adam, RMSprop, Adagrad) fold the decay into
the gradient before normalising it, so their step size stays about ``lr`` per weight.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Iterable

if TYPE_CHECKING:
    import torch

#: optimizer classes whose weight decay shrinks the weights by lr x weight_decay per step
LINEAR_DECAY = ("SGD", "AdamW", "Lion", "Adafactor", "AdamWScheduleFree", "SGDScheduleFree", "LAMB", "Lamb")


def shrinks_linearly(optimizer: "torch.optim.Optimizer", group: dict[str, Any]) -> bool:
    return type(optimizer).__name__ in LINEAR_DECAY or bool(group.get("decoupled_weight_decay"))


def group_lr(group: dict[str, Any]) -> float:
    """The group's learning rate before any schedule (warm-up starts at 0)."""
    return float(group.get("initial_lr", group.get("lr", 0.0)) or 0.0)


def decay_per_step(optimizers: Iterable["torch.optim.Optimizer"]) -> float:
    """The largest share of its weights that any group's decay removes in one step at the current lr."""
    shares = [
        float(group.get("lr", 0.0) or 0.0) * float(group.get("weight_decay", 0.0) or 0.0)
        for optimizer in optimizers
        for group in optimizer.param_groups
        if shrinks_linearly(optimizer, group)
    ]
    return max(shares, default=0.0)
