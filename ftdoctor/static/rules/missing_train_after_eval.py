"""missing-train-after-eval: model.eval() inside the training loop is not undone before training resumes."""

from __future__ import annotations

from typing import TYPE_CHECKING, Iterator

from ftdoctor.findings import Finding
from ftdoctor.static.analysis_flow import BACKWARD, EVAL, TRAIN, Event, Loop
from ftdoctor.static.rule import StaticRule, register_static_rule

if TYPE_CHECKING:
    from ftdoctor.static.model import ModuleModel


@register_static_rule
class MissingTrainAfterEval(StaticRule):
    slug = "missing-train-after-eval"

    def check(self, module: "ModuleModel") -> Iterator[Finding]:
        reported: set[int] = set()
        for loop in module.loops():
            if loop.in_trainer_subclass or not loop.has(BACKWARD):
                continue
            for switch in _unrestored_eval_switches(loop):
                if id(switch.node) in reported:
                    continue
                reported.add(id(switch.node))
                via = "" if switch.node is switch.site else f" (through the call at line {switch.line})"
                name = switch.text
                yield self.finding(
                    module, switch.site,
                    f"`{name}.eval()` at line {switch.node.lineno}{via} inside the training loop (line {loop.line}) "
                    f"is not followed by `{name}.train()` before the next backward pass, so training continues "
                    "with dropout off",
                    f"call {name}.train() right after the evaluation, before the next training step",
                    anchors={"model": name},
                )


def _unrestored_eval_switches(loop: Loop) -> Iterator[Event]:
    """Eval switches of a trained model after which, going round the loop, backward comes before train()."""
    trained = loop.forward_models
    events = [e for e in loop.events if e.kind in (TRAIN, EVAL, BACKWARD)]
    for index, switch in enumerate(events):
        if switch.kind != EVAL:
            continue
        origin = switch.target_origin()
        if origin is not None and origin.kind == "model" and trained and origin not in trained:
            continue  # a frozen teacher or reference model
        for following in events[index + 1:] + events[:index]:
            if following.exclusive_with(switch):
                continue
            if following.kind == TRAIN and (following.target is None or origin is None
                                            or following.target_origin() is origin):
                break
            if following.kind == BACKWARD:
                yield switch
                break
