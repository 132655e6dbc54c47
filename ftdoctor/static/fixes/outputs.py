"""Fixes where a value is read the wrong way: a ModelOutput unpacked like a tuple, a flag parsed with `bool`."""

from __future__ import annotations

import ast
from typing import Any

import libcst as cst

from ftdoctor.findings import Finding
from ftdoctor.static.fixes.base import (
    Edit, FixSource, Fixer, bound_names, code_of, dotted_name, expression_text, register_fixer, splice, statement,
    with_keyword,
)

#: names tried, in order, for the output kept to read several fields from it
_OUTPUT_NAMES = ("outputs", "model_outputs", "forward_outputs")


@register_fixer
class OutputFieldsByName(Fixer):
    """model-output-tuple-unpack: read the fields by name, in the order the old tuple held them.

    ``_, pooled = self.bert(...)`` becomes ``pooled = self.bert(...).pooler_output``;
    ``seq, pooled = bert(...)`` becomes ``outputs = bert(...)`` and
    ``seq, pooled = outputs.last_hidden_state, outputs.pooler_output``. Safe when the rule names
    the field at every unpacked position (the model class is known, and for a task head the call
    shows whether the loss leads). Otherwise, for a direct call, ``return_dict=False`` brings
    back the tuple the code was written for: unsafe, since a model from remote code may not
    take it. A ``_`` target is dropped only when nothing in the file reads ``_``.
    """

    slug = "model-output-tuple-unpack"
    safety = "safe"

    def fix(self, source: FixSource, finding: Finding) -> Edit | None:
        target = source.finding_node(finding, (cst.Tuple, cst.List))
        assign = source.parents.get(source.parents.get(target)) if target is not None else None  # type: ignore[arg-type]
        line = source.parents.get(assign) if assign is not None else None
        if not (isinstance(assign, cst.Assign) and len(assign.targets) == 1 and isinstance(line, cst.SimpleStatementLine)
                and len(line.body) == 1 and target is not None):
            return None
        elements = [e.value for e in target.elements if isinstance(e, cst.Element)]
        if len(elements) != len(target.elements) or not all(
                isinstance(e, (cst.Name, cst.Attribute, cst.Subscript)) for e in elements):
            return None  # `a, *rest = ...` or nested targets
        fields = (finding.anchors or {}).get("fields")
        if not fields or len(elements) > len(fields):
            return self._as_tuple(source, assign)
        kept = [(element, field) for element, field in zip(elements, fields) if not _discarded(element, source)]
        value = assign.value
        if not kept:
            return None
        if isinstance(value, (cst.Name, cst.Attribute)) and dotted_name(expression_text(value)):
            new = _reads(kept, expression_text(value)).with_changes(
                leading_lines=line.leading_lines, trailing_whitespace=line.trailing_whitespace)
            return self.edit(splice(source.module, {line: [new]}))
        if isinstance(value, cst.Call) and len(kept) == 1:
            element, field = kept[0]
            moved = _moved(source, value, len(code_of(element)) - len(code_of(target)))
            single = assign.with_changes(targets=[assign.targets[0].with_changes(target=element)],
                                         value=cst.Attribute(value=moved, attr=cst.Name(field)))
            return self.edit(source.module.deep_replace(assign, single))  # type: ignore[arg-type]
        name = next((n for n in _OUTPUT_NAMES if n not in bound_names(source.tree)), None)
        if not isinstance(value, cst.Call) or name is None or source.block_of(line) is None:
            return None
        kept_call = assign.with_changes(targets=[assign.targets[0].with_changes(target=cst.Name(name))],
                                        value=_moved(source, value, len(name) - len(code_of(target))))
        return self.edit(splice(source.module, {line: [line.with_changes(body=[kept_call]), _reads(kept, name)]}))

    def _as_tuple(self, source: FixSource, assign: cst.Assign) -> Edit | None:
        """``return_dict=False`` on the call: the very tuple transformers 3 returned (unsafe)."""
        call = assign.value
        if not isinstance(call, cst.Call):
            return None  # the output is made elsewhere, and other code may read it by name
        return self.edit(source.module.deep_replace(  # type: ignore[arg-type]
            call, with_keyword(call, "return_dict", cst.Name("False"))), safe=False)


def _reads(kept: list[tuple[cst.BaseExpression, str]], receiver: str) -> cst.SimpleStatementLine:
    """``seq, pooled = outputs.last_hidden_state, outputs.pooler_output``"""
    targets = ", ".join(code_of(element) for element, _ in kept)
    return statement(f"{targets} = " + ", ".join(f"{receiver}.{field}" for _, field in kept))


def _moved(source: FixSource, call: cst.Call, shift: int) -> cst.Call:
    """``call`` moved ``shift`` columns: arguments aligned under its parenthesis move with it."""
    text = code_of(call)
    lines = text.split("\n")
    start = source.positions[call].start.column
    opening = lines[0].find("(")
    if (len(lines) < 2 or shift == 0 or opening < 0 or lines[0].rstrip().endswith("(")
            or any(mark in text for mark in ('"""', "'''", "\\\n"))):
        return call  # one line, a hanging indent, or a string spanning lines: nothing to align
    column = start + opening + 1
    if len(lines[1]) - len(lines[1].lstrip(" ")) != column or any(
            line.strip() and len(line) - len(line.lstrip(" ")) < -shift for line in lines[1:]):
        return call
    shifted = [lines[0]] + [(line[-shift:] if shift < 0 else " " * shift + line) if line.strip() else line
                            for line in lines[1:]]
    try:
        moved = cst.parse_expression("\n".join(shifted))
    except cst.ParserSyntaxError:
        return call
    return moved if isinstance(moved, cst.Call) else call


def _discarded(target: cst.BaseExpression, source: FixSource) -> bool:
    """A `_` target that nothing in the file reads: dropping it loses nothing."""
    return isinstance(target, cst.Name) and target.value == "_" and not any(
        isinstance(node, ast.Name) and node.id == "_" and isinstance(node.ctx, ast.Load) for node in ast.walk(source.tree))


# ----------------------------------------------------------------------------- argparse

#: the words a yes/no option reads as False (any case); every other text stays True, as bool() gave
_FALSE_WORDS = ("", "0", "false", "f", "no", "n", "off")
_CONVERTER_NAMES = ("str2bool", "parse_bool", "text_to_bool")
#: argparse actions that call ``type`` on each value and nothing else
_PLAIN_ACTIONS = ("store", "append", "extend")


def _converter(name: str) -> str:
    words = ", ".join(f'"{word}"' for word in _FALSE_WORDS)
    return (f"def {name}(text: str) -> bool:\n"
            f'    """A yes/no option\'s value: {", ".join(w for w in _FALSE_WORDS[1:])} (any case) are False, '
            'any other text True."""\n'
            f"    return text.lower() not in ({words})\n")


@register_fixer
class BoolConverter(Fixer):
    """argparse-type-bool: ``type=str2bool``, a converter defined once after the module's imports.

    The command line keeps its shape (same option, one value, same default and nargs); only a
    value spelling false — ``False``, ``0``, ``no``, ``off``, ``f``, ``n`` in any case — now gives
    False instead of True, and every other text gives True as before. Unsafe when argparse would
    convert a default that may spell false (a string default, or an expression), when an action
    other than store/append/extend may read ``type``, when ``**kwargs`` may carry either, or when
    the help text prints ``%(type)s``.
    """

    slug = "argparse-type-bool"
    safety = "safe"

    def fix(self, source: FixSource, finding: Finding) -> Edit | None:
        converter = source.finding_node(finding, cst.Name)
        arg = source.parents.get(converter) if converter is not None else None
        call = source.parents.get(arg) if arg is not None else None
        if not (isinstance(arg, cst.Arg) and isinstance(call, cst.Call) and converter is not None):
            return None
        name, defined = _converter_name(source)
        if name is None:
            return None
        module = source.module.deep_replace(converter, cst.Name(name))
        if not defined:
            module = _define(module, cst.parse_statement(_converter(name)))  # type: ignore[arg-type]
        star = any(isinstance(node, ast.ImportFrom) and any(a.name == "*" for a in node.names)
                   for node in ast.walk(source.tree))  # a `str2bool` it brings would be shadowed
        return self.edit(module, safe=_same_cli(call) and not star)  # type: ignore[arg-type]


def _converter_name(source: FixSource) -> tuple[str | None, bool]:
    """A free name for the converter, or the name of the one an earlier fix defined (True)."""
    taken = bound_names(source.tree)
    for name in _CONVERTER_NAMES:
        ours = _converter(name)
        if any(isinstance(node, ast.FunctionDef) and ast.unparse(node).strip() == ast.unparse(ast.parse(ours)).strip()
               for node in source.tree.body):
            return name, True
        if name not in taken:
            return name, False
    return None, False


def _define(module: cst.Module, definition: cst.BaseStatement) -> cst.Module:
    """``definition`` after the module's leading docstring and imports, so it exists before any code runs."""
    body = list(module.body)
    index = 0
    while index < len(body) and _is_header(body[index], index):
        index += 1
    blank = [cst.EmptyLine(), cst.EmptyLine()]
    if index < len(body):
        after = body[index]
        empties = 0
        for line_ in after.leading_lines:
            if line_.comment is not None:
                break
            empties += 1
        body[index] = after.with_changes(leading_lines=[*blank[:max(0, 2 - empties)], *after.leading_lines])
    body.insert(index, definition.with_changes(leading_lines=blank if index else []))
    return module.with_changes(body=body)


def _is_header(statement_: cst.BaseStatement, index: int) -> bool:
    if not isinstance(statement_, cst.SimpleStatementLine):
        return False
    return all(isinstance(part, (cst.Import, cst.ImportFrom)) or (
        index == 0 and isinstance(part, cst.Expr) and isinstance(part.value, (cst.SimpleString, cst.ConcatenatedString)))
        for part in statement_.body)


def _same_cli(call: cst.Call) -> bool:
    """Every value argparse converts behaves as before, except words that spell false."""
    for arg in call.args:
        if arg.star == "**":
            return False
        keyword = arg.keyword.value if arg.keyword is not None else None
        if keyword == "default" and not _never_false_word(arg.value):
            return False
        if keyword == "action" and _literal(arg.value) not in _PLAIN_ACTIONS:
            return False
        if keyword == "help" and "%(type)" in code_of(arg.value):
            return False
    return True


def _never_false_word(value: cst.BaseExpression) -> bool:
    """A default argparse leaves alone (not a string) or converts to True either way."""
    literal = _literal(value, missing=value)
    if literal is value:
        return False  # an expression: it may be a string that spells false
    return not isinstance(literal, str) or literal.lower() not in _FALSE_WORDS


def _literal(value: cst.BaseExpression, missing: Any = None) -> Any:
    try:
        return ast.literal_eval(code_of(value).strip())
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
        return missing
