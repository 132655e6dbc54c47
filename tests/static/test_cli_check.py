"""`ftdoctor check` as users drive it: formats, rule selection, fail-on, output, exit codes.

The marker engine (conftest) stands in for the rules: BUG() error, WARN() warning, INFO() info.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

pytestmark = pytest.mark.usefixtures("marker_engine")

SCRIPT = """import torch

def train():
    for batch in loader:
        BUG()
    WARN()
    INFO()
"""


@pytest.fixture
def project(tmp_path: Path) -> Path:
    (tmp_path / "train.py").write_text(SCRIPT)
    (tmp_path / "clean.py").write_text("x = 1\n")
    return tmp_path


def test_text_report_shows_location_line_caret_fix_and_summary(run_check, project: Path) -> None:
    result = run_check("check", "train.py", "clean.py", cwd=project)
    assert result.code == 1
    assert "train.py:5:9: FTD101 missing-zero-grad [error] marker BUG called" in result.stdout
    lines = result.stdout.splitlines()
    source_row = next(i for i, line in enumerate(lines) if line.endswith("|         BUG()"))
    assert lines[source_row + 1].endswith("|         ^^^^^")
    assert "= fix: remove BUG()" in result.stdout
    assert lines[-1] == "Found 1 error, 1 warning, 1 info in 1 file (2 checked)."
    assert "\x1b[" not in result.stdout  # not a terminal: plain text


def test_quiet_prints_only_findings_and_summary(run_check, project: Path) -> None:
    result = run_check("check", "-q", "train.py", cwd=project)
    lines = [line for line in result.stdout.splitlines() if line]
    assert len(lines) == 4 and lines[-1].startswith("Found 1 error")
    assert not any("fix:" in line or "|" in line for line in lines)


def test_clean_file_exits_zero_with_summary(run_check, project: Path) -> None:
    result = run_check("check", "clean.py", cwd=project)
    assert (result.code, result.stdout.strip()) == (0, "No findings in 1 file checked.")


def test_json_report_has_the_contract_shape(run_check, project: Path) -> None:
    data = json.loads(run_check("check", "--format", "json", ".", cwd=project).stdout)
    assert set(data) == {"tool", "version", "mode", "files_checked", "findings", "summary"}
    assert (data["tool"], data["mode"], data["files_checked"]) == ("ftdoctor", "check", 2)
    assert data["summary"] == {"error": 1, "warning": 1, "info": 1}
    first = data["findings"][0]
    assert set(first) == {"rule", "code", "severity", "message", "fix", "path", "line", "column", "end_line", "end_column"}
    assert (first["rule"], first["code"], first["path"], first["line"], first["column"]) == (
        "missing-zero-grad", "FTD101", "train.py", 5, 9)


def test_github_format_emits_annotations(run_check, project: Path) -> None:
    out = run_check("check", "--format", "github", "train.py", cwd=project).stdout.splitlines()
    assert out[0].startswith("::error file=train.py,line=5,col=9,endLine=5,endColumn=14,title=FTD101 missing-zero-grad::")
    assert out[1].startswith("::warning ") and out[2].startswith("::notice ")


def test_sarif_format_is_json_with_results(run_check, project: Path) -> None:
    data = json.loads(run_check("check", "--format", "sarif", "train.py", cwd=project).stdout)
    assert data["version"] == "2.1.0"
    assert [r["ruleId"] for r in data["runs"][0]["results"]] == ["FTD101", "FTD118", "FTD125"]


@pytest.mark.parametrize(
    ("options", "expected_rules"),
    [
        (["--select", "FTD101"], {"missing-zero-grad"}),
        (["--select", "seed-not-set,train-loader-not-shuffled"], {"seed-not-set", "train-loader-not-shuffled"}),
        (["--select", "FTD1", "--ignore", "FTD11"], {"missing-zero-grad", "seed-not-set"}),
        (["--ignore", "missing-zero-grad", "--ignore", "FTD125"], {"train-loader-not-shuffled"}),
        (["--select", "ALL"], {"missing-zero-grad", "train-loader-not-shuffled", "seed-not-set"}),
    ],
)
def test_select_and_ignore(run_check, project: Path, options: list[str], expected_rules: set[str]) -> None:
    data = json.loads(run_check("check", "--format", "json", *options, "train.py", cwd=project).stdout)
    assert {f["rule"] for f in data["findings"]} == expected_rules


def test_unknown_selector_is_a_usage_error_naming_it(run_check, project: Path) -> None:
    result = run_check("check", "--select", "no-such-rule", "train.py", cwd=project)
    assert result.code == 2
    assert "--select" in result.stderr and "no-such-rule" in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize(
    ("select", "fail_on", "code"),
    [
        ("ALL", "never", 0),
        ("ALL", "error", 1),
        ("train-loader-not-shuffled", "error", 0),  # a warning does not fail at error
        ("train-loader-not-shuffled", "warning", 1),
        ("seed-not-set", "warning", 0),  # info findings do not fail at warning (the default)
        ("seed-not-set", "info", 1),
    ],
)
def test_fail_on_thresholds(run_check, project: Path, select: str, fail_on: str, code: int) -> None:
    assert run_check("check", "--select", select, "--fail-on", fail_on, "train.py", cwd=project).code == code


def test_default_fail_on_is_warning(run_check, project: Path) -> None:
    assert run_check("check", "--select", "seed-not-set", "train.py", cwd=project).code == 0
    assert run_check("check", "--select", "train-loader-not-shuffled", "train.py", cwd=project).code == 1


@pytest.mark.parametrize("fmt", ["text", "json", "sarif", "github"])
def test_output_file_gets_the_report_and_stdout_stays_empty(run_check, project: Path, fmt: str) -> None:
    (project / "out").mkdir()
    result = run_check("check", "--format", fmt, "--output", "out/report.txt", "train.py", cwd=project)
    assert result.code == 1 and result.stdout == ""
    written = (project / "out" / "report.txt").read_text()
    assert "FTD101" in written and "\x1b[" not in written
    assert os.listdir(project / "out") == ["report.txt"]  # no temporary file left behind
    if fmt in ("json", "sarif"):
        json.loads(written)


def test_output_to_unwritable_place_is_exit_2(run_check, project: Path) -> None:
    result = run_check("check", "--output", "missing-dir/report.txt", "train.py", cwd=project)
    assert result.code == 2 and "missing-dir/report.txt" in result.stderr


def test_missing_path_is_exit_2_naming_it(run_check, project: Path) -> None:
    result = run_check("check", "train.py", "nope/absent.py", cwd=project)
    assert result.code == 2
    assert "'nope/absent.py'" in result.stderr and "Traceback" not in result.stderr
    assert result.stdout == ""


def test_no_paths_is_a_usage_error(run_check, project: Path) -> None:
    assert run_check("check", cwd=project).code == 2


def test_parse_error_counts_as_error_and_other_files_are_still_checked(run_check, project: Path) -> None:
    (project / "broken.py").write_text("def broken(:\n")
    data = json.loads(run_check("check", "--format", "json", "--select", "FTD100,FTD101", ".", cwd=project).stdout)
    assert {(f["path"], f["rule"]) for f in data["findings"]} == {("broken.py", "parse-error"), ("train.py", "missing-zero-grad")}
    assert run_check("check", "--select", "parse-error", "broken.py", cwd=project).code == 1


def test_statistics_counts_per_rule(run_check, project: Path) -> None:
    (project / "more.py").write_text("BUG()\nBUG()\n")
    result = run_check("check", "--statistics", ".", cwd=project)
    assert result.code == 1
    rows = [line.split() for line in result.stdout.splitlines()[1:4]]
    assert rows[0] == ["3", "FTD101", "missing-zero-grad", "error"]
    assert {tuple(row[:3]) for row in rows[1:]} == {("1", "FTD118", "train-loader-not-shuffled"), ("1", "FTD125", "seed-not-set")}
    data = json.loads(run_check("check", "--statistics", "--format", "json", ".", cwd=project).stdout)
    assert data[0] == {"code": "FTD101", "rule": "missing-zero-grad", "severity": "error", "count": 3}


def test_statistics_refuses_sarif(run_check, project: Path) -> None:
    assert run_check("check", "--statistics", "--format", "sarif", ".", cwd=project).code == 2


def test_help_teaches_with_examples(run_check) -> None:
    result = run_check("check", "--help")
    assert result.code == 0
    for text in ("Examples:", "--baseline", "--write-baseline", "--statistics", "--fail-on", "# noqa: FTD101", "Exit status"):
        assert text in result.stdout


def test_explicit_non_python_suffix_is_checked_as_python(run_check, project: Path) -> None:
    (project / "train_script").write_text("BUG()\n")
    assert run_check("check", "train_script", cwd=project).code == 1


def test_same_file_twice_is_checked_once(run_check, project: Path) -> None:
    data = json.loads(run_check("check", "--format", "json", "train.py", "./train.py", ".", cwd=project).stdout)
    assert data["files_checked"] == 2


def test_parallel_and_serial_agree(run_check, tmp_path: Path) -> None:
    for i in range(60):
        (tmp_path / f"script_{i:02d}.py").write_text("x = 1\n" * (i % 5) + ("BUG()\n" if i % 3 == 0 else "INFO()\n"))
    (tmp_path / "broken.py").write_text("def (\n")
    serial = json.loads(run_check("check", "--no-parallel", "--format", "json", ".", cwd=tmp_path).stdout)
    parallel = json.loads(run_check("check", "--parallel", "--format", "json", ".", cwd=tmp_path).stdout)
    assert serial == parallel
    assert serial["files_checked"] == 61 and serial["summary"]["error"] == 21


def test_rules_command_lists_every_rule(run_check) -> None:
    from ftdoctor.catalogue import load_catalogue

    result = run_check("rules")
    assert result.code == 0
    lines = result.stdout.splitlines()
    assert len(lines) == len(load_catalogue())
    assert lines[1].split()[:4] == ["FTD101", "missing-zero-grad", "static", "error"]
    runtime = json.loads(run_check("rules", "--kind", "runtime", "--format", "json").stdout)
    assert runtime and all("runtime" in row["kind"] for row in runtime)
    assert {"code", "slug", "kind", "severity", "fix", "summary"} == set(runtime[0])
    assert all(row["fix"] == "none" for row in runtime if "static" not in row["kind"])  # fixes are for code, not runs


def test_explain_by_slug_and_code(run_check) -> None:
    by_slug = run_check("explain", "missing-zero-grad")
    assert by_slug.code == 0 and by_slug.stdout.startswith("# FTD101 missing-zero-grad")
    assert "## How to fix" in by_slug.stdout
    assert run_check("explain", "ftd101").stdout == by_slug.stdout


def test_explain_unknown_rule_suggests_close_names(run_check) -> None:
    result = run_check("explain", "missing-zero-grd")
    assert result.code == 2 and "did you mean missing-zero-grad" in result.stderr
