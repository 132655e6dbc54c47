"""Deliberate mistakes (``inject:`` in the run config), for demos and tests.

Each mistake is what a user's own loop would get wrong, done the way a user
would do it: the runner never tells the doctor what was injected, so a mistake
is only reported if its runtime rule really catches it.

=====================  ======================================================  =====================
mistake                what the runner does                                    caught by
=====================  ======================================================  =====================
skip-zero-grad         never calls ``optimizer.zero_grad()``                   grads-accumulating
orphan-head            assigns an extra ``Linear`` head onto the model; it is  dead-parameters
                       in the optimizer but the forward never calls it
softmax-before-loss    ``CrossEntropyLoss()(softmax(logits), labels)``         softmax-before-loss
no-eval-mode           evaluates without ``model.eval()``                      dropout-in-eval
freeze-all             sets ``requires_grad=False`` on every parameter         no-trainable-params
=====================  ======================================================  =====================
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable, Iterable

if TYPE_CHECKING:
    import torch


@dataclass
class LoopBehaviour:
    """How the training loop behaves; the defaults are the correct loop."""

    clears_grads: bool = True
    uses_eval_mode: bool = True
    softmax_before_loss: bool = False


def _skip_zero_grad(model: "torch.nn.Module", behaviour: LoopBehaviour) -> None:
    behaviour.clears_grads = False


def _orphan_head(model: "torch.nn.Module", behaviour: LoopBehaviour) -> None:
    import torch

    hidden = model.config.hidden_size
    # Assigned as an attribute, so it is a submodule whose parameters model.parameters()
    # (and hence the optimizer) include, while the model's forward never calls it.
    model.orphan_head = torch.nn.Linear(hidden, model.config.num_labels)


def _softmax_before_loss(model: "torch.nn.Module", behaviour: LoopBehaviour) -> None:
    behaviour.softmax_before_loss = True


def _no_eval_mode(model: "torch.nn.Module", behaviour: LoopBehaviour) -> None:
    behaviour.uses_eval_mode = False


def _freeze_all(model: "torch.nn.Module", behaviour: LoopBehaviour) -> None:
    for parameter in model.parameters():
        parameter.requires_grad_(False)


MISTAKES: dict[str, Callable[["torch.nn.Module", LoopBehaviour], None]] = {
    "skip-zero-grad": _skip_zero_grad,
    "orphan-head": _orphan_head,
    "softmax-before-loss": _softmax_before_loss,
    "no-eval-mode": _no_eval_mode,
    "freeze-all": _freeze_all,
}

#: Which runtime rule must catch each mistake (used by the tests and the docs).
CAUGHT_BY = {
    "skip-zero-grad": "grads-accumulating",
    "orphan-head": "dead-parameters",
    "softmax-before-loss": "softmax-before-loss",
    "no-eval-mode": "dropout-in-eval",
    "freeze-all": "no-trainable-params",
}


def apply_mistakes(names: Iterable[str], model: "torch.nn.Module") -> LoopBehaviour:
    """Apply the named mistakes to ``model`` (before the optimizer is built) and return the loop's behaviour."""
    behaviour = LoopBehaviour()
    for name in names:
        MISTAKES[name](model, behaviour)
    return behaviour
