"""The runtime doctor for the transformers ``Trainer``.

    trainer = Trainer(..., callbacks=[DoctorCallback()])
    trainer.train()
    report = trainer.callback_handler.callbacks[-1].doctor.report()   # or keep a reference

The callback attaches a :class:`~ftdoctor.runtime.doctor.Doctor` to the
trainer's model at ``on_train_begin`` (the optimizer too, when it already
exists), adds an optimizer created later (DeepSpeed/FSDP create it after
``on_train_begin``) at ``on_pre_optimizer_step`` — before its first step — and
turns ``on_evaluate`` metrics into ``doctor.observe_eval``. Gradients, updates
and the raw per-step loss come from the doctor's own hooks on the model and on
the (unwrapped) optimizer: the Trainer's ``logging_nan_inf_filter`` hides NaN
losses from ``on_log``, the forward hook does not. The doctor detaches at
``on_train_end``.

Importing this module imports transformers.
"""

from __future__ import annotations

from typing import Any

from transformers import TrainerCallback

from ftdoctor.runtime.doctor import Doctor

#: metric keys of ``Trainer.evaluate`` that map onto ``observe_eval`` arguments
_EVAL_KEYS = {"eval_loss": "val_loss", "eval_accuracy": "val_accuracy"}
_RESERVED = {"val_loss", "train_loss", "val_accuracy", "train_accuracy", "step"}


class DoctorCallback(TrainerCallback):
    """Watches a ``Trainer`` run; ``callback.doctor`` holds the findings and the report."""

    def __init__(self, doctor: Doctor | None = None, **watch_kwargs: Any) -> None:
        self.doctor = doctor
        self.watch_kwargs = watch_kwargs

    def on_train_begin(self, args: Any, state: Any, control: Any, model: Any = None, optimizer: Any = None, **kwargs: Any) -> None:
        if self.doctor is None or (not self.doctor.attached and self.doctor.step):
            if model is None:
                return
            tokenizer = kwargs.get("processing_class") or kwargs.get("tokenizer")
            watch_kwargs = {"tokenizer": tokenizer, **self.watch_kwargs}
            self.doctor = Doctor(model, **watch_kwargs)  # a fresh doctor for each train() call
        self.doctor.attach()
        self._add_optimizer(optimizer)

    def on_pre_optimizer_step(self, args: Any, state: Any, control: Any, optimizer: Any = None, **kwargs: Any) -> None:
        self._add_optimizer(optimizer)

    def on_evaluate(self, args: Any, state: Any, control: Any, metrics: dict[str, Any] | None = None, **kwargs: Any) -> None:
        if self.doctor is None or not self.doctor.attached:
            return
        metrics = metrics or {}
        known = {target: metrics[key] for key, target in _EVAL_KEYS.items() if key in metrics}
        extra = {
            key: float(value)
            for key, value in metrics.items()
            if key not in _EVAL_KEYS and key not in _RESERVED and isinstance(value, (int, float))
            and not isinstance(value, bool)
        }
        self.doctor.observe_eval(step=state.global_step, **known, **extra)

    def on_train_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        if self.doctor is not None:
            self.doctor.detach()

    def _add_optimizer(self, optimizer: Any) -> None:
        if self.doctor is not None and optimizer is not None and self.doctor.attached:
            self.doctor.add_optimizer(optimizer)
