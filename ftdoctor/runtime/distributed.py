"""torch.distributed awareness: which rank reports, and summed label histograms.

Gradient norms need nothing here: after DDP's all-reduce every rank holds the
same gradients. Label histograms differ per rank (each sees its own shard), so
rules that judge class frequencies must see the sum over ranks.
"""

from __future__ import annotations

from typing import Mapping

import torch


def is_distributed() -> bool:
    return torch.distributed.is_available() and torch.distributed.is_initialized()


def rank() -> int:
    return torch.distributed.get_rank() if is_distributed() else 0


def is_main_process() -> bool:
    """True on rank 0, or when the run is not distributed (its report is the one written)."""
    return rank() == 0


def all_reduce_counts(counts: Mapping[int, int]) -> dict[int, int]:
    """The element-wise sum of every rank's ``counts`` (a collective: call it on all ranks).

    Ranks may have seen different label values, so the key range is agreed first
    (min and max over ranks), then one dense vector per rank is summed.
    """
    if not is_distributed():
        return dict(counts)
    device = _collective_device()
    low = min(counts, default=0)
    high = max(counts, default=-1)
    bounds = torch.tensor([-low, high], dtype=torch.long, device=device)
    torch.distributed.all_reduce(bounds, op=torch.distributed.ReduceOp.MAX)
    low, high = -int(bounds[0]), int(bounds[1])
    if high < low:
        return {}
    dense = torch.zeros(high - low + 1, dtype=torch.long, device=device)
    for label, count in counts.items():
        dense[label - low] = count
    torch.distributed.all_reduce(dense)
    return {low + i: int(c) for i, c in enumerate(dense.tolist()) if c}


def _collective_device() -> torch.device:
    if torch.distributed.get_backend() == "nccl":
        return torch.device("cuda", torch.cuda.current_device())
    return torch.device("cpu")

