"""missing-eval-mode: a model that may be in training mode is evaluated without .eval()."""

from __future__ import annotations

from typing import TYPE_CHECKING, Iterator

from ftdoctor.findings import Finding
from ftdoctor.static.analysis_flow import EVAL, FORWARD, TRAIN, UNDECIDED, Loop, mode_before
from ftdoctor.static.model import Binding
from ftdoctor.static.rule import StaticRule, register_static_rule

if TYPE_CHECKING:
    from ftdoctor.static.model import ModuleModel


@register_static_rule
class MissingEvalMode(StaticRule):
    slug = "missing-eval-mode"

    def check(self, module: "ModuleModel") -> Iterator[Finding]:
        for loop in module.evaluation_loops():
            for model in _evaluated_models(loop):
                if model.info.mode_free:
                    continue  # no dropout or batch norm: eval() would change nothing
                if _switched_to_eval_in_loop(loop, model) or not _may_be_training(module, loop, model):
                    continue
                name = model.name
                yield self.finding(
                    module, loop.node,
                    f"`{name}` is evaluated in the loop at line {loop.line} without `{name}.eval()`, so dropout "
                    "stays active and the metrics are noisy",
                    f"call {name}.eval() before the evaluation loop (and {name}.train() before training resumes)",
                    anchors={"model": name},
                )


def _evaluated_models(loop: Loop) -> list[Binding]:
    found: list[Binding] = []
    for event in loop.of_kind(FORWARD):
        origin = event.target_origin()
        if origin is not None and origin.kind == "model" and origin not in found:
            found.append(origin)
    return found


def _switched_to_eval_in_loop(loop: Loop, model: Binding) -> bool:
    for event in loop.events:
        if event.kind == FORWARD and event.target_origin() is model:
            return False
        if event.kind in (EVAL, TRAIN) and (event.target is None or event.target.origin() is model):
            return event.kind == EVAL
    return False


def _may_be_training(module: "ModuleModel", loop: Loop, model: Binding) -> bool:
    mode = mode_before(module, loop.node, model)
    if mode in (EVAL, UNDECIDED):
        return False
    if mode == TRAIN:
        return True
    # nothing before the loop switches it: the initial mode decides (from_pretrained returns eval mode)
    return not model.info.pretrained
