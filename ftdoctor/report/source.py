"""The source line a finding points at, read back from disk (cached per file).

Used by the text report (to show the line with a caret) and by baselines (to
fingerprint findings by their line's text). A notebook finding's line is
relative to its cell (``Finding.cell``, or the ``cell N:`` prefix of its message in a
report read back from JSON).
"""

from __future__ import annotations

import re
from pathlib import Path

from ftdoctor.findings import Finding

_CELL_PREFIX = re.compile(r"^cell (\d+): ")


class SourceLines:
    def __init__(self) -> None:
        self._files: dict[str, list[str] | None] = {}
        self._notebooks: dict[str, object] = {}

    def line_of(self, finding: Finding) -> str | None:
        if not finding.path or not finding.line:
            return None
        lines = self._lines(finding)
        if lines is None or not 1 <= finding.line <= len(lines):
            return None
        return lines[finding.line - 1]

    def _lines(self, finding: Finding) -> list[str] | None:
        assert finding.path is not None
        if finding.path.lower().endswith(".ipynb"):
            match = _CELL_PREFIX.match(finding.message)
            cell = finding.cell if finding.cell is not None else int(match.group(1)) if match else None
            return self._cell_lines(finding.path, cell) if cell is not None else None
        if finding.path not in self._files:
            from ftdoctor.sources import read_text_lines

            self._files[finding.path] = read_text_lines(Path(finding.path))
        return self._files[finding.path]

    def _cell_lines(self, path: str, cell: int) -> list[str] | None:
        from ftdoctor.notebook import InvalidNotebook, parse_notebook

        if path not in self._notebooks:
            try:
                self._notebooks[path] = parse_notebook(Path(path).read_text(encoding="utf-8-sig"))
            except (OSError, UnicodeDecodeError, InvalidNotebook):
                self._notebooks[path] = None
        notebook = self._notebooks[path]
        return notebook.cell_lines(cell) if notebook is not None else None  # type: ignore[attr-defined]
