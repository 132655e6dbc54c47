"""The data/label runtime rules: seeded faulty tiny runs and their clean twins, plus
event-fed unit tests of the edge cases (each rule fed the events the doctor publishes)."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest
import torch
from torch import nn

from ftdoctor.runtime.events import (
    BatchSeen,
    DatasetsSeen,
    ForwardDone,
    LabelledData,
    LossInput,
    Preflight,
)
from ftdoctor.runtime.options import DoctorOptions
from ftdoctor.runtime.rule import RuntimeRule
from ftdoctor.runtime.rules.class_imbalance import ClassImbalance
from ftdoctor.runtime.rules.head_output_mismatch import HeadOutputMismatch
from ftdoctor.runtime.rules.label_count_mismatch import LabelCountMismatch
from ftdoctor.runtime.rules.label_out_of_range import LabelOutOfRange
from ftdoctor.runtime.rules.label_type_mismatch import LabelTypeMismatch
from ftdoctor.runtime.rules.softmax_before_loss import SoftmaxBeforeLoss
from ftdoctor.runtime.rules.train_val_overlap import TrainValOverlap, normalise
from ftdoctor.runtime.rules.unshuffled_batches import UnshuffledBatches

DATA_RULES = {
    "label-out-of-range",
    "label-count-mismatch",
    "label-type-mismatch",
    "class-imbalance",
    "head-output-mismatch",
    "train-val-overlap",
    "unshuffled-batches",
    "softmax-before-loss",
}

# --- event feeding -------------------------------------------------------------------

HANDLERS = {
    Preflight: "on_preflight",
    DatasetsSeen: "on_datasets",
    BatchSeen: "on_batch",
    ForwardDone: "on_forward",
    LossInput: "on_loss_input",
}


def feed(rule: RuntimeRule, *events: Any) -> RuntimeRule:
    for event in events:
        handler = getattr(rule, HANDLERS[type(event)], None)
        if handler is not None:
            handler(event)
    return rule


def make(rule_class: type[RuntimeRule]) -> RuntimeRule:
    return rule_class(DoctorOptions())


class SeqClassifier(nn.Module):
    """Stands in for a transformers ``*ForSequenceClassification`` (the class name is what counts)."""

    def __init__(self, num_labels: int = 2, problem_type: str | None = None, hidden: int = 32) -> None:
        super().__init__()
        self.config = SimpleNamespace(num_labels=num_labels, problem_type=problem_type, hidden_size=hidden,
                                      vocab_size=200)
        self.classifier = nn.Linear(hidden, num_labels)


class BertForSequenceClassification(SeqClassifier):
    pass


class BertForTokenClassification(SeqClassifier):
    pass


class BertForMaskedLM(SeqClassifier):
    pass


class GPT2LMHeadModel(SeqClassifier):
    pass


class BertForMultipleChoice(SeqClassifier):
    pass


class CustomClassifier(nn.Module):
    """A user's own model: no transformers config."""


class MultiTaskModel(SeqClassifier):
    """A custom model with a transformers-style config (vocabulary of 200) and an auxiliary MLM loss."""


def preflight(model: nn.Module | None = None, num_labels: int | None = 2, hidden_size: int | None = 32,
              train: LabelledData | None = None, val: LabelledData | None = None) -> Preflight:
    return Preflight(model or CustomClassifier(), [], num_labels, hidden_size, train, val)


def batch(labels: Any, step: int = 0, phase: str = "train") -> BatchSeen:
    tensor = labels if isinstance(labels, torch.Tensor) else torch.tensor(labels)
    return BatchSeen(step, phase, tensor, len(tensor))


def forward(logits: torch.Tensor, labels: Any = None, loss: Any = None, step: int = 0) -> ForwardDone:
    return ForwardDone(step, "train", logits, loss, labels, training=True, grad_enabled=True)


def labelled(labels: list[Any], texts: list[str] | None = None, name: str = "train") -> LabelledData:
    return LabelledData(texts=texts, labels=labels, name=name)


def stream(labels: list[int], size: int, start_step: int = 0) -> list[BatchSeen]:
    """Consecutive training batches of ``size`` labels, one optimizer step each."""
    return [batch(labels[i : i + size], step=start_step + i // size) for i in range(0, len(labels) - size + 1, size)]


def shuffled(counts: dict[int, int], seed: int = 0) -> list[int]:
    labels = torch.tensor([label for label, n in counts.items() for _ in range(n)])
    return labels[torch.randperm(len(labels), generator=torch.Generator().manual_seed(seed))].tolist()


def only(rule: RuntimeRule) -> Any:
    assert len(rule.findings) == 1, rule.findings
    return rule.findings[0]


# --- seeded faults on the tiny-BERT harness ---------------------------------------------


FAULTS = [
    # (rule, fault knobs, latest step it must be established at)
    ("label-out-of-range", dict(label_shift=1), 0),
    ("label-out-of-range", dict(data_classes=3), 0),
    ("label-count-mismatch", dict(num_labels=3, data_classes=2, give_datasets=True), 0),
    ("label-count-mismatch", dict(num_labels=3, data_classes=2, steps=40), 40),
    ("label-type-mismatch", dict(float_labels=True), 0),
    ("label-type-mismatch", dict(one_hot_labels=True), 0),
    ("class-imbalance", dict(imbalance=0.95, give_datasets=True), 0),
    ("class-imbalance", dict(imbalance=0.95, steps=40), 40),
    ("head-output-mismatch", dict(head_width=3), 0),
    ("head-output-mismatch", dict(head_width=3, external_loss=True), 0),
    ("train-val-overlap", dict(val_overlap=0.1, give_datasets=True), 0),
    ("unshuffled-batches", dict(sorted_data=True, give_datasets=True), 2),
    ("unshuffled-batches", dict(sorted_data=True), 12),
    ("softmax-before-loss", dict(softmax_before_loss=True), 0),
]


@pytest.mark.parametrize(("slug", "knobs", "window"), FAULTS, ids=[f"{s}-{i}" for i, (s, _, _) in enumerate(FAULTS)])
def test_seeded_fault_is_caught_in_its_window_as_the_one_data_finding(slug: str, knobs: dict[str, Any],
                                                                      window: int) -> None:
    from harness import train

    run = train(seed=1, **knobs)
    data_findings = [f for f in run.findings if f.rule in DATA_RULES]
    assert [f.rule for f in data_findings] == [slug], data_findings
    finding = data_findings[0]
    assert finding.step is not None and finding.step <= window
    assert finding.evidence and finding.fix
    if run.error is not None:  # the crash the finding foretold is explained by it
        assert any(rule.explains(run.error) for rule in run.doctor.rules if rule.slug == slug), run.error


CLEAN_TWINS = [
    dict(label_shift=0),
    dict(num_labels=3, data_classes=3, give_datasets=True),
    dict(num_labels=3, data_classes=3, steps=40),
    dict(imbalance=0.6, give_datasets=True),
    dict(imbalance=0.6, steps=40),
    dict(external_loss=True),
    dict(give_datasets=True, eval_every=10),
]


@pytest.mark.parametrize("knobs", CLEAN_TWINS)
def test_clean_twin_stays_silent(knobs: dict[str, Any]) -> None:
    from harness import train

    run = train(seed=1, **knobs)
    assert run.error is None
    assert not [f for f in run.findings if f.rule in DATA_RULES]


@pytest.mark.parametrize("seed", range(5))
@pytest.mark.parametrize("dataset", ["keyword", "majority"])
def test_clean_runs_across_seeds_raise_no_data_finding(seed: int, dataset: str) -> None:
    from harness import train

    variants = [dict(give_datasets=True), dict(batch_size=1, steps=24), dict(accumulation_steps=2, freeze_encoder=True)]
    run = train(seed=seed, dataset=dataset, **variants[seed % len(variants)])
    assert run.error is None
    assert not [f for f in run.findings if f.rule in DATA_RULES]


# --- shared label helpers ---------------------------------------------------------------


class OnAccelerator(torch.Tensor):
    """A CPU tensor that claims to live on an accelerator, to exercise the host-copy cache."""

    @property
    def device(self) -> torch.device:  # type: ignore[override]
        return torch.device("cuda")


def test_one_host_copy_per_batch_and_never_a_stale_one() -> None:
    from ftdoctor.runtime.rules._labels import host_labels

    labels = torch.tensor([0, 1, 1]).as_subclass(OnAccelerator)
    first = host_labels(labels)
    assert host_labels(labels) is first  # every rule reads the same copy of this batch
    labels.add_(1)  # changed in place: a new copy
    assert host_labels(labels).tolist() == [1, 2, 2]
    del labels, first
    following = torch.tensor([5, 5, 5]).as_subclass(OnAccelerator)  # may reuse the freed id and memory
    assert host_labels(following).tolist() == [5, 5, 5]


# --- label-out-of-range --------------------------------------------------------------


def test_out_of_range_batch_is_reported_before_the_forward_with_evidence() -> None:
    rule = feed(make(LabelOutOfRange), preflight(num_labels=2), batch([0, 1, 2, 2], step=3))
    finding = only(rule)
    assert finding.step == 3
    assert finding.evidence["max_label"] == 2 and finding.evidence["out_of_range"] == 2
    assert finding.evidence["num_labels"] == 2 and finding.evidence["labels_checked"] == 4


def test_ignore_index_is_not_out_of_range() -> None:
    rule = feed(make(LabelOutOfRange), preflight(num_labels=2), batch([0, -100, 1, -100]),
                batch(torch.tensor([[0, 1, -100], [-100, -100, 1]])))
    assert rule.findings == []


@pytest.mark.parametrize(("labels", "fix_says"), [([1, 2, 2, 1], "1-based"), ([0, -1, 1], "negative"),
                                                   ([0, 4, 1], "num_labels=5")])
def test_out_of_range_fix_names_the_likely_cause(labels: list[int], fix_says: str) -> None:
    rule = feed(make(LabelOutOfRange), preflight(num_labels=2), batch(labels))
    assert fix_says in only(rule).fix


def test_out_of_range_in_a_dataset_is_reported_at_preflight() -> None:
    val = labelled([0, 1, 3], name="validation")
    rule = feed(make(LabelOutOfRange), preflight(num_labels=3, train=labelled([0, 1, 2]), val=val))
    finding = only(rule)
    assert finding.step == 0 and "validation" in finding.message and finding.evidence["max_label"] == 3


def test_regression_head_and_float_labels_have_no_class_range() -> None:
    regression = feed(make(LabelOutOfRange), preflight(num_labels=1, train=labelled([0, 1, 5])), batch([0, 1, 5]))
    floats = feed(make(LabelOutOfRange), preflight(num_labels=2), batch([0.0, 2.0, 7.5]))
    assert regression.findings == [] and floats.findings == []


@pytest.mark.parametrize("model_class", [GPT2LMHeadModel, BertForMultipleChoice])
def test_models_whose_labels_are_not_class_ids_keep_their_default_num_labels_out_of_it(model_class: type) -> None:
    # config.num_labels stays at its default of 2 while the labels are token ids or choice indices
    labels = torch.tensor([[15, 27, -100], [3, 199, 4]]) if model_class is GPT2LMHeadModel else torch.tensor([3, 1])
    pre = preflight(model_class(2), num_labels=2, train=labelled([3, 0, 2]))
    for rule_class in (LabelOutOfRange, LabelCountMismatch, ClassImbalance):
        assert feed(make(rule_class), pre, batch(labels), forward(torch.zeros(2, 3, 200))).findings == []


def test_unknown_head_width_is_read_from_the_logits() -> None:
    rule = make(LabelOutOfRange)
    feed(rule, preflight(num_labels=None), batch([0, 5]))
    assert rule.findings == []
    feed(rule, forward(torch.zeros(2, 3), labels=torch.tensor([0, 5])))
    assert only(rule).evidence["num_labels"] == 3


def test_targets_of_an_external_loss_are_checked_against_its_input_width() -> None:
    scores = torch.zeros(3, 4)
    ok = feed(make(LabelOutOfRange), preflight(num_labels=None),
              LossInput(0, "CrossEntropyLoss", scores, torch.tensor([0, 3, -100])))
    bad = feed(make(LabelOutOfRange), preflight(num_labels=None),
               LossInput(2, "CrossEntropyLoss", scores, torch.tensor([0, 4, 1])))
    assert ok.findings == []
    assert only(bad).step == 2 and only(bad).evidence["num_labels"] == 4


# --- label-count-mismatch ----------------------------------------------------------------


def test_head_wider_than_the_dataset_classes_is_reported_at_preflight() -> None:
    rule = feed(make(LabelCountMismatch), preflight(num_labels=3, train=labelled([0, 1] * 50)))
    finding = only(rule)
    assert finding.step == 0
    assert finding.evidence["missing"] == [2] and finding.evidence["classes_present"] == 2
    assert "num_labels=2" in finding.fix


def test_shifted_labels_inside_a_wide_head_ask_for_a_remap() -> None:
    rule = feed(make(LabelCountMismatch), preflight(num_labels=3, train=labelled([1, 2] * 50)))
    assert only(rule).evidence["missing"] == [0] and "remap" in only(rule).fix


def test_more_classes_than_the_head_is_left_to_label_out_of_range() -> None:
    pre = preflight(num_labels=2, train=labelled([0, 1, 2] * 30))
    assert feed(make(LabelCountMismatch), pre).findings == []
    assert only(feed(make(LabelOutOfRange), pre)).rule == "label-out-of-range"


def test_class_names_are_counted_against_the_head() -> None:
    three_names = labelled(["pos", "neg", "neutral"] * 10)
    assert only(feed(make(LabelCountMismatch), preflight(num_labels=2, train=three_names))).evidence[
        "classes_present"] == 3
    assert feed(make(LabelCountMismatch), preflight(num_labels=3, train=three_names)).findings == []


def test_batches_alone_need_a_large_shuffled_sample_before_a_missing_class_counts() -> None:
    labels = shuffled({0: 300, 1: 300})
    rule = feed(make(LabelCountMismatch), preflight(num_labels=3), *stream(labels[:480], 16))
    assert rule.findings == []  # 480 labels: a rare third class could still be missing by chance
    feed(rule, *stream(labels[480:], 16, start_step=30))
    finding = only(rule)
    assert finding.evidence["missing"] == [2] and finding.evidence["labels_counted"] >= 500


def test_batches_with_every_class_or_sorted_by_label_stay_silent() -> None:
    all_classes = feed(make(LabelCountMismatch), preflight(num_labels=3), *stream(shuffled({0: 200, 1: 200, 2: 200}), 16))
    sorted_stream = feed(make(LabelCountMismatch), preflight(num_labels=3), *stream([0] * 640 + [1] * 640, 16))
    assert all_classes.findings == [] and sorted_stream.findings == []


# --- label-type-mismatch -----------------------------------------------------------------


def type_rule(num_labels: int = 2, problem_type: str | None = None, model_class: type = BertForSequenceClassification
              ) -> RuntimeRule:
    return feed(make(LabelTypeMismatch), preflight(model_class(num_labels, problem_type), num_labels=num_labels))


def test_float_class_ids_switch_transformers_to_multi_label() -> None:
    rule = feed(type_rule(), batch([0.0, 1.0, 1.0]))
    finding = only(rule)
    assert "BCEWithLogitsLoss" in finding.message and "long()" in finding.fix
    assert finding.evidence["labels_dtype"] == "float32" and finding.step == 0


def test_one_hot_float_labels_are_reported_and_multi_hot_ones_are_not() -> None:
    one_hot = torch.nn.functional.one_hot(torch.tensor([0, 1, 1, 0]), 2).float()
    multi_hot = torch.tensor([[1.0, 1.0], [0.0, 1.0], [1.0, 0.0], [0.0, 0.0]])
    assert "one-hot" in only(feed(type_rule(), batch(one_hot))).message
    assert feed(type_rule(), batch(multi_hot)).findings == []


def test_explicit_multi_label_problem_type_is_the_users_choice() -> None:
    one_hot = torch.nn.functional.one_hot(torch.tensor([0, 1, 2]), 3).float()
    assert feed(type_rule(3, "multi_label_classification"), batch(one_hot)).findings == []


def test_one_hot_integer_labels_are_reported() -> None:
    one_hot = torch.nn.functional.one_hot(torch.tensor([0, 1, 2]), 3)
    assert only(feed(type_rule(3), batch(one_hot))).evidence["labels_shape"] == [3, 3]


def test_single_output_regression() -> None:
    assert "regression" in only(feed(type_rule(1), batch([0, 1, 1, 0]))).message
    assert feed(type_rule(1), batch([0.3, 1.7, 2.0])).findings == []  # float targets: a real regression
    assert feed(type_rule(1, "regression"), batch([1, 2, 5])).findings == []  # explicitly asked for


@pytest.mark.parametrize("dtype", [torch.long, torch.int32])
def test_integer_class_ids_are_fine(dtype: torch.dtype) -> None:
    assert feed(type_rule(), batch(torch.tensor([0, 1, 1], dtype=dtype))).findings == []


def test_small_integer_dtypes_also_switch_to_multi_label() -> None:
    assert only(feed(type_rule(), batch(torch.tensor([0, 1, 1], dtype=torch.uint8)))).evidence[
        "labels_dtype"] == "uint8"


def test_models_that_do_not_choose_their_loss_from_the_labels_are_not_judged() -> None:
    token_labels = torch.tensor([[0, 1], [1, -100]])  # as wide as num_labels by coincidence
    assert feed(type_rule(model_class=BertForTokenClassification), batch(token_labels)).findings == []
    custom = feed(make(LabelTypeMismatch), preflight(CustomClassifier()), batch([0.0, 1.0]))
    assert custom.findings == []


def test_problem_type_is_read_before_the_first_forward_fixes_it() -> None:
    from harness import tiny_bert

    model = tiny_bert(2)
    rule = feed(make(LabelTypeMismatch), preflight(model))
    model.config.problem_type = "multi_label_classification"  # what transformers' forward then writes
    assert only(feed(rule, batch([0.0, 1.0]))).evidence["problem_type"] == "auto (unset)"


# --- class-imbalance ------------------------------------------------------------------


def test_dominant_class_in_the_dataset_is_reported_at_preflight() -> None:
    rule = feed(make(ClassImbalance), preflight(train=labelled([0] * 95 + [1] * 5)))
    finding = only(rule)
    assert finding.step == 0 and finding.severity.value == "warning"
    assert finding.evidence["majority_share"] == 0.95 and finding.evidence["threshold"] == 0.9


@pytest.mark.parametrize("labels", [[0] * 80 + [1] * 20, [0] * 100, [0, 1, 2] * 30, [0] * 9 + [1]])
def test_balanced_moderate_single_class_or_tiny_datasets_stay_silent(labels: list[int]) -> None:
    assert feed(make(ClassImbalance), preflight(train=labelled(labels))).findings == []


def test_imbalance_from_shuffled_batches_needs_a_confident_share() -> None:
    imbalanced = feed(make(ClassImbalance), preflight(), *stream(shuffled({0: 1520, 1: 80}), 16))
    assert only(imbalanced).evidence["majority_share"] >= 0.9
    moderate = feed(make(ClassImbalance), preflight(), *stream(shuffled({0: 1360, 1: 240}), 16))
    assert moderate.findings == []


def test_a_lucky_early_sample_above_the_threshold_is_not_enough() -> None:
    # the first four batches hold one minority label each (94%); the stream as a whole is 80/20
    early = [1] + [0] * 15
    rest = shuffled({0: 1280, 1: 320}, seed=3)
    rule = feed(make(ClassImbalance), preflight(), *stream(early * 4 + rest, 16))
    assert rule.findings == []


def test_sorted_balanced_batches_are_not_imbalance() -> None:
    # balanced data sorted by label: a long run of class 0, then the boundary batch, then class 1
    rule = feed(make(ClassImbalance), preflight(), *stream([0] * 1000 + [1] * 1000, 16))
    assert rule.findings == []


def test_a_dataset_given_after_some_batches_replaces_the_batch_estimate() -> None:
    rule = feed(make(ClassImbalance), preflight(), *stream(shuffled({0: 16, 1: 16}), 16))
    assert rule.findings == []
    feed(rule, DatasetsSeen(2, labelled([0] * 95 + [1] * 5), None))
    assert only(rule).step == 2 and only(rule).evidence["source"] == "the train dataset"


def test_regression_heads_are_not_judged_for_imbalance() -> None:
    assert feed(make(ClassImbalance), preflight(num_labels=1, train=labelled([0] * 99 + [1]))).findings == []


# --- head-output-mismatch ----------------------------------------------------------------


def test_mis_sized_classifier_module_is_reported_at_preflight() -> None:
    model = BertForSequenceClassification(2)
    model.classifier = nn.Linear(32, 5)
    finding = only(feed(make(HeadOutputMismatch), preflight(model, num_labels=2)))
    assert finding.step == 0 and finding.evidence["module"] == "classifier" and finding.evidence["output_width"] == 5


def test_hidden_states_used_as_logits() -> None:
    rule = feed(make(HeadOutputMismatch), preflight(num_labels=2, hidden_size=32),
                forward(torch.zeros(4, 32), labels=torch.tensor([0, 1, 0, 1]), step=0))
    assert "hidden" in only(rule).message


def test_encoder_output_without_labels_is_judged_only_where_a_loss_consumes_it() -> None:
    rule = feed(make(HeadOutputMismatch), preflight(num_labels=2, hidden_size=32), forward(torch.zeros(4, 8, 32)))
    assert rule.findings == []  # an encoder whose head lives outside the watched module
    feed(rule, LossInput(1, "CrossEntropyLoss", torch.zeros(4, 32), torch.tensor([0, 1, 0, 1])))
    assert only(rule).step == 1 and only(rule).evidence["loss"] == "CrossEntropyLoss"


@pytest.mark.parametrize(
    ("model", "events"),
    [
        (BertForSequenceClassification(2), [forward(torch.zeros(4, 2))]),
        (BertForTokenClassification(5), [forward(torch.zeros(4, 9, 5))]),
        (BertForMaskedLM(2), [forward(torch.zeros(4, 9, 32), labels=torch.zeros(4, 9, dtype=torch.long))]),
        (CustomClassifier(), [LossInput(0, "BCEWithLogitsLoss", torch.zeros(4, 1), torch.zeros(4, 1))]),
        (CustomClassifier(), [LossInput(0, "BCEWithLogitsLoss", torch.zeros(4), torch.zeros(4))]),
        (MultiTaskModel(2), [LossInput(0, "CrossEntropyLoss", torch.zeros(36, 200), torch.zeros(36).long())]),
    ],
    ids=["seq-classifier", "token-classifier", "masked-lm", "single-logit-bce", "flat-bce", "vocab-wide-loss"],
)
def test_heads_of_the_right_width_stay_silent(model: nn.Module, events: list[Any]) -> None:
    num_labels = getattr(getattr(model, "config", None), "num_labels", 2)
    assert feed(make(HeadOutputMismatch), preflight(model, num_labels=num_labels), *events).findings == []


# --- train-val-overlap ---------------------------------------------------------------------


def texts(n: int, prefix: str) -> list[str]:
    return [f"{prefix} example number {i} about topic {i * 7 % 13}" for i in range(n)]


def test_copied_validation_rows_are_reported_at_preflight() -> None:
    train, val = texts(200, "train"), texts(50, "val")
    val[:5] = train[10:15]
    finding = only(feed(make(TrainValOverlap), preflight(train=labelled([0] * 200, train),
                                                         val=labelled([0] * 50, val, "validation"))))
    assert finding.step == 0 and finding.evidence["overlapping"] == 5 and finding.evidence["share"] == 0.1
    assert finding.evidence["first_overlapping_val_rows"] == [0, 1, 2, 3, 4]


def test_case_and_whitespace_variants_count_but_a_changed_word_does_not() -> None:
    assert normalise("  Great\tMOVIE,\n really ") == normalise("great movie, really")
    train = texts(100, "train")
    variants = [t.upper().replace(" ", "  ") for t in train[:4]]
    near = [t.replace("topic", "subject") for t in train[4:20]]
    val = variants + near + texts(20, "val")
    finding = only(feed(make(TrainValOverlap), preflight(train=labelled([0] * 100, train),
                                                         val=labelled([0] * 40, val, "validation"))))
    assert finding.evidence["overlapping"] == 4


@pytest.mark.parametrize(("copies", "val_size"), [(2, 1000), (2, 20), (0, 50)])
def test_a_few_natural_duplicates_stay_silent(copies: int, val_size: int) -> None:
    train, val = texts(500, "train"), texts(val_size, "val")
    val[:copies] = train[:copies]
    rule = feed(make(TrainValOverlap), preflight(train=labelled([0] * 500, train), val=labelled([0] * val_size, val)))
    assert rule.findings == []


def test_datasets_given_after_preflight_are_judged_at_that_step() -> None:
    train = texts(50, "train")
    rule = feed(make(TrainValOverlap), preflight(), DatasetsSeen(7, labelled([0] * 50, train), labelled([0] * 10, train[:10])))
    assert only(rule).step == 7


# --- unshuffled-batches --------------------------------------------------------------------


def test_single_label_batches_against_a_balanced_dataset_fire_within_two_steps() -> None:
    rule = feed(make(UnshuffledBatches), preflight(train=labelled([0, 1] * 128)), *stream([0] * 128 + [1] * 128, 16))
    finding = only(rule)
    assert finding.step <= 1 and finding.evidence["single_label_batches"] == 2
    assert finding.evidence["probability_if_shuffled"] < 1e-6


def test_batch_size_one_and_two_carry_too_little_evidence() -> None:
    dataset = preflight(train=labelled([0, 1] * 128))
    assert feed(make(UnshuffledBatches), dataset, *stream([0] * 64 + [1] * 64, 1)).findings == []
    assert feed(make(UnshuffledBatches), dataset, *stream([0] * 16, 2)).findings == []  # 8 pure pairs: p = 0.004


def test_shuffled_streams_stay_silent_even_when_batches_are_often_pure() -> None:
    imbalanced = shuffled({0: 970, 1: 30})  # pure batches are common, and expected
    weighted = shuffled({0: 500, 1: 500})  # a WeightedRandomSampler over a 90/10 dataset
    for labels, shares in ((imbalanced, [0] * 97 + [1] * 3), (weighted, [0] * 90 + [1] * 10)):
        assert feed(make(UnshuffledBatches), preflight(train=labelled(shares)), *stream(labels, 16)).findings == []
        assert feed(make(UnshuffledBatches), preflight(), *stream(labels, 16)).findings == []


def test_without_a_dataset_a_sorted_stream_is_caught_once_the_second_class_arrives() -> None:
    rule = feed(make(UnshuffledBatches), preflight(), *stream([0] * 320 + [1] * 320, 16))
    finding = only(rule)
    assert finding.evidence["class_shares_from"] == "batches"
    assert 20 <= finding.evidence["batches_seen"] <= 26


def test_a_dataset_given_late_judges_the_batches_already_seen() -> None:
    rule = feed(make(UnshuffledBatches), preflight(), *stream([0] * 48, 16))
    assert rule.findings == []  # one class so far: no balance to compare with
    feed(rule, DatasetsSeen(3, labelled([0, 1] * 64), None))
    assert only(rule).step == 3 and only(rule).evidence["class_shares_from"] == "dataset"


def test_eval_batches_and_token_labels_are_ignored() -> None:
    dataset = preflight(train=labelled([0, 1] * 64))
    evals = [batch([0] * 16, phase="eval") for _ in range(8)]
    tokens = [batch(torch.zeros(16, 8, dtype=torch.long)) for _ in range(8)]
    assert feed(make(UnshuffledBatches), dataset, *evals, *tokens).findings == []


# --- softmax-before-loss -------------------------------------------------------------------


def loss_input(loss_name: str, scores: torch.Tensor, step: int = 0) -> LossInput:
    return LossInput(step, loss_name, scores, torch.zeros(scores.shape[0], dtype=torch.long))


def logits(rows: int = 8, classes: int = 3) -> torch.Tensor:
    return torch.randn(rows, classes, generator=torch.Generator().manual_seed(rows * classes))


def test_probabilities_into_cross_entropy() -> None:
    rule = feed(make(SoftmaxBeforeLoss), preflight(), loss_input("CrossEntropyLoss", logits().softmax(-1)))
    finding = only(rule)
    assert finding.step == 0 and "log_softmax" in finding.message and finding.evidence["input_max"] <= 1


@pytest.mark.parametrize(
    ("loss_name", "scores"),
    [
        ("CrossEntropyLoss", logits()),
        ("CrossEntropyLoss", logits().log_softmax(-1)),  # idempotent: correct
        ("NLLLoss", logits().log_softmax(-1)),
        ("BCEWithLogitsLoss", logits()),
        ("BCELoss", logits().sigmoid()),
        ("MSELoss", logits(8, 1).sigmoid()),
    ],
    ids=["ce-logits", "ce-log-softmax", "nll-log-softmax", "bce-logits", "bce-probabilities", "mse"],
)
def test_correct_loss_inputs_stay_silent(loss_name: str, scores: torch.Tensor) -> None:
    assert feed(make(SoftmaxBeforeLoss), preflight(), loss_input(loss_name, scores)).findings == []


def test_softmax_into_nll_asks_for_log_softmax() -> None:
    rule = feed(make(SoftmaxBeforeLoss), preflight(), loss_input("nll_loss", logits().softmax(-1)))
    assert "log_softmax" in only(rule).fix


def test_a_single_probability_row_is_not_enough_but_a_run_of_them_is() -> None:
    rule = make(SoftmaxBeforeLoss)
    feed(rule, preflight(), *[loss_input("CrossEntropyLoss", logits(1, 2).softmax(-1), step) for step in range(3)])
    assert rule.findings == []
    feed(rule, loss_input("CrossEntropyLoss", logits(1, 2).softmax(-1), 3))
    assert only(rule).step == 3


def test_sigmoid_into_bce_with_logits_is_caught_through_its_autograd_history() -> None:
    probabilities = logits(8, 1).requires_grad_().sigmoid().squeeze(-1).float()
    event = LossInput(0, "BCEWithLogitsLoss", probabilities.detach(), torch.ones(8), probabilities.grad_fn)
    assert only(feed(make(SoftmaxBeforeLoss), preflight(), event)).evidence["produced_by"] == "sigmoid"
    no_history = loss_input("BCEWithLogitsLoss", probabilities.detach())
    assert feed(make(SoftmaxBeforeLoss), preflight(), no_history).findings == []  # values alone prove nothing


@pytest.mark.parametrize("squash", [True, False])
def test_sigmoid_before_bce_with_logits_in_a_watched_loop(squash: bool) -> None:
    import ftdoctor
    from harness import tiny_bert

    model = tiny_bert(num_labels=1)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
    criterion = nn.BCEWithLogitsLoss()
    input_ids, targets = torch.randint(5, 200, (32, 12)), torch.randint(0, 2, (32,)).float()
    with ftdoctor.watch(model, optimizer) as doctor:
        for start in range(0, 32, 8):
            scores = model(input_ids=input_ids[start : start + 8]).logits.squeeze(-1)
            loss = criterion(scores.sigmoid() if squash else scores, targets[start : start + 8])
            loss.backward()
            optimizer.step()
            optimizer.zero_grad()
    found = [f for f in doctor.findings if f.rule == "softmax-before-loss"]
    assert [(f.step, f.evidence["produced_by"]) for f in found] == ([(0, "sigmoid")] if squash else [])


def test_log_softmax_history_is_not_a_probability_layer() -> None:
    log_probabilities = logits().requires_grad_().log_softmax(-1)
    event = LossInput(0, "NLLLoss", log_probabilities.detach(), torch.zeros(8).long(), log_probabilities.grad_fn)
    assert feed(make(SoftmaxBeforeLoss), preflight(), event).findings == []


def test_a_transformers_head_ending_in_softmax() -> None:
    model = BertForSequenceClassification(3)
    probabilities = logits().softmax(-1)
    with_loss = feed(make(SoftmaxBeforeLoss), preflight(model), forward(probabilities, loss=torch.tensor(1.0)))
    without_loss = feed(make(SoftmaxBeforeLoss), preflight(model), forward(probabilities))
    custom = feed(make(SoftmaxBeforeLoss), preflight(), forward(probabilities, loss=torch.tensor(1.0)))
    assert only(with_loss).rule == "softmax-before-loss"
    assert without_loss.findings == [] and custom.findings == []
