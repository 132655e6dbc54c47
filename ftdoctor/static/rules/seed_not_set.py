"""seed-not-set: a custom training script never seeds torch's random number generators.

Any seeding call counts (``torch.manual_seed``, ``set_seed``, ``seed_everything``, a helper of the
project whose name says seed) except those that provably seed only Python or NumPy
(``random.seed``, ``np.random.seed``, or a helper of this file that calls nothing else): dropout,
the new head's initialisation and DataLoader shuffling draw from torch's generator.
"""

from __future__ import annotations

import ast
from typing import TYPE_CHECKING, Iterator

from ftdoctor.findings import Finding
from ftdoctor.static.model import call_name
from ftdoctor.static.rule import StaticRule, register_static_rule

if TYPE_CHECKING:
    from ftdoctor.static.model import ModuleModel

#: seeding calls that leave torch's generators alone
NON_TORCH_SEEDS = frozenset({"random.seed", "numpy.random.seed", "numpy.random.default_rng", "numpy.random.RandomState",
                             "random.Random", "tensorflow.random.set_seed", "tf.random.set_seed"})
_MAX_DEPTH = 3


@register_static_rule
class SeedNotSet(StaticRule):
    slug = "seed-not-set"

    def check(self, module: "ModuleModel") -> Iterator[Finding]:
        if module.uses_trainer:
            return  # TrainingArguments(seed=42) by default: Trainer seeds itself
        loops = module.training_loops()
        if not loops:
            return
        seeds = [call for call in module.calls() if "seed" in (call_name(call) or "").lower()]
        if any(_may_seed_torch(module, call, 0) for call in seeds):
            return
        if module.project is not None and module.project.seeded_elsewhere(module):
            return  # the entry module, or a project function this one calls, seeds
        loop = loops[0]
        others = f" (line {seeds[0].lineno} seeds only Python/NumPy)" if seeds else ""
        yield self.finding(
            module, loop.node,
            f"the training loop (line {loop.line}) runs without a fixed torch seed{others}, so weight init of new "
            "layers, dropout and shuffling differ on every run",
            "call transformers.set_seed(42) (or torch.manual_seed(42)) at the start of the script",
        )


def _may_seed_torch(module: "ModuleModel", call: ast.Call, depth: int) -> bool:
    """False only when the call provably seeds Python/NumPy alone."""
    if (module.qualified_name(call.func) or "") in NON_TORCH_SEEDS:
        return False
    helper = module.resolve_callee(call)
    if helper is None or depth >= _MAX_DEPTH:
        return True  # a library seeder, or a helper we cannot see into
    inner = [c for c in helper.calls if "seed" in (call_name(c) or "").lower() or module.resolve_callee(c) is not None]
    return any(_may_seed_torch(module, c, depth + 1) for c in inner) if inner else True
