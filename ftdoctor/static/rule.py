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

    def finding(
        self, module: "ModuleModel", node: ast.AST, message: str, fix: str, anchors: dict[str, Any] | None = None
    ) -> Finding:
        """A finding located at ``node`` (line/column 1-based, as the contract shows).

        ``anchors`` carry what this rule's fixer needs beyond ``node`` (see :func:`span`).
        """
        line, column, end_line, end_column = span(node)
        return make_finding(
            self.slug, message, fix, path=module.path, line=line, column=column, end_line=end_line,
            end_column=end_column, anchors=anchors,
        )


def span(node: ast.AST) -> tuple[Any, Any, Any, Any]:
    """``(line, column, end_line, end_column)`` of a node, 1-based like a finding's location."""
    end_column = getattr(node, "end_col_offset", None)
    return (
        getattr(node, "lineno", None),
        (node.col_offset + 1) if hasattr(node, "col_offset") else None,
        getattr(node, "end_lineno", None),
        end_column + 1 if end_column is not None else None,
    )
