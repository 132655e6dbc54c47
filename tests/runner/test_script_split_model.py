"""`ftdoctor run` on the loops of issue 11: a model split into encoder and head, labels outside the
model call, ``model.forward(x)``, optimizers rebuilt, no loss in sight — observed through autograd and
the optimizers, with an honest verdict (fixtures/user_scripts/, tiny BERT, a second or two each).
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from test_script_run import SCRIPTS, loud, run, slugs

torch.set_num_threads(1)

PLACEMENTS = ["beside", "on", "wrapper"]


@pytest.mark.parametrize("head", PLACEMENTS)
def test_a_clean_split_model_is_healthy(tmp_path: Path, head: str) -> None:
    result, report = run(tmp_path, SCRIPTS / "split_head.py", "--head", head)
    assert loud(report) == []
    assert report["verdict"] == "healthy", report["coverage"]
    assert all(report["coverage"]["observed"].values()) and report["coverage"]["not_run"] == []
    assert result.exit_code == 0 and report["steps"] == 24
    assert "internal error" not in result.output  # e.g. the evaluation replay must call the head, not the encoder


@pytest.mark.parametrize("head", PLACEMENTS)
def test_forgotten_zero_grad_is_caught_wherever_the_head_sits(tmp_path: Path, head: str) -> None:
    result, report = run(tmp_path, SCRIPTS / "split_head.py", "--head", head, "--mistake", "forgot-zero-grad")
    finding = next(f for f in report["findings"] if f["rule"] == "grads-accumulating")
    assert finding["step"] == 2 and "optimizer step 2 " in finding["message"]  # the first step to reuse gradients
    assert slugs(report) == {"grads-accumulating"}
    assert report["verdict"] == "findings" and result.exit_code == 1


@pytest.mark.parametrize("head", PLACEMENTS)
def test_an_unused_head_is_caught_wherever_it_sits(tmp_path: Path, head: str) -> None:
    result, report = run(tmp_path, SCRIPTS / "split_head.py", "--head", head, "--mistake", "unused-head")
    by_rule = {f["rule"]: f for f in report["findings"]}
    assert set(by_rule) == {"head-output-mismatch", "dead-parameters"}
    assert by_rule["head-output-mismatch"]["step"] == 0  # pre-flight window: the first loss call
    assert by_rule["dead-parameters"]["step"] <= 3  # its window: dead_param_steps
    dead = by_rule["dead-parameters"]["evidence"]["parameters"]
    assert sorted(name.rsplit(".", 1)[-1] for name in dead) == ["bias", "weight"]  # the head's, nothing else
    assert result.exit_code == 1


@pytest.mark.parametrize("head", PLACEMENTS)
def test_a_head_left_out_of_the_optimizer_is_caught_wherever_it_sits(tmp_path: Path, head: str) -> None:
    result, report = run(tmp_path, SCRIPTS / "split_head.py", "--head", head, "--mistake", "head-not-in-optimizer")
    finding = next(f for f in report["findings"] if f["rule"] == "params-not-in-optimizer")
    assert finding["step"] == 0 and sorted(p.rsplit(".", 1)[-1] for p in finding["evidence"]["parameters"]) == [
        "bias", "weight"]
    assert result.exit_code == 1


def test_labels_that_never_pass_through_the_model_are_read_from_the_loss(tmp_path: Path) -> None:
    result, report = run(tmp_path, SCRIPTS / "labels_outside_model.py")
    assert report["verdict"] == "healthy" and report["coverage"]["observed"]["labels"]
    result, report = run(tmp_path, SCRIPTS / "labels_outside_model.py", "--sorted")
    finding = next(f for f in report["findings"] if f["rule"] == "unshuffled-batches")
    assert finding["step"] <= 16 and result.exit_code == 1
    assert slugs(report) == {"unshuffled-batches"}  # the loss swing is the label order's, not lr-too-high


def test_model_forward_called_directly_is_still_seen(tmp_path: Path) -> None:
    result, report = run(tmp_path, SCRIPTS / "forward_direct.py")
    assert report["verdict"] == "healthy" and report["steps"] == 24 and result.exit_code == 0
    result, report = run(tmp_path, SCRIPTS / "forward_direct.py", "--forget-zero-grad")
    assert slugs(report) == {"grads-accumulating"} and result.exit_code == 1


def test_an_optimizer_rebuilt_each_epoch_continues_the_run(tmp_path: Path) -> None:
    result, report = run(tmp_path, SCRIPTS / "optimizer_rebuilt.py")
    assert report["steps"] == 15  # 3 optimizers x 5 steps, one run
    assert report["script"]["watched"] == [
        {"model": "BertForSequenceClassification", "optimizers": ["AdamW", "AdamW", "AdamW"]}
    ]


def test_a_run_whose_loss_was_never_seen_is_incomplete(tmp_path: Path) -> None:
    result, report = run(tmp_path, SCRIPTS / "no_loss_seen.py")
    assert loud(report) == []
    assert report["verdict"] == "incomplete"
    observed = report["coverage"]["observed"]
    assert not observed["loss"] and not observed["backward"] and observed["optimizer_step"]
    not_run = {entry["rule"]: entry["why"] for entry in report["coverage"]["not_run"]}
    assert {"grads-accumulating", "lr-too-high", "lr-too-low"} <= set(not_run)
    assert "loss" in not_run["lr-too-high"]
    assert result.exit_code == 1  # incomplete fails under the default --fail-on warning
    result, _ = run(tmp_path, SCRIPTS / "no_loss_seen.py", options=("--fail-on", "error"))
    assert result.exit_code == 0


def test_a_trainer_crash_before_train_is_explained_by_what_was_seen(tmp_path: Path) -> None:
    result, report = run(tmp_path, SCRIPTS / "trainer_eval_crash.py", str(tmp_path / "out"))
    assert report["script"]["crash"]["explained_by"] == ["label-out-of-range"]
    assert "script-crashed" not in slugs(report) and result.exit_code == 1


def test_console_and_html_say_what_was_not_observed(tmp_path: Path) -> None:
    from click.testing import CliRunner

    from ftdoctor.cli import cli

    text_file, report_dir = tmp_path / "report.txt", tmp_path / "out"
    CliRunner().invoke(cli, ["run", str(SCRIPTS / "no_loss_seen.py"), "--output", str(text_file),
                             "--report-dir", str(report_dir)])
    for text in (text_file.read_text(), (report_dir / "report.html").read_text()):
        assert "Incomplete" in text and "Healthy" not in text
        assert "not observed: loss, backward" in text
        assert "lr-too-high (no loss observed)" in text


def test_a_model_called_before_any_optimizer_is_watched_from_then_on(tmp_path: Path) -> None:
    script = tmp_path / "baseline_first.py"
    script.write_text(
        "import torch\n"
        "import torch.nn.functional as F\n"
        "model = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.Tanh(), torch.nn.Linear(8, 2))\n"
        "x, y = torch.randn(32, 4), torch.randint(0, 2, (32,))\n"
        "with torch.no_grad():  # a baseline evaluation before training: only it evaluates\n"
        "    for start in range(0, 32, 8):\n"
        "        F.cross_entropy(model(x[start:start + 8]), y[start:start + 8])\n"
        "optimizer = torch.optim.SGD(model.parameters(), lr=0.1)\n"
        "for step in range(4):\n"
        "    optimizer.zero_grad()\n"
        "    F.cross_entropy(model(x[:8]), y[:8]).backward()\n"
        "    optimizer.step()\n"
    )
    result, report = run(tmp_path, script)
    assert report["coverage"]["observed"]["evaluation"], report["coverage"]
    assert report["verdict"] == "healthy" and report["steps"] == 4 and result.exit_code == 0
    assert report["script"]["watched"] == [{"model": "Sequential", "optimizers": ["SGD"]}]


def test_two_trainer_runs_are_two_runs_in_the_report(tmp_path: Path) -> None:
    result, report = run(tmp_path, SCRIPTS / "trainer_clean.py", str(tmp_path / "out"), "2")
    assert [(entry["steps"], entry["verdict"]) for entry in report["runs"]] == [(40, "healthy"), (40, "healthy")]
    assert report["steps"] == 80 and report["verdict"] == "healthy" and result.exit_code == 0
