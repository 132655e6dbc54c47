"""Jupyter notebooks: code cells joined into one module, findings mapped back to cells.

IPython syntax is not Python: line magics (``%pip install``), automagics (``pip install x``,
``cd data``, ``ls -la`` without the ``%``), cell magics (a cell starting with ``%%``), shell
escapes (``!ls``, ``files = !ls``) and help queries (``obj?``) become blank lines (``pass``
when indented, so blocks stay valid), which keeps every line number. The body of a cell magic
that runs Python (``%%capture``, ``%%time`` ...) is kept when it parses. Cells are numbered from
1 over all cells, as notebook front-ends show them; a finding is addressed to its cell and the
line within the cell, and so are the line numbers its message mentions.
"""

from __future__ import annotations

import ast
import json
import re
import warnings
from bisect import bisect_right
from dataclasses import dataclass, replace
from typing import Any

from ftdoctor.findings import Finding

_MAGIC_LINE = re.compile(r"^\s*(?:[%!]|\w[\w.]*\s*=\s*[%!])")
_HELP_LINE = re.compile(r"^\s*(?:\?\??\s*[\w.]+|[\w.]+\s*\?\??)\s*$")
#: IPython's automagics and the shell commands it aliases, used without `%`/`!`: `pip install x`, `cd data`,
#: `ls -la`, a bare `pwd`. Python never has a name followed by a word, path or flag, so `ls = 1`, `time - t0`
#: and `cd(x)` stay Python.
_AUTOMAGIC = re.compile(
    r"^\s*(?:pip|pip3|conda|mamba|cd|ls|ll|pwd|mkdir|rmdir|cp|mv|rm|cat|less|env|set_env|load_ext|reload_ext|"
    r"matplotlib|timeit|time|run|who|whos|reset|history|autoreload|alias|pushd|popd|dhist|dirs|man|clear|"
    r"pinfo|pdef|psource|config|precision|xmode|bookmark|store|tb|debug|pdb)"
    r"(?:\s*$|\s+(?:-{1,2}[A-Za-z]|[\w./~\\\"'$]))"
)
#: cell magics whose body is Python (run with timing, captured output, a profiler or a debugger)
_PYTHON_CELL_MAGICS = frozenset({"capture", "time", "timeit", "prun", "debug"})
_LINE_REFERENCE = re.compile(r"\bline (\d+)\b")


class InvalidNotebook(Exception):
    """Not a notebook we can read; the message says why."""


@dataclass(frozen=True)
class Cell:
    number: int  # 1-based position among all cells
    first_line: int  # 1-based line in the joined source
    source: str

    @property
    def line_count(self) -> int:
        return self.source.count("\n")

    def parses(self) -> bool:
        return _parses(self.source)


@dataclass
class NotebookSource:
    """The joined Python source of a notebook's code cells, and where each cell sits in it."""

    cells: list[Cell]

    @property
    def source(self) -> str:
        return "".join(cell.source for cell in self.cells)

    def cell_at(self, line: int) -> Cell | None:
        starts = [cell.first_line for cell in self.cells]
        index = bisect_right(starts, line) - 1
        return self.cells[index] if index >= 0 else None

    def map_finding(self, finding: Finding) -> Finding:
        """A finding on the joined source, re-addressed to its cell."""
        if finding.line is None:
            return finding
        cell = self.cell_at(finding.line)
        if cell is None:
            return finding
        offset = cell.first_line - 1
        end_line = finding.end_line
        if end_line is not None:
            # a span running past its cell is cut at the cell's last line
            end_line = min(end_line - offset, max(1, cell.line_count))
        return replace(
            finding,
            line=finding.line - offset,
            end_line=end_line,
            cell=cell.number,
            message=f"cell {cell.number}: {self._cell_lines_in(finding.message, cell)}",
            fix=self._cell_lines_in(finding.fix, cell),
        )

    def _cell_lines_in(self, message: str, home: Cell) -> str:
        """``(line 139)`` in a message or fix -> the line in its cell, naming the cell when it is another one."""

        def readdress(match: re.Match[str]) -> str:
            cell = self.cell_at(int(match.group(1)))
            if cell is None:
                return match.group(0)
            line = int(match.group(1)) - cell.first_line + 1
            return f"line {line}" if cell is home else f"cell {cell.number} line {line}"

        return _LINE_REFERENCE.sub(readdress, message)

    def without_cells(self, dropped: list[Cell]) -> "NotebookSource":
        """The same notebook with ``dropped`` cells blanked (every other line keeps its number)."""
        return NotebookSource([
            replace(cell, source="\n" * cell.line_count) if cell in dropped else cell for cell in self.cells
        ])

    def unparsable_cells(self) -> list[Cell]:
        return [cell for cell in self.cells if not cell.parses()]

    def cell_lines(self, number: int) -> list[str]:
        cell = next((c for c in self.cells if c.number == number), None)
        return cell.source.splitlines() if cell else []


def parse_notebook(text: str) -> NotebookSource:
    """Code cells of a notebook's JSON text, IPython syntax blanked."""
    try:
        data = json.loads(text)
    except (json.JSONDecodeError, RecursionError) as exc:
        raise InvalidNotebook(f"it is not valid notebook JSON ({exc})") from exc
    cells = _raw_cells(data)
    joined: list[Cell] = []
    line = 1
    for number, raw in enumerate(cells, start=1):
        if not isinstance(raw, dict) or raw.get("cell_type") != "code":
            continue
        source = _python_lines(_cell_text(raw.get("source", "")))
        joined.append(Cell(number=number, first_line=line, source=source))
        line += source.count("\n")
    return NotebookSource(joined)


def _raw_cells(data: Any) -> list[Any]:
    if not isinstance(data, dict):
        raise InvalidNotebook("it is not a notebook (the JSON is not an object)")
    if isinstance(data.get("cells"), list):
        return data["cells"]
    if "worksheets" in data:  # nbformat 3 and older: let nbformat upgrade it
        return _upgraded_cells(data)
    raise InvalidNotebook("it is not a notebook (no `cells` list)")


def _upgraded_cells(data: dict[str, Any]) -> list[Any]:
    import nbformat  # only for old notebooks; it is slow to import

    try:
        notebook = nbformat.reads(json.dumps(data), as_version=4)
    except Exception as exc:  # nbformat raises many kinds on bad input
        raise InvalidNotebook(f"nbformat cannot read it ({type(exc).__name__}: {exc})") from exc
    return [dict(cell) for cell in notebook.cells]


def _cell_text(source: Any) -> str:
    if isinstance(source, list):
        return "".join(part for part in source if isinstance(part, str))
    return source if isinstance(source, str) else ""


def _python_lines(text: str) -> str:
    """The cell with IPython-only lines blanked, ending in a newline."""
    lines = text.splitlines()
    if lines and lines[0].lstrip().startswith("%%"):
        magic = lines[0].lstrip()[2:].split(maxsplit=1)
        if magic and magic[0] in _PYTHON_CELL_MAGICS:
            body = _python_lines("\n".join(lines[1:]))
            if _parses(body):
                return "\n" + body
        return "\n" * len(lines)  # another language (%%bash, %%html ...), or a body that is not Python
    out: list[str] = []
    scanner = _BracketScanner()
    magic_continues = False
    for line in lines:
        at_statement_start = scanner.at_statement_start()
        if magic_continues:  # the tail of a magic continued with a backslash
            magic_continues = line.rstrip().endswith("\\")
            out.append("")
            continue
        if at_statement_start and (_MAGIC_LINE.match(line) or _HELP_LINE.match(line) or _AUTOMAGIC.match(line)):
            magic_continues = line.rstrip().endswith("\\")
            out.append(_blank(line))
            continue
        scanner.feed(line)
        out.append(line)
    return "".join(f"{line}\n" for line in out)


def _parses(source: str) -> bool:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            ast.parse(source)
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return False
    return True


def _blank(line: str) -> str:
    indent = line[: len(line) - len(line.lstrip())]
    return f"{indent}pass" if indent else ""


class _BracketScanner:
    """Just enough lexing to know whether the next line starts a statement.

    `%` or `!` opening a line inside brackets, a string or after a backslash is an
    operator continuing Python, not a magic.
    """

    def __init__(self) -> None:
        self.depth = 0
        self.quote: str | None = None  # the open string's delimiter
        self.backslash = False

    def at_statement_start(self) -> bool:
        return self.depth == 0 and self.quote is None and not self.backslash

    def feed(self, line: str) -> None:
        i, n = 0, len(line)
        in_comment = False
        while i < n:
            if self.quote:
                if line[i] == "\\":
                    i += 2
                    continue
                if line.startswith(self.quote, i):
                    i += len(self.quote)
                    self.quote = None
                    continue
                i += 1
                continue
            char = line[i]
            if char == "#":
                in_comment = True
                break
            if char in "\"'":
                triple = line[i : i + 3]
                self.quote = triple if triple in ('"""', "'''") else char
                i += len(self.quote)
                continue
            if char in "([{":
                self.depth += 1
            elif char in ")]}":
                self.depth = max(0, self.depth - 1)
            i += 1
        if self.quote in ('"', "'"):
            self.quote = None  # an unterminated one-line string: a syntax error the engine reports
        self.backslash = line.rstrip().endswith("\\") and self.quote is None and not in_comment
