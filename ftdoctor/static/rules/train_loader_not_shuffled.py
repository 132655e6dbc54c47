"""train-loader-not-shuffled: the DataLoader a training loop iterates keeps the data's order.

Silent for ``shuffle=True`` (or a value the source does not show), a ``sampler`` /
``batch_sampler``, iterable/streaming datasets (the DataLoader cannot shuffle those) and
datasets shuffled beforehand. Evaluation loaders and Trainer scripts are never checked.
"""

from __future__ import annotations

import ast
from typing import TYPE_CHECKING, Iterator

from ftdoctor.findings import Finding
from ftdoctor.static.loaders import keeps_order
from ftdoctor.static.model import ModuleModel, keyword
from ftdoctor.static.modelfacts import dataloader_calls, subject
from ftdoctor.static.rule import StaticRule, register_static_rule

if TYPE_CHECKING:
    from ftdoctor.static.project import Returned


@register_static_rule
class TrainLoaderNotShuffled(StaticRule):
    slug = "train-loader-not-shuffled"

    def check(self, module: ModuleModel) -> Iterator[Finding]:
        reported: set[int] = set()
        for loop in module.training_loops():
            if not isinstance(loop.node, (ast.For, ast.AsyncFor)):
                continue
            for call, built_elsewhere in _dataloader_calls(module, loop.node.iter):
                if id(call) in reported or not _keeps_order(module, call, built_elsewhere):
                    continue
                reported.add(id(call))
                if built_elsewhere is not None:
                    message = (f"{subject(module, call, 'the DataLoader')} (line {call.lineno}), the DataLoader "
                               f"`{ast.unparse(call.func)}` builds without shuffle or sampler (line "
                               f"{built_elsewhere.line} of its module), feeds the training loop at line {loop.line}, "
                               "so every epoch sees the batches in the file's order")
                else:
                    explicit = keyword(call, "shuffle") is not None
                    message = (f"{subject(module, call, 'the DataLoader')} (line {call.lineno}) feeds the training loop "
                               f"at line {loop.line} {'with shuffle=False' if explicit else 'without shuffle=True'} and "
                               "no sampler, so every epoch sees the batches in the file's order")
                yield self.finding(
                    module,
                    call,
                    message,
                    "pass shuffle=True to the training DataLoader (keep evaluation loaders unshuffled), or a "
                    "RandomSampler/DistributedSampler",
                )


def _dataloader_calls(module: ModuleModel, node: ast.expr) -> Iterator[tuple[ast.Call, "Returned | None"]]:
    """Loader constructions feeding ``node`` (through tqdm/enumerate/zip wrappers): here, or in a function of
    another project module (its summary)."""
    for call in dataloader_calls(module, node):
        info = module.value_of(call)
        if info.via != "project":
            yield call, None
            continue
        returned = module.project.returned(info.qualname) if module.project is not None else None
        if returned is not None:
            yield call, returned


def _keeps_order(module: ModuleModel, call: ast.Call, built_elsewhere: "Returned | None") -> bool:
    if built_elsewhere is not None:
        return bool(built_elsewhere.keeps_order)
    return keeps_order(module, call)
