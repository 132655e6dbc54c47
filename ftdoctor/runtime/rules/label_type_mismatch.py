"""label-type-mismatch: label dtype/shape that makes transformers pick the wrong loss.

transformers' sequence classifiers choose their loss from ``config.problem_type``
and, when that is unset, from the labels (``BertForSequenceClassification.forward``
and ``loss_utils.ForSequenceClassificationLoss`` in 5.x):

- ``num_labels == 1`` → regression (``MSELoss``), whatever the labels are;
- ``num_labels > 1`` and labels of dtype ``long``/``int`` → single-label cross-entropy;
- anything else (float, bool, uint8, ...) → multi-label ``BCEWithLogitsLoss``.

So float class ids crash on a shape mismatch, one-hot float labels silently
train a sigmoid-per-class multi-label model, one-hot integer labels crash, and
integer class ids with ``num_labels=1`` silently train a regression on the
class ids. The rule reads ``problem_type`` at pre-flight, before the first
forward fixes it, and judges each batch before the model sees it. An explicit
``problem_type`` (multi-label with multi-hot labels, regression with a single
output) is the user's choice and stays silent, as do genuinely multi-hot float
labels and float targets with ``num_labels == 1``. Only ``*ForSequenceClassification``
models choose their loss this way; custom models and token classifiers are not judged.
A label dtype is a property of the data pipeline, which the first batches show: routine
training batches (after the dense phase, between measured steps) are not judged.
"""

from __future__ import annotations

from typing import Any

from ftdoctor.runtime.events import BatchSeen, Preflight
from ftdoctor.runtime.rule import RuntimeRule, register_runtime_rule
from ftdoctor.runtime.rules._labels import host_labels

AUTO = None
SINGLE_LABEL = "single_label_classification"

Diagnosis = tuple[str, str]  # (what is wrong, fix)


@register_runtime_rule
class LabelTypeMismatch(RuntimeRule):
    slug = "label-type-mismatch"
    needs = ("labels",)
    skip_routine = frozenset({"on_batch"})
    explains_crashes = (
        r"Target size \(.*\) must be the same as input size",
        r"Expected input batch_size \(\d+\) to match target batch_size",
        r"expected (target|scalar) (dtype|type) .*(Long|Float)",
    )

    def __init__(self, options: Any = None) -> None:
        super().__init__(options)
        self.judging = False
        self.num_labels: int | None = None
        self.problem_type: str | None = None

    def on_preflight(self, event: Preflight) -> None:
        config = getattr(event.model, "config", None)
        if not _chooses_loss_from_labels(event.model) or not hasattr(config, "problem_type"):
            self.done = True
            return  # other models (custom, token classification) have a loss of their own
        self.num_labels = getattr(config, "num_labels", None) or event.num_labels
        self.problem_type = config.problem_type
        self.judging = self.num_labels is not None
        self.done = not self.judging

    def on_batch(self, event: BatchSeen) -> None:
        labels = event.labels
        if self.fired or not self.judging or labels is None or not hasattr(labels, "dtype") or labels.numel() == 0:
            return
        diagnosis = self._diagnose(labels)
        if diagnosis is None:
            return
        what, fix = diagnosis
        self.emit(
            event.step,
            what,
            fix,
            {
                "labels_dtype": str(labels.dtype).removeprefix("torch."),
                "labels_shape": list(labels.shape),
                "num_labels": self.num_labels,
                "problem_type": self.problem_type or "auto (unset)",
                "phase": event.phase,
            },
        )

    def _diagnose(self, labels: Any) -> Diagnosis | None:
        assert self.num_labels is not None
        if self.num_labels == 1:
            return self._diagnose_single_output(labels)
        if self.problem_type not in (AUTO, SINGLE_LABEL):
            return None  # explicit multi-label or regression: the user's choice
        if labels.dim() >= 2 and labels.shape[-1] == self.num_labels:
            return self._diagnose_vectors(labels)
        if not _is_long_or_int(labels):
            return self._diagnose_class_ids(labels)
        return None

    def _diagnose_single_output(self, labels: Any) -> Diagnosis | None:
        if self.problem_type is not AUTO or labels.dtype.is_floating_point:
            return None  # explicit choice, or float regression targets
        distinct = host_labels(labels).unique()
        shown = ", ".join(str(v) for v in distinct[:6].tolist())
        return (
            f"num_labels=1 makes transformers train a regression (MSELoss) on these {labels.dtype} labels "
            f"{{{shown}{', ...' if distinct.numel() > 6 else ''}}}: integer class ids treated as numbers",
            f"for classification build the model with num_labels={max(2, int(distinct.max()) + 1)}; "
            "for regression pass float targets (labels.float())",
        )

    def _diagnose_class_ids(self, labels: Any) -> Diagnosis:
        loss = (
            "transformers then picks multi-label BCEWithLogitsLoss, which fails on the shape"
            if self.problem_type is AUTO
            else "cross-entropy needs int64 class ids"
        )
        return (
            f"labels of dtype {labels.dtype} with num_labels={self.num_labels}: {loss}",
            "pass integer class ids: labels.long() (or cast the dataset's label column to int)",
        )

    def _diagnose_vectors(self, labels: Any) -> Diagnosis | None:
        one_hot = _is_one_hot(host_labels(labels))
        if labels.dtype.is_floating_point and self.problem_type is AUTO and not one_hot:
            return None  # multi-hot float targets: genuine multi-label classification
        if labels.dtype.is_floating_point and self.problem_type is AUTO:
            effect = "transformers switches to multi-label BCEWithLogitsLoss (a sigmoid per class, not softmax)"
        else:
            effect = "cross-entropy then sees num_labels targets per example and fails"
        kind = "one-hot" if one_hot else "vector"
        return (
            f"{kind} labels of shape {list(labels.shape)} with num_labels={self.num_labels}: {effect}",
            "pass class indices (labels.argmax(-1)); if an example can have several labels, "
            "set config.problem_type='multi_label_classification' and use float multi-hot labels",
        )


def _chooses_loss_from_labels(model: Any) -> bool:
    return type(model).__name__.endswith("ForSequenceClassification")


def _is_long_or_int(labels: Any) -> bool:
    return str(labels.dtype) in ("torch.int64", "torch.int32")


def _is_one_hot(labels: Any) -> bool:
    binary = ((labels == 0) | (labels == 1)).all()
    return bool(binary) and bool((labels.sum(dim=-1) == 1).all())
