"""Seeded faults for the 0.2 runtime rules (each caught in its window, each clean twin silent) and
one fault, one root cause: symptoms folded under the finding that explains them."""

from __future__ import annotations

from typing import Any

import pytest
from harness import Spec, assert_caught_within_window, assert_clean_twin_silent, train

from ftdoctor.catalogue import make_finding
from ftdoctor.findings import Report
from ftdoctor.runtime.causes import fold_symptoms

#: rule -> (the fault's knobs, the latest step at which it must be established)
FAULTS: dict[str, tuple[dict[str, Any], int]] = {
    "weight-decay-out-of-range": ({"weight_decay": 64.0, "steps": 3}, 0),
    # class weights that give one class no say in the loss (the labels reach only the loss: external loss)
    "prediction-collapse": ({"class_weights": (1.0, 0.0), "steps": 100, "eval_every": 20}, 100),
    "eval-nondeterministic": ({"always_dropout": True, "steps": 10, "eval_every": 5}, 5),
    # PEFT without task_type: only adapters (here: one encoder layer) train, the new head stays frozen
    "random-init-not-pretrained": ({"checkpoint": "config", "steps": 3}, 0),
    "missing-train-mode": ({"train_in_eval_mode": True, "steps": 5}, 3),
    "missing-attention-mask": ({"padded": True, "no_attention_mask": True, "steps": 3}, 0),
    "optimizer-recreated-in-loop": ({"recreate_optimizer_every": 3, "steps": 5}, 3),
    "head-not-trained": ({"checkpoint": "encoder", "lr": 1e-4, "train_only": ("bert.encoder.layer.1.",), "steps": 3}, 0),
}

#: look-alikes of each fault that are correct and must stay silent (at warning or above)
CLEAN_TWINS: dict[str, list[dict[str, Any]]] = {
    "weight-decay-out-of-range": [
        {"weight_decay": 0.1, "steps": 3},
        {"weight_decay": 1.0, "steps": 3},  # the grokking recipe's decay at lr 1e-3
        {"optimizer": "sgd", "lr": 0.05, "weight_decay": 5e-4, "steps": 3},
    ],
    "prediction-collapse": [
        {"steps": 100, "eval_every": 20},  # one class up to step ~40 (nothing learned yet), then several
        {"steps": 60, "eval_every": 10, "num_labels": 3, "dataset": "majority"},
        {"class_weights": (1.0, 2.0), "steps": 100, "eval_every": 20},  # weighted, but every class counts
    ],
    "optimizer-recreated-in-loop": [
        {"recreate_optimizer_every": 3, "optimizer": "sgd", "lr": 0.05, "steps": 5},  # plain SGD keeps no state
    ],
    "missing-attention-mask": [
        {"padded": True, "steps": 3},
        {"no_attention_mask": True, "steps": 3},  # nothing padded: a mask would change nothing
    ],
    "missing-train-mode": [
        {"steps": 5},
        {"steps": 6, "eval_every": 1},  # model.eval() for every evaluation, model.train() after it
        {"checkpoint": "encoder", "lr": 1e-4, "steps": 5},
    ],
    "random-init-not-pretrained": [
        {"checkpoint": "encoder", "lr": 1e-4, "steps": 3},
        {"steps": 3},  # a small model trained from scratch on purpose: custom sizes, no checkpoint anywhere
    ],
    "head-not-trained": [
        {"checkpoint": "encoder", "lr": 1e-4, "train_only": ("bert.encoder.layer.1.", "classifier."), "steps": 3},
        {"checkpoint": "encoder", "lr": 1e-4, "freeze_encoder": True, "steps": 3},
        {"checkpoint": "encoder", "lr": 1e-4, "steps": 3},
        {"train_only": ("bert.encoder.layer.1.",), "steps": 3},  # random init, not from a checkpoint
    ],
    "eval-nondeterministic": [
        {"steps": 10, "eval_every": 5},
        {"steps": 10, "eval_every": 5, "eval_bracket": "context"},
    ],
}


@pytest.mark.parametrize("slug", sorted(FAULTS))
def test_fault_is_caught_within_its_window(slug: str) -> None:
    assert_caught_within_window(slug, *FAULTS[slug])


@pytest.mark.parametrize(("slug", "knobs"), [(slug, knobs) for slug, twins in CLEAN_TWINS.items() for knobs in twins])
def test_clean_twin_is_silent(slug: str, knobs: dict[str, Any]) -> None:
    assert_clean_twin_silent(slug, knobs)


# --- weight decay vs learning rate ------------------------------------------------------------------


def test_a_huge_weight_decay_is_blamed_on_weight_decay_not_the_lr() -> None:
    """Pretrained weights at lr 1e-4: the lr alone moves them ~0.5% per step (under lr-too-high's 1%), the
    decay of 100 another 1%; only the decay is to blame."""
    run = train(Spec(checkpoint="encoder", lr=1e-4, weight_decay=100.0, steps=12))
    finding = run.finding("weight-decay-out-of-range")
    assert [f.rule for f in run.loud()] == ["weight-decay-out-of-range"] and finding.related == ()
    assert finding.evidence["decay_pull"] > 1 and finding.evidence["decay_per_step"] == pytest.approx(0.01)


def test_lr_times_weight_decay_of_one_zeroes_or_flips_the_weights() -> None:
    finding = train(Spec(optimizer="sgd", lr=0.5, weight_decay=4.0, steps=2)).finding("weight-decay-out-of-range")
    assert "zeroing or flipping" in finding.message


# --- prediction-collapse ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("predicted", "labelled", "collapsed"),
    [
        ([64, 0], [30, 34], True),
        ([62, 2], [30, 34], True),  # nearly all
        ([60, 4], [58, 6], False),  # faithful to imbalanced labels
        ([56, 8], [30, 34], False),
        ([20, 0], [10, 10], False),  # too few examples to say
        ([64, 0], [64, 0], False),  # one class in the labels too
    ],
)
def test_what_counts_as_a_collapsed_evaluation(predicted: list[int], labelled: list[int], collapsed: bool) -> None:
    from ftdoctor.runtime.options import DoctorOptions
    from ftdoctor.runtime.rules.prediction_collapse import _collapse

    assert (_collapse(predicted, labelled, DoctorOptions()) is not None) == collapsed


def _evaluate(rule: Any, step: int, predictions: list[int], labels: list[int]) -> None:
    import torch

    from ftdoctor.runtime.events import EvalPass, ForwardDone

    logits = torch.nn.functional.one_hot(torch.tensor(predictions), 2).float()
    rule.on_forward(ForwardDone(step, "eval", logits, None, torch.tensor(labels), False, False))
    rule.on_eval_pass(EvalPass(step, 1, 0, 0, True))


@pytest.mark.parametrize(("first", "fires"), [
    ([0, 1] * 32, True),  # learned (accuracy 1.0), then collapsed: a regression, reported before step 100
    ([0, 0, 1, 1] * 16, False),  # mixed but at chance: a random head's noise, not learning
])
def test_a_collapse_after_learning_is_reported_at_once(first: list[int], fires: bool) -> None:
    from ftdoctor.runtime.options import DoctorOptions
    from ftdoctor.runtime.rules.prediction_collapse import PredictionCollapse

    rule = PredictionCollapse(DoctorOptions())
    labels = [0, 1] * 32
    _evaluate(rule, 10, first, labels)
    _evaluate(rule, 20, [0] * 64, labels)
    _evaluate(rule, 30, [0] * 64, labels)
    assert rule.fired == fires
    if fires:
        assert rule.findings[0].step == 30 and rule.findings[0].evidence["collapsed_evaluations"] == 2


# --- eval-nondeterministic ------------------------------------------------------------------


def test_the_replay_leaves_the_users_random_stream_alone() -> None:
    import torch

    from ftdoctor.settings import Settings

    streams = []
    for ignored in ([], ["eval-nondeterministic"]):  # with and without the replay
        run = train(Spec(steps=5, eval_every=5, always_dropout=True, doctor_kwargs={"settings": Settings(ignore=ignored)}))
        assert ("eval-nondeterministic" in run.slugs) == (not ignored)
        streams.append(torch.rand(3))  # the user's next draws are the same either way
    assert torch.equal(*streams)


def test_one_replay_per_run_and_none_for_a_train_mode_evaluation() -> None:
    import ftdoctor.runtime.doctor as doctor_module

    calls = []
    original = doctor_module.Doctor._replay_eval

    def counting(self: Any, *args: Any) -> None:
        calls.append(1)
        original(self, *args)

    doctor_module.Doctor._replay_eval = counting  # type: ignore[method-assign]
    try:
        train(Spec(steps=20, eval_every=5))
        assert len(calls) == 1
        run = train(Spec(steps=10, eval_every=5, eval_without_eval_mode=True))
        assert len(calls) == 1 and "dropout-in-eval" in run.slugs
    finally:
        doctor_module.Doctor._replay_eval = original  # type: ignore[method-assign]


# --- head-not-trained -----------------------------------------------------------------------


def test_head_not_trained_names_the_new_head_and_explains_its_absence_from_the_optimizer() -> None:
    run = train(Spec(checkpoint="encoder", lr=1e-4, head_not_in_optimizer=True, steps=3))
    finding = run.finding("head-not-trained")
    assert finding.evidence["not_in_optimizer"] == ["classifier.weight", "classifier.bias"]
    assert [f.rule for f in finding.related] == ["params-not-in-optimizer"]
    assert [f.rule for f in run.findings] == ["head-not-trained"]


def test_the_checkpoints_mark_survives_peft_style_wrapping() -> None:
    """A LoRA-style wrapper keeps the loaded layer as ``base_layer`` and adds adapter weights after loading."""
    import torch
    from harness import build_model

    from ftdoctor.runtime.rules._checkpoints import pretrained_parts

    class LoraLinear(torch.nn.Module):
        def __init__(self, base: torch.nn.Linear) -> None:
            super().__init__()
            self.base_layer = base
            self.lora_A = torch.nn.ModuleDict({"default": torch.nn.Linear(base.in_features, 2, bias=False)})

    model = build_model(Spec(checkpoint="encoder"))
    query = model.bert.encoder.layer[0].attention.self
    query.query = LoraLinear(query.query)
    (part,) = pretrained_parts(model)
    assert part.new == ["classifier.weight", "classifier.bias"]
    assert "bert.encoder.layer.0.attention.self.query.base_layer.weight" in part.loaded


# --- dead-parameters: unused vs used under no_grad ------------------------------------------------


def _feature_extractor_run(under_no_grad: bool, call_extractor: bool = True) -> Any:
    import contextlib

    import torch

    import ftdoctor
    from harness import tiny_bert

    class Probe(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.extractor = tiny_bert().bert
            self.head = torch.nn.Linear(32, 2)

        def forward(self, input_ids: torch.Tensor) -> torch.Tensor:
            if not call_extractor:
                return self.head(torch.ones(input_ids.shape[0], 32))
            with torch.no_grad() if under_no_grad else contextlib.nullcontext():
                features = self.extractor(input_ids=input_ids).pooler_output
            return self.head(features.detach())

    torch.manual_seed(0)
    model = Probe()
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)  # the extractor too, requires_grad left on
    with ftdoctor.watch(model, optimizer) as doctor:
        for _ in range(5):
            optimizer.zero_grad()
            logits = model(torch.randint(5, 200, (8, 12)))
            torch.nn.functional.cross_entropy(logits, torch.randint(0, 2, (8,))).backward()
            optimizer.step()
    return next((f for f in doctor.findings if f.rule == "dead-parameters"), None)


def test_a_feature_extractor_run_under_no_grad_on_purpose_is_not_dead() -> None:
    assert _feature_extractor_run(under_no_grad=True) is None


def _run_user_script(name: str) -> Any:
    """fixtures/user_scripts/<name>, run the way `ftdoctor run script.py` runs it."""
    from pathlib import Path

    from ftdoctor.runner.script import diagnose_script

    return diagnose_script(Path(__file__).resolve().parents[2] / "fixtures" / "user_scripts" / name, [])


def _loud_rules(report: Any) -> list[str]:
    return [f.rule for f in report.findings if f.severity.value in ("warning", "error")]


def test_the_linear_probe_script_is_not_told_its_extractor_is_unused() -> None:
    report = _run_user_script("frozen_extractor_no_grad.py")
    assert report.steps == 24 and _loud_rules(report) == []


@pytest.mark.parametrize(("script", "root_cause"), [
    ("trainer_new_head_frozen.py", "head-not-trained"),
    ("encoder_from_checkpoint_config.py", "random-init-not-pretrained"),
])
def test_issue_11_user_scripts_get_their_root_cause(script: str, root_cause: str) -> None:
    report = _run_user_script(script)
    assert _loud_rules(report) == [root_cause]
    assert next(f for f in report.findings if f.rule == root_cause).step == 0


@pytest.mark.parametrize(("under_no_grad", "call_extractor", "says"), [
    (False, True, "their modules run, but nothing they compute reaches the loss"),  # output detached
    (False, False, "the forward never uses them"),
])
def test_dead_parameters_says_why(under_no_grad: bool, call_extractor: bool, says: str) -> None:
    finding = _feature_extractor_run(under_no_grad, call_extractor)
    assert finding is not None and says in finding.message


# --- optimizer-recreated-in-loop ---------------------------------------------------------------


def test_a_second_phase_over_more_parameters_is_not_a_rebuild() -> None:
    """Head first (frozen encoder), then a new optimizer once the encoder is unfrozen: deliberate."""
    import torch

    import ftdoctor
    from harness import tiny_bert

    model = tiny_bert()
    head = torch.optim.AdamW(model.classifier.parameters(), lr=1e-3)
    with ftdoctor.watch(model, head) as doctor:
        for optimizer in (head, torch.optim.AdamW(model.parameters(), lr=1e-4)):
            doctor.add_optimizer(optimizer)
            for _ in range(2):
                optimizer.zero_grad()
                model(input_ids=torch.randint(5, 200, (8, 12)), labels=torch.randint(0, 2, (8,))).loss.backward()
                optimizer.step()
    assert "optimizer-recreated-in-loop" not in {f.rule for f in doctor.findings}


# --- missing-attention-mask ---------------------------------------------------------------------


@pytest.mark.parametrize("call", ["kwargs", "batch-dict", "positional"])
def test_padding_without_a_mask_is_seen_however_the_ids_are_passed(call: str) -> None:
    import torch

    import ftdoctor
    from harness import tiny_bert

    model = tiny_bert()
    ids = torch.randint(5, 200, (4, 10))
    ids[:2, 7:] = 0  # right padding
    with ftdoctor.watch(model, torch.optim.AdamW(model.parameters())) as doctor:
        if call == "kwargs":
            model(input_ids=ids)
        elif call == "batch-dict":
            model(**{"input_ids": ids})
        else:
            model(ids)
    finding = next(f for f in doctor.findings if f.rule == "missing-attention-mask")
    assert finding.evidence["padded_rows"] == 2


def _wrapper_around_bert(passes_mask: bool) -> Any:
    """Your own nn.Module: gets (ids, mask) and calls the BERT inside it, with or without the mask."""
    import torch
    from transformers import BertConfig, BertModel

    class Classifier(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.bert = BertModel(BertConfig(vocab_size=200, hidden_size=32, num_hidden_layers=1,
                                             num_attention_heads=2, intermediate_size=64, pad_token_id=0))
            self.head = torch.nn.Linear(32, 2)

        def forward(self, ids: Any, mask: Any) -> Any:
            out = self.bert(ids, attention_mask=mask) if passes_mask else self.bert(ids)  # the bug: mask dropped
            return self.head(out.last_hidden_state[:, 0])

    return Classifier()


@pytest.mark.parametrize("passes_mask", [False, True])
def test_a_wrapper_that_drops_the_mask_before_its_bert_is_seen(passes_mask: bool) -> None:
    import torch

    import ftdoctor

    torch.manual_seed(0)
    model = _wrapper_around_bert(passes_mask)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
    ids = torch.randint(5, 200, (4, 10))
    ids[:2, 7:] = 0  # right padding
    mask = (ids != 0).long()
    with ftdoctor.watch(model, optimizer) as doctor:
        for _ in range(3):
            optimizer.zero_grad()
            torch.nn.functional.cross_entropy(model(ids, mask), torch.tensor([0, 1, 0, 1])).backward()
            optimizer.step()
    found = [f for f in doctor.findings if f.rule == "missing-attention-mask"]
    if passes_mask:
        assert found == []
    else:
        assert len(found) == 1 and found[0].evidence["padded_rows"] == 2 and found[0].step == 0
    assert not model.bert._forward_pre_hooks  # the rule's hook is gone with its window


def test_no_pad_id_in_the_config_or_pad_equal_to_eos_is_silent() -> None:
    import torch

    import ftdoctor
    from harness import tiny_bert

    for pad, eos in ((None, None), (2, 2)):  # noqa: FTD112 — not an evaluation loop (static false alarm)
        model = tiny_bert()
        model.config.pad_token_id, model.config.eos_token_id = pad, eos
        ids = torch.randint(5, 200, (4, 10))
        ids[:, -1] = 2
        with ftdoctor.watch(model, torch.optim.AdamW(model.parameters())) as doctor:
            model(input_ids=ids)
        assert doctor.findings == []


# --- missing-train-mode -------------------------------------------------------------------------


def _train_wrapper(call_train_on_encoder: bool, dropout: float = 0.1) -> Any:
    """Your own nn.Module (train mode by default) around a from_pretrained encoder (eval mode)."""
    import torch
    from transformers import BertModel
    from transformers.utils import logging as hf_logging

    import ftdoctor
    from harness import pretrained_encoder

    hf_logging.set_verbosity_error()

    class Classifier(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.encoder = BertModel.from_pretrained(pretrained_encoder(), hidden_dropout_prob=dropout,
                                                     attention_probs_dropout_prob=dropout)
            self.dropout = torch.nn.Dropout(0.1)
            self.head = torch.nn.Linear(32, 2)

        def forward(self, input_ids: torch.Tensor) -> torch.Tensor:
            return self.head(self.dropout(self.encoder(input_ids=input_ids).pooler_output))

    torch.manual_seed(0)
    model = Classifier()
    if call_train_on_encoder:
        model.train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4)
    with ftdoctor.watch(model, optimizer) as doctor:
        for _ in range(4):
            optimizer.zero_grad()
            logits = model(torch.randint(5, 200, (8, 12)))
            torch.nn.functional.cross_entropy(logits, torch.randint(0, 2, (8,))).backward()
            optimizer.step()
    return doctor


def test_a_pretrained_encoder_left_in_eval_mode_inside_a_wrapper_is_caught() -> None:
    finding = next(f for f in _train_wrapper(False).findings if f.rule == "missing-train-mode")
    assert finding.message.startswith("`encoder` (BertModel) was trained in eval mode")
    assert finding.step is not None and finding.step <= 3


@pytest.mark.parametrize(("call_train", "dropout"), [(True, 0.1), (False, 0.0)])
def test_train_mode_or_no_dropout_is_silent(call_train: bool, dropout: float) -> None:
    assert "missing-train-mode" not in {f.rule for f in _train_wrapper(call_train, dropout).findings}


# --- random-init-not-pretrained ------------------------------------------------------------------


def _doctor_at_preflight(model: Any, tokenizer: Any = None) -> Any:
    import torch

    import ftdoctor

    with ftdoctor.watch(model, torch.optim.AdamW(model.parameters()), tokenizer=tokenizer) as doctor:
        doctor.observe_batch({"labels": torch.tensor([0, 1])})  # the pre-flight runs here
    return doctor


def _small_default_bert_config() -> Any:
    from transformers import BertConfig

    class SmallBertConfig(BertConfig):
        def __init__(self, hidden_size: int = 32, num_hidden_layers: int = 1, num_attention_heads: int = 2,
                     intermediate_size: int = 64, vocab_size: int = 200, **kwargs: Any) -> None:
            super().__init__(hidden_size=hidden_size, num_hidden_layers=num_hidden_layers, vocab_size=vocab_size,
                             num_attention_heads=num_attention_heads, intermediate_size=intermediate_size, **kwargs)

    return SmallBertConfig


def _pretrained_tokenizer(tmp_path: Any) -> Any:
    from transformers import AutoTokenizer

    from ftdoctor.runner.models import build_word_tokenizer

    build_word_tokenizer(["a tiny corpus"]).save_pretrained(tmp_path)
    return AutoTokenizer.from_pretrained(tmp_path)


def test_a_default_sized_model_with_a_pretrained_tokenizer_fires(tmp_path: Any) -> None:
    """``BertForSequenceClassification(BertConfig())`` next to ``AutoTokenizer.from_pretrained(ckpt)``."""
    from transformers import BertForSequenceClassification

    model = BertForSequenceClassification(_small_default_bert_config()())
    tokenizer = _pretrained_tokenizer(tmp_path)
    finding = next(f for f in _doctor_at_preflight(model, tokenizer).findings)
    assert finding.rule == "random-init-not-pretrained" and finding.evidence["tokenizer_from"] == str(tmp_path)
    custom = BertForSequenceClassification(_small_default_bert_config()(hidden_size=16))
    assert _doctor_at_preflight(custom, tokenizer).findings == []  # sizes chosen on purpose: from scratch


def test_weights_loaded_with_load_state_dict_are_not_random() -> None:
    from transformers import AutoConfig, BertForSequenceClassification, BertModel

    from harness import pretrained_encoder

    directory = pretrained_encoder()
    model = BertForSequenceClassification(AutoConfig.from_pretrained(directory))
    model.bert.load_state_dict(BertModel.from_pretrained(directory).state_dict())
    assert _doctor_at_preflight(model).findings == []
    assert [f.rule for f in _doctor_at_preflight(BertForSequenceClassification(
        AutoConfig.from_pretrained(directory))).findings] == ["random-init-not-pretrained"]


# --- folding ---------------------------------------------------------------------------------------


def test_a_loss_swing_from_label_sorted_batches_is_unshuffled_batches_not_the_lr() -> None:
    """lr 3e-3 is a clean rate for the tiny model (no lr-too-high when shuffled); sorted batches make the loss swing."""
    assert train(Spec(steps=60, lr=3e-3)).loud() == []
    run = train(Spec(sorted_data=True, steps=60, eval_every=10, lr=3e-3))
    (root,) = run.loud()
    assert root.rule == "unshuffled-batches"
    # the symptoms, when their rules fire at all, are listed under the root cause, never beside it
    assert {f.rule for f in root.related} <= {"lr-too-high", "prediction-collapse", "overfitting-gap"}
    rendered = run.doctor.report().to_dict()["findings"][0]
    assert root.related and [f["rule"] for f in rendered["related"]] == [f.rule for f in root.related]  # JSON shows them


def _finding(slug: str, step: int) -> Any:
    return make_finding(slug, f"{slug} message", "fix", step=step, evidence={})


def test_symptoms_fold_under_their_root_cause_and_chains_flatten() -> None:
    explained = {("unshuffled-batches", "lr-too-high"), ("lr-too-high", "exploding-gradients")}
    findings = [_finding("lr-too-high", 10), _finding("unshuffled-batches", 2), _finding("exploding-gradients", 12),
                _finding("dead-parameters", 3)]
    folded = fold_symptoms(findings, lambda root, symptom: (root.rule, symptom.rule) in explained)
    assert [f.rule for f in folded] == ["unshuffled-batches", "dead-parameters"]
    assert {f.rule for f in folded[0].related} == {"lr-too-high", "exploding-gradients"}
    data = Report(mode="run", findings=folded).to_dict()
    assert [r["rule"] for r in data["findings"][0]["related"]] in (
        ["lr-too-high", "exploding-gradients"], ["exploding-gradients", "lr-too-high"])
    assert data["summary"] == {"error": 1, "warning": 1, "info": 0}  # symptoms are not counted twice


def test_findings_that_explain_each_other_both_stay() -> None:
    findings = [_finding("lr-too-high", 10), _finding("unshuffled-batches", 2)]
    assert fold_symptoms(findings, lambda root, symptom: True) == findings


def test_text_and_html_show_the_related_symptoms() -> None:
    from ftdoctor.report.html import render_html
    from ftdoctor.report.text import render

    root = _finding("unshuffled-batches", 2).with_related(_finding("lr-too-high", 10))
    report = Report(mode="run", findings=[root])
    assert "related: FTD202 lr-too-high (step 10): lr-too-high message" in render(report)
    assert "lr-too-high message" in render_html(report)
