"""`check --fix` / `--diff`: apply fixers one finding at a time until nothing more can be fixed.

Each round re-checks the current text and applies the first fix that

- parses, and changes the text into one not seen before (no cycles),
- makes its own rule report fewer findings, or the same number saying less (a finding that
  names several reads on a line loses one per fix),
- and makes no rule report more,

so a fixer that is wrong in some context is refused there instead of breaking the file. Each
round parses the text once with libcst, checks every candidate fix on its own, then applies all
that passed and touch separate lines together when the union passes too (else the first).
Settings and suppression comments apply as in `check`: a silenced finding is not fixed.
Notebooks are fixed cell by cell in place; outputs, metadata and IPython lines stay as they were.
"""

from __future__ import annotations

import difflib
import io
import tokenize
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Collection

from ftdoctor.findings import Finding
from ftdoctor.settings import Settings
from ftdoctor.static.checker import check_python
from ftdoctor.sources import SourceFile, UndecodableSource, decode_python

#: Rounds per file; every applied fix removes at least one finding, so this only stops runaway cases.
MAX_ROUNDS = 100


@dataclass
class FixedText:
    """One text after fixing: what was fixed, and what only --unsafe-fixes would fix."""

    original: str
    text: str
    applied: list[Finding] = field(default_factory=list)
    unsafe_left: int = 0

    @property
    def changed(self) -> bool:
        return self.text != self.original


@dataclass
class FileFix:
    """A file's fixes: the new bytes to write, and a diff per changed part (the file, or each cell)."""

    file: SourceFile
    result: FixedText
    new_data: bytes | None = None
    diffs: list[str] = field(default_factory=list)


def fix_text(
    source: str, path: str, settings: Settings, *, unsafe: bool = False, rules: Collection[str] | None = None
) -> FixedText:
    """``source`` with every fix applied that the checks above allow (only ``rules``' fixes when given)."""
    from ftdoctor.static.fixes import FIXERS, FixSource

    result = FixedText(original=source, text=source)
    seen = {source}
    findings = check_python(source, path, settings)
    current = None
    for _ in range(MAX_ROUNDS):
        fixable = sorted((f for f in findings if f.rule in FIXERS and (rules is None or f.rule in rules)),
                         key=Finding.sort_key)
        if not fixable:
            break  # the common case: no libcst parse at all
        current = FixSource(result.text, path)
        round_ = _fix_round(current, fixable, findings, path, settings, unsafe=unsafe, seen=seen)
        if round_ is None:
            break
        result.text, findings, applied = round_
        result.applied.extend(applied)
    if not unsafe and any(f.rule in FIXERS for f in findings):
        source = current if current is not None and current.text == result.text else FixSource(result.text, path)
        result.unsafe_left = _unsafe_fixable(source, findings)
    return result


def _fix_round(
    current: Any, fixable: list[Finding], findings: list[Finding], path: str, settings: Settings, *,
    unsafe: bool, seen: set[str],
) -> tuple[str, list[Finding], list[Finding]] | None:
    """(new text, its findings, the findings fixed) after one round; None when nothing could be fixed.

    One libcst parse per round: each fix is checked on its own, then every fix that passed and
    touches its own lines is applied together (or, if the union does not check out, the first).
    """
    from ftdoctor.static.fixes import FIXERS

    passed: list[tuple[Finding, list[Hunk], str, list[Finding]]] = []
    for finding, hunks in _candidates(current, fixable, FIXERS, unsafe, seen):
        text = _apply(current.text, hunks)
        seen.add(text)
        if _parses(text):
            after = check_python(text, path, settings)
            if _improves(findings, after, finding.rule):
                passed.append((finding, hunks, text, after))
    if not passed:
        return None
    if len(passed) > 1:
        union = _apply(current.text, [hunk for _, hunks, _, _ in passed for hunk in hunks])
        after = check_python(union, path, settings) if _parses(union) else None
        if after is not None and all(_improves(findings, after, finding.rule) for finding, *_ in passed):
            return union, after, [finding for finding, *_ in passed]
    finding, _, text, after = passed[0]
    return text, after, [finding]


def _edit(fixer: Any, source: Any, finding: Finding) -> Any:
    try:
        return fixer.fix(source, finding)
    except Exception:  # a fixer bug must not lose the file: no fix for this finding
        import os

        if os.environ.get("FTDOCTOR_DEBUG"):
            raise
        return None


def _parses(text: str) -> bool:
    import ast

    try:
        ast.parse(text)
    except (SyntaxError, ValueError, RecursionError):
        return False
    return True


Hunk = tuple[int, int, list[str]]  # old lines [start, end) -> new lines


def _candidates(source: Any, fixable: list[Finding], fixers: Any, unsafe: bool,
                seen: set[str]) -> list[tuple[Finding, list[Hunk]]]:
    """Each allowed fix as line hunks of the current text, skipping any that touches another's lines."""
    lines = source.text.splitlines(keepends=True)
    chosen: list[tuple[Finding, list[Hunk]]] = []
    taken: list[tuple[int, int]] = []
    added: set[str] = set()  # two fixes adding the same line (a helper both define) would add it twice
    for finding in fixable:
        edit = _edit(fixers[finding.rule](), source, finding)
        if edit is None or (not edit.safe and not unsafe):
            continue
        text = edit.module.code
        if text in seen or text == source.text:
            continue
        matcher = difflib.SequenceMatcher(None, lines, text.splitlines(keepends=True), autojunk=False)
        new = text.splitlines(keepends=True)
        hunks = [(i1, i2, new[j1:j2]) for tag, i1, i2, j1, j2 in matcher.get_opcodes() if tag != "equal"]
        lines_added = {line.strip() for _, _, new_lines in hunks for line in new_lines if line.strip()}
        if any(start <= end2 and start2 <= end for start, end, _ in hunks for start2, end2 in taken) or (
                lines_added & added):
            continue  # touches lines another fix of this round changes, or adds the same lines: next round
        taken.extend((start, end) for start, end, _ in hunks)
        added |= lines_added
        chosen.append((finding, hunks))
    return chosen


def _apply(text: str, hunks: list[Hunk]) -> str:
    lines = text.splitlines(keepends=True)
    for start, end, new in sorted(hunks, key=lambda hunk: hunk[0], reverse=True):
        lines[start:end] = new
    return "".join(lines)


def _improves(before: list[Finding], after: list[Finding], rule: str) -> bool:
    """``rule`` says less (fewer findings, or as many saying less), and no rule says more."""
    counts, new_counts = Counter(f.rule for f in before), Counter(f.rule for f in after)
    if any(new_counts[r] > counts[r] for r in new_counts):
        return False
    if new_counts[rule] < counts[rule]:
        return True
    said = sorted(len(f.message) for f in before if f.rule == rule)
    return sorted(len(f.message) for f in after if f.rule == rule) < said


def _unsafe_fixable(source: Any, findings: list[Finding]) -> int:
    from ftdoctor.static.fixes import FIXERS

    edits = [_edit(FIXERS[f.rule](), source, f) for f in findings if f.rule in FIXERS]
    return sum(1 for edit in edits if edit is not None and not edit.safe)


# ----------------------------------------------------------------------------- files


def fix_file(file: SourceFile, settings: Settings, *, unsafe: bool = False) -> FileFix | None:
    """The fixes of one file, not yet written; None when it cannot be read (`check` reports why)."""
    try:
        data = file.path.read_bytes()
    except OSError:
        return None
    if file.is_notebook:
        return _fix_notebook(file, data, settings, unsafe)
    try:
        source = decode_python(data)
    except UndecodableSource:
        return None
    result = fix_text(source, file.display, settings, unsafe=unsafe)
    fixed = FileFix(file, result)
    if result.changed:
        fixed.new_data = result.text.encode(_encoding(data))
        fixed.diffs.append(_diff(result.original, result.text, file.display))
    return fixed


def _encoding(data: bytes) -> str:
    encoding, _ = tokenize.detect_encoding(io.BytesIO(data).readline)
    return encoding


def _diff(old: str, new: str, name: str) -> str:
    lines = difflib.unified_diff(old.splitlines(keepends=True), new.splitlines(keepends=True),
                                 fromfile=f"a/{name}", tofile=f"b/{name}")
    return "".join(line if line.endswith("\n") else line + "\n" for line in lines)


def _fix_notebook(file: SourceFile, data: bytes, settings: Settings, unsafe: bool) -> FileFix | None:
    """Fix the joined code cells, then write back only the sources that changed.

    The JSON is edited as JSON, not through nbformat (which adds cell ids and revalidates):
    outputs, metadata, key order and indentation stay exactly as saved.
    """
    import json

    from ftdoctor.notebook import InvalidNotebook, parse_notebook

    try:
        text = data.decode("utf-8-sig")
        joined = parse_notebook(text)
        notebook = json.loads(text)
    except (UnicodeDecodeError, InvalidNotebook, ValueError, RecursionError):
        return None
    cells = notebook.get("cells") if isinstance(notebook, dict) else None
    if not isinstance(cells, list):
        return None  # an nbformat 3 notebook: read, never rewritten
    result = fix_text(joined.source, file.display, settings, unsafe=unsafe)
    fixed = FileFix(file, result)
    if not result.changed:
        return fixed
    new_cells = _cells_after(joined, cells, result.original, result.text)
    if new_cells is None:  # a fix touched an IPython line or crossed cells: leave the notebook alone
        fixed.result = FixedText(original=result.original, text=result.original, unsafe_left=result.unsafe_left)
        return fixed
    for number, source in sorted(new_cells.items()):
        cell = cells[number - 1]
        old = _cell_source(cell)
        if source != old:
            fixed.diffs.append(_diff(old if old.endswith("\n") else old + "\n",
                                     source if source.endswith("\n") else source + "\n",
                                     f"{file.display}:cell {number}"))
            cell["source"] = source.splitlines(keepends=True) if isinstance(cell.get("source"), list) else source
    fixed.new_data = (json.dumps(notebook, indent=_indent(text), ensure_ascii=False) + "\n").encode("utf-8")
    return fixed


def _indent(text: str) -> int:
    """The JSON indentation the notebook was saved with (Jupyter writes 1)."""
    second = text.split("\n", 2)[1] if text.count("\n") >= 2 else ""
    return (len(second) - len(second.lstrip(" "))) or 1


def _cell_source(cell: Any) -> str:
    source = cell.get("source", "")
    return "".join(source) if isinstance(source, list) else source


def _cells_after(joined: Any, cells: list[Any], old: str, new: str) -> dict[int, str] | None:
    """Each code cell's new source, from the fixed joined Python; None when it cannot be mapped back."""
    raw: list[str] = []  # the cell's own lines, IPython syntax and all, one per joined line
    view = old.splitlines(keepends=True)
    owner: list[int] = []
    for cell in joined.cells:
        lines = _cell_source(cells[cell.number - 1]).splitlines(keepends=True)
        count = cell.source.count("\n")
        lines = (lines + [""] * count)[:count]
        raw.extend(line if line.endswith("\n") else line + "\n" for line in lines)
        owner.extend([cell.number] * count)
    if len(raw) != len(view) or not owner:
        return None
    out: dict[int, list[str]] = {cell.number: [] for cell in joined.cells}
    new_lines = new.splitlines(keepends=True)
    for tag, i1, i2, j1, j2 in difflib.SequenceMatcher(None, view, new_lines, autojunk=False).get_opcodes():
        if tag == "equal":
            for k in range(i1, i2):
                out[owner[k]].append(raw[k])
            continue
        touched = {owner[k] for k in range(i1, i2)} or {owner[min(i1, len(owner) - 1)]}
        if len(touched) != 1 or any(raw[k] != view[k] for k in range(i1, i2)):
            return None
        out[touched.pop()].extend(new_lines[j1:j2])
    result: dict[int, str] = {}
    for number, lines in out.items():
        text = "".join(lines)
        original = _cell_source(cells[number - 1])
        if not original.endswith("\n") and text.endswith("\n"):
            text = text[:-1]
        result[number] = text
    return result


@dataclass
class FixRun:
    """Every file's fixes: what `--fix` writes and `--diff` prints."""

    files: list[FileFix]

    @property
    def changed(self) -> list[FileFix]:
        return [fixed for fixed in self.files if fixed.new_data is not None]

    @property
    def applied(self) -> int:
        return sum(len(fixed.result.applied) for fixed in self.changed)

    @property
    def unsafe_left(self) -> int:
        return sum(fixed.result.unsafe_left for fixed in self.files)

    def diff(self) -> str:
        return "".join(diff for fixed in self.changed for diff in fixed.diffs)

    def write(self) -> None:
        for fixed in self.changed:
            write_fix(fixed)


def fix_files(files: list[SourceFile], settings: Settings, *, unsafe: bool = False) -> FixRun:
    """Every file's fixes, in worker processes when there are many files (as `check` does)."""
    from ftdoctor.static.checker import PARALLEL_THRESHOLD, _chunks, _worker_count

    workers = _worker_count() if len(files) > PARALLEL_THRESHOLD else 1
    fixed: list[FileFix | None] | None = None
    if workers > 1:
        fixed = _fix_in_pool(_chunks(files, workers * 4), settings, unsafe, workers)
    if fixed is None:
        fixed = [fix_file(file, settings, unsafe=unsafe) for file in files]
    return FixRun([one for one in fixed if one is not None])


def _fix_chunk(files: list[SourceFile], settings: Settings, unsafe: bool) -> list[FileFix | None]:
    return [fix_file(file, settings, unsafe=unsafe) for file in files]


def _fix_in_pool(chunks: list[list[SourceFile]], settings: Settings, unsafe: bool,
                 workers: int) -> list[FileFix | None] | None:
    from concurrent.futures import ProcessPoolExecutor
    from concurrent.futures.process import BrokenProcessPool

    from ftdoctor.static import fixes as _fixes  # noqa: F401  (import the fixers and rules once: workers inherit them)
    from ftdoctor.static.checker import _engine

    _engine()

    try:
        with ProcessPoolExecutor(max_workers=min(workers, len(chunks))) as pool:
            results = pool.map(_fix_chunk, chunks, [settings] * len(chunks), [unsafe] * len(chunks))
            return [one for chunk in results for one in chunk]
    except (OSError, BrokenProcessPool, NotImplementedError):
        return None  # no processes here: fix serially


def write_fix(fixed: FileFix) -> None:
    """Replace the file atomically (a temporary file renamed over it), so Ctrl-C never leaves half a file."""
    if fixed.new_data is None:
        return
    import os
    import tempfile

    target = Path(fixed.file.path)
    handle, temporary = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".ftdoctor", dir=target.parent)
    try:
        with os.fdopen(handle, "wb") as out:
            out.write(fixed.new_data)
        os.chmod(temporary, target.stat().st_mode & 0o7777)
        os.replace(temporary, target)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
