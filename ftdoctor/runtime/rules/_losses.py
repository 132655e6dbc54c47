"""Which loss a ``LossInput`` event came from, and where its class scores are (not a rule itself)."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import torch

CROSS_ENTROPY = "cross-entropy"  # expects raw logits, applies log_softmax itself
NLL = "nll"  # expects log-probabilities
BCE_WITH_LOGITS = "bce-with-logits"  # expects raw logits, applies sigmoid itself

_FAMILIES = {
    "crossentropyloss": CROSS_ENTROPY,
    "cross_entropy": CROSS_ENTROPY,
    "nllloss": NLL,
    "nll_loss": NLL,
    "bcewithlogitsloss": BCE_WITH_LOGITS,
    "binary_cross_entropy_with_logits": BCE_WITH_LOGITS,
}


def loss_family(loss_name: str) -> str | None:
    """The family of a loss module or functional name (``"CrossEntropyLoss"``, ``"F.cross_entropy"``)."""
    return _FAMILIES.get(loss_name.rsplit(".", 1)[-1].lower())


def class_dim(family: str, scores: "torch.Tensor") -> int | None:
    """The dimension holding one score per class, as the loss reads it."""
    if scores.dim() == 0:
        return None
    if family in (CROSS_ENTROPY, NLL):
        return 1 if scores.dim() >= 2 else 0  # (N, C, d1, ...) or unbatched (C,)
    return scores.dim() - 1 if scores.dim() >= 2 else None  # (N,) holds N independent binary logits
