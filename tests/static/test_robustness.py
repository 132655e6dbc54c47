"""`ftdoctor check` never crashes, whatever it is fed, and never runs or imports what it checks.

These run the real engine and rules. Hypothesis feeds random text and mutated
training scripts; the fixed cases cover encodings, sizes, nesting, binaries,
and the check path's imports.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from ftdoctor.findings import Finding
from ftdoctor.settings import Settings
from ftdoctor.static.checker import check_file, check_python
from ftdoctor.sources import SourceFile

REPO = Path(__file__).resolve().parents[2]

TRAINING_SCRIPT = '''"""A small, typical fine-tuning script: the seed for mutations."""
import argparse

import torch
from torch.utils.data import DataLoader
from transformers import AutoModelForSequenceClassification, AutoTokenizer, get_linear_schedule_with_warmup

parser = argparse.ArgumentParser()
parser.add_argument("--lr", type=float, default=2e-5)
args = parser.parse_args()
torch.manual_seed(0)

tokenizer = AutoTokenizer.from_pretrained("bert-base-uncased")
model = AutoModelForSequenceClassification.from_pretrained("bert-base-uncased", num_labels=2)
optimizer = torch.optim.AdamW(model.parameters(), lr=args.lr)
train_loader = DataLoader(train_set, batch_size=16, shuffle=True)
val_loader = DataLoader(val_set, batch_size=32)
scheduler = get_linear_schedule_with_warmup(optimizer, 10, 100)


def evaluate(model, loader):
    model.eval()
    correct = 0
    with torch.no_grad():
        for batch in loader:
            logits = model(**batch).logits
            correct += (logits.argmax(-1) == batch["labels"]).sum().item()
    return correct


for epoch in range(3):
    model.train()
    for step, batch in enumerate(train_loader):
        outputs = model(**batch)
        loss = outputs.loss / 2
        loss.backward()
        if (step + 1) % 2 == 0:
            optimizer.step()
            scheduler.step()
            optimizer.zero_grad()
    print(evaluate(model, val_loader))
'''


def seed_scripts() -> list[str]:
    scripts = [TRAINING_SCRIPT]
    for path in sorted((REPO / "fixtures" / "scripts").glob("*/*.py"))[:40]:
        scripts.append(path.read_text(encoding="utf-8"))
    return scripts


SEEDS = seed_scripts()


def assert_findings(findings: object) -> None:
    assert isinstance(findings, list)
    assert all(isinstance(f, Finding) and f.rule and f.code.startswith("FTD") for f in findings)


@st.composite
def mutated_script(draw: st.DrawFn) -> str:
    lines = draw(st.sampled_from(SEEDS)).splitlines()
    for _ in range(draw(st.integers(1, 6))):
        if not lines:
            break
        i = draw(st.integers(0, len(lines) - 1))
        op = draw(st.sampled_from(["delete", "duplicate", "swap", "indent", "dedent", "truncate", "insert"]))
        if op == "delete":
            del lines[i]
        elif op == "duplicate":
            lines.insert(i, lines[i])
        elif op == "swap":
            j = draw(st.integers(0, len(lines) - 1))
            lines[i], lines[j] = lines[j], lines[i]
        elif op == "indent":
            lines[i] = "    " + lines[i]
        elif op == "dedent":
            lines[i] = lines[i].lstrip()
        elif op == "truncate":
            lines[i] = lines[i][: draw(st.integers(0, max(0, len(lines[i]) - 1)))]
        else:
            lines.insert(i, draw(st.text(max_size=40)))
    return "\n".join(lines) + "\n"


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(mutated_script())
def test_mutated_training_scripts_never_raise(source: str) -> None:
    assert_findings(check_python(source, "mutated.py", Settings()))


@settings(max_examples=150, deadline=None)
@given(st.text(max_size=300))
def test_random_text_never_raises(source: str) -> None:
    assert_findings(check_python(source, "random.py", Settings()))


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from(SEEDS), st.binary(max_size=60), st.integers(0, 10_000), st.sampled_from([".py", ".ipynb"]))
def test_random_bytes_spliced_into_files_never_raise(seed: str, noise: bytes, at: int, suffix: str) -> None:
    data = seed.encode()
    at = at % (len(data) + 1)
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / f"spliced{suffix}"
        path.write_bytes(data[:at] + noise + data[at:])
        findings = check_file(SourceFile(path, path.name), Settings())
    assert_findings(findings)


def run_json(*args: str, cwd: Path) -> tuple[int, dict]:
    completed = subprocess.run([sys.executable, "-m", "ftdoctor", "check", "--format", "json", *args],
                               cwd=cwd, capture_output=True, text=True, timeout=120)
    assert completed.returncode in (0, 1), completed.stderr
    assert "Traceback" not in completed.stderr
    return completed.returncode, json.loads(completed.stdout)


def test_hostile_files_become_parse_errors_and_good_files_are_still_checked(tmp_path: Path) -> None:
    hostile = {
        "syntax.py": b"def broken(:\n    pass\n",
        "latin1.py": b"name = 'caf\xe9'\n",
        "binary.py": b"\x7fELF\x02\x01\x01\x00\x00\x00\x00\x00",
        "nested_parens.py": b"(" * 10_000,
        "deep_sum.py": b"x = " + b"+".join([b"a"] * 100_000) + b"\n",
        "deep_attr.py": b"x = a" + b".b" * 50_000 + b"\n",
        "nested_blocks.py": b"".join(b"    " * i + b"if a:\n" for i in range(120)) + b"    " * 120 + b"pass\n",
        "bad_cookie.py": b"# -*- coding: no-such-codec -*-\n",
        "notebook.ipynb": b'{"cells": [',
    }
    fine = {
        "bom.py": b"\xef\xbb\xbfimport torch\n",
        "empty.py": b"",
        "latin1_declared.py": "# -*- coding: latin-1 -*-\nname = 'café'\n".encode("latin-1"),
        "crlf.py": b"import os\r\nx = 1\r\n",
    }
    for name, data in {**hostile, **fine}.items():
        (tmp_path / name).write_bytes(data)
    (tmp_path / "train.py").write_text(TRAINING_SCRIPT.replace("            optimizer.zero_grad()\n", ""))
    code, report = run_json(".", cwd=tmp_path)
    assert code == 1
    assert report["files_checked"] == len(hostile) + len(fine) + 1
    by_file: dict[str, set[str]] = {}
    for finding in report["findings"]:
        by_file.setdefault(finding["path"], set()).add(finding["rule"])
    for name in hostile:
        assert by_file.get(name) == {"parse-error"}, name
    for name in fine:
        assert "parse-error" not in by_file.get(name, set()), name
    assert "missing-zero-grad" in by_file["train.py"]


def test_ten_thousand_line_file_is_checked_quickly(tmp_path: Path) -> None:
    body = TRAINING_SCRIPT + "".join(f"value_{i} = compute({i}, key='k{i}')\n" for i in range(10_000))
    path = tmp_path / "big.py"
    path.write_text(body)
    started = time.perf_counter()
    findings = check_file(SourceFile(path, "big.py"), Settings())
    elapsed = time.perf_counter() - started
    assert_findings(findings)
    assert not any(f.rule == "parse-error" for f in findings)
    assert elapsed < 10, f"{elapsed:.1f} s for 10,000 lines"


def test_checking_never_executes_the_file(tmp_path: Path) -> None:
    sentinel = tmp_path / "executed"
    (tmp_path / "evil.py").write_text(
        f"open({str(sentinel)!r}, 'w').write('ran')\nimport os\nos._exit(3)\nraise SystemExit(4)\n"
    )
    (tmp_path / "evil.ipynb").write_text(json.dumps({"nbformat": 4, "nbformat_minor": 5, "metadata": {}, "cells": [
        {"cell_type": "code", "metadata": {}, "outputs": [], "execution_count": None,
         "source": f"open({str(sentinel)!r}, 'w').write('ran')\n"}]}))
    code, report = run_json(".", cwd=tmp_path)
    assert report["files_checked"] == 2
    assert not sentinel.exists()


def test_check_path_never_imports_heavy_frameworks(tmp_path: Path) -> None:
    (tmp_path / "train.py").write_text(TRAINING_SCRIPT)
    (tmp_path / "nb.ipynb").write_text(json.dumps({"nbformat": 4, "nbformat_minor": 5, "metadata": {}, "cells": [
        {"cell_type": "code", "metadata": {}, "outputs": [], "execution_count": None, "source": "import torch\n"}]}))
    probe = (
        "import sys\n"
        "from ftdoctor.cli import main\n"
        "sys.argv = ['ftdoctor', 'check', '--format', 'sarif', '--no-parallel', '.']\n"
        "try:\n    main()\nexcept SystemExit:\n    pass\n"
        "heavy = sorted(m for m in sys.modules if m.split('.')[0] in {'torch', 'transformers', 'datasets', 'accelerate', 'sklearn', 'numpy'})\n"
        "sys.stderr.write('HEAVY=' + ','.join(heavy))\n"
    )
    completed = subprocess.run([sys.executable, "-c", probe], cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert "HEAVY=" in completed.stderr, completed.stderr
    assert completed.stderr.split("HEAVY=")[1] == ""
    assert json.loads(completed.stdout)["runs"][0]["results"] is not None


def test_engine_failure_in_one_file_does_not_lose_the_others(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from ftdoctor.static import checker

    def flaky(source: str, path: str, settings: object = None, project: object = None) -> list[Finding]:
        if "boom" in source:
            raise RuntimeError("engine bug")
        return []

    monkeypatch.delenv("FTDOCTOR_DEBUG", raising=False)
    monkeypatch.setattr(checker, "_engine", lambda: flaky)
    (tmp_path / "a.py").write_text("boom = 1\n")
    (tmp_path / "b.py").write_text("ok = 1\n")
    report = checker.check_files([SourceFile(tmp_path / n, n) for n in ("a.py", "b.py")], Settings(), parallel=False)
    assert [(f.path, f.rule) for f in report.findings] == [("a.py", "parse-error")]
    assert "internal error RuntimeError: engine bug" in report.findings[0].message
    assert report.files_checked == 2


def test_process_pool_is_really_used_for_many_files(tmp_path: Path) -> None:
    from ftdoctor.static import checker

    files = []
    for i in range(50):
        (tmp_path / f"s{i}.py").write_text("import os\nprint(os.getpid())\n")
        files.append(SourceFile(tmp_path / f"s{i}.py", f"s{i}.py"))
    if checker._worker_count() < 2:
        pytest.skip("one CPU: the pool is not used")
    per_file = checker._check_in_pool(files, Settings(), 2)
    assert per_file is not None and len(per_file) == 50
