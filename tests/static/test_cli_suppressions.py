"""# noqa / # ftdoctor: ignore[...] / # ftdoctor: ignore-file, end to end and as a unit."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ftdoctor.static.suppressions import ALL, Suppressions

pytestmark = pytest.mark.usefixtures("marker_engine")


def lines_reported(run_check, source: str, tmp_path: Path) -> list[int]:
    (tmp_path / "s.py").write_text(source)
    data = json.loads(run_check("check", "--format", "json", "s.py", cwd=tmp_path).stdout)
    return [f["line"] for f in data["findings"]]


@pytest.mark.parametrize(
    ("comment", "suppressed"),
    [
        ("# noqa", True),
        ("# NOQA", True),
        ("# noqa: FTD101", True),
        ("# noqa:FTD101", True),
        ("# noqa: E501, FTD101", True),
        ("# noqa: ftd101", True),
        ("# noqa: missing-zero-grad", True),
        ("# noqa: FTD102", False),
        ("# noqa: E501", False),
        ("# ftdoctor: ignore[missing-zero-grad]", True),
        ("# ftdoctor: ignore[FTD101]", True),
        ("# ftdoctor: ignore[seed-not-set, missing-zero-grad]", True),
        ("# ftdoctor: ignore[seed-not-set]", False),
        ("# ftdoctor: ignore", True),
        ("# type: ignore  # noqa: FTD101", True),
        ("# just a comment", False),
    ],
)
def test_line_suppressions(run_check, tmp_path: Path, comment: str, suppressed: bool) -> None:
    reported = lines_reported(run_check, f"x = 1\nBUG()  {comment}\nBUG()\n", tmp_path)
    assert reported == ([3] if suppressed else [2, 3])


def test_suppression_applies_to_the_line_the_finding_starts_on(run_check, tmp_path: Path) -> None:
    source = "BUG(\n    1,\n)  # noqa\nBUG(  # noqa\n    2,\n)\n"
    assert lines_reported(run_check, source, tmp_path) == [1]


def test_noqa_inside_a_string_is_not_a_comment(run_check, tmp_path: Path) -> None:
    source = 'BUG("# noqa")\ntext = """\n# ftdoctor: ignore-file\n"""\nBUG()\n'
    assert lines_reported(run_check, source, tmp_path) == [1, 5]


def test_ignore_file_within_the_first_ten_lines(run_check, tmp_path: Path) -> None:
    header = "\n" * 9
    assert lines_reported(run_check, header + "# ftdoctor: ignore-file\nBUG()\n", tmp_path) == []
    assert lines_reported(run_check, header + "\n# ftdoctor: ignore-file\nBUG()\n", tmp_path) == [12]


def test_suppressions_survive_a_file_that_does_not_tokenize() -> None:
    found = Suppressions.scan("x = 1  # noqa: FTD101\ndef broken(:\n    '''unterminated\n")
    assert found.by_line == {1: {"ftd101"}}


def test_scan_collects_all_names_per_line() -> None:
    found = Suppressions.scan("a()  # noqa\nb()  # ftdoctor: ignore[FTD101, seed-not-set]  # noqa: FTD102\n")
    assert found.by_line == {1: {ALL}, 2: {"ftd101", "seed-not-set", "ftd102"}}
    assert not found.whole_file
