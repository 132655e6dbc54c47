"""The reference fine-tune under ``torchrun`` or ``accelerate launch``: one process per rank.

A launcher describes the job in the environment (``WORLD_SIZE``, ``RANK``,
``MASTER_ADDR``...). When it says more than one process, every rank joins the
process group (gloo on CPU, nccl on CUDA), reads its own shard of the training
data (``DistributedSampler``), and trains a ``DistributedDataParallel`` model;
the doctor on each rank sums label histograms over the ranks itself
(``ftdoctor.runtime.distributed``). Only the main rank prints and writes.
Without a launcher all of this is a no-op.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import torch
    from torch.utils.data import Sampler


@dataclass(frozen=True)
class Ranks:
    """This process's place in the job."""

    rank: int = 0
    world_size: int = 1

    @property
    def distributed(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def launched_ranks() -> Ranks:
    """What the launcher's environment says, before any process group exists."""
    world_size = int(os.environ.get("WORLD_SIZE", "1") or 1)
    return Ranks(rank=int(os.environ.get("RANK", "0") or 0), world_size=world_size)


@contextmanager
def process_group() -> Iterator[Ranks]:
    """Join the launcher's process group for the duration of a run (and leave it afterwards).

    A group someone else initialised (the user's own code) is used as it is
    and left for them to destroy.
    """
    ranks = launched_ranks()
    if not ranks.distributed:
        yield ranks
        return
    import torch
    import torch.distributed as dist

    created = not dist.is_initialized()
    if created:
        dist.init_process_group("nccl" if torch.cuda.is_available() else "gloo")
    try:
        yield Ranks(rank=dist.get_rank(), world_size=dist.get_world_size())
        # No rank leaves before rank 0 has printed and written the report: a
        # launcher stops the whole job as soon as one rank exits non-zero.
        dist.barrier()
    finally:
        if created and dist.is_initialized():
            dist.destroy_process_group()


def is_main_process() -> bool:
    """True on rank 0 or in a single-process run: the one that prints and writes the report."""
    import sys

    if "torch" in sys.modules:
        import torch.distributed as dist

        if dist.is_available() and dist.is_initialized():
            return dist.get_rank() == 0
    return launched_ranks().is_main


def shard_sampler(dataset: Any, *, shuffle: bool, seed: int) -> "Sampler[int] | None":
    """This rank's shard of ``dataset`` (a ``DistributedSampler``), or None in a single process."""
    import torch.distributed as dist

    if not (dist.is_available() and dist.is_initialized()):
        return None
    from torch.utils.data import DistributedSampler

    return DistributedSampler(dataset, shuffle=shuffle, seed=seed)


def parallel_model(model: "torch.nn.Module") -> "torch.nn.Module":
    """``model`` wrapped for data-parallel training when the run is distributed.

    The doctor keeps watching the inner model: DDP calls its forward, so the
    doctor's hooks see every batch, and its gradients are the all-reduced ones.
    A model with nothing to train (``freeze-all``) stays unwrapped — DDP refuses
    it, and the doctor must get to say so.
    """
    import torch.distributed as dist

    trainable = any(parameter.requires_grad for parameter in model.parameters())
    if not (trainable and dist.is_available() and dist.is_initialized()):
        return model
    from torch.nn.parallel import DistributedDataParallel

    # find_unused_parameters: a BERT classifier whose custom (or orphan) head skips
    # the pooler leaves parameters without gradients; DDP must not wait for them.
    return DistributedDataParallel(model, find_unused_parameters=True)


def start_epoch(loader: Any, epoch: int) -> None:
    """Reshuffle this rank's shard for ``epoch`` (a DistributedSampler repeats its order otherwise)."""
    set_epoch = getattr(getattr(loader, "sampler", None), "set_epoch", None)
    if callable(set_epoch):
        set_epoch(epoch)


def rank_details(label_counts: dict[int, int], *, collective: bool) -> dict[str, Any]:
    """``world_size`` and ``labels_seen``: the training labels every rank's doctor saw, summed over ranks.

    ``collective`` must be the same on every rank (it is an all-reduce); pass
    False after a crash, when the other ranks may never get here — the counts
    are then this rank's own.
    """
    from ftdoctor.runtime.distributed import all_reduce_counts, is_distributed

    world_size = 1
    if is_distributed():
        import torch.distributed as dist

        world_size = dist.get_world_size()
    counts = all_reduce_counts(label_counts) if collective else dict(label_counts)
    return {"world_size": world_size, "labels_seen": {str(label): counts[label] for label in sorted(counts)}}


class SilentDisplay:
    """The display of every rank but the main one: it shows nothing (rank 0 speaks for the job)."""

    def start(self, total_steps: int, title: str) -> None: ...
    def on_step(self, step: int, loss: float, lr: float, grad_norm: float | None) -> None: ...
    def on_evaluation(self, evaluation: Any) -> None: ...
    def on_finding(self, finding: Any) -> None: ...
    def stop(self) -> None: ...
