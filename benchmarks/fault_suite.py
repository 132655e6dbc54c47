"""The seeded-fault suite: does every runtime rule catch its fault, name it first, and stay quiet on clean runs?

Every runtime rule's fault is seeded into tiny fine-tunes — the doctor's test harness
(``tests/runtime/harness.py``: random-init tiny BERT, generated data, a plain custom loop under
``ftdoctor.watch``) and the reference runner (``ftdoctor run``'s loop on ``builtin:tiny`` with its ``inject:``
mistakes and faulty configs) — at up to three severities where the fault has a size, over three seeds, next to
a matrix of clean runs. It prints detection recall, top-1 root-cause accuracy, false alarms on clean runs, and
the median steps and seconds to detection per rule, against the bars: recall >= 95 %, root cause >= 90 %,
zero clean false alarms. Everything runs on CPU.

    python benchmarks/fault_suite.py            # full suite (a few minutes on 2 cores)
    python benchmarks/fault_suite.py --quick    # one seed, named severities, short runs
    python benchmarks/fault_suite.py --output benchmarks/results/fault_suite.md

Definitions (benchmarks/README.md): a fault run is *detected* when its rule is among the run's findings; its
*root cause is right* when the first warning-or-error finding — ordered by the step it was established, then
severity (error first), then the order found — is that rule; a clean run *false-alarms* when it has any
warning-or-error finding. Seconds to detection are wall time from entering ``ftdoctor.watch`` to the moment
the doctor established the finding.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import importlib.util
import os
import platform
import re
import statistics
import sys
import time
import traceback
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator, Sequence

REPO = Path(__file__).resolve().parent.parent
HARNESS = REPO / "tests" / "runtime" / "harness.py"
SCRIPT = REPO / "benchmarks" / "fault_script.py"
LOUD = ("warning", "error")
BARS = {"recall": 0.95, "root_cause": 0.90, "clean_false_alarms": 0}

# --------------------------------------------------------------------------------------------- the cases


@dataclass(frozen=True)
class Case:
    """One seeded fault (``rule`` = the runtime rule that must diagnose it) or one clean run (``rule`` None)."""

    name: str
    rule: str | None
    driver: str  # "harness" (harness Spec knobs), "runner" (RunConfig overrides) or "script" (fault_script args)
    knobs: tuple[tuple[str, Any], ...]
    severity: str = ""  # "mild" | "named" | "strong" where the fault has a size; "" where it has none

    @property
    def settings(self) -> dict[str, Any]:
        return dict(self.knobs)


# The harness's correct run: lr 1e-3 (random-init tiny BERT), evaluation every 10 optimizer steps.
HARNESS_BASE = {"steps": 60, "eval_every": 10}
HARNESS_LR = 1e-3
# The runner on builtin:tiny + builtin:reviews; its tiny model is random-init, hence the higher clean lr. Batches of
# 32: on the bundled reviews (label noise, mixed reviews) batches of 16 leave the tiny model at chance for 60 steps.
RUNNER_BASE = {"model": "builtin:tiny", "max_steps": 60, "eval_every": 20, "batch_size": 32, "learning_rate": 1e-3}
SEVERITIES = ("mild", "named", "strong")


def harness_case(rule: str | None, name: str, severity: str = "", **knobs: Any) -> Case:
    return Case(name, rule, "harness", tuple(sorted({**HARNESS_BASE, **knobs}.items())), severity)


def script_case(rule: str | None, name: str, **args: Any) -> Case:
    return Case(name, rule, "script", tuple(sorted({"steps": 30, **args}.items())))


def runner_case(rule: str | None, name: str, severity: str = "", **overrides: Any) -> Case:
    return Case(name, rule, "runner", tuple(sorted({**RUNNER_BASE, **overrides}.items())), severity)


def sized(rule: str, knob: str, sizes: dict[str, Any], **fixed: Any) -> list[Case]:
    """Three harness cases of one fault, mild -> named -> strong; ``sizes`` maps each case's name to its value."""
    return [
        harness_case(rule, name, severity, **{knob: value}, **fixed)
        for severity, (name, value) in zip(SEVERITIES, sizes.items())
    ]


def fault_cases() -> list[Case]:
    """Every runtime rule's seeded fault. Sizes: the fault as usually met is "named"; one milder, one stronger."""
    lr, case = HARNESS_LR, harness_case
    return [
        case("grads-accumulating", "optimizer.zero_grad() never called", skip_zero_grad=True),
        *sized("lr-too-high", "lr", {"lr x30": lr * 30, "lr x100": lr * 100, "lr x300": lr * 300}),
        *sized("lr-too-low", "lr", {"lr /100": lr / 100, "lr /1000": lr / 1000, "lr /10000": lr / 10000}),
        *sized("overfitting-gap", "n_train", {f"{n} training examples, 120 steps": n for n in (64, 32, 16)},
               steps=120),
        case("label-out-of-range", "labels shifted by +1", label_shift=1),
        *sized("label-count-mismatch", "num_labels", {f"num_labels={n} for 2 classes": n for n in (3, 5, 10)},
               data_classes=2, give_datasets=True),
        case("label-type-mismatch", "float labels", float_labels=True),
        case("label-type-mismatch", "one-hot labels", one_hot_labels=True),
        *sized("class-imbalance", "imbalance", {f"{p:.0%} of labels are class 0": p for p in (0.9, 0.95, 0.99)},
               give_datasets=True),
        case("head-output-mismatch", "head as wide as the hidden size", head_width=32),
        case("head-output-mismatch", "3-way head for 2 labels", head_width=3),
        case("dead-parameters", "head never called by forward", orphan_head=True),
        case("params-not-in-optimizer", "head missing from the optimizer", head_not_in_optimizer=True),
        case("no-trainable-params", "everything frozen", freeze_all=True),
        case("non-finite-loss", "NaN weight injected at step 5", nan_at_step=5),
        *sized("exploding-gradients", "loss_scale_growth", {f"loss scaled by {g}**step": g for g in (1.2, 1.5, 2.0)}),
        case("dropout-in-eval", "evaluation without model.eval()", eval_without_eval_mode=True),
        case("eval-with-grad", "evaluation with autograd on", eval_with_grad=True),
        *sized("train-val-overlap", "val_overlap", {f"{p:.0%} of validation copied from train": p
                                                    for p in (0.1, 0.3, 1.0)}, give_datasets=True),
        case("unshuffled-batches", "label-sorted data, not shuffled", sorted_data=True),
        case("softmax-before-loss", "CrossEntropyLoss(softmax(logits))", softmax_before_loss=True),
        case("weight-decay-out-of-range", "AdamW weight_decay=64", weight_decay=64.0),
        case("prediction-collapse", "CrossEntropyLoss(weight=[1, 0]): class 1 never counts", class_weights=(1.0, 0.0),
             steps=100),
        case("eval-nondeterministic", "a head dropout calling F.dropout(training=True)", always_dropout=True),
        case("optimizer-recreated-in-loop", "a new AdamW every 10 steps", recreate_optimizer_every=10),
        case("missing-attention-mask", "padded batches, no attention_mask", padded=True, no_attention_mask=True),
        case("missing-train-mode", "the loop never calls model.train()", train_in_eval_mode=True),
        case("random-init-not-pretrained", "model built from a config loaded from the checkpoint",
             checkpoint="config"),
        case("head-not-trained", "from_pretrained encoder, only one layer trains (PEFT without task_type)",
             checkpoint="encoder", lr=1e-4, train_only=("bert.encoder.layer.1.",)),
        *[runner_case(rule, f"runner inject: {mistake}", inject=(mistake,)) for mistake, rule in RUNNER_INJECTS],
        runner_case("lr-too-high", "runner config: learning_rate x100",
                    learning_rate=RUNNER_BASE["learning_rate"] * 100),
        runner_case("lr-too-low", "runner config: learning_rate /1000",
                    learning_rate=RUNNER_BASE["learning_rate"] / 1000),
        runner_case("label-count-mismatch", "runner config: num_labels 5 for 2 classes", num_labels=5),
        script_case("script-crashed", "user script raises KeyError after 3 steps", crash_at=3),
        script_case("label-out-of-range", "user script: labels +1 (cross-entropy IndexError)", label_shift=1),
    ]


RUNNER_INJECTS = (
    ("skip-zero-grad", "grads-accumulating"),
    ("orphan-head", "dead-parameters"),
    ("softmax-before-loss", "softmax-before-loss"),
    ("no-eval-mode", "dropout-in-eval"),
    ("freeze-all", "no-trainable-params"),
)


def clean_cases() -> list[Case]:
    """Correct runs that must produce no warning-or-error finding (seeds are added by the suite)."""
    return [
        harness_case(None, "keyword data"),
        harness_case(None, "majority data", dataset="majority"),
        harness_case(None, "3 classes", num_labels=3),
        harness_case(None, "frozen encoder, head trains", freeze_encoder=True),
        harness_case(None, "gradient accumulation x4", accumulation_steps=4),
        harness_case(None, "model.zero_grad()", zero_grad_via="model"),
        harness_case(None, "p.grad = None", zero_grad_via="set_to_none_manually"),
        harness_case(None, "eval inside doctor.evaluation()", eval_bracket="context"),
        harness_case(None, "datasets handed to the doctor", give_datasets=True),
        harness_case(None, "external CrossEntropyLoss", external_loss=True),
        harness_case(None, "SGD lr 0.05", optimizer="sgd", lr=0.05),
        harness_case(None, "padded batches with their attention_mask", padded=True),
        harness_case(None, "from_pretrained encoder, full fine-tune at lr 1e-4", checkpoint="encoder", lr=1e-4),
        harness_case(None, "from_pretrained encoder, one layer and the new head train", checkpoint="encoder",
                     lr=1e-4, train_only=("bert.encoder.layer.1.", "classifier.")),
        runner_case(None, "runner default on builtin:tiny"),
        script_case(None, "user script, correct"),
    ]


#: Steps within which each rule must be established (issue 3), counted from the fault's onset.
#: "eval" = the first evaluation; None = no bound stated (reported, not judged).
WINDOWS: dict[str, int | str | None] = {
    **dict.fromkeys(
        ["label-out-of-range", "label-count-mismatch", "label-type-mismatch", "class-imbalance",
         "head-output-mismatch", "params-not-in-optimizer", "no-trainable-params", "train-val-overlap",
         "weight-decay-out-of-range", "head-not-trained", "random-init-not-pretrained", "missing-attention-mask"], 0),
    "non-finite-loss": 1,
    "grads-accumulating": 3,
    "missing-train-mode": 3,
    "optimizer-recreated-in-loop": 10,  # the first rebuild
    "dead-parameters": 3,
    "lr-too-high": 50,
    "lr-too-low": 50,
    "exploding-gradients": 50,
    "dropout-in-eval": "eval",
    "eval-nondeterministic": "eval",
    "eval-with-grad": "eval",
    "overfitting-gap": None,
    "unshuffled-batches": None,
    "softmax-before-loss": None,
    "prediction-collapse": 100,  # DoctorOptions.collapse_after_steps: a one-class start is normal before it
    "script-crashed": None,
}


def window_limit(case: Case) -> int | None:
    """The last step at which the case's rule still counts as in its window (None: no bound)."""
    window = WINDOWS.get(case.rule or "")
    knobs = case.settings
    if window == "eval":
        return int(knobs.get("eval_every", 0))
    if window is None:
        return None
    return int(window) + int(knobs.get("nan_at_step") or 0)


# --------------------------------------------------------------------------------------------- running


@dataclass
class Observed:
    """One finding of a run, with the wall seconds from entering ftdoctor.watch to its establishment."""

    rule: str
    severity: str
    step: int
    seconds: float | None
    order: int


@dataclass
class Outcome:
    case: Case
    seed: int
    findings: list[Observed] = field(default_factory=list)
    error: str | None = None  # the suite could not run the case (not: the training crashed, which is expected)
    wall: float = 0.0

    @property
    def loud(self) -> list[Observed]:
        """Warning-or-error findings, first cause first: by step, then severity, then order found."""
        loud = [f for f in self.findings if f.severity in LOUD]
        return sorted(loud, key=lambda f: (f.step, -LOUD.index(f.severity), f.order))

    def found(self, rule: str) -> Observed | None:
        return next((f for f in self.findings if f.rule == rule), None)

    @property
    def detected(self) -> bool:
        return self.case.rule is not None and self.found(self.case.rule) is not None

    @property
    def root_cause_right(self) -> bool:
        return bool(self.loud) and self.loud[0].rule == self.case.rule

    @property
    def in_window(self) -> bool:
        hit, limit = self.found(self.case.rule or ""), window_limit(self.case)
        return hit is not None and (limit is None or hit.step <= limit)


@contextlib.contextmanager
def finding_clock() -> Iterator[dict[str, float]]:
    """Wraps ``ftdoctor.watch`` so that every doctor created meanwhile timestamps its findings.

    Yields ``{slug: seconds from entering watch() to the finding's establishment}`` (first time per slug).
    """
    import ftdoctor

    original = ftdoctor.watch  # the lazily imported runtime API
    stamps: dict[str, float] = {}

    def timed_watch(*args: Any, **kwargs: Any) -> Any:
        started = time.perf_counter()
        doctor = original(*args, **kwargs)
        doctor.on_finding.append(lambda f: stamps.setdefault(f.rule, time.perf_counter() - started))
        return doctor

    ftdoctor.watch = timed_watch
    try:
        yield stamps
    finally:
        del ftdoctor.watch  # back to the module's lazy __getattr__


def run_case(case: Case, seed: int, steps_cap: int | None = None) -> Outcome:
    """Run one case under the finding clock; never raises (a failure of the suite itself is ``error``)."""
    outcome = Outcome(case, seed)
    started = time.perf_counter()
    try:
        with finding_clock() as stamps:
            findings = DRIVERS[case.driver](case.settings, seed, steps_cap)
        outcome.findings = [
            Observed(f.rule, f.severity.value, int(f.step or 0), stamps.get(f.rule), order)
            for order, f in enumerate(findings)
        ]
    except Exception as exc:  # noqa: BLE001 - reported in the results, never hidden
        outcome.error = f"{type(exc).__name__}: {exc}".splitlines()[0][:200]
        if os.environ.get("FTDOCTOR_DEBUG"):
            traceback.print_exc()
    outcome.wall = time.perf_counter() - started
    return outcome


def _load_harness() -> Any:
    if "ftdoctor_bench_harness" not in sys.modules:
        spec = importlib.util.spec_from_file_location("ftdoctor_bench_harness", HARNESS)
        module = importlib.util.module_from_spec(spec)  # type: ignore[arg-type]
        sys.modules[spec.name] = module  # type: ignore[union-attr]
        spec.loader.exec_module(module)  # type: ignore[union-attr]
    return sys.modules["ftdoctor_bench_harness"]


def drive_harness(knobs: dict[str, Any], seed: int, steps_cap: int | None) -> list[Any]:
    """The doctor's test harness; a crash of the training is recorded on the doctor, not raised."""
    module = _load_harness()
    if steps_cap:
        knobs = {**knobs, "steps": min(knobs["steps"], steps_cap)}
    return module.train(module.Spec(seed=seed, **knobs)).findings


def drive_runner(knobs: dict[str, Any], seed: int, steps_cap: int | None) -> list[Any]:
    """The reference fine-tune of ``ftdoctor run --config``, from a config built of ``knobs``."""
    import torch

    from ftdoctor.runner.config import RunConfig
    from ftdoctor.runner.display import make_display
    from ftdoctor.runner.train import run_reference
    from ftdoctor.settings import Settings

    torch.set_num_threads(1)  # like the harness: comparable seconds, no contention between workers
    knobs = dict(knobs)
    top = {key: knobs.pop(key) for key in ("model", "num_labels", "inject") if key in knobs}
    top["inject"] = list(top.get("inject", ()))
    if steps_cap:
        knobs["max_steps"] = min(knobs["max_steps"], steps_cap)
    config = RunConfig(**top, train={**knobs, "seed": seed})
    with open(os.devnull, "w") as quiet:
        result = run_reference(config, settings=Settings(), display=make_display(quiet=True, stream=quiet))
    return result.report.findings


def drive_script(knobs: dict[str, Any], seed: int, steps_cap: int | None) -> list[Any]:
    """``ftdoctor run benchmarks/fault_script.py -- ARGS``: a user's script with the doctor injected."""
    from ftdoctor.runner.script import diagnose_script

    steps = min(knobs["steps"], steps_cap) if steps_cap else knobs["steps"]
    args = ["--steps", str(steps), "--seed", str(seed)]
    args += [f"--{key.replace('_', '-')}={value}" for key, value in knobs.items() if key != "steps"]
    with open(os.devnull, "w") as quiet, contextlib.redirect_stdout(quiet), contextlib.redirect_stderr(quiet):
        return diagnose_script(SCRIPT, args).findings


DRIVERS: dict[str, Callable[[dict[str, Any], int, int | None], list[Any]]] = {
    "harness": drive_harness,
    "runner": drive_runner,
    "script": drive_script,
}


def run_all(jobs: list[tuple[Case, int]], steps_cap: int | None, workers: int) -> list[Outcome]:
    """Every (case, seed); in ``workers`` spawned processes when > 1 (seconds then include their contention)."""
    if workers <= 1:
        return [_progress(run_case(case, seed, steps_cap), i, len(jobs)) for i, (case, seed) in enumerate(jobs)]
    with ProcessPoolExecutor(workers, mp_context=_spawn()) as pool:
        futures = [pool.submit(run_case, case, seed, steps_cap) for case, seed in jobs]
        return [_progress(f.result(), i, len(jobs)) for i, f in enumerate(futures)]


def _spawn() -> Any:
    import multiprocessing

    return multiprocessing.get_context("spawn")  # forking a process that holds torch threads can hang


def _progress(outcome: Outcome, index: int, total: int) -> Outcome:
    first = outcome.loud[0].rule if outcome.loud else "-"
    status = f"error: {outcome.error}" if outcome.error else f"first={first}"
    print(f"  [{index + 1}/{total}] {outcome.case.name} (seed {outcome.seed}): {status} "
          f"({outcome.wall:.1f} s)", file=sys.stderr, flush=True)
    return outcome


# --------------------------------------------------------------------------------------------- scoring


@dataclass
class RuleStats:
    rule: str
    runs: int = 0
    detected: int = 0
    in_window: int = 0
    root_cause: int = 0
    steps: list[int] = field(default_factory=list)
    seconds: list[float] = field(default_factory=list)


def rule_stats(outcomes: list[Outcome]) -> list[RuleStats]:
    stats: dict[str, RuleStats] = {}
    for outcome in outcomes:
        if outcome.case.rule is None:
            continue
        row = stats.setdefault(outcome.case.rule, RuleStats(outcome.case.rule))
        row.runs += 1
        row.root_cause += outcome.root_cause_right
        hit = outcome.found(outcome.case.rule)
        if hit is None:
            continue
        row.detected += 1
        row.in_window += outcome.in_window
        row.steps.append(hit.step)
        if hit.seconds is not None:
            row.seconds.append(hit.seconds)
    return list(stats.values())


@dataclass
class Totals:
    fault_runs: int
    detected: int
    root_cause: int
    clean_runs: int
    clean_false_alarms: int
    errors: int

    @property
    def recall(self) -> float:
        return self.detected / self.fault_runs if self.fault_runs else 0.0

    @property
    def root_cause_accuracy(self) -> float:
        return self.root_cause / self.fault_runs if self.fault_runs else 0.0

    def bars_met(self) -> dict[str, bool]:
        return {
            f"recall >= {BARS['recall']:.0%}": self.recall >= BARS["recall"],
            f"root cause >= {BARS['root_cause']:.0%}": self.root_cause_accuracy >= BARS["root_cause"],
            "zero clean false alarms": self.clean_false_alarms == BARS["clean_false_alarms"],
        }


def totals(outcomes: list[Outcome]) -> Totals:
    faults = [o for o in outcomes if o.case.rule is not None]
    clean = [o for o in outcomes if o.case.rule is None]
    return Totals(
        fault_runs=len(faults),
        detected=sum(o.detected for o in faults),
        root_cause=sum(o.root_cause_right for o in faults),
        clean_runs=len(clean),
        clean_false_alarms=sum(bool(o.loud) or o.error is not None for o in clean),
        errors=sum(o.error is not None for o in outcomes),
    )


# --------------------------------------------------------------------------------------------- report


def render(outcomes: list[Outcome], mode: str, seeds: Sequence[int], seconds: float) -> str:
    summary = totals(outcomes)
    lines = [
        f"# Seeded-fault suite ({mode})",
        "",
        f"- date: {datetime.date.today().isoformat()}; machine: {machine_line()}; every run on CPU",
        f"- command: `python benchmarks/fault_suite.py{'' if mode == 'full' else ' --quick'}`; "
        f"seeds {', '.join(map(str, seeds))}; suite wall time {seconds:.0f} s",
        "- models: random-init tiny BERT (hidden 32, 2 layers) — the doctor's test harness and `builtin:tiny` "
        "in the reference runner; generated data / `builtin:reviews`",
        "- definitions (detected, root cause, windows, seconds): benchmarks/README.md; `script-crashed` is "
        "established when the script ends, so it has no seconds to detection",
        "",
        "## Headline",
        "",
        f"- detection recall: **{summary.detected}/{summary.fault_runs}** fault runs ({summary.recall:.1%})",
        f"- top-1 root cause right: **{summary.root_cause}/{summary.fault_runs}** ({summary.root_cause_accuracy:.1%})",
        f"- clean runs with a warning-or-error finding: **{summary.clean_false_alarms}/{summary.clean_runs}**",
        f"- runs the suite could not complete: {summary.errors}",
        "- bars: " + "; ".join(f"{bar}: {'met' if ok else '**NOT met**'}" for bar, ok in summary.bars_met().items()),
        "",
        "## Per rule",
        "",
        _md_row(["rule", "window (steps)", "runs", "detected", "in window", "root cause right",
                 "median steps to detection", "median seconds to detection"]),
        _md_row(["---"] * 8),
    ]
    for row in sorted(rule_stats(outcomes), key=lambda r: r.rule):
        lines.append(_md_row([
            row.rule, _window_text(row.rule), str(row.runs), str(row.detected), str(row.in_window),
            str(row.root_cause), _median(row.steps, "{:g}"), _median(row.seconds, "{:.2f}"),
        ]))
    lines += ["", "## Per fault (all seeds)", "", *render_cases(outcomes)]
    lines += ["", "## Clean runs", "", *render_clean(outcomes)]
    return "\n".join(lines)


def render_cases(outcomes: list[Outcome]) -> list[str]:
    head = ["fault", "severity", "expected rule", "detected", "root cause right", "first finding when wrong"]
    lines = [_md_row(head), _md_row(["---"] * len(head))]
    for case, group in _grouped([o for o in outcomes if o.case.rule is not None]):
        wrong = sorted({_first_or_error(o) for o in group if not o.root_cause_right})
        lines.append(_md_row([case.name, case.severity or "—", case.rule or "", f"{sum(o.detected for o in group)}/"
                              f"{len(group)}", f"{sum(o.root_cause_right for o in group)}/{len(group)}",
                              ", ".join(wrong) or "—"]))
    return lines


def render_clean(outcomes: list[Outcome]) -> list[str]:
    lines = [_md_row(["clean run", "runs", "with a warning-or-error finding", "which"]), _md_row(["---"] * 4)]
    for case, group in _grouped([o for o in outcomes if o.case.rule is None]):
        noisy = [o for o in group if o.loud or o.error]
        which = sorted({f.rule for o in noisy for f in o.loud} | {f"error: {o.error}" for o in noisy if o.error})
        lines.append(_md_row([case.name, str(len(group)), str(len(noisy)), ", ".join(which) or "—"]))
    return lines


def _first_or_error(outcome: Outcome) -> str:
    if outcome.error:
        return f"error: {outcome.error}"
    return outcome.loud[0].rule if outcome.loud else "nothing"


def _grouped(outcomes: list[Outcome]) -> list[tuple[Case, list[Outcome]]]:
    groups: dict[Case, list[Outcome]] = {}
    for outcome in outcomes:
        groups.setdefault(outcome.case, []).append(outcome)
    return list(groups.items())


def _window_text(rule: str) -> str:
    window = WINDOWS.get(rule)
    if window == 0:
        return "pre-flight (0)"
    if window == "eval":
        return "first evaluation"
    if window is None:
        return "none stated"
    return f"<= {window}" + (" after onset" if rule == "non-finite-loss" else "")


def _median(values: list[float] | list[int], fmt: str) -> str:
    return fmt.format(statistics.median(values)) if values else "—"


def _md_row(cells: Sequence[str]) -> str:
    return "| " + " | ".join(cells) + " |"


def machine_line() -> str:
    cpu = platform.machine()
    with contextlib.suppress(OSError):
        names = re.findall(r"^model name\s*:\s*(.+)$", Path("/proc/cpuinfo").read_text(), re.M)
        cpu = names[0] if names else cpu
    load = "/".join(f"{x:.1f}" for x in os.getloadavg())
    return (f"{os.cpu_count()}-core CPU ({cpu}), {platform.system()}, Python {platform.python_version()}, "
            f"load average (1/5/15 min) {load} at the end")


# --------------------------------------------------------------------------------------------- main


@dataclass(frozen=True)
class Plan:
    mode: str
    seeds: tuple[int, ...]
    steps_cap: int | None
    cases: tuple[Case, ...]
    clean: tuple[Case, ...]
    clean_seeds: tuple[int, ...]

    def jobs(self) -> list[tuple[Case, int]]:
        faults = [(case, seed) for case in self.cases for seed in self.seeds]
        clean = [(case, seed) for case in self.clean for seed in self._seeds_for(case)]
        return faults + clean

    def _seeds_for(self, case: Case) -> tuple[int, ...]:
        # The two plain datasets get the wider seed sweep; the variants get the fault seeds.
        plain = case.driver == "harness" and case.name in ("keyword data", "majority data")
        return self.clean_seeds if plain else self.seeds


def full_plan() -> Plan:
    return Plan("full", (0, 1, 2), None, tuple(fault_cases()), tuple(clean_cases()), (0, 1, 2, 3, 4))


def quick_plan() -> Plan:
    """One seed, the named (or only) severity of each fault, harness cases only (about half a minute)."""
    named = tuple(c for c in fault_cases() if c.driver == "harness" and c.severity in ("", "named"))
    clean = tuple(c for c in clean_cases() if c.name in ("keyword data", "majority data"))
    return Plan("quick", (0,), None, named, clean, (0,))


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="one seed, named severities, harness only")
    parser.add_argument("--workers", type=int, default=1, help="parallel processes (seconds then share CPUs)")
    parser.add_argument("--only", help="run only cases whose rule or name contains this text")
    parser.add_argument("--output", help="also write the markdown report here")
    args = parser.parse_args(argv)
    plan = quick_plan() if args.quick else full_plan()
    jobs = [(c, s) for c, s in plan.jobs() if not args.only or args.only in f"{c.rule} {c.name}"]
    started = time.perf_counter()
    outcomes = run_all(jobs, plan.steps_cap, args.workers)
    report = render(outcomes, plan.mode, plan.seeds, time.perf_counter() - started)
    print(report)
    if args.output:
        Path(args.output).write_text(report + "\n", encoding="utf-8")
    return 0 if all(totals(outcomes).bars_met().values()) else 1


if __name__ == "__main__":
    sys.exit(main())
