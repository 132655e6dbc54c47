"""Notebooks: code cells checked, IPython syntax skipped, findings addressed to cell and line."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ftdoctor.notebook import parse_notebook

pytestmark = pytest.mark.usefixtures("marker_engine")


def notebook(*cells: tuple[str, str], nbformat: int = 4) -> str:
    return json.dumps({
        "nbformat": nbformat, "nbformat_minor": 5, "metadata": {},
        "cells": [
            {"cell_type": kind, "metadata": {}, "source": source.splitlines(keepends=True),
             **({"outputs": [], "execution_count": None} if kind == "code" else {})}
            for kind, source in cells
        ],
    })


def check(run_check, tmp_path: Path, text: str, *args: str) -> dict:
    (tmp_path / "nb.ipynb").write_text(text)
    result = run_check("check", "--format", "json", *args, "nb.ipynb", cwd=tmp_path)
    assert result.code in (0, 1), result.stderr
    return json.loads(result.stdout)


def test_findings_are_mapped_to_cell_and_line(run_check, tmp_path: Path) -> None:
    text = notebook(
        ("markdown", "# Fine-tune\n"),
        ("code", "%pip install transformers\nimport torch\n"),
        ("code", "x = 1\n\n    \nBUG()\n"),
        ("markdown", "done"),
        ("code", "!nvidia-smi\nfor b in loader:\n    !echo hi\n    WARN()"),
    )
    findings = check(run_check, tmp_path, text)["findings"]
    located = [(f["path"], f["line"], f["column"], f["message"]) for f in findings]
    assert located == [
        ("nb.ipynb", 4, 1, "cell 3: marker BUG called"),
        ("nb.ipynb", 4, 5, "cell 5: marker WARN called"),
    ]


def test_magics_and_shell_escapes_are_not_parse_errors(run_check, tmp_path: Path) -> None:
    text = notebook(
        ("code", "%matplotlib inline\n%%capture not-a-cell-magic-here\nfiles = !ls\nmodel?\n??model\n%time x = 1"),
        ("code", "%%bash\necho 'this is not python ('\n"),
        ("code", "%pip install \\\n    transformers\nimport torch"),
        ("code", "msg = ('value %d'\n       % 3)\ntotal = (1\n         != 2)\nINFO()"),
    )
    findings = check(run_check, tmp_path, text)["findings"]
    assert [(f["rule"], f["message"]) for f in findings] == [("seed-not-set", "cell 4: marker INFO called")]


def test_a_syntax_error_in_a_cell_is_a_parse_error_in_that_cell(run_check, tmp_path: Path) -> None:
    findings = check(run_check, tmp_path, notebook(("code", "x = 1"), ("code", "y = 2\ndef f(:\n")))["findings"]
    assert [(f["rule"], f["line"], f["message"].split(":")[0]) for f in findings] == [("parse-error", 2, "cell 2")]


@pytest.mark.parametrize("text", ["{not json", "[]", '{"cells": "nope"}', ""])
def test_invalid_notebook_is_a_parse_error_not_a_crash(run_check, tmp_path: Path, text: str) -> None:
    findings = check(run_check, tmp_path, text)["findings"]
    assert [f["rule"] for f in findings] == ["parse-error"]
    assert findings[0]["path"] == "nb.ipynb"


def test_old_nbformat_3_notebooks_are_upgraded(run_check, tmp_path: Path) -> None:
    text = json.dumps({
        "nbformat": 3, "nbformat_minor": 0, "metadata": {},
        "worksheets": [{"cells": [
            {"cell_type": "code", "input": ["x = 1\n", "BUG()\n"], "language": "python", "outputs": []},
        ]}],
    })
    findings = check(run_check, tmp_path, text)["findings"]
    assert [(f["rule"], f["line"], f["message"]) for f in findings] == [("missing-zero-grad", 2, "cell 1: marker BUG called")]


def test_noqa_and_ignore_file_work_in_notebooks(run_check, tmp_path: Path) -> None:
    text = notebook(("code", "BUG()  # noqa: FTD101\nBUG()"))
    assert [f["line"] for f in check(run_check, tmp_path, text)["findings"]] == [2]
    text = notebook(("code", "# ftdoctor: ignore-file"), ("code", "BUG()"))
    assert check(run_check, tmp_path, text)["findings"] == []


def test_text_report_shows_the_cell_line(run_check, tmp_path: Path) -> None:
    (tmp_path / "nb.ipynb").write_text(notebook(("code", "import os\n"), ("code", "y = 2\nBUG()  # here\n")))
    out = run_check("check", "nb.ipynb", cwd=tmp_path).stdout
    assert "nb.ipynb:2:1: FTD101 missing-zero-grad [error] cell 2: marker BUG called" in out
    assert "2 | BUG()  # here" in out


def test_directories_pick_up_notebooks_but_not_checkpoints(run_check, tmp_path: Path) -> None:
    (tmp_path / ".ipynb_checkpoints").mkdir()
    (tmp_path / ".ipynb_checkpoints" / "nb-checkpoint.ipynb").write_text(notebook(("code", "BUG()")))
    (tmp_path / "nb.ipynb").write_text(notebook(("code", "BUG()")))
    data = json.loads(run_check("check", "--format", "json", ".", cwd=tmp_path).stdout)
    assert data["files_checked"] == 1 and [f["path"] for f in data["findings"]] == ["nb.ipynb"]


def test_joined_source_keeps_line_numbers() -> None:
    parsed = parse_notebook(notebook(("code", "a = 1\n%time b = 2\n"), ("code", "c = 3")))
    assert parsed.source == "a = 1\n\nc = 3\n"
    assert [(cell.number, cell.first_line) for cell in parsed.cells] == [(1, 1), (2, 3)]


@pytest.mark.parametrize("line", ["pip install -q transformers", "cd data", "ls -la", "ls", "pwd",
                                  "conda install pytorch", "cd ..", "pip3 install 'peft>=0.10'"])
def test_automagics_are_not_parse_errors(run_check, tmp_path: Path, line: str) -> None:
    findings = check(run_check, tmp_path, notebook(("code", f"{line}\nimport torch\nINFO()")))["findings"]
    assert [(f["rule"], f["line"]) for f in findings] == [("seed-not-set", 3)]


@pytest.mark.parametrize("line", ["ls = [1, 2]", "time - start", "cd(x)", "pip.main(['install'])", "run = 3"])
def test_python_that_starts_with_an_automagic_name_stays_python(line: str) -> None:
    assert parse_notebook(notebook(("code", line))).source == line + "\n"


def test_python_cell_magics_keep_their_body(run_check, tmp_path: Path) -> None:
    text = notebook(("code", "%%capture\nimport torch\nBUG()"), ("code", "%%time\nWARN()"), ("code", "%%bash\nBUG()"))
    findings = check(run_check, tmp_path, text)["findings"]
    assert [(f["rule"], f["cell"], f["line"]) for f in findings] == [
        ("missing-zero-grad", 1, 3), ("train-loader-not-shuffled", 2, 2)]


def test_one_bad_cell_is_one_parse_error_and_the_rest_is_checked(run_check, tmp_path: Path) -> None:
    text = notebook(("code", "x = 1\nBUG()"), ("code", "def broken(:\n    pass"), ("code", "y = (\n"), ("code", "WARN()"))
    findings = check(run_check, tmp_path, text)["findings"]
    assert [(f["rule"], f["cell"], f["line"]) for f in findings] == [
        ("missing-zero-grad", 1, 2), ("parse-error", 2, 1), ("parse-error", 3, 1), ("train-loader-not-shuffled", 4, 1)]


def test_every_format_addresses_a_notebook_finding_by_cell_and_cell_line(run_check, tmp_path: Path) -> None:
    (tmp_path / "nb.ipynb").write_text(notebook(("code", "import os\n"), ("code", "y = 2\nBUG()\n")))
    finding = json.loads(run_check("check", "--format", "json", "nb.ipynb", cwd=tmp_path).stdout)["findings"][0]
    assert (finding["cell"], finding["line"], finding["message"]) == (2, 2, "cell 2: marker BUG called")
    sarif = json.loads(run_check("check", "--format", "sarif", "nb.ipynb", cwd=tmp_path).stdout)
    result = sarif["runs"][0]["results"][0]
    assert (result["properties"]["cell"], result["properties"]["cellLine"]) == (2, 2)
    assert "region" not in result["locations"][0]["physicalLocation"]  # a region would point into the JSON
    assert result["message"]["text"].startswith("cell 2, line 2: marker BUG called")
    github = run_check("check", "--format", "github", "nb.ipynb", cwd=tmp_path).stdout
    assert "::error file=nb.ipynb,title=FTD101 missing-zero-grad::cell 2, line 2: marker BUG called" in github


def test_lines_named_in_a_message_count_within_their_cell() -> None:
    from ftdoctor.catalogue import make_finding

    parsed = parse_notebook(notebook(("code", "a = 1\nb = 2\n"), ("code", "c = 3\nd = 4\ne = 5\n")))
    finding = make_finding("missing-zero-grad", "`x` (line 2) and the loop (line 5)", "move it below line 5",
                           path="nb.ipynb", line=4)
    mapped = parsed.map_finding(finding)
    assert (mapped.cell, mapped.line) == (2, 2)
    assert mapped.message == "cell 2: `x` (cell 1 line 2) and the loop (line 3)"
    assert mapped.fix == "move it below line 3"

