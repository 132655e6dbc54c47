"""Clean runs must produce no warning-or-error finding from any runtime rule.

5 seeds x 2 generated datasets with evaluations, an intentionally frozen
encoder, gradient accumulation, a loss computed outside the model, and the HF
Trainer with the callback. Each run is 60 steps: past the learning-rate rules'
first windows.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from harness import Spec, train, train_with_trainer


def _loud(findings: list[Any]) -> list[str]:
    return [f"{f.rule}@{f.step}: {f.message}" for f in findings if f.severity.value in ("warning", "error")]


@pytest.mark.parametrize("dataset", ["keyword", "majority"])
@pytest.mark.parametrize("seed", range(5))
def test_seeds_and_datasets_are_silent(seed: int, dataset: str) -> None:
    run = train(Spec(seed=seed, dataset=dataset, steps=60, eval_every=20, give_datasets=True))
    assert _loud(run.findings) == []
    assert run.doctor.step == 60 and not run.doctor.internal_errors


@pytest.mark.parametrize(
    "knobs",
    [
        {"freeze_encoder": True},
        {"freeze_encoder": True, "optimizer_includes_frozen": True},
        {"accumulation_steps": 4},
        {"external_loss": True},
        {"eval_bracket": "context"},
    ],
    ids=["frozen-encoder", "frozen-encoder-all-params-in-optimizer", "grad-accumulation", "external-loss", "eval-context"],
)
def test_correct_variants_are_silent(knobs: dict[str, Any]) -> None:
    run = train(Spec(steps=60, eval_every=20, give_datasets=True, **knobs))
    assert _loud(run.findings) == []


@pytest.mark.slow
def test_trainer_with_the_callback_is_silent(tmp_path: Path) -> None:
    doctor = train_with_trainer(tmp_path, steps=30, eval_every=10, accumulation_steps=2).doctor
    assert _loud(doctor.findings) == [] and doctor.step == 30
