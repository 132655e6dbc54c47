"""Facts about DataLoader constructions: does a loader keep its dataset's order?

Shared by the train-loader-not-shuffled rule (loaders built in the checked module) and the
project summaries (loaders returned by a function of another module of the project).
"""

from __future__ import annotations

import ast

from ftdoctor.static.constants import UNKNOWN, producers, resolve_constant
from ftdoctor.static.model import ModuleModel, call_name, keyword
from ftdoctor.static.modelfacts import chain_root

_ORDER_SOURCES = ("sampler", "batch_sampler")
_MAX_DEPTH = 6


def keeps_order(module: ModuleModel, call: ast.Call) -> bool:
    """True when ``DataLoader(...)`` provably iterates its dataset in order: no ``shuffle`` (or a false
    one), no sampler, and a map-style dataset not shuffled beforehand. Unknown values count as shuffled."""
    if any(kw.arg is None for kw in call.keywords):  # DataLoader(**kwargs): cannot tell
        return False
    shuffle = resolve_constant(module, keyword(call, "shuffle", 2)) if keyword(call, "shuffle", 2) else False
    if shuffle is UNKNOWN or shuffle:
        return False
    for name in _ORDER_SOURCES:
        source = keyword(call, name, 3 if name == "sampler" else 4)
        if source is not None and not (isinstance(source, ast.Constant) and source.value is None):
            return False
    dataset = keyword(call, "dataset", 0)
    return dataset is not None and not _unorderable_or_shuffled(module, dataset, 0)


def _unorderable_or_shuffled(module: ModuleModel, node: ast.expr, depth: int) -> bool:
    """A streaming/iterable dataset (cannot be shuffled by the DataLoader) or one shuffled beforehand."""
    if depth > _MAX_DEPTH:
        return True  # unknown: stay silent
    for produced in producers(module, node):
        for inner in ast.walk(produced):
            if isinstance(inner, ast.Call) and _shuffles_or_streams(module, inner):
                return True
        info = module.value_of(produced)
        if info.local_class and any(b.endswith("IterableDataset") for b in module.class_bases(module.classes[info.local_class])):
            return True
        root = chain_root(produced)
        if root is not None and root is not produced and _unorderable_or_shuffled(module, root, depth + 1):
            return True
    return False


def _shuffles_or_streams(module: ModuleModel, call: ast.Call) -> bool:
    if call_name(call) in ("shuffle", "to_iterable_dataset", "IterableDataset"):
        return True
    streaming = keyword(call, "streaming")
    return streaming is not None and resolve_constant(module, streaming) is True
