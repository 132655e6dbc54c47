"""The runtime doctor: hooks in, events out, rules judge.

``watch(model, optimizer)`` attaches a :class:`Doctor` to a model and its
optimizers through public torch hooks, turns what it sees into the events of
:mod:`ftdoctor.runtime.events` and dispatches them to every enabled runtime
rule. A rule that raises is disabled and reported once on stderr; the user's
training never stops because of the doctor.

How forwards are classified (the eval phase):

- inside ``with doctor.evaluation():`` — eval;
- under ``torch.no_grad()`` / ``inference_mode()`` — eval;
- in eval mode (``model.eval()``) and never backpropagated — eval (judged at
  the next optimizer step, so a loop that deliberately trains in eval mode is
  still training);
- anything else that is never backpropagated before ``doctor.observe_eval()``
  closes the evaluation — eval as well (this is how an evaluation that forgot
  both ``model.eval()`` and ``no_grad()`` is still recognised).

A forward whose output receives a gradient is a training forward (a hook on its
output says so). A routine one — grad on, after the dense phase, between measured
steps — gets no hook: the next backward pass that starts takes it as training.

What is watched is the run, not one module: every top-level module given by
``watch_module`` (a head beside the encoder) is hooked like ``model``; backward
passes are counted where they start (``torch.autograd.backward``), with the loss
they start from; every optimizer's steps count (the run's step is the first one
after a backward). ``observed`` records which core signals showed up, and
``coverage()`` which rules could not judge without them (each rule's ``needs``).

Nothing is read back from the device per step: losses of steps whose gradients
are not measured stay on the device and are read with the next measured step.
"""

from __future__ import annotations

import contextlib
import functools
import math
import sys
import time
import weakref
from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Iterator, TypeVar

import torch
from torch.optim.optimizer import register_optimizer_step_pre_hook

from ftdoctor.findings import Finding, Report, either_of
from ftdoctor.runtime import distributed
from ftdoctor.runtime.causes import fold_symptoms
from ftdoctor.runtime.events import (
    CORE_SIGNALS,
    BackwardDone,
    BatchSeen,
    DatasetsSeen,
    EvalPass,
    EvalReplay,
    Evaluation,
    ForwardCall,
    ForwardDone,
    LabelledData,
    LossInput,
    NonFiniteLoss,
    OptimizerAdded,
    OptimizerStep,
    Preflight,
    RunEnded,
    ZeroGrad,
)
from ftdoctor.runtime.hooks import HookSet, listen_to_backward, listen_to_losses
from ftdoctor.runtime.options import DoctorOptions
from ftdoctor.runtime.rule import RUNTIME_RULES, RuntimeRule
from ftdoctor.runtime.stats import LabelCounter, UpdateRatioProbe, all_finite, gradient_stats, iter_tensors
from ftdoctor.settings import Settings

#: forwards kept for eval classification before a flush is forced (a loop that never steps)
_MAX_PENDING_FORWARDS = 256
#: losses whose input is a row of class scores (what counts as having seen logits)
_CLASSIFICATION_LOSSES = frozenset({"CrossEntropyLoss", "NLLLoss", "BCEWithLogitsLoss", "BCELoss"})


@dataclass
class StepRecord:
    """One optimizer step as the doctor measured it."""

    step: int  # 1 for the first optimizer step
    loss: float | None  # read back at the next measured step (None until then, or when no loss was seen)
    lr: float  # the learning rate this step used
    grad_norm: float | None  # None on steps not measured (see DoctorOptions.sparse_every)
    update_ratio: float | None
    seconds: float


@dataclass(slots=True)
class _Forward:
    """One forward of the watched model, until it is known to be training or eval."""

    step: int
    phase: str
    training: bool
    definite_eval: bool
    grad_enabled: bool
    module: str = "model"
    routine: bool = False  # a training forward of a step whose gradients are not measured
    grad_tracked: bool = False
    backpropagated: bool = False
    loss: torch.Tensor | None = None
    labels: torch.Tensor | None = None


_Method = TypeVar("_Method", bound=Callable[..., Any])


def _guarded(where: str) -> Callable[[_Method], _Method]:
    """A doctor method that times its own work and swallows its bugs (never the user's): they are
    reported once and training goes on. A plain wrapper, not a context manager: hooks run it
    several times per step."""

    def decorate(method: _Method) -> _Method:
        @functools.wraps(method)
        def guarded(self: "Doctor", *args: Any) -> Any:
            started = time.perf_counter()
            try:
                return method(self, *args)
            except Exception as exc:  # the doctor's bug must not stop the training
                self._internal_error(f"doctor ({where})", exc)
                return None
            finally:
                self._doctor_seconds += time.perf_counter() - started

        return guarded  # type: ignore[return-value]

    return decorate


@dataclass
class _OptimizerWatch:
    """Per-optimizer bookkeeping: gradient-clearing counters, names, update probe."""

    optimizer: torch.optim.Optimizer
    index: int
    backwards_since_zero_grad: int = 0
    backwards_since_step: int = 0
    zero_grad_since_step: bool = False
    sentinel: torch.Tensor | None = None  # a parameter that had a gradient at the last step
    probe: UpdateRatioProbe | None = None
    sampled: bool = False
    names: list[str] = field(default_factory=list)
    params: list[torch.Tensor] = field(default_factory=list)
    pending: OptimizerStep | None = None
    #: this step is the run's step (the first optimizer to step after a backward), and its unread loss
    counts: bool = False
    pending_loss: torch.Tensor | None = None

    def refresh_params(self, name_of: dict[int, str]) -> None:
        params = [p for group in self.optimizer.param_groups for p in group["params"]]
        if len(params) != len(self.params) or any(a is not b for a, b in zip(params, self.params)):
            self.params = params
            self.names = [name_of.get(id(p), f"optimizer[{self.index}].param[{i}]") for i, p in enumerate(params)]
            self.probe = None

    def cleared(self) -> None:
        self.backwards_since_zero_grad = 0
        self.zero_grad_since_step = True


class Doctor:
    """Watches one model (and its optimizers) and diagnoses the run as it goes."""

    def __init__(
        self,
        model: torch.nn.Module,
        optimizer: torch.optim.Optimizer | None = None,
        *,
        num_labels: int | None = None,
        train_data: LabelledData | None = None,
        val_data: LabelledData | None = None,
        settings: Settings | None = None,
        options: DoctorOptions | None = None,
        tokenizer: Any = None,
    ) -> None:
        import ftdoctor.runtime.rules  # noqa: F401  (registers every rule)

        self.tokenizer = tokenizer
        self.model = model
        #: every watched top-level module by name prefix ("" for ``model``): encoder, separate head, ...
        self.modules: dict[str, torch.nn.Module] = {"": model}
        self.settings = settings or Settings()
        self.options = options or DoctorOptions()
        config = getattr(model, "config", None)
        self.num_labels = num_labels if num_labels is not None else _configured_num_labels(model)
        self.hidden_size = getattr(config, "hidden_size", None)
        self.train_data, self.val_data = train_data, val_data
        self.step = 0
        self._measuring = self._measure_gradients_now()  # cached per step: read by every hook
        self.findings: list[Finding] = []
        self.history: list[StepRecord] = []
        self._labels = LabelCounter()
        self.on_finding: list[Callable[[Finding], None]] = []
        self.internal_errors: list[str] = []
        self.exception: BaseException | None = None
        self.optimizers: list[torch.optim.Optimizer] = []
        self.rules: list[RuntimeRule] = [
            cls(self.options) for slug, cls in RUNTIME_RULES.items() if self.settings.is_enabled(slug)
        ]
        self._handlers = _handler_table(self.rules)
        self._collected: set[int] = set()
        self._watches: list[_OptimizerWatch] = []
        #: every optimizer judged by _any_optimizer_steps, watched or not (weak: a dead one's id may come back)
        self._judged_optimizers: weakref.WeakSet[torch.optim.Optimizer] = weakref.WeakSet()
        self._hooks = HookSet()
        self._attached = self._finished = self._preflight_done = False
        self._eval_depth = self._forward_depth = 0
        self._replaying = self._explicit_batches = False
        self._current: _Forward | None = None
        self._last_forward: _Forward | None = None
        self._pending: list[_Forward] = []
        #: routine training forwards since the last backward, which takes them as training (no hook on them)
        self._unanchored: list[_Forward] = []
        self._last_inputs: tuple[torch.nn.Module, tuple[Any, ...], dict[str, Any]] | None = None
        self._step_losses: list[torch.Tensor] = []
        #: the core signals seen so far (contract: ``coverage.observed``)
        self.observed: dict[str, bool] = dict.fromkeys(CORE_SIGNALS, False)
        self._loss_seen: torch.Tensor | None = None  # the latest training loss value, until a backward takes it
        self._labelled_since_loss = False  # the current batch's labels were already published
        self._backward_since_step = False
        self._unread: list[tuple[StepRecord, torch.Tensor]] = []  # losses of unmeasured steps, still on device
        self._losses_since_eval: list[float] = []
        self._non_finite_seen = False
        self._name_of: dict[int, str] = {}
        self._dropout_names: list[str] = []
        self._doctor_seconds = 0.0
        self._started: float | None = None
        self._last_step_end: float | None = None
        if optimizer is not None:
            self.add_optimizer(optimizer)

    # --- public API ----------------------------------------------------------

    def attach(self) -> "Doctor":
        if self._attached:
            return self
        self._attached = True
        hooks = self._hooks
        hooks.on_remove(listen_to_losses(self._on_loss, self._on_loss_target))
        hooks.on_remove(listen_to_backward(self._on_autograd_backward))
        hooks.add(register_optimizer_step_pre_hook(self._any_optimizer_steps))
        for prefix, module in self.modules.items():
            self._hook_module(prefix, module)
        for watch in self._watches:
            self._hook_optimizer(watch)
        return self

    def watch_module(self, module: torch.nn.Module) -> None:
        """Watch another top-level module as part of the same model (a head beside the encoder).

        Its forwards feed the head and label rules; its parameters get their own names
        (``Linear#1.weight``). A module inside an already watched one is watched already.
        """
        if any(module is m or _contains(m, module) for m in self.modules.values()):
            return
        prefix = f"{type(module).__name__}#{len(self.modules)}"
        self.modules[prefix] = module
        for watch in self._watches:
            watch.params = []  # re-read, so its parameters get their names
        if self._attached:
            self._hook_module(prefix, module)

    def _hook_module(self, prefix: str, module: torch.nn.Module) -> None:
        for name, param in module.named_parameters():
            self._name_of.setdefault(id(param), f"{prefix}.{name}" if prefix else name)
        self._dropout_names += [f"{prefix}.{name}" if prefix else name for name in _mode_sensitive_modules(module)]
        hooks = self._hooks
        label = prefix or "model"
        hooks.add(module.register_forward_pre_hook(functools.partial(self._forward_pre, label=label), with_kwargs=True))
        hooks.add(module.register_forward_hook(self._forward_post, with_kwargs=True, always_call=True))
        hooks.wrap_method(module, "zero_grad", self._wrap_zero_grad(None))

    def detach(self) -> None:
        if not self._attached:
            return
        self._finish()
        self._hooks.remove_all()
        self._attached = False

    def __enter__(self) -> "Doctor":
        return self.attach()

    def __exit__(self, exc_type: Any, exc: BaseException | None, tb: Any) -> None:
        if exc is not None and not isinstance(exc, (KeyboardInterrupt, GeneratorExit)):
            self.record_exception(exc)
        self.detach()

    def add_optimizer(self, optimizer: Any) -> None:
        """Watch an optimizer (a wrapped one: its inner optimizer). One built after ``watch()`` over the
        watched modules' parameters joins by itself at its first step; call this for others."""
        optimizer = _unwrap_optimizer(optimizer)
        if any(w.optimizer is optimizer for w in self._watches):
            return
        params = [p for group in optimizer.param_groups for p in group["params"]]
        held = {id(p) for earlier in self.optimizers for group in earlier.param_groups for p in group["params"]}
        shared = sum(1 for p in params if id(p) in held)
        watch = _OptimizerWatch(optimizer, index=len(self._watches))
        self._judged_optimizers.add(optimizer)
        self._watches.append(watch)
        self.optimizers.append(optimizer)
        if self._attached:
            self._hook_optimizer(watch)
        self._announce_optimizer(OptimizerAdded(self.step, watch.index, optimizer, len(params), shared, self.step))

    @_guarded("add_optimizer")
    def _announce_optimizer(self, event: OptimizerAdded) -> None:
        self._publish("on_optimizer_added", event)

    def observe_batch(self, batch: Any, phase: str = "train") -> None:
        """Tell the doctor about a batch whose labels never pass through the model.

        From the first call on, labels found automatically in the model's inputs
        are no longer used (so no batch is counted twice).
        """
        self._explicit_batches = True
        self._observe_batch(batch, phase)

    @_guarded("observe_batch")
    def _observe_batch(self, batch: Any, phase: str) -> None:
        labels = _labels_of(batch) if not isinstance(batch, torch.Tensor) else batch
        if phase == "train":
            self._ensure_preflight()
        self._publish_batch(phase, labels, (), {}, routine=False)

    def observe_datasets(self, train: LabelledData | None = None, val: LabelledData | None = None) -> None:
        self.train_data = train or self.train_data
        self.val_data = val or self.val_data
        self._announce_datasets()

    @_guarded("observe_datasets")
    def _announce_datasets(self) -> None:
        self._publish("on_datasets", DatasetsSeen(self.step, self.train_data, self.val_data))

    @contextlib.contextmanager
    def evaluation(self) -> Iterator["Doctor"]:
        """Every forward inside is an eval forward; the eval pass is judged on exit."""
        self._eval_depth += 1
        try:
            yield self
        finally:
            self._eval_depth -= 1
            if self._eval_depth == 0:
                self._close_evaluation()

    @_guarded("evaluation")
    def _close_evaluation(self) -> None:
        self._flush_eval(bracketed=False)

    def observe_eval(
        self,
        *,
        val_loss: float | None = None,
        train_loss: float | None = None,
        val_accuracy: float | None = None,
        train_accuracy: float | None = None,
        step: int | None = None,
        **extra: float,
    ) -> None:
        """An evaluation finished: closes the eval pass and publishes its metrics.

        ``train_loss`` defaults to the mean training loss since the previous evaluation.
        """
        self._close_eval(Evaluation(
            step=self.step if step is None else step,
            val_loss=_as_float(val_loss),
            train_loss=_as_float(train_loss),
            val_accuracy=_as_float(val_accuracy),
            train_accuracy=_as_float(train_accuracy),
            extra={k: float(v) for k, v in extra.items() if _as_float(v) is not None},
        ))

    @_guarded("observe_eval")
    def _close_eval(self, event: Evaluation) -> None:
        self._flush_eval(bracketed=True)
        self.observed["evaluation"] = True
        self._read_unread_losses()
        if event.train_loss is None and self._losses_since_eval:
            event.train_loss = sum(self._losses_since_eval) / len(self._losses_since_eval)
        self._losses_since_eval = []
        self._publish("on_evaluation", event)

    def record_exception(self, exc: BaseException) -> None:
        """The run crashed: finish judging with what was seen; rules may explain it."""
        if self.exception is None:
            self.exception = exc
        self._finish()

    @property
    def overhead(self) -> float | None:
        """The doctor's own time as a fraction of the training time it watched."""
        if self._started is None or self._last_step_end is None:
            return None
        elapsed = self._last_step_end - self._started
        return self._doctor_seconds / elapsed if elapsed > 0 else None

    @property
    def label_counts(self) -> Counter[int]:
        """The training label histogram seen so far (this process's batches)."""
        return self._labels.counts

    def global_label_counts(self) -> dict[int, int]:
        """``label_counts`` summed over every process of a torch.distributed run.

        A collective: every rank must call it (e.g. at the end of training).
        Without torch.distributed it is ``label_counts``.
        """
        return distributed.all_reduce_counts(self.label_counts)

    @property
    def is_main_process(self) -> bool:
        return distributed.is_main_process()

    @property
    def attached(self) -> bool:
        return self._attached

    def coverage(self, observed: dict[str, bool] | None = None) -> dict[str, Any]:
        """Which core signals were seen, and which enabled rules could therefore not judge (contract JSON)."""
        return coverage_of(self.observed if observed is None else observed, self.rules)

    def report(self, *, metrics: dict[str, Any] | None = None) -> Report:
        return Report(
            mode="run",
            findings=list(self.findings),
            metrics=dict(metrics or {}),
            steps=self.step,
            overhead=self.overhead,
            coverage=self.coverage(),
        )

    # --- dispatch ------------------------------------------------------------

    def _publish(self, handler: str, event: Any) -> None:
        # _retire/_close replace the lists instead of mutating them, so iterating one is safe
        for rule, method in self._handlers[handler]:
            try:
                method(event)
            except Exception as exc:  # a broken rule must never break training
                self._disable(rule, exc)
                continue
            if rule.findings and id(rule) not in self._collected:
                self._collect(rule)
            if rule.fired or rule.done:
                self._retire(rule)
            elif rule.listening_changed:
                self._close(rule)

    def _collect(self, rule: RuntimeRule) -> None:
        self._collected.add(id(rule))
        for finding in self.settings.apply(rule.findings):
            self.findings.append(finding)
            self.findings[:] = fold_symptoms(self.findings, self._explains)
            if any(symptom.rule == finding.rule for root in self.findings for symptom in root.related):
                continue  # a symptom of a root cause already reported: listed under it, not announced
            for callback in self.on_finding:
                try:
                    callback(finding)
                except Exception as exc:
                    self._internal_error("on_finding callback", exc)

    def _explains(self, root: Finding, symptom: Finding) -> bool:
        rule = next((r for r in self.rules if r.slug == root.rule), None)
        return rule is not None and rule.explains_finding(symptom)

    def _retire(self, rule: RuntimeRule) -> None:
        """A fired (or done) rule gets no more events: its verdict cannot change."""
        self._drop(rule, list(self._handlers))

    def _close(self, rule: RuntimeRule) -> None:
        """The rule stopped listening to some events (their window closed)."""
        rule.listening_changed = False
        self._drop(rule, [key for key in self._handlers if _handler_name(key) in rule.closed_handlers])

    def _drop(self, rule: RuntimeRule, names: list[str]) -> None:
        for name in names:
            handlers = self._handlers[name]
            if any(r is rule for r, _ in handlers):
                self._handlers[name] = [(r, m) for r, m in handlers if r is not rule]

    def _disable(self, rule: RuntimeRule, exc: BaseException) -> None:
        self._retire(rule)
        self._internal_error(f"rule {rule.slug}", exc)

    def _internal_error(self, where: str, exc: BaseException) -> None:
        message = f"{where}: {type(exc).__name__}: {exc}"
        self.internal_errors.append(message)
        print(f"ftdoctor: internal error in {message} (disabled; training continues)", file=sys.stderr)

    # --- hooks: model ----------------------------------------------------------

    def _forward_pre(self, module: torch.nn.Module, args: tuple[Any, ...], kwargs: dict[str, Any], label: str = "model") -> None:
        self._forward_depth += 1
        if self._forward_depth == 1 and not self._replaying:
            self._begin_forward(module, args, kwargs, label)

    @_guarded("forward")
    def _begin_forward(self, module: torch.nn.Module, args: tuple[Any, ...], kwargs: dict[str, Any], label: str) -> None:
        grad = torch.is_grad_enabled()
        definite_eval = self._eval_depth > 0 or not grad
        phase = "eval" if definite_eval else "train"
        if not self._preflight_done:
            self._ensure_preflight()  # also for an evaluation before any training (a baseline evaluate())
        if not definite_eval:
            if self._started is None:
                self._started = time.perf_counter()
            self._last_inputs = (module, args, kwargs)
        routine = self._routine(not definite_eval)
        labels = None if self._explicit_batches else _labels_of_call(args, kwargs)
        self._current = _Forward(self.step, phase, module.training, definite_eval, grad, label, routine, labels=labels)
        if not self._explicit_batches:
            self._publish_batch(phase, labels, args, kwargs, routine=routine)
        if self._handlers["on_forward_call"]:
            self._publish("on_forward_call", ForwardCall(self.step, phase, args, kwargs))

    def _forward_post(self, module: torch.nn.Module, args: Any, kwargs: Any, output: Any) -> None:
        self._forward_depth = max(0, self._forward_depth - 1)
        if self._forward_depth == 0 and not self._replaying and self._current is not None:
            self._end_forward(module, args, kwargs, output)

    @_guarded("forward")
    def _end_forward(self, module: torch.nn.Module, args: Any, kwargs: Any, output: Any) -> None:
        record, self._current = self._current, None
        logits, loss = _logits_and_loss(output)
        anchor = _grad_anchor(logits, loss, output)
        if anchor is not None:
            record.grad_tracked = True
            if record.routine:  # a hook per forward costs more than the doctor's whole routine step
                self._unanchored.append(record)
            else:
                anchor.register_hook(lambda grad, record=record: self._on_backward(record))
        record.loss = loss.detach() if loss is not None else None
        if loss is not None and loss.requires_grad and loss.dim() == 0:
            self._loss_seen = record.loss
        if logits is not None and logits.dim() >= 2:
            self.observed["logits"] = True
        self._last_forward = record
        self._remember(record)
        if record.phase == "eval" and not record.training and self._handlers["on_eval_replay"]:
            self._replay_eval(module, args, kwargs, logits)
        key = _handler_key("on_forward", record.routine)
        if self._handlers[key]:
            self._publish(
                key,
                ForwardDone(
                    step=self.step,
                    phase=record.phase,
                    logits=logits.detach() if logits is not None else None,
                    loss=record.loss,
                    labels=record.labels,
                    training=record.training,
                    grad_enabled=record.grad_enabled,
                    module=record.module,
                ),
            )

    def _replay_eval(self, module: torch.nn.Module, args: Any, kwargs: Any, first: torch.Tensor | None) -> None:
        """Run an eval forward of ``module`` (the watched module that made it: the model, or a separate head)
        once more (no_grad, RNG forked) for the rules that compare the two."""
        if first is None:
            return
        self._replaying = True
        try:
            with torch.no_grad(), torch.random.fork_rng(devices=_rng_devices()):
                second, _ = _logits_and_loss(module(*args, **kwargs))
        finally:
            self._replaying = False
        if second is not None:
            self._publish("on_eval_replay", EvalReplay(self.step, first.detach(), second.detach()))

    def _on_loss_target(self, loss_name: str, input: torch.Tensor, target: torch.Tensor | None) -> None:
        """Before a loss outside the model runs: its targets are the batch's labels when the model never got them."""
        if self._replaying or self._forward_depth > 0 or self._explicit_batches or target is None:
            return
        if not self._labelled_since_loss and _is_class_ids(target):
            self._labels_from_loss(input, target)

    @_guarded("loss")
    def _labels_from_loss(self, input: torch.Tensor, target: torch.Tensor) -> None:
        training = input.requires_grad
        if training:
            self._ensure_preflight()
        last = self._last_forward
        if last is not None and last.labels is None:
            last.labels = target
        routine = self._routine(training)
        self._publish_batch("train" if training else "eval", target, (), {}, routine=routine)

    def _on_loss(self, loss_name: str, input: torch.Tensor, target: torch.Tensor | None, output: torch.Tensor) -> None:
        if not self._replaying:
            self._loss_computed(loss_name, input, target, output)

    @_guarded("loss")
    def _loss_computed(self, loss_name: str, input: torch.Tensor, target: torch.Tensor | None, output: torch.Tensor) -> None:
        if self._forward_depth == 0:  # a loss outside the model
            self._labelled_since_loss = False
            if output.dim() == 0 and output.requires_grad:
                self._loss_seen = output.detach()  # computed from the model's output
            elif not torch.is_grad_enabled():
                self.observed["evaluation"] = True  # a validation loss (seen even through model.forward)
        if loss_name in _CLASSIFICATION_LOSSES and target is not None and input.dim() >= 1:
            self.observed["logits"] = True
        key = _handler_key("on_loss_input", self._routine(input.requires_grad))
        if self._handlers[key]:
            target = target.detach() if target is not None else None
            self._publish(key, LossInput(self.step, loss_name, input.detach(), target, input.grad_fn))

    def _on_backward(self, record: _Forward) -> None:
        """The backward reached this forward's output: it was a training forward."""
        record.backpropagated = True

    def _on_autograd_backward(self, root: torch.Tensor) -> None:
        """A backward pass is about to start from ``root`` (any loss, wherever it was computed)."""
        if not self._replaying:
            self._backward_starts(root)

    @_guarded("backward")
    def _backward_starts(self, root: torch.Tensor) -> None:
        if self._unanchored:
            for record in self._unanchored:
                record.backpropagated = True
            self._unanchored = []
        loss, self._loss_seen = self._loss_seen, None
        if loss is None and root.numel() == 1:
            loss = root.detach().reshape(())
        if loss is not None:
            self._step_losses.append(loss)
            self.observed["loss"] = True
        self.observed["backward"] = self._backward_since_step = True
        self._labelled_since_loss = False
        if self._started is None:
            self._started = time.perf_counter()
        for watch in self._watches:
            if watch.backwards_since_step == 0 and not watch.zero_grad_since_step:
                self._detect_manual_clear(watch)
            watch.backwards_since_zero_grad += 1
            watch.backwards_since_step += 1
        if self._handlers["on_backward"]:
            cpu_loss = loss is not None and loss.device.type == "cpu"
            self._publish("on_backward", BackwardDone(self.step, float(loss) if cpu_loss else None))  # type: ignore[arg-type]

    def _detect_manual_clear(self, watch: _OptimizerWatch) -> None:
        """Gradients cleared without zero_grad (``p.grad = None``) still count as cleared.

        Runs before the backward pass, so before any of its gradients is accumulated.
        Reading whether a kept gradient is all zero is a device sync: done on measured
        steps only; on the others an unknown clearing counts as done (silence over a guess).
        """
        sentinel = watch.sentinel
        if sentinel is None:
            return
        if sentinel.grad is None or not self._measuring or not bool(sentinel.grad.any()):
            watch.cleared()

    def _wrap_zero_grad(self, watch: _OptimizerWatch | None) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
        # the model's zero_grad clears every watch (the live list); an optimizer's only its own
        targets = self._watches if watch is None else (watch,)

        def make(original: Callable[..., Any]) -> Callable[..., Any]:
            def zero_grad(*args: Any, **kwargs: Any) -> Any:
                result = original(*args, **kwargs)
                self._gradients_cleared(targets)
                return result

            return zero_grad

        return make

    @_guarded("zero_grad")
    def _gradients_cleared(self, watches: Iterable[_OptimizerWatch]) -> None:
        for watch in watches:
            watch.cleared()
        if self._handlers["on_zero_grad"]:
            self._publish("on_zero_grad", ZeroGrad(self.step))

    # --- hooks: optimizer ---------------------------------------------------------

    def _hook_optimizer(self, watch: _OptimizerWatch) -> None:
        optimizer = watch.optimizer
        # partial, not a lambda: one Python frame less on every step
        self._hooks.add(optimizer.register_step_pre_hook(functools.partial(self._before_step, watch)))
        self._hooks.add(optimizer.register_step_post_hook(functools.partial(self._after_step, watch)))
        self._hooks.wrap_method(optimizer, "zero_grad", self._wrap_zero_grad(watch))

    @_guarded("optimizer step")
    def _any_optimizer_steps(self, optimizer: torch.optim.Optimizer, *hook_args: Any) -> None:
        """Every optimizer's step passes here first (a global hook): one built after ``watch()`` over the
        watched modules' parameters — a new one each epoch — joins the run before its first step."""
        if optimizer in self._judged_optimizers:
            return
        self._judged_optimizers.add(optimizer)  # judged once: watched from now on, or foreign for good
        watched = {id(p) for module in self.modules.values() for p in module.parameters()}
        if any(id(p) in watched for group in optimizer.param_groups for p in group["params"]):
            self.add_optimizer(optimizer)  # its own step hooks run right after this one

    @_guarded("optimizer step")
    def _before_step(self, watch: _OptimizerWatch, *hook_args: Any) -> None:
        # The run's step is the first optimizer step after a backward: two optimizers stepping
        # together (encoder and head) make one step, a rebuilt optimizer continues the count.
        counts = watch.counts = self._backward_since_step or not self.observed["backward"]
        self._backward_since_step = False
        if not self._preflight_done:
            self._ensure_preflight()
        if counts and self._pending:
            self._flush_eval(bracketed=False)
        measured = self._measuring
        mean_loss = _mean(self._take_step_losses()) if counts else None
        loss = None
        if measured or watch.sentinel is None:
            # the parameter list and its trainable subset are re-read on measured steps only
            watch.refresh_params(self._name_of)
            trainable = [i for i, p in enumerate(watch.params) if p.requires_grad]
            params = [watch.params[i] for i in trainable]
            unread, self._unread = self._unread, []
            scalars = [*([mean_loss] if mean_loss is not None else []), *(value for _, value in unread)]
            grads, extra = gradient_stats(params, scalars)  # one read-back for all of it
            if mean_loss is not None:
                loss, extra = extra[0], extra[1:]
            self._fill_unread(unread, extra)
            watch.sentinel = next((p for p in reversed(params) if p.grad is not None), None)
            grad_norm, grad_norms = grads.global_norm, {watch.names[i]: n for i, n in zip(trainable, grads.norms)}
        else:
            watch.pending_loss = mean_loss  # stays on the device until the next measured step
            grad_norm, grad_norms = None, {}
        if loss is not None and not math.isfinite(loss):
            self._report_non_finite_loss(loss)
        if measured:  # update ratios are sampled on measured steps only
            self._sample_update_ratio(watch)
        event = OptimizerStep(
            step=self.step,
            lr=float(watch.optimizer.param_groups[0].get("lr", 0.0)),
            grad_norm=grad_norm,
            grad_norms=grad_norms,
            backwards_since_zero_grad=watch.backwards_since_zero_grad,
            backwards_since_last_step=watch.backwards_since_step,
            loss=loss,
        )
        watch.pending = event
        self._publish(_handler_key("on_before_step", grad_norm is None), event)

    @_guarded("optimizer step")
    def _after_step(self, watch: _OptimizerWatch, *hook_args: Any) -> None:
        event, watch.pending = watch.pending, None
        ratio = watch.probe.after_step() if watch.sampled and watch.probe is not None else None
        watch.sampled = False
        watch.backwards_since_step = 0
        watch.zero_grad_since_step = False
        if event is None:
            return
        self.observed["optimizer_step"] = True
        if watch.counts:
            self.step += 1
            self._measuring = self._measure_gradients_now()
            record = self._record_history(event, ratio)
            if watch.pending_loss is not None:
                self._unread.append((record, watch.pending_loss))
            watch.pending_loss = None
        key = _handler_key("on_after_step", event.grad_norm is None)
        if self._handlers[key]:
            self._publish(key, _after_step_event(event, self.step, ratio))

    def _fill_unread(self, unread: list[tuple[StepRecord, torch.Tensor]], values: list[float]) -> None:
        """Earlier steps' losses, read back now: into the history and the loss since the last evaluation."""
        for (record, _), value in zip(unread, values):
            record.loss = value
            if math.isfinite(value):
                self._losses_since_eval.append(value)
            else:
                self._report_non_finite_loss(value, completed=record.step - 1)  # the step that loss fed

    def _read_unread_losses(self) -> None:
        unread, self._unread = self._unread, []
        if unread:
            _, values = gradient_stats([], [value for _, value in unread])
            self._fill_unread(unread, values)

    def _routine(self, training: bool) -> bool:
        """A training batch of a step whose gradients are not measured: rules may skip it (``skip_routine``)."""
        return training and not self._measuring

    def _measure_gradients_now(self) -> bool:
        """Every step in the dense phase, every ``sparse_every`` steps after it."""
        options = self.options
        return self.step < options.dense_steps or self.step % max(1, options.sparse_every) == 0

    def _sample_update_ratio(self, watch: _OptimizerWatch) -> None:
        options = self.options
        every = options.update_ratio_every if self.step < options.dense_steps else options.sparse_every
        if self.step % max(1, every) != 0:
            return
        if watch.probe is None:
            trainable = [p for p in watch.params if p.requires_grad]
            watch.probe = UpdateRatioProbe(trainable, self.options.update_ratio_elements)
        watch.probe.before_step()
        watch.sampled = True

    def _record_history(self, event: OptimizerStep, ratio: float | None) -> StepRecord:
        now = time.perf_counter()
        previous = self._last_step_end if self._last_step_end is not None else (self._started or now)
        self._last_step_end = now
        record = StepRecord(self.step, event.loss, event.lr, event.grad_norm, ratio, now - previous)
        self.history.append(record)
        if event.loss is not None and math.isfinite(event.loss):
            self._losses_since_eval.append(event.loss)
        return record

    def _take_step_losses(self) -> list[torch.Tensor]:
        losses, self._step_losses = self._step_losses, []
        return losses

    # --- non-finite loss ------------------------------------------------------------

    def _report_non_finite_loss(self, loss: float, completed: int | None = None) -> None:
        """``completed``: the steps done before the one fed this loss (read back late: an earlier one)."""
        if self._non_finite_seen:
            return
        self._non_finite_seen = True
        first, how = self._replay_for_first_non_finite()
        bad = [
            self._name_of.get(id(p), name)
            for module in self.modules.values() for name, p in module.named_parameters()
            if not bool(torch.isfinite(p).all())
        ]
        step = self.step if completed is None else completed
        self._publish("on_non_finite_loss", NonFiniteLoss(step, loss, first, how, bad[:20]))

    def _replay_for_first_non_finite(self) -> tuple[str | None, str]:
        """Replay the last training forward with finiteness hooks on every submodule."""
        if self._last_inputs is None:
            return None, "no-inputs"
        model, args, kwargs = self._last_inputs
        origin: list[str] = []

        def check(name: str) -> Callable[..., None]:
            def hook(module: Any, hook_args: Any, hook_kwargs: Any, output: Any) -> None:
                if not origin and not all_finite(output) and all_finite((hook_args, hook_kwargs)):
                    origin.append(name)

            return hook

        handles = [
            module.register_forward_hook(check(name), with_kwargs=True)
            for name, module in model.named_modules()
            if name
        ]
        self._replaying = True
        try:
            with torch.no_grad(), torch.random.fork_rng(devices=_rng_devices()):
                output = model(*args, **kwargs)
        finally:
            self._replaying = False
            for handle in handles:
                handle.remove()
        if origin:
            return origin[0], "replay"
        logits, loss = _logits_and_loss(output)
        if logits is not None and all_finite(logits) and (loss is None or all_finite(loss)):
            return None, "model-output-finite"
        return None, "not-reproduced"

    # --- eval passes --------------------------------------------------------------

    def _remember(self, record: _Forward) -> None:
        self._pending.append(record)
        if len(self._pending) > _MAX_PENDING_FORWARDS:
            self._flush_eval(bracketed=False)

    def _flush_eval(self, *, bracketed: bool) -> None:
        """Publish the eval pass made of the not-backpropagated forwards since the last flush.

        ``bracketed`` (observe_eval closed it): every such forward was an eval
        forward. Otherwise only the unambiguous ones (no_grad, evaluation(),
        eval mode) are.
        """
        pending, self._pending = self._pending, []
        self._unanchored = []
        forwards = [
            f
            for f in pending
            if not f.backpropagated and (bracketed or f.definite_eval or not f.training)
        ]
        if not forwards:
            return
        self.observed["evaluation"] = True
        train_mode = sum(f.training for f in forwards)
        self._publish(
            "on_eval_pass",
            EvalPass(
                step=forwards[0].step,
                forwards=len(forwards),
                train_mode_forwards=train_mode,
                grad_tracked_forwards=sum(f.grad_tracked for f in forwards),
                explicit=bracketed or self._eval_depth > 0 or any(f.definite_eval for f in forwards),
                dropout_modules=list(self._dropout_names) if train_mode else [],
            ),
        )

    # --- lifecycle -----------------------------------------------------------------

    def _ensure_preflight(self) -> None:
        if self._preflight_done:
            return
        self._preflight_done = True
        self._publish(
            "on_preflight",
            Preflight(
                model=self.model,
                optimizers=self.optimizers,  # live: optimizers added later appear in it
                num_labels=self.num_labels,
                hidden_size=self.hidden_size,
                train_data=self.train_data,
                val_data=self.val_data,
                tokenizer=self.tokenizer,
                modules=self.modules,  # live, as ``optimizers``
            ),
        )

    def _publish_batch(
        self, phase: str, labels: torch.Tensor | None, args: tuple[Any, ...], kwargs: dict[str, Any], *, routine: bool
    ) -> None:
        """``args``/``kwargs``: the model call the batch came in (empty for observe_batch); the
        batch size is read from them only when a rule listens, so no closure is built per forward.
        ``routine``: a training batch of a step whose gradients are not measured."""
        if labels is not None:
            self.observed["labels"] = self._labelled_since_loss = True
            if phase == "train" and _is_class_ids(labels):
                self._labels.add(labels)
        key = _handler_key("on_batch", routine)
        if self._handlers[key]:
            self._publish(key, BatchSeen(self.step, phase, labels, _batch_size_of_call(args, kwargs, labels)))

    def _finish(self) -> None:
        if self._finished:
            return
        self._finished = True
        self._judge_end()

    @_guarded("finish")
    def _judge_end(self) -> None:
        self._ensure_preflight()
        self._flush_eval(bracketed=False)
        self._read_unread_losses()
        losses = self._take_step_losses()
        if losses:
            loss = float(_mean(losses))  # type: ignore[arg-type]
            if not math.isfinite(loss):
                self._report_non_finite_loss(loss)
        in_flight = self._current or self._last_forward
        self._publish("on_run_end", RunEnded(self.step, self.exception, in_flight.labels if in_flight else None))


def watch(
    model: torch.nn.Module,
    optimizer: torch.optim.Optimizer | None = None,
    *,
    num_labels: int | None = None,
    train_data: LabelledData | None = None,
    val_data: LabelledData | None = None,
    settings: Settings | None = None,
    options: DoctorOptions | None = None,
    tokenizer: Any = None,
) -> Doctor:
    """Attach a doctor; use as ``with ftdoctor.watch(model, optimizer) as doctor:`` (detaches on exit).

    ``tokenizer`` (optional) lets the rules compare where it came from with where the model came from.
    """
    doctor = Doctor(
        model,
        optimizer,
        num_labels=num_labels,
        train_data=train_data,
        val_data=val_data,
        settings=settings,
        options=options,
        tokenizer=tokenizer,
    )
    return doctor.attach()


# --- helpers -------------------------------------------------------------------------

_HANDLER_NAMES = (
    "on_preflight",
    "on_datasets",
    "on_batch",
    "on_forward_call",
    "on_forward",
    "on_loss_input",
    "on_backward",
    "on_before_step",
    "on_after_step",
    "on_zero_grad",
    "on_optimizer_added",
    "on_eval_pass",
    "on_eval_replay",
    "on_evaluation",
    "on_non_finite_loss",
    "on_run_end",
)


#: events with routine occasions (a training batch, an unmeasured step), which skip the rules that
#: ``skip_routine`` them: what the doctor pays on most steps is only what routine handlers cost
_ROUTINE_HANDLERS = ("on_batch", "on_forward", "on_loss_input", "on_before_step", "on_after_step")
_ROUTINE_PREFIX = "routine:"
#: event name -> its handler-table key on routine occasions (its own name is the key otherwise)
_ROUTINE = {name: _ROUTINE_PREFIX + name for name in _ROUTINE_HANDLERS}


def _handler_key(name: str, routine: bool) -> str:
    """The handler-table key of event ``name`` on a routine occasion or not."""
    return _ROUTINE[name] if routine else name


def _handler_name(key: str) -> str:
    return key.removeprefix(_ROUTINE_PREFIX)


def _handler_table(rules: list[RuntimeRule]) -> dict[str, list[tuple[RuntimeRule, Callable[[Any], None]]]]:
    """handler-table key -> the rules that define the handler (looked up once, not per event).

    An event with routine occasions has two keys: its name (every rule) and ``routine:``name.
    """
    table: dict[str, list[tuple[RuntimeRule, Callable[[Any], None]]]] = {name: [] for name in _HANDLER_NAMES}
    table.update({_ROUTINE[name]: [] for name in _ROUTINE_HANDLERS})
    for rule in rules:
        for name in _HANDLER_NAMES:
            method = getattr(rule, name, None)
            if callable(method):
                table[name].append((rule, method))
                if name in _ROUTINE_HANDLERS and name not in rule.skip_routine:
                    table[_ROUTINE[name]].append((rule, method))
    return table


def coverage_of(observed: dict[str, bool], rules: list[RuntimeRule]) -> dict[str, Any]:
    """Contract ``coverage``: the signals seen and the enabled rules that lacked one they need."""
    not_run = []
    for rule in sorted(rules, key=lambda r: r.slug):
        missing = [signal for signal in rule.needs if not observed.get(signal)]
        if missing and not rule.fired:
            not_run.append({"rule": rule.slug, "why": f"no {either_of(missing)} observed"})
    return {"observed": {signal: bool(observed.get(signal)) for signal in CORE_SIGNALS}, "not_run": not_run}


def _after_step_event(before: OptimizerStep, step: int, ratio: float | None) -> OptimizerStep:
    """The pre-step event as seen after the step (``dataclasses.replace`` costs ~10 µs a step)."""
    return OptimizerStep(step, before.lr, before.grad_norm, before.grad_norms, before.backwards_since_zero_grad,
                         before.backwards_since_last_step, ratio, before.loss)


def _configured_num_labels(model: torch.nn.Module) -> int | None:
    """``config.num_labels`` of a model that has a head; a bare encoder (``BertModel``) keeps
    transformers' default of 2, which says nothing about the task."""
    config = getattr(model, "config", None)
    if config is None or getattr(model, "base_model", None) is model:
        return None
    return getattr(config, "num_labels", None)


def _contains(outer: torch.nn.Module, inner: torch.nn.Module) -> bool:
    return any(module is inner for module in outer.modules())


def _grad_anchor(logits: torch.Tensor | None, loss: torch.Tensor | None, output: Any) -> torch.Tensor | None:
    """A tensor of the forward's output that a backward through it must reach."""
    for candidate in (logits, loss):
        if candidate is not None and candidate.requires_grad:
            return candidate
    return next((t for t in iter_tensors(output) if t.requires_grad), None)


def _unwrap_optimizer(optimizer: Any) -> torch.optim.Optimizer:
    """accelerate's AcceleratedOptimizer (an Optimizer subclass that never ran Optimizer.__init__)
    and similar wrappers keep the real one in ``.optimizer``: hooks go on that one."""
    while isinstance(getattr(optimizer, "optimizer", None), torch.optim.Optimizer):
        optimizer = optimizer.optimizer
    if not isinstance(optimizer, torch.optim.Optimizer):
        raise TypeError(f"ftdoctor.watch: expected a torch.optim.Optimizer, got {type(optimizer).__name__}")
    return optimizer


def _mode_sensitive_modules(model: torch.nn.Module) -> list[str]:
    """Modules that behave differently in train mode: dropout with p > 0 and batch norm."""
    names = []
    for name, module in model.named_modules():
        is_dropout = isinstance(module, torch.nn.modules.dropout._DropoutNd) and module.p > 0
        if is_dropout or isinstance(module, torch.nn.modules.batchnorm._BatchNorm):
            names.append(name or type(module).__name__)
    return names


def _labels_of(batch: Any) -> torch.Tensor | None:
    if isinstance(batch, dict):
        for key in ("labels", "label", "targets", "target"):
            value = batch.get(key)
            if isinstance(value, torch.Tensor):
                return value
        return None
    if isinstance(batch, (tuple, list)) and len(batch) >= 2 and isinstance(batch[-1], torch.Tensor):
        return batch[-1]  # (inputs..., labels)
    return None


def _labels_of_call(args: tuple[Any, ...], kwargs: dict[str, Any]) -> torch.Tensor | None:
    """Labels passed to the model: ``labels=``, or inside a dict batch passed whole."""
    labels = kwargs.get("labels")
    if isinstance(labels, torch.Tensor):
        return labels
    for value in (*args, *kwargs.values()):
        if isinstance(value, dict):
            return _labels_of(value)
    return None


def _batch_size_of_call(args: tuple[Any, ...], kwargs: dict[str, Any], labels: torch.Tensor | None) -> int | None:
    if labels is not None:
        return _batch_size(labels)
    for value in (*args, *kwargs.values()):
        if isinstance(value, torch.Tensor) and value.dim() > 0:
            return int(value.shape[0])
    return None


def _batch_size(labels: torch.Tensor | None) -> int | None:
    return int(labels.shape[0]) if isinstance(labels, torch.Tensor) and labels.dim() > 0 else None


def _is_class_ids(labels: torch.Tensor) -> bool:
    return not labels.dtype.is_floating_point and labels.dtype != torch.bool and not labels.dtype.is_complex


def _logits_and_loss(output: Any) -> tuple[torch.Tensor | None, torch.Tensor | None]:
    """Logits and loss from a ModelOutput/dict, an HF-style tuple, or a bare tensor."""
    if isinstance(output, torch.Tensor):
        return (None, output) if output.dim() == 0 else (output, None)
    if isinstance(output, dict):
        logits, loss = output.get("logits"), output.get("loss")
        return (logits if isinstance(logits, torch.Tensor) else None, loss if isinstance(loss, torch.Tensor) else None)
    if isinstance(output, (tuple, list)) and output and isinstance(output[0], torch.Tensor):
        first = output[0]
        if first.dim() == 0:  # (loss, logits, ...) as transformers returns with labels and return_dict=False
            second = output[1] if len(output) > 1 and isinstance(output[1], torch.Tensor) else None
            return second, first
        return first, None
    return None, None


def _mean(losses: list[torch.Tensor]) -> torch.Tensor | None:
    """The mean of the step's (detached, 0-d) losses, without extra ops for the usual single loss."""
    if not losses:
        return None
    if len(losses) == 1:
        return losses[0].float()
    return torch.stack([loss.float().reshape(()) for loss in losses]).mean()


def _as_float(value: Any) -> float | None:
    if value is None:
        return None
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def _rng_devices() -> list[int]:
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        return [torch.cuda.current_device()]
    return []
