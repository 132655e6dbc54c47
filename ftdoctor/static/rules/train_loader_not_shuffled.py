"""train-loader-not-shuffled: the DataLoader a training loop iterates keeps the data's order.

Silent for ``shuffle=True`` (or a value the source does not show), a ``sampler`` /
``batch_sampler``, iterable/streaming datasets (the DataLoader cannot shuffle those) and
datasets shuffled beforehand. Evaluation loaders and Trainer scripts are never checked.
"""

from __future__ import annotations

import ast
from typing import Iterator

from ftdoctor.findings import Finding
from ftdoctor.static.constants import producers
from ftdoctor.static.loaders import keeps_order
from ftdoctor.static.model import ModuleModel, keyword
from ftdoctor.static.modelfacts import iterated_expression, subject
from ftdoctor.static.rule import StaticRule, register_static_rule


@register_static_rule
class TrainLoaderNotShuffled(StaticRule):
    slug = "train-loader-not-shuffled"

    def check(self, module: ModuleModel) -> Iterator[Finding]:
        reported: set[int] = set()
        for loop in module.training_loops():
            if not isinstance(loop.node, (ast.For, ast.AsyncFor)):
                continue
            for call in _dataloader_calls(module, iterated_expression(module, loop.node.iter)):
                if id(call) in reported or not keeps_order(module, call):
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


def _dataloader_calls(module: ModuleModel, node: ast.expr) -> Iterator[ast.Call]:
    for produced in producers(module, node):
        info = module.value_of(produced)
        if info.kind == "dataloader" and info.call is not None:
            yield info.call
