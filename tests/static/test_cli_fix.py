"""`ftdoctor check --fix / --diff / --unsafe-fixes` from the command line, scripts and notebooks."""

from __future__ import annotations

import json
from pathlib import Path

BUGGY = """import torch
from transformers import AutoModelForSequenceClassification

torch.manual_seed(0)
model = AutoModelForSequenceClassification.from_pretrained("bert-base-uncased", num_labels=2)
optimizer = torch.optim.AdamW(model.parameters(), lr=2e-5)
model.train()
total = 0.0
for epoch in range(3):
    for batch in loader:
        loss = model(**batch).loss
        loss.backward()
        optimizer.step()
        total += loss
print(total.item())
"""
FIXED_SAFE = BUGGY.replace("        optimizer.step()\n", "        optimizer.step()\n        optimizer.zero_grad()\n")


def test_diff_prints_the_fix_and_changes_nothing(run_check, tmp_path: Path) -> None:
    (tmp_path / "train.py").write_text(BUGGY)
    result = run_check("check", "--diff", "train.py", cwd=tmp_path)
    assert result.code == 1
    assert result.stdout.startswith("--- a/train.py\n+++ b/train.py\n")
    assert "+        optimizer.zero_grad()\n" in result.stdout
    assert "loss.item()" not in result.stdout  # unsafe here: `total.item()` needs a tensor
    assert "would fix 1 finding in 1 file (1 more with --unsafe-fixes)" in result.stderr
    assert (tmp_path / "train.py").read_text() == BUGGY


def test_diff_on_clean_code_exits_zero(run_check, tmp_path: Path) -> None:
    (tmp_path / "train.py").write_text("x = 1\n")
    result = run_check("check", "--diff", "train.py", cwd=tmp_path)
    assert (result.code, result.stdout) == (0, "")


def test_fix_writes_safe_fixes_and_reports_what_remains(run_check, tmp_path: Path) -> None:
    (tmp_path / "train.py").write_text(BUGGY)
    result = run_check("check", "--fix", "--format", "json", "train.py", cwd=tmp_path)
    assert (tmp_path / "train.py").read_text() == FIXED_SAFE
    assert "fixed 1 finding in 1 file (1 more with --unsafe-fixes)" in result.stderr
    remaining = [f["rule"] for f in json.loads(result.stdout)["findings"]]
    assert remaining == ["loss-accumulates-graph"] and result.code == 1
    again = run_check("check", "--fix", "train.py", cwd=tmp_path)
    assert (tmp_path / "train.py").read_text() == FIXED_SAFE
    assert "nothing fixed; 1 fix available with --unsafe-fixes" in again.stderr


def test_unsafe_fixes_apply_the_rest(run_check, tmp_path: Path) -> None:
    (tmp_path / "train.py").write_text(BUGGY)
    result = run_check("check", "--fix", "--unsafe-fixes", "train.py", cwd=tmp_path)
    assert result.code == 0, result.stdout
    assert "total += loss.item()" in (tmp_path / "train.py").read_text()
    assert "fixed 2 findings in 1 file" in result.stderr


def test_unsafe_fixes_alone_is_a_usage_error(run_check, tmp_path: Path) -> None:
    (tmp_path / "train.py").write_text(BUGGY)
    result = run_check("check", "--unsafe-fixes", "train.py", cwd=tmp_path)
    assert result.code == 2 and "--unsafe-fixes goes with --fix or --diff" in result.stderr


def test_fix_honours_select_and_keeps_encoding_and_line_endings(run_check, tmp_path: Path) -> None:
    text = ("# -*- coding: latin-1 -*-\n# caf\xe9\n" + BUGGY).replace("\n", "\r\n")
    (tmp_path / "train.py").write_bytes(text.encode("latin-1"))
    run_check("check", "--fix", "--select", "seed-not-set", "train.py", cwd=tmp_path)
    assert (tmp_path / "train.py").read_bytes() == text.encode("latin-1")  # nothing selected is fixable
    run_check("check", "--fix", "train.py", cwd=tmp_path)
    written = (tmp_path / "train.py").read_bytes()
    assert written == FIXED_SAFE.join(["# -*- coding: latin-1 -*-\n# caf\xe9\n", ""]).replace(
        "\n", "\r\n").encode("latin-1")


def notebook(*cells: str) -> dict:
    return {
        "nbformat": 4, "nbformat_minor": 5,
        "metadata": {"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}},
        "cells": [
            {"cell_type": "markdown", "metadata": {}, "source": ["# Fine-tune\n"]},
            *({"cell_type": "code", "execution_count": i, "id": f"c{i}", "metadata": {"tags": ["t"]},
               "outputs": [{"output_type": "stream", "name": "stdout", "text": [f"out {i}\n"]}],
               "source": source.splitlines(keepends=True)} for i, source in enumerate(cells, 1)),
        ],
    }


def test_notebook_is_fixed_in_place_keeping_outputs_metadata_and_magics(run_check, tmp_path: Path) -> None:
    setup, loop = BUGGY.split("for epoch")
    original = notebook("%pip install transformers\n" + setup, "!nvidia-smi\nfor epoch" + loop)
    (tmp_path / "nb.ipynb").write_text(json.dumps(original, indent=1))
    diff = run_check("check", "--diff", "nb.ipynb", cwd=tmp_path)
    assert diff.code == 1 and "--- a/nb.ipynb:cell 3\n" in diff.stdout
    run_check("check", "--fix", "nb.ipynb", cwd=tmp_path)
    fixed = json.loads((tmp_path / "nb.ipynb").read_text())
    assert fixed["metadata"] == original["metadata"]
    for old, new in zip(original["cells"], fixed["cells"]):
        assert {k: v for k, v in old.items() if k != "source"} == {k: v for k, v in new.items() if k != "source"}
    sources = ["".join(cell["source"]) for cell in fixed["cells"]]
    assert sources[1] == "%pip install transformers\n" + setup
    assert sources[2] == "!nvidia-smi\nfor epoch" + FIXED_SAFE.split("for epoch")[1]
    assert run_check("check", "--diff", "nb.ipynb", cwd=tmp_path).code == 0
