"""The run report's figures as PNG bytes (matplotlib, Agg canvas, no pyplot).

Each figure function takes the ``curves``/``run`` parts of a run report's
``extra`` and returns ``None`` when there is nothing to draw. Figures are
built on a private :class:`~matplotlib.figure.Figure` with an Agg canvas, so
plotting never touches pyplot's global state or the user's backend.
"""

from __future__ import annotations

import io
import math
from dataclasses import dataclass
from typing import Any, Callable, Sequence

FIGSIZE = (6.0, 3.4)
DPI = 110
TRAIN_COLOUR, VAL_COLOUR, ESTIMATE_COLOUR = "#1f77b4", "#d62728", "#2ca02c"


@dataclass(frozen=True)
class Plot:
    title: str
    caption: str
    png: bytes


def _new_axes(title: str, figsize: tuple[float, float] = FIGSIZE) -> tuple[Any, Any]:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=figsize, dpi=DPI)
    FigureCanvasAgg(figure)
    axes = figure.add_subplot()
    axes.set_title(title, fontsize=11)
    axes.grid(True, alpha=0.3)
    axes.xaxis.get_major_locator().set_params(integer=True)  # optimizer steps are whole numbers
    return figure, axes


def _png(figure: Any) -> bytes:
    buffer = io.BytesIO()
    figure.tight_layout()
    figure.savefig(buffer, format="png")
    return buffer.getvalue()


def _pairs(xs: Sequence[Any], ys: Sequence[Any]) -> tuple[list[float], list[float]]:
    kept = [(x, y) for x, y in zip(xs, ys) if x is not None and y is not None and math.isfinite(y)]
    return [x for x, _ in kept], [y for _, y in kept]


def smooth(values: Sequence[float]) -> list[float]:
    """Centred moving average over about 1/20 of the run: no lag, unlike an exponential average."""
    half = max(1, len(values) // 40)
    return [sum(window) / len(window) for window in
            (values[max(0, i - half):i + half + 1] for i in range(len(values)))]


def loss_plot(curves: dict[str, Any], run: dict[str, Any]) -> Plot | None:
    train = curves.get("train", {})
    steps, losses = _pairs(train.get("step", []), train.get("loss", []))
    evaluations = curves.get("evaluations", [])
    if not losses and not evaluations:
        return None
    figure, axes = _new_axes("Loss")
    if losses:
        axes.plot(steps, losses, color=TRAIN_COLOUR, alpha=0.35, linewidth=0.8)
        axes.plot(steps, smooth(losses), color=TRAIN_COLOUR, label="train (per step, smoothed)")
    for key, colour, label in (("train_loss", ESTIMATE_COLOUR, "train (evaluated)"), ("val_loss", VAL_COLOUR, "validation")):
        xs, ys = _pairs([e["step"] for e in evaluations], [e.get(key) for e in evaluations])
        if ys:
            axes.plot(xs, ys, "o-", color=colour, label=label, markersize=4)
    axes.set_xlabel("optimizer step")
    axes.legend(fontsize=8)
    return Plot("Training and validation loss", "Per-step training loss (faint: raw) and the loss at each "
                "evaluation. Validation rising while training falls means overfitting.", _png(figure))


def _step_series_plot(curves: dict[str, Any], key: str, title: str, caption: str, *,
                      log: bool = False) -> Plot | None:
    train = curves.get("train", {})
    steps, values = _pairs(train.get("step", []), train.get(key, []))
    if log:
        steps, values = _pairs(steps, [v if v > 0 else None for v in values])
    if not values:
        return None
    figure, axes = _new_axes(title)
    sampled = len(values) < len(train.get("step", []))  # measured every n-th step: show the samples
    axes.plot(steps, values, color=TRAIN_COLOUR, linewidth=1, marker="o" if sampled else None, markersize=2.5)
    if log:
        axes.set_yscale("log")
    axes.set_xlabel("optimizer step")
    return Plot(title, caption, _png(figure))


def grad_norm_plot(curves: dict[str, Any], run: dict[str, Any]) -> Plot | None:
    return _step_series_plot(curves, "grad_norm", "Gradient norm",
                             "Global L2 norm of the gradients at each optimizer step.", log=True)


def update_ratio_plot(curves: dict[str, Any], run: dict[str, Any]) -> Plot | None:
    return _step_series_plot(curves, "update_ratio", "Update / weight ratio",
                             "‖Δw‖ / ‖w‖ of each step: around 1e-4–1e-2 is typical for fine-tuning; far above "
                             "means the learning rate is too high, far below that it barely trains.", log=True)


def lr_plot(curves: dict[str, Any], run: dict[str, Any]) -> Plot | None:
    return _step_series_plot(curves, "lr", "Learning rate", "The schedule: linear warm-up, then linear decay.")


def label_histogram_plot(curves: dict[str, Any], run: dict[str, Any]) -> Plot | None:
    counts = run.get("label_counts", {})
    names = run.get("label_names", [])
    if not names or not counts:
        return None
    figure, axes = _new_axes("Label histogram")
    width, tallest = 0.4, 0.0
    for offset, (split, colour) in enumerate((("train", TRAIN_COLOUR), ("validation", VAL_COLOUR))):
        split_counts = counts.get(split, {})
        total = sum(split_counts.values()) or 1
        shares = [split_counts.get(str(i), 0) / total for i in range(len(names))]
        tallest = max([tallest, *shares])
        axes.bar([i + (offset - 0.5) * width for i in range(len(names))], shares, width, color=colour, label=split)
    axes.set_ylim(0, tallest * 1.3 or 1)  # room for the legend above the bars
    axes.set_xticks(range(len(names)), names, rotation=30 if len(names) > 4 else 0, fontsize=8)
    axes.set_ylabel("share of examples")
    axes.legend(fontsize=8)
    return Plot("Label histogram", "Share of each class in the training and validation data.", _png(figure))


def confusion_plot(curves: dict[str, Any], run: dict[str, Any]) -> Plot | None:
    matrix = run.get("confusion_matrix")
    names = run.get("label_names", [])
    if not matrix:
        return None
    figure, axes = _new_axes("Confusion matrix (validation)")
    axes.grid(False)
    image = axes.imshow(matrix, cmap="Blues")
    figure.colorbar(image, ax=axes, fraction=0.046)
    peak = max(max(row) for row in matrix) or 1
    for i, row in enumerate(matrix):
        for j, count in enumerate(row):
            axes.text(j, i, str(count), ha="center", va="center", fontsize=9,
                      color="white" if count > peak / 2 else "black")
    axes.set_xticks(range(len(names)), names, rotation=30 if len(names) > 4 else 0, fontsize=8)
    axes.set_yticks(range(len(names)), names, fontsize=8)
    axes.set_xlabel("predicted")
    axes.set_ylabel("true")
    return Plot("Confusion matrix", "Validation predictions at the final evaluation; the diagonal is correct.",
                _png(figure))


FIGURES: tuple[Callable[[dict[str, Any], dict[str, Any]], Plot | None], ...] = (
    loss_plot, grad_norm_plot, update_ratio_plot, lr_plot, label_histogram_plot, confusion_plot,
)


def run_plots(extra: dict[str, Any]) -> list[Plot]:
    """Every figure a run report has data for, in reading order."""
    curves, run = extra.get("curves", {}), extra.get("run", {})
    plots = (figure(curves, run) for figure in FIGURES)
    return [plot for plot in plots if plot is not None]
