"""What the watched model holds of a pretrained checkpoint (not a rule itself).

transformers (4.x late, 5.x) marks every parameter that ``from_pretrained`` loaded
from the checkpoint with ``_is_hf_initialized = True``; parameters the checkpoint did
not have — a new classification head, "newly initialized" in its load report — are
left unmarked. The mark lives on the Parameter object, so it survives ``.to()``,
PEFT's wrapping of a layer (its ``base_layer`` keeps the parameter) and the
Trainer/accelerate; it is lost by ``copy.deepcopy``.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Iterator

if TYPE_CHECKING:
    import torch

#: parameter-path segments (prefixes) of weights that adapter libraries add or set aside after loading:
#: PEFT's adapters (lora_A, lora_B, ia3_l, prompt encoders) and the untouched original a
#: ModulesToSaveWrapper keeps beside the trained copy that serves the forward
ADDED_AFTER_LOADING = ("lora_", "ia3_", "vera_", "prompt_encoder", "original_module", "modules_to_save")


@dataclass
class PretrainedPart:
    """One outermost transformers model inside the watched model."""

    prefix: str  # its name in the watched model ("" for the model itself)
    module: "torch.nn.Module"
    loaded: list[str] = field(default_factory=list)  # parameter names (in the watched model) from the checkpoint
    new: list[str] = field(default_factory=list)  # parameters the checkpoint did not have


def pretrained_parts(model: "torch.nn.Module") -> list[PretrainedPart]:
    """The outermost transformers ``PreTrainedModel`` modules of ``model``, their parameters sorted by origin."""
    base = getattr(sys.modules.get("transformers"), "PreTrainedModel", None)
    if base is None:  # transformers never imported: no transformers model can exist
        return []
    parts: list[PretrainedPart] = []
    for prefix, module in _outermost(model, base):
        part = PretrainedPart(prefix, module)
        for name, param in module.named_parameters():
            full = f"{prefix}.{name}" if prefix else name
            if getattr(param, "_is_hf_initialized", False):
                part.loaded.append(full)
            elif not any(segment.startswith(ADDED_AFTER_LOADING) for segment in name.split(".")):
                part.new.append(full)
        parts.append(part)
    return parts


def _outermost(model: "torch.nn.Module", base: type) -> Iterator[tuple[str, "torch.nn.Module"]]:
    found: list[str] = []
    for name, module in model.named_modules():
        if isinstance(module, base) and not any(_under(name, prefix) for prefix in found):
            found.append(name)
            yield name, module


def _under(name: str, prefix: str) -> bool:
    return prefix == "" or name == prefix or name.startswith(prefix + ".")
