"""Base class and registry for static rules (fixit style).

Each rule is a small class with a ``slug`` and a ``check(module)`` generator
that queries the semantic model of one module and yields findings through
:meth:`StaticRule.finding`. Its examples live in its catalogue entry
(``rules/FTDnnn-slug.md``), which the test-suite runs.
"""

from __future__ import annotations

import ast
from typing import TYPE_CHECKING, ClassVar, Iterator

from ftdoctor.catalogue import make_finding
from ftdoctor.findings import Finding

if TYPE_CHECKING:
    from ftdoctor.static.model import ModuleModel

#: slug -> rule class, filled by @register_static_rule
STATIC_RULES: dict[str, type["StaticRule"]] = {}


def register_static_rule(cls: type["StaticRule"]) -> type["StaticRule"]:
    if cls.slug in STATIC_RULES:
        raise ValueError(f"static rule {cls.slug} registered twice")
    STATIC_RULES[cls.slug] = cls
    return cls


class StaticRule:
    slug: ClassVar[str]

    def check(self, module: "ModuleModel") -> Iterator[Finding]:
        raise NotImplementedError

    def finding(self, module: "ModuleModel", node: ast.AST, message: str, fix: str) -> Finding:
        """A finding located at ``node`` (line/column 1-based, as the contract shows)."""
        return make_finding(
            self.slug,
            message,
            fix,
            path=module.path,
            line=getattr(node, "lineno", None),
            column=(node.col_offset + 1) if hasattr(node, "col_offset") else None,
            end_line=getattr(node, "end_lineno", None),
            end_column=(node.end_col_offset + 1) if getattr(node, "end_col_offset", None) is not None else None,
        )
