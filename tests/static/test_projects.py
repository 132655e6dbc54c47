"""The project is the unit: facts flow between a project's modules, summaries are cached.

``fixtures/projects/<case>/{bad,good}/`` are small projects (each with its own ``pyproject.toml``).
``bad`` must give the findings listed in CASES (rule and file), ``good`` none of those rules. Each case is
checked twice: all its files named, and only the file the finding belongs to (the pre-commit case: the
rest of the project is read for context, never reported).
"""

from __future__ import annotations

import ast
import json
import shutil
from pathlib import Path

import pytest

from ftdoctor.findings import Finding
from ftdoctor.settings import Settings
from ftdoctor.static.cache import CACHE_DIR
from ftdoctor.static.checker import check_files
from ftdoctor.sources import SourceFile
from ftdoctor.static.project import Project, Projects, find_project_root, summarize

PROJECTS = Path(__file__).resolve().parents[2] / "fixtures" / "projects"

#: case -> (rule, file of the bad twin it is reported in)
CASES = {
    "seed_in_entry": ("seed-not-set", "finetune/training.py"),  # the entry module seeds
    "seed_in_helper": ("seed-not-set", "scripts/train.py"),  # src/ layout: a project helper seeds
    "loader_elsewhere": ("train-loader-not-shuffled", "pkg/train.py"),  # relative import
    "step_elsewhere": ("missing-zero-grad", "scripts/train.py"),  # a script beside its modules
    "driver_trainer": ("missing-no-grad-eval", "run.py"),  # a driver loop around another module's function
    "eval_elsewhere": ("missing-train-after-eval", "train.py"),  # evaluation in a module beside the script
    "model_elsewhere": ("missing-eval-mode", "main.py"),  # a model class of another module, with or without dropout
    # issue 8's rules; "proof in one file" marks a rule whose facts the engine does not carry across modules yet
    "test_split_trainer": ("test-split-selection", "train.py"),  # proof in one file: data.py tokenises
    "mask_pooling_in_model": ("missing-attention-mask", "model.py"),  # proof in one file: train.py pads
    "tuple_unpack_in_model": ("model-output-tuple-unpack", "model.py"),  # proof in one file: train.py trains it
    "peft_head_in_model": ("head-not-trained", "model.py"),  # proof in one file: train.py's Trainer trains it
    "padded_ids_model_elsewhere": ("missing-attention-mask", "train.py"),  # model.py loads the transformers model
    "encoder_elsewhere": ("model-output-tuple-unpack", "model.py"),  # encoders.py loads the encoder model.py unpacks
    "peft_model_elsewhere": ("head-not-trained", "train.py"),  # model.py loads the classifier train.py wraps in LoRA
    "metric_in_evaluate": ("metric-args-swapped", "evaluate.py"),  # proof in one file: train.py calls it
    "best_state_step_elsewhere": ("best-state-by-reference", "train.py"),  # model.py builds, engine.py trains
    "optimizer_step_elsewhere": ("optimizer-recreated-in-loop", "train.py"),  # engine.py steps the optimizer
    "bool_flag_in_config": ("argparse-type-bool", "config.py"),  # proof in one file: train.py reads the options
    "param_groups_in_optim": ("unknown-param-group-key", "optim.py"),  # proof in one file: train.py steps it
    "label_map_in_data": ("unstable-label-map", "data.py"),  # proof in one file: train.py saves the map
}


@pytest.fixture(autouse=True)
def rules_raise(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FTDOCTOR_DEBUG", "1")


def sources(root: Path, *names: str) -> list[SourceFile]:
    paths = [root / name for name in names] or sorted(p for p in root.rglob("*.py") if p.name != "__init__.py")
    return [SourceFile(path, path.relative_to(root).as_posix()) for path in paths]


def check(root: Path, *names: str, cache: bool = False) -> list[Finding]:
    return check_files(sources(root, *names), Settings(), parallel=False, cache=cache).findings


def describe(findings: list[Finding]) -> str:
    return "; ".join(f"{f.path}:{f.line} {f.rule}" for f in findings) or "nothing"


@pytest.mark.parametrize("case", sorted(CASES))
@pytest.mark.parametrize("named", ["all", "one"])
def test_bad_twin_fires_in_the_right_file(case: str, named: str) -> None:
    rule, path = CASES[case]
    root = PROJECTS / case / "bad"
    findings = check(root, *([path] if named == "one" else []))
    assert [(f.rule, f.path) for f in findings if f.rule == rule] == [(rule, path)], describe(findings)


@pytest.mark.parametrize("case", sorted(CASES))
@pytest.mark.parametrize("named", ["all", "one"])
def test_good_twin_is_silent(case: str, named: str) -> None:
    rule, path = CASES[case]
    findings = check(PROJECTS / case / "good", *([path] if named == "one" else []))
    assert not [f for f in findings if f.rule == rule or f.severity.at_least(f.severity.WARNING)], describe(findings)


def test_every_case_has_both_twins_with_a_project_root() -> None:
    for case in CASES:
        for twin in ("bad", "good"):
            assert (PROJECTS / case / twin / "pyproject.toml").is_file(), f"{case}/{twin}"


def test_alone_the_file_cannot_see_the_facts() -> None:
    """Without the project (the engine on one file) the cross-file fact is lost: the fixtures test the reach."""
    from ftdoctor.static.engine import check_source

    path = PROJECTS / "step_elsewhere" / "bad" / "scripts" / "train.py"
    assert not [f for f in check_source(path.read_text(), str(path)) if f.rule == "missing-zero-grad"]


# ----------------------------------------------------------------------------- imports


def write(root: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)
    return root


def test_project_root_is_the_nearest_marked_folder(tmp_path: Path) -> None:
    write(tmp_path, {"setup.cfg": "", "pkg/sub/mod.py": "", "pkg/pyproject.toml": ""})
    assert find_project_root(tmp_path / "pkg" / "sub" / "mod.py") == tmp_path / "pkg"
    (tmp_path / "pkg" / "pyproject.toml").unlink()
    assert find_project_root(tmp_path / "pkg" / "sub" / "mod.py") == tmp_path


def test_imports_resolve_relative_src_layout_and_beside_the_script(tmp_path: Path) -> None:
    write(tmp_path, {
        "pyproject.toml": "", "src/lab/__init__.py": "from .data import build\n", "src/lab/data.py": "def build(): pass\n",
        "scripts/train.py": "", "scripts/steps.py": "def step(): pass\n", "outside.py": "",
    })
    project = Project(tmp_path.resolve(), None)
    root = tmp_path.resolve()
    importer = root / "src" / "lab" / "data.py"
    assert project.resolve(importer, ".data.build") == (root / "src/lab/data.py", ("build",))
    assert project.resolve(root / "scripts/train.py", "lab.data.build") == (root / "src/lab/data.py", ("build",))
    assert project.resolve(root / "scripts/train.py", "steps.step") == (root / "scripts/steps.py", ("step",))
    assert project.resolve(root / "scripts/train.py", "torch.nn.Linear") is None
    # a re-export in a package's __init__ is followed to the function
    assert project.function(root / "scripts/train.py", "lab.build") is not None


def test_summary_records_returns_and_effects_on_parameters() -> None:
    summary = summarize(
        "import torch\nfrom torch.utils.data import DataLoader\n"
        "def loader(ds):\n    return DataLoader(ds, shuffle=True)\n"
        "def step(model, batch, opt):\n    opt.zero_grad()\n    model(**batch).loss.backward()\n    opt.step()\n",
        "m.py",
    )
    assert summary.functions["loader"].returns.kind == "dataloader"
    assert summary.functions["loader"].returns.keeps_order is False
    effects = [(e.kind, e.param) for e in summary.functions["step"].effects]
    assert effects == [("zero_grad", "opt"), ("forward", "model"), ("backward", None), ("step", "opt")]


# ----------------------------------------------------------------------------- cache


@pytest.fixture
def small_project(tmp_path: Path) -> Path:
    shutil.copytree(PROJECTS / "step_elsewhere" / "bad", tmp_path / "proj")
    return tmp_path / "proj"


def cache_entries(root: Path) -> list[Path]:
    return sorted((root / CACHE_DIR).rglob("*.json"))


def test_cache_is_written_at_the_root_and_ignored_by_git(small_project: Path) -> None:
    findings = check(small_project, "scripts/train.py", cache=True)
    assert (small_project / CACHE_DIR / ".gitignore").read_text().splitlines()[-1] == "*"
    assert cache_entries(small_project)
    assert [f.rule for f in check(small_project, "scripts/train.py", cache=True)] == [f.rule for f in findings]


def test_no_cache_writes_nothing(small_project: Path) -> None:
    check(small_project, "scripts/train.py", cache=False)
    assert not (small_project / CACHE_DIR).exists()


def test_a_corrupt_or_foreign_cache_entry_is_rebuilt(small_project: Path) -> None:
    check(small_project, "scripts/train.py", cache=True)
    for index, entry in enumerate(cache_entries(small_project)):
        entry.write_text(["{not json", json.dumps({"key": "other", "summary": {}}), "[]"][index % 3])
    findings = check(small_project, "scripts/train.py", cache=True)
    assert [f.rule for f in findings if f.rule == "missing-zero-grad"] == ["missing-zero-grad"]
    for entry in cache_entries(small_project):
        assert json.loads(entry.read_text())["key"] == entry.stem


def test_an_edited_module_is_summarised_again(small_project: Path) -> None:
    assert "missing-zero-grad" in [f.rule for f in check(small_project, "scripts/train.py", cache=True)]
    steps = small_project / "scripts" / "steps.py"
    steps.write_text(steps.read_text().replace("    loss = model", "    optimizer.zero_grad()\n    loss = model"))
    assert "missing-zero-grad" not in [f.rule for f in check(small_project, "scripts/train.py", cache=True)]


def test_parallel_workers_share_one_valid_cache(tmp_path: Path) -> None:
    root = shutil.copytree(PROJECTS / "step_elsewhere" / "bad", tmp_path / "proj")
    train = (root / "scripts" / "train.py").read_text()
    for index in range(44):
        (root / "scripts" / f"train_{index}.py").write_text(train)
    files = sources(root, *[f"scripts/train_{i}.py" for i in range(44)])
    parallel = check_files(files, Settings(), parallel=True, cache=True).findings
    serial = check_files(files, Settings(), parallel=False, cache=False).findings
    assert sorted((f.path, f.rule) for f in parallel) == sorted((f.path, f.rule) for f in serial)
    assert sum(f.rule == "missing-zero-grad" for f in parallel) == 44
    for entry in cache_entries(root):
        assert json.loads(entry.read_text())["key"] == entry.stem


def test_cli_no_cache_flag(run_check, small_project: Path) -> None:
    result = run_check("check", "scripts/train.py", "--no-cache", cwd=small_project)
    assert result.code == 1 and "missing-zero-grad" in result.stdout
    assert not (small_project / CACHE_DIR).exists()


def test_projects_are_picklable_before_use() -> None:
    import pickle

    projects = pickle.loads(pickle.dumps(Projects(cache=False)))
    assert projects.in_this_process() is projects


@pytest.mark.parametrize(("built", "wrap", "fires"), [
    ("peft", "get_peft_model(model, LoraConfig(r=8))", False),  # adapters: 2e-4 is a usual LoRA rate
    ("from_pretrained", "model", True),  # every weight trains: 2e-4 is too high
])
def test_a_model_built_in_another_module_says_whether_adapters_train_it(
    tmp_path: Path, built: str, wrap: str, fires: bool
) -> None:
    """lr-out-of-range judges the rate by what the helper of model.py returns, not by train.py's imports."""
    model_py = (
        "from peft import LoraConfig, get_peft_model\nfrom transformers import AutoModelForSequenceClassification\n"
        "def build():\n    model = AutoModelForSequenceClassification.from_pretrained('bert-base-uncased', num_labels=2)\n"
        f"    return {wrap}\n"
    )
    assert summarize(model_py, "model.py").functions["build"].returns.built == built
    root = write(tmp_path, {"pyproject.toml": "", "model.py": model_py, "train.py": (
        "from transformers import AutoTokenizer, Trainer, TrainingArguments\nfrom model import build\n"
        "def main(ds):\n    tokenizer = AutoTokenizer.from_pretrained('bert-base-uncased')\n"
        "    args = TrainingArguments('out', learning_rate=2e-4)\n"
        "    Trainer(model=build(), args=args, train_dataset=ds, tokenizer=tokenizer).train()\n"
    )})
    assert [f.rule for f in check(root, "train.py") if f.rule == "lr-out-of-range"] == ["lr-out-of-range"] * fires


_CACHED_OPTIMIZER = (
    "import torch\n_optimizer = None\n"
    "def build_optimizer(model):\n    global _optimizer\n    if _optimizer is None:\n"
    "        _optimizer = torch.optim.AdamW(model.parameters(), lr=2e-5)\n    return _optimizer\n"
)


@pytest.mark.parametrize(("optim_py", "per_call"), [
    ("import torch\ndef build_optimizer(model):\n    return torch.optim.AdamW(model.parameters(), lr=2e-5)\n", True),
    (_CACHED_OPTIMIZER, False),  # the same optimizer every call: building it in the loop restarts nothing
])
def test_an_optimizer_helper_of_another_module_says_whether_each_call_builds_a_new_one(
    tmp_path: Path, optim_py: str, per_call: bool
) -> None:
    assert summarize(optim_py, "optim.py").functions["build_optimizer"].returns.per_call is per_call
    root = write(tmp_path, {"pyproject.toml": "", "optim.py": optim_py, "train.py": (
        "from optim import build_optimizer\n"
        "def main(model, loader, epochs):\n    for _ in range(epochs):\n        optimizer = build_optimizer(model)\n"
        "        for batch in loader:\n            optimizer.zero_grad()\n            model(**batch).loss.backward()\n"
        "            optimizer.step()\n"
    )})
    found = [f.rule for f in check(root, "train.py") if f.rule == "optimizer-recreated-in-loop"]
    assert found == ["optimizer-recreated-in-loop"] * per_call


def test_a_model_helper_says_whether_it_returns_the_library_s_model_output() -> None:
    summary = summarize(
        "from peft import LoraConfig, get_peft_model\nfrom transformers import AutoModel\nimport torch.nn as nn\n"
        "class Mine(nn.Module):\n    pass\n"
        "def plain():\n    return AutoModel.from_pretrained('bert-base-uncased')\n"
        "def adapted():\n    return get_peft_model(AutoModel.from_pretrained('bert-base-uncased'), LoraConfig(r=8))\n"
        "def tuples():\n    return AutoModel.from_pretrained('bert-base-uncased', return_dict=False)\n"
        "def mine():\n    return Mine()\n",
        "m.py",
    )
    library = {name: summary.functions[name].returns.library for name in ("plain", "adapted", "tuples", "mine")}
    assert library == {"plain": True, "adapted": True, "tuples": False, "mine": False}


def test_a_model_helper_says_whether_the_task_head_is_new() -> None:
    summary = summarize(
        "from transformers import AutoModelForSequenceClassification as Cls\n"
        "def fresh(n):\n    return Cls.from_pretrained('bert-base-uncased', num_labels=n)\n"
        "def finetuned(path):\n    return Cls.from_pretrained(path)\n",  # its head was trained and saved there
        "m.py",
    )
    assert [summary.functions[name].returns.new_head for name in ("fresh", "finetuned")] == [True, False]


def test_a_function_training_through_a_framework_is_marked() -> None:
    summary = summarize(
        "import lightning as L\nfrom transformers import Trainer\n"
        "def fit(module, data):\n    L.Trainer(max_epochs=1).fit(module, data)\n"
        "def hf(model, args, ds):\n    trainer = Trainer(model=model, args=args, train_dataset=ds)\n    trainer.train()\n"
        "def plain(model):\n    model.train()\n",
        "m.py",
    )
    assert [summary.functions[name].framework_training for name in ("fit", "hf", "plain")] == [True, True, False]


def test_outside_any_project_the_scripts_folder_is_read_but_no_cache_is_written(tmp_path: Path) -> None:
    folder = tmp_path / "loose"
    shutil.copytree(PROJECTS / "step_elsewhere" / "bad" / "scripts", folder)
    if find_project_root(folder) is not None:
        pytest.skip("a project marker above the temporary folder")
    findings = check(folder, "train.py", cache=True)
    assert [f.rule for f in findings if f.rule == "missing-zero-grad"] == ["missing-zero-grad"]
    assert not (folder / CACHE_DIR).exists()


def test_imports_never_leave_the_project_root(tmp_path: Path) -> None:
    write(tmp_path, {"steps.py": "def step(): pass\n", "proj/pyproject.toml": "", "proj/train.py": ""})
    project = Project((tmp_path / "proj").resolve(), None)
    assert project.resolve((tmp_path / "proj" / "train.py").resolve(), "..steps.step") is None


def test_summaries_of_another_ftdoctor_are_dropped(small_project: Path) -> None:
    old = small_project / CACHE_DIR / "summaries-0-0.0.1-old"
    old.mkdir(parents=True)
    (old / "x.json").write_text("{}")
    check(small_project, "scripts/train.py", cache=True)
    assert not old.exists() and cache_entries(small_project)


def test_the_outline_keeps_what_summaries_read_at_the_same_lines() -> None:
    from ftdoctor.static.outline import outline

    source = (
        "import torch\nfrom x import (\n    a,\n)\n\nclass Net(torch.nn.Module):\n    def forward(self, x):\n"
        "        return x\n\ntry:\n    import y\nexcept ImportError:\n    y = None\n\n"
        "def build():\n    return Net()\n\nif __name__ == '__main__':\n    build()\n"
    )
    text = outline(source)
    assert text.count("\n") == source.count("\n") - 1 + source.endswith("\n")
    lines = text.split("\n")
    assert lines[5] == "class Net(torch.nn.Module):" and lines[6].strip() == "pass" and not lines[7].strip()
    assert "import y" in text and "def build():" in text and "build()" not in lines[18]
    summary = summarize(source, "m.py", ast.parse(text), outlined=True)
    assert summary.classes == {"Net": "model"} and summary.functions["build"].returns.line == 16
