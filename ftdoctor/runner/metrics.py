"""Evaluation results and the final metrics (scikit-learn)."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

#: Flat metrics every run report carries (null when there was no evaluation).
METRIC_KEYS = ("train_loss", "val_loss", "val_accuracy", "val_macro_f1", "train_accuracy")


@dataclass
class Evaluation:
    step: int
    val_loss: float
    val_accuracy: float
    train_loss: float
    train_accuracy: float
    predictions: list[int] = field(default_factory=list, repr=False)  # validation
    references: list[int] = field(default_factory=list, repr=False)

    def curve_point(self) -> dict[str, float]:
        return {"step": self.step, "val_loss": self.val_loss, "val_accuracy": self.val_accuracy,
                "train_loss": self.train_loss, "train_accuracy": self.train_accuracy}


def final_metrics(
    last: Evaluation | None, label_names: list[str], num_labels: int
) -> tuple[dict[str, float | None], dict[str, dict[str, float]], list[list[int]]]:
    """Flat metrics, per-class precision/recall/F1/support and the confusion matrix of the last evaluation."""
    if last is None:
        return dict.fromkeys(METRIC_KEYS), {}, []
    from sklearn.metrics import accuracy_score, classification_report, confusion_matrix, f1_score

    ids = list(range(num_labels))
    names = [label_names[i] if i < len(label_names) else f"LABEL_{i}" for i in ids]
    y_true, y_pred = last.references, last.predictions
    per_class_raw = classification_report(
        y_true, y_pred, labels=ids, target_names=names, output_dict=True, zero_division=0
    )
    per_class = {
        name: {"precision": round(float(row["precision"]), 4), "recall": round(float(row["recall"]), 4),
               "f1": round(float(row["f1-score"]), 4), "support": int(row["support"])}
        for name, row in per_class_raw.items() if name in names
    }
    flat: dict[str, Any] = {
        "train_loss": _round(last.train_loss),
        "val_loss": _round(last.val_loss),
        "val_accuracy": _round(float(accuracy_score(y_true, y_pred))),
        "val_macro_f1": _round(float(f1_score(y_true, y_pred, labels=ids, average="macro", zero_division=0))),
        "train_accuracy": _round(last.train_accuracy),
    }
    return flat, per_class, confusion_matrix(y_true, y_pred, labels=ids).tolist()


def _round(value: float) -> float | None:
    """Six decimals; a non-finite value (a diverged run) is null, which JSON can carry."""
    value = float(value)
    return round(value, 6) if math.isfinite(value) else None
