"""label-out-of-range: class ids outside ``[0, num_labels)``.

Judged on the datasets at pre-flight and on every batch in the model's forward
pre-hook, i.e. *before* the forward runs — so the finding exists before
cross-entropy raises ``IndexError: Target 2 is out of bounds`` (or CUDA's
device-side assert, which names nothing). Targets handed to a cross-entropy or
NLL loss outside the model are checked against the loss input's class width
(on CUDA the out-of-bounds kernel assert surfaces only at the next sync, after
the doctor has looked). ``-100`` is cross-entropy's ``ignore_index`` and never
counts.

Split with label-count-mismatch: any integer label outside the range is this
rule's; label-count-mismatch only speaks when every label is in range.
Regression heads (``num_labels == 1``) have no class range: label-type-mismatch
owns integer labels there. Language models, QA and multiple-choice models keep
the default ``config.num_labels=2`` while their labels are token ids, spans or
choice indices: their batches are not judged against it.

Cost: one ``aminmax`` per batch (the details are counted only when a label is
out of range), and a loss whose targets are the very tensor already judged for
the batch, against the same class range, is not judged again. That read is a
device sync, so it is paid for the first ``label_window_batches`` batches only, and
routine training batches (after the dense phase, between measured steps) are skipped:
a label mapping is wrong from the first batch. A late out-of-range label crashes
cross-entropy; the batch in flight at the crash is judged then (``RunEnded.last_labels``).
"""

from __future__ import annotations

from typing import Any

from ftdoctor.runtime.events import BatchSeen, ForwardDone, LabelledData, LossInput, Preflight, RunEnded
from ftdoctor.runtime.rule import register_runtime_rule
from ftdoctor.runtime.rules._datasets import DatasetRule
from ftdoctor.runtime.rules._labels import IGNORE_INDEX, dataset_histogram, host_labels, is_class_id_tensor
from ftdoctor.runtime.rules._losses import CROSS_ENTROPY, NLL, class_dim, loss_family
from ftdoctor.runtime.rules._models import class_count, is_classifier


@register_runtime_rule
class LabelOutOfRange(DatasetRule):
    slug = "label-out-of-range"
    needs = ("labels",)
    explains_crashes = (r"Target -?\d+ is out of bounds", r"device-side assert", r"out of bounds")
    skip_routine = frozenset({"on_batch", "on_loss_input"})

    def __init__(self, options: Any = None) -> None:
        super().__init__(options)
        self.num_labels: int | None = None
        self.judging = True  # false for language models & co., whose labels are token ids or spans
        self.last_checked: Any = None  # the last label tensor found in range (kept alive: its memory is not reused)
        self.last_classes = 0
        self.judged = 0  # batches judged with a read-back

    def start(self, event: Preflight) -> None:
        self.num_labels = class_count(event)
        self.judging = is_classifier(event.model)
        if self.num_labels is not None or not self.judging:
            self.stop_listening("on_forward")  # the forward only teaches a missing class range

    def judge_datasets(self, step: int, train: LabelledData | None, val: LabelledData | None) -> None:
        classes = self._class_range()
        if classes is not None:
            for data in (train, val):
                self._judge_dataset(step, data, classes)

    def on_batch(self, event: BatchSeen) -> None:
        self._judge_batch(event.step, event.phase, event.labels)

    def on_forward(self, event: ForwardDone) -> None:
        # A custom head with no known num_labels: its logits' width is the class range.
        logits = event.logits
        learns_width = self.judging and self.num_labels is None and logits is not None and logits.dim() >= 2
        if self.fired or not learns_width:
            return
        self.num_labels = int(logits.shape[-1])  # type: ignore[union-attr]
        self.stop_listening("on_forward")
        self._judge_batch(event.step, event.phase, event.labels)

    def on_loss_input(self, event: LossInput) -> None:
        family = loss_family(event.loss_name)
        if self.fired or family not in (CROSS_ENTROPY, NLL):
            return
        dim = class_dim(family, event.input)
        if dim is None or event.input.shape[dim] <= 1:
            return
        classes = int(event.input.shape[dim])
        if not self._already_checked(event.target, classes):
            self._judge_tensor(event.step, event.target, classes, f"the targets of {event.loss_name}")

    def _already_checked(self, target: Any, classes: int) -> bool:
        """The target holds the very labels last found in ``[0, classes)`` (a view of them, as HF's
        ``labels.view(-1)``). The judged tensor is kept alive, so equal storage means equal values."""
        last = self.last_checked
        return (
            last is not None
            and target is not None
            and classes >= self.last_classes
            and target.data_ptr() == last.data_ptr()
            and target.numel() == last.numel()
            and target.dtype == last.dtype
            and target.device == last.device
            and target._version == last._version
            and target.is_contiguous()
            and last.is_contiguous()
        )

    def _class_range(self) -> int | None:
        """The head width labels must fit, when there is one (not for regression heads)."""
        return self.num_labels if self.num_labels is not None and self.num_labels > 1 else None

    def _judge_batch(self, step: int, phase: str, labels: Any) -> None:
        classes = self._class_range()
        if not self.fired and classes is not None:
            self._judge_tensor(step, labels, classes, f"a {phase} batch")

    def _judge_dataset(self, step: int, data: LabelledData | None, classes: int) -> None:
        histogram = dataset_histogram(data)
        if data is None or histogram is None or not histogram.integer or not histogram.counts:
            return
        outside = histogram.out_of_range(classes)
        if outside:
            self._emit(step, histogram.minimum, histogram.maximum, outside, histogram.total, classes,
                       f"the {data.name} dataset")

    def on_run_end(self, event: RunEnded) -> None:
        classes = self._class_range()
        if event.exception is not None and classes is not None and not self.fired:
            self._judge_tensor(event.step, event.last_labels, classes, "the batch in flight when the run crashed")

    def _judge_tensor(self, step: int, labels: Any, classes: int, source: str) -> None:
        if not is_class_id_tensor(labels) or labels.numel() == 0:
            return
        self.judged += 1
        if self.judged >= self.options.label_window_batches:
            self.stop_listening("on_batch", "on_loss_input")  # later batches: only the one a crash leaves
        self._judge_now(step, labels, classes, source)

    def _judge_now(self, step: int, labels: Any, classes: int, source: str) -> None:
        """One read-back: the common in-range case costs a single reduction."""
        low, high = _bounds(labels)
        if low >= 0 and high < classes:
            self.last_checked, self.last_classes = labels, classes
            return  # the common case: one reduction, no masking
        valid = host_labels(labels).reshape(-1)
        valid = valid[valid != IGNORE_INDEX]
        if valid.numel() == 0:
            return
        low, high = _bounds(valid)
        if low >= 0 and high < classes:
            return
        outside = int(((valid < 0) | (valid >= classes)).sum())
        self._emit(step, low, high, outside, int(valid.numel()), classes, source)

    def _emit(self, step: int, low: int, high: int, outside: int, checked: int, classes: int, source: str) -> None:
        self.emit(
            step,
            f"{outside} of {checked} labels in {source} lie outside [0, {classes - 1}] for a head of "
            f"{classes} classes (labels range over [{low}, {high}]); cross-entropy fails on them with "
            "`Target out of bounds` or a CUDA device-side assert",
            _fix(low, high, classes),
            {
                "min_label": low,
                "max_label": high,
                "num_labels": classes,
                "out_of_range": outside,
                "labels_checked": checked,
                "source": source,
                "ignore_index": IGNORE_INDEX,
            },
        )


def _bounds(labels: Any) -> tuple[int, int]:
    low, high = labels.aminmax()
    if labels.device.type == "cpu":
        return int(low), int(high)
    import torch

    first, second = torch.stack([low, high]).tolist()  # one device sync
    return int(first), int(second)


def _fix(low: int, high: int, num_labels: int) -> str:
    if low >= 1 and high == num_labels:
        return f"the labels look 1-based: subtract 1 so they run 0..{num_labels - 1}"
    if low < 0:
        return f"map negative labels to class ids 0..{num_labels - 1} (only -100 is ignored by the loss)"
    return (
        f"build the model with num_labels={high + 1} (or the true class count), "
        f"or remap the labels to 0..{num_labels - 1}"
    )
