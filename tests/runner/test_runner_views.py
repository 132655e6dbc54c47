"""The run report's human views — verdict, terminal summary, sparklines, HTML — on hand-made reports."""

from __future__ import annotations

import base64
import io
import re

import pytest

from ftdoctor.findings import CORE_SIGNALS, Finding, Report, Severity
from ftdoctor.report.html import render_html
from ftdoctor.report.plots import run_plots, smooth
from ftdoctor.runner.display import PlainDisplay
from ftdoctor.runner.metrics import Evaluation
from ftdoctor.report.report_data import verdict
from ftdoctor.runner.summary import SPARK_LEVELS, render_run_summary, sparkline


def finding(rule: str = "dead-parameters", severity: Severity = Severity.ERROR, step: int = 2,
            message: str = "`orphan_head.weight` never receives a gradient", **evidence: object) -> Finding:
    return Finding(rule=rule, code="FTD210", severity=severity, message=message, fix="call the head in forward",
                   step=step, evidence=evidence or {"parameters": ["orphan_head.weight"], "steps_observed": 3})


def run_report(findings: list[Finding] | None = None, **run: object) -> Report:
    steps = list(range(1, 21))
    extra = {
        "run": {"model": "builtin:tiny", "data": {"train": "t.csv", "validation": "v.csv", "train_size": 40,
                                                  "validation_size": 10},
                "label_names": ["neg", "pos"], "label_counts": {"train": {"0": 20, "1": 20},
                                                               "validation": {"0": 5, "1": 5}},
                "confusion_matrix": [[4, 1], [2, 3]], "total_steps": 20, "seconds": 3.0, "seed": 0,
                "per_class": {"neg": {"precision": 0.667, "recall": 0.8, "f1": 0.727, "support": 5},
                              "pos": {"precision": 0.75, "recall": 0.6, "f1": 0.667, "support": 5}},
                **run},
        "curves": {"train": {"step": steps, "loss": [0.7 - 0.01 * s for s in steps], "lr": [1e-3] * 20,
                             "grad_norm": [1.0] * 20, "update_ratio": [None, 1e-3] * 10},
                   "evaluations": [{"step": 10, "val_loss": 0.6, "val_accuracy": 0.6, "train_loss": 0.6,
                                    "train_accuracy": 0.6},
                                   {"step": 20, "val_loss": 0.5, "val_accuracy": 0.7, "train_loss": 0.5,
                                    "train_accuracy": 0.7}]},
    }
    metrics = {"train_loss": 0.5, "val_loss": 0.5, "val_accuracy": 0.7, "val_macro_f1": 0.697}
    seen_all = {"observed": dict.fromkeys(CORE_SIGNALS, True), "not_run": []}  # a run the doctor fully watched
    return Report(mode="run", findings=findings or [], metrics=metrics, steps=20, overhead=0.012, extra=extra,
                  coverage=seen_all)


@pytest.mark.parametrize(
    ("findings", "run", "headline", "colour"),
    [
        ([], {}, "Healthy fine-tune", "green"),
        ([finding(severity=Severity.INFO)], {}, "Healthy fine-tune", "green"),
        ([finding(severity=Severity.WARNING)], {}, "Suspicious fine-tune: 1 warning", "yellow"),
        ([finding(), finding(severity=Severity.WARNING)], {}, "Broken fine-tune: 1 error, 1 warning", "red"),
        ([], {"interrupted": True}, "Interrupted", "yellow"),
        ([finding()], {"error": "RuntimeError: boom"}, "Training crashed (1 error found)", "red"),
    ],
)
def test_verdict(findings: list[Finding], run: dict[str, object], headline: str, colour: str) -> None:
    text, actual_colour = verdict(run_report(findings, **run))
    assert text.startswith(headline) and actual_colour == colour


def test_sparkline_follows_the_values() -> None:
    assert sparkline([0, 1, 2, 3, 4, 5, 6, 7]) == SPARK_LEVELS
    assert sparkline([3.0, None, 3.0]) == SPARK_LEVELS[0] * 2
    assert sparkline([]) == ""
    long = sparkline([float(i) for i in range(1000)], width=40)
    assert len(long) <= 40 and long[0] == SPARK_LEVELS[0] and long[-1] == SPARK_LEVELS[-1]


def test_smoothing_has_no_lag() -> None:
    values = [0.0] * 40 + [1.0] * 40
    smoothed = smooth(values)
    assert len(smoothed) == 80 and smoothed[0] == 0.0 and smoothed[-1] == 1.0
    # Centred: symmetric around the jump, which stays where it happened (an EMA would drag it right).
    assert smoothed[39] + smoothed[40] == pytest.approx(1.0)
    assert smoothed[39] < 0.5 < smoothed[40]


def test_text_summary_shows_findings_metrics_and_curves() -> None:
    text = render_run_summary(run_report([finding(), finding("grads-accumulating", step=1, backwards=2)]),
                              color=False, width=140)
    assert "Broken fine-tune: 2 errors" in text
    assert text.index("grads-accumulating") < text.index("dead-parameters")  # ordered by step
    assert "call the head in forward" in text and "steps_observed=3" in text
    assert "validation accuracy" in text and "0.7000" in text
    assert "Confusion matrix" in text and "Per class" in text
    assert re.search(r"train loss\s+[▁-█]+\s+0\.69 → 0\.5", text)
    assert "Found 2 errors in 20 steps." in text
    assert "\x1b[" not in text


def test_html_is_self_contained_escaped_and_has_every_plot() -> None:
    nasty = finding(message="<script>alert(1)</script> & more", parameter="<b>head</b>")
    html = render_html(run_report([nasty]))
    assert "<script>" not in html and "&lt;script&gt;alert(1)&lt;/script&gt; &amp; more" in html
    assert "&lt;b&gt;head&lt;/b&gt;" in html
    assert "http://" not in html and "https://" not in html  # no external assets
    images = re.findall(r'src="data:image/png;base64,([^"]+)"', html)
    assert len(images) == 6
    assert all(base64.b64decode(image).startswith(b"\x89PNG") for image in images)
    assert "Broken fine-tune" in html and "call the head in forward" in html


def test_html_of_a_crashed_script_run_without_curves_or_metrics() -> None:
    script = {"path": "train.py", "args": ["--epochs", "1"], "status": "crashed",
              "crash": {"type": "IndexError", "message": "Target 5 is out of bounds.", "path": "train.py", "line": 19,
                        "explained_by": ["label-out-of-range"]}}
    html = render_html(Report(mode="run", steps=0, extra={"script": script}))
    assert "Training crashed" in html and "script train.py --epochs 1" in html and "data:image/png" not in html
    assert ("training stopped with IndexError: Target 5 is out of bounds. at train.py:19 — explained by "
            "label-out-of-range") in html
    assert "No findings" in html


def test_plots_skip_what_has_no_data() -> None:
    report = run_report()
    report.extra["curves"]["train"]["update_ratio"] = [None] * 20
    del report.extra["run"]["confusion_matrix"]
    titles = [plot.title for plot in run_plots(report.extra)]
    assert titles == ["Training and validation loss", "Gradient norm", "Learning rate", "Label histogram"]


def test_plain_display_prints_a_few_lines_evaluations_and_findings() -> None:
    stream = io.StringIO()
    display = PlainDisplay(stream)
    display.start(100, "builtin:tiny on builtin:reviews")
    for step in range(1, 101):
        display.on_step(step, 0.5, 1e-4, None if step % 2 else 1.5)
    display.on_evaluation(Evaluation(step=100, val_loss=0.4, val_accuracy=0.9, train_loss=0.3, train_accuracy=0.95))
    display.on_finding(finding())
    lines = stream.getvalue().splitlines()
    assert lines[0] == "ftdoctor: training builtin:tiny on builtin:reviews for 100 steps"
    step_lines = [line for line in lines if line.startswith("ftdoctor: step ")]
    assert len(step_lines) == 10 and step_lines[-1].startswith("ftdoctor: step 100/100  loss 0.5000")
    assert "grad-norm 1.5" in step_lines[-1]
    assert "val acc 0.900" in lines[-2] and "FTD210 dead-parameters [error]" in lines[-1]
