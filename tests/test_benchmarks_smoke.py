"""Smoke tests of the benchmarks' core functions on tiny inputs (not timed, no peers installed)."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import pytest

BENCHMARKS = Path(__file__).resolve().parent.parent / "benchmarks"


def _load(name: str):
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, BENCHMARKS / f"{name}.py")
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    return sys.modules[name]


@pytest.fixture(scope="module")
def peers():
    return _load("compare_peers")


@pytest.fixture(scope="module")
def suite():
    return _load("fault_suite")


# --------------------------------------------------------------------------------------- compare_peers

TORCHFIX_OUTPUT = """\
c/bad_a.py:11:5: TOR002 [*] Likely typo `require_grad` in assignment. Did you mean `requires_grad`?
c/bad_a.py:9:10: TOR401 Detected DataLoader running with synchronized implementation. Please enable asynchronous \
dataloading by setting num_workers > 0 when initializing DataLoader.
--- /tmp/pt/c/bad_a.py
+++ /tmp/pt/c/bad_a.py
@@ -6,11 +6,11 @@
-    p.require_grad = False
+    p.requires_grad = False
"""

DSLINTER_OUTPUT = json.dumps([
    {"type": "convention", "module": "bad_a", "obj": "", "line": 1, "column": 0, "endLine": None,
     "endColumn": None, "path": "c/bad_a.py", "symbol": "missing-module-docstring",
     "message": "Missing module docstring", "message-id": "C0114"},
    {"type": "error", "module": "bad_a", "obj": "", "line": 1, "column": 0, "endLine": 1, "endColumn": 12,
     "path": "c/bad_a.py", "symbol": "import-error", "message": "Unable to import 'torch'", "message-id": "E0401"},
    {"type": "warning", "module": "bad_a", "obj": "", "line": 13, "column": 4, "endLine": 17, "endColumn": 18,
     "path": "c/bad_a.py", "symbol": "gradient-clear-pytorch",
     "message": "The optimizer.zero_grad() is not used ...", "message-id": "W5517"},
    {"type": "warning", "module": "bad_a", "obj": "", "line": 12, "column": 4, "endLine": 12, "endColumn": 9,
     "path": "c/bad_a.py", "symbol": "unused-variable", "message": "Unused variable 'epoch'", "message-id": "W0612"},
])

FTDOCTOR_OUTPUT = json.dumps({
    "tool": "ftdoctor", "version": "0.2.0", "mode": "check", "files_checked": 1,
    "findings": [
        {"rule": "missing-zero-grad", "code": "FTD101", "severity": "error", "message": "m", "fix": "f",
         "path": "c/bad_a.py", "line": 16, "column": 9, "end_line": 16, "end_column": 24},
        {"rule": "seed-not-set", "code": "FTD125", "severity": "info", "message": "m", "fix": "f",
         "path": "c/bad_a.py", "line": 1, "column": 1, "end_line": 1, "end_column": 1},
    ],
    "summary": {"error": 1, "warning": 0, "info": 1},
})


def test_parse_torchfix_reads_messages_and_skips_diffs(peers):
    found = peers.parse_torchfix_text(TORCHFIX_OUTPUT)
    assert [(f.path, f.line, f.code) for f in found] == [("c/bad_a.py", 11, "TOR002"), ("c/bad_a.py", 9, "TOR401")]
    assert all(f.counted for f in found)


def test_parse_pylint_json_filters_style_and_environment_noise(peers):
    found = {f.code: f for f in peers.parse_pylint_json(DSLINTER_OUTPUT)}
    assert set(found) == {"C0114", "E0401", "W5517", "W0612"}
    assert not found["C0114"].counted  # pylint convention message
    assert not found["E0401"].counted  # the peer's venv has no torch
    assert found["W5517"].counted and (found["W5517"].line, found["W5517"].end_line) == (13, 17)
    assert found["W0612"].counted
    assert peers.parse_pylint_json("") == []


def test_parse_ftdoctor_json_counts_warning_and_error_only(peers):
    found = peers.parse_ftdoctor_json(FTDOCTOR_OUTPUT)
    assert [(f.name, f.code, f.line, f.counted) for f in found] == [
        ("missing-zero-grad", "FTD101", 16, True), ("seed-not-set", "FTD125", 1, False)]


LOOP = """\
import torch
model = torch.nn.Linear(2, 2)
opt = torch.optim.SGD(model.parameters(), lr=0.1)
for step in range(3):
    loss = model(torch.ones(2)).sum()
    loss.backward()
    opt.step()
"""


def test_buggy_span_grows_a_loop_header_to_the_whole_loop(peers):
    assert peers.buggy_span(LOOP, 4, 4) == (4, 7)
    assert peers.buggy_span(LOOP, 6, 6) == (6, 6)  # a simple statement stays itself
    assert peers.buggy_span("def f(:\n", 1, 1) == (1, 1)  # unparsable: the reported lines


def _staged(tmp_path: Path, peers):
    rule = tmp_path / "src" / "missing-zero-grad"
    rule.mkdir(parents=True)
    (rule / "bad_loop.py").write_text(LOOP)
    (rule / "good_loop.py").write_text(LOOP.replace("    loss.backward()", "    opt.zero_grad()\n    loss.backward()"))
    (rule / "notes.txt").write_text("not a fixture")
    (tmp_path / "src" / "clean").mkdir()
    (tmp_path / "src" / "clean" / "good_other.py").write_text("x = 1\n")
    return peers.stage_fixtures(tmp_path / "src", tmp_path / "staged")


def test_detection_rows_apply_the_readme_definitions(tmp_path, peers):
    fixtures = _staged(tmp_path, peers)
    bad, good, other = "missing-zero-grad/bad_loop.py", "missing-zero-grad/good_loop.py", "clean/good_other.py"
    assert [(fx.rel, fx.slug, fx.bad) for fx in fixtures] == [
        (other, "clean", False), (bad, "missing-zero-grad", True), (good, "missing-zero-grad", False)]
    finding = peers.ToolFinding
    results = {
        # ftdoctor points at the loop header (the buggy lines become the whole loop, 4-7); claiming the rule on a
        # correct fixture of another folder is a false alarm too
        "ftdoctor": [finding(bad, 4, 4, "FTD101", "missing-zero-grad", True),
                     finding(other, 1, 1, "FTD101", "missing-zero-grad", True)],
        "catcher": [finding(bad, 6, 6, "W1", "w1", True)],  # on the loop, never on the look-alike
        "echo": [finding(bad, 5, 5, "W2", "w2", True), finding(good, 5, 5, "W2", "w2", True)],  # fires on both
        "elsewhere": [finding(bad, 2, 2, "W3", "w3", True)],  # outside the buggy lines: caught anywhere only
        "stylist": [finding(bad, 6, 6, "C1", "c1", False)],  # style noise never counts
        # its own rule for this bug fires on the bug and on the fix: no catch, one false alarm
        "alarmist": [finding(bad, 7, 7, "W4", "w4", True), finding(good, 2, 2, "W4", "w4", True)],
        "claimant": [finding(bad, 5, 5, "W5", "w5", True)],  # its own rule, on the bug only
    }
    counterparts = {"alarmist": {"missing-zero-grad": ("W4",)}, "claimant": {"missing-zero-grad": ("W5",)}}
    (row,) = peers.detection_rows(fixtures, tmp_path / "staged", results, [("missing-zero-grad", "FTD101")],
                                  counterparts)
    scores = {tool: (s.caught, s.caught_anywhere, s.false_alarms) for tool, s in row.scores.items()}
    assert (row.bad, row.good) == (1, 1)
    assert scores == {
        "ftdoctor": (1, 1, 1),
        "catcher": (1, 1, None),
        "echo": (0, 0, None),
        "elsewhere": (0, 1, None),
        "stylist": (0, 0, None),
        "alarmist": (0, 0, 1),
        "claimant": (1, 1, 0),
    }
    table = "\n".join(peers.render_detection([row], list(results)))
    assert "| FTD101 | missing-zero-grad | 1 | 1/1 | 1/1 | 0/1 | 0/1 (1) | 0/1 | 0/1 | 1/1 | 1 | 1 | — | — | — | — | 1 | 0 |" in table


def test_notebooks_become_scripts_with_magics_commented(tmp_path, peers):
    notebook = tmp_path / "nb.ipynb"
    notebook.write_text(json.dumps({"cells": [
        {"cell_type": "markdown", "source": ["# title"]},
        {"cell_type": "code", "source": ["%pip install torch\n", "import torch\n"]},
        {"cell_type": "code", "source": "!ls\nx = 1"},
        {"cell_type": "code", "source": ["%%capture\n", "not python at all"]},
    ]}))
    script = peers.notebook_as_script(notebook)
    assert script == "# %pip install torch\nimport torch\n\n# !ls\nx = 1\n\n# %%capture\n# not python at all\n"
    compile(script, "nb.py", "exec")


def test_unset_peer_reports_why(peers, tmp_path, monkeypatch):
    monkeypatch.setattr(peers, "PEERS_DIR", tmp_path)
    tool = next(t for t in peers.TOOLS if t.name == "dslinter")
    assert "--setup" in tool.unavailable_reason()
    (tmp_path / "dslinter").mkdir()
    (tmp_path / "dslinter" / "SETUP_FAILED").write_text("no working interpreter among python3.10\n")
    assert tool.unavailable_reason() == "no working interpreter among python3.10"


# --------------------------------------------------------------------------------------- fault_suite


def _observed(suite, rule, severity, step, order):
    return suite.Observed(rule, severity, step, 0.1, order)


def test_root_cause_is_the_first_loud_finding_by_step_then_severity(suite):
    case = suite.harness_case("lr-too-high", "lr x100", lr=0.1)
    outcome = suite.Outcome(case, 0, [
        _observed(suite, "class-imbalance", "info", 0, 0),  # info never counts as the root cause
        _observed(suite, "exploding-gradients", "warning", 7, 1),
        _observed(suite, "lr-too-high", "error", 7, 2),  # same step, higher severity: first
    ])
    assert outcome.detected and outcome.root_cause_right and outcome.in_window
    late = suite.Outcome(case, 0, [_observed(suite, "lr-too-high", "error", 51, 0)])
    assert late.detected and not late.in_window
    wrong = suite.Outcome(case, 0, [_observed(suite, "non-finite-loss", "error", 3, 0),
                                    _observed(suite, "lr-too-high", "error", 4, 1)])
    assert wrong.detected and not wrong.root_cause_right


def test_windows_count_from_the_faults_onset(suite):
    nan = next(c for c in suite.fault_cases() if c.rule == "non-finite-loss")
    assert suite.window_limit(nan) == 1 + nan.settings["nan_at_step"]
    dropout = next(c for c in suite.fault_cases() if c.rule == "dropout-in-eval")
    assert suite.window_limit(dropout) == dropout.settings["eval_every"]


def test_every_runtime_rule_has_a_seeded_fault(suite):
    from ftdoctor.catalogue import rules_of_kind

    runtime = {doc.slug for doc in rules_of_kind("runtime")}
    seeded = {case.rule for case in suite.fault_cases()}
    assert runtime <= seeded
    assert seeded <= runtime
    assert set(suite.WINDOWS) == runtime


def test_totals_and_bars(suite):
    fault = suite.harness_case("grads-accumulating", "skip", skip_zero_grad=True)
    clean = suite.harness_case(None, "clean")
    outcomes = [
        suite.Outcome(fault, 0, [_observed(suite, "grads-accumulating", "error", 2, 0)]),
        suite.Outcome(fault, 1, []),
        suite.Outcome(clean, 0, [_observed(suite, "seed-not-set", "info", 0, 0)]),
        suite.Outcome(clean, 1, [_observed(suite, "lr-too-low", "warning", 30, 0)]),
    ]
    totals = suite.totals(outcomes)
    assert (totals.fault_runs, totals.detected, totals.root_cause) == (2, 1, 1)
    assert (totals.clean_runs, totals.clean_false_alarms) == (2, 1)
    assert not any(totals.bars_met().values())
    (stats,) = suite.rule_stats(outcomes)
    assert (stats.runs, stats.detected, stats.in_window, stats.steps) == (2, 1, 1, [2])


def test_quick_suite_runs_one_fault_end_to_end(suite, tmp_path):
    """The real doctor on the real harness: one fault, one seed, a few steps, through main() and the report."""
    output = tmp_path / "report.md"
    code = suite.main(["--quick", "--only", "grads-accumulating", "--output", str(output)])
    report = output.read_text()
    assert "detection recall: **1/1**" in report
    assert "top-1 root cause right: **1/1**" in report
    assert "| grads-accumulating | <= 3 | 1 | 1 | 1 | 1 |" in report
    assert code == 0


def test_clean_run_is_silent_and_capped(suite):
    clean = suite.harness_case(None, "keyword data")
    outcome = suite.run_case(clean, seed=0, steps_cap=5)
    assert outcome.error is None
    assert outcome.loud == []


# --------------------------------------------------------------------------------------- bench_overhead


def test_bench_overhead_pairs_modes_within_rounds() -> None:
    pytest.importorskip("torch")
    overhead = _load("bench_overhead")
    workload = overhead.tiny_workload(steps=6, batch_size=4, seq_len=8)
    summary = overhead.summarise(workload, overhead.benchmark(workload, rounds=2))
    assert summary["rounds"] == 2 and summary["steps_per_run"] == 6
    for key in ("ratio", "run_ratio", "doctor_estimate"):
        assert set(summary[key]) == {"default", "thorough"} and all(v > 0 for v in summary[key].values())
    assert set(summary["median_step_ms"]) == {"off", "default", "thorough"}
