"""model-output-tuple-unpack: ``_, pooled = self.bert(...)`` on a transformers model that returns a ModelOutput.

Since transformers 4.0 models return a ``ModelOutput`` (``return_dict=True`` by default), and
iterating a ``ModelOutput`` yields its *keys*: ``seq, pooled = bert(...)`` binds the strings
``"last_hidden_state"`` and ``"pooler_output"``. Reported only for models the module proves are
transformers/peft models, when neither the call, the model's construction nor any
``return_dict`` setting in the file turns tuples back on, and the project does not pin
transformers below 4 (where tuples were the default).
"""

from __future__ import annotations

import ast
import re
from functools import lru_cache
from pathlib import Path
from typing import Iterator

from ftdoctor.findings import Finding
from ftdoctor.static.analysis_values import ValueInfo
from ftdoctor.static.constants import producers
from ftdoctor.static.model import ModuleModel
from ftdoctor.static.modelfacts import describe, is_library_model, output_fields, output_type_kept
from ftdoctor.static.rule import StaticRule, register_static_rule

#: dependency files that may pin the transformers version
_DEPENDENCY_FILES = ("requirements.txt", "requirements-dev.txt", "environment.yml", "environment.yaml",
                     "setup.py", "setup.cfg", "pyproject.toml", "Pipfile")
_ROOT_MARKERS = ("pyproject.toml", "setup.py", "setup.cfg", ".git")
_PACKAGE = re.compile(r"(?<![\w-])transformers(?![\w-])(\[[^\]]*\])?")
#: one version specifier: ``==3.1.0``, ``=3.1.0`` (conda), ``~=3.0``, ``<4.0``, ``= "^3.0"`` (poetry)
_SPECIFIER = re.compile(r"""(==|~=|<=|>=|<|>|=)\s*["']?\s*\^?(\d+)(?:\.(\d+))?""")


@register_static_rule
class ModelOutputTupleUnpack(StaticRule):
    slug = "model-output-tuple-unpack"

    def check(self, module: ModuleModel) -> Iterator[Finding]:
        if _return_dict_configured(module):
            return
        candidates = [a for a in module.nodes(ast.Assign) if isinstance(a.targets[0], (ast.Tuple, ast.List))]  # type: ignore[attr-defined]
        if not candidates or _pins_tuple_outputs(module.path):
            return
        for assign in candidates:
            assert isinstance(assign, ast.Assign)
            calls = _library_forwards(module, assign.value, assign)
            if not calls:
                continue
            call = calls[0]
            target = assign.targets[0]
            assert isinstance(target, (ast.Tuple, ast.List))
            yield self.finding(
                module, target,
                f"`{describe(module, call.func)}` returns a ModelOutput, and unpacking it yields its keys: "
                f"`{describe(module, target)}` become the strings {_keys(module, call)}, not tensors",
                f"read the fields by name ({_fields(module, call)}), or index it (outputs[0], outputs[1]), "
                "or pass return_dict=False to get a tuple",
                anchors={"fields": _tuple_fields(module, calls)},
            )


def _head(module: ModuleModel, call: ast.Call) -> bool:
    return bool(module.value_of(_receiver(call)).is_head)


def _keys(module: ModuleModel, call: ast.Call) -> str:
    return '"loss", "logits", ...' if _head(module, call) else '"last_hidden_state", "pooler_output", ...'


def _fields(module: ModuleModel, call: ast.Call) -> str:
    return "outputs.loss, outputs.logits" if _head(module, call) else "outputs.last_hidden_state, outputs.pooler_output"


def _library_forwards(module: ModuleModel, value: ast.expr, at: ast.AST) -> list[ast.Call]:
    """The transformers forward calls ``value`` is (directly or through names), when every producer is one."""
    sources = [value] if isinstance(value, ast.Call) else producers(module, value, at)
    calls = [s for s in sources if isinstance(s, ast.Call)]
    if calls and len(calls) == len(sources) and all(_is_library_forward(module, c) for c in calls):
        return calls
    return []


def _tuple_fields(module: ModuleModel, calls: list[ast.Call]) -> list[str] | None:
    """The output field at each position of the old tuple, when every call gives the same ones (for the fixer)."""
    found = {output_fields(module.value_of(_receiver(call)), call) for call in calls}
    fields = found.pop() if len(found) == 1 else None
    return list(fields) if fields else None


def _receiver(call: ast.Call) -> ast.expr:
    func = call.func
    return func.value if isinstance(func, ast.Attribute) and func.attr == "forward" else func


def _is_library_forward(module: ModuleModel, call: ast.Call) -> bool:
    if any(kw.arg == "return_dict" or (kw.arg is None and not _data_only(module, kw.value)) for kw in call.keywords):
        return False  # return_dict passed (any value) or **kwargs that may carry it
    func = call.func
    if isinstance(func, ast.Attribute) and func.attr == "forward":
        func = func.value
    if not isinstance(func, (ast.Name, ast.Attribute)):
        return False
    info = module.value_of(func)
    return info.kind == "model" and _library_model(module, info)


def _data_only(module: ModuleModel, mapping: ast.expr) -> bool:
    """``**encoding`` / ``**batch``: model inputs from a tokenizer or a DataLoader, never ``return_dict``."""
    if isinstance(mapping, ast.Dict):
        return not any(isinstance(k, ast.Constant) and k.value == "return_dict" for k in mapping.keys)
    if module.value_of(mapping).kind in ("encoding", "batch"):
        return True
    sources = producers(module, mapping)
    return bool(sources) and all(  # tokenizer(...) gives a BatchEncoding
        isinstance(s, ast.Call) and module.value_of(s.func).kind == "tokenizer" for s in sources
    )


def _library_model(module: ModuleModel, info: ValueInfo) -> bool:
    return is_library_model(module, info) and output_type_kept(module, info)


def _return_dict_configured(module: ModuleModel) -> bool:
    """Any ``return_dict=...`` keyword to a constructor/config or ``x.return_dict = ...`` in the file:
    the author manages the output type, and the model cannot tell which models it reaches."""
    for node in module.nodes(ast.keyword):
        assert isinstance(node, ast.keyword)
        if node.arg == "return_dict" and isinstance(module.parent(node), ast.Call):
            parent = module.parent(node)
            assert isinstance(parent, ast.Call)
            if module.value_of(parent.func).kind != "model":
                return True
    for node in module.nodes(ast.Attribute):
        assert isinstance(node, ast.Attribute)
        if node.attr in ("return_dict", "use_return_dict") and isinstance(node.ctx, ast.Store):
            return True
    return False


def _pins_tuple_outputs(path: str) -> bool:
    """The project around ``path`` pins transformers below 4.0 (tuples were the default output)."""
    try:
        directory = Path(path).resolve().parent
    except (OSError, RuntimeError):
        return False
    return _directory_pins_tuples(directory)


@lru_cache(maxsize=256)
def _directory_pins_tuples(directory: Path) -> bool:
    for _ in range(6):
        for name in _DEPENDENCY_FILES:
            candidate = directory / name
            if candidate.is_file():
                major = _pinned_major(candidate)
                if major is not None:
                    return major < 4
        if any((directory / marker).exists() for marker in _ROOT_MARKERS) or directory.parent == directory:
            return False
        directory = directory.parent
    return False


def _pinned_major(path: Path) -> int | None:
    """The highest transformers major version a dependency file allows, when it bounds it from above."""
    try:
        text = path.read_text(encoding="utf-8", errors="replace")[:200_000]
    except OSError:
        return None
    bounds: list[int] = []
    for line in text.splitlines():
        match = _PACKAGE.search(line)
        if match is None:
            continue
        for operator, major, minor in _SPECIFIER.findall(line[match.end():].split("#", 1)[0]):
            if operator in (">=", ">"):
                continue
            upper = int(major)
            if operator == "<" and minor in ("", "0"):
                upper -= 1
            bounds.append(upper)
    return min(bounds) if bounds else None
