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

from ftdoctor.findings import Report, either_of


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
            "explained_by": _explained_by(doctor, state.error),
            "per_class": per_class,
            "confusion_matrix": confusion,
        },
        "curves": {"train": history_columns(doctor.history),
                   "evaluations": [evaluation.curve_point() for evaluation in state.evaluations]},
    }


def _explained_by(doctor: Any, error: BaseException | None) -> list[str]:
    """The rules whose finding says why training crashed with ``error``."""
    if error is None:
        return []
    return sorted(rule.slug for rule in getattr(doctor, "rules", []) if rule.explains(error))


def _histogram(labels: list[int]) -> dict[str, int]:
    return {str(label): count for label, count in sorted(Counter(labels).items())}


HISTORY_FIELDS = ("step", "loss", "lr", "grad_norm", "update_ratio")
#: How the views name the flat metrics, in the order they show them.
METRIC_LABELS = {"val_accuracy": "validation accuracy", "val_macro_f1": "validation macro-F1",
                 "val_loss": "validation loss", "train_loss": "train loss", "train_accuracy": "train accuracy"}


def ordered_metrics(metrics: dict[str, Any]) -> list[tuple[str, str, Any]]:
    """(key, label, value) with the headline metrics first, any others after them in their own order."""
    order = list(METRIC_LABELS)
    keys = sorted(metrics, key=lambda key: order.index(key) if key in order else len(order))
    return [(key, METRIC_LABELS.get(key, key), metrics[key]) for key in keys]


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
    run = _run_section(report)
    found = ", ".join(_count(counts[name], name) for name in ("error", "warning") if counts[name])
    if run.get("error"):
        return "Training crashed" + (f" ({found} found)" if found else ""), "red"
    if counts["error"]:
        return f"Broken fine-tune: {found}", "red"
    if counts["warning"]:
        return f"Suspicious fine-tune: {found}", "yellow"
    if run.get("interrupted"):
        return "Interrupted — no problem found so far", "yellow"
    if report.verdict == "incomplete":
        return f"Incomplete: the doctor never saw {either_of(report.unobserved())}, so it cannot call this run healthy", "yellow"
    return "Healthy fine-tune: no problem found", "green"


def coverage_lines(report: Report) -> list[str]:
    """What the doctor did not see and which rules therefore could not judge — shared with the HTML report."""
    coverage = report.observed_coverage()
    lines = []
    if report.unobserved():
        lines.append(f"not observed: {', '.join(s.replace('_', ' ') for s in report.unobserved())}")
    not_run = coverage.get("not_run") or []
    if not_run:
        lines.append("rules that could not run: " + "; ".join(f"{e['rule']} ({e['why']})" for e in not_run))
    return lines


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}{'' if n == 1 else 's'}"


def context_lines(report: Report) -> list[str]:
    """What ran, for how long, and how it ended — shared with the HTML report.

    Reads only the keys present, so a run report from a user's script (no model
    or data section) renders too.
    """
    run = _run_section(report)
    lines = []
    if run.get("model"):
        data = run.get("data", {})
        lines.append(f"model {run['model']} · train {data.get('train')} ({data.get('train_size')} examples) · "
                     f"validation {data.get('validation')} ({data.get('validation_size')})")
    if run.get("script"):
        lines.append(f"script {run['script']}")
    lines.append(" · ".join(_progress_parts(report, run)))
    if report.overhead is not None:
        lines.append(f"doctor overhead {report.overhead:.1%} of step time")
    if run.get("interrupted"):
        lines.append(f"interrupted (Ctrl-C) after {report.steps} steps: this report is partial")
    if run.get("error"):
        explained = f" — explained by {', '.join(run['explained_by'])}" if run.get("explained_by") else ""
        lines.append(f"training stopped with {run['error']}{explained}")
    lines += coverage_lines(report)
    for index, entry in enumerate(report.extra.get("runs", []), start=1):
        lines.append(f"run {index}: {entry['model']}, {entry['steps']} steps, {entry['verdict']}")
    return lines


def _run_section(report: Report) -> dict[str, Any]:
    """The reference run's ``run`` section, with a script run's ``script`` section read into the same keys."""
    run = dict(report.extra.get("run", {}))
    script = report.extra.get("script")
    if script:
        run["script"] = " ".join([script.get("path", "?"), *script.get("args", [])])
        run["interrupted"] = script.get("status") == "interrupted"
        crash = script.get("crash")
        if crash:
            where = f" at {crash['path']}:{crash['line']}" if crash.get("path") else ""
            explained = ", ".join(crash.get("explained_by") or [])
            cause = f"explained by {explained}" if explained else "no finding explains it"
            run["error"] = f"{crash.get('type')}: {crash.get('message')}{where} — {cause}"
    return run


def _progress_parts(report: Report, run: dict[str, Any]) -> list[str]:
    total = f"/{run['total_steps']}" if run.get("total_steps") else ""
    seconds = f" in {run['seconds']:.0f}s" if run.get("seconds") is not None else ""
    parts = [f"{report.steps}{total} steps{seconds}"]
    if run.get("seed") is not None:
        parts.append(f"seed {run['seed']}")
    if run.get("inject"):
        parts.append(f"injected mistakes: {', '.join(run['inject'])}")
    return parts
