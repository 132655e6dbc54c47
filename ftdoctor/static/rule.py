"""Base class and registry for static rules (fixit style).

Each rule is a small class with a ``slug`` and a ``check(module)`` generator
that queries the semantic model of one module and yields findings through
:meth:`StaticRule.finding`. Its examples live in its catalogue entry
(``rules/FTDnnn-slug.md``), which the test-suite runs.
"""

from __future__ import annotations

import ast
from typing import TYPE_CHECKING, Any, ClassVar, Iterator, Mapping

from ftdoctor.catalogue import make_finding
from ftdoctor.findings import Finding
from ftdoctor.registry import RuleRegistry

if TYPE_CHECKING:
    from ftdoctor.static.model import ModuleModel

#: slug -> rule class, filled by @register_static_rule
STATIC_RULES: RuleRegistry = RuleRegistry("static")
register_static_rule = STATIC_RULES.register


class StaticRule:
    slug: ClassVar[str]

    def __init__(self, options: Mapping[str, Any] | None = None) -> None:
        #: this rule's options from the configuration (``Settings.rule_options[slug]``)
        self.options: Mapping[str, Any] = options or {}

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
