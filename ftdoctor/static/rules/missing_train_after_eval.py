"""missing-train-after-eval: model.eval() inside the training loop is not undone before training resumes."""

from __future__ import annotations

from typing import TYPE_CHECKING, Iterator

from ftdoctor.findings import Finding
from ftdoctor.static.analysis_flow import BACKWARD, EVAL, TRAIN, Event, Frame, Loop
from ftdoctor.static.rule import StaticRule, register_static_rule

if TYPE_CHECKING:
    from ftdoctor.static.model import Binding, ModuleModel


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
        owner = _owning_call(switch, origin, loop)
        if owner is not None:
            # a model built inside a function the loop calls is a new object on every call: only what that
            # call does after the switch can train it in eval mode
            following_events = [e for e in events[index + 1:] if _within(e, owner)]
        else:
            following_events = events[index + 1:] + events[:index]
        for following in following_events:
            if following.exclusive_with(switch):
                continue
            if following.kind == TRAIN and (following.target is None or origin is None
                                            or following.target_origin() is origin):
                break
            if following.kind == BACKWARD:
                yield switch
                break


def _owning_call(switch: Event, origin: "Binding | None", loop: Loop) -> "Frame | None":
    """The frame of the called function that binds the switched model, when that is not the loop's own code."""
    if origin is None or origin.scope.kind != "function":
        return None
    frame = switch.frame
    while frame is not None:
        if frame.scope is origin.scope:
            return frame if frame.caller is not None and frame.scope is not loop.scope else None
        frame = frame.caller
    return None


def _within(event: Event, owner: "Frame") -> bool:
    frame = event.frame
    while frame is not None:
        if frame is owner:
            return True
        frame = frame.caller
    return False
