"""--write-baseline / --baseline: accept today's findings, fail only on new ones."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

pytestmark = pytest.mark.usefixtures("marker_engine")

SCRIPT = "import torch\n\nfor batch in loader:\n    BUG()\n    WARN()\n"


@pytest.fixture
def project(tmp_path: Path) -> Path:
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "train.py").write_text(SCRIPT)
    return tmp_path


def findings(run_check, cwd: Path, *args: str) -> list[tuple[str, int]]:
    result = run_check("check", "--format", "json", *args, cwd=cwd)
    assert result.code in (0, 1), result.stderr
    return [(f["rule"], f["line"]) for f in json.loads(result.stdout)["findings"]]


def test_round_trip_silences_recorded_findings(run_check, project: Path) -> None:
    written = run_check("check", "--write-baseline", "baseline.json", "src", cwd=project)
    assert written.code == 0 and "recorded 2 findings in baseline.json" in written.stderr
    data = json.loads((project / "baseline.json").read_text())
    assert [(e["path"], e["rule"]) for e in data["findings"]] == [
        ("src/train.py", "missing-zero-grad"), ("src/train.py", "train-loader-not-shuffled")]
    result = run_check("check", "--baseline", "baseline.json", "src", cwd=project)
    assert result.code == 0 and result.stdout.strip() == "No findings in 1 file checked."


def test_baselined_findings_survive_lines_moving(run_check, project: Path) -> None:
    run_check("check", "--write-baseline", "baseline.json", "src", cwd=project)
    (project / "src" / "train.py").write_text('"""Docs."""\nimport os\n\n' + SCRIPT.replace("    BUG()", "\n\n    BUG()"))
    assert findings(run_check, project, "--baseline", "baseline.json", "src") == []


def test_new_findings_are_reported(run_check, project: Path) -> None:
    run_check("check", "--write-baseline", "baseline.json", "src", cwd=project)
    (project / "src" / "train.py").write_text(SCRIPT + "    BUG()\nBUG(1)\n")
    # a second identical `BUG()` line is new (occurrence index), and so is a changed line
    assert findings(run_check, project, "--baseline", "baseline.json", "src") == [("missing-zero-grad", 6), ("missing-zero-grad", 7)]
    assert run_check("check", "--baseline", "baseline.json", "src", cwd=project).code == 1


def test_baseline_works_from_another_working_directory(run_check, project: Path) -> None:
    run_check("check", "--write-baseline", "baseline.json", "src", cwd=project)
    assert findings(run_check, project / "src", "--baseline", "../baseline.json", "train.py") == []


def test_a_fixed_finding_does_not_hide_a_new_one_of_another_rule(run_check, project: Path) -> None:
    run_check("check", "--write-baseline", "baseline.json", "src", cwd=project)
    (project / "src" / "train.py").write_text(SCRIPT.replace("WARN()", "INFO()"))
    assert findings(run_check, project, "--baseline", "baseline.json", "src") == [("seed-not-set", 5)]


@pytest.mark.parametrize(("content", "message"), [(None, "no such file"), ("{}", "not an ftdoctor baseline"), ("[", "not a readable")])
def test_bad_baseline_file_is_exit_2(run_check, project: Path, content: str | None, message: str) -> None:
    if content is not None:
        (project / "baseline.json").write_text(content)
    result = run_check("check", "--baseline", "baseline.json", "src", cwd=project)
    assert result.code == 2 and message in result.stderr and "baseline.json" in result.stderr
