"""parse-error: the file cannot be parsed.

The engine emits this finding itself (there is no model to query when parsing
fails); the class is registered so that registry and catalogue match one to one
and the rule can be selected or ignored like any other.
"""

from __future__ import annotations

from typing import Iterator

from ftdoctor.findings import Finding
from ftdoctor.static.rule import StaticRule, register_static_rule


@register_static_rule
class ParseError(StaticRule):
    slug = "parse-error"

    def check(self, module: object) -> Iterator[Finding]:
        return iter(())  # emitted by ftdoctor.static.engine.check_source
