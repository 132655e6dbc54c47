"""`python -m ftdoctor check` end to end with the real rules: the CI-gate behaviour users see."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

CLEAN = '''import torch
from torch.utils.data import DataLoader
from transformers import AutoModelForSequenceClassification

torch.manual_seed(0)
model = AutoModelForSequenceClassification.from_pretrained("bert-base-uncased", num_labels=2)
optimizer = torch.optim.AdamW(model.parameters(), lr=2e-5)
loader = DataLoader(train_set, batch_size=16, shuffle=True)
model.train()
for epoch in range(3):
    for batch in loader:
        loss = model(**batch).loss
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()
'''


def ftdoctor(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "ftdoctor", *args], cwd=cwd, capture_output=True, text=True, timeout=120)


def test_clean_script_passes_and_buggy_script_fails(tmp_path: Path) -> None:
    (tmp_path / "clean.py").write_text(CLEAN)
    (tmp_path / "buggy.py").write_text(CLEAN.replace("        optimizer.zero_grad()\n", ""))
    clean = ftdoctor("check", "clean.py", cwd=tmp_path)
    assert clean.returncode == 0, clean.stdout
    buggy = ftdoctor("check", "--format", "json", "clean.py", "buggy.py", cwd=tmp_path)
    assert buggy.returncode == 1
    report = json.loads(buggy.stdout)
    assert report["files_checked"] == 2
    assert [(f["path"], f["rule"]) for f in report["findings"]] == [("buggy.py", "missing-zero-grad")]
    assert buggy.stderr == ""


def test_missing_path_message_and_exit_2(tmp_path: Path) -> None:
    result = ftdoctor("check", "nowhere.py", cwd=tmp_path)
    assert result.returncode == 2
    assert result.stderr.startswith("ftdoctor: error: no such file or directory: 'nowhere.py'")
    assert "Traceback" not in result.stderr and result.stdout == ""


def test_lr_range_table_widens_the_range(tmp_path) -> None:
    """`[tool.ftdoctor.lr-range]` reaches lr-out-of-range through the CLI (and the parallel workers)."""
    from click.testing import CliRunner

    from ftdoctor.cli import cli
    from ftdoctor.settings import SettingsError

    script = tmp_path / "train.py"
    script.write_text(
        "import torch\nfrom transformers import AutoModelForSequenceClassification\n"
        "model = AutoModelForSequenceClassification.from_pretrained('bert-base-uncased', num_labels=2)\n"
        "opt = torch.optim.AdamW(model.parameters(), lr=5e-4)\n"
        "train(model, opt)\n"  # handed on: it trains
    )
    args = ["check", str(script), "--select", "lr-out-of-range", "--format", "json"]
    assert CliRunner().invoke(cli, args).exit_code == 1  # default range: 5e-4 is too high
    (tmp_path / "pyproject.toml").write_text("[tool.ftdoctor.lr-range]\nfull = [1e-6, 1e-3]\n")
    assert CliRunner().invoke(cli, args).exit_code == 0
    (tmp_path / "pyproject.toml").write_text("[tool.ftdoctor.lr-range]\nfull = [1e-3, 1e-6]\n")
    result = CliRunner().invoke(cli, args)  # main() turns this SettingsError into exit 2
    assert isinstance(result.exception, SettingsError)
    assert "tool.ftdoctor.lr-range.full" in str(result.exception)
