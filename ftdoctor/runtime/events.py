"""The small vocabulary of events the runtime doctor turns its hooks into.

Hooks (runtime/hooks.py) observe the model, optimizer, loss modules and data
and publish these events; runtime rules subscribe to the ones they need.
Statistics are precomputed once per event so that rules stay cheap: a rule
must never walk the model's parameters itself on a hot event.

``step`` is always the number of optimizer steps completed so far (0 = before
the first step). ``phase`` is ``"train"`` or ``"eval"``.

:data:`CORE_SIGNALS` are what the doctor must have observed before it may call a
run healthy; each rule names the ones it needs (``RuntimeRule.needs``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Sequence

from ftdoctor.findings import CORE_SIGNALS  # the contract's list lives in the core; re-exported here

if TYPE_CHECKING:  # torch is imported lazily by the runtime half only
    import torch

#: The signals a run's verdict depends on (contract: ``coverage.observed``).


@dataclass
class LabelledData:
    """What the doctor can see of a dataset without iterating a DataLoader."""

    texts: Sequence[str] | None = None
    labels: Sequence[Any] | None = None
    name: str = "train"


@dataclass
class Preflight:
    """Once, before the first optimizer step (at the first training forward)."""

    model: "torch.nn.Module"
    optimizers: list["torch.optim.Optimizer"]
    num_labels: int | None  # head width when known (model.config.num_labels or given)
    hidden_size: int | None  # encoder hidden size when known (model.config.hidden_size)
    train_data: LabelledData | None = None
    val_data: LabelledData | None = None
    tokenizer: Any = None  # the run's tokenizer when the doctor was told it (watch(tokenizer=...), the Trainer's)
    #: every watched top-level module by its name prefix (``model`` first, under ""): an encoder, a separate
    #: head, a loss module. Live: modules found later (a head built after the pre-flight) are added.
    modules: dict[str, "torch.nn.Module"] = field(default_factory=dict)


@dataclass
class DatasetsSeen:
    """``doctor.observe_datasets`` was called (possibly after the pre-flight)."""

    step: int
    train_data: LabelledData | None
    val_data: LabelledData | None


@dataclass
class BatchSeen:
    """A batch reached the model's forward (labels from kwargs/dict/positional)."""

    step: int
    phase: str
    labels: "torch.Tensor | None"
    batch_size: int | None


@dataclass
class ForwardCall:
    """The watched model is about to run a forward: its inputs as called (not copied).

    Published only while a rule listens, so it costs nothing otherwise.
    """

    step: int
    phase: str
    args: tuple[Any, ...]
    kwargs: dict[str, Any]


@dataclass
class ForwardDone:
    """The watched model's forward returned."""

    step: int
    phase: str
    logits: "torch.Tensor | None"  # detached
    loss: "torch.Tensor | None"  # detached
    labels: "torch.Tensor | None"
    training: bool  # model.training during the forward
    grad_enabled: bool  # torch.is_grad_enabled() during the forward
    module: str = "model"  # which watched module ran: "model" or e.g. "Linear#1" (a separate head)


@dataclass
class LossInput:
    """A loss module or functional loss was called (pre-hook)."""

    step: int
    loss_name: str  # e.g. "CrossEntropyLoss", "BCEWithLogitsLoss", "NLLLoss"
    input: "torch.Tensor"  # detached
    target: "torch.Tensor | None"
    input_grad_fn: Any = None  # the input's autograd node before detaching (what produced it), else None


@dataclass
class BackwardDone:
    """A backward pass is starting (its gradients follow).

    Published from ``torch.autograd.backward`` (what ``loss.backward()`` calls), once
    per backward pass, wherever the loss was computed — beside the model, through
    ``model.forward(x)``. ``loss`` is its value when known without a device sync
    (CPU tensors), else None.
    """

    step: int
    loss: float | None


@dataclass
class OptimizerStep:
    """Just before (``pre``) and after an optimizer step.

    ``grad_norm`` is the global L2 norm of the gradients about to be applied,
    ``grad_norms`` per trainable (requires_grad) parameter name (None where it has no grad);
    both are measured on every step of the dense phase (the first
    ``DoctorOptions.dense_steps``) and every ``sparse_every`` steps after it —
    on other steps ``grad_norm`` is None and ``grad_norms`` empty.
    ``update_ratio`` the global ||Δw|| / ||w|| of the step (post only),
    ``backwards_since_zero_grad`` how many backward passes fed these gradients
    since they were last cleared.
    """

    step: int
    lr: float
    grad_norm: float | None
    grad_norms: dict[str, float | None]
    backwards_since_zero_grad: int
    backwards_since_last_step: int
    update_ratio: float | None = None
    loss: float | None = None  # mean training loss since the previous step


@dataclass
class ZeroGrad:
    step: int


@dataclass
class OptimizerAdded:
    """An optimizer joined the run (the first one too), at construction in script mode.

    ``shared_params`` of its ``params`` parameter tensors are already held by an
    earlier optimizer of this run — a rebuilt optimizer (its Adam state starts
    from zero); ``earlier_steps`` is how many optimizer steps the run had taken.
    """

    step: int
    index: int  # 0 for the run's first optimizer
    optimizer: "torch.optim.Optimizer"
    params: int
    shared_params: int
    earlier_steps: int


@dataclass
class Evaluation:
    """A finished evaluation with whatever metrics are known."""

    step: int
    val_loss: float | None = None
    train_loss: float | None = None
    val_accuracy: float | None = None
    train_accuracy: float | None = None
    extra: dict[str, float] = field(default_factory=dict)


@dataclass
class EvalPass:
    """An evaluation pass ended: how its forwards ran.

    An eval pass is the forwards inside ``doctor.evaluation()``, forwards under
    ``torch.no_grad()``/``inference_mode()``, forwards in eval mode that are
    never backpropagated, and — when ``doctor.observe_eval`` closes the pass —
    every forward since the last training backward that was not backpropagated.
    """

    step: int  # optimizer steps completed when the pass began
    forwards: int
    train_mode_forwards: int  # model.training was True
    grad_tracked_forwards: int  # autograd recorded a graph for the output
    explicit: bool  # bracketed by doctor.evaluation() or observe_eval
    dropout_modules: list[str] = field(default_factory=list)  # active (p > 0) dropout/batch-norm modules


@dataclass
class EvalReplay:
    """The first evaluation forward in eval mode, run a second time on the same inputs.

    Published once, and only when a rule listens: the doctor replays that forward under
    ``no_grad`` with the RNG forked (the user's random stream is left as it was), so two
    outputs of a deterministic model are equal and any randomness still active differs.
    """

    step: int
    first: "torch.Tensor"  # the forward's logits (or output tensor), detached
    second: "torch.Tensor"  # the replay's


@dataclass
class NonFiniteLoss:
    """The training loss went NaN/inf; the doctor located where (once per run).

    ``first_module`` is the first module (in execution order) whose output was
    non-finite while its inputs were finite, found by replaying the offending
    forward with finiteness hooks; None when the model's outputs were finite
    (the loss computation itself produced it) or the replay did not reproduce it.
    """

    step: int
    loss: float
    first_module: str | None
    located_by: str  # "replay", "model-output-finite", "not-reproduced", "no-inputs"
    non_finite_parameters: list[str] = field(default_factory=list)


@dataclass
class RunEnded:
    step: int
    exception: BaseException | None = None  # the run crashed with this (record_exception)
    #: the labels of the last batch seen (the one in flight at a crash), which a rule that skipped
    #: routine batches may not have seen
    last_labels: "torch.Tensor | None" = None
