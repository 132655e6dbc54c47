"""DoctorCallback with a real transformers Trainer on the tiny BERT."""

from __future__ import annotations

from pathlib import Path

import pytest
from harness import train_with_trainer

pytestmark = pytest.mark.slow  # each Trainer run starts up for a second or two


def test_trainer_orphan_head_is_caught(tmp_path: Path) -> None:
    doctor = train_with_trainer(tmp_path, orphan_head=True, steps=6).doctor
    finding = next(f for f in doctor.findings if f.rule == "dead-parameters")
    assert finding.evidence["parameters"] == ["head.bias", "head.weight"] and finding.step <= 3
    assert doctor.step == 6 and not doctor.attached


def test_trainer_nan_loss_is_caught_although_the_trainer_filters_it_from_logs(tmp_path: Path) -> None:
    doctor = train_with_trainer(tmp_path, nan_at_step=0, steps=3).doctor
    finding = next(f for f in doctor.findings if f.rule == "non-finite-loss")
    assert finding.step == 1  # the first optimizer step was fed the NaN loss
    assert finding.evidence["first_non_finite_module"] == "bert.encoder.layer.1.intermediate.dense"


def test_trainer_clean_run_with_evaluations_is_silent(tmp_path: Path) -> None:
    callback = train_with_trainer(tmp_path, steps=20, eval_every=10)
    doctor = callback.doctor
    assert [f for f in doctor.findings if f.severity.value != "info"] == []
    assert doctor.step == 20 and len(doctor.history) == 20
    assert doctor.optimizers and type(doctor.optimizers[0]).__name__ == "AdamW"  # unwrapped from accelerate
    assert not doctor.internal_errors
