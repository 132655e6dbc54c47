"""prediction-collapse: on validation the model predicts (nearly) one class while the labels hold several.

Every evaluation pass (see the doctor's eval phase) is tallied from its forwards'
logits and labels (passed to the model, or the targets of a loss computed on its logits): the predicted-class histogram and the label histogram (kept on
the device, read once per pass). A pass has *collapsed* when it holds at least
``collapse_min_examples`` labelled examples, one class takes at least
``collapse_share`` of the predictions, and that class is at most
``collapse_label_share`` of the labels (so a faithful model on imbalanced data is
not collapsed). The rule fires at the ``collapse_evaluations``-th collapsed pass in
a row, or at the end of a run whose last evaluation collapsed, provided the model
had learned something at an earlier evaluation (its accuracy beat always answering
the majority class by ``collapse_learned_margin``: it collapsed since) or the collapsed
pass came ``collapse_after_steps`` optimizer steps into the run (it never got off the
ground). Mixed predictions no better than the majority class are a random head's noise,
not learning. Calibration: the clean random-init tiny BERT (harness, lr 1e-3,
keyword/majority data, 2-3 classes) predicts one class at every evaluation up to
step 40 and several from step 50 on; pretrained MiniLM leaves the one-class start
within its first evaluation.
"""

from __future__ import annotations

from typing import Any

import torch

from ftdoctor.runtime.events import EvalPass, ForwardDone, LossInput, RunEnded
from ftdoctor.runtime.rule import RuntimeRule, register_runtime_rule


@register_runtime_rule
class PredictionCollapse(RuntimeRule):
    slug = "prediction-collapse"
    needs = ("evaluation", "logits", "labels")
    skip_routine = frozenset({"on_forward", "on_loss_input"})  # evaluation batches only

    def __init__(self, options: Any = None) -> None:
        super().__init__(options)
        self.predicted: torch.Tensor | None = None  # per class, this pass
        self.labelled: torch.Tensor | None = None
        self.correct: torch.Tensor | None = None
        self.unlabelled: torch.Tensor | None = None  # the latest eval forward's logits, its labels not yet seen
        self.streak: list[dict[str, Any]] = []  # the collapsed passes in a row, latest last
        self.last_collapsed = False
        self.had_learned = False  # an earlier evaluation beat always answering the majority class

    def on_forward(self, event: ForwardDone) -> None:
        self.unlabelled = None
        if event.phase != "eval" or event.logits is None:
            return
        if event.labels is None:
            self.unlabelled = event.logits  # labels may come with the loss computed outside the model
            return
        self._tally(event.logits, event.labels)

    def on_loss_input(self, event: LossInput) -> None:
        logits, self.unlabelled = self.unlabelled, None
        if logits is not None and event.target is not None and event.input.shape == logits.shape:
            self._tally(logits, event.target)

    def _tally(self, logits: torch.Tensor, labels: torch.Tensor) -> None:
        if logits.dim() != 2 or logits.shape[-1] < 2 or labels.dim() != 1 or labels.shape[0] != logits.shape[0]:
            return
        if labels.dtype.is_floating_point or labels.dtype == torch.bool:
            return
        width = logits.shape[-1]
        known = (labels >= 0) & (labels < width)
        guesses = logits.argmax(-1)[known]
        predicted = torch.bincount(guesses, minlength=width)
        labelled = torch.bincount(labels[known], minlength=width)
        correct = (guesses == labels[known]).sum()
        if self.predicted is None or self.predicted.shape != predicted.shape:
            self.predicted, self.labelled, self.correct = predicted, labelled, correct
        else:
            self.predicted = self.predicted + predicted
            self.labelled = self.labelled + labelled  # type: ignore[operator]
            self.correct = self.correct + correct  # type: ignore[operator]

    def on_eval_pass(self, event: EvalPass) -> None:
        if self.predicted is None or self.labelled is None:
            return
        predicted, labelled, correct = self.predicted.tolist(), self.labelled.tolist(), int(self.correct)
        self.predicted = self.labelled = self.correct = None
        tally = _collapse(predicted, labelled, self.options)
        self.last_collapsed = tally is not None
        if tally is None:
            self.streak = []
            self.had_learned = self.had_learned or _beats_the_majority(correct, labelled, self.options)
            return
        self.streak.append({**tally, "step": event.step})
        if len(self.streak) >= self.options.collapse_evaluations and self._past_the_start():
            self._emit(event.step)

    def on_run_end(self, event: RunEnded) -> None:
        if self.last_collapsed and self.streak and self._past_the_start():
            self._emit(self.streak[-1]["step"])

    def _past_the_start(self) -> bool:
        """Not the one-class start every model has before it learns anything."""
        return self.had_learned or self.streak[-1]["step"] >= self.options.collapse_after_steps

    def _emit(self, step: int) -> None:
        latest = self.streak[-1]
        cls, share, label_share = latest["class"], latest["predicted_share"], latest["label_share"]
        self.emit(
            step,
            f"at {len(self.streak)} evaluation(s) in a row the model predicted class {cls} for {share:.0%} of "
            f"{latest['examples']} validation examples, though only {label_share:.0%} of their labels are {cls}: "
            f"it has collapsed to one class",
            "find what keeps the head from learning: a learning rate far off, a frozen or untrained head, labels "
            "that do not match the inputs, a loss weighted towards one class; check the rule findings listed with it",
            {
                "predicted_class": cls,
                "predicted_share": round(share, 4),
                "label_share": round(label_share, 4),
                "examples": latest["examples"],
                "predicted_counts": latest["predicted_counts"],
                "label_counts": latest["label_counts"],
                "collapsed_evaluations": len(self.streak),
                "share_threshold": self.options.collapse_share,
            },
        )


def _beats_the_majority(correct: int, labelled: list[int], options: Any) -> bool:
    """The evaluation's accuracy clears the majority-class share by ``collapse_learned_margin``."""
    total = sum(labelled)
    return total >= options.collapse_min_examples and correct / total >= max(labelled) / total + options.collapse_learned_margin


def _collapse(predicted: list[int], labelled: list[int], options: Any) -> dict[str, Any] | None:
    """The pass's tally when it has collapsed, else None."""
    total = sum(labelled)
    if total < options.collapse_min_examples or sum(1 for n in labelled if n) < 2:
        return None
    cls = max(range(len(predicted)), key=lambda c: predicted[c])
    share, label_share = predicted[cls] / total, labelled[cls] / total
    if share < options.collapse_share or label_share > options.collapse_label_share:
        return None
    return {"class": cls, "predicted_share": share, "label_share": label_share, "examples": total,
            "predicted_counts": predicted, "label_counts": labelled}
