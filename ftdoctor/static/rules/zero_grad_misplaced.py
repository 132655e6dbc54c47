"""zero-grad-misplaced: gradients are cleared between backward() and the step that should use them."""

from __future__ import annotations

from typing import TYPE_CHECKING, Iterator

from ftdoctor.findings import Finding
from ftdoctor.static.analysis_flow import BACKWARD, STEP, ZERO_GRAD, Event, Loop
from ftdoctor.static.rule import StaticRule, register_static_rule, span

if TYPE_CHECKING:
    from ftdoctor.static.model import ModuleModel


@register_static_rule
class ZeroGradMisplaced(StaticRule):
    slug = "zero-grad-misplaced"

    def check(self, module: "ModuleModel") -> Iterator[Finding]:
        reported: set[int] = set()
        for loop in module.training_loops():
            for zero, step, message in [*self._between(loop), *self._every_micro_batch(loop)]:
                if id(zero.node) in reported:
                    continue
                reported.add(id(zero.node))
                yield self.finding(
                    module, zero.site, message,
                    f"move {zero.text}.zero_grad() after {zero.text}.step() (or before loss.backward()), "
                    "inside the same condition as the step",
                    anchors={"step": span(step.site)},
                )

    @staticmethod
    def _between(loop: Loop) -> Iterator[tuple[Event, Event, str]]:
        """backward -> zero_grad -> step in one iteration, with no backward in between."""
        events = loop.of_kind(BACKWARD, STEP, ZERO_GRAD, max_depth=0)
        for index, zero in enumerate(events):
            if zero.kind != ZERO_GRAD:
                continue
            before = [e for e in events[:index] if e.kind == BACKWARD and not e.exclusive_with(zero)]
            after = _next_step_or_backward(events[index + 1:], zero)
            if before and after is not None and after.kind == STEP and _same_optimizer(zero, after):
                yield zero, after, (
                    f"`{zero.text}.zero_grad()` (line {zero.line}) runs after `backward()` (line {before[-1].line}) "
                    f"and before `{after.text}.step()` (line {after.line}), so the step sees zeroed gradients"
                )

    @staticmethod
    def _every_micro_batch(loop: Loop) -> Iterator[tuple[Event, Event, str]]:
        """Gradient accumulation whose zero_grad runs on every micro-batch, not with the periodic step."""
        guard = loop.accumulation_guard
        if guard is None:
            return
        for zero in loop.of_kind(ZERO_GRAD, max_depth=0):
            if zero.under(guard.node) or any(g.test is not None for g in zero.guards):
                continue
            backwards = [b for b in loop.of_kind(BACKWARD, max_depth=0) if not b.under(guard.node)]
            steps = [s for s in loop.of_kind(STEP, max_depth=0) if s.under(guard.node)]
            if backwards and steps:
                yield zero, steps[0], (
                    f"`{zero.text}.zero_grad()` (line {zero.line}) runs on every batch while `{steps[0].text}.step()` "
                    f"(line {steps[0].line}) runs only every few batches, so the accumulated gradients are wiped "
                    "before each step"
                )


def _next_step_or_backward(events: list[Event], zero: Event) -> Event | None:
    return next((e for e in events if e.kind in (STEP, BACKWARD) and not e.exclusive_with(zero)), None)


def _same_optimizer(zero: Event, step: Event) -> bool:
    """Unless both receivers resolve to different optimizers (GAN-style loops), assume the same one."""
    a, b = zero.target_origin(), step.target_origin()
    if a is None or b is None or a.kind != "optimizer" or b.kind != "optimizer":
        return True
    return a is b
