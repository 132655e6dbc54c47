"""What every fixer shares: the registry, the source as libcst sees it, and statement splicing.

A fixer is a small class per rule slug (fixit style) that turns one finding into an
:class:`Edit` of the whole module, or ``None`` when it cannot prove the edit right in
context. ``safety`` is the most a fixer promises: a ``"safe"`` fixer may still downgrade
one edit to unsafe when the surrounding code leaves doubt; an ``"unsafe"`` fixer's edits
always need ``--unsafe-fixes``. libcst keeps every comment, blank line and quote as written.
"""

from __future__ import annotations

import ast
import functools
from dataclasses import dataclass
from typing import Any, ClassVar, Iterable, Literal, Mapping, Sequence, TypeVar

import libcst as cst
from libcst.metadata import CodeRange, MetadataWrapper, ParentNodeProvider, PositionProvider

from ftdoctor.findings import Finding
from ftdoctor.registry import RuleRegistry

Safety = Literal["safe", "unsafe"]
N = TypeVar("N", bound=cst.CSTNode)
#: (line, column, end_line, end_column), 1-based columns as findings have them
Span = Sequence[Any]

#: slug -> fixer class, filled by @register_fixer
FIXERS: RuleRegistry = RuleRegistry("fixer")
register_fixer = FIXERS.register


@dataclass(frozen=True)
class Edit:
    """The whole module after one fix, and whether applying it is proven not to break working code."""

    module: cst.Module
    safe: bool


class Fixer:
    slug: ClassVar[str]
    safety: ClassVar[Safety] = "safe"

    def fix(self, source: "FixSource", finding: Finding) -> Edit | None:
        raise NotImplementedError

    def edit(self, module: cst.Module, *, safe: bool = True) -> Edit:
        return Edit(module, safe=safe and self.safety == "safe")


class FixSource:
    """One version of a file: text, libcst tree with positions and parents, and the ast tree."""

    def __init__(self, text: str, path: str | None = None) -> None:
        self.text = text
        self.path = path  # where the file is: its project's other modules are beside or above it
        self.lines = text.splitlines()

    @functools.cached_property
    def _wrapper(self) -> MetadataWrapper:
        # No defensive deep copy: the freshly parsed tree is ours alone (and copying costs as much as parsing).
        return MetadataWrapper(cst.parse_module(self.text), unsafe_skip_copy=True)

    @property
    def module(self) -> cst.Module:
        """The tree every lookup returns nodes of; transform this one."""
        return self._wrapper.module

    @functools.cached_property
    def _metadata(self) -> Any:
        return self._wrapper.resolve_many([PositionProvider, ParentNodeProvider])  # one walk for both

    @property
    def positions(self) -> Mapping[cst.CSTNode, CodeRange]:
        return self._metadata[PositionProvider]

    @property
    def parents(self) -> Mapping[cst.CSTNode, cst.CSTNode]:
        return self._metadata[ParentNodeProvider]

    @functools.cached_property
    def tree(self) -> ast.Module:
        return ast.parse(self.text)

    # ------------------------------------------------------------------ finding nodes

    def node_at(self, span: Span | None, kinds: type[N] | tuple[type[N], ...], *, exact_end: bool = True) -> N | None:
        """The node of ``kinds`` that starts (and, for expressions, ends) where an ast span does."""
        if span is None or span[0] is None or span[1] is None:
            return None
        start = (span[0], self._char_column(span[0], span[1] - 1))
        end = (span[2], self._char_column(span[2], span[3] - 1)) if exact_end and span[2] and span[3] else None
        for node, where in self.positions.items():
            if not isinstance(node, kinds) or (where.start.line, where.start.column) != start:
                continue
            if end is None or (where.end.line, where.end.column) == end:
                return node
        return None

    def finding_node(self, finding: Finding, kinds: type[N] | tuple[type[N], ...], **how: bool) -> N | None:
        return self.node_at((finding.line, finding.column, finding.end_line, finding.end_column), kinds, **how)

    def statement_at(self, span: Span | None) -> cst.SimpleStatementLine | cst.BaseCompoundStatement | None:
        """The statement starting at ``span`` (a compound statement, or a line of simple ones)."""
        found = self.node_at(span, (cst.BaseCompoundStatement, cst.SimpleStatementLine), exact_end=False)
        if isinstance(found, cst.SimpleStatementLine) and len(found.body) != 1:
            return None  # `a(); b()` on one line: not ours to split
        return found

    def statement_of(self, node: cst.CSTNode) -> cst.SimpleStatementLine | None:
        """The one-statement line holding an expression, when it is the whole statement."""
        parent = self.parents.get(node)
        if isinstance(parent, cst.Expr):
            line = self.parents.get(parent)
            if isinstance(line, cst.SimpleStatementLine) and len(line.body) == 1:
                return line
        return None

    def block_of(self, statement: cst.CSTNode) -> cst.IndentedBlock | cst.Module | None:
        """The block whose body lists ``statement`` (never a one-line `if x: a` suite)."""
        parent = self.parents.get(statement)
        return parent if isinstance(parent, (cst.IndentedBlock, cst.Module)) else None

    def ancestors(self, node: cst.CSTNode) -> Iterable[cst.CSTNode]:
        while node in self.parents:
            node = self.parents[node]
            yield node

    def _char_column(self, line: int, byte_column: int) -> int:
        # ast columns count UTF-8 bytes; libcst's count characters.
        text = self.lines[line - 1] if 0 < line <= len(self.lines) else ""
        return len(text.encode("utf-8")[:byte_column].decode("utf-8", errors="ignore"))


# ------------------------------------------------------------------------- editing


def code_of(node: cst.CSTNode) -> str:
    return cst.Module(body=[]).code_for_node(node)


def statement(code: str) -> cst.SimpleStatementLine:
    parsed = cst.parse_statement(code + "\n")
    assert isinstance(parsed, cst.SimpleStatementLine)
    return parsed


def splice(module: cst.Module, edits: dict[cst.CSTNode, list[cst.CSTNode]]) -> cst.Module:
    """Replace each statement key (a node of ``module``) by its list of statements."""
    return module.visit(_Splice(edits))  # type: ignore[return-value]


def insert_before(module: cst.Module, anchor: cst.CSTNode, new: cst.SimpleStatementLine) -> cst.Module:
    """``new`` on its own line right above ``anchor``, taking over the blank lines and comments above it."""
    leading = getattr(anchor, "leading_lines", ())
    moved = new.with_changes(leading_lines=leading)
    return splice(module, {anchor: [moved, anchor.with_changes(leading_lines=())]})


def insert_after(module: cst.Module, anchor: cst.CSTNode, new: cst.CSTNode) -> cst.Module:
    return splice(module, {anchor: [anchor, new]})


def detached(line: cst.SimpleStatementLine) -> cst.SimpleStatementLine:
    """A statement to move elsewhere: keeps its comment lines, drops the blank ones."""
    return line.with_changes(leading_lines=[ln for ln in line.leading_lines if ln.comment is not None])


class _Splice(cst.CSTTransformer):
    def __init__(self, edits: dict[cst.CSTNode, list[cst.CSTNode]]) -> None:
        super().__init__()
        self.edits = {id(node): replacement for node, replacement in edits.items()}

    def _body(self, original: Sequence[cst.CSTNode], updated: Sequence[cst.CSTNode]) -> list[cst.CSTNode]:
        body: list[cst.CSTNode] = []
        for before, after in zip(original, updated):
            # the original node in a replacement list stands for its (possibly edited) updated self
            body.extend(after if node is before else node for node in self.edits.get(id(before), [before]))
        return body

    def leave_IndentedBlock(self, original: cst.IndentedBlock, updated: cst.IndentedBlock) -> cst.IndentedBlock:
        body = self._body(original.body, updated.body)
        return updated.with_changes(body=body or [cst.SimpleStatementLine([cst.Pass()])])

    def leave_Module(self, original: cst.Module, updated: cst.Module) -> cst.Module:
        return updated.with_changes(body=self._body(original.body, updated.body))


def with_keyword(call: cst.Call, name: str, value: cst.BaseExpression) -> cst.Call:
    """``call`` with ``name=value`` appended, keeping a one-argument-per-line layout with its trailing comma."""
    args = list(call.args)
    new = cst.Arg(value=value, keyword=cst.Name(name),
                  equal=cst.AssignEqual(whitespace_before=cst.SimpleWhitespace(""),
                                        whitespace_after=cst.SimpleWhitespace("")))
    if args and isinstance(args[-1].comma, cst.Comma):  # a trailing comma: keep the layout, one per line
        between = args[-2].comma if len(args) > 1 and isinstance(args[-2].comma, cst.Comma) else args[-1].comma
        new = new.with_changes(comma=args[-1].comma)
        args[-1] = args[-1].with_changes(comma=between)
    elif args:
        args[-1] = args[-1].with_changes(comma=cst.Comma(whitespace_after=cst.SimpleWhitespace(" ")))
    args.append(new)
    return call.with_changes(args=args)


def bound_names(tree: ast.Module) -> set[str]:
    """Every name the module binds or reads anywhere: a new name must avoid them all."""
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Name):
            names.add(node.id)
        elif isinstance(node, ast.arg):
            names.add(node.arg)
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif isinstance(node, ast.alias):
            names.add((node.asname or node.name).split(".")[0])
        elif isinstance(node, (ast.Global, ast.Nonlocal)):
            names.update(node.names)
    return names


def dotted_name(text: Any) -> bool:
    """True for `model` or `self.model`: safe to paste as a receiver."""
    return isinstance(text, str) and all(part.isidentifier() for part in text.split("."))


def expression_text(node: cst.CSTNode) -> str:
    return code_of(node).strip()
