"""Context: test and benchmark code is exempt from `context: training-script` rules unless check-tests = true."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from ftdoctor.catalogue import CONTEXTS, CatalogueError, load_catalogue, parse_rule_file
from ftdoctor.settings import Settings
from ftdoctor.static.context import is_test_path
from ftdoctor.static.engine import check_source

# a training-script rule (lr-out-of-range) and an any-context rule (softmax-before-loss) in one script
SCRIPT = """\
import torch
from torch.optim import AdamW
from transformers import AutoModelForSequenceClassification

model = AutoModelForSequenceClassification.from_pretrained("bert-base-uncased", num_labels=2)
loss_fn = torch.nn.CrossEntropyLoss()


def loss_of(batch):
    return loss_fn(torch.softmax(model(**batch).logits, dim=-1), batch["labels"])


optimizer = AdamW(model.parameters(), lr=1.0)
optimizer.step()
"""


def rules(source: str, path: str, settings: Settings | None = None) -> set[str]:
    return {f.rule for f in check_source(source, path, settings)}


@pytest.mark.parametrize(
    "path",
    ["tests/test_lora.py", "pkg/test_lora.py", "lora_test.py", "conftest.py", "tests/helpers.py",
     "test/util.py", "benchmarks/throughput.py", "src/pkg/tests/fixtures/model.py"],
)
def test_test_and_benchmark_paths(path: str) -> None:
    assert is_test_path(path)


@pytest.mark.parametrize("path", ["train.py", "testing_common.py", "src/contest/train.py", "latest.py",
                                  "attest_model.py", "benchmark.py", "tests.py"])
def test_ordinary_paths(path: str) -> None:
    assert not is_test_path(path)


def test_training_script_rules_are_silent_in_test_files_and_any_rules_are_not() -> None:
    assert rules(SCRIPT, "train.py") >= {"lr-out-of-range", "softmax-before-loss"}
    found = rules(SCRIPT, "tests/test_training.py")
    assert "lr-out-of-range" not in found
    assert "softmax-before-loss" in found


def test_check_tests_checks_them_like_any_other_code() -> None:
    assert "lr-out-of-range" in rules(SCRIPT, "tests/test_training.py", Settings(check_tests=True))


def test_only_functions_named_test_are_exempt_in_an_ordinary_file() -> None:
    body = SCRIPT.replace("optimizer = AdamW(model.parameters(), lr=1.0)\n", "")
    inside = body + "\n\ndef test_one_step():\n    optimizer = AdamW(model.parameters(), lr=1.0)\n    optimizer.step()\n"
    outside = body + "\n\ndef build():\n    optimizer = AdamW(model.parameters(), lr=1.0)\n    optimizer.step()\n"
    assert "lr-out-of-range" not in rules(inside, "train.py")
    assert "lr-out-of-range" in rules(outside, "train.py")
    assert "lr-out-of-range" in rules(inside, "train.py", Settings(check_tests=True))


def test_every_catalogue_entry_declares_its_context() -> None:
    for doc in load_catalogue().values():
        assert doc.path is not None
        assert re.search(r"^context: (\S+)$", doc.path.read_text(encoding="utf-8"), re.M), doc.path.name
        assert doc.context in CONTEXTS
    assert load_catalogue()["lr-out-of-range"].context == "training-script"
    assert load_catalogue()["parse-error"].context == "any"


def test_an_unknown_context_is_a_catalogue_error(tmp_path: Path) -> None:
    entry = tmp_path / "FTD199-made-up.md"
    entry.write_text("---\ncode: FTD199\nslug: made-up\nkind: static\nseverity: warning\ncontext: notebooks\n"
                     "summary: x\n---\n")
    with pytest.raises(CatalogueError, match="context"):
        parse_rule_file(entry)


def test_explain_shows_the_context(run_check) -> None:
    result = run_check("explain", "lr-out-of-range")
    assert "context training-script" in result.stdout


def test_check_tests_from_pyproject(run_check, tmp_path: Path) -> None:
    (tmp_path / "tests").mkdir()
    (tmp_path / "tests" / "test_training.py").write_text(SCRIPT)
    (tmp_path / "pyproject.toml").write_text("[tool.ftdoctor]\nselect = [\"lr-out-of-range\"]\n")

    def found() -> set[str]:
        result = run_check("check", "--format", "json", "tests", cwd=tmp_path)
        return {f["rule"] for f in json.loads(result.stdout)["findings"]}

    assert found() == set()
    (tmp_path / "pyproject.toml").write_text("[tool.ftdoctor]\nselect = [\"lr-out-of-range\"]\ncheck-tests = true\n")
    assert found() == {"lr-out-of-range"}
    (tmp_path / "pyproject.toml").write_text("[tool.ftdoctor]\ncheck-tests = \"yes\"\n")
    result = run_check("check", "tests", cwd=tmp_path)
    assert result.code == 2 and "check-tests" in result.stderr
