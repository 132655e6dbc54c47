"""Files in, one Report out: decode, check, apply suppressions, in parallel when many.

Nothing here raises for a bad file: unreadable, undecodable, binary or
unparsable input becomes a ``parse-error`` finding and the other files are still
checked. The engine behind :func:`check_python` is A1's
``ftdoctor.static.engine.check_source``.
"""

from __future__ import annotations

import os
from dataclasses import replace
from typing import TYPE_CHECKING, Callable, Sequence

from ftdoctor.catalogue import make_finding
from ftdoctor.findings import Finding, Report
from ftdoctor.settings import Settings
from ftdoctor.sources import SourceFile, UndecodableSource, decode_python
from ftdoctor.static.suppressions import Suppressions

if TYPE_CHECKING:
    from ftdoctor.notebook import NotebookSource
    from ftdoctor.static.project import ModuleContext, Projects

#: Below this many files a process pool costs more than it saves.
PARALLEL_THRESHOLD = 40
#: Chunks per worker: enough to balance uneven files, few enough to keep IPC cheap.
CHUNKS_PER_WORKER = 4

_SourceChecker = Callable[[str, str, "Settings | None", "ModuleContext | None"], list[Finding]]


def check_files(
    files: Sequence[SourceFile], settings: Settings, *, parallel: bool | None = None, cache: bool = True
) -> Report:
    """Check every file, reading the projects around them; ``parallel=None`` decides by the number of files
    and CPUs; ``cache=False`` keeps module summaries out of ``.ftdoctor_cache/``."""
    from ftdoctor.static.project import Projects

    projects = Projects(cache=cache)
    workers = _worker_count() if parallel is not False else 1
    if parallel is None and len(files) <= PARALLEL_THRESHOLD:
        workers = 1
    per_file = _check_in_pool(files, settings, workers, projects) if workers > 1 else None
    if per_file is None:
        per_file = [check_file(file, settings, projects) for file in files]
    findings = [finding for file_findings in per_file for finding in file_findings]
    return Report(mode="check", findings=findings, files_checked=len(files))


def check_file(file: SourceFile, settings: Settings, projects: "Projects | None" = None) -> list[Finding]:
    """Findings for one file (settings and suppressions applied); never raises. With ``projects`` the
    modules it imports from its project are read too."""
    project = projects.context(file.path) if projects is not None else None
    try:
        data = file.path.read_bytes()
    except OSError as exc:
        return settings.apply([_parse_error(file.display, f"cannot be read: {exc.strerror or exc}", _FIX_READ)])
    if file.is_notebook:
        return check_notebook(data, file.display, settings, project)
    try:
        source = decode_python(data)
    except UndecodableSource as exc:
        return settings.apply([_parse_error(file.display, f"cannot be decoded: {exc.reason}", _FIX_DECODE, exc.line)])
    return check_python(source, file.display, settings, project)


def check_python(source: str, path: str, settings: Settings, project: "ModuleContext | None" = None) -> list[Finding]:
    """Findings for decoded Python source, suppression comments honoured."""
    suppressions = Suppressions.scan(source)
    if suppressions.whole_file:
        return []
    findings = settings.apply(_run_engine(source, path, settings, project))
    return suppressions.filter(findings)


def check_notebook(data: bytes, path: str, settings: Settings, project: "ModuleContext | None" = None) -> list[Finding]:
    """Findings for a notebook's code cells, addressed to cell and cell line."""
    from ftdoctor.notebook import InvalidNotebook, parse_notebook

    try:
        notebook = parse_notebook(data.decode("utf-8-sig"))
    except UnicodeDecodeError as exc:
        return settings.apply([_parse_error(path, f"cannot be decoded: notebooks are UTF-8 JSON ({exc.reason})", _FIX_NOTEBOOK)])
    except InvalidNotebook as exc:
        return settings.apply([_parse_error(path, f"cannot be read: {exc}", _FIX_NOTEBOOK)])
    findings = check_python(notebook.source, path, settings, project)
    if any(finding.rule == "parse-error" for finding in findings):
        findings = _check_cell_by_cell(notebook, path, settings) or findings
    return [notebook.map_finding(finding) for finding in findings]


def _check_cell_by_cell(notebook: "NotebookSource", path: str, settings: Settings) -> list[Finding]:
    """One parse-error per cell that does not parse, and the other cells checked together; [] when every
    cell parses alone (the error spans cells, and the whole-notebook finding stands)."""
    bad = notebook.unparsable_cells()
    if not bad:
        return []
    findings = check_python(notebook.without_cells(bad).source, path, settings)
    for cell in bad:  # the cell alone, at its place in the notebook: the engine's own parse-error
        errors = check_python("\n" * (cell.first_line - 1) + cell.source, path, settings)
        findings.extend(replace(error, message=error.message.replace("the file", "the cell"))
                        for error in errors if error.rule == "parse-error")
    return findings


# ----------------------------------------------------------------------------- engine


def _engine() -> _SourceChecker:
    from ftdoctor.static.engine import check_source

    return check_source


def _run_engine(source: str, path: str, settings: Settings, project: "ModuleContext | None") -> list[Finding]:
    # The engine promises never to raise; this guard keeps one file's engine bug
    # from losing every other file's findings.
    check_source = _engine()  # an import failure is not this file's fault: let it surface (exit 2)
    try:
        return list(check_source(source, path, settings, project))
    except (RecursionError, MemoryError):
        return [_parse_error(path, "is too deeply nested to analyse", _FIX_NESTING)]
    except Exception as exc:
        if os.environ.get("FTDOCTOR_DEBUG"):
            raise
        return [_parse_error(path, f"could not be analysed (internal error {type(exc).__name__}: {exc})", _FIX_BUG)]


_FIX_READ = "check the file's permissions, or exclude it"
_FIX_DECODE = "save the file as UTF-8 (or declare its encoding with a `# -*- coding: ... -*-` line), or exclude it"
_FIX_NOTEBOOK = "open and re-save the notebook in Jupyter, or exclude it"
_FIX_NESTING = "split the deeply nested expression into smaller statements"
_FIX_BUG = "this is a bug in ftdoctor; rerun with FTDOCTOR_DEBUG=1 and report the traceback"


def _parse_error(path: str, what: str, fix: str, line: int | None = None) -> Finding:
    return make_finding("parse-error", f"the file {what}; nothing in it was checked", fix, path=path, line=line)


# ---------------------------------------------------------------------------- parallel


def _worker_count() -> int:
    try:
        cpus = len(os.sched_getaffinity(0))
    except AttributeError:  # macOS, Windows
        cpus = os.cpu_count() or 1
    return max(1, min(cpus, 8))


def _chunks(files: Sequence[SourceFile], count: int) -> list[list[SourceFile]]:
    size = max(1, -(-len(files) // count))
    return [list(files[i : i + size]) for i in range(0, len(files), size)]


def _check_chunk(files: list[SourceFile], settings: Settings, projects: "Projects | None") -> list[list[Finding]]:
    projects = projects.in_this_process() if projects is not None else None
    return [check_file(file, settings, projects) for file in files]


def _check_in_pool(
    files: Sequence[SourceFile], settings: Settings, workers: int, projects: "Projects | None" = None
) -> list[list[Finding]] | None:
    """Per-file findings computed by a process pool; None when no pool can start."""
    from concurrent.futures import ProcessPoolExecutor  # with multiprocessing: ~30 ms, only when used
    from concurrent.futures.process import BrokenProcessPool

    _engine()  # import the rules once here, so forked workers inherit them
    chunks = _chunks(files, workers * CHUNKS_PER_WORKER)
    try:
        with ProcessPoolExecutor(max_workers=min(workers, len(chunks))) as pool:
            results = pool.map(_check_chunk, chunks, [settings] * len(chunks), [projects] * len(chunks))
            return [file_findings for chunk in results for file_findings in chunk]
    except (OSError, BrokenProcessPool, NotImplementedError):
        return None  # no processes here (sandbox, tiny container): check serially
