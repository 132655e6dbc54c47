"""What a run report carries beyond findings and metrics, for the text, JSON and HTML views.

``Report.extra`` gets two keys: ``run`` (what was trained on what, per-class
metrics, confusion matrix, label histograms, how it ended) and ``curves``
(per-step training statistics from ``doctor.history`` and every evaluation).
Every view renders the Report and nothing else, so the HTML plots come from here.
"""

from __future__ import annotations

import math
from collections import Counter
from typing import Any

from ftdoctor.findings import Report


def run_details(prepared: Any, doctor: Any, state: Any, per_class: dict[str, Any],
                confusion: list[list[int]]) -> dict[str, Any]:
    config, splits = prepared.config, prepared.splits
    num_labels = prepared.loaded.model.config.num_labels
    label_names = [splits.label_names[i] if i < len(splits.label_names) else f"LABEL_{i}" for i in range(num_labels)]
    return {
        "run": {
            "model": config.model,
            "pretrained": prepared.loaded.pretrained,
            "data": {"train": splits.train.source, "validation": splits.validation.source,
                     "train_size": len(splits.train), "validation_size": len(splits.validation)},
            "label_names": label_names,
            "label_counts": {"train": _histogram(splits.train.labels), "validation": _histogram(splits.validation.labels)},
            "seed": config.train.seed,
            "inject": list(config.inject),
            "total_steps": prepared.total_steps,
            "seconds": round(state.seconds, 2),
            "interrupted": state.interrupted,
            "error": f"{type(state.error).__name__}: {state.error}" if state.error else None,
            "per_class": per_class,
            "confusion_matrix": confusion,
        },
        "curves": {"train": history_columns(doctor.history),
                   "evaluations": [evaluation.curve_point() for evaluation in state.evaluations]},
    }


def _histogram(labels: list[int]) -> dict[str, int]:
    return {str(label): count for label, count in sorted(Counter(labels).items())}


HISTORY_FIELDS = ("step", "loss", "lr", "grad_norm", "update_ratio")


def history_columns(history: list[Any]) -> dict[str, list[float | None]]:
    """``doctor.history`` (one record per optimizer step) as columns, non-finite values as null."""
    columns = {name: [_finite(getattr(record, name, None)) for record in history] for name in HISTORY_FIELDS}
    columns["step"] = [int(record.step) for record in history]
    return columns


def _finite(value: Any) -> float | None:
    if value is None:
        return None
    value = float(value)
    return float(f"{value:.6g}") if math.isfinite(value) else None  # 6 significant digits keep the JSON small


# ------------------------------------------------- shared by the text and HTML views


def verdict(report: Report) -> tuple[str, str]:
    """(headline, colour) — shared with the HTML report."""
    counts = report.summary()
    run = report.extra.get("run", {})
    status = report.extra.get("script", {}).get("status")
    if run.get("error") or status == "crashed":
        return "Training crashed", "red"
    if counts["error"]:
        return f"Broken fine-tune: {_count(counts['error'], 'error')}" + (
            f", {_count(counts['warning'], 'warning')}" if counts["warning"] else ""), "red"
    if counts["warning"]:
        return f"Suspicious fine-tune: {_count(counts['warning'], 'warning')}", "yellow"
    if run.get("interrupted") or status == "interrupted":
        return "Interrupted — no problem found so far", "yellow"
    return "Healthy fine-tune: no problem found", "green"


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}{'' if n == 1 else 's'}"


def context_lines(report: Report) -> list[str]:
    """Model, data, steps, time, overhead, how the run ended — shared with the HTML report."""
    run = report.extra.get("run", {})
    data = run.get("data", {})
    lines = []
    if run:
        lines.append(f"model {run['model']} · train {data.get('train')} ({data.get('train_size')} examples) · "
                     f"validation {data.get('validation')} ({data.get('validation_size')})")
        inject = f" · injected mistakes: {', '.join(run['inject'])}" if run.get("inject") else ""
        lines.append(f"{report.steps}/{run.get('total_steps')} steps in {run.get('seconds', 0):.0f}s · "
                     f"seed {run.get('seed')}{inject}")
    if report.overhead is not None:
        lines.append(f"doctor overhead {report.overhead:.1%} of step time")
    if run.get("interrupted"):
        lines.append(f"interrupted (Ctrl-C) after {report.steps} steps: this report is partial")
    if run.get("error"):
        lines.append(f"training stopped with {run['error']}")
    if "script" in report.extra:
        lines += script_lines(report.extra["script"], report.steps)
    return lines


def script_lines(script: dict[str, Any], steps: int) -> list[str]:
    """How a user's script ran under ``ftdoctor run SCRIPT.py``: what was watched, how it ended."""
    watched = "; ".join(f"{w['model']} with {' + '.join(w['optimizers'])}" for w in script.get("watched", []))
    args = "".join(f" {arg}" for arg in script.get("args", []))
    lines = [f"script {script['path']}{args} · watched {watched or 'nothing (no optimizer was built)'} · {steps} steps"]
    crash = script.get("crash")
    if crash:
        where = f" at {crash['path']}:{crash['line']}" if crash.get("path") else ""
        cause = f"explained by {', '.join(crash['explained_by'])}" if crash.get("explained_by") else "no finding explains it"
        lines.append(f"the script crashed with {crash['type']}: {crash['message']}{where} — {cause}")
    if script.get("status") == "interrupted":
        lines.append(f"interrupted (Ctrl-C) after {steps} steps: this report is partial")
    if script.get("status") == "stopped":
        lines.append(f"stopped at --max-steps after {steps} steps")
    return lines
