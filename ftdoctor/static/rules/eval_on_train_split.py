"""eval-on-train-split: evaluation reads only the training data.

Evaluation sources are ``Trainer(eval_dataset=...)``, the DataLoaders evaluation loops
iterate, and DataLoaders named for validation (``val_loader``, ``test_dataloader``...). A
source is training data when it is ``<dataset>["train"]``, ``load_dataset(..., split="train")``
(possibly mapped/filtered), or the very dataset a training loop's DataLoader reads —
the same expression with the same arguments bound, so ``get_dataset("train")`` and
``get_dataset("test")`` are different data. Held-out data is never training data: a split
or file named like one (``validation``, ``dev.tsv``, ``val.csv``), a part picked by a
different sampler (``SubsetRandomSampler(val_idx)``), and ``load_dataset(..., data_files=
"val.csv")["train"]`` (files not mapped to splits always land in "train"). Scoring the
training set next to a held-out set is normal, so loop-based findings need every
evaluation source to be training data.
"""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass
from typing import Iterator

from ftdoctor.findings import Finding
from ftdoctor.static.analysis_values import DATASET_METHODS
from ftdoctor.static.constants import data_identity, producers, resolve_constant
from ftdoctor.static.model import ModuleModel, call_name, keyword
from ftdoctor.static.modelfacts import assigned_to, calls_of_kind, dataloader_calls, describe
from ftdoctor.static.rule import StaticRule, register_static_rule

_EVAL_LOADER_NAME = re.compile(r"(^|_)(val|valid|validation|eval|evaluation|test|dev|holdout)(_|$|loader|dataloader|dl)",
                               re.I)
_TRAIN_SPLIT = "train"
#: a string naming held-out data: a split (`validation`) or a file (`data/dev.tsv`, `val.csv`)
_HELD_OUT_NAME = re.compile(r"(^|[^a-z])(val|valid|validation|dev|test|eval|evaluation|holdout)([^a-z]|$)", re.I)
#: methods that pick a part of the rows, the usual way to carve a validation set out of "train"
_SUBSET_METHODS = frozenset({"train_test_split", "select", "shard"})
_MAX_DEPTH = 8


@dataclass(frozen=True)
class _EvalSource:
    loader: ast.Call  # the DataLoader call (or the Trainer call)
    dataset: ast.expr  # the dataset expression it reads


@register_static_rule
class EvalOnTrainSplit(StaticRule):
    slug = "eval-on-train-split"

    def check(self, module: ModuleModel) -> Iterator[Finding]:
        yield from self._check_trainers(module)
        yield from self._check_loops(module)

    def _check_trainers(self, module: ModuleModel) -> Iterator[Finding]:
        for call, _info in calls_of_kind(module, "trainer"):
            evaluation = keyword(call, "eval_dataset")
            training = keyword(call, "train_dataset")
            if evaluation is None or isinstance(evaluation, ast.Dict):
                continue
            same = training is not None and _same_data(module, evaluation, training)
            part = training is not None and _is_part_of(module, evaluation, training)
            if same or part or _is_train_split(module, evaluation, 0):
                yield self.finding(
                    module,
                    evaluation,
                    f"`eval_dataset={describe(module, evaluation)}` (line {evaluation.lineno}) is "
                    f"{'the training dataset itself' if same else 'part of the training dataset' if part else 'the training split'}, so the Trainer's "
                    "evaluation, best-model selection and early stopping measure memorisation",
                    'pass held-out data: eval_dataset=dataset["validation"] (or carve one out with '
                    "dataset[\"train\"].train_test_split(test_size=0.1, seed=0))",
                )

    def _check_loops(self, module: ModuleModel) -> Iterator[Finding]:
        training = _training_loader_calls(module)
        sources = _evaluation_sources(module)
        if not sources:
            return
        on_train = [s for s in sources if s.loader in training or _reads_training_data(module, s, training)]
        if len(on_train) != len(sources):
            return  # some evaluation uses held-out (or unknown) data
        reported: set[int] = set()
        for source in on_train:
            if id(source.loader) in reported:
                continue
            reported.add(id(source.loader))
            name = assigned_to(module, source.loader)
            yield self.finding(
                module,
                source.loader,
                f"{f'`{name}`' if name else 'the evaluation DataLoader'} (line {source.loader.lineno}) reads "
                f"`{describe(module, source.dataset)}`, training data, and no evaluation in this file uses held-out "
                "data: the metrics measure memorisation",
                'build the evaluation DataLoader from the validation split (dataset["validation"]) or a held-out '
                "part of the training data (train_test_split)",
            )


def _evaluation_sources(module: ModuleModel) -> list[_EvalSource]:
    found: dict[int, _EvalSource] = {}
    for loop in module.evaluation_loops():
        if isinstance(loop.node, (ast.For, ast.AsyncFor)):
            for call in dataloader_calls(module, loop.node.iter):
                _add_source(found, call)
    for call, _info in calls_of_kind(module, "dataloader"):
        name = assigned_to(module, call)
        if name and _EVAL_LOADER_NAME.search(name.rsplit(".", 1)[-1]):
            _add_source(found, call)
    return list(found.values())


def _add_source(found: dict[int, _EvalSource], call: ast.Call) -> None:
    dataset = keyword(call, "dataset", 0)
    if dataset is not None:
        found.setdefault(id(call), _EvalSource(call, dataset))


def _training_loader_calls(module: ModuleModel) -> list[ast.Call]:
    calls: list[ast.Call] = []
    for loop in module.training_loops():
        if isinstance(loop.node, (ast.For, ast.AsyncFor)):
            calls.extend(dataloader_calls(module, loop.node.iter))
    return calls


def _reads_training_data(module: ModuleModel, source: _EvalSource, training: list[ast.Call]) -> bool:
    if _names_held_out(module, source.dataset):
        return False
    sampler = _sampler(source.loader)
    if sampler is None and _is_train_split(module, source.dataset, 0):
        return True
    for loader in training:
        dataset = keyword(loader, "dataset", 0)
        if dataset is None:
            continue
        if _same_data(module, source.dataset, dataset) and _same_subset(module, sampler, _sampler(loader)):
            return True
        if sampler is None and _sampler(loader) is None and _is_part_of(module, source.dataset, dataset):
            return True  # a few rows of what the whole training loop reads
    return False


def _is_part_of(module: ModuleModel, part: ast.expr, whole: ast.expr) -> bool:
    """``part`` is ``whole.select(...)``/``whole.shard(...)`` (every producer of it)."""
    produced = producers(module, part)
    return bool(produced) and all(
        isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr in ("select", "shard")
        and _same_data(module, node.func.value, whole)
        for node in produced
    )


def _sampler(loader: ast.Call) -> ast.expr | None:
    """``DataLoader(ds, sampler=SubsetRandomSampler(val_idx))``: the loader reads the part its sampler picks."""
    for name, index in (("sampler", 3), ("batch_sampler", 4)):
        found = keyword(loader, name, index)
        if found is not None and not (isinstance(found, ast.Constant) and found.value is None):
            return found
    return None


def _same_subset(module: ModuleModel, first: ast.expr | None, second: ast.expr | None) -> bool:
    """Both loaders read the same part of their dataset: no sampler, or samplers holding the same indices."""
    if first is None or second is None:
        return first is second
    return _same_data(module, first, second)


def _names_held_out(module: ModuleModel, node: ast.expr) -> bool:
    """A string that builds the data names a held-out split or file (``"validation"``, ``"data/dev.tsv"``)."""
    for produced in producers(module, node) or [node]:
        for inner in ast.walk(produced):
            if isinstance(inner, ast.Constant) and isinstance(inner.value, str) and _HELD_OUT_NAME.search(inner.value):
                return True
    return False


def _same_data(module: ModuleModel, first: ast.expr, second: ast.expr) -> bool:
    """Both expressions are produced by the very same expression with the same arguments bound (one dataset
    object): ``get_dataset("train")`` and ``get_dataset("test")`` are not."""
    identity = data_identity(module, first)
    return bool(identity) and identity == data_identity(module, second)


def _split_is_meaningless(module: ModuleModel, node: ast.expr) -> bool:
    """``load_dataset("csv", data_files="val.csv")``: files not given as a split -> file mapping all land in
    the split "train", whatever they hold, so "train" says nothing about the data."""
    if not (isinstance(node, ast.Call) and call_name(node) == "load_dataset"):
        return False
    files = keyword(node, "data_files")
    if files is None:
        return False
    if isinstance(files, ast.Dict):
        return False
    return not isinstance(resolve_constant(module, files), dict)


def _is_train_split(module: ModuleModel, node: ast.expr, depth: int) -> bool:
    """Every producer of ``node`` is the training split (``ds["train"]``, ``split="train"``, mapped or filtered)."""
    if depth > _MAX_DEPTH:
        return False
    produced = producers(module, node)
    return bool(produced) and all(_produces_train_split(module, p, depth) for p in produced)


def _produces_train_split(module: ModuleModel, node: ast.expr, depth: int) -> bool:
    if isinstance(node, ast.Subscript):
        key = resolve_constant(module, node.slice)
        return (
            key == _TRAIN_SPLIT
            and module.value_of(node.value).kind in ("dataset", "unknown", "param")
            and not any(_split_is_meaningless(module, p) for p in producers(module, node.value))
        )
    if isinstance(node, ast.Call):
        split = keyword(node, "split")
        if split is not None and call_name(node) == "load_dataset":
            return resolve_constant(module, split) == _TRAIN_SPLIT and not _split_is_meaningless(module, node)
        if isinstance(node.func, ast.Attribute) and node.func.attr in DATASET_METHODS - _SUBSET_METHODS:
            return _is_train_split(module, node.func.value, depth + 1)
    return False
