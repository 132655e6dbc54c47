"""tokenizer-model-mismatch: the tokenizer's vocabulary is not the model's.

Compares known checkpoints only (see :mod:`ftdoctor.static.checkpoints`). A model is
reported when no tokenizer of the script shares its vocabulary and every tokenizer's
checkpoint is known — a script that loads a tokenizer from a local folder or an unknown
name is never second-guessed, and two tokenizer/model pairs (distillation, ensembles)
are fine as long as each model has a matching tokenizer.
"""

from __future__ import annotations

from typing import Iterator

from ftdoctor.findings import Finding
from ftdoctor.static import checkpoints
from ftdoctor.static.model import ModuleModel
from ftdoctor.static.modelfacts import calls_of_kind, checkpoint_name, subject
from ftdoctor.static.rule import StaticRule, register_static_rule


@register_static_rule
class TokenizerModelMismatch(StaticRule):
    slug = "tokenizer-model-mismatch"

    def check(self, module: ModuleModel) -> Iterator[Finding]:
        tokenizers = [
            (call, checkpoint_name(info))
            for call, info in calls_of_kind(module, "tokenizer")
            if info.via == "from_pretrained"
        ]
        if not tokenizers or any(checkpoints.lookup(name) is None for _call, name in tokenizers):
            return
        vocabularies = {checkpoints.lookup(name).vocabulary for _call, name in tokenizers}  # type: ignore[union-attr]
        tokenizer_call, tokenizer_name = tokenizers[0]
        for call, info in calls_of_kind(module, "model"):
            name = checkpoint_name(info)
            known = checkpoints.lookup(name) if info.via == "from_pretrained" else None
            if known is None or known.vocabulary in vocabularies:
                continue
            yield self.finding(
                module,
                call,
                f"{subject(module, call, 'the model')} (line {call.lineno}) is loaded from \"{name}\" but "
                f"{subject(module, tokenizer_call, 'the tokenizer')} (line {tokenizer_call.lineno}) from "
                f"\"{tokenizer_name}\": their vocabularies differ, so token ids index the wrong embeddings",
                f"load both from one checkpoint name, e.g. AutoTokenizer.from_pretrained(\"{name}\")",
            )
