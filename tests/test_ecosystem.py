"""The ecosystem check (benchmarks/ecosystem.py): its comparison on a tiny corpus, and the committed ledger."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import pytest

BENCHMARKS = Path(__file__).resolve().parent.parent / "benchmarks"
COMMIT = "0123456789abcdef0123456789abcdef01234567"

BUGGY = """\
import torch
from torch.utils.data import DataLoader

model = torch.nn.Linear(4, 2)
optimizer = torch.optim.SGD(model.parameters(), lr=0.01)
loader = DataLoader(list(range(8)), batch_size=2, shuffle=True)
loss_fn = torch.nn.CrossEntropyLoss()

for epoch in range(3):
    model.train()
    for x, y in loader:
        loss = loss_fn(model(x), y)
        loss.backward()
        optimizer.step()
"""
# The correct look-alike: the same loop, gradients cleared each step.
CORRECT = BUGGY.replace("        loss = loss_fn", "        optimizer.zero_grad()\n        loss = loss_fn")
STEP_LINE = BUGGY.splitlines().index("        optimizer.step()") + 1


@pytest.fixture(scope="module")
def eco():
    name = "ecosystem"
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, BENCHMARKS / f"{name}.py")
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    return sys.modules[name]


def _finding(path: str, verdict: str, line: int = STEP_LINE, slug: str = "missing-zero-grad") -> str:
    return (
        f'[[finding]]\nrepo = "acme/demo@{COMMIT[:7]}"\npath = "{path}"\nline = {line}\nslug = "{slug}"\n'
        f'verdict = "{verdict}"\nreason = "judged for the test"\n'
    )


@pytest.fixture
def corpus(tmp_path: Path) -> Path:
    """Checkouts of one repository: three copies of a missing zero_grad and one correct look-alike."""
    checkout = tmp_path / "checkouts" / "acme+demo"
    checkout.mkdir(parents=True)
    for name in ("a.py", "b.py", "c.py"):
        (checkout / name).write_text(BUGGY, encoding="utf-8")
    (checkout / "good.py").write_text(CORRECT, encoding="utf-8")
    (tmp_path / "repos.toml").write_text(
        f'[[repo]]\nname = "demo"\ngithub = "acme/demo"\ncommit = "{COMMIT}"\nkind = "user"\n', encoding="utf-8"
    )
    return tmp_path


def _run(eco, corpus: Path, ledger: str, capsys, *extra: str) -> tuple[int, dict]:
    (corpus / "ledger.toml").write_text(ledger, encoding="utf-8")
    code = eco.main([
        "--checkouts", str(corpus / "checkouts"), "--corpus", str(corpus / "repos.toml"),
        "--ledger", str(corpus / "ledger.toml"), "--json", *extra,
    ])
    return code, json.loads(capsys.readouterr().out)


def test_precision_unjudged_and_lost_true_positives(eco, corpus, capsys):
    # a.py judged tp, b.py judged fp, c.py left unjudged; good.py's entry no longer fires (recall lost)
    ledger = _finding("a.py", "tp") + _finding("b.py", "fp") + _finding("good.py", "tp")
    code, result = _run(eco, corpus, ledger, capsys)

    overall = result["precision"]["overall"]
    assert (overall["findings"], overall["tp"], overall["fp"], overall["unjudged"]) == (3, 1, 1, 1)
    assert overall["precision"] == 0.5
    assert result["precision"]["rule"]["missing-zero-grad"]["precision"] == 0.5
    assert result["precision"]["kind"]["user"]["tp"] == 1
    assert [(f["path"], f["line"], f["slug"]) for f in result["unjudged"]] == [("c.py", STEP_LINE, "missing-zero-grad")]
    assert [f["path"] for f in result["error_fp"]] == ["b.py"]
    assert [(e["path"], e["verdict"]) for e in result["lost_tp"]] == [("good.py", "tp")]
    assert code == 1


def test_fully_judged_run_passes_and_debatable_stays_out_of_precision(eco, corpus, capsys):
    ledger = _finding("a.py", "tp") + _finding("b.py", "debatable") + _finding("c.py", "tp")
    code, result = _run(eco, corpus, ledger, capsys)

    overall = result["precision"]["overall"]
    assert (overall["tp"], overall["fp"], overall["debatable"], overall["unjudged"]) == (2, 0, 1, 0)
    assert overall["precision"] == 1.0
    assert result["unjudged"] == [] and result["lost_tp"] == [] and result["error_fp"] == []
    assert code == 0


def test_text_report_and_stubs_name_the_unjudged_finding(eco, corpus, capsys):
    (corpus / "ledger.toml").write_text(_finding("a.py", "tp") + _finding("b.py", "tp"), encoding="utf-8")
    stubs = corpus / "stubs.toml"
    code = eco.main([
        "--checkouts", str(corpus / "checkouts"), "--corpus", str(corpus / "repos.toml"),
        "--ledger", str(corpus / "ledger.toml"), "--write-stubs", str(stubs),
    ])
    out = capsys.readouterr().out
    assert code == 1
    assert f"acme/demo c.py:{STEP_LINE} missing-zero-grad" in out
    assert "| **all** | 3 | 2 | 0 | 0 | 1 | 100 % |" in out
    stub = stubs.read_text(encoding="utf-8")
    assert f'repo = "acme/demo@{COMMIT[:7]}"' in stub and 'path = "c.py"' in stub and 'verdict = ""' in stub


def test_entry_judged_at_another_commit_is_stale_not_matched(eco, corpus, capsys):
    ledger = _finding("a.py", "tp").replace(COMMIT[:7], "fffffff") + _finding("b.py", "tp") + _finding("c.py", "tp")
    code, result = _run(eco, corpus, ledger, capsys)
    assert [(f["path"]) for f in result["unjudged"]] == ["a.py"]
    assert [e["path"] for e in result["stale"]] == ["a.py"]
    assert code == 1


def test_notebook_findings_are_keyed_by_cell(eco):
    repo = eco.Repo("nb", "acme/nb", COMMIT, "examples")
    seen = [
        eco.Observed("acme/nb", "demo.ipynb", 2, "lr-out-of-range", "warning", "lr too high", cell=9),
        eco.Observed("acme/nb", "demo.ipynb", 2, "lr-out-of-range", "warning", "lr too high", cell=11),
    ]
    entry = eco.Entry(f"acme/nb@{COMMIT[:8]}", "demo.ipynb", 2, "lr-out-of-range", "fp", "documented value", cell=9)
    result = eco.compare([repo], seen, eco.Ledger(entries=[entry]), {"acme/nb": 1})
    assert [(seen.cell, entry.verdict) for seen, entry in result.judged] == [(9, "fp")]
    assert [f.cell for f in result.unjudged] == [11]


def test_info_findings_count_only_when_asked(eco):
    repo = eco.Repo("demo", "acme/demo", COMMIT, "user")
    seen = [
        eco.Observed("acme/demo", "a.py", 3, "seed-not-set", "info", "no seed"),
        eco.Observed("acme/demo", "a.py", 9, "missing-zero-grad", "error", "never cleared"),
    ]
    quiet = eco.compare([repo], seen, eco.Ledger(), {"acme/demo": 1})
    loud = eco.compare([repo], seen, eco.Ledger(), {"acme/demo": 1}, include_info=True)
    assert [f.slug for f in quiet.unjudged] == ["missing-zero-grad"]
    assert [f.slug for f in loud.unjudged] == ["seed-not-set", "missing-zero-grad"]


def test_missing_checkout_is_a_clear_input_error(eco, corpus, capsys):
    (corpus / "ledger.toml").write_text("", encoding="utf-8")
    code = eco.main([
        "--checkouts", str(corpus / "nowhere"), "--corpus", str(corpus / "repos.toml"),
        "--ledger", str(corpus / "ledger.toml"),
    ])
    assert code == 2
    assert "no checkout of acme/demo" in capsys.readouterr().err


def test_bad_verdict_is_rejected_with_its_location(eco, tmp_path):
    ledger = tmp_path / "ledger.toml"
    ledger.write_text(_finding("a.py", "maybe"), encoding="utf-8")
    with pytest.raises(eco.InputError, match=rf"a.py:{STEP_LINE}.*'maybe'"):
        eco.load_ledger(ledger)


# ------------------------------------------------------------------------------------------ the committed ledger


def test_committed_ledger_is_valid_and_judges_only_pinned_repositories(eco):
    repos = {repo.github: repo for repo in eco.load_corpus()}
    ledger = eco.load_ledger()  # raises on a missing field, a bad verdict or a finding judged twice
    assert len(repos) >= 19 and ledger.entries, "the corpus and ledger must not be empty"
    for entry in ledger.entries:
        assert entry.github in repos, f"{entry.repo} is not in repos.toml"
        assert len(entry.commit) >= 7 and repos[entry.github].commit.startswith(entry.commit), entry
        assert entry.verdict in eco.VERDICTS and entry.reason.strip() and entry.line > 0, entry
        assert (entry.cell is not None) == entry.path.endswith(".ipynb"), entry
    for missed in ledger.missed:
        assert missed.repo.split("@")[0] in repos and missed.reason.strip(), missed


def test_committed_corpus_pins_full_commits_and_known_kinds(eco):
    repos = eco.load_corpus()
    assert all(len(repo.commit) == 40 and repo.kind in eco.KINDS for repo in repos)
    assert sum(repo.kind == "user" for repo in repos) >= 15
