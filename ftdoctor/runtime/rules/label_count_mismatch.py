"""label-count-mismatch: the training data's classes vs the head's width.

Split with label-out-of-range, so one fault gives one finding: a class id at or
beyond ``num_labels`` (more classes than the head) is label-out-of-range's;
this rule speaks only when every label is in range and the data uses *fewer*
classes than the head has outputs (e.g. ``num_labels=3`` for binary data, or
labels 1..K with ``num_labels=K+1``), or when class *names* are counted and
their number differs from the head's width either way.

With the training dataset at pre-flight the class set is certain. From batches
alone a missing class may just be rare, so the rule judges once, after
``count_mismatch_min_labels`` labels (and ``count_mismatch_labels_per_class``
per head output; see DoctorOptions), and only if most batches held more than
one class — a stream sorted by label shows one class for a long time, and that
is unshuffled-batches' finding.
"""

from __future__ import annotations

from typing import Any, Hashable

from ftdoctor.runtime.events import BatchSeen, LabelledData, Preflight
from ftdoctor.runtime.options import DoctorOptions
from ftdoctor.runtime.rule import register_runtime_rule
from ftdoctor.runtime.rules._datasets import DatasetRule
from ftdoctor.runtime.rules._labels import LabelHistogram, dataset_histogram, is_single_label_batch, tensor_histogram
from ftdoctor.runtime.rules._models import class_count


@register_runtime_rule
class LabelCountMismatch(DatasetRule):
    slug = "label-count-mismatch"
    needs = ("labels",)

    #: from batches, at least this share of the (multi-example) batches must hold more than one class
    MIN_MIXED_BATCH_SHARE = 0.5

    def __init__(self, options: Any = None) -> None:
        super().__init__(options or DoctorOptions())
        self.num_labels: int | None = None
        self.judged = False
        self.seen = LabelHistogram()
        self.batches = 0
        self.mixed_batches = 0

    def start(self, event: Preflight) -> None:
        self.num_labels = class_count(event)
        # No head width, or a regression head (label-type-mismatch's): nothing to count against.
        self.judged = self.num_labels is None or self.num_labels <= 1

    def judge_datasets(self, step: int, train: LabelledData | None, val: LabelledData | None) -> None:
        histogram = dataset_histogram(train)
        if self.num_labels is None or self.num_labels <= 1 or train is None or histogram is None:
            return
        if histogram.counts:
            self.judged = True  # the dataset is certain; batches no longer matter
            self._judge(step, histogram, f"the {train.name} dataset")

    def on_batch(self, event: BatchSeen) -> None:
        if self.judged:
            self.stop_listening("on_batch")  # judged once, from the dataset or the first labels
            return
        if not self.preflight_seen or event.phase != "train" or not is_single_label_batch(event.labels):
            return
        batch = tensor_histogram(event.labels)
        if batch is None or not batch.counts:
            return
        self.seen.add(batch)
        if batch.total > 1:
            self.batches += 1
            self.mixed_batches += len(batch.counts) > 1
        if self.seen.total >= self._batch_labels_needed():
            self.judged = True
            if self.mixed_batches >= self.MIN_MIXED_BATCH_SHARE * self.batches:
                self._judge(event.step, self.seen, f"the first {self.seen.total} training labels")

    def _batch_labels_needed(self) -> int:
        assert self.num_labels is not None
        per_class = self.options.count_mismatch_labels_per_class * self.num_labels
        return max(self.options.count_mismatch_min_labels, per_class)

    def _judge(self, step: int, histogram: LabelHistogram, source: str) -> None:
        assert self.num_labels is not None
        present = histogram.classes
        if not histogram.integer:
            if len(present) != self.num_labels:
                self._emit(step, histogram, source, f"{len(present)} class names {_show(present)}",
                           f"build the model with num_labels={len(present)}, one output per class name")
            return
        if histogram.out_of_range(self.num_labels):
            return  # label-out-of-range's finding
        missing = [c for c in range(self.num_labels) if c not in histogram.counts]
        if not missing:
            return
        fix = (
            f"build the model with num_labels={len(present)}"
            if present == list(range(len(present)))
            else f"remap the labels to 0..{len(present) - 1} and build the model with num_labels={len(present)}"
        )
        self._emit(step, histogram, source,
                   f"{len(present)} classes {_show(present)} (class ids {_show(missing)} never occur)", fix,
                   missing=missing)

    def _emit(self, step: int, histogram: LabelHistogram, source: str, what: str, fix: str,
              missing: list[int] | None = None) -> None:
        assert self.num_labels is not None
        evidence: dict[str, Any] = {
            "classes_present": len(histogram.counts),
            "num_labels": self.num_labels,
            "present": histogram.classes,
            "labels_counted": histogram.total,
            "source": source,
        }
        if missing is not None:
            evidence["missing"] = missing
        self.emit(step, f"{source} uses {what}, but the head has num_labels={self.num_labels}", fix, evidence)


def _show(items: list[Hashable], limit: int = 10) -> str:
    shown = ", ".join(str(item) for item in items[:limit])
    return f"[{shown}{', ...' if len(items) > limit else ''}]"
