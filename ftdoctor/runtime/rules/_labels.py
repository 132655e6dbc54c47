"""Label histograms shared by the data/label rules (not a rule itself).

A :class:`LabelHistogram` counts class labels, from a dataset the doctor was
shown (``LabelledData.labels``) or from a batch's label tensor. Only discrete
labels make a histogram: integer class ids or class names. Float targets,
one-hot/multi-hot vectors and anything else return ``None`` — those are
label-type questions, not histogram ones.
"""

from __future__ import annotations

import weakref
from collections import Counter
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Hashable, Iterable, Sequence

if TYPE_CHECKING:
    import torch

    from ftdoctor.runtime.events import LabelledData

#: ``CrossEntropyLoss``'s default ``ignore_index``: padding / unlabelled, never a class.
IGNORE_INDEX = -100


@dataclass
class LabelHistogram:
    """Occurrences per class label, ``IGNORE_INDEX`` left out."""

    counts: Counter[Hashable] = field(default_factory=Counter)
    integer: bool = True  # every label is an integer class id (else class names)

    @property
    def total(self) -> int:
        return sum(self.counts.values())

    @property
    def classes(self) -> list[Hashable]:
        return sorted(self.counts) if self.integer else sorted(self.counts, key=str)

    @property
    def minimum(self) -> int:
        return min(self.counts)  # type: ignore[type-var]

    @property
    def maximum(self) -> int:
        return max(self.counts)  # type: ignore[type-var]

    def majority(self) -> tuple[Hashable, int]:
        """The most frequent label and its count (ties: the smallest label)."""
        label = min(self.counts, key=lambda key: (-self.counts[key], str(key)))
        return label, self.counts[label]

    def out_of_range(self, num_labels: int) -> int:
        """How many integer labels fall outside ``[0, num_labels)``."""
        return sum(count for label, count in self.counts.items() if not 0 <= label < num_labels)  # type: ignore[operator]

    def add(self, other: "LabelHistogram") -> None:
        self.counts.update(other.counts)
        self.integer = self.integer and other.integer


def dataset_histogram(data: "LabelledData | None") -> LabelHistogram | None:
    """The class histogram of a dataset's labels, or None when they are not discrete classes."""
    if data is None or data.labels is None:
        return None
    values = _as_list(data.labels)
    if not values:
        return None
    if all(_is_class_id(value) for value in values):
        return _histogram((int(value) for value in values), integer=True)
    if all(isinstance(value, str) for value in values):
        return _histogram(values, integer=False)
    return None


def host_labels(labels: "torch.Tensor") -> "torch.Tensor":
    """The labels on the CPU, copied once per batch however many rules read them (one device sync).

    The copy is remembered for the very tensor object (a weak reference: a freed tensor's id and memory
    are reused by the next batch) at its current in-place version.
    """
    if labels.device.type == "cpu":
        return labels.detach()
    source = _host_copy.get("source")
    if source is None or source() is not labels or _host_copy.get("version") != labels._version:
        _host_copy.update(source=weakref.ref(labels), version=labels._version, copy=labels.detach().cpu())
    return _host_copy["copy"]  # type: ignore[return-value]


_host_copy: dict[str, Any] = {}


def tensor_histogram(labels: "torch.Tensor | None") -> LabelHistogram | None:
    """The class histogram of an integer label tensor (any shape; meant for one batch), else None.

    Counted once per batch however many rules ask (remembered like :func:`host_labels`'s copy);
    the result is shared, so callers must not modify it.
    """
    if not is_class_id_tensor(labels):
        return None
    assert labels is not None
    source = _batch_histogram.get("source")
    if source is None or source() is not labels or _batch_histogram.get("version") != labels._version:
        histogram = _histogram(host_labels(labels).reshape(-1).tolist(), integer=True)
        _batch_histogram.update(source=weakref.ref(labels), version=labels._version, histogram=histogram)
    return _batch_histogram["histogram"]  # type: ignore[return-value]


_batch_histogram: dict[str, Any] = {}


def is_class_id_tensor(labels: "torch.Tensor | None") -> bool:
    """True for integer (not bool, not float) label tensors."""
    if labels is None or not hasattr(labels, "dtype"):
        return False
    return not labels.dtype.is_floating_point and not labels.dtype.is_complex and labels.dtype != _bool_dtype()


def is_single_label_batch(labels: "torch.Tensor | None") -> bool:
    """One integer class id per example (sequence classification), the shape batch-order rules reason about."""
    return is_class_id_tensor(labels) and labels is not None and labels.dim() == 1


def _bool_dtype() -> Any:
    import torch

    return torch.bool


def _as_list(labels: Sequence[Any] | Iterable[Any]) -> list[Any]:
    if hasattr(labels, "tolist"):  # torch tensors, numpy arrays
        return list(labels.tolist())
    return list(labels)


def _is_class_id(value: Any) -> bool:
    if isinstance(value, int):  # bool included
        return True
    # numpy integer scalars, without importing numpy
    return getattr(getattr(value, "dtype", None), "kind", None) in ("i", "u", "b")


def _histogram(values: Iterable[Hashable], *, integer: bool) -> LabelHistogram:
    counts = Counter(values)
    if integer:
        counts.pop(IGNORE_INDEX, None)
    return LabelHistogram(counts, integer=integer)
