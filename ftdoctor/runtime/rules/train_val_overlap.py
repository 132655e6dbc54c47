"""train-val-overlap: validation examples that also appear in the training data.

At pre-flight, when the doctor was shown both datasets' texts. Texts are
normalised (Unicode NFKC, case-folded, whitespace collapsed) and hashed, so
the check is one pass over each set. Only exact duplicates after
normalisation count: near-duplicates that differ by a word are not judged.

A handful of short, generic texts ("great movie!") legitimately recur in real
corpora, so the rule needs both a share (``overlap_min_share`` of the validation rows)
and a count (``overlap_min_count`` rows; DoctorOptions) before it warns.
"""

from __future__ import annotations

import unicodedata
from typing import Any, Iterable

from ftdoctor.runtime.events import LabelledData
from ftdoctor.runtime.options import DoctorOptions
from ftdoctor.runtime.rule import register_runtime_rule
from ftdoctor.runtime.rules._datasets import DatasetRule


@register_runtime_rule
class TrainValOverlap(DatasetRule):
    slug = "train-val-overlap"
    needs = ()  # judged from the datasets, no core signal

    def __init__(self, options: Any = None) -> None:
        super().__init__(options or DoctorOptions())

    def judge_datasets(self, step: int, train: LabelledData | None, val: LabelledData | None) -> None:
        train_texts, val_texts = _texts(train), _texts(val)
        if train is None or val is None or not train_texts or not val_texts:
            return
        seen = {hash(key) for key in map(normalise, train_texts) if key}
        shared = [index for index, text in enumerate(val_texts) if (key := normalise(text)) and hash(key) in seen]
        share = len(shared) / len(val_texts)
        if len(shared) < self.options.overlap_min_count or share < self.options.overlap_min_share:
            return
        self.emit(
            step,
            f"{len(shared)} of {len(val_texts)} {val.name} examples ({share:.1%}) also appear in the "
            f"{train.name} data: the validation score measures memory, not generalisation",
            "deduplicate before splitting (drop validation rows whose normalised text is in the training set), "
            "or split by a group key so copies stay on one side",
            {
                "overlapping": len(shared),
                "val_examples": len(val_texts),
                "train_examples": len(train_texts),
                "share": round(share, 4),
                "threshold_share": self.options.overlap_min_share,
                "threshold_count": self.options.overlap_min_count,
                "first_overlapping_val_rows": shared[:5],
            },
        )


def normalise(text: Any) -> str:
    """The comparison key of one example: NFKC, case-folded, single-spaced; sentence pairs joined."""
    if not isinstance(text, str):
        text = " [SEP] ".join(str(part) for part in _parts(text))
    return " ".join(unicodedata.normalize("NFKC", text).casefold().split())


def _parts(example: Any) -> Iterable[Any]:
    return example if isinstance(example, (list, tuple)) else (example,)


def _texts(data: LabelledData | None) -> list[Any]:
    if data is None or data.texts is None:
        return []
    return list(data.texts)
