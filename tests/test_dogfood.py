"""ftdoctor's own code passes ftdoctor check: deliberate faults (injections, test knobs) carry a noqa."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner

from ftdoctor.cli import cli

ROOT = Path(__file__).resolve().parent.parent


def test_the_repository_checks_clean() -> None:
    result = CliRunner().invoke(cli, ["check", str(ROOT), "--format", "json", "--no-parallel"])
    report = json.loads(result.output)
    loud = [f for f in report["findings"] if f["severity"] != "info"]
    assert loud == [], loud
    assert report["files_checked"] > 100  # the walk really covered the package and the tests
    assert result.exit_code == 0
