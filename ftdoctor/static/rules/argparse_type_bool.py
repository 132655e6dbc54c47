"""argparse-type-bool: ``add_argument(..., type=bool)`` turns every non-empty string, "False" included, into True.

Only reported when the receiver is proven to be an argparse parser (``argparse.ArgumentParser``,
transformers' ``HfArgumentParser``, an argument group or sub-parser of one), through names,
parameters and helper returns; a parser whose origin the module does not show stays silent.
"""

from __future__ import annotations

import ast
from typing import Iterator

from ftdoctor.findings import Finding
from ftdoctor.static.constants import producers
from ftdoctor.static.model import ModuleModel, call_name, keyword
from ftdoctor.static.rule import StaticRule, register_static_rule

#: constructors whose instances have argparse's ``add_argument``
_PARSERS = ("argparse.ArgumentParser", "transformers.HfArgumentParser", "transformers.hf_argparser.HfArgumentParser")
#: parser methods that return an object with the same ``add_argument``
_SUB_PARSERS = frozenset({"add_argument_group", "add_mutually_exclusive_group", "add_parser"})
_MAX_DEPTH = 4


@register_static_rule
class ArgparseTypeBool(StaticRule):
    slug = "argparse-type-bool"

    def check(self, module: ModuleModel) -> Iterator[Finding]:
        for call in module.calls():
            if call_name(call) != "add_argument" or not isinstance(call.func, ast.Attribute):
                continue
            converter = keyword(call, "type")
            if converter is None or module.qualified_name(converter) != "bool":
                continue
            if not _is_parser(module, call.func.value, call, 0):
                continue
            flag = next((a.value for a in call.args if isinstance(a, ast.Constant) and isinstance(a.value, str)), "--flag")
            negated = f"--no-{flag.lstrip('-')}"
            yield self.finding(
                module, converter,
                f"`{flag}` is parsed with type=bool, which is True for every non-empty string: `{flag} False` "
                "gives True",
                f'use action="store_true" (or action=argparse.BooleanOptionalAction for {flag}/{negated}), or a '
                "converter that reads the text (lambda s: s.lower() in (\"1\", \"true\", \"yes\"))",
            )


def _is_parser(module: ModuleModel, receiver: ast.expr, at: ast.AST, depth: int) -> bool:
    """Every value ``receiver`` may hold is built by an argparse parser constructor (or a group of one)."""
    if depth > _MAX_DEPTH:
        return False
    sources = producers(module, receiver, at)
    if not sources:
        return False
    for source in sources:
        if not isinstance(source, ast.Call):
            return False
        name = module.qualified_name(source.func) or ""
        if name in _PARSERS or name.endswith(".ArgumentParser"):
            continue
        if isinstance(source.func, ast.Attribute) and source.func.attr in _SUB_PARSERS:
            if _is_parser(module, source.func.value, source, depth + 1) or _is_subparsers(module, source.func.value, source, depth + 1):
                continue
        return False
    return True


def _is_subparsers(module: ModuleModel, receiver: ast.expr, at: ast.AST, depth: int) -> bool:
    """``subparsers = parser.add_subparsers()``: its ``add_parser`` returns a parser."""
    sources = producers(module, receiver, at)
    return bool(sources) and all(
        isinstance(s, ast.Call) and call_name(s) == "add_subparsers" and isinstance(s.func, ast.Attribute)
        and _is_parser(module, s.func.value, s, depth + 1)
        for s in sources
    )
