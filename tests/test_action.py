"""The GitHub Action (action.yml): valid metadata, and its shell steps run as GitHub would run them.

GitHub runs each composite `run:` step as `bash --noprofile --norc -eo pipefail FILE` after
substituting `${{ ... }}` expressions, with `GITHUB_OUTPUT` a file of `name=value` lines and
`RUNNER_TEMP` a scratch folder. The tests do the same against a temporary user repository. The
interpreter given as the `python` input is a stand-in that records `venv`/`pip` calls instead of
reaching a package index and runs `-m ftdoctor` from this checkout, so no network is needed.
`uses:` steps (the SARIF upload) are not run; the tests check whether they would run and with what.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]
ACTION = yaml.safe_load((REPO / "action.yml").read_text(encoding="utf-8"))
SCHEMA = json.loads((REPO / "tests" / "schemas" / "github-action.schema.json").read_text(encoding="utf-8"))

BUGGY = """import torch
from transformers import AutoModelForSequenceClassification

torch.manual_seed(0)
model = AutoModelForSequenceClassification.from_pretrained("bert-base-uncased", num_labels=2)
optimizer = torch.optim.AdamW(model.parameters(), lr=2e-5)
model.train()
for epoch in range(3):
    for batch in loader:
        loss = model(**batch).loss
        loss.backward()
        optimizer.step()
"""
CLEAN = BUGGY.replace("        optimizer.step()\n", "        optimizer.step()\n        optimizer.zero_grad()\n")

# A Python that creates "virtualenvs" holding itself and records pip installs.
FAKE_PYTHON = """#!/usr/bin/env bash
if [ "$1" = "-m" ] && [ "$2" = "venv" ]; then
  mkdir -p "$3/bin" && cp "$0" "$3/bin/python" && echo "venv $3" >> "$FTD_TEST_LOG"; exit 0
fi
if [ "$1" = "-m" ] && [ "$2" = "pip" ]; then echo "pip ${*:3}" >> "$FTD_TEST_LOG"; exit 0; fi
PYTHONPATH="$FTD_TEST_REPO" exec "$FTD_TEST_REAL_PYTHON" "$@"
"""

_EXPRESSION = re.compile(r"\$\{\{\s*(.*?)\s*\}\}")


# ------------------------------------------------------------------------ a tiny runner


@dataclass
class StepResult:
    name: str
    ran: bool
    exit_code: int = 0
    stdout: str = ""
    stderr: str = ""
    outputs: dict[str, str] = field(default_factory=dict)
    uses: str | None = None
    with_: dict[str, str] = field(default_factory=dict)


@dataclass
class ActionRun:
    steps: list[StepResult]
    outputs: dict[str, str]
    log: list[str]

    def step(self, name_part: str) -> StepResult:
        never_reached = StepResult(f"{name_part} (never reached)", ran=False)
        return next((step for step in self.steps if name_part in step.name), never_reached)

    @property
    def failed(self) -> bool:
        return any(step.exit_code != 0 for step in self.steps)


class Context:
    def __init__(self, inputs: dict[str, str], action_path: Path) -> None:
        declared = ACTION["inputs"]
        unknown = set(inputs) - set(declared)
        assert not unknown, f"not inputs of the action: {unknown}"
        self.inputs = {name: str(spec.get("default", "")) for name, spec in declared.items()} | inputs
        self.action_path = str(action_path)
        self.steps: dict[str, dict[str, str]] = {}

    def value(self, expression: str) -> str:
        parts = expression.split(".")
        if parts[0] == "inputs" and len(parts) == 2:
            return self.inputs.get(parts[1], "")
        if expression == "github.action_path":
            return self.action_path
        if parts[0] == "steps" and len(parts) == 4 and parts[2] == "outputs":
            return self.steps.get(parts[1], {}).get(parts[3], "")
        raise AssertionError(f"expression this runner does not know (add it, or keep the action simpler): {expression}")

    def substitute(self, text: str) -> str:
        return _EXPRESSION.sub(lambda m: self.value(m.group(1)), text)

    def condition(self, condition: Any) -> bool:
        if condition is None:
            return True
        text = _EXPRESSION.sub(lambda m: m.group(1), str(condition)).strip()
        match = re.fullmatch(r"([\w.-]+)\s*(==|!=)\s*'([^']*)'", text)
        if match:
            equal = self.value(match.group(1)) == match.group(3)
            return equal if match.group(2) == "==" else not equal
        raise AssertionError(f"condition this runner does not know: {condition}")


def run_action(workspace: Path, tmp_path: Path, **inputs: str) -> ActionRun:
    fake = tmp_path / "fake-python"
    fake.write_text(FAKE_PYTHON)
    fake.chmod(0o755)
    log = tmp_path / "calls.log"
    log.touch()
    inputs.setdefault("python", str(fake))
    context = Context({key.replace("_", "-"): value for key, value in inputs.items()}, REPO)
    runner_temp = tmp_path / "runner-temp"
    runner_temp.mkdir(exist_ok=True)
    results: list[StepResult] = []
    for index, step in enumerate(ACTION["runs"]["steps"]):
        name = step.get("name", f"step {index}")
        if not context.condition(step.get("if")):
            results.append(StepResult(name, ran=False, uses=step.get("uses")))
            continue
        if "uses" in step:
            with_ = {key: context.substitute(str(value)) for key, value in step.get("with", {}).items()}
            results.append(StepResult(name, ran=True, uses=step["uses"], with_=with_))
            continue
        assert step["shell"] == "bash"
        result = _run_shell_step(step, name, context, workspace, runner_temp, tmp_path / f"output-{index}", {
            "FTD_TEST_LOG": str(log), "FTD_TEST_REPO": str(REPO), "FTD_TEST_REAL_PYTHON": sys.executable,
        })
        results.append(result)
        if "id" in step:
            context.steps[step["id"]] = result.outputs
        if result.exit_code != 0:
            break  # a failed step ends the job, as on GitHub
    outputs = {name: context.substitute(spec["value"]) for name, spec in ACTION["outputs"].items()}
    return ActionRun(results, outputs, log.read_text().splitlines())


def _run_shell_step(step: dict[str, Any], name: str, context: Context, workspace: Path, runner_temp: Path,
                    output_file: Path, test_env: dict[str, str]) -> StepResult:
    script = output_file.with_suffix(".sh")
    script.write_text(context.substitute(step["run"]))
    output_file.touch()
    env = {"PATH": os.environ["PATH"], "HOME": os.environ.get("HOME", str(runner_temp)), "GITHUB_OUTPUT": str(output_file),
           "RUNNER_TEMP": str(runner_temp), "GITHUB_ACTION_PATH": str(REPO), **test_env}
    env.update({key: context.substitute(str(value)) for key, value in step.get("env", {}).items()})
    done = subprocess.run(["bash", "--noprofile", "--norc", "-eo", "pipefail", str(script)], cwd=workspace, env=env,
                          capture_output=True, text=True, timeout=120)
    outputs = dict(line.split("=", 1) for line in output_file.read_text().splitlines() if "=" in line)
    return StepResult(name, ran=True, exit_code=done.returncode, stdout=done.stdout, stderr=done.stderr, outputs=outputs)


@pytest.fixture()
def workspace(tmp_path: Path) -> Path:
    repo = tmp_path / "user-repo"
    (repo / "src").mkdir(parents=True)
    (repo / "src" / "clean.py").write_text(CLEAN)
    return repo


# ------------------------------------------------------------------------------- schema


def test_action_metadata_is_valid() -> None:
    jsonschema.validate(ACTION, SCHEMA)


@pytest.mark.parametrize("break_it", [
    lambda a: a["runs"]["steps"][0].pop("shell"),  # a composite run step must name its shell
    lambda a: a.pop("description"),
    lambda a: a["inputs"]["paths"].pop("description"),
    lambda a: a["runs"].__setitem__("using", "node18"),
    lambda a: a["runs"]["steps"].append({"uses": "no-version"}),
])
def test_schema_rejects_broken_metadata(break_it: Any) -> None:
    broken = yaml.safe_load((REPO / "action.yml").read_text(encoding="utf-8"))
    break_it(broken)
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(broken, SCHEMA)


def test_action_is_composite_with_the_contracts_steps() -> None:
    assert ACTION["runs"]["using"] == "composite"
    assert {"paths", "fail-on", "sarif"} <= set(ACTION["inputs"])
    uploads = [s for s in ACTION["runs"]["steps"] if s.get("uses", "").startswith("github/codeql-action/upload-sarif@")]
    assert len(uploads) == 1 and "inputs.sarif" in uploads[0]["if"]


# ---------------------------------------------------------------------------- behaviour


def test_clean_repository_passes_and_installs_this_project(workspace: Path, tmp_path: Path) -> None:
    run = run_action(workspace, tmp_path, paths="src")
    assert not run.failed, [(s.name, s.stderr) for s in run.steps]
    assert run.outputs["exit-code"] == "0"
    assert run.step("Check").stdout == ""
    installs = [line for line in run.log if line.startswith("pip ")]
    assert installs and installs[0].endswith(str(REPO))  # the action's own path, not a PyPI name
    assert any(line.startswith("venv ") and str(tmp_path / "runner-temp") in line for line in run.log)
    assert re.search(r"\d+\.\d+\.\d+", run.step("Install").stdout)  # `ftdoctor --version` of the installed copy


def test_findings_annotate_and_fail_the_job(workspace: Path, tmp_path: Path) -> None:
    (workspace / "src" / "bad.py").write_text(BUGGY)
    run = run_action(workspace, tmp_path, paths="src")
    check = run.step("Check")
    assert check.exit_code == 1 and run.outputs["exit-code"] == "1"
    assert re.search(r"^::error file=src/bad\.py,line=\d+.*title=FTD101 missing-zero-grad::", check.stdout, re.M)
    assert "clean.py" not in check.stdout


def test_fail_on_never_annotates_without_failing(workspace: Path, tmp_path: Path) -> None:
    (workspace / "src" / "bad.py").write_text(BUGGY)
    run = run_action(workspace, tmp_path, paths="src", fail_on="never")
    assert not run.failed and run.outputs["exit-code"] == "0"
    assert "missing-zero-grad" in run.step("Check").stdout


def test_several_paths_and_extra_args(workspace: Path, tmp_path: Path) -> None:
    (workspace / "other").mkdir()
    (workspace / "other" / "bad.py").write_text(BUGGY)
    (workspace / "src" / "bad.py").write_text(BUGGY)
    run = run_action(workspace, tmp_path, paths="src other", args="--ignore missing-zero-grad")
    assert run.outputs["exit-code"] == "0", run.step("Check").stdout
    run = run_action(workspace, tmp_path, paths="src other")
    assert {"src/bad.py", "other/bad.py"} <= set(re.findall(r"file=([\w/.]+)", run.step("Check").stdout))


def test_sarif_is_written_and_uploaded_only_when_asked(workspace: Path, tmp_path: Path) -> None:
    (workspace / "src" / "bad.py").write_text(BUGGY)
    run = run_action(workspace, tmp_path, paths="src", sarif="true", sarif_file="out/ftdoctor.sarif")
    upload = run.step("Upload")
    assert upload.ran and upload.with_["sarif_file"] == "out/ftdoctor.sarif"
    assert run.outputs["sarif-file"] == "out/ftdoctor.sarif"
    sarif = json.loads((workspace / "out" / "ftdoctor.sarif").read_text())
    assert sarif["version"] == "2.1.0"
    assert any(r["ruleId"] == "FTD101" for r in sarif["runs"][0]["results"])
    assert run.step("Check").exit_code == 1  # the gate still runs after the upload

    run = run_action(workspace, tmp_path, paths="src")
    assert not run.step("Upload").ran and not run.step("SARIF report").ran
    assert run.outputs["sarif-file"] == ""


def test_inputs_are_data_not_code(workspace: Path, tmp_path: Path) -> None:
    run = run_action(workspace, tmp_path, paths='src"; touch pwned; echo "', args="$(touch pwned2)")
    assert not (workspace / "pwned").exists() and not (workspace / "pwned2").exists()
    assert run.step("Check").exit_code == 2  # the odd "paths" do not exist: a usage error, not a shell one


def test_usage_error_fails_the_job(workspace: Path, tmp_path: Path) -> None:
    run = run_action(workspace, tmp_path, paths="missing/")
    check = run.step("Check")
    assert check.exit_code == 2 and "no such file or directory" in check.stderr
