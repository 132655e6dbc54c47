"""Labelled text data for the reference fine-tune: the bundled reviews or the user's files.

Files (csv, json, jsonl, parquet) are read offline through ``datasets``.
Labels are integer ids (kept as they are) or strings (mapped to ids in sorted
order, names kept for the report). Bad input is a :class:`DataError` naming
the file and the problem; label *values* that do not fit the model (an id
beyond the head) are deliberately left for the runtime doctor to diagnose.
"""

from __future__ import annotations

import json
import math
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ftdoctor.errors import FtdoctorError
from ftdoctor.runner.config import DataConfig

BUILTIN_DIR = Path(__file__).resolve().parent / "data"
BUILTIN_SPLITS = {"train": "reviews_train.jsonl", "validation": "reviews_validation.jsonl"}

Columns = dict[str, list[Any]]


class DataError(FtdoctorError):
    """A dataset cannot be used: exit 2 with the file and the problem."""


@dataclass
class TextDataset:
    texts: list[str]
    labels: list[int]
    source: str  # the file or builtin name, for messages and the report

    def __len__(self) -> int:
        return len(self.texts)


@dataclass
class Splits:
    train: TextDataset
    validation: TextDataset
    label_names: list[str]  # index = label id

    @property
    def num_labels(self) -> int:
        return len(self.label_names)

    @property
    def id2label(self) -> dict[int, str]:
        return dict(enumerate(self.label_names))

    @property
    def label2id(self) -> dict[str, int]:
        return {name: index for index, name in enumerate(self.label_names)}


def load_splits(config: DataConfig) -> Splits:
    """Load train and validation as configured (paths already resolved by the config loader)."""
    validation_source = config.validation or config.train  # builtin datasets bring their own split
    train_texts, train_raw = _read_split(config.train, "train", config, "data.train")
    val_texts, val_raw = _read_split(validation_source, "validation", config, "data.validation")
    label_names, encode = _label_mapping([(config.train, train_raw), (validation_source, val_raw)], config.label_column)
    return Splits(
        train=TextDataset(train_texts, encode(train_raw), config.train),
        validation=TextDataset(val_texts, encode(val_raw), validation_source),
        label_names=label_names,
    )


def _read_split(source: str, split: str, config: DataConfig, key: str) -> tuple[list[str], list[Any]]:
    columns = _read_builtin(source, split) if source.startswith("builtin:") else _read_file(source, key)
    for column, column_key in ((config.text_column, "data.text_column"), (config.label_column, "data.label_column")):
        if column not in columns:
            found = ", ".join(repr(name) for name in columns) or "none"
            raise DataError(f"{source}: {column_key}: column {column!r} not found (columns: {found})")
    texts, labels = columns[config.text_column], columns[config.label_column]
    if not texts:
        raise DataError(f"{source}: the dataset is empty (no rows)")
    return _check_texts(texts, source, config.text_column), labels


def _read_builtin(source: str, split: str) -> Columns:
    path = BUILTIN_DIR / BUILTIN_SPLITS[split]
    rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    return {name: [row[name] for row in rows] for name in rows[0]}


def builtin_train_texts() -> list[str]:
    """The bundled reviews' training texts (builtin:tiny builds its vocabulary from them)."""
    return [str(text) for text in _read_builtin("builtin:reviews", "train")["text"]]


def _read_file(path: str, key: str) -> Columns:
    """Read one csv/json/jsonl/parquet file into columns of Python values, offline."""
    builder = {".csv": "csv", ".json": "json", ".jsonl": "json", ".parquet": "parquet"}[Path(path).suffix.lower()]
    from datasets import load_dataset
    from datasets.utils.logging import disable_progress_bar

    disable_progress_bar()
    if Path(path).stat().st_size == 0:
        raise DataError(f"{path} ({key}): the file is empty")
    with tempfile.TemporaryDirectory(prefix="ftdoctor-datasets-") as cache_dir:
        try:
            dataset = load_dataset(builder, data_files=path, split="train", cache_dir=cache_dir, keep_in_memory=True)
        except Exception as exc:  # datasets raises many types for unreadable files
            detail = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            if "corresponds to no data" in detail:  # a csv with a header and no rows
                raise DataError(f"{path} ({key}): the dataset is empty (no rows)") from None
            raise DataError(f"{path} ({key}): cannot read it as {builder}: {detail}") from None
        return dataset.to_dict()


def _check_texts(texts: list[Any], source: str, column: str) -> list[str]:
    for row, text in enumerate(texts, start=1):
        if _is_missing(text) or (isinstance(text, str) and not text.strip()):
            raise DataError(f"{source}: row {row}: text column {column!r} is empty or missing")
        if not isinstance(text, str):
            raise DataError(
                f"{source}: row {row}: text column {column!r} holds {type(text).__name__} {text!r}, expected a string"
            )
    return texts


def _is_missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def _label_kind(value: Any) -> str:
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int):
        return "int"
    if isinstance(value, str):
        return "str"
    return type(value).__name__


def _label_mapping(raw_by_source: list[tuple[str, list[Any]]], column: str) -> tuple[list[str], Any]:
    """Check every label is an int or a string (one kind across splits); return names and an encoder."""
    kinds: dict[str, str] = {}
    for source, labels in raw_by_source:
        for row, value in enumerate(labels, start=1):
            kind = _label_kind(value)
            if _is_missing(value) or (kind == "str" and not value.strip()):
                raise DataError(f"{source}: row {row}: label column {column!r} is empty or missing")
            if kind not in ("int", "str"):
                raise DataError(
                    f"{source}: row {row}: label {value!r} is a {kind}; labels must be integer class ids "
                    "(0, 1, ...) or class names (strings)"
                )
            kinds.setdefault(kind, f"{source} row {row}")
    if len(kinds) > 1:
        raise DataError(
            f"label column {column!r} mixes integer ids ({kinds['int']}) and strings ({kinds['str']}); "
            "use one or the other"
        )
    values = {value for _, labels in raw_by_source for value in labels}
    if "str" in kinds:
        names = sorted(values)
        index = {name: i for i, name in enumerate(names)}
        return names, lambda labels: [index[value] for value in labels]
    # Integer ids are kept as they are; names cover 0..max so the head is wide enough for valid ids.
    width = max(max(values) + 1, 1)
    return [str(i) for i in range(width)], lambda labels: [int(value) for value in labels]
