"""class-imbalance: one class dominates the training labels.

With the training dataset at pre-flight, the majority class's share is exact:
the rule warns at step 0 when it reaches ``imbalance_share`` (default 0.9; a
constant predictor then scores that accuracy). Sentiment and topic sets sit
within about 60/40; toxicity (~90% clean) and fraud (>99% legitimate) sets are
where accuracy stops meaning anything.

From batches alone (no dataset given) the share is a sample estimate, judged
over the first ``label_window_batches`` training batches: the rule fires when
the lower ``imbalance_batch_z``-sigma Wilson bound of the majority share clears
the threshold, and only when the minority labels are spread through batches
that also hold the majority class — a stream sorted by label (balanced data,
one class first) looks "imbalanced" until the other class arrives, and that is
unshuffled-batches' finding, not this one. A dataset with one class only is
label-count-mismatch's.
"""

from __future__ import annotations

import math
from typing import Any, Hashable

from ftdoctor.runtime.events import BatchSeen, LabelledData, Preflight
from ftdoctor.runtime.options import DoctorOptions
from ftdoctor.runtime.rule import register_runtime_rule
from ftdoctor.runtime.rules._datasets import DatasetRule
from ftdoctor.runtime.rules._labels import LabelHistogram, dataset_histogram, is_single_label_batch, tensor_histogram
from ftdoctor.runtime.rules._models import is_classifier


@register_runtime_rule
class ClassImbalance(DatasetRule):
    slug = "class-imbalance"
    needs = ("labels",)

    #: smaller datasets are judged from batches like an unknown one
    MIN_DATASET_LABELS = 20
    #: from batches, the minority labels must share at least this many batches with the majority class
    MIN_MIXED_BATCHES = 3

    def __init__(self, options: Any = None) -> None:
        super().__init__(options or DoctorOptions())
        self.from_batches = True
        self.seen = LabelHistogram()
        self.batch_classes: list[set[Hashable]] = []

    def start(self, event: Preflight) -> None:
        if event.num_labels == 1 or not is_classifier(event.model):  # regression heads, language models
            self.from_batches = False

    def judge_datasets(self, step: int, train: LabelledData | None, val: LabelledData | None) -> None:
        histogram = dataset_histogram(train)
        if train is None or histogram is None or histogram.total < self.MIN_DATASET_LABELS or not self.from_batches:
            return
        self.from_batches = False  # the dataset is exact; batches no longer matter
        if len(histogram.counts) >= 2 and _share(histogram) >= self.options.imbalance_share:
            self._emit(step, histogram, f"the {train.name} dataset")

    def on_batch(self, event: BatchSeen) -> None:
        if not self._watching_batches():
            self.stop_listening("on_batch")  # the window has closed (a dataset given later is still judged)
            return
        if event.phase != "train" or not is_single_label_batch(event.labels):
            return
        batch = tensor_histogram(event.labels)
        if batch is None or not batch.counts:
            return
        self.seen.add(batch)
        self.batch_classes.append(set(batch.counts))
        if self._batches_show_imbalance():
            self._emit(event.step, self.seen, f"the first {self.seen.total} training labels")

    def _watching_batches(self) -> bool:
        return self.from_batches and not self.fired and len(self.batch_classes) < self.options.label_window_batches

    def _batches_show_imbalance(self) -> bool:
        if len(self.seen.counts) < 2 or _share(self.seen) < self.options.imbalance_share:
            return False  # the Wilson interval contains the share: its lower bound cannot clear it
        lower = _wilson_lower_bound(_share(self.seen), self.seen.total, self.options.imbalance_batch_z)
        if lower < self.options.imbalance_share:
            return False
        majority, _ = self.seen.majority()
        with_minority = [classes for classes in self.batch_classes if classes - {majority}]
        mixed = sum(majority in classes for classes in with_minority)
        return mixed >= self.MIN_MIXED_BATCHES and 2 * mixed >= len(with_minority)

    def _emit(self, step: int, histogram: LabelHistogram, source: str) -> None:
        majority, count = histogram.majority()
        share = count / histogram.total
        self.emit(
            step,
            f"class {majority!r} makes up {share:.0%} of {source} ({count} of {histogram.total}); "
            f"always predicting it already scores {share:.0%} accuracy",
            "rebalance the loss (CrossEntropyLoss(weight=...)) or the sampler (WeightedRandomSampler), "
            "and judge the model by macro-F1 rather than accuracy",
            {
                "majority_class": majority,
                "majority_share": round(share, 4),
                "threshold": self.options.imbalance_share,
                "label_counts": {str(label): n for label, n in histogram.counts.most_common(10)},
                "labels_counted": histogram.total,
                "source": source,
            },
        )


def _share(histogram: LabelHistogram) -> float:
    return histogram.majority()[1] / histogram.total


def _wilson_lower_bound(share: float, n: int, z: float) -> float:
    """Lower end of the Wilson score interval for a proportion."""
    denominator = 1 + z * z / n
    centre = share + z * z / (2 * n)
    spread = z * math.sqrt(share * (1 - share) / n + z * z / (4 * n * n))
    return (centre - spread) / denominator
