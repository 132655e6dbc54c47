"""Seeded faults for the core runtime rules: each caught inside its window, each clean twin silent."""

from __future__ import annotations

from typing import Any

import pytest
import torch
from harness import Spec, assert_caught_within_window, assert_clean_twin_silent, tiny_bert, train

import ftdoctor

#: rule -> (the fault's knobs, the latest step at which it must be established)
FAULTS: dict[str, tuple[dict[str, Any], int]] = {
    "grads-accumulating": ({"skip_zero_grad": True, "steps": 6}, 3),
    "dead-parameters": ({"orphan_head": True, "steps": 6}, 3),
    "params-not-in-optimizer": ({"head_not_in_optimizer": True, "steps": 3}, 0),
    "no-trainable-params": ({"freeze_all": True, "steps": 3}, 0),
    "non-finite-loss": ({"nan_at_step": 3, "steps": 6}, 4),
    "exploding-gradients": ({"loss_scale_growth": 1.5, "steps": 50}, 50),
    "lr-too-high": ({"lr": 0.1, "steps": 50}, 50),
    "lr-too-low": ({"lr": 1e-7, "steps": 50}, 50),
    "dropout-in-eval": ({"eval_without_eval_mode": True, "eval_every": 5, "steps": 10}, 5),
    "eval-with-grad": ({"eval_with_grad": True, "eval_every": 5, "steps": 10}, 5),
    "overfitting-gap": ({"n_train": 16, "label_noise": 0.5, "lr": 3e-3, "eval_every": 10, "steps": 80}, 80),
}

#: look-alikes of each fault that are correct and must stay silent (at warning or above)
CLEAN_TWINS: dict[str, list[dict[str, Any]]] = {
    "grads-accumulating": [
        {"steps": 6},
        {"accumulation_steps": 3, "steps": 6},
        {"zero_grad_via": "model", "steps": 6},
        {"zero_grad_via": "set_to_none_manually", "steps": 6},
    ],
    "dead-parameters": [
        {"steps": 6},
        {"freeze_encoder": True, "optimizer_includes_frozen": True, "steps": 6},
    ],
    "params-not-in-optimizer": [{"freeze_encoder": True, "steps": 3}],
    "no-trainable-params": [{"freeze_encoder": True, "steps": 3}],
    "non-finite-loss": [{"steps": 6}, {"external_loss": True, "steps": 6}],
    "exploding-gradients": [{"steps": 50}, {"lr": 3e-3, "steps": 50}],
    "lr-too-high": [{"steps": 50}, {"lr": 3e-3, "steps": 50}, {"lr": 1e-5, "steps": 50}],
    "lr-too-low": [{"steps": 50}, {"lr": 1e-5, "steps": 50}],
    "dropout-in-eval": [{"eval_every": 5, "steps": 10}, {"eval_every": 5, "steps": 10, "eval_bracket": "context"}],
    "eval-with-grad": [{"eval_every": 5, "steps": 10}, {"eval_every": 5, "steps": 10, "eval_bracket": "context"}],
    "overfitting-gap": [{"lr": 3e-3, "eval_every": 10, "steps": 80}],
}


@pytest.mark.parametrize("slug", sorted(FAULTS))
def test_fault_is_caught_within_its_window(slug: str) -> None:
    assert_caught_within_window(slug, *FAULTS[slug])


@pytest.mark.parametrize(("slug", "knobs"), [(slug, knobs) for slug, twins in CLEAN_TWINS.items() for knobs in twins])
def test_clean_twin_is_silent(slug: str, knobs: dict[str, Any]) -> None:
    assert_clean_twin_silent(slug, knobs)


# --- evidence that names what is wrong --------------------------------------------------------


def test_dead_parameters_names_the_orphan_head() -> None:
    evidence = train(Spec(orphan_head=True, steps=4)).finding("dead-parameters").evidence
    assert evidence["parameters"] == ["head.bias", "head.weight"]


def test_params_not_in_optimizer_names_the_head() -> None:
    finding = train(Spec(head_not_in_optimizer=True, steps=2)).finding("params-not-in-optimizer")
    assert finding.evidence["parameters"] == ["classifier.weight", "classifier.bias"]
    assert "`classifier.weight`" in finding.message


def test_non_finite_loss_names_the_first_non_finite_module() -> None:
    run = train(Spec(nan_at_step=3, nan_module="bert.encoder.layer.0.attention.self.value", steps=5))
    finding = run.finding("non-finite-loss")
    assert finding.step == 4  # the weight is poisoned after 3 steps: the 4th step is the first fed a NaN loss
    assert finding.evidence["first_non_finite_module"] == "bert.encoder.layer.0.attention.self.value"
    assert finding.evidence["non_finite_parameters"] == ["bert.encoder.layer.0.attention.self.value.weight"]


def test_non_finite_loss_from_the_loss_computation_says_so() -> None:
    torch.manual_seed(0)
    model = tiny_bert()
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)  # noqa: FTD104 a deliberately high lr
    ids = torch.randint(5, 200, (8, 12))
    labels = torch.randint(0, 2, (8,))
    with ftdoctor.watch(model, optimizer) as doctor:
        logits = model(input_ids=ids).logits
        probabilities = logits.softmax(-1) * 0  # log(0) = -inf: a loss bug, not a model bug
        loss = torch.nn.functional.nll_loss(probabilities.log(), labels)
        loss.backward()
        optimizer.step()
    finding = next(f for f in doctor.findings if f.rule == "non-finite-loss")
    assert finding.evidence["located_by"] == "model-output-finite"
    assert finding.evidence["first_non_finite_module"] is None


def test_no_trainable_params_explains_the_backward_crash() -> None:
    run = train(Spec(freeze_all=True, steps=2))
    assert isinstance(run.error, RuntimeError)
    rule = next(r for r in run.doctor.rules if r.slug == "no-trainable-params")
    assert rule.explains(run.error)


def test_unused_pooler_of_a_custom_head_is_not_dead() -> None:
    """A custom head on BertModel's last_hidden_state leaves the pooler without gradients: benign."""

    class ClsHead(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.bert = tiny_bert().bert  # BertModel with a pooler
            self.head = torch.nn.Linear(32, 2)

        def forward(self, input_ids: torch.Tensor) -> torch.Tensor:
            return self.head(self.bert(input_ids=input_ids).last_hidden_state[:, 0])

    torch.manual_seed(0)
    model = ClsHead()
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
    with ftdoctor.watch(model, optimizer) as doctor:
        for _ in range(4):
            optimizer.zero_grad()
            loss = torch.nn.functional.cross_entropy(model(torch.randint(5, 200, (8, 12))), torch.randint(0, 2, (8,)))
            loss.backward()
            optimizer.step()
    assert "dead-parameters" not in {f.rule for f in doctor.findings}


# --- overfitting-gap on reported metrics -------------------------------------------------------


def _doctor_with_evaluations(*evaluations: dict[str, float]) -> Any:
    with ftdoctor.watch(tiny_bert()) as doctor:
        for step, metrics in enumerate(evaluations):
            doctor.observe_eval(step=step * 10, **metrics)
    return doctor


def test_accuracy_gap_at_two_consecutive_evaluations_fires() -> None:
    doctor = _doctor_with_evaluations(
        {"train_accuracy": 0.95, "val_accuracy": 0.6}, {"train_accuracy": 0.99, "val_accuracy": 0.62}
    )
    assert [f.rule for f in doctor.findings] == ["overfitting-gap"]
    assert doctor.findings[0].evidence["gap"] == pytest.approx(0.37)


@pytest.mark.parametrize(
    "evaluations",
    [
        ({"train_accuracy": 0.95, "val_accuracy": 0.6},),  # once is noise
        ({"train_accuracy": 0.95, "val_accuracy": 0.6}, {"train_accuracy": 0.9, "val_accuracy": 0.8}),
        ({"train_accuracy": 0.9, "val_accuracy": 0.8}, {"train_accuracy": 0.95, "val_accuracy": 0.85}),
        # val loss up only once, and never more than 5% above its best
        ({"val_loss": 0.5, "train_loss": 0.5}, {"val_loss": 0.52, "train_loss": 0.4}, {"val_loss": 0.51, "train_loss": 0.3}),
        # well above its best only once, then back near it
        ({"val_loss": 0.5, "train_loss": 0.5}, {"val_loss": 0.6, "train_loss": 0.4}, {"val_loss": 0.51, "train_loss": 0.3}),
        # above its best twice, but the training loss is higher than it was then: not memorising
        ({"val_loss": 0.5, "train_loss": 0.3}, {"val_loss": 0.6, "train_loss": 0.4}, {"val_loss": 0.58, "train_loss": 0.35}),
        # both losses rising: not overfitting (that is the learning rate's business)
        ({"val_loss": 0.5, "train_loss": 0.5}, {"val_loss": 0.6, "train_loss": 0.6}, {"val_loss": 0.7, "train_loss": 0.7}),
    ],
)
def test_no_overfitting_without_a_sustained_trend(evaluations: tuple[dict[str, float], ...]) -> None:
    assert _doctor_with_evaluations(*evaluations).findings == []


def test_val_loss_rising_while_train_loss_falls_twice_fires() -> None:
    doctor = _doctor_with_evaluations(
        {"val_loss": 0.5, "train_loss": 0.5}, {"val_loss": 0.6, "train_loss": 0.4}, {"val_loss": 0.7, "train_loss": 0.3}
    )
    finding = doctor.findings[0]
    assert finding.rule == "overfitting-gap" and finding.step == 20
    assert finding.evidence["val_losses"] == [0.5, 0.6, 0.7]


def test_val_loss_staying_above_its_best_while_train_loss_falls_fires() -> None:
    # the noisy plateau of a model learning label noise by heart: no two rises in a row
    doctor = _doctor_with_evaluations(
        {"val_loss": 0.30, "train_loss": 0.40},
        {"val_loss": 0.27, "train_loss": 0.25},
        {"val_loss": 0.30, "train_loss": 0.20},
        {"val_loss": 0.29, "train_loss": 0.15},
    )
    finding = doctor.findings[0]
    assert finding.rule == "overfitting-gap" and finding.step == 30
    assert finding.evidence["best_val_loss"] == 0.27 and finding.evidence["best_step"] == 10
    assert finding.evidence["val_losses"] == [0.30, 0.29]
    assert "above its best (0.27 at step 10)" in finding.message


# --- lr-too-high on pretrained weights: updates must be far smaller than from scratch ------------------


def _fine_tune_pretrained(directory: Any, lr: float, steps: int = 6) -> Any:
    from transformers import BertForSequenceClassification

    tiny_bert().save_pretrained(directory)
    model = BertForSequenceClassification.from_pretrained(directory)  # config._name_or_path is set
    optimizer = torch.optim.AdamW(model.parameters(), lr=lr)
    torch.manual_seed(0)
    model.train()  # from_pretrained returns the model in eval mode
    with ftdoctor.watch(model, optimizer) as doctor:
        for _ in range(steps):
            optimizer.zero_grad()
            model(input_ids=torch.randint(5, 200, (16, 12)), labels=torch.randint(0, 2, (16,))).loss.backward()
            optimizer.step()
    return doctor


def test_lr_too_high_for_fine_tuning_pretrained_weights(tmp_path: Any) -> None:
    """lr 1e-3 is fine from scratch (the clean twins above) but far too high for pretrained weights."""
    finding = next(f for f in _fine_tune_pretrained(tmp_path, lr=1e-3).findings if f.rule == "lr-too-high")
    assert finding.step == 1 and finding.evidence["update_ratio_threshold"] == 1e-2


def test_usual_fine_tuning_lr_on_pretrained_weights_is_silent(tmp_path: Any) -> None:
    assert _fine_tune_pretrained(tmp_path, lr=2e-5).findings == []


def test_zero_grad_between_backward_and_step_is_not_called_dead_parameters() -> None:
    """Every gradient is cleared before the step: a misplaced zero_grad (a static rule's), not unused modules."""
    model = tiny_bert()
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)  # noqa: FTD104 a deliberately high lr
    with ftdoctor.watch(model, optimizer) as doctor:
        for _ in range(4):
            model(input_ids=torch.randint(5, 200, (8, 12)), labels=torch.randint(0, 2, (8,))).loss.backward()
            optimizer.zero_grad()  # noqa: FTD102 the fault under test
            optimizer.step()
    assert "dead-parameters" not in {f.rule for f in doctor.findings}


def test_lr_too_low_uses_the_looser_limit_for_a_model_trained_from_scratch() -> None:
    """lr 1e-6 moves random-init weights by ~2e-5 of their size: too low from scratch (limit 1e-4),
    though it would pass the pretrained limit (1e-5) that fine-tuning uses."""
    run = train(Spec(lr=1e-6, steps=50))
    finding = run.finding("lr-too-low")
    assert finding.evidence["update_ratio_threshold"] == 1e-4
    assert 1e-5 < finding.evidence["median_update_ratio"] < 1e-4
