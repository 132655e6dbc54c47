"""What kind of model the doctor watches, as far as the data/label rules care (not a rule itself)."""

from __future__ import annotations

from typing import Any

from ftdoctor.runtime.events import Preflight

#: transformers model classes whose labels and scores are not one class id / one score per class:
#: token ids (language modelling, seq2seq, CTC), answer spans, choice indices
NOT_CLASSIFIERS = (
    "ForCausalLM", "LMHeadModel", "ForMaskedLM", "ForPreTraining", "ForConditionalGeneration", "Seq2SeqLM",
    "ForSpeechSeq2Seq", "ForCTC", "ForQuestionAnswering", "ForMultipleChoice",
)


def is_classifier(model: Any) -> bool:
    """False for models whose ``config.num_labels`` (default 2) says nothing about their labels."""
    return not type(model).__name__.endswith(NOT_CLASSIFIERS)


def class_count(event: Preflight) -> int | None:
    """The number of classes the labels must fit, when the watched model is a classifier that says so."""
    return event.num_labels if is_classifier(event.model) else None
