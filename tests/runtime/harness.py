"""A tiny fine-tune with fault knobs, shared by the runtime doctor's tests.

``train(Spec(...))`` builds a random-init tiny BERT (``BertForSequenceClassification``
from a small ``BertConfig``), generates token data whose label is learnable from
the tokens, and runs a plain custom training loop under ``ftdoctor.watch``. Each
fault knob reproduces one real mistake; the default ``Spec()`` is a correct run.
Everything is seeded and runs in a second or two on one CPU thread.

Datasets (``Spec.dataset``):
- ``"keyword"``: every class ``c`` owns a few signal token ids; an example of
  class ``c`` holds one or two of them among random filler tokens.
- ``"majority"``: every example holds signal tokens of several classes; its
  label is the class whose signal tokens occur most often.

Knobs, correct by default (the fault each reproduces in brackets):
- ``seed``, ``dataset``, ``n_train``, ``n_val``, ``seq_len``, ``batch_size``,
  ``steps`` (optimizer steps), ``lr``, ``optimizer`` ("adamw" | "sgd"),
  ``accumulation_steps`` (legitimate gradient accumulation: several backward
  passes per optimizer step, loss divided by the count).
- ``num_labels`` (head width) vs ``data_classes`` (classes in the data)
  [label-count-mismatch when they differ].
- ``skip_zero_grad`` [grads-accumulating: gradients never cleared].
- ``zero_grad_via`` "optimizer" | "model" | "set_to_none_manually" (all correct).
- ``freeze_encoder`` (correct: ``requires_grad=False`` on ``bert.*``, only the
  head trains; the optimizer gets the trainable parameters, or all of them with
  ``optimizer_includes_frozen`` — also correct), ``freeze_all``
  [no-trainable-params].
- ``head_not_in_optimizer`` [params-not-in-optimizer: optimizer built from
  ``model.bert.parameters()`` only].
- ``orphan_head`` [dead-parameters: a new ``model.head`` Linear is put in the
  optimizer but the forward never calls it].
- ``eval_every`` (optimizer steps between evaluations; 0 = no evaluation),
  ``eval_bracket`` ("observe" — plain loop, then ``doctor.observe_eval``;
  "context" — inside ``with doctor.evaluation():``), ``eval_without_eval_mode``
  [dropout-in-eval], ``eval_with_grad`` [eval-with-grad].
- ``label_shift`` [label-out-of-range: labels + shift], ``float_labels``,
  ``one_hot_labels`` [label-type-mismatch], ``imbalance`` (fraction of class 0,
  [class-imbalance] when high), ``label_noise`` (fraction of training labels
  replaced by random ones), ``sorted_data`` [unshuffled-batches: training data
  sorted by label and not shuffled], ``val_overlap`` (fraction of validation
  examples copied from train) [train-val-overlap], ``give_datasets`` (hand the
  doctor ``LabelledData`` of train/val).
- ``external_loss`` (the loop computes ``nn.CrossEntropyLoss()(logits, labels)``
  itself instead of passing ``labels=``), ``softmax_before_loss``
  [softmax-before-loss: external loss on ``softmax(logits)``],
  ``head_width`` (replace the classifier by ``Linear(hidden, head_width)``)
  [head-output-mismatch].
- ``nan_at_step`` / ``nan_module`` [non-finite-loss: one weight of
  ``nan_module`` set to NaN before that step's forward], ``loss_scale_growth``
  [exploding-gradients: the loss is multiplied by ``growth ** step`` and never
  unscaled, like manual loss scaling gone wrong].
- ``weight_decay`` (None: AdamW 0.01, SGD 0) [weight-decay-out-of-range when huge].
- ``checkpoint`` "" (random init from a config, the default) | "encoder" (``from_pretrained`` of a saved tiny
  encoder: the classifier is newly initialised) | "config" (a config loaded from that checkpoint, the model
  built from it: random weights) [random-init-not-pretrained]; ``train_only`` (name prefixes: every other
  parameter frozen, as PEFT does) [head-not-trained when the new classifier is not among them].
- ``train_in_eval_mode`` [missing-train-mode: the loop never calls model.train()],
  ``padded`` (examples end in a random run of pad tokens, masked out) with ``no_attention_mask``
  [missing-attention-mask], ``always_dropout`` [eval-nondeterministic: the classifier's dropout is a
  custom module calling ``F.dropout(training=True)``], ``class_weights`` (an external ``CrossEntropyLoss(weight=...)``; a zero weight
  [prediction-collapse: the class never counts in the loss]), ``recreate_optimizer_every`` [optimizer-recreated-in-loop:
  a new AdamW over the same parameters every n steps, handed to ``doctor.add_optimizer``].
- ``watch`` (False: the same run without the doctor), ``doctor_kwargs``
  (extra keyword arguments for ``ftdoctor.watch``).
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Any, Iterator

import torch
from torch import nn

import ftdoctor
from ftdoctor.runtime.events import LabelledData

VOCAB_SIZE = 200
FIRST_FILLER = 5  # ids 0-4 are special: 0 pad, 1 cls, 2 sep
SIGNAL_TOKENS_PER_CLASS = 3


@dataclass
class Spec:
    seed: int = 0
    dataset: str = "keyword"
    n_train: int = 256
    n_val: int = 64
    seq_len: int = 16
    batch_size: int = 16
    steps: int = 30
    lr: float = 1e-3
    optimizer: str = "adamw"
    accumulation_steps: int = 1
    num_labels: int = 2
    data_classes: int | None = None  # None = num_labels
    skip_zero_grad: bool = False
    zero_grad_via: str = "optimizer"
    freeze_encoder: bool = False
    optimizer_includes_frozen: bool = False
    freeze_all: bool = False
    head_not_in_optimizer: bool = False
    orphan_head: bool = False
    eval_every: int = 0
    eval_bracket: str = "observe"
    eval_without_eval_mode: bool = False
    eval_with_grad: bool = False
    label_shift: int = 0
    float_labels: bool = False
    one_hot_labels: bool = False
    imbalance: float | None = None
    label_noise: float = 0.0
    sorted_data: bool = False
    val_overlap: float = 0.0
    give_datasets: bool = False
    external_loss: bool = False
    softmax_before_loss: bool = False
    head_width: int | None = None
    nan_at_step: int | None = None
    nan_module: str = "bert.encoder.layer.1.intermediate.dense"
    loss_scale_growth: float = 1.0
    weight_decay: float | None = None
    checkpoint: str = ""
    train_only: tuple[str, ...] = ()
    train_in_eval_mode: bool = False
    padded: bool = False
    no_attention_mask: bool = False
    always_dropout: bool = False
    class_weights: tuple[float, ...] | None = None
    recreate_optimizer_every: int = 0
    watch: bool = True
    doctor_kwargs: dict[str, Any] = field(default_factory=dict)

    @property
    def classes(self) -> int:
        return self.data_classes if self.data_classes is not None else self.num_labels


@dataclass
class Split:
    """Token ids, attention mask, labels and the texts they spell."""

    input_ids: torch.Tensor
    attention_mask: torch.Tensor
    labels: torch.Tensor
    texts: list[str]

    def __len__(self) -> int:
        return len(self.labels)

    def subset(self, index: torch.Tensor) -> "Split":
        return Split(
            self.input_ids[index],
            self.attention_mask[index],
            self.labels[index],
            [self.texts[i] for i in index.tolist()],
        )


@dataclass
class Run:
    """What one harness run produced."""

    doctor: Any  # ftdoctor.runtime.doctor.Doctor, None when watch=False
    model: nn.Module
    optimizer: torch.optim.Optimizer
    losses: list[float]
    step_seconds: list[float]
    error: BaseException | None = None

    @property
    def findings(self) -> list[Any]:
        return list(self.doctor.findings) if self.doctor is not None else []

    @property
    def slugs(self) -> set[str]:
        return {f.rule for f in self.findings}

    def finding(self, slug: str) -> Any:
        return next(f for f in self.findings if f.rule == slug)

    def loud(self) -> list[Any]:
        """Findings at warning or error severity."""
        return [f for f in self.findings if f.severity.value in ("warning", "error")]


# --- model -------------------------------------------------------------------


def tiny_bert(num_labels: int = 2, seed: int = 0) -> nn.Module:
    """A random-init BERT classifier small enough to train in a second on CPU."""
    from transformers import BertConfig, BertForSequenceClassification

    torch.manual_seed(seed)
    config = BertConfig(
        vocab_size=VOCAB_SIZE,
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=64,
        num_labels=num_labels,
    )
    return BertForSequenceClassification(config)


class AlwaysDropout(nn.Module):
    """Dropout that reads its rate from the module and ignores the mode (transformers PR 33844's bug)."""

    def __init__(self, p: float) -> None:
        super().__init__()
        self.p = p

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return nn.functional.dropout(x, self.p, training=True)


_checkpoints: dict[int, str] = {}


def pretrained_encoder(seed: int = 0) -> str:
    """A directory holding a saved tiny BertModel (no classifier), made once per seed and process.

    Its LayerNorm weights are moved off their init values, as every real checkpoint's are.
    """
    if seed not in _checkpoints:
        import atexit
        import shutil
        import tempfile

        encoder = tiny_bert(seed=seed).bert
        with torch.no_grad():
            for name, param in encoder.named_parameters():
                if "LayerNorm" in name:
                    param.add_(torch.randn_like(param) * 0.05)
        directory = tempfile.mkdtemp(prefix="ftdoctor-tiny-encoder-")
        atexit.register(shutil.rmtree, directory, True)
        encoder.save_pretrained(directory)
        _checkpoints[seed] = directory
    return _checkpoints[seed]


def _base_model(spec: Spec) -> nn.Module:
    from transformers import AutoConfig, BertForSequenceClassification
    from transformers.utils import logging as hf_logging

    if not spec.checkpoint:
        return tiny_bert(spec.num_labels, spec.seed)
    directory = pretrained_encoder(spec.seed)
    torch.manual_seed(spec.seed)
    hf_logging.set_verbosity_error()
    if spec.checkpoint == "config":
        return BertForSequenceClassification(AutoConfig.from_pretrained(directory, num_labels=spec.num_labels))
    return BertForSequenceClassification.from_pretrained(directory, num_labels=spec.num_labels)


def build_model(spec: Spec) -> nn.Module:
    model = _base_model(spec)
    hidden = model.config.hidden_size
    if spec.always_dropout:
        model.dropout = AlwaysDropout(0.1)
    if spec.train_only:
        for name, param in model.named_parameters():
            param.requires_grad = name.startswith(spec.train_only)
    if spec.head_width is not None:
        model.classifier = nn.Linear(hidden, spec.head_width)
    if spec.orphan_head:
        model.head = nn.Linear(hidden, spec.num_labels)  # noqa: FTD106 — the orphan-head fault knob: registered, never called by forward
    if spec.freeze_encoder:
        for param in model.bert.parameters():
            param.requires_grad = False
    if spec.freeze_all:
        for param in model.parameters():
            param.requires_grad = False
    return model


def build_optimizer(spec: Spec, model: nn.Module) -> torch.optim.Optimizer:
    if spec.head_not_in_optimizer:
        params = list(model.bert.parameters())
    elif (spec.freeze_encoder or spec.train_only) and not spec.optimizer_includes_frozen:
        params = [p for p in model.parameters() if p.requires_grad]
    else:
        params = list(model.parameters())
    if spec.optimizer == "sgd":
        return torch.optim.SGD(params, lr=spec.lr, weight_decay=spec.weight_decay or 0.0)
    decay = 0.01 if spec.weight_decay is None else spec.weight_decay
    return torch.optim.AdamW(params, lr=spec.lr, weight_decay=decay)


# --- data --------------------------------------------------------------------


def signal_tokens(label: int) -> list[int]:
    start = FIRST_FILLER + label * SIGNAL_TOKENS_PER_CLASS
    return list(range(start, start + SIGNAL_TOKENS_PER_CLASS))


def _filler_ids(classes: int) -> list[int]:
    return list(range(FIRST_FILLER + classes * SIGNAL_TOKENS_PER_CLASS, VOCAB_SIZE))


def _example(rng: random.Random, label: int, spec: Spec) -> list[int]:
    body_len = spec.seq_len - 2
    tokens = [rng.choice(_filler_ids(spec.classes)) for _ in range(body_len)]
    if spec.dataset == "keyword":
        signal = [rng.choice(signal_tokens(label)) for _ in range(rng.randint(1, 2))]
    elif spec.dataset == "majority":
        others = [c for c in range(spec.classes) if c != label]
        signal = [rng.choice(signal_tokens(label)) for _ in range(3)]
        signal += [rng.choice(signal_tokens(rng.choice(others))) for _ in range(rng.randint(0, 2))]
    else:
        raise ValueError(f"unknown dataset {spec.dataset!r}")
    for position, token in zip(rng.sample(range(body_len), len(signal)), signal):
        tokens[position] = token
    return [1, *tokens, 2]


def _draw_labels(rng: random.Random, n: int, spec: Spec) -> list[int]:
    if spec.imbalance is None:
        return [rng.randrange(spec.classes) for _ in range(n)]
    rest = list(range(1, spec.classes))
    return [0 if rng.random() < spec.imbalance else rng.choice(rest) for _ in range(n)]


def make_split(spec: Spec, n: int, seed: int) -> Split:
    rng = random.Random(seed)
    labels = _draw_labels(rng, n, spec)
    rows = [_example(rng, label, spec) for label in labels]
    ids = torch.tensor(rows, dtype=torch.long)
    texts = [" ".join(f"w{t}" for t in row[1:-1]) for row in rows]
    mask = torch.ones_like(ids)
    if spec.padded:  # shorter examples padded to the batch length: a tail of pad ids (0), masked out
        for row, length in enumerate(rng.randint(spec.seq_len // 2, spec.seq_len) for _ in rows):
            ids[row, length:], mask[row, length:] = 0, 0
    return Split(ids, mask, torch.tensor(labels, dtype=torch.long), texts)


def make_datasets(spec: Spec) -> tuple[Split, Split]:
    train = make_split(spec, spec.n_train, seed=spec.seed * 1000 + 1)
    val = make_split(spec, spec.n_val, seed=spec.seed * 1000 + 2)
    if spec.label_noise:
        generator = torch.Generator().manual_seed(spec.seed)
        noisy = torch.rand(len(train), generator=generator) < spec.label_noise
        random_labels = torch.randint(0, spec.classes, (len(train),), generator=generator)
        train.labels = torch.where(noisy, random_labels, train.labels)
    if spec.val_overlap:
        copied = int(len(val) * spec.val_overlap)
        val = _overwrite_head(val, train, copied)
    if spec.sorted_data:
        train = train.subset(torch.argsort(train.labels, stable=True))
    return train, val


def _overwrite_head(val: Split, train: Split, count: int) -> Split:
    index = torch.arange(count)
    val.input_ids[:count] = train.input_ids[index]
    val.labels[:count] = train.labels[index]
    val.texts[:count] = train.texts[:count]
    return val


def batches(split: Split, spec: Spec, epoch_seed: int) -> Iterator[Split]:
    """Endless batches; reshuffled every epoch unless the data is meant sorted."""
    epoch, size = 0, min(spec.batch_size, len(split))
    while True:
        if spec.sorted_data:
            order = torch.arange(len(split))
        else:
            order = torch.randperm(len(split), generator=torch.Generator().manual_seed(epoch_seed + epoch))
        for start in range(0, len(split) - size + 1, size):
            yield split.subset(order[start : start + size])
        epoch += 1


def model_labels(labels: torch.Tensor, spec: Spec) -> torch.Tensor:
    """The labels as the (possibly faulty) loop hands them to the model."""
    labels = labels + spec.label_shift
    if spec.one_hot_labels:
        return nn.functional.one_hot(labels, spec.num_labels).float()
    if spec.float_labels:
        return labels.float()
    return labels


# --- the loop ----------------------------------------------------------------


def compute_loss(model: nn.Module, batch: Split, spec: Spec) -> tuple[torch.Tensor, torch.Tensor]:
    """(loss, logits) for one batch, the way the configured loop computes them."""
    labels = model_labels(batch.labels, spec)
    inputs = {"input_ids": batch.input_ids}
    if not spec.no_attention_mask:
        inputs["attention_mask"] = batch.attention_mask
    if spec.external_loss or spec.softmax_before_loss or spec.class_weights:
        logits = model(**inputs).logits
        scores = logits.softmax(dim=-1) if spec.softmax_before_loss else logits
        weight = torch.tensor(spec.class_weights) if spec.class_weights else None
        return nn.CrossEntropyLoss(weight=weight)(scores, labels), logits
    output = model(**inputs, labels=labels)
    return output.loss, output.logits


def evaluate(model: nn.Module, val: Split, spec: Spec) -> tuple[float, float]:
    """(val loss, val accuracy) with the configured (possibly faulty) eval hygiene."""
    if not spec.eval_without_eval_mode:
        model.eval()
    grad_mode = torch.enable_grad() if spec.eval_with_grad else torch.no_grad()
    losses, correct = [], 0
    with grad_mode:
        for start in range(0, len(val), spec.batch_size):
            batch = val.subset(torch.arange(start, min(start + spec.batch_size, len(val))))
            loss, logits = compute_loss(model, batch, spec)
            losses.append(loss.item() * len(batch))
            correct += int((logits.argmax(-1) == batch.labels).sum())
    if not spec.train_in_eval_mode:
        model.train()
    return sum(losses) / len(val), correct / len(val)


def _clear_grads(spec: Spec, model: nn.Module, optimizer: torch.optim.Optimizer) -> None:
    if spec.skip_zero_grad:
        return
    if spec.zero_grad_via == "model":
        model.zero_grad()
    elif spec.zero_grad_via == "set_to_none_manually":
        for param in model.parameters():
            param.grad = None
    else:
        optimizer.zero_grad()


def _inject_nan(model: nn.Module, module_name: str) -> None:
    with torch.no_grad():
        model.get_submodule(module_name).weight[0, 0] = float("nan")


class _Evaluator:
    """Evaluates every ``eval_every`` steps and tells the doctor the metrics."""

    def __init__(self, spec: Spec, model: nn.Module, train: Split, val: Split) -> None:
        self.spec, self.model, self.train, self.val = spec, model, train, val

    def __call__(self, doctor: Any, step: int, train_loss: float) -> None:
        if doctor is not None and self.spec.eval_bracket == "context":
            with doctor.evaluation():
                val_loss, val_acc = evaluate(self.model, self.val, self.spec)
        else:
            val_loss, val_acc = evaluate(self.model, self.val, self.spec)
        if doctor is not None:
            train_acc = self._train_accuracy(doctor)
            doctor.observe_eval(val_loss=val_loss, train_loss=train_loss, val_accuracy=val_acc,
                                train_accuracy=train_acc, step=step)

    def _train_accuracy(self, doctor: Any) -> float:
        sample = self.train.subset(torch.arange(min(64, len(self.train))))
        if self.spec.eval_bracket == "context":
            with doctor.evaluation():
                return evaluate(self.model, sample, self.spec)[1]
        return evaluate(self.model, sample, self.spec)[1]


def _run_loop(spec: Spec, model: nn.Module, optimizer: torch.optim.Optimizer, train: Split,
              val: Split, doctor: Any, run: Run) -> None:
    import time

    stream = batches(train, spec, epoch_seed=spec.seed)
    evaluator = _Evaluator(spec, model, train, val)
    model.train(not spec.train_in_eval_mode)  # the fault knob: a loop that never calls model.train()
    window: list[float] = []
    for step in range(spec.steps):
        started = time.perf_counter()
        if spec.recreate_optimizer_every and step and step % spec.recreate_optimizer_every == 0:
            optimizer = build_optimizer(spec, model)  # noqa: FTD132 — the fault knob: Adam state lost
            run.optimizer = optimizer
            if doctor is not None:
                doctor.add_optimizer(optimizer)
        if spec.nan_at_step == step:
            _inject_nan(model, spec.nan_module)
        _clear_grads(spec, model, optimizer)
        for _ in range(spec.accumulation_steps):
            loss, _ = compute_loss(model, next(stream), spec)
            scaled = loss * spec.loss_scale_growth**step / spec.accumulation_steps
            scaled.backward()
            window.append(loss.item())
        optimizer.step()
        run.step_seconds.append(time.perf_counter() - started)
        run.losses.append(sum(window[-spec.accumulation_steps :]) / spec.accumulation_steps)
        if spec.eval_every and (step + 1) % spec.eval_every == 0:
            evaluator(doctor, step + 1, sum(window) / len(window))
            window = []


def train(spec: Spec | None = None, **knobs: Any) -> Run:
    """Run the configured fine-tune (under ``ftdoctor.watch`` unless ``watch=False``).

    Exceptions raised by the training loop (e.g. a frozen model's backward) are
    recorded on the doctor and kept in ``Run.error``; they are not re-raised.
    """
    spec = spec or Spec(**knobs)
    torch.set_num_threads(1)
    torch.manual_seed(spec.seed)
    model = build_model(spec)
    optimizer = build_optimizer(spec, model)
    train_split, val_split = make_datasets(spec)
    run = Run(doctor=None, model=model, optimizer=optimizer, losses=[], step_seconds=[])
    if not spec.watch:
        _run_loop(spec, model, optimizer, train_split, val_split, None, run)
        return run
    watch_kwargs: dict[str, Any] = {"num_labels": spec.num_labels}
    if spec.give_datasets:
        watch_kwargs["train_data"] = LabelledData(texts=train_split.texts, labels=train_split.labels.tolist(), name="train")
        watch_kwargs["val_data"] = LabelledData(texts=val_split.texts, labels=val_split.labels.tolist(), name="validation")
    watch_kwargs.update(spec.doctor_kwargs)
    with ftdoctor.watch(model, optimizer, **watch_kwargs) as doctor:
        run.doctor = doctor
        try:
            _run_loop(spec, model, optimizer, train_split, val_split, doctor, run)
        except Exception as exc:  # the run crashed; the doctor may explain why
            doctor.record_exception(exc)
            run.error = exc
    return run


# --- the same fine-tune through the transformers Trainer ------------------------------------------


class _TokenDataset(torch.utils.data.Dataset):
    def __init__(self, split: Split) -> None:
        self.split = split

    def __len__(self) -> int:
        return len(self.split)

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        return {
            "input_ids": self.split.input_ids[index],
            "attention_mask": self.split.attention_mask[index],
            "labels": self.split.labels[index],
        }


def train_with_trainer(output_dir: Any, spec: Spec | None = None, **knobs: Any) -> Any:
    """Fine-tune through ``transformers.Trainer`` with a ``DoctorCallback``; returns the callback.

    Honoured knobs: seed, dataset, n_train, n_val, batch_size, steps, lr,
    accumulation_steps, eval_every, orphan_head, freeze_encoder, nan_at_step
    (0 only: the weight is poisoned before training), doctor_kwargs.
    """
    from transformers import Trainer, TrainingArguments

    from ftdoctor.integrations import DoctorCallback

    spec = spec or Spec(**knobs)
    torch.set_num_threads(1)
    model = build_model(spec)
    if spec.nan_at_step is not None:
        _inject_nan(model, spec.nan_module)
    train_split, val_split = make_datasets(spec)
    args = TrainingArguments(
        output_dir=str(output_dir),
        max_steps=spec.steps,
        per_device_train_batch_size=spec.batch_size,
        per_device_eval_batch_size=spec.batch_size,
        gradient_accumulation_steps=spec.accumulation_steps,
        learning_rate=spec.lr,
        eval_strategy="steps" if spec.eval_every else "no",
        eval_steps=spec.eval_every or None,
        logging_steps=5,
        save_strategy="no",
        report_to=[],
        use_cpu=True,
        disable_tqdm=True,
        seed=spec.seed,
        dataloader_num_workers=0,
    )
    callback = DoctorCallback(**{"num_labels": spec.num_labels, **spec.doctor_kwargs})
    trainer = Trainer(
        model=model,
        args=args,
        train_dataset=_TokenDataset(train_split),
        eval_dataset=_TokenDataset(val_split),
        callbacks=[callback],
    )
    trainer.train()
    return callback


def assert_caught_within_window(slug: str, knobs: dict[str, Any], window: int) -> None:
    """The seeded fault ``knobs`` makes ``slug`` fire by step ``window``, with evidence, fix and message."""
    run = train(Spec(**knobs))
    assert slug in run.slugs, f"{slug} missed; found {sorted(run.slugs)}"
    finding = run.finding(slug)
    assert finding.step is not None and finding.step <= window
    assert finding.evidence and finding.fix and finding.message
    assert not run.doctor.internal_errors


def assert_clean_twin_silent(slug: str, knobs: dict[str, Any]) -> None:
    """The clean look-alike ``knobs`` gives no ``slug`` and nothing at warning or above."""
    run = train(Spec(**knobs))
    assert slug not in run.slugs
    assert run.loud() == [], [f.message for f in run.loud()]
