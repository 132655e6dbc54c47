"""The package's layers, as import-linter contracts in pyproject.toml ([tool.importlinter]).

face (cli/) -> engines (runner/, then static/ | runtime/) -> report/ -> core; the check path
(static, report, core) never reaches the runtime, the runner or torch.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")

pytestmark = pytest.mark.skipif(not LINT_IMPORTS.exists(), reason="import-linter is not installed (test extra)")


def lint_imports(root: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(root)}
    return subprocess.run([str(LINT_IMPORTS), "--no-cache", str(root / "pyproject.toml")], cwd=root, env=env,
                          capture_output=True, text=True, timeout=120)


def test_the_layers_hold() -> None:
    result = lint_imports(REPO)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "2 kept, 0 broken" in result.stdout


@pytest.mark.parametrize(("module", "line", "contract"), [
    ("static/baseline.py", "from ftdoctor.runtime import doctor", "check path"),
    ("report/html.py", "import torch", "check path"),
    ("sources.py", "from ftdoctor.static import checker", "face -> engines"),
    ("runtime/stats.py", "from ftdoctor.static import engine", "face -> engines"),
])
def test_a_crossing_import_breaks_a_contract(tmp_path: Path, module: str, line: str, contract: str) -> None:
    shutil.copytree(REPO / "ftdoctor", tmp_path / "ftdoctor", ignore=shutil.ignore_patterns("__pycache__", "*.jsonl"))
    shutil.copy(REPO / "pyproject.toml", tmp_path / "pyproject.toml")
    with (tmp_path / "ftdoctor" / module).open("a", encoding="utf-8") as handle:
        handle.write(f"\n\ndef _crossing() -> None:\n    {line}\n")  # lazy imports count too
    result = lint_imports(tmp_path)
    assert result.returncode == 1
    broken = [text for text in result.stdout.splitlines() if text.endswith("BROKEN")]
    assert any(contract in text for text in broken), result.stdout


def test_lr_range_names_of_the_config_schema_are_the_rules() -> None:
    from ftdoctor.sources import LR_RANGE_NAMES
    from ftdoctor.static.rules.lr_out_of_range import RANGE_NAMES

    assert set(LR_RANGE_NAMES) == set(RANGE_NAMES)
