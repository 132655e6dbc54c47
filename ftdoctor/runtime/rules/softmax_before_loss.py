"""softmax-before-loss (runtime side): probabilities fed to a loss that wants logits.

The static check (FTD109) reads the source; at run time the rule looks at what
the loss actually receives (``LossInput``):

- cross-entropy whose inputs are probabilities: every value in [0, 1] and
  every row summing to 1 along the class dimension (raw logits essentially
  never do that). The same for ``NLLLoss``, which wants log-probabilities;
- any of cross-entropy, NLL or BCE-with-logits whose input was produced by
  ``softmax``/``sigmoid``: the input's autograd node (``LossInput.input_grad_fn``,
  followed through reshapes and dtype casts). Inputs without history (under
  ``no_grad``) are judged by their values only, and for BCE-with-logits values
  in [0, 1] prove nothing — raw logits near initialisation lie there too.

It also looks at a transformers classifier's own logits when the model
computed its loss (a head ending in ``nn.Softmax``): its internal
cross-entropy then applies softmax a second time.

``log_softmax`` + ``NLLLoss`` (and ``log_softmax`` + cross-entropy, which is
idempotent) are correct and stay silent, as do ``sigmoid`` + ``BCELoss`` and
softmax used only for metrics. ``softmax_min_rows`` probability rows in a row are
needed, so a batch of one cannot trip the value check by chance.

Sampling (what reaches a loss is a property of the code, which repeats every
step): routine training batches are skipped (``skip_routine``: the rule sees the
dense phase, then measured steps, and every evaluation batch); the value checks
stop after ``ProbabilityRun.VALUE_CHECKS`` tensors (each costs a device sync on an
accelerator), and the model's own logits are looked at only until their value
checks run out.
"""

from __future__ import annotations

from typing import Any

from ftdoctor.runtime.events import ForwardDone, LossInput, Preflight
from ftdoctor.runtime.options import DoctorOptions
from ftdoctor.runtime.rule import RuntimeRule, register_runtime_rule
from ftdoctor.runtime.rules._losses import BCE_WITH_LOGITS, CROSS_ENTROPY, NLL, class_dim, loss_family

PROBABILITY_LAYERS = {"SoftmaxBackward0": "softmax", "SigmoidBackward0": "sigmoid"}
#: autograd nodes that pass values through unchanged in meaning (reshapes, casts, copies)
PASS_THROUGH = ("View", "Reshape", "UnsafeView", "Squeeze", "Unsqueeze", "ToCopy", "Clone", "Transpose",
                "Permute", "Expand", "Alias", "Contiguous", "Slice", "Select")
HISTORY_DEPTH = 6
SUM_TOLERANCE = 1e-3


@register_runtime_rule
class SoftmaxBeforeLoss(RuntimeRule):
    slug = "softmax-before-loss"
    needs = ("logits",)
    skip_routine = frozenset({"on_loss_input", "on_forward"})

    def __init__(self, options: Any = None) -> None:
        super().__init__(options or DoctorOptions())
        self.loss_rows = ProbabilityRun(self.options.softmax_min_rows)
        self.logit_rows = ProbabilityRun(self.options.softmax_min_rows)
        self.model_computes_cross_entropy = False

    def on_preflight(self, event: Preflight) -> None:
        kind = type(event.model).__name__
        self.model_computes_cross_entropy = kind.endswith(("ForSequenceClassification", "ForTokenClassification"))
        if not self.model_computes_cross_entropy:
            self.stop_listening("on_forward")

    def on_loss_input(self, event: LossInput) -> None:
        family = loss_family(event.loss_name)
        if self.fired or family is None:
            return
        producer = _producer(event.input_grad_fn)
        if producer is not None:
            self._emit(event.step, f"{event.loss_name} receives the output of {producer}", family, event.loss_name,
                       event.input, producer)
        elif family in (CROSS_ENTROPY, NLL):
            dim = class_dim(family, event.input)
            if dim is not None and self.loss_rows.extend(event.input, dim):
                self._emit(event.step, f"every row fed to {event.loss_name} sums to 1 with values in [0, 1]",
                           family, event.loss_name, event.input, None)

    def on_forward(self, event: ForwardDone) -> None:
        logits = event.logits
        if self.logit_rows.exhausted:
            self.stop_listening("on_forward")
            return
        if self.fired or not self.model_computes_cross_entropy or event.loss is None or logits is None:
            return
        if logits.dim() >= 2 and self.logit_rows.extend(logits, logits.dim() - 1):
            self._emit(event.step, "the model's logits already sum to 1 per example and its built-in loss "
                       "is cross-entropy", CROSS_ENTROPY, "the model's loss", logits, None)

    def _emit(self, step: int, what: str, family: str, loss_name: str, scores: Any, producer: str | None) -> None:
        values = scores.detach().float()
        expects = "log-probabilities" if family == NLL else "raw logits"
        applies = {CROSS_ENTROPY: "log_softmax", BCE_WITH_LOGITS: "sigmoid", NLL: "nothing"}[family]
        self.emit(
            step,
            f"{what}: probabilities reach a loss that expects {expects} (it applies {applies} itself), "
            "so gradients shrink and the loss cannot fall to its minimum",
            _fix(family),
            {
                "loss": loss_name,
                "input_shape": list(scores.shape),
                "input_min": round(float(values.min()), 6),
                "input_max": round(float(values.max()), 6),
                "produced_by": producer,
                "row_sum_tolerance": SUM_TOLERANCE if producer is None else None,
            },
        )


class ProbabilityRun:
    """Counts consecutive score rows that are probability vectors (values in [0, 1], summing to 1).

    Looks at the first ``VALUE_CHECKS`` tensors only: what reaches a loss is a property of the code, which
    the first steps already exercise, and each look costs a device sync on an accelerator.
    """

    VALUE_CHECKS = 64

    def __init__(self, needed: int) -> None:
        self.needed = needed
        self.rows = 0
        self.checks = 0

    @property
    def exhausted(self) -> bool:
        return self.checks >= self.VALUE_CHECKS

    def extend(self, scores: Any, dim: int) -> bool:
        """Add this tensor's rows (or restart the run); True once the run is long enough."""
        if scores.shape[dim] < 2 or scores.numel() == 0 or self.checks >= self.VALUE_CHECKS:
            return False
        self.checks += 1
        import torch

        values = scores.detach().float()
        row_sums = values.sum(dim=dim)
        low, high, deviation = torch.stack([values.min(), values.max(), (row_sums - 1).abs().max()]).tolist()
        if low >= 0 and high <= 1 and deviation <= SUM_TOLERANCE:
            self.rows += row_sums.numel()
        else:
            self.rows = 0
        return self.rows >= self.needed


def _fix(family: str) -> str:
    if family == NLL:
        return "feed NLLLoss log_softmax(logits) instead of softmax(logits) (or pass raw logits to CrossEntropyLoss)"
    if family == BCE_WITH_LOGITS:
        return "pass the raw logits to BCEWithLogitsLoss and drop the sigmoid (apply it only for predictions)"
    return "pass the raw logits to the cross-entropy and drop the softmax (apply it only for predictions)"


def _producer(node: Any) -> str | None:
    """'softmax'/'sigmoid' when an autograd history ends in one, through reshapes and casts."""
    for _ in range(HISTORY_DEPTH):
        if node is None:
            return None
        name = type(node).__name__
        if name in PROBABILITY_LAYERS:
            return PROBABILITY_LAYERS[name]
        if not name.startswith(PASS_THROUGH) or not node.next_functions:
            return None
        node = node.next_functions[0][0]
    return None
