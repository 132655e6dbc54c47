"""Test and benchmark code: where `context: training-script` rules stay silent.

Unit tests take a large learning rate on purpose so that one step shows a change, keep
a fixed data order on purpose and train a few steps without the hygiene a real run
needs; throughput benchmarks are not training recipes. The contract names that code:
pytest files (``test_*.py``, ``*_test.py``, ``conftest.py``), functions named
``test_*``, and anything under a folder named ``tests``, ``test`` or ``benchmarks``.
Folders are matched on the path as reported (relative to the working directory when
the file is inside it), so a checkout that happens to live under ``/home/me/test/``
is not exempt when checked from inside it.
"""

from __future__ import annotations

import ast
from pathlib import PurePath
from typing import Iterable

from ftdoctor.findings import Finding
from ftdoctor.settings import Settings
from ftdoctor.static.model import ModuleModel

TEST_FOLDERS = frozenset({"tests", "test", "benchmarks"})


def is_test_path(path: str) -> bool:
    """A pytest file, or a file under a test or benchmark folder."""
    parts = PurePath(path.replace("\\", "/")).parts
    if not parts:
        return False
    name = parts[-1]
    stem = name.rsplit(".", 1)[0]
    if stem.startswith("test_") or stem.endswith("_test") or stem == "conftest":
        return True
    return any(part in TEST_FOLDERS for part in parts[:-1])


def spans_of_test_functions(module: ModuleModel) -> list[tuple[int, int]]:
    """First and last line of every function named ``test_*`` (methods of test classes included)."""
    spans = []
    for node in module.nodes(ast.FunctionDef, ast.AsyncFunctionDef):
        if node.name.startswith("test_"):  # type: ignore[attr-defined]
            start = min([node.lineno, *(d.lineno for d in node.decorator_list)])  # type: ignore[attr-defined]
            spans.append((start, node.end_lineno or node.lineno))  # type: ignore[attr-defined]
    return spans


def drop_exempt(findings: Iterable[Finding], module: ModuleModel, settings: Settings) -> list[Finding]:
    """The findings that stand once test and benchmark code is exempt from ``training-script`` rules."""
    findings = list(findings)
    if settings.check_tests or not any(settings.exempts_in_tests(f.rule) for f in findings):
        return findings
    if is_test_path(module.path):
        return [f for f in findings if not settings.exempts_in_tests(f.rule)]
    spans = spans_of_test_functions(module)
    if not spans:
        return findings
    return [
        f for f in findings
        if not (settings.exempts_in_tests(f.rule) and f.line is not None and any(a <= f.line <= b for a, b in spans))
    ]
