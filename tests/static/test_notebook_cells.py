"""Notebooks through the real engine: cells parsed one by one when the whole does not parse."""

from __future__ import annotations

import json
from pathlib import Path

from ftdoctor.settings import Settings
from ftdoctor.static.checker import check_notebook

TRAIN_WITHOUT_ZERO_GRAD = [
    "import torch\n", "from transformers import AutoModelForSequenceClassification\n",
    "model = AutoModelForSequenceClassification.from_pretrained('bert-base-uncased')\n",
    "optimizer = torch.optim.AdamW(model.parameters(), lr=2e-5)\n", "model.train()\n",
    "for batch in loader:\n", "    model(**batch).loss.backward()\n", "    optimizer.step()\n",
]


def write(tmp_path: Path, *sources: list[str]) -> Path:
    path = tmp_path / "nb.ipynb"
    cells = [{"cell_type": "code", "metadata": {}, "outputs": [], "source": source} for source in sources]
    path.write_text(json.dumps({"nbformat": 4, "nbformat_minor": 5, "metadata": {}, "cells": cells}, indent=1))
    return path


def test_a_parse_error_quotes_the_cell_not_the_notebook_json(tmp_path: Path) -> None:
    path = write(tmp_path, ["x = 1\n", "print 'old'\n"])
    (finding,) = check_notebook(path.read_bytes(), str(path), Settings())
    assert (finding.rule, finding.cell, finding.line) == ("parse-error", 1, 2)
    assert finding.message.endswith("(line 2): `print 'old'`"), finding.message


def test_the_cells_around_a_bad_one_are_still_checked(tmp_path: Path) -> None:
    path = write(tmp_path, ["print 'old'\n"], TRAIN_WITHOUT_ZERO_GRAD, ["def f(:\n"])
    found = [(f.rule, f.cell) for f in check_notebook(path.read_bytes(), str(path), Settings())
             if f.rule != "seed-not-set"]
    assert sorted(found) == [("missing-zero-grad", 2), ("parse-error", 1), ("parse-error", 3)]
    assert all("the cell" in f.message for f in check_notebook(path.read_bytes(), str(path), Settings())
               if f.rule == "parse-error")



def test_a_bracket_left_open_across_cells_is_an_error_in_each(tmp_path: Path) -> None:
    path = write(tmp_path, ["x = [\n"], ["y = 2\n"], ["1]\n"])
    found = [(f.rule, f.cell, f.line) for f in check_notebook(path.read_bytes(), str(path), Settings())]
    assert found == [("parse-error", 1, 1), ("parse-error", 3, 1)]
