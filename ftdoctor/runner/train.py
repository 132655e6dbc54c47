"""The reference fine-tune: an ordinary PyTorch loop with the doctor attached.

The doctor is attached through the public API only (``ftdoctor.watch``,
``doctor.evaluation()``, ``doctor.observe_eval``), exactly as a user's own loop
would do it; the runner is just another client of the doctor.
"""

from __future__ import annotations

import random
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from ftdoctor.findings import Finding, Report
from ftdoctor.runner.config import RunConfig
from ftdoctor.runner.data import Splits, TextDataset, load_splits
from ftdoctor.runner.distributed import parallel_model, rank_details, shard_sampler, start_epoch
from ftdoctor.runner.inject import LoopBehaviour, apply_mistakes
from ftdoctor.runner.metrics import Evaluation, final_metrics
from ftdoctor.runner.models import LoadedModel, load_model
from ftdoctor.settings import Settings

if TYPE_CHECKING:
    import torch
    from torch.utils.data import DataLoader

MAX_LENGTH = 128  # tokens; the bundled reviews are far shorter
TRAIN_ESTIMATE_SIZE = 256  # training examples re-scored at each evaluation, for the train/val gap


class Display(Protocol):
    """What the loop tells the user while it runs (runner/display.py)."""

    def start(self, total_steps: int, title: str) -> None: ...
    def on_step(self, step: int, loss: float, lr: float, grad_norm: float | None) -> None: ...
    def on_evaluation(self, evaluation: Evaluation) -> None: ...
    def on_finding(self, finding: Finding) -> None: ...
    def stop(self) -> None: ...


@dataclass
class Prepared:
    """Everything the loop needs, built in a seeded order."""

    config: RunConfig
    splits: Splits
    loaded: LoadedModel
    behaviour: LoopBehaviour
    train_loader: "DataLoader"
    val_loader: "DataLoader"
    train_estimate_loader: "DataLoader"
    optimizer: "torch.optim.Optimizer"
    scheduler: Any
    total_steps: int


@dataclass
class LoopState:
    step: int = 0
    evaluations: list[Evaluation] = field(default_factory=list)
    interrupted: bool = False
    error: BaseException | None = None
    seconds: float = 0.0


@dataclass
class RunResult:
    report: Report
    interrupted: bool
    error: BaseException | None


def run_reference(config: RunConfig, *, settings: Settings, display: Display) -> RunResult:
    """Build the fine-tune from ``config``, train it under the doctor, and return the report."""
    import ftdoctor
    from ftdoctor.runtime.events import LabelledData

    prepared = prepare(config)
    model, splits = prepared.loaded.model, prepared.splits
    state = LoopState()
    with ftdoctor.watch(
        model, prepared.optimizer, num_labels=model.config.num_labels, settings=settings,
        tokenizer=prepared.loaded.tokenizer,
        train_data=LabelledData(texts=splits.train.texts, labels=splits.train.labels, name="train"),
        val_data=LabelledData(texts=splits.validation.texts, labels=splits.validation.labels, name="validation"),
    ) as doctor:
        doctor.on_finding.append(display.on_finding)
        display.start(prepared.total_steps, f"{config.model} on {config.data.train}")
        try:
            _train(prepared, doctor, display, state)
        finally:
            display.stop()
    # After detaching: the doctor has judged the end of the run too.
    report = _assemble_report(prepared, doctor, state)
    return RunResult(report, state.interrupted, state.error)


def prepare(config: RunConfig) -> Prepared:
    """Data, model, mistakes, loaders, optimizer and schedule — seeded, in a fixed order."""
    from transformers import get_linear_schedule_with_warmup

    train_cfg = config.train
    seed_everything(train_cfg.seed)
    splits = load_splits(config.data)
    loaded = load_model(config.model, splits, config.num_labels or splits.num_labels)
    if train_cfg.freeze_encoder:
        freeze_encoder(loaded.model)
    behaviour = apply_mistakes(config.inject, loaded.model)
    train_loader = _loader(splits.train, loaded, train_cfg.batch_size, shuffle_seed=train_cfg.seed)
    eval_batch = max(64, 2 * train_cfg.batch_size)
    total = len(train_loader) * train_cfg.epochs
    total = min(total, train_cfg.max_steps) if train_cfg.max_steps else total
    optimizer = build_optimizer(loaded.model, train_cfg.learning_rate, train_cfg.weight_decay)
    return Prepared(
        config=config, splits=splits, loaded=loaded, behaviour=behaviour, train_loader=train_loader,
        val_loader=_loader(splits.validation, loaded, eval_batch),
        train_estimate_loader=_loader(_train_estimate_subset(splits.train, train_cfg.seed), loaded, eval_batch),
        optimizer=optimizer,
        scheduler=get_linear_schedule_with_warmup(optimizer, round(train_cfg.warmup_ratio * total), total),
        total_steps=total,
    )


def seed_everything(seed: int) -> None:
    from transformers import set_seed

    random.seed(seed)
    set_seed(seed)


def freeze_encoder(model: "torch.nn.Module") -> None:
    """Train only the task head: the pretrained encoder keeps its weights."""
    for parameter in model.base_model.parameters():
        parameter.requires_grad_(False)


def build_optimizer(model: "torch.nn.Module", learning_rate: float, weight_decay: float) -> "torch.optim.Optimizer":
    """AdamW over every parameter, without decay on biases and LayerNorm weights.

    Frozen parameters stay in the optimizer, as with ``AdamW(model.parameters())``:
    they get no gradient, so AdamW leaves them alone.
    """
    import torch

    decay, no_decay = [], []
    for name, parameter in model.named_parameters():
        (no_decay if parameter.ndim < 2 or "LayerNorm" in name else decay).append(parameter)
    groups = [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]
    return torch.optim.AdamW([group for group in groups if group["params"]], lr=learning_rate)


def _loader(data: TextDataset, loaded: LoadedModel, batch_size: int, shuffle_seed: int | None = None) -> "DataLoader":
    import torch
    from torch.utils.data import DataLoader
    from transformers import DataCollatorWithPadding

    encoded = loaded.tokenizer(data.texts, truncation=True, max_length=MAX_LENGTH)
    features = [
        {**{key: values[i] for key, values in encoded.items()}, "labels": label}
        for i, label in enumerate(data.labels)
    ]
    generator = torch.Generator().manual_seed(shuffle_seed) if shuffle_seed is not None else None
    # Under torchrun each rank trains on its own shard; evaluation data stays whole on every rank.
    shard = shard_sampler(features, shuffle=True, seed=shuffle_seed) if shuffle_seed is not None else None
    return DataLoader(
        features, batch_size=batch_size, shuffle=shuffle_seed is not None and shard is None, sampler=shard,
        generator=generator, collate_fn=DataCollatorWithPadding(loaded.tokenizer),
    )


def _train_estimate_subset(train: TextDataset, seed: int) -> TextDataset:
    """A fixed random sample of the training set, scored like validation to measure the gap."""
    if len(train) <= TRAIN_ESTIMATE_SIZE:
        return train
    picked = sorted(random.Random(seed).sample(range(len(train)), TRAIN_ESTIMATE_SIZE))
    return TextDataset([train.texts[i] for i in picked], [train.labels[i] for i in picked], train.source)


def _train(prepared: Prepared, doctor: Any, display: Display, state: LoopState) -> None:
    """The loop; Ctrl-C stops it and a crash is recorded — the report is written either way."""
    started = time.perf_counter()
    try:
        _optimize(prepared, doctor, display, state)
        last = state.evaluations[-1].step if state.evaluations else None
        if last != state.step and state.step > 0:
            _evaluate(prepared, doctor, display, state)
    except KeyboardInterrupt:
        state.interrupted = True
    except Exception as exc:  # the user's mistake made training crash: report it with the findings
        state.error = exc
        doctor.record_exception(exc)
    finally:
        state.seconds = time.perf_counter() - started


def _optimize(prepared: Prepared, doctor: Any, display: Display, state: LoopState) -> None:
    model, optimizer, behaviour = prepared.loaded.model, prepared.optimizer, prepared.behaviour
    trained = parallel_model(model)  # DDP under torchrun; the doctor keeps watching the inner model
    eval_every = prepared.config.train.eval_every
    model.train()
    for epoch in range(prepared.config.train.epochs):
        start_epoch(prepared.train_loader, epoch)
        for batch in prepared.train_loader:
            if behaviour.clears_grads:
                optimizer.zero_grad()
            loss = _training_loss(trained, batch, behaviour)
            loss.backward()
            optimizer.step()
            prepared.scheduler.step()
            state.step += 1
            lr, grad_norm = _used_lr_and_grad_norm(doctor, optimizer)
            display.on_step(state.step, loss.item(), lr, grad_norm)
            if state.step % eval_every == 0:
                _evaluate(prepared, doctor, display, state)
            if state.step >= prepared.total_steps:
                return


def _training_loss(model: "torch.nn.Module", batch: dict[str, "torch.Tensor"], behaviour: LoopBehaviour) -> "torch.Tensor":
    if not behaviour.softmax_before_loss:
        return model(**batch).loss  # the model computes cross-entropy from `labels=`
    import torch

    inputs = {key: value for key, value in batch.items() if key != "labels"}
    logits = model(**inputs).logits
    return torch.nn.CrossEntropyLoss()(torch.softmax(logits, dim=-1), batch["labels"])  # noqa: FTD109 the softmax-before-loss injection, on purpose


def _used_lr_and_grad_norm(doctor: Any, optimizer: Any) -> tuple[float, float | None]:
    """The step's own learning rate (not the scheduler's next one) and its gradient norm when it was
    measured (None on the steps the doctor does not measure: never a repeated older value)."""
    if doctor.history:
        record = doctor.history[-1]
        return record.lr, record.grad_norm
    return float(optimizer.param_groups[0]["lr"]), None


def _evaluate(prepared: Prepared, doctor: Any, display: Display, state: LoopState) -> None:
    model = prepared.loaded.model
    with doctor.evaluation():
        if prepared.behaviour.uses_eval_mode:
            model.eval()
        val_loss, val_predictions, val_labels = _score(model, prepared.val_loader)
        train_loss, train_predictions, train_labels = _score(model, prepared.train_estimate_loader)
        model.train()
    evaluation = Evaluation(
        step=state.step, val_loss=val_loss, val_accuracy=_accuracy(val_predictions, val_labels),
        train_loss=train_loss, train_accuracy=_accuracy(train_predictions, train_labels),
        predictions=val_predictions, references=val_labels,
    )
    state.evaluations.append(evaluation)
    doctor.observe_eval(
        val_loss=evaluation.val_loss, train_loss=evaluation.train_loss, val_accuracy=evaluation.val_accuracy,
        train_accuracy=evaluation.train_accuracy, step=state.step,
    )
    display.on_evaluation(evaluation)


def _score(model: "torch.nn.Module", loader: "DataLoader") -> tuple[float, list[int], list[int]]:
    """Mean cross-entropy, predictions and references over a loader, without autograd."""
    import torch

    total_loss, predictions, references = 0.0, [], []
    with torch.no_grad():
        for batch in loader:
            output = model(**batch)
            total_loss += output.loss.item() * len(batch["labels"])
            predictions += output.logits.argmax(dim=-1).tolist()
            references += batch["labels"].tolist()
    return total_loss / max(len(references), 1), predictions, references


def _accuracy(predictions: list[int], references: list[int]) -> float:
    return sum(p == r for p, r in zip(predictions, references)) / max(len(references), 1)


def _assemble_report(prepared: Prepared, doctor: Any, state: LoopState) -> Report:
    from ftdoctor.report.report_data import run_details

    last = state.evaluations[-1] if state.evaluations else None
    flat, per_class, confusion = final_metrics(last, prepared.splits.label_names, prepared.loaded.model.config.num_labels)
    report = doctor.report(metrics=flat)
    report.extra.update(run_details(prepared, doctor, state, per_class, confusion))
    # an all-reduce: skipped after a crash, when the other ranks may never get here
    collective = state.error is None and not state.interrupted
    report.extra["run"].update(rank_details(doctor.label_counts, collective=collective))
    return report
