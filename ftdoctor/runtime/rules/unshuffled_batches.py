"""unshuffled-batches: training batches arrive in runs of one label.

A loader over data sorted (or grouped) by label hands the model batches that
each hold a single class, class after class; a shuffled loader mixes them.
Training order matters, not the order inside a batch, so the rule reasons
about *pure* batches (every label the same): with class shares ``p``, a
shuffled batch of ``b`` labels is pure with probability ``sum(p_c ** b)``.
The rule counts pure batches among the first ``label_window_batches`` training
batches and fires as soon as so many are pure that a shuffled loader would
produce that with probability below ``unshuffled_alpha`` (exact
Poisson-binomial tail; both in DoctorOptions).

The class shares come from the training dataset when the doctor was shown it
(then two pure batches of 16 from a balanced set already suffice), otherwise
from the labels seen so far (then at least ``MIN_BATCHES`` batches and two
classes are needed, so a sorted stream is caught once the second class
arrives). Batches of one example are always pure and carry no evidence; tiny
batches need long windows before they count; a heavily imbalanced dataset
legitimately gives pure batches and stays silent (class-imbalance is its
finding).
"""

from __future__ import annotations

from typing import Any, Hashable

from ftdoctor.runtime.events import BatchSeen, LabelledData
from ftdoctor.runtime.options import DoctorOptions
from ftdoctor.runtime.rule import register_runtime_rule
from ftdoctor.runtime.rules._datasets import DatasetRule
from ftdoctor.runtime.rules._labels import LabelHistogram, dataset_histogram, is_single_label_batch, tensor_histogram


@register_runtime_rule
class UnshuffledBatches(DatasetRule):
    slug = "unshuffled-batches"
    explains_findings = frozenset({"lr-too-high", "prediction-collapse", "overfitting-gap"})
    needs = ("labels",)

    #: from batches alone (no dataset), the class shares are estimated only after this many batches
    MIN_BATCHES = 8

    def __init__(self, options: Any = None) -> None:
        super().__init__(options or DoctorOptions())
        self.dataset_shares: dict[Hashable, float] | None = None
        self.seen = LabelHistogram()
        self.sizes: list[int] = []  # labels per batch (batches of two or more)
        self.pure_labels: list[Hashable | None] = []  # the batch's only label, None when mixed
        self.batches = 0

    def judge_datasets(self, step: int, train: LabelledData | None, val: LabelledData | None) -> None:
        histogram = dataset_histogram(train)
        if histogram is not None and histogram.integer and len(histogram.counts) >= 2:
            self.dataset_shares = _shares(histogram)
            if self.batches:
                self._judge(step)

    def on_batch(self, event: BatchSeen) -> None:
        if self.batches >= self.options.label_window_batches:
            self.stop_listening("on_batch")  # the window has closed (a dataset given later is still judged)
            return
        if event.phase != "train":
            return
        if not is_single_label_batch(event.labels):
            return
        batch = tensor_histogram(event.labels)
        if batch is None or batch.total < 2:
            return
        self.batches += 1
        self.seen.add(batch)
        self.sizes.append(batch.total)
        self.pure_labels.append(next(iter(batch.counts)) if len(batch.counts) == 1 else None)
        self._judge(event.step)

    def _judge(self, step: int) -> None:
        shares = self._class_shares()
        pure = sum(label is not None for label in self.pure_labels)
        if shares is None or pure == 0:
            return
        chances = [sum(share**size for share in shares.values()) for size in self.sizes]
        if pure <= sum(chances):
            return  # no more pure batches than expected
        probability = _tail_at_least(chances, pure)
        if probability < self.options.unshuffled_alpha:
            self._emit(step, pure, sum(chances), probability, shares)

    def _class_shares(self) -> dict[Hashable, float] | None:
        if self.dataset_shares is not None:
            return self.dataset_shares
        if self.batches < self.MIN_BATCHES or len(self.seen.counts) < 2:
            return None
        return _shares(self.seen)

    def _emit(self, step: int, pure: int, expected: float, probability: float, shares: dict[Hashable, float]) -> None:
        order = " ".join("*" if label is None else str(label) for label in self.pure_labels[:24])
        source = "the dataset's" if self.dataset_shares is not None else "the observed"
        self.emit(
            step,
            f"{pure} of the first {self.batches} training batches hold a single label each (batch labels: {order}"
            f"{' ...' if self.batches > 24 else ''}; * = mixed); with {source} class balance a shuffled loader "
            f"would do that with probability {probability:.1e}: the training data is not shuffled",
            "shuffle the training data every epoch: DataLoader(train_set, shuffle=True) "
            "(or dataset.shuffle(seed=...) before batching)",
            {
                "batches_seen": self.batches,
                "single_label_batches": pure,
                "expected_single_label_batches": round(expected, 3),
                "probability_if_shuffled": probability,
                "alpha": self.options.unshuffled_alpha,
                "class_shares": {str(label): round(share, 4) for label, share in shares.items()},
                "class_shares_from": "dataset" if self.dataset_shares is not None else "batches",
            },
        )


def _shares(histogram: LabelHistogram) -> dict[Hashable, float]:
    total = histogram.total
    return {label: count / total for label, count in histogram.counts.items()}


def _tail_at_least(chances: list[float], observed: int) -> float:
    """P(at least ``observed`` successes) for independent trials with these success chances."""
    distribution = [1.0]
    for chance in chances:
        step = [0.0] * (len(distribution) + 1)
        for successes, mass in enumerate(distribution):
            step[successes] += mass * (1 - chance)
            step[successes + 1] += mass * chance
        distribution = step
    return sum(distribution[observed:])
