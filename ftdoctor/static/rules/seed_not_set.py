"""seed-not-set: a custom training script never seeds its random number generators."""

from __future__ import annotations

from typing import TYPE_CHECKING, Iterator

from ftdoctor.findings import Finding
from ftdoctor.static.model import call_name
from ftdoctor.static.rule import StaticRule, register_static_rule

if TYPE_CHECKING:
    from ftdoctor.static.model import ModuleModel


@register_static_rule
class SeedNotSet(StaticRule):
    slug = "seed-not-set"

    def check(self, module: "ModuleModel") -> Iterator[Finding]:
        if module.uses_trainer:
            return  # TrainingArguments(seed=42) by default: Trainer seeds itself
        loops = module.training_loops()
        if not loops:
            return
        # manual_seed, set_seed, seed_everything, a local seed_all(...) helper, ...
        if any("seed" in (call_name(call) or "").lower() for call in module.calls()):
            return
        if module.project is not None and module.project.seeded_elsewhere(module):
            return  # the entry module, or a project function this one calls, seeds
        loop = loops[0]
        yield self.finding(
            module, loop.node,
            f"the training loop (line {loop.line}) runs without a fixed random seed, so weight init of new layers, "
            "dropout and shuffling differ on every run",
            "call transformers.set_seed(42) (or torch.manual_seed(42)) at the start of the script",
        )
