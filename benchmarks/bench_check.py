"""How fast is `ftdoctor check`? One command, reproducible figures.

    python benchmarks/bench_check.py                 # generate the corpus (once) and print the table
    python benchmarks/bench_check.py --files 2000 --repeat 15

It generates a corpus of varied fine-tuning scripts (seeded: the same corpus on
every machine) under benchmarks/corpus/ (git-ignored) and measures:

- throughput: files/s for the whole corpus through the CLI (``python -m ftdoctor
  check CORPUS``, process pool on), and in-process serial vs parallel;
- a cold single-file check: median wall (and CPU) time of fresh ``python -m
  ftdoctor check one.py`` processes, bytecode cached as after an install, next to
  ``python -c pass`` and ``python -c "import ftdoctor.cli"`` for context;
- that the check path imports no torch / transformers / datasets.

The issue's targets: cold single file < 0.25 s, >= 500 files/s on 2 cores.

With ``--project PATH`` (or env FTDOCTOR_BENCH_PROJECT; e.g. a checkout of huggingface/peft) it also times
checking a real project, which ``check`` reads as a whole (imports between its modules are followed,
module summaries cached in ``.ftdoctor_cache/``), on a temporary copy so nothing is written into the
checkout: a cold full check (no cache yet), a cached full check, ``--no-cache``, and one changed file
with the cache warm (what pre-commit does). ``--baseline DIR`` (or FTDOCTOR_BENCH_BASELINE; another
ftdoctor source tree, e.g. a worktree of main) runs that copy's ``check`` interleaved with this one, so
the ratios hold on a busy machine. ``--torchfix EXE`` (a ``torchfix`` installed in a venv of its own) times
TorchFix on the same copy, interleaved. Issue 10's targets: cold full check no slower than the baseline,
cached single changed file < 0.25 s, at least 10x faster than TorchFix.

    python benchmarks/bench_check.py --project ../peft --baseline ../ftdoctor-main --skip-corpus
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
CORPUS = REPO / "benchmarks" / "corpus"
HEAVY = ("torch", "transformers", "datasets", "accelerate", "sklearn")

# ------------------------------------------------------------------------------------------- corpus

CHECKPOINTS = ["bert-base-uncased", "distilbert-base-uncased", "roberta-base", "bert-large-uncased",
               "sentence-transformers/all-MiniLM-L6-v2", "microsoft/deberta-v3-base", "google/electra-base-discriminator"]
LEARNING_RATES = ["2e-5", "3e-5", "5e-5", "1e-4", "2e-5", "1e-3", "0.01", "1e-7"]


def _names(rng: random.Random) -> dict[str, str]:
    return {
        "model": rng.choice(["model", "net", "clf", "bert"]),
        "opt": rng.choice(["optimizer", "opt", "optim"]),
        "sched": rng.choice(["scheduler", "lr_scheduler", "sched"]),
        "loader": rng.choice(["train_loader", "train_dl", "loader"]),
        "val": rng.choice(["val_loader", "eval_dl", "valid_loader"]),
        "batch": rng.choice(["batch", "b", "inputs"]),
        "ckpt": rng.choice(CHECKPOINTS),
        "lr": rng.choice(LEARNING_RATES),
        "labels": str(rng.choice([2, 2, 3, 5])),
        "epochs": str(rng.randint(1, 5)),
        "shuffle": rng.choice(["True", "True", "True", "False"]),
    }


def _train_steps(n: dict[str, str], rng: random.Random, indent: str) -> str:
    """The body of one training step, with the mistakes people make mixed in."""
    steps = [f"outputs = {n['model']}(**{n['batch']})", "loss = outputs.loss"]
    order = ["backward", "step", "sched", "zero"]
    roll = rng.random()
    if roll < 0.15:
        order.remove("zero")  # missing-zero-grad
    elif roll < 0.22:
        order = ["backward", "zero", "step", "sched"]  # zero-grad-misplaced
    elif roll < 0.30:
        order = ["zero", "backward", "sched", "step"]  # scheduler-before-optimizer
    elif roll < 0.6:
        order = ["zero", "backward", "step", "sched"]
    lines = {"backward": "loss.backward()", "step": f"{n['opt']}.step()", "sched": f"{n['sched']}.step()",
             "zero": f"{n['opt']}.zero_grad()"}
    steps += [lines[name] for name in order]
    if rng.random() < 0.1:
        steps.append("total_loss += loss")  # loss-accumulates-graph
    else:
        steps.append("total_loss += loss.item()")
    return "\n".join(indent + line for line in steps)


def _evaluate(n: dict[str, str], rng: random.Random) -> str:
    eval_mode = "" if rng.random() < 0.1 else f"    {n['model']}.eval()\n"
    if rng.random() < 0.1:
        loop = f"    for {n['batch']} in loader:\n        logits = {n['model']}(**{n['batch']}).logits\n        correct += (logits.argmax(-1) == {n['batch']}['labels']).sum().item()\n"
    else:
        loop = (f"    with torch.no_grad():\n        for {n['batch']} in loader:\n            logits = {n['model']}(**{n['batch']}).logits\n"
                f"            correct += (logits.argmax(-1) == {n['batch']}['labels']).sum().item()\n")
    return f"def evaluate({n['model']}, loader):\n{eval_mode}    correct = 0\n{loop}    return correct\n"


def _helpers(rng: random.Random) -> str:
    """Unrelated utility code, so files vary in size like real ones."""
    parts = []
    for i in range(rng.randint(0, 6)):
        kind = rng.randrange(3)
        if kind == 0:
            parts.append(f"def collate_{i}(rows):\n    texts = [r['text'] for r in rows]\n    labels = [r['label'] for r in rows]\n"
                         f"    return {{'texts': texts, 'labels': labels, 'n': len(rows) * {i + 1}}}\n")
        elif kind == 1:
            parts.append(f"class Meter{i}:\n    def __init__(self):\n        self.total = 0.0\n        self.count = 0\n\n"
                         f"    def update(self, value, n=1):\n        self.total += value * n\n        self.count += n\n\n"
                         f"    @property\n    def mean(self):\n        return self.total / max(1, self.count)\n")
        else:
            parts.append(f"CONFIG_{i} = {{\n" + "".join(f"    'key_{j}': {rng.random():.4f},\n" for j in range(rng.randint(2, 12))) + "}\n")
    return "\n\n".join(parts)


def _preamble(n: dict[str, str], rng: random.Random) -> str:
    seed = "" if rng.random() < 0.15 else "torch.manual_seed(0)\n"
    return (
        '"""Fine-tune a classifier (generated benchmark script)."""\n'
        "import torch\nfrom torch.utils.data import DataLoader\n"
        "from transformers import AutoModelForSequenceClassification, AutoTokenizer, get_linear_schedule_with_warmup\n\n"
        f"{seed}tokenizer = AutoTokenizer.from_pretrained({n['ckpt']!r})\n"
    )


def _objects(n: dict[str, str], indent: str = "") -> str:
    lines = [
        f"{n['model']} = AutoModelForSequenceClassification.from_pretrained({n['ckpt']!r}, num_labels={n['labels']})",
        f"{n['opt']} = torch.optim.AdamW({n['model']}.parameters(), lr={n['lr']})",
        f"{n['loader']} = DataLoader(train_set, batch_size=16, shuffle={n['shuffle']})",
        f"{n['val']} = DataLoader(val_set, batch_size=32)",
        f"{n['sched']} = get_linear_schedule_with_warmup({n['opt']}, 100, 1000)",
    ]
    return "\n".join(indent + line for line in lines) + "\n"


def style_top_level(n: dict[str, str], rng: random.Random) -> str:
    train_mode = "" if rng.random() < 0.1 else f"    {n['model']}.train()\n"
    return (_preamble(n, rng) + _objects(n) + "\n\n" + _evaluate(n, rng) + "\n\n" + _helpers(rng) + "\n\n"
            f"for epoch in range({n['epochs']}):\n{train_mode}    total_loss = 0.0\n"
            f"    for {n['batch']} in {n['loader']}:\n{_train_steps(n, rng, '        ')}\n"
            f"    print(epoch, total_loss, evaluate({n['model']}, {n['val']}))\n")


def style_functions(n: dict[str, str], rng: random.Random) -> str:
    return (_preamble(n, rng) + "\n\n" + _helpers(rng) + "\n\n" + _evaluate(n, rng) + "\n\n"
            f"def train_one_epoch({n['model']}, {n['loader']}, {n['opt']}, {n['sched']}):\n"
            f"    {n['model']}.train()\n    total_loss = 0.0\n"
            f"    for {n['batch']} in {n['loader']}:\n{_train_steps(n, rng, '        ')}\n    return total_loss\n\n\n"
            f"def main():\n{_objects(n, '    ')}    for epoch in range({n['epochs']}):\n"
            f"        train_one_epoch({n['model']}, {n['loader']}, {n['opt']}, {n['sched']})\n"
            f"        print(evaluate({n['model']}, {n['val']}))\n\n\n"
            'if __name__ == "__main__":\n    main()\n')


def style_class(n: dict[str, str], rng: random.Random) -> str:
    body = textwrap.indent(_train_steps(n, rng, ""), " " * 16).replace(f"{n['model']}(", f"self.{n['model']}(")
    body = body.replace(f"{n['opt']}.", f"self.{n['opt']}.").replace(f"{n['sched']}.", f"self.{n['sched']}.")
    return (_preamble(n, rng) + "\n\n" + _helpers(rng) + "\n\n"
            f"class Finetuner:\n    def __init__(self, train_set, val_set):\n"
            + textwrap.indent(_objects(n), " " * 8).replace(f"{n['model']} =", f"self.{n['model']} =")
            .replace(f"{n['opt']} =", f"self.{n['opt']} =").replace(f"{n['sched']} =", f"self.{n['sched']} =")
            .replace(f"({n['model']}.", f"(self.{n['model']}.").replace(f"({n['opt']},", f"(self.{n['opt']},")
            .replace(f"{n['loader']} =", f"self.{n['loader']} =")
            + f"\n    def fit(self):\n        self.{n['model']}.train()\n        total_loss = 0.0\n"
            f"        for epoch in range({n['epochs']}):\n            for {n['batch']} in self.{n['loader']}:\n{body}\n"
            "        return total_loss\n")


def style_trainer(n: dict[str, str], rng: random.Random) -> str:
    strategy = rng.choice([("epoch", "epoch"), ("steps", "steps"), ("epoch", "steps")])
    return (
        '"""Fine-tune with the Trainer (generated benchmark script)."""\n'
        "from transformers import AutoModelForSequenceClassification, AutoTokenizer, Trainer, TrainingArguments, set_seed\n\n"
        "set_seed(42)\n"
        f"tokenizer = AutoTokenizer.from_pretrained({n['ckpt']!r})\n"
        f"{n['model']} = AutoModelForSequenceClassification.from_pretrained({n['ckpt']!r}, num_labels={n['labels']})\n"
        f"args = TrainingArguments(\n    output_dir='out',\n    learning_rate={n['lr']},\n    num_train_epochs={n['epochs']},\n"
        f"    eval_strategy={strategy[0]!r},\n    save_strategy={strategy[1]!r},\n    load_best_model_at_end=True,\n)\n"
        f"trainer = Trainer(model={n['model']}, args=args, train_dataset=dataset['train'],\n"
        f"                  eval_dataset=dataset[{rng.choice(['validation', 'validation', 'train'])!r}])\n"
        "trainer.train()\n\n\n" + _helpers(rng) + "\n"
    )


def style_accelerate(n: dict[str, str], rng: random.Random) -> str:
    steps = _train_steps(n, rng, "        ").replace("loss.backward()", "accelerator.backward(loss)")
    return (_preamble(n, rng) + "from accelerate import Accelerator\n\naccelerator = Accelerator()\n" + _objects(n)
            + f"{n['model']}, {n['opt']}, {n['loader']} = accelerator.prepare({n['model']}, {n['opt']}, {n['loader']})\n"
            f"{n['model']}.train()\nfor epoch in range({n['epochs']}):\n    total_loss = 0.0\n"
            f"    for {n['batch']} in {n['loader']}:\n{steps}\n\n\n" + _helpers(rng) + "\n")


STYLES = [style_top_level, style_functions, style_class, style_trainer, style_accelerate]


def _break_a_line(source: str, rng: random.Random) -> str:
    """A few files carry an editing accident (often a syntax error), as real trees do."""
    lines = source.splitlines()
    i = rng.randrange(len(lines))
    lines[i] = lines[i][: rng.randrange(max(1, len(lines[i])))]
    return "\n".join(lines) + "\n"


def generate_corpus(dest: Path = CORPUS, count: int = 1200, seed: int = 0) -> list[Path]:
    """Write ``count`` generated scripts (and a few notebooks) under ``dest``; same seed, same corpus."""
    rng = random.Random(seed)
    dest.mkdir(parents=True, exist_ok=True)
    paths = []
    for index in range(count):
        names = _names(rng)
        source = rng.choice(STYLES)(names, rng)
        if rng.random() < 0.03:
            source = _break_a_line(source, rng)
        folder = dest / f"project_{index // 100:02d}"
        folder.mkdir(exist_ok=True)
        if index % 50 == 49:
            path = folder / f"notebook_{index:04d}.ipynb"
            cells = [{"cell_type": "code", "metadata": {}, "outputs": [], "execution_count": None,
                      "source": "%pip install transformers\n"}]
            cells += [{"cell_type": "code", "metadata": {}, "outputs": [], "execution_count": None, "source": chunk}
                      for chunk in source.split("\n\n\n")]
            path.write_text(json.dumps({"nbformat": 4, "nbformat_minor": 5, "metadata": {}, "cells": cells}))
        else:
            path = folder / f"train_{index:04d}.py"
            path.write_text(source)
        paths.append(path)
    return paths


# -------------------------------------------------------------------------------------------- timing


def _installed_like_env() -> dict[str, str]:
    """Child environment with bytecode caching on, as after `pip install` (which compiles .pyc).

    Without it (PYTHONDONTWRITEBYTECODE set), every cold start recompiles ftdoctor
    from source and measures the compiler, not the checker. Caches go to
    benchmarks/out/pycache (git-ignored), never into the source tree.
    """
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    env["PYTHONPYCACHEPREFIX"] = str(REPO / "benchmarks" / "out" / "pycache")
    return env


def _time_command(args: list[str], repeat: int, cwd: Path) -> tuple[list[float], list[float]]:
    """Wall and CPU seconds (user + system of the child) per run, after one warm-up run.

    CPU time barely moves when other work shares the machine; wall time does.
    """
    env = _installed_like_env()
    subprocess.run(args, cwd=cwd, capture_output=True, check=False, env=env)  # warm the bytecode and OS caches
    walls, cpus = [], []
    for _ in range(repeat):
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        started = time.perf_counter()
        subprocess.run(args, cwd=cwd, capture_output=True, check=False, env=env)
        walls.append(time.perf_counter() - started)
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpus.append((after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime))
    return walls, cpus


def _in_process(files: list[Path], parallel: bool, engine_stub: bool = False) -> tuple[float, float, int]:
    """Wall seconds, CPU seconds (this process and its workers) and findings of one check_files call."""
    from ftdoctor.settings import Settings
    from ftdoctor.static import checker
    from ftdoctor.sources import SourceFile

    real_engine = checker._engine
    if engine_stub:  # only ast.parse: what the surface (read, decode, suppressions, pool) costs by itself
        checker._engine = lambda: _parse_only  # type: ignore[assignment]
    try:
        sources = [SourceFile(path, path.name) for path in files]
        cpu_before = _cpu_seconds()
        started = time.perf_counter()
        report = checker.check_files(sources, Settings(), parallel=parallel)
        return time.perf_counter() - started, _cpu_seconds() - cpu_before, len(report.findings)
    finally:
        checker._engine = real_engine  # type: ignore[assignment]


def _parse_only(source: str, path: str, settings: object = None) -> list:
    import ast

    try:
        ast.parse(source)
    except (SyntaxError, ValueError, RecursionError):
        pass
    return []


def _cpu_seconds() -> float:
    own = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def _heavy_modules_after_check(one: Path) -> list[str]:
    probe = (
        "import sys\nfrom ftdoctor.cli import main\n"
        f"sys.argv = ['ftdoctor', 'check', '-q', '-o', {os.devnull!r}, {str(one)!r}]\n"
        "try:\n    main()\nexcept SystemExit:\n    pass\n"
        f"print('HEAVY=' + ','.join(sorted(m for m in sys.modules if m.split('.')[0] in {HEAVY!r})))\n"
    )
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, cwd=REPO, env=_installed_like_env()).stdout
    return [m for m in out.split("HEAVY=")[-1].strip().split(",") if m]


# ------------------------------------------------------------------------------------------ project


def _source_env(source: Path) -> dict[str, str]:
    """Child environment that imports ftdoctor from ``source`` (run from outside it: ``-m`` puts the cwd first)."""
    env = _installed_like_env()
    env["PYTHONPATH"] = str(source)
    return env


def _run_timed(args: list[str], cwd: Path, env: dict[str, str]) -> tuple[float, float]:
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    subprocess.run(args, cwd=cwd, capture_output=True, check=False, env=env)
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def bench_project(project: Path, baseline: Path | None, changed: str | None, repeat: int, repeat_one: int,
                  torchfix: Path | None = None) -> None:
    """Full and single-file checks of a real project, this ftdoctor against ``baseline`` (and TorchFix) side by side."""
    python = sys.executable
    with tempfile.TemporaryDirectory(prefix="ftdoctor-bench-") as scratch:
        copy = Path(scratch) / project.name
        shutil.copytree(project, copy, symlinks=True, ignore=shutil.ignore_patterns(".git", ".ftdoctor_cache"))
        (copy / ".git").mkdir(exist_ok=True)  # keep the project root where the checkout has it
        sources = sorted(p for p in copy.rglob("*.py") if p.name != "__init__.py" and "/." not in p.as_posix())
        one = copy / changed if changed else sources[len(sources) // 2]
        files = sum(1 for p in copy.rglob("*") if p.suffix in (".py", ".ipynb"))
        cache = copy / ".ftdoctor_cache"
        full = [python, "-m", "ftdoctor", "check", ".", "-q", "--fail-on", "never", "-o", os.devnull]
        single = [python, "-m", "ftdoctor", "check", str(one.relative_to(copy)), "-q", "--fail-on", "never", "-o", os.devnull]
        ours, theirs = _source_env(REPO), _source_env(baseline) if baseline else None
        runs: dict[str, list[tuple[float, float]]] = {}

        def record(label: str, args: list[str], env: dict[str, str]) -> None:
            runs.setdefault(label, []).append(_run_timed(args, copy, env))

        subprocess.run(full, cwd=copy, capture_output=True, env=ours)  # warm bytecode and the OS file cache
        if theirs is not None:
            subprocess.run(full, cwd=copy, capture_output=True, env=theirs)
        for _ in range(repeat):  # interleaved, so a change in machine load hits every variant alike
            if theirs is not None:
                record("baseline full check", full, theirs)
            shutil.rmtree(cache, ignore_errors=True)
            record("cold full check (cache empty)", full, ours)
            record("cached full check", full, ours)
            record("full check --no-cache", [*full, "--no-cache"], ours)
            if torchfix is not None:  # its exit status says whether it found something: only the time matters
                record("torchfix full project", [str(torchfix), "."], dict(os.environ))
        original = one.read_text(encoding="utf-8")
        try:
            for index in range(repeat_one):
                one.write_text(original + f"\n# edit {index}\n", encoding="utf-8")  # a changed file, as pre-commit sees it
                if theirs is not None:
                    record("baseline single changed file", single, theirs)
                record("single changed file, cache warm", single, ours)
        finally:
            one.write_text(original, encoding="utf-8")
        load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")

    def median(label: str, index: int) -> float:
        return statistics.median(run[index] for run in runs[label])

    print(f"project {project.name}: {files} files; changed file {one.relative_to(copy)}; load {load:.1f}; "
          f"{repeat} full / {repeat_one} single runs (medians)")
    width = max(len(label) for label in runs)
    for label in runs:
        print(f"  {label:<{width}}  wall {median(label, 0):6.2f} s   CPU {median(label, 1):6.2f} s")
    cold = median("cold full check (cache empty)", 1)
    single_wall, single_cpu = median("single changed file, cache warm", 0), median("single changed file, cache warm", 1)
    # on a busy machine wall time measures the queue for a CPU; the CPU figure is what a quiet one would show
    targets = [("cached single changed file < 0.25 s: wall", single_wall < 0.25), ("CPU", single_cpu < 0.25)]
    if theirs is not None:
        base = median("baseline full check", 1)
        print(f"  cold / baseline full check CPU: {cold / base:.2f}x; cached / baseline: "
              f"{median('cached full check', 1) / base:.2f}x")
        targets.append(("cold full check no slower than baseline (CPU)", cold <= base * 1.02))
    if torchfix is not None:
        ratio = median("torchfix full project", 0) / median("cold full check (cache empty)", 0)
        print(f"  torchfix / cold full check wall time: {ratio:.1f}x")
        targets.append(("at least 10x faster than TorchFix (wall, cold)", ratio >= 10))
    print("targets: " + "; ".join(f"{name}: {'met' if ok else 'MISSED'}" for name, ok in targets))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--files", type=int, default=1200, help="corpus size (default 1200)")
    parser.add_argument("--repeat", type=int, default=11, help="cold single-file runs (median reported)")
    parser.add_argument("--regenerate", action="store_true", help="rewrite the corpus even if present")
    parser.add_argument("--project", type=Path, default=os.environ.get("FTDOCTOR_BENCH_PROJECT"),
                        help="a real project to time whole-project checks on [env FTDOCTOR_BENCH_PROJECT]")
    parser.add_argument("--project-file", default=None,
                        help="the changed file for the single-file timing, relative to --project")
    parser.add_argument("--project-repeat", type=int, default=3, help="full-project runs per variant (median)")
    parser.add_argument("--baseline", type=Path, default=os.environ.get("FTDOCTOR_BENCH_BASELINE"),
                        help="another ftdoctor source tree to time side by side [env FTDOCTOR_BENCH_BASELINE]")
    parser.add_argument("--skip-corpus", action="store_true", help="only the --project timings")
    parser.add_argument("--torchfix", type=Path, default=os.environ.get("FTDOCTOR_BENCH_TORCHFIX"),
                        help="a `torchfix` executable (its own venv) to time on --project side by side "
                             "[env FTDOCTOR_BENCH_TORCHFIX]")
    options = parser.parse_args()

    if options.project is not None and not Path(options.project).is_dir():
        print(f"project {options.project}: not found, project timings skipped")
    elif options.project is not None:
        bench_project(Path(options.project).resolve(), Path(options.baseline).resolve() if options.baseline else None,
                      options.project_file, options.project_repeat, options.repeat,
                      Path(options.torchfix) if options.torchfix else None)
    else:
        print("no --project (or FTDOCTOR_BENCH_PROJECT): project timings skipped")
    if options.skip_corpus:
        return

    existing = sorted(CORPUS.rglob("*.py")) + sorted(CORPUS.rglob("*.ipynb")) if CORPUS.exists() else []
    if options.regenerate or len(existing) != options.files:
        if CORPUS.exists():
            for path in existing:
                path.unlink()
        files = generate_corpus(CORPUS, options.files)
    else:
        files = existing
    one = next(path for path in sorted(files) if path.suffix == ".py")
    python = sys.executable
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()

    cli_walls, cli_cpus = _time_command([python, "-m", "ftdoctor", "check", "--format", "json", "-o", os.devnull, str(CORPUS)], 3, REPO)
    cli_wall, cli_cpu = statistics.median(cli_walls), statistics.median(cli_cpus)
    report = json.loads(subprocess.run([python, "-m", "ftdoctor", "check", "--format", "json", str(CORPUS)],
                                       capture_output=True, text=True, cwd=REPO).stdout)
    serial_wall, serial_cpu, _ = _in_process(files, parallel=False)
    parallel_wall, parallel_cpu, _ = _in_process(files, parallel=True)
    stub_wall, stub_cpu, _ = _in_process(files, parallel=False, engine_stub=True)
    cold_walls, cold_cpus = _time_command([python, "-m", "ftdoctor", "check", "-q", str(one)], options.repeat, REPO)
    bare_walls, bare_cpus = _time_command([python, "-c", "pass"], options.repeat, REPO)
    import_walls, import_cpus = _time_command([python, "-c", "import ftdoctor.cli"], options.repeat, REPO)
    cold, bare = statistics.median(cold_walls), statistics.median(bare_walls)
    heavy = _heavy_modules_after_check(one)
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    n = len(files)

    def rate(seconds: float) -> str:
        return f"{n / seconds:.0f} files/s"

    def ms(values: list[float]) -> str:
        return f"{statistics.median(values) * 1000:.0f} ms"

    rows = [
        ("corpus", f"{n} files ({sum(p.suffix == '.ipynb' for p in files)} notebooks), {cpus} CPUs, load {load:.1f}"),
        ("findings in corpus", f"{len(report['findings'])} {report['summary']}"),
        ("files with a parse-error", str(sum(f['rule'] == 'parse-error' for f in report['findings']))),
        ("CLI, whole corpus (median of 3)", f"wall {cli_wall:.2f} s = {rate(cli_wall)}; CPU {cli_cpu:.2f} s = {rate(cli_cpu)} per CPU"),
        ("in-process serial", f"wall {serial_wall:.2f} s = {rate(serial_wall)}; CPU {serial_cpu:.2f} s"),
        ("in-process parallel", f"wall {parallel_wall:.2f} s = {rate(parallel_wall)} ({serial_wall / parallel_wall:.2f}x serial); CPU {parallel_cpu:.2f} s"),
        ("surface only (engine = ast.parse)", f"wall {stub_wall:.2f} s = {rate(stub_wall)}; CPU {stub_cpu:.2f} s"),
        (f"cold single file (median of {options.repeat})", f"wall {ms(cold_walls)}; CPU {ms(cold_cpus)}"),
        ("python -c pass", f"wall {ms(bare_walls)}; CPU {ms(bare_cpus)}"),
        ("python -c 'import ftdoctor.cli'", f"wall {ms(import_walls)}; CPU {ms(import_cpus)}"),
        ("cold check minus bare interpreter", f"wall {(cold - bare) * 1000:.0f} ms"),
        ("heavy modules imported by check", ", ".join(heavy) or "none (torch, transformers, datasets absent)"),
    ]
    width = max(len(label) for label, _ in rows)
    print(f"ftdoctor check benchmark — Python {sys.version.split()[0]}")
    for label, value in rows:
        print(f"  {label:<{width}}  {value}")
    targets = [("cold single file < 0.25 s", cold < 0.25), (">= 500 files/s (CLI wall)", n / cli_wall >= 500),
               ("no heavy import", not heavy)]
    print("targets: " + "; ".join(f"{name}: {'met' if ok else 'MISSED'}" for name, ok in targets))


if __name__ == "__main__":
    main()
