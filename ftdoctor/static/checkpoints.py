"""What ftdoctor knows about common pretrained checkpoints, without downloading them.

A small table of the encoder checkpoints people fine-tune most: their hidden size
(what a classification head's ``in_features`` must be) and their tokenizer
vocabulary (two checkpoints with the same vocabulary may share a tokenizer).
Anything not in the table is unknown, and rules that need it stay silent.
"""

from __future__ import annotations

import re
from dataclasses import dataclass


@dataclass(frozen=True)
class CheckpointInfo:
    """Facts about one pretrained checkpoint."""

    name: str  # the canonical hub id
    family: str  # architecture family: "bert", "roberta", "albert", ...
    hidden_size: int
    vocabulary: str  # checkpoints with equal vocabularies produce interchangeable token ids


# Vocabularies. ELECTRA, MiniLM and DistilBERT reuse BERT's WordPiece files, so
# their tokenizers are interchangeable with BERT's of the same casing.
_BERT_UNCASED = "bert-wordpiece-uncased"
_BERT_CASED = "bert-wordpiece-cased"
_MBERT_CASED = "mbert-wordpiece-cased"
_ROBERTA = "roberta-bpe"
_GPT2 = "gpt2-bpe"
_ALBERT = "albert-sentencepiece"
_DEBERTA_V3 = "deberta-v3-sentencepiece"
_XLMR = "xlm-roberta-sentencepiece"

# (hub ids, the first being canonical; family; hidden size; vocabulary)
_TABLE: tuple[tuple[tuple[str, ...], str, int, str], ...] = (
    (("google-bert/bert-base-uncased", "bert-base-uncased"), "bert", 768, _BERT_UNCASED),
    (("google-bert/bert-base-cased", "bert-base-cased"), "bert", 768, _BERT_CASED),
    (("google-bert/bert-large-uncased", "bert-large-uncased"), "bert", 1024, _BERT_UNCASED),
    (("google-bert/bert-large-cased", "bert-large-cased"), "bert", 1024, _BERT_CASED),
    (
        ("google-bert/bert-large-uncased-whole-word-masking", "bert-large-uncased-whole-word-masking"),
        "bert",
        1024,
        _BERT_UNCASED,
    ),
    (
        ("google-bert/bert-large-cased-whole-word-masking", "bert-large-cased-whole-word-masking"),
        "bert",
        1024,
        _BERT_CASED,
    ),
    (
        ("google-bert/bert-base-multilingual-cased", "bert-base-multilingual-cased"),
        "bert",
        768,
        _MBERT_CASED,
    ),
    (("distilbert/distilbert-base-uncased", "distilbert-base-uncased"), "distilbert", 768, _BERT_UNCASED),
    (("distilbert/distilbert-base-cased", "distilbert-base-cased"), "distilbert", 768, _BERT_CASED),
    (
        ("distilbert/distilbert-base-multilingual-cased", "distilbert-base-multilingual-cased"),
        "distilbert",
        768,
        _MBERT_CASED,
    ),
    (("FacebookAI/roberta-base", "roberta-base"), "roberta", 768, _ROBERTA),
    (("FacebookAI/roberta-large", "roberta-large"), "roberta", 1024, _ROBERTA),
    (("distilbert/distilroberta-base", "distilroberta-base"), "roberta", 768, _ROBERTA),
    (("FacebookAI/xlm-roberta-base", "xlm-roberta-base"), "xlm-roberta", 768, _XLMR),
    (("FacebookAI/xlm-roberta-large", "xlm-roberta-large"), "xlm-roberta", 1024, _XLMR),
    (("sentence-transformers/all-MiniLM-L6-v2",), "bert", 384, _BERT_UNCASED),
    (("sentence-transformers/all-MiniLM-L12-v2",), "bert", 384, _BERT_UNCASED),
    (("sentence-transformers/all-mpnet-base-v2",), "mpnet", 768, "mpnet-wordpiece"),
    (("microsoft/MiniLM-L12-H384-uncased",), "bert", 384, _BERT_UNCASED),
    (("nreimers/MiniLM-L6-H384-uncased",), "bert", 384, _BERT_UNCASED),
    (("albert/albert-base-v2", "albert-base-v2"), "albert", 768, _ALBERT),
    (("albert/albert-large-v2", "albert-large-v2"), "albert", 1024, _ALBERT),
    (("albert/albert-xlarge-v2", "albert-xlarge-v2"), "albert", 2048, _ALBERT),
    (("google/electra-small-discriminator",), "electra", 256, _BERT_UNCASED),
    (("google/electra-base-discriminator",), "electra", 768, _BERT_UNCASED),
    (("google/electra-large-discriminator",), "electra", 1024, _BERT_UNCASED),
    (("microsoft/deberta-v3-xsmall",), "deberta-v2", 384, _DEBERTA_V3),
    (("microsoft/deberta-v3-small",), "deberta-v2", 768, _DEBERTA_V3),
    (("microsoft/deberta-v3-base",), "deberta-v2", 768, _DEBERTA_V3),
    (("microsoft/deberta-v3-large",), "deberta-v2", 1024, _DEBERTA_V3),
    (("openai-community/gpt2", "gpt2"), "gpt2", 768, _GPT2),
    (("openai-community/gpt2-medium", "gpt2-medium"), "gpt2", 1024, _GPT2),
)

# Google's compact BERTs spell their size in the id: google/bert_uncased_L-4_H-256_A-4.
_GOOGLE_COMPACT_BERT = re.compile(r"^google/bert_(uncased|cased)_l-\d+_h-(\d+)_a-\d+$")


def _build_index() -> dict[str, CheckpointInfo]:
    index: dict[str, CheckpointInfo] = {}
    for ids, family, hidden_size, vocabulary in _TABLE:
        info = CheckpointInfo(ids[0], family, hidden_size, vocabulary)
        for hub_id in ids:
            index[hub_id.lower()] = info
    return index


_INDEX = _build_index()


def normalise(checkpoint: str) -> str:
    """The lower-cased hub id without surrounding blanks, slashes or a ``hf://`` scheme."""
    name = checkpoint.strip().strip("/").lower()
    for scheme in ("hf://", "https://huggingface.co/"):
        if name.startswith(scheme):
            name = name[len(scheme) :]
    return name


def lookup(checkpoint: str | None) -> CheckpointInfo | None:
    """Facts about ``checkpoint``, or None when it is not a checkpoint ftdoctor knows."""
    if not checkpoint:
        return None
    name = normalise(checkpoint)
    if name in _INDEX:
        return _INDEX[name]
    compact = _GOOGLE_COMPACT_BERT.match(name)
    if compact:
        vocabulary = _BERT_UNCASED if compact.group(1) == "uncased" else _BERT_CASED
        return CheckpointInfo(name, "bert", int(compact.group(2)), vocabulary)
    return None


def hidden_size(checkpoint: str | None) -> int | None:
    info = lookup(checkpoint)
    return info.hidden_size if info else None


def same_checkpoint(first: str, second: str) -> bool:
    """True when both names denote one checkpoint (``google-bert/bert-base-uncased`` == ``bert-base-uncased``)."""
    info_first, info_second = lookup(first), lookup(second)
    if info_first and info_second:
        return info_first.name == info_second.name
    return normalise(first) == normalise(second)


def vocabularies_differ(first: str, second: str) -> bool:
    """True only when both checkpoints are known and their token ids mean different things."""
    info_first, info_second = lookup(first), lookup(second)
    if info_first is None or info_second is None:
        return False
    return info_first.vocabulary != info_second.vocabulary


def known_hidden_sizes() -> frozenset[int]:
    """Every hidden size in the table: the widths a hard-coded head is likely copied from."""
    return frozenset(info.hidden_size for info in _INDEX.values())
