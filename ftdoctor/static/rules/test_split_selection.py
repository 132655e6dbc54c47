"""test-split-selection: the best checkpoint, early stopping or a hyper-parameter search is scored on the test split.

Test data is proven only by what the code loads: a ``["test"]`` split of a ``datasets`` object
(not the ``"test"`` half that ``train_test_split`` carves out, which is a validation set by another
name), ``load_dataset(..., split="test")``, or a file whose name says test (``test.csv``), followed
through ``.map``/``.filter``, DataLoaders, Dataset classes, tokenizers, names, parameters and helpers.

Two shapes are reported:

* ``Trainer(eval_dataset=<test>)`` with ``load_best_model_at_end=True``, an ``EarlyStoppingCallback``
  or ``trainer.hyperparameter_search(...)``;
* in a training loop, an ``if`` that compares a score computed from test data and then saves or
  keeps the model, or stops training (``break``).
"""

from __future__ import annotations

import ast
import re
from typing import Iterator

from ftdoctor.findings import Finding
from ftdoctor.static.analysis_flow import BACKWARD, LOOP_NODES
from ftdoctor.static.analysis_values import DATASET_METHODS
from ftdoctor.static.constants import UNKNOWN, producers, resolve_constant
from ftdoctor.static.model import ModuleModel, call_name, keyword
from ftdoctor.static.modelfacts import calls_of_kind, describe
from ftdoctor.static.rule import StaticRule, register_static_rule

_TEST_SPLIT = "test"
#: a file name that says it holds the test split: test.csv, imdb_test.jsonl, test-00000.parquet
_TEST_FILE = re.compile(r"(^|[_\-./])test([_\-.]|$)", re.I)
_OTHER_SPLITS = frozenset({"train", "training", "validation", "valid", "val", "dev", "eval"})
_READERS = frozenset({"read_csv", "read_json", "read_parquet", "read_table", "read_excel", "read_pickle", "open",
                      "load_from_disk"})
#: what a selection does with the model once the score is better (or what early stopping does)
_SELECTING_CALLS = frozenset({"save", "save_pretrained", "save_model", "save_checkpoint", "state_dict", "deepcopy",
                              "save_state"})
_MAX_DEPTH = 12


@register_static_rule
class TestSplitSelection(StaticRule):
    slug = "test-split-selection"

    def check(self, module: ModuleModel) -> Iterator[Finding]:
        yield from self._check_trainers(module)
        yield from self._check_loops(module)

    def _check_trainers(self, module: ModuleModel) -> Iterator[Finding]:
        for call, _info in calls_of_kind(module, "trainer"):
            evaluation = keyword(call, "eval_dataset")
            if evaluation is None or not _is_test_data(module, evaluation, 0):
                continue
            selection = _trainer_selection(module, call)
            if selection is None:
                continue
            yield self.finding(
                module, evaluation,
                f"`eval_dataset={describe(module, evaluation)}` is the test split, and the Trainer {selection} "
                "on it: the test score of the chosen model is tuned to the test set, no longer an unbiased estimate",
                "select on a validation split (dataset[\"validation\"], or carve one from the training data with "
                "train_test_split), and evaluate on the test split once, at the end",
            )

    def _check_loops(self, module: ModuleModel) -> Iterator[Finding]:
        for statement, action in _selecting_ifs(module).items():
            score = _test_score(module, statement)
            if score is None or not _inside_training_loop(module, statement):
                continue
            name, source = score
            yield self.finding(
                module, statement.test,
                f"`{name}` is computed on the test split (`{describe(module, source)}`, line {source.lineno}) and "
                f"decides {action} here: the reported test score is then chosen on the test set itself",
                "score the selection on a validation split, and evaluate the test split once, after training",
            )


def _trainer_selection(module: ModuleModel, trainer: ast.Call) -> str | None:
    arguments = keyword(trainer, "args", 1)
    for produced in producers(module, arguments) if arguments is not None else []:
        if isinstance(produced, ast.Call) and module.value_of(produced).kind == "training_args":
            if resolve_constant(module, keyword(produced, "load_best_model_at_end")) is True:
                return "picks the best checkpoint (load_best_model_at_end=True)"
    callbacks = keyword(trainer, "callbacks")
    if callbacks is not None and any(
        isinstance(n, ast.Call) and call_name(n) == "EarlyStoppingCallback" for n in ast.walk(callbacks)
    ):
        return "stops early"
    for call in module.calls():
        if call_name(call) == "hyperparameter_search" and isinstance(call.func, ast.Attribute):
            if any(p is trainer for p in producers(module, call.func.value)):
                return "searches hyper-parameters"
    return None


def _selecting_ifs(module: ModuleModel) -> dict[ast.If, str]:
    """Every ``if`` whose arms keep/save the model or stop training, with what they do (one pass over the
    breaks and saving calls, marking the ``if`` statements around them)."""
    found: dict[ast.If, str] = {}
    actions: list[tuple[ast.AST, str]] = [(node, "when training stops (early stopping)") for node in module.nodes(ast.Break)]
    actions += [(call, "which model is kept") for call in module.calls() if call_name(call) in _SELECTING_CALLS]
    for node, action in actions:
        child: ast.AST = node
        for ancestor in module.ancestors(node):
            if isinstance(ancestor, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda, ast.ClassDef)):
                break
            if isinstance(ancestor, ast.If) and child is not ancestor.test:
                if found.get(ancestor) != "when training stops (early stopping)":
                    found[ancestor] = action
            child = ancestor
    return found


def _test_score(module: ModuleModel, statement: ast.If) -> tuple[str, ast.AST] | None:
    """A name the ``if`` compares whose value comes from a call that receives test data."""
    for compare in [n for n in ast.walk(statement.test) if isinstance(n, ast.Compare)]:
        for operand in [compare.left, *compare.comparators]:
            if not isinstance(operand, ast.Name):
                continue
            binding = module.binding_of(operand)
            value = binding.value if binding is not None and binding.source in ("assign", "unpack") else None
            if not isinstance(value, ast.Call):
                continue
            source = _test_argument(module, value)
            if source is not None:
                return operand.id, source
    return None


def _test_argument(module: ModuleModel, call: ast.Call) -> ast.expr | None:
    """The argument of a scoring call (``evaluate(model, test_loader)``, ``trainer.evaluate(test_ds)``) that is
    test data; a receiver or argument that is a model or an optimizer is not data."""
    for argument in [*call.args, *(kw.value for kw in call.keywords)]:
        if isinstance(argument, ast.Starred) or module.value_of(argument).kind in ("model", "optimizer", "scheduler"):
            continue
        if _is_test_data(module, argument, 0):
            return argument
    return None


def _inside_training_loop(module: ModuleModel, node: ast.AST) -> bool:
    for ancestor in module.ancestors(node):
        if isinstance(ancestor, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda, ast.ClassDef)):
            return False
        if isinstance(ancestor, LOOP_NODES):
            loop = module.loop(ancestor)
            if loop is not None and loop.has(BACKWARD):
                return True
    return False


def _is_test_data(module: ModuleModel, node: ast.AST, depth: int) -> bool:
    """Every value ``node`` may hold is derived from the test split."""
    if depth > _MAX_DEPTH:
        return False
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return bool(_TEST_FILE.search(node.value.rsplit("/", 1)[-1]))
    sources = producers(module, node) or ([node] if isinstance(node, (ast.Call, ast.Subscript)) else [])
    return bool(sources) and all(_derives_from_test(module, s, depth + 1) for s in sources)


def _derives_from_test(module: ModuleModel, node: ast.expr, depth: int) -> bool:
    if isinstance(node, ast.Subscript):
        key = resolve_constant(module, node.slice)
        if key == _TEST_SPLIT:
            return _loaded_splits(module, node.value, depth)
        if key in _OTHER_SPLITS:
            return False
        return _is_test_data(module, node.value, depth)  # a column of test data
    if isinstance(node, ast.Attribute):
        return _is_test_data(module, node.value, depth)  # df.text, df.values
    if not isinstance(node, ast.Call):
        return False
    name = call_name(node) or ""
    if name == "load_dataset":
        split = keyword(node, "split")
        if split is not None:
            value = resolve_constant(module, split)
            return isinstance(value, str) and value.split("[", 1)[0] == _TEST_SPLIT
        files = keyword(node, "data_files")
        return files is not None and _is_path_constant_test(module, files)
    if name in _READERS:
        path = keyword(node, "filepath_or_buffer", 0) or keyword(node, "path", 0) or keyword(node, "file", 0)
        return path is not None and _is_path_constant_test(module, path)
    if isinstance(node.func, ast.Attribute) and module.qualified_name(node.func) is None:
        if name in DATASET_METHODS - {"train_test_split"} or name in ("tolist", "to_list", "values", "to_numpy",
                                                                       "dropna", "reset_index", "copy", "sample"):
            return _is_test_data(module, node.func.value, depth)
        if module.value_of(node.func.value).kind == "tokenizer" and node.args:
            return _is_test_data(module, node.args[0], depth)
        return False
    if module.value_of(node.func).kind == "tokenizer" and node.args:  # tokenizer(texts, ...)
        return _is_test_data(module, node.args[0], depth)
    data = keyword(node, "dataset", 0) if name == "DataLoader" else (node.args[0] if node.args else None)
    if data is None or isinstance(data, ast.Starred):
        return False
    info = module.value_of(node)
    if name == "DataLoader" or info.kind == "dataset" or name in ("TensorDataset", "from_pandas", "from_dict",
                                                                    "from_list", "DataFrame", "tensor", "array"):
        return _is_test_data(module, data, depth)
    return False


def _loaded_splits(module: ModuleModel, node: ast.expr, depth: int) -> bool:
    """``node`` is a DatasetDict as ``load_dataset`` returned it (possibly mapped): its "test" is the dataset's own
    test split. Anything else — ``train_test_split``'s carved halves, a helper's result the file does not show —
    may name a validation set "test", so it proves nothing."""
    if depth > _MAX_DEPTH:
        return False
    sources = producers(module, node) or ([node] if isinstance(node, ast.Call) else [])
    if not sources:
        return False
    for source in sources:
        if not isinstance(source, ast.Call):
            return False
        name = call_name(source) or ""
        if name == "load_dataset" and (module.qualified_name(source.func) or "").startswith("datasets"):
            continue
        if name in DATASET_METHODS - {"train_test_split"} and isinstance(source.func, ast.Attribute):
            if _loaded_splits(module, source.func.value, depth + 1):
                continue
        return False
    return True


def _is_path_constant_test(module: ModuleModel, node: ast.expr) -> bool:
    value = resolve_constant(module, node)
    if value is UNKNOWN or not isinstance(value, str):
        return False
    return bool(_TEST_FILE.search(value.replace("\\", "/").rsplit("/", 1)[-1]))
