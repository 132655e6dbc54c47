"""train-loader-not-shuffled: the DataLoader a training loop iterates keeps the data's order.

Silent for ``shuffle=True`` (or a value the source does not show), a ``sampler`` /
``batch_sampler``, iterable/streaming datasets (the DataLoader cannot shuffle those) and
datasets shuffled beforehand. Evaluation loaders and Trainer scripts are never checked.
"""

from __future__ import annotations

import ast
from typing import Iterator

from ftdoctor.findings import Finding
from ftdoctor.static.constants import UNKNOWN, producers, resolve_constant
from ftdoctor.static.model import ModuleModel, call_name, keyword
from ftdoctor.static.modelfacts import chain_root, dataloader_calls, subject
from ftdoctor.static.rule import StaticRule, register_static_rule

_ORDER_SOURCES = ("sampler", "batch_sampler")
_MAX_DEPTH = 6


@register_static_rule
class TrainLoaderNotShuffled(StaticRule):
    slug = "train-loader-not-shuffled"

    def check(self, module: ModuleModel) -> Iterator[Finding]:
        reported: set[int] = set()
        for loop in module.training_loops():
            if not isinstance(loop.node, (ast.For, ast.AsyncFor)):
                continue
            for call in dataloader_calls(module, loop.node.iter):
                if id(call) in reported or not _keeps_order(module, call):
                    continue
                reported.add(id(call))
                explicit = keyword(call, "shuffle") is not None
                yield self.finding(
                    module,
                    call,
                    f"{subject(module, call, 'the DataLoader')} (line {call.lineno}) feeds the training loop at line "
                    f"{loop.line} {'with shuffle=False' if explicit else 'without shuffle=True'} and no sampler, so "
                    "every epoch sees the batches in the file's order",
                    "pass shuffle=True to the training DataLoader (keep evaluation loaders unshuffled), or a "
                    "RandomSampler/DistributedSampler",
                )


def _keeps_order(module: ModuleModel, call: ast.Call) -> bool:
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
