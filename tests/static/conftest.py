"""Shared helpers for the `ftdoctor check` surface tests (CLI, robustness).

``run_check`` runs the real console entry point (``ftdoctor.cli.main``) in-process
and returns its exit code, stdout and stderr. ``marker_engine`` swaps the rule
engine for a tiny deterministic one, so that tests of the surface (suppressions,
notebooks, config, formats, baselines) do not depend on any rule's heuristics:
a call ``BUG()`` is an error finding, ``WARN()`` a warning, ``INFO()`` an info,
and a syntax error a parse-error, each located at the call.
"""

from __future__ import annotations

import ast
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import pytest

from ftdoctor.catalogue import make_finding
from ftdoctor.findings import Finding
from ftdoctor.static import checker

MARKER_RULES = {"BUG": "missing-zero-grad", "WARN": "train-loader-not-shuffled", "INFO": "seed-not-set"}


def marker_check_source(source: str, path: str, settings: object = None, project: object = None) -> list[Finding]:
    try:
        tree = ast.parse(source)
    except SyntaxError as exc:
        return [make_finding("parse-error", f"invalid syntax: {exc.msg}", "fix the syntax", path=path,
                             line=exc.lineno, column=exc.offset)]
    findings = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in MARKER_RULES:
            findings.append(make_finding(
                MARKER_RULES[node.func.id], f"marker {node.func.id} called", f"remove {node.func.id}()",
                path=path, line=node.lineno, column=node.col_offset + 1,
                end_line=node.end_lineno, end_column=(node.end_col_offset or 0) + 1,
            ))
    return findings


@pytest.fixture
def marker_engine(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(checker, "_engine", lambda: marker_check_source)


@dataclass
class CliResult:
    code: int
    stdout: str
    stderr: str


@pytest.fixture
def run_check(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> Callable[..., CliResult]:
    """Run ``ftdoctor ARGS...`` in-process; the first arg is usually ``check``."""
    from ftdoctor.cli import main

    def run(*args: str, cwd: Path | None = None) -> CliResult:
        if cwd is not None:
            monkeypatch.chdir(cwd)
        monkeypatch.setattr(sys, "argv", ["ftdoctor", *args])
        capsys.readouterr()
        with pytest.raises(SystemExit) as exited:
            main()
        out, err = capsys.readouterr()
        code = exited.value.code
        return CliResult(code if isinstance(code, int) else (0 if code is None else 2), out, err)

    return run
