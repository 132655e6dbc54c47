"""`ftdoctor run SCRIPT.py` offline: bundled models by name, scripts that do not parse, missing extras."""

from __future__ import annotations

import importlib.util
import json
import sys
import textwrap
from pathlib import Path

import pytest
import torch

from ftdoctor.runner.builtins import BuiltinModels, UnknownBuiltin
from ftdoctor.runner.script import diagnose_script

torch.set_num_threads(1)

TINY_SCRIPT = """\
import torch
from transformers import AutoModelForSequenceClassification, AutoTokenizer

torch.manual_seed(0)
tokenizer = AutoTokenizer.from_pretrained("builtin:tiny")
model = AutoModelForSequenceClassification.from_pretrained("builtin:tiny", num_labels=2)
optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4)
batch = tokenizer(["a good film", "a dull and bad film"], padding=True, return_tensors="pt")
model.train()
for _ in range(4):
    optimizer.zero_grad()
    loss = model(**batch, labels=torch.tensor([1, 0])).loss
    loss.backward()
    optimizer.step()
print("vocab", tokenizer.vocab_size, "path", model.config._name_or_path)
"""


def _main(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str]:
    from ftdoctor.cli import main

    monkeypatch.setattr(sys, "argv", ["ftdoctor", *args])
    capsys.readouterr()
    with pytest.raises(SystemExit) as exited:
        main()
    return exited.value.code, capsys.readouterr().err


def test_a_script_loads_builtin_tiny_by_name_and_trains(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    script = tmp_path / "train.py"
    script.write_text(TINY_SCRIPT)
    report = diagnose_script(script)
    assert report.extra["script"]["status"] == "completed", report.extra["script"]
    assert report.steps == 4
    out = capsys.readouterr().out
    assert "path builtin:tiny" in out  # the random weights keep their name, so the doctor knows they are random
    assert [f.rule for f in report.findings if f.severity.value in ("warning", "error")] == []


def test_builtin_names_resolve_only_while_active() -> None:
    from transformers import AutoConfig

    with BuiltinModels() as builtins:
        minilm = AutoConfig.from_pretrained("builtin:minilm")
        assert minilm.hidden_size == 384
        with pytest.raises(UnknownBuiltin):
            builtins.resolve("builtin:bert-large")
        assert builtins.resolve("bert-base-uncased") == "bert-base-uncased"
    with pytest.raises(Exception) as outside:  # patched back: a hub lookup of a name that is no repo id
        AutoConfig.from_pretrained("builtin:minilm")
    assert not isinstance(outside.value, UnknownBuiltin)


def test_a_script_that_does_not_parse_is_an_input_error_with_a_caret(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    script = tmp_path / "broken.py"
    script.write_text(textwrap.dedent("""\
        import torch

        def train(:
            pass
        """))
    code, err = _main(monkeypatch, capsys, "run", str(script))
    assert code == 2
    assert f"{script}:3" in err and "does not parse" in err
    assert "def train(:" in err and "^" in err
    assert "Traceback" not in err


def test_a_checker_only_install_names_the_extra_to_install(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    real_find_spec = importlib.util.find_spec

    def without_torch(name: str, *args: object) -> object:
        return None if name in ("torch", "datasets") else real_find_spec(name, *args)

    monkeypatch.setattr(importlib.util, "find_spec", without_torch)
    script = tmp_path / "train.py"
    script.write_text("print('never runs')\n")
    code, err = _main(monkeypatch, capsys, "run", str(script))
    assert code == 2
    assert "PyTorch" in err and "datasets" in err
    assert "[run]" in err and "pip install" in err
    assert "internal error" not in err


def test_an_unknown_builtin_name_is_the_scripts_crash(tmp_path: Path) -> None:
    script = tmp_path / "train.py"
    script.write_text('from transformers import AutoConfig\nAutoConfig.from_pretrained("builtin:huge")\n')
    report = diagnose_script(script)
    assert report.extra["script"]["status"] == "crashed"
    crashed = [f for f in report.findings if f.rule == "script-crashed"]
    assert crashed and "builtin:huge" in crashed[0].message
    assert json.dumps(report.extra["script"]["crash"])  # serialisable for the JSON report
