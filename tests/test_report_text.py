"""The text report: plain for pipes and files, rich on a terminal, check and run reports."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from ftdoctor.catalogue import make_finding
from ftdoctor.findings import CORE_SIGNALS, Report
from ftdoctor.report import render, rule_counts, write_report
from ftdoctor.report.text import summary_line


@pytest.fixture
def in_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    return tmp_path


def check_report(files_checked: int = 12) -> Report:
    return Report(mode="check", files_checked=files_checked, findings=[
        make_finding("missing-zero-grad", "never cleared", "call zero_grad()", path="b.py", line=2, column=5, end_line=2, end_column=20),
        make_finding("seed-not-set", "no seed", "set one", path="a.py", line=1, column=1),
        make_finding("train-loader-not-shuffled", "not shuffled", "shuffle=True", path="b.py", line=1, column=1),
        make_finding("missing-eval-mode", "eval without eval()", "call model.eval()", path="b.py", line=3, column=1),
    ])


def test_summary_line_wording() -> None:
    assert summary_line(check_report()) == "Found 1 error, 2 warnings, 1 info in 2 files (12 checked)."
    assert summary_line(Report(mode="check", files_checked=1)) == "No findings in 1 file checked."
    run = Report(mode="run", steps=1, findings=[make_finding("train-loader-not-shuffled", "m", "f", step=1)])
    assert summary_line(run) == "Found 1 warning in 1 step."
    watched = {"observed": dict.fromkeys(CORE_SIGNALS, True), "not_run": []}
    assert summary_line(Report(mode="run", steps=30, coverage=watched)) == "No findings in 30 steps."
    assert summary_line(Report(mode="run", steps=0)) == (  # no doctor watched anything: never "no findings" alone
        "No findings in 0 steps, but the run is incomplete: the doctor never saw loss, backward, optimizer step, "
        "labels, logits or evaluation.")


def test_plain_text_groups_by_file_with_caret_under_the_span(in_tmp: Path) -> None:
    (in_tmp / "b.py").write_text("loader = DataLoader(ds)\n    loss.backward()   # here\nevaluate()\n")
    text = render(check_report(), "text", color=False)
    headings = [line.split(": ")[0] for line in text.splitlines() if line and not line.startswith(" ")]
    assert headings[:4] == ["a.py:1:1", "b.py:1:1", "b.py:2:5", "b.py:3:1"]
    block = text.split("b.py:2:5: ")[1].splitlines()
    assert block[0] == "FTD101 missing-zero-grad [error] never cleared"
    assert block[1] == "  2 |     loss.backward()   # here"
    assert block[2] == "    |     ^^^^^^^^^^^^^^^"
    assert block[3] == "    = fix: call zero_grad()"
    assert "a.py:1:1: FTD125 seed-not-set [info] no seed\n  = fix: set one" in text  # a.py is gone: no snippet


def test_caret_counts_characters_not_bytes(in_tmp: Path) -> None:
    (in_tmp / "u.py").write_text("print('héllo'); loss.backward()\n")
    column = len("print('héllo'); ".encode()) + 1  # ast columns are UTF-8 byte offsets
    finding = make_finding("missing-zero-grad", "m", "f", path="u.py", line=1, column=column, end_line=1, end_column=column + 15)
    lines = render(Report(mode="check", files_checked=1, findings=[finding]), "text", color=False).splitlines()
    assert lines[2] == "    | " + " " * len("print('héllo'); ") + "^" * 15


def test_rich_text_on_a_terminal_has_colour_and_the_same_content(in_tmp: Path) -> None:
    (in_tmp / "b.py").write_text("x\n    loss.backward()\n")
    text = render(check_report(), "text", color=True)
    assert "\x1b[" in text
    plain = _strip_ansi(text)
    assert "b.py" in plain and "FTD101" in plain and "loss.backward()" in plain and "^^^^^^^^^^^^^^^" in plain
    assert "Found 1 error, 2 warnings, 1 info in 2 files (12 checked)." in plain


def test_run_report_renders_step_evidence_metrics_and_overhead(in_tmp: Path) -> None:
    (in_tmp / "train.py").write_text("a\nb\n    optimizer.step()\n")
    report = Report(mode="run", steps=200, overhead=0.031, metrics={"val_loss": 0.52, "val_accuracy": None}, findings=[
        make_finding("lr-too-high", "updates are 10% of the weights", "lower lr", step=12,
                     path="train.py", line=3, column=5, evidence={"update_ratio": 0.1, "threshold": 0.01}),
        make_finding("grads-accumulating", "grad norm grows", "zero the grads", step=3, evidence={"params": list(range(10))}),
    ])
    for color in (False, True):
        text = _strip_ansi(render(report, "text", color=color))
        assert text.index("grads-accumulating") < text.index("lr-too-high")  # the run reads in step order
        assert "step 3" in text and "step 12" in text
        assert "update_ratio=0.1, threshold=0.01" in text
        assert "params=[0, 1, 2, 3, 4, 5, … 4 more]" in text
        assert "train.py:3:5" in text and "optimizer.step()" in text
        assert "Metrics: val_loss 0.52, val_accuracy n/a" in text
        assert "Steps: 200, doctor overhead 3.1%" in text


def test_write_report_to_a_file_is_plain_and_atomic(in_tmp: Path) -> None:
    (in_tmp / "report.txt").write_text("old")
    os.chmod(in_tmp / "report.txt", 0o640)
    write_report(check_report(), "text", "report.txt")
    text = (in_tmp / "report.txt").read_text()
    assert "\x1b[" not in text and text.endswith("(12 checked).\n")
    assert sorted(os.listdir(in_tmp)) == ["report.txt"]
    assert (os.stat(in_tmp / "report.txt").st_mode & 0o777) == 0o640


def test_json_render_is_report_to_dict() -> None:
    report = check_report()
    assert json.loads(render(report, "json")) == report.to_dict()


def test_rule_counts_most_frequent_first() -> None:
    report = check_report()
    report.findings.append(make_finding("seed-not-set", "again", "f", path="c.py", line=1))
    assert [(row.rule, row.count) for row in rule_counts(report)][:2] == [("seed-not-set", 2), ("missing-zero-grad", 1)]


def _strip_ansi(text: str) -> str:
    import re

    return re.sub(r"\x1b\[[0-9;]*m", "", text)


def test_write_report_follows_symlinks(in_tmp: Path) -> None:
    (in_tmp / "real.txt").write_text("old")
    os.symlink(in_tmp / "real.txt", in_tmp / "link.txt")
    write_report(check_report(), "json", "link.txt")
    assert (in_tmp / "link.txt").is_symlink()
    assert json.loads((in_tmp / "real.txt").read_text())["files_checked"] == 12


def test_write_report_to_a_non_regular_file_writes_in_place(in_tmp: Path) -> None:
    """`-o /dev/null` (or a FIFO) must be written to, never replaced by a regular file."""
    import stat
    import threading

    fifo = in_tmp / "pipe"
    os.mkfifo(fifo)
    received: list[str] = []
    reader = threading.Thread(target=lambda: received.append(fifo.read_text()))
    reader.start()
    write_report(check_report(), "json", str(fifo))
    reader.join(timeout=10)
    assert stat.S_ISFIFO(os.stat(fifo).st_mode)
    assert json.loads(received[0])["files_checked"] == 12
    assert sorted(os.listdir(in_tmp)) == ["pipe"]


def test_json_and_sarif_stay_strict_json_with_non_finite_numbers() -> None:
    report = Report(mode="run", steps=3, overhead=float("nan"), metrics={"train_loss": float("inf"), "val_loss": 0.5},
                    findings=[make_finding("non-finite-loss", "loss is nan", "lower lr", step=2,
                                           evidence={"loss": float("nan"), "params": {"a", "b"}, "shape": (2, 3)})])
    data = json.loads(render(report, "json"), parse_constant=lambda token: pytest.fail(f"{token} is not JSON"))
    assert data["metrics"] == {"train_loss": None, "val_loss": 0.5} and data["overhead"] is None
    assert data["findings"][0]["evidence"] == {"loss": None, "params": ["a", "b"], "shape": [2, 3]}
    sarif = json.loads(render(report, "sarif"), parse_constant=lambda token: pytest.fail(f"{token} is not JSON"))
    assert sarif["runs"][0]["results"][0]["properties"]["evidence"]["loss"] is None
