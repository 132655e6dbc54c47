"""`ftdoctor run` on transformers Trainer scripts: the DoctorCallback is injected, nothing else changes."""

from __future__ import annotations

from pathlib import Path

import torch

from test_script_run import SCRIPTS, loud, run, slugs

torch.set_num_threads(1)


def test_a_clean_trainer_script_is_silent(tmp_path: Path) -> None:
    result, report = run(tmp_path, SCRIPTS / "trainer_clean.py", str(tmp_path / "out"))
    assert result.exit_code == 0, report["findings"]
    assert loud(report) == []
    assert report["steps"] == 40  # the doctor counted the Trainer's optimizer steps through its callback
    assert "eval loss" in result.stdout  # the script's own print, after the doctor detached


def test_a_trainer_script_is_diagnosed_through_the_injected_callback(tmp_path: Path) -> None:
    from transformers.trainer import Trainer

    original_init = Trainer.__init__
    result, report = run(tmp_path, SCRIPTS / "trainer_lr_too_high.py")
    assert result.exit_code == 1
    finding = next(f for f in report["findings"] if f["rule"] == "lr-too-high")
    assert finding["step"] <= 16
    # one doctor, the callback's: the Trainer's own optimizer did not start a second one
    assert report["script"]["watched"] == [{"model": "BertForSequenceClassification", "optimizers": ["AdamW"]}]
    assert slugs(report) == {"lr-too-high"}
    assert Trainer.__init__ is original_init


def test_a_trainer_crash_is_explained(tmp_path: Path) -> None:
    result, report = run(tmp_path, SCRIPTS / "trainer_labels_shifted.py")
    assert result.exit_code == 1
    assert report["script"]["crash"]["explained_by"] == ["label-out-of-range"]
    assert report["script"]["crash"]["path"].endswith("trainer_labels_shifted.py")
    assert "script-crashed" not in slugs(report)
