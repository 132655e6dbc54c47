"""random-init-not-pretrained (runtime side): a transformers encoder trained from its random init where a
pretrained checkpoint was evidently meant.

Judged once, at the pre-flight. For each outermost transformers model inside the
watched model (``_checkpoints``) that ``from_pretrained`` did not load (no parameter
carries its mark) and whose LayerNorm weights are still exactly 1 and biases 0 (no
``load_state_dict`` either: every trained checkpoint has moved them), the rule fires
when the run evidently meant a checkpoint:

- its config was loaded from one (``config._name_or_path`` is set:
  ``Model(AutoConfig.from_pretrained(ckpt))``, ``from_config``), or
- its config has the class's default sizes (``BertConfig()`` is bert-base) while the
  tokenizer came from a checkpoint (the one the doctor was told, or else a tokenizer
  loaded with ``from_pretrained`` alive in the process).

A model trained from scratch on purpose — custom sizes, a language-modelling head, no
checkpoint anywhere — stays silent.
"""

from __future__ import annotations

import gc
import sys
from typing import Any

import torch

from ftdoctor.runtime.events import Preflight
from ftdoctor.runtime.rule import RuntimeRule, register_runtime_rule
from ftdoctor.runtime.rules._checkpoints import pretrained_parts
from ftdoctor.runtime.rules._models import is_classifier

#: config fields that fix a model's size (compared with the config class's defaults)
SIZE_FIELDS = ("vocab_size", "hidden_size", "num_hidden_layers", "num_attention_heads", "intermediate_size",
               "d_model", "n_layer", "n_head", "dim", "n_layers", "n_heads")


@register_runtime_rule
class RandomInitNotPretrained(RuntimeRule):
    slug = "random-init-not-pretrained"
    needs = ()  # reads the model at the pre-flight
    explains_findings = frozenset({"lr-too-low", "prediction-collapse"})

    def on_preflight(self, event: Preflight) -> None:
        self.done = True
        if not is_classifier(event.model):
            return
        for part in pretrained_parts(event.model):  # noqa: FTD112 — not an evaluation loop (static false alarm)
            if part.loaded or not is_classifier(part.module) or not _at_init(part.module):
                continue
            config = getattr(part.module, "config", None)
            reason = _checkpoint_meant(config, event.tokenizer)
            if reason is not None:
                self._emit(part.prefix or type(part.module).__name__, type(part.module).__name__, reason)
                return

    def _emit(self, where: str, cls: str, reason: dict[str, Any]) -> None:
        self.emit(
            0,
            f"`{where}` ({cls}) starts from random weights — built from a config, never loaded from a checkpoint "
            f"(its LayerNorm weights are all still 1) — although {reason['why']}",
            f"load the weights: {cls}.from_pretrained({reason['checkpoint']!r}) (pass config=... if you changed "
            "the config), or AutoModelFor...from_pretrained(checkpoint, num_labels=k)",
            {"module": where, "class": cls, **{k: v for k, v in reason.items() if k != "why"}},
        )


def _at_init(module: torch.nn.Module) -> bool:
    """Every LayerNorm still at its init (weight 1, bias 0); False when there is none to tell by."""
    norms = [m for m in module.modules() if isinstance(m, torch.nn.LayerNorm) and m.weight is not None]
    if not norms:
        return False
    with torch.no_grad():
        return all(bool((m.weight == 1).all()) and (m.bias is None or not bool(m.bias.any())) for m in norms)


def _checkpoint_meant(config: Any, tokenizer: Any) -> dict[str, Any] | None:
    source = getattr(config, "_name_or_path", "") or ""
    if source:
        return {"why": f"its config was loaded from the checkpoint {source!r}", "checkpoint": source,
                "config_from": source}
    if config is None or not _default_sizes(config):
        return None
    tokenizer_source = _tokenizer_source(tokenizer)
    if tokenizer_source:
        return {"why": f"its config has the default ({type(config).__name__}()) sizes and the tokenizer was loaded "
                       f"from the checkpoint {tokenizer_source!r}",
                "checkpoint": tokenizer_source, "tokenizer_from": tokenizer_source}
    return None


def _default_sizes(config: Any) -> bool:
    try:
        default = type(config)()
    except Exception:  # a config class that needs arguments: cannot compare
        return False
    fields = [name for name in SIZE_FIELDS if hasattr(default, name)]
    return bool(fields) and all(getattr(config, name, None) == getattr(default, name) for name in fields)


def _tokenizer_source(tokenizer: Any) -> str:
    """Where the run's tokenizer was loaded from ("" when unknown or built in memory)."""
    if tokenizer is not None:
        return str(getattr(tokenizer, "name_or_path", "") or "")
    base = getattr(sys.modules.get("transformers"), "PreTrainedTokenizerBase", None)
    if base is None:
        return ""
    # no tokenizer given: one loaded from a checkpoint and alive in the process says as much
    # (a scan of the heap, made once and only for a default-sized model still at its init)
    for obj in gc.get_objects():
        if isinstance(obj, base) and getattr(obj, "name_or_path", ""):
            return str(obj.name_or_path)
    return ""
