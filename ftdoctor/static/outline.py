"""The outline of a large module: only what its summary reads, at the same line numbers.

A summary needs a module's imports, its top-level functions and the headers (names and bases) of its
classes; method bodies, module-level statements and ``if __name__ == "__main__":`` blocks it never reads.
Library modules are mostly method bodies, so parsing and modelling the outline instead of the whole file
makes summarising the modules a project imports cheap. Everything else becomes blank lines (class bodies a
``pass``), so line numbers stay true. The cut is made on lines, not tokens: when it produces something that
does not parse (a string spanning top-level lines, an odd layout), the caller parses the whole file instead.
"""

from __future__ import annotations

import re

#: files below this many characters are parsed whole (cheap anyway)
OUTLINE_ABOVE = 16_000
_LINE_BREAK = re.compile(r"\r\n|\r|\n")
#: column-0 lines that continue the statement above (a closing bracket, the other arms of try/if)
_CONTINUING = (")", "]", "}", "except", "else:", "elif ", "finally:")
#: small top-level ``try:``/``if`` blocks are kept when they import (optional-dependency and TYPE_CHECKING guards)
_GUARD_LINES = 24


def outline(source: str) -> str:
    lines = _LINE_BREAK.split(source)
    kept = [""] * len(lines)
    for start, end in _top_level_blocks(lines):
        block = lines[start:end]
        head = _first_code_line(block)
        if head is None:
            continue
        words = head.split(None, 1)
        first = words[0] if words else ""
        if first in ("import", "from", "def", "async") or first.startswith("@") and _decorates(block, "def"):
            kept[start:end] = block
        elif first == "class" or first.startswith("@") and _decorates(block, "class"):
            _keep_class_header(block, start, kept)
        elif first.rstrip(":") in ("try", "if") and len(block) <= _GUARD_LINES and any(
            line.lstrip().startswith(("import ", "from ")) for line in block
        ):
            kept[start:end] = block
    return "\n".join(kept)


def _top_level_blocks(lines: list[str]) -> list[tuple[int, int]]:
    """(start, end) of each top-level statement: a line starting in column 0 up to the next such line."""
    starts = [
        index for index, line in enumerate(lines)
        if line and not line[0].isspace() and line[0] != "#" and not line.startswith(_CONTINUING)
    ]
    blocks = []
    index = 0
    while index < len(starts):
        start = starts[index]
        # decorators belong to the def or class they precede
        while lines[starts[index]].startswith("@") and index + 1 < len(starts):
            index += 1
        end = starts[index + 1] if index + 1 < len(starts) else len(lines)
        blocks.append((start, end))
        index += 1
    return blocks


def _first_code_line(block: list[str]) -> str | None:
    return next((line for line in block if line and not line[0].isspace() and line[0] != "#"), None)


def _decorates(block: list[str], keyword: str) -> bool:
    return any(line.startswith((keyword + " ", "async " + keyword + " ")) for line in block)


def _keep_class_header(block: list[str], start: int, kept: list[str]) -> None:
    """Decorators and the ``class Name(bases):`` lines, then ``pass`` on the next line."""
    for offset, line in enumerate(block):
        kept[start + offset] = line
        if line.startswith("class "):
            header_end = offset
            depth = 0
            for offset in range(offset, len(block)):
                text = block[offset].split("#", 1)[0]
                depth += sum(text.count(c) for c in "([{") - sum(text.count(c) for c in ")]}")
                kept[start + offset] = block[offset]
                header_end = offset
                if depth <= 0 and text.rstrip().endswith(":"):
                    break
            if header_end + 1 < len(block):
                kept[start + header_end + 1] = "    pass"
            return
