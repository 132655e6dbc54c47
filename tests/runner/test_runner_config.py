"""The run config: schema errors name the key path; paths resolve against the config file; init."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from ftdoctor.runner.config import ConfigError, RunConfig, default_config, load_config, write_starter_config


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


@pytest.fixture()
def data_dir(tmp_path: Path) -> Path:
    write(tmp_path / "data" / "train.csv", "text,label\ngood,pos\nbad,neg\n")
    write(tmp_path / "data" / "val.csv", "text,label\nfine,pos\nawful,neg\n")
    return tmp_path


FILES = "data:\n  train: data/train.csv\n  validation: data/val.csv\n"


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ("train:\n  learnin_rate: 0.1\n", ["train.learnin_rate", "unknown key", "did you mean 'learning_rate'"]),
        ("modell: builtin:tiny\n", ["modell", "unknown key", "did you mean 'model'"]),
        ("train:\n  learning_rate: fast\n", ["train.learning_rate", "number", "'fast'"]),
        ("train:\n  learning_rate: -0.1\n", ["train.learning_rate", "greater than 0"]),
        ("train:\n  batch_size: 16.5\n", ["train.batch_size", "integer"]),
        ("train:\n  batch_size: 0\n", ["train.batch_size", "greater than or equal to 1"]),
        ("train:\n  warmup_ratio: 1.5\n", ["train.warmup_ratio", "less than 1"]),
        ("train:\n  freeze_encoder: maybe\n", ["train.freeze_encoder", "boolean"]),
        ("train: 5\n", ["train", "dictionary"]),
        ("num_labels: 0\n", ["num_labels", "greater than or equal to 1"]),
        ("inject: [skip-zero-grad, forget-labels]\n", ["inject.1", "'forget-labels'", "orphan-head"]),
        ("data:\n  train: data/missing.csv\n  validation: data/val.csv\n", ["data.train", "file not found", "missing.csv"]),
        ("data:\n  train: data/train.txt\n  validation: data/val.csv\n", ["data.train", "unsupported file type", ".txt"]),
        ("data:\n  train: data/train.csv\n", ["data.validation", "required when data.train is a file"]),
        ("data:\n  train: builtin:movies\n", ["data.train", "unknown builtin dataset"]),
        ("model: builtin:huge\n", ["model", "unknown builtin model", "builtin:tiny"]),
        ("model: ./no-such-model\n", ["model", "directory not found", "no-such-model"]),
    ],
)
def test_invalid_config_names_the_key_path(data_dir: Path, body: str, expected: list[str]) -> None:
    path = write(data_dir / "cfg.yaml", body)
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    message = str(caught.value)
    assert str(path) in message
    for fragment in expected:
        assert fragment in message, f"{fragment!r} not in {message!r}"
    assert "\n" not in message  # one paragraph


def test_every_error_is_reported_at_once(tmp_path: Path) -> None:
    path = write(tmp_path / "cfg.yaml", "train:\n  learning_rate: fast\n  batch_size: -1\n")
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    assert "train.learning_rate" in str(caught.value) and "train.batch_size" in str(caught.value)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("train: [unclosed\n", "not valid YAML (line 2"),
        ("- just\n- a list\n", "must be a YAML mapping"),
        ("train:\n\tseed: 1\n", "not valid YAML"),
    ],
)
def test_unreadable_yaml(tmp_path: Path, text: str, expected: str) -> None:
    path = write(tmp_path / "cfg.yaml", text)
    with pytest.raises(ConfigError, match=expected.replace("(", r"\(")):
        load_config(path)


def test_missing_config_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="config file not found"):
        load_config(tmp_path / "nope.yaml")


def test_empty_config_is_the_default_schema(tmp_path: Path) -> None:
    assert load_config(write(tmp_path / "cfg.yaml", "")) == RunConfig()


def test_paths_are_relative_to_the_config_file(data_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config_path = write(data_dir / "cfg.yaml", FILES + "model: builtin:tiny\n")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    config = load_config(os.path.relpath(config_path, elsewhere))
    assert config.data.train == str((data_dir / "data" / "train.csv").resolve())
    assert config.data.validation == str((data_dir / "data" / "val.csv").resolve())


def test_model_directory_relative_to_config_and_hub_ids(tmp_path: Path) -> None:
    (tmp_path / "models" / "mine").mkdir(parents=True)
    config = load_config(write(tmp_path / "a.yaml", "model: models/mine\n"))
    assert config.model == str((tmp_path / "models" / "mine").resolve())
    hub = load_config(write(tmp_path / "b.yaml", "model: google/bert_uncased_L-2_H-128_A-2\n"))
    assert hub.model == "google/bert_uncased_L-2_H-128_A-2"


def test_string_numbers_and_full_schema(data_dir: Path) -> None:
    # YAML reads `2e-5` (no dot) as a string; it is still a valid learning rate.
    body = FILES + (
        "model: builtin:tiny\nnum_labels: 3\n"
        "train:\n  learning_rate: 2e-5\n  batch_size: 8\n  epochs: 2\n  max_steps: 7\n  eval_every: 3\n"
        "  seed: 5\n  warmup_ratio: 0.2\n  weight_decay: 0.0\n  freeze_encoder: true\n"
        "inject: [no-eval-mode, orphan-head]\n"
    )
    config = load_config(write(data_dir / "cfg.yaml", body))
    assert config.train.learning_rate == pytest.approx(2e-5)
    assert (config.num_labels, config.train.max_steps, config.train.freeze_encoder) == (3, 7, True)
    assert config.inject == ["no-eval-mode", "orphan-head"]


def test_overrides_from_the_command_line() -> None:
    config = default_config().with_overrides(max_steps=3, seed=9)
    assert (config.train.max_steps, config.train.seed) == (3, 9)
    assert default_config().with_overrides() == default_config()


def test_starter_config_is_the_embedded_default(tmp_path: Path) -> None:
    path = tmp_path / "ftdoctor.yaml"
    write_starter_config(path)
    assert load_config(path) == default_config()
    assert "# skip-zero-grad, orphan-head" in path.read_text()


def test_init_refuses_to_overwrite_without_force(tmp_path: Path) -> None:
    path = write(tmp_path / "ftdoctor.yaml", "mine\n")
    with pytest.raises(ConfigError, match="already exists; pass --force"):
        write_starter_config(path)
    assert path.read_text() == "mine\n"
    write_starter_config(path, force=True)
    assert load_config(path) == default_config()


def ftdoctor(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "ftdoctor", *args], cwd=cwd, capture_output=True, text=True,
                          timeout=120)


def test_cli_init_and_config_error_exit_codes(tmp_path: Path) -> None:
    created = ftdoctor("init", cwd=tmp_path)
    assert created.returncode == 0, created.stderr
    assert (tmp_path / "ftdoctor.yaml").is_file()
    again = ftdoctor("init", cwd=tmp_path)
    assert again.returncode == 2 and "--force" in again.stderr

    write(tmp_path / "bad.yaml", "train:\n  learning_rate: fast\n")
    bad = ftdoctor("run", "--config", "bad.yaml", cwd=tmp_path)
    assert bad.returncode == 2
    assert "train.learning_rate" in bad.stderr and "Traceback" not in bad.stderr
    assert bad.stdout == ""


FIXTURE_CONFIGS = sorted((Path(__file__).resolve().parents[2] / "fixtures" / "configs").glob("*.yaml"))


@pytest.mark.parametrize("path", FIXTURE_CONFIGS, ids=lambda p: p.name)
def test_fixture_configs_are_valid(path: Path) -> None:
    from ftdoctor.runner.inject import CAUGHT_BY

    config = load_config(path)
    if path.name.startswith("inject-"):
        mistake = path.stem.removeprefix("inject-")
        assert config.inject == [mistake] and mistake in CAUGHT_BY
        assert f"`{CAUGHT_BY[mistake]}`" in path.read_text()  # the comment names the rule that catches it


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["run", "cfg.yaml"], "looks like a run config; pass it as `ftdoctor run --config cfg.yaml`"),
        (["run", "train.py", "--config", "cfg.yaml"], "either a SCRIPT to run or --config"),
        (["run", "--max-steps", "0"], "--max-steps"),
        (["run", "--select", "no-such-rule"], "names no rule"),
    ],
)
def test_run_usage_errors(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, args: list[str], message: str) -> None:
    from click.testing import CliRunner

    from ftdoctor.cli import cli

    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(cli, args)
    assert result.exit_code != 0
    shown = result.output + (str(result.exception) if result.exception else "")
    assert message in shown
