"""head-output-mismatch: the class scores' width is not the number of classes.

Two faults, one finding each run:

- a replaced or mis-sized classification head that outputs a width other than
  ``num_labels``. Checked at pre-flight on ``model.classifier`` / ``score`` /
  ``classifier.out_proj`` themselves, because a transformers classifier
  computes its loss inside ``forward`` with ``logits.view(-1, num_labels)``,
  which crashes or silently reshapes before any logits come back;
- a base model's hidden states used as logits: the scores are exactly as wide
  as the encoder's hidden size (``BertModel``'s pooled output or
  ``last_hidden_state`` fed to the loss).

Where the scores are looked at: the logits of a transformers classifier, the
output of a model that was handed the labels (so its output is the
prediction), and the input of a classification loss (cross-entropy, NLL,
BCE-with-logits). The bare output of a model that never sees labels is not
judged — it may be an encoder whose head lives outside the watched module.
Language-model, multiple-choice and QA models are skipped: their scores are
not per class.

The widths are a property of the code, which the first steps exercise: the
rule judges the first ``WINDOW_CALLS`` forwards and loss calls, then stops
listening (the README's window for it is pre-flight).
"""

from __future__ import annotations

from typing import Any

from ftdoctor.runtime.events import ForwardDone, LossInput, Preflight
from ftdoctor.runtime.rule import RuntimeRule, register_runtime_rule
from ftdoctor.runtime.rules._losses import class_dim, loss_family
from ftdoctor.runtime.rules._models import is_classifier

HEAD_ATTRIBUTES = ("classifier", "score")
CLASS_LOGIT_MODELS = ("ForSequenceClassification", "ForTokenClassification")


@register_runtime_rule
class HeadOutputMismatch(RuntimeRule):
    slug = "head-output-mismatch"
    needs = ("logits",)
    explains_crashes = (
        r"Expected input batch_size \(\d+\) to match target batch_size",
        r"Target size \(.*\) must be the same as input size",
        r"shape '\[-1, \d+\]' is invalid",
    )

    #: forwards (and, separately, loss calls) judged before the rule stops listening to them
    WINDOW_CALLS = 64

    def __init__(self, options: Any = None) -> None:
        super().__init__(options)
        self.forwards = self.loss_calls = 0
        self.judging = False
        self.logits_are_class_scores = False
        self.num_labels: int | None = None
        self.hidden_size: int | None = None
        self.vocab_size: int | None = None

    def on_preflight(self, event: Preflight) -> None:
        if not is_classifier(event.model):
            self.done = True
            return
        self.judging = True
        self.logits_are_class_scores = type(event.model).__name__.endswith(CLASS_LOGIT_MODELS)
        self.num_labels = event.num_labels
        self.hidden_size = event.hidden_size or _encoder_hidden_size(event.model)
        self.vocab_size = getattr(getattr(event.model, "config", None), "vocab_size", None)
        head_name, width = _head_width(event.model)
        if head_name is not None and width is not None and self.num_labels is not None and width != self.num_labels:
            self._judge(0, width, f"`{head_name}` outputs {width} values per example", {"module": head_name})

    def on_forward(self, event: ForwardDone) -> None:
        self.forwards += 1
        if self.forwards >= self.WINDOW_CALLS:
            self.stop_listening("on_forward")
        logits = event.logits
        if self.fired or not self.judging or logits is None or logits.dim() < 2:
            return
        if self.logits_are_class_scores or event.labels is not None:
            width = int(logits.shape[-1])
            self._judge(event.step, width, f"the model's logits are {width} wide", {"logits_shape": list(logits.shape)})

    def on_loss_input(self, event: LossInput) -> None:
        self.loss_calls += 1
        if self.loss_calls >= self.WINDOW_CALLS:
            self.stop_listening("on_loss_input")
        family = loss_family(event.loss_name)
        if self.fired or not self.judging or family is None:
            return
        dim = class_dim(family, event.input)
        if dim is not None:
            width = int(event.input.shape[dim])
            self._judge(event.step, width, f"{event.loss_name} receives {width} scores per example",
                        {"loss": event.loss_name, "loss_input_shape": list(event.input.shape)})

    def _judge(self, step: int, width: int, what: str, where: dict[str, Any]) -> None:
        if width == self.vocab_size:
            return  # a language-modelling loss or head, not class scores
        evidence = {"output_width": width, "num_labels": self.num_labels, "hidden_size": self.hidden_size, **where}
        if self.hidden_size is not None and width == self.hidden_size and width != self.num_labels:
            self.emit(
                step,
                f"{what} — the encoder's hidden size: its hidden states are used as class logits",
                "use a model with a classification head (AutoModelForSequenceClassification) or put "
                f"nn.Linear({width}, num_labels) on top of the encoder output",
                evidence,
            )
        elif self.num_labels is not None and width != self.num_labels and not (width == 1 and self.num_labels == 2):
            self.emit(
                step,
                f"{what}, but the task has num_labels={self.num_labels} classes",
                f"size the head to the classes, nn.Linear(hidden_size, {self.num_labels}), "
                "and keep config.num_labels equal to it",
                evidence,
            )


def _encoder_hidden_size(model: Any) -> int | None:
    """The hidden size of a transformers encoder inside a custom wrapper (its own config says nothing)."""
    for module in model.modules():
        hidden = getattr(getattr(module, "config", None), "hidden_size", None)
        if isinstance(hidden, int):
            return hidden
    return None


def _head_width(model: Any) -> tuple[str | None, int | None]:
    """(name, output width) of a transformers classification head, when there is one."""
    for name in HEAD_ATTRIBUTES:
        module = getattr(model, name, None)
        for candidate, path in ((module, name), (getattr(module, "out_proj", None), f"{name}.out_proj")):
            width = getattr(candidate, "out_features", None)
            if isinstance(width, int):
                return path, width
    return None, None
