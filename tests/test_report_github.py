"""--format github: workflow-command annotations with GitHub's escaping."""

from __future__ import annotations

from ftdoctor.catalogue import make_finding
from ftdoctor.findings import Report
from ftdoctor.report import render
from ftdoctor.report.github import annotation, escape_data, escape_property


def test_error_annotation_has_location_title_and_fix() -> None:
    finding = make_finding("missing-zero-grad", "gradients of `optimizer` are never cleared", "call optimizer.zero_grad()",
                           path="train.py", line=35, column=9, end_line=35, end_column=24)
    assert annotation(finding) == (
        "::error file=train.py,line=35,col=9,endLine=35,endColumn=24,title=FTD101 missing-zero-grad"
        "::gradients of `optimizer` are never cleared (fix: call optimizer.zero_grad())"
    )


def test_severity_maps_to_command() -> None:
    warning = make_finding("train-loader-not-shuffled", "m", "f", path="a.py", line=1)
    info = make_finding("seed-not-set", "m", "f", path="a.py", line=1)
    assert annotation(warning).startswith("::warning file=a.py,line=1,title=")
    assert annotation(info).startswith("::notice file=a.py,line=1,title=")


def test_escaping_of_data_and_properties() -> None:
    assert escape_data("50% done\r\nnext: a, b") == "50%25 done%0D%0Anext: a, b"
    assert escape_property("dir,with:odd%name\n") == "dir%2Cwith%3Aodd%25name%0A"
    finding = make_finding("missing-zero-grad", "100% bad\nreally", "fix: it", path="we,ird:name.py", line=2)
    line = annotation(finding)
    assert line.startswith("::error file=we%2Cird%3Aname.py,line=2,")
    assert line.endswith("::100%25 bad%0Areally (fix: fix: it)")
    assert "\n" not in line


def test_run_findings_without_location_still_annotate_with_their_step() -> None:
    finding = make_finding("grads-accumulating", "norm grows", "zero the grads", step=7)
    assert annotation(finding) == "::error title=FTD201 grads-accumulating::step 7: norm grows (fix: zero the grads)"


def test_render_is_one_line_per_finding_in_report_order() -> None:
    report = Report(mode="check", files_checked=2, findings=[
        make_finding("seed-not-set", "m", "f", path="b.py", line=1),
        make_finding("missing-zero-grad", "m", "f", path="a.py", line=9),
    ])
    lines = render(report, "github").splitlines()
    assert [line.split(",")[0] for line in lines] == ["::error file=a.py", "::notice file=b.py"]
    assert render(Report(mode="check"), "github") == ""
