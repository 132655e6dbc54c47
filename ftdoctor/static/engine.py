"""The static engine: parse once, build the semantic model once, run every enabled rule.

The engine knows no rule: rules register themselves (``ftdoctor.static.rules``)
and query the :class:`~ftdoctor.static.model.ModuleModel`.
"""

from __future__ import annotations

import ast
import gc
import os
import re
import warnings
from typing import TYPE_CHECKING

from ftdoctor.catalogue import make_finding
from ftdoctor.findings import Finding
from ftdoctor.settings import Settings
from ftdoctor.static import rules as _rules  # noqa: F401  (registers every rule)
from ftdoctor.static.context import drop_exempt
from ftdoctor.static.reachability import drop_dead
from ftdoctor.static.model import ModuleModel, build_model
from ftdoctor.static.rule import STATIC_RULES

if TYPE_CHECKING:
    from ftdoctor.static.project import ModuleContext

PARSE_ERROR = "parse-error"
_LINE_BREAK = re.compile(r"\r\n|\r|\n")
_PARSE_FIX = "fix the syntax error so the file can be checked (run `python -m py_compile FILE` to see it)"
_NESTING_FIX = "split the deeply nested expression into smaller statements so the file can be analysed"


def check_source(
    source: str, path: str, settings: Settings | None = None, project: "ModuleContext | None" = None
) -> list[Finding]:
    """Parse `source`, build the semantic model once, run every enabled static rule.

    With `project` (the file's place in its project), the model also reads the summaries of the
    project modules it imports (and of those importing it); without, the file is analysed alone.

    Never raises: SyntaxError -> one `parse-error` finding at the error's line/column;
    RecursionError / MemoryError (pathological nesting) -> one `parse-error` finding saying
    the file is too deeply nested to analyse; an exception inside a rule is swallowed for that
    rule (and, with env FTDOCTOR_DEBUG=1, re-raised). Findings carry `path` as given.
    Suppression comments are NOT applied here (the surface applies them).
    """
    # The cyclic collector would repeatedly traverse the whole AST while the model allocates; the few
    # cycles a check creates are collected once it is re-enabled.
    collecting = gc.isenabled()
    gc.disable()
    try:
        return _check(source, path, settings or Settings(), project)
    finally:
        if collecting:
            gc.enable()


def _check(source: str, path: str, settings: Settings, project: "ModuleContext | None") -> list[Finding]:
    try:
        module = _build(source, path, project)
        module.project = project
    except SyntaxError as error:
        return _enabled([_syntax_error_finding(error, path, source)], settings)
    except (RecursionError, MemoryError):
        return _enabled([_nesting_finding(path)], settings)
    except ValueError as error:  # e.g. "source code string cannot contain null bytes"
        return _enabled([make_finding(PARSE_ERROR, f"cannot parse the file: {error}", _PARSE_FIX,
                                      path=path, line=1, column=1)], settings)
    findings: list[Finding] = []
    for slug, rule_class in STATIC_RULES.items():
        if slug == PARSE_ERROR or not settings.is_enabled(slug):
            continue
        findings.extend(_run_rule(rule_class(settings.rule_options.get(slug)), module))
    return settings.apply(drop_exempt(drop_dead(findings, module), module, settings))


def _build(source: str, path: str, project: "ModuleContext | None" = None) -> ModuleModel:
    if project is not None:
        return build_model(project.parse(source), source, path)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # SyntaxWarning for invalid escapes etc. is not our business
        tree = ast.parse(source, filename=path)
    return build_model(tree, source, path)


def _run_rule(rule: object, module: ModuleModel) -> list[Finding]:
    try:
        return list(rule.check(module))  # type: ignore[attr-defined]
    except (RecursionError, MemoryError):
        return []
    except Exception:
        if os.environ.get("FTDOCTOR_DEBUG") == "1":
            raise
        return []


def _enabled(findings: list[Finding], settings: Settings) -> list[Finding]:
    return settings.apply(findings)


def _syntax_error_finding(error: SyntaxError, path: str, source: str) -> Finding:
    line = error.lineno or 1
    column = error.offset or 1
    detail = error.msg or "invalid syntax"
    # the line from the source we parsed: Python may fill `error.text` by re-reading `path` from disk, which for
    # a notebook is a line of its JSON
    lines = _LINE_BREAK.split(source)  # the tokenizer's line breaks (str.splitlines also splits on \f ...)
    text = lines[line - 1].strip() if 0 < line <= len(lines) else ""
    message = f"cannot parse the file: {detail} (line {line})"
    if text:
        message += f": `{text[:80]}`"
    return make_finding(PARSE_ERROR, message, _PARSE_FIX, path=path, line=line, column=max(column, 1))


def _nesting_finding(path: str) -> Finding:
    return make_finding(
        PARSE_ERROR,
        "the file is too deeply nested to analyse (an expression or block nests deeper than the parser allows)",
        _NESTING_FIX,
        path=path,
        line=1,
        column=1,
    )
