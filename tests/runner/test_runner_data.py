"""Data for the reference fine-tune: file formats, label mapping, bad input, the bundled reviews."""

from __future__ import annotations

import importlib.util
import json
from collections import Counter
from pathlib import Path

import pytest

from ftdoctor.runner.config import DataConfig
from ftdoctor.runner.data import BUILTIN_DIR, BUILTIN_SPLITS, DataError, load_splits

ROOT = Path(__file__).resolve().parents[2]
TRAIN = [("a fine phone", "positive"), ("it broke at once", "negative"), ("superb sound", "positive"),
         ("awful, avoid", "negative"), ("works as it should", "neutral")]
VAL = [("lovely screen", "positive"), ("noisy fan", "negative"), ("it is a phone", "neutral")]


def write_rows(path: Path, rows: list[dict[str, object]]) -> Path:
    """Write ``rows`` in the format the suffix names (pandas for csv/parquet)."""
    import pandas as pd

    suffix = path.suffix
    if suffix == ".csv":
        pd.DataFrame(rows).to_csv(path, index=False)
    elif suffix == ".parquet":
        pd.DataFrame(rows).to_parquet(path)
    elif suffix == ".jsonl":
        path.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
    else:  # .json: an array of records
        path.write_text(json.dumps(rows), encoding="utf-8")
    return path


def records(pairs: list[tuple[str, object]], text: str = "text", label: str = "label") -> list[dict[str, object]]:
    return [{text: t, label: y} for t, y in pairs]


def config_for(train: Path, val: Path, **columns: str) -> DataConfig:
    return DataConfig(train=str(train), validation=str(val), **columns)


@pytest.mark.parametrize("suffix", [".csv", ".json", ".jsonl", ".parquet"])
def test_string_labels_map_to_sorted_ids(tmp_path: Path, suffix: str) -> None:
    train = write_rows(tmp_path / f"train{suffix}", records(TRAIN))
    val = write_rows(tmp_path / f"val{suffix}", records(VAL))
    splits = load_splits(config_for(train, val))
    assert splits.label_names == ["negative", "neutral", "positive"]
    assert splits.train.texts == [t for t, _ in TRAIN]
    assert splits.train.labels == [2, 0, 2, 0, 1]
    assert splits.validation.labels == [2, 0, 1]
    assert splits.id2label == {0: "negative", 1: "neutral", 2: "positive"}
    assert splits.label2id["positive"] == 2


@pytest.mark.parametrize("suffix", [".csv", ".jsonl", ".parquet"])
def test_int_labels_are_kept_and_custom_columns(tmp_path: Path, suffix: str) -> None:
    train = write_rows(tmp_path / f"train{suffix}", records([("x", 0), ("y", 3), ("z", 1)], "sentence", "stars"))
    val = write_rows(tmp_path / f"val{suffix}", records([("w", 2)], "sentence", "stars"))
    splits = load_splits(config_for(train, val, text_column="sentence", label_column="stars"))
    assert splits.train.labels == [0, 3, 1] and splits.validation.labels == [2]
    assert splits.num_labels == 4  # ids are kept: the head must reach the largest one
    assert splits.label_names == ["0", "1", "2", "3"]


def bad_input(tmp_path: Path, train_rows: list[dict[str, object]] | str, suffix: str = ".csv",
              **columns: str) -> str:
    train = tmp_path / f"train{suffix}"
    if isinstance(train_rows, str):
        train.write_text(train_rows, encoding="utf-8")
    else:
        write_rows(train, train_rows)
    val = write_rows(tmp_path / "val.csv", records(VAL))
    with pytest.raises(DataError) as caught:
        load_splits(config_for(train, val, **columns))
    message = str(caught.value)
    assert str(train) in message  # names the file
    return message


def test_missing_text_column(tmp_path: Path) -> None:
    message = bad_input(tmp_path, records(TRAIN, text="review"))
    assert "data.text_column" in message and "'text' not found" in message and "'review'" in message


def test_missing_label_column(tmp_path: Path) -> None:
    message = bad_input(tmp_path, records(TRAIN), label_column="sentiment")
    assert "data.label_column" in message and "'sentiment' not found" in message


def test_header_only_csv_is_empty(tmp_path: Path) -> None:
    assert "empty" in bad_input(tmp_path, "text,label\n")


def test_zero_byte_file_is_empty(tmp_path: Path) -> None:
    assert "empty" in bad_input(tmp_path, "", suffix=".jsonl")


def test_unparseable_json(tmp_path: Path) -> None:
    assert "cannot read it as json" in bad_input(tmp_path, "{not json", suffix=".json")


def test_missing_text_names_the_row(tmp_path: Path) -> None:
    message = bad_input(tmp_path, "text,label\ngood,1\n,0\n")
    assert "row 2" in message and "empty or missing" in message


def test_blank_text_names_the_row(tmp_path: Path) -> None:
    message = bad_input(tmp_path, records([("good", 1), ("   ", 0)]), suffix=".jsonl")
    assert "row 2" in message and "empty or missing" in message


def test_non_string_text(tmp_path: Path) -> None:
    message = bad_input(tmp_path, records([(3, 1), (4, 0)]), suffix=".jsonl")
    assert "row 1" in message and "expected a string" in message


def test_float_labels_are_neither_int_nor_string(tmp_path: Path) -> None:
    message = bad_input(tmp_path, "text,label\ngood,1.5\nbad,0.0\n")
    assert "row 1" in message and "integer class ids" in message


def test_list_labels_are_rejected(tmp_path: Path) -> None:
    message = bad_input(tmp_path, records([("good", [0, 1]), ("bad", [1, 0])]), suffix=".jsonl")
    assert "labels must be integer class ids" in message


def test_missing_label_names_the_row(tmp_path: Path) -> None:
    message = bad_input(tmp_path, records([("good", "pos"), ("bad", None)]), suffix=".jsonl")
    assert "row 2" in message and "label column 'label' is empty or missing" in message


def test_mixed_int_and_string_labels(tmp_path: Path) -> None:
    train = write_rows(tmp_path / "train.jsonl", records([("a", 1), ("b", 0)]))
    val = write_rows(tmp_path / "val.jsonl", records([("c", "positive")]))
    with pytest.raises(DataError, match="mixes integer ids"):
        load_splits(config_for(train, val))


# --------------------------------------------------------------- builtin:reviews


def test_builtin_reviews_are_balanced_and_disjoint() -> None:
    splits = load_splits(DataConfig())
    assert (len(splits.train), len(splits.validation)) == (3000, 600)
    assert splits.label_names == ["negative", "positive"]
    assert Counter(splits.train.labels) == {0: 1500, 1: 1500}
    assert Counter(splits.validation.labels) == {0: 300, 1: 300}
    train_texts = {text.lower() for text in splits.train.texts}
    assert len(train_texts) == len(splits.train)
    assert not train_texts & {text.lower() for text in splits.validation.texts}
    # Shuffled on disk: the first batch already holds both classes.
    assert len(set(splits.train.labels[:16])) == 2


def test_builtin_reviews_are_what_the_generator_makes() -> None:
    spec = importlib.util.spec_from_file_location("make_reviews", ROOT / "tools" / "make_reviews.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    train, validation = module.generate()
    for rows, split in ((train, "train"), (validation, "validation")):
        committed = (BUILTIN_DIR / BUILTIN_SPLITS[split]).read_text(encoding="utf-8")
        assert committed == "".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows)


def test_builtin_reviews_as_validation_for_a_file(tmp_path: Path) -> None:
    train = write_rows(tmp_path / "train.csv", records([("good", "positive"), ("bad", "negative")]))
    splits = load_splits(DataConfig(train=str(train), validation="builtin:reviews"))
    assert len(splits.validation) == 600 and splits.label_names == ["negative", "positive"]

