"""`ftdoctor run SCRIPT.py [-- ARGS]` on realistic user scripts: diagnosed, silent when clean, crashes explained.

The scripts live in fixtures/user_scripts/ (tiny random-init BERT, generated
data, a second each). They run in-process through the CLI, as a user runs them.
"""

from __future__ import annotations

import json
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest
import torch
from click.testing import CliRunner, Result

from ftdoctor.cli import cli

SCRIPTS = Path(__file__).resolve().parents[2] / "fixtures" / "user_scripts"

torch.set_num_threads(1)


def run(tmp_path: Path, script: Path | str, *args: str, options: tuple[str, ...] = ()) -> tuple[Result, dict[str, Any]]:
    """Run the CLI on ``script``; the result and the JSON report (written to a file: stdout is the script's)."""
    report_file = tmp_path / "report.json"
    report_file.unlink(missing_ok=True)
    command = ["run", str(script), "--format", "json", "--output", str(report_file), *options]
    if args:
        command += ["--", *args]
    result = CliRunner().invoke(cli, command)
    assert report_file.exists(), (result.output, result.exception)
    return result, json.loads(report_file.read_text())


def slugs(report: dict[str, Any]) -> set[str]:
    return {finding["rule"] for finding in report["findings"]}


def loud(report: dict[str, Any]) -> list[dict[str, Any]]:
    return [f for f in report["findings"] if f["severity"] in ("warning", "error")]


def line_of(script: Path, text: str) -> int:
    """The line number of ``text`` in ``script`` (so the tests don't hard-code line numbers)."""
    return next(n for n, line in enumerate(script.read_text().splitlines(), start=1) if text in line)


@pytest.mark.parametrize("name", ["clean_loop.py", "clean_argparse.py"])
def test_a_clean_script_is_silent(tmp_path: Path, name: str) -> None:
    result, report = run(tmp_path, SCRIPTS / name)
    assert loud(report) == []
    assert result.exit_code == 0
    assert report["script"]["status"] == "completed"
    assert report["steps"] == 32
    assert report["verdict"] == "healthy" and report["coverage"]["not_run"] == []
    assert report["script"]["watched"] == [{"model": "BertForSequenceClassification", "optimizers": ["AdamW"]}]


@pytest.mark.parametrize(
    ("name", "slug"),
    [
        ("missing_zero_grad.py", "grads-accumulating"),
        ("head_not_in_optimizer.py", "params-not-in-optimizer"),
        ("eval_without_eval_mode.py", "dropout-in-eval"),
    ],
)
def test_a_buggy_script_is_diagnosed(tmp_path: Path, name: str, slug: str) -> None:
    result, report = run(tmp_path, SCRIPTS / name)
    assert slug in slugs(report)
    assert result.exit_code == 1
    assert report["script"]["status"] == "completed"


def test_arguments_reach_the_script_and_its_output_is_untouched(tmp_path: Path) -> None:
    result, report = run(tmp_path, SCRIPTS / "clean_argparse.py", "--lr", "1e-3", "--steps", "5")
    assert result.exit_code == 0
    assert "argv=['--lr', '1e-3', '--steps', '5'] lr=0.001 steps=5\n" in result.stdout
    assert "done: 5 steps, last loss" in result.stderr
    assert report["steps"] == 5
    assert report["script"]["args"] == ["--lr", "1e-3", "--steps", "5"]


def test_a_crash_is_explained_by_the_finding_that_predicted_it(tmp_path: Path) -> None:
    script = SCRIPTS / "labels_shifted_crash.py"
    result, report = run(tmp_path, script)
    assert result.exit_code == 1
    crash = report["script"]["crash"]
    assert (crash["type"], crash["message"]) == ("IndexError", "Target 2 is out of bounds.")
    assert crash["path"].endswith("labels_shifted_crash.py")
    assert crash["line"] == line_of(script, "loss = model(input_ids=batch_ids, labels=batch_labels).loss")
    assert crash["explained_by"] == ["label-out-of-range"]
    finding = next(f for f in report["findings"] if f["rule"] == "label-out-of-range")
    assert finding["step"] == 0
    assert finding["evidence"]["explains_crash"] == "IndexError: Target 2 is out of bounds."
    assert "script-crashed" not in slugs(report)
    assert "IndexError: Target 2 is out of bounds." in result.stderr  # the script's traceback, as python prints it


def test_an_unexplained_crash_is_reported_with_the_users_line(tmp_path: Path) -> None:
    script = SCRIPTS / "unexplained_crash.py"
    result, report = run(tmp_path, script)
    assert result.exit_code == 1
    crashed = next(f for f in report["findings"] if f["rule"] == "script-crashed")
    assert crashed["severity"] == "error"
    assert crashed["line"] == line_of(script, 'labels=batch[key]')
    assert crashed["path"].endswith("unexplained_crash.py")
    assert crashed["step"] == 2  # two optimizer steps ran before the crash
    assert "KeyError: 'label'" in crashed["message"]
    assert report["script"]["crash"]["explained_by"] == []
    assert loud(report) == [crashed]  # the steps before the crash were healthy


def test_a_crash_fails_the_run_whatever_fail_on_says(tmp_path: Path) -> None:
    result, _ = run(tmp_path, SCRIPTS / "unexplained_crash.py", options=("--fail-on", "never"))
    assert result.exit_code == 1


def test_an_ignored_explaining_rule_leaves_the_crash_unexplained(tmp_path: Path) -> None:
    result, report = run(tmp_path, SCRIPTS / "labels_shifted_crash.py", options=("--ignore", "label-out-of-range"))
    assert result.exit_code == 1
    assert slugs(report) == {"script-crashed"}


def test_max_steps_stops_the_script_early(tmp_path: Path) -> None:
    result, report = run(tmp_path, SCRIPTS / "clean_argparse.py", options=("--max-steps", "3"))
    assert report["steps"] == 3
    assert report["script"]["status"] == "stopped"
    # stopped before its evaluation: the doctor says so instead of calling the run healthy
    assert report["verdict"] == "incomplete" and not report["coverage"]["observed"]["evaluation"]
    assert result.exit_code == 1
    result, report = run(tmp_path, SCRIPTS / "clean_argparse.py", options=("--max-steps", "3", "--fail-on", "error"))
    assert result.exit_code == 0 and loud(report) == []


def test_everything_is_restored_after_a_crash(tmp_path: Path) -> None:
    from torch.nn.modules import module as torch_module
    from torch.optim import optimizer as torch_optimizer

    optimizer_init = torch.optim.Optimizer.__init__
    cross_entropy = torch.nn.functional.cross_entropy
    backward = torch.autograd.backward
    argv, path, meta_path = list(sys.argv), list(sys.path), list(sys.meta_path)
    run(tmp_path, SCRIPTS / "labels_shifted_crash.py", options=("--max-steps", "50"))
    assert torch.optim.Optimizer.__init__ is optimizer_init
    assert torch.nn.functional.cross_entropy is cross_entropy
    assert torch.autograd.backward is backward
    assert (sys.argv, sys.path, sys.meta_path) == (argv, path, meta_path)
    assert not torch_optimizer._global_optimizer_post_hooks and not torch_optimizer._global_optimizer_pre_hooks
    assert not torch_module._global_forward_pre_hooks and not torch_module._global_forward_hooks
    assert "tinyset" not in sys.modules  # the script's own helper module is forgotten


def write_script(tmp_path: Path, body: str) -> Path:
    """A plain-torch script (no BERT) in its own folder."""
    folder = tmp_path / "user"
    folder.mkdir(exist_ok=True)
    script = folder / "train.py"
    prelude = """\
        import sys
        import torch

        model = torch.nn.Linear(4, 2)
        optimizer = torch.optim.SGD(model.parameters(), lr=0.1)

        def train_step():
            optimizer.zero_grad()
            logits = model(torch.randn(8, 4))
            torch.nn.functional.cross_entropy(logits, torch.randint(0, 2, (8,))).backward()
            optimizer.step()

        def evaluate():
            with torch.no_grad():
                torch.nn.functional.cross_entropy(model(torch.randn(8, 4)), torch.randint(0, 2, (8,)))
        """
    script.write_text(textwrap.dedent(prelude) + textwrap.dedent(body))
    return script


def test_sys_exit_zero_is_a_normal_end(tmp_path: Path) -> None:
    script = write_script(tmp_path, "train_step()\nevaluate()\nsys.exit(0)\nraise AssertionError('unreachable')\n")
    result, report = run(tmp_path, script)
    assert result.exit_code == 0
    assert (report["script"]["status"], report["steps"]) == ("completed", 1)


def test_sys_exit_nonzero_is_a_failure(tmp_path: Path) -> None:
    script = write_script(tmp_path, "train_step()\nsys.exit(3)\n")
    result, report = run(tmp_path, script)
    assert result.exit_code == 1
    assert "the script exited with status 3" in next(f for f in report["findings"] if f["rule"] == "script-crashed")["message"]


def test_ctrl_c_still_reports_what_was_found(tmp_path: Path) -> None:
    script = write_script(tmp_path, "train_step()\ntrain_step()\nraise KeyboardInterrupt\n")
    result, report = run(tmp_path, script)
    assert result.exit_code == 130
    assert (report["script"]["status"], report["steps"]) == ("interrupted", 2)


def test_the_script_runs_as_main_with_its_folder_on_the_path(tmp_path: Path) -> None:
    script = write_script(tmp_path, """\
        import helper
        print(f"name={__name__} argv0={sys.argv[0]} helper={helper.VALUE}")
        """)
    (script.parent / "helper.py").write_text("VALUE = 41 + 1\n")
    result, _ = run(tmp_path, script)
    assert f"name=__main__ argv0={script} helper=42" in result.stdout
    assert "helper" not in sys.modules


def test_a_missing_script_is_a_usage_error(tmp_path: Path) -> None:
    from ftdoctor.errors import FtdoctorError

    result = CliRunner().invoke(cli, ["run", str(tmp_path / "nope.py")])
    assert isinstance(result.exception, FtdoctorError)
    assert "nope.py does not exist" in str(result.exception)


def _catalogue_examples() -> list[Any]:
    from ftdoctor.catalogue import lookup

    doc = lookup("script-crashed")
    assert doc is not None and doc.bad_examples and doc.good_examples
    return [pytest.param(code, True, id=f"bad-{i}") for i, code in enumerate(doc.bad_examples)] + [
        pytest.param(code, False, id=f"good-{i}") for i, code in enumerate(doc.good_examples)
    ]


@pytest.mark.parametrize(("code", "crashes"), _catalogue_examples())
def test_script_crashed_catalogue_examples(tmp_path: Path, code: str, crashes: bool) -> None:
    from ftdoctor.runner.script import diagnose_script

    script = tmp_path / "example.py"
    script.write_text(code)
    report = diagnose_script(script)
    assert ("script-crashed" in {f.rule for f in report.findings}) is crashes
    loud_rules = {f.rule for f in report.findings if f.severity.value in ("warning", "error")}
    assert loud_rules == ({"script-crashed"} if crashes else set())


def test_a_script_that_builds_no_optimizer_watches_nothing(tmp_path: Path) -> None:
    script = tmp_path / "report_only.py"
    script.write_text("print('nothing to train')\n")
    result, report = run(tmp_path, script)
    assert report["script"]["watched"] == [] and report["findings"] == []
    assert "built no optimizer" in result.stderr
    # the doctor saw nothing, so it must not call the run healthy (contract: incomplete exits 1)
    assert report["verdict"] == "incomplete" and not any(report["coverage"]["observed"].values())
    assert result.exit_code == 1


def test_the_text_report_says_what_the_crash_was_and_what_explains_it(tmp_path: Path) -> None:
    script = SCRIPTS / "labels_shifted_crash.py"
    text_file = tmp_path / "report.txt"
    result = CliRunner().invoke(cli, ["run", str(script), "--output", str(text_file)])
    assert result.exit_code == 1
    text = " ".join(text_file.read_text().replace("│", " ").split())  # rich wraps long lines inside the panel
    assert "Training crashed" in text
    line = line_of(script, "loss = model(input_ids=batch_ids, labels=batch_labels).loss")
    assert (
        f"IndexError: Target 2 is out of bounds. at fixtures/user_scripts/labels_shifted_crash.py:{line}"
        " — explained by label-out-of-range"
    ) in text


def test_ftdoctors_own_modules_survive_a_script_in_a_folder_above_them(tmp_path: Path) -> None:
    import ftdoctor
    from ftdoctor.runner.script import _as_main_program

    package_parent = Path(ftdoctor.__file__).resolve().parent.parent
    sys.modules.pop("ftdoctor.runner.distributed", None)  # imported for the first time during the "run"
    with _as_main_program(package_parent / "train.py", ["train.py"]):
        import ftdoctor.runner.distributed  # noqa: F401
    assert "ftdoctor.runner.distributed" in sys.modules
