"""scheduler-before-optimizer: the LR scheduler steps before the optimizer has stepped."""

from __future__ import annotations

from typing import TYPE_CHECKING, Iterator

from ftdoctor.findings import Finding
from ftdoctor.static.analysis_flow import BACKWARD, SCHED_STEP, STEP
from ftdoctor.static.rule import StaticRule, register_static_rule, span

if TYPE_CHECKING:
    from ftdoctor.static.model import ModuleModel


@register_static_rule
class SchedulerBeforeOptimizer(StaticRule):
    slug = "scheduler-before-optimizer"

    def check(self, module: "ModuleModel") -> Iterator[Finding]:
        reported: set[int] = set()
        for loop in module.loops():
            if loop.in_trainer_subclass or not loop.has(BACKWARD):
                continue
            events = loop.of_kind(STEP, SCHED_STEP)
            first_step = next((e for e in events if e.kind == STEP), None)
            if first_step is None:
                continue
            for sched in events[: events.index(first_step)]:
                if sched.kind != SCHED_STEP or sched.exclusive_with(first_step) or id(sched.node) in reported:
                    continue
                reported.add(id(sched.node))
                yield self.finding(
                    module, sched.site,
                    f"`{sched.text}.step()` (line {sched.line}) runs before `{first_step.text}.step()` "
                    f"(line {first_step.line}), so the first learning-rate value of the schedule is skipped",
                    f"call {sched.text}.step() after {first_step.text}.step(), at the end of the step "
                    "(or of the epoch for per-epoch schedules)",
                    anchors={"step": span(first_step.site)},
                )
