"""dict-batch-attribute-access: a plain dict (a default-collated batch) is read like an object."""

from __future__ import annotations

import ast
from typing import TYPE_CHECKING, Iterator

from ftdoctor.findings import Finding
from ftdoctor.static.analysis_values import ValueInfo
from ftdoctor.static.model import Binding
from ftdoctor.static.rule import StaticRule, register_static_rule

if TYPE_CHECKING:
    from ftdoctor.static.model import ModuleModel

_DICT_ATTRIBUTES = frozenset(dir(dict))


@register_static_rule
class DictBatchAttributeAccess(StaticRule):
    slug = "dict-batch-attribute-access"

    def check(self, module: "ModuleModel") -> Iterator[Finding]:
        by_line: dict[tuple[str, int], list[ast.Attribute]] = {}
        reasons: dict[tuple[str, int], str] = {}
        for read in module.name_attribute_reads:
            if read.attr in _DICT_ATTRIBUTES or read.attr.startswith("__"):
                continue
            binding = module.binding_of(read.value)
            if binding is not None and module.exclusive(binding.node, read):
                continue  # bound in the other arm of an if: that value never reaches this read
            why = _why_plain_dict(module, binding) if binding is not None else None
            if why is None:
                continue
            place = (read.value.id, read.lineno)  # type: ignore[attr-defined]
            by_line.setdefault(place, []).append(read)
            reasons[place] = why
        for (name, line), reads in by_line.items():
            shown = ", ".join(f"`{name}.{r.attr}`" for r in reads)
            items = ", ".join(f'{name}["{r.attr}"]' for r in reads)
            yield self.finding(
                module, reads[0],
                f"`{name}` is a plain dict ({reasons[name, line]}), so {shown} (line {line}) "
                f"{'raises' if len(reads) == 1 else 'raise'} AttributeError",
                f"use item access: {items}",
            )


def _why_plain_dict(module: "ModuleModel", binding: Binding) -> str | None:
    info = binding.info
    if info.kind == "dict" and info.origin is None:
        return f"built at line {binding.line}"
    if info.kind == "dict" and info.origin is not None:
        return _why_plain_dict(module, info.origin)
    if info.kind == "batch" and info.origin is not None:
        loader = info.origin.origin()
        if loader.kind == "dataloader" and _yields_dicts(module, loader.info):
            return f"`{loader.name}` collates dict items into a dict of tensors"
    return None


def _yields_dicts(module: "ModuleModel", loader: ValueInfo) -> bool:
    """A DataLoader with the default collate (or ``default_data_collator``) over a dataset of dicts."""
    collate = loader.argument("collate_fn")
    if collate is not None:
        name = module.qualified_name(collate) or ""
        if not name.endswith("default_data_collator"):
            return False  # a custom collate may build anything (DataCollatorWithPadding gives a BatchEncoding)
    dataset = loader.argument("dataset", 0)
    if dataset is None:
        return False
    return _items_are_dicts(module, dataset)


def _items_are_dicts(module: "ModuleModel", dataset: ast.expr) -> bool:
    info = module.value_of(dataset)
    if info.kind == "dataset":
        if (info.qualname or "").startswith("datasets."):
            return True  # Hugging Face datasets yield one dict per row
        local = module.classes.get(info.local_class or "")
        getitem = local.functions.get("__getitem__") if local is not None else None
        return getitem is not None and _returns_dict(module, getitem.node)
    origin = info.origin
    value = origin.value if origin is not None else dataset
    if isinstance(value, ast.ListComp):
        return isinstance(value.elt, (ast.Dict, ast.DictComp))
    if isinstance(value, ast.List) and value.elts:
        return all(isinstance(e, (ast.Dict, ast.DictComp)) for e in value.elts)
    return False


def _returns_dict(module: "ModuleModel", function: ast.AST) -> bool:
    returns = [n.value for n in ast.walk(function) if isinstance(n, ast.Return) and n.value is not None]
    return bool(returns) and all(module.value_of(value).kind == "dict" for value in returns)
