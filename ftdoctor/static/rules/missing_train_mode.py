"""missing-train-mode: a from_pretrained model (returned in eval mode) is trained without .train()."""

from __future__ import annotations

from typing import TYPE_CHECKING, Iterator

from ftdoctor.findings import Finding
from ftdoctor.static.analysis_flow import TRAIN, mode_switch_calls
from ftdoctor.static.model import Binding
from ftdoctor.static.rule import StaticRule, register_static_rule

if TYPE_CHECKING:
    from ftdoctor.static.model import ModuleModel


@register_static_rule
class MissingTrainMode(StaticRule):
    slug = "missing-train-mode"

    def check(self, module: "ModuleModel") -> Iterator[Finding]:
        reported: set[int] = set()
        for loop in module.training_loops():
            for model in loop.forward_models:
                pretrained = _pretrained_part(module, model)
                if pretrained is None or id(model) in reported:
                    continue
                if any(event.kind == TRAIN for event in mode_switch_calls(module, model)):
                    continue
                reported.add(id(model))
                name = model.name
                yield self.finding(
                    module, loop.node,
                    f"`{name}` {pretrained} (line {model.line}), which returns it in eval mode, and the training "
                    f"loop (line {loop.line}) never calls `{name}.train()`, so dropout stays off while it trains",
                    f"call {name}.train() before the training loop (and again after every evaluation)",
                    anchors={"model": name},
                )


def _pretrained_part(module: "ModuleModel", model: Binding) -> str | None:
    """How eval-mode pretrained weights got into ``model``, or None when it starts in train mode."""
    info = model.info
    if info.pretrained:
        return "comes from `from_pretrained`"
    local = module.classes.get(info.local_class or "") if info.via == "custom" else None
    if local is None:
        return None
    for key, bindings in local.bindings.items():
        if key.startswith("self.") and any(b.kind == "model" and b.info.pretrained for b in bindings):
            return f"wraps `{key}` loaded with `from_pretrained`"
    return None
