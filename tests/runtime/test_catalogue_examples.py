"""Every runtime rule's catalogue examples run: each bad one triggers its rule, each good one stays silent.

Runtime examples are self-contained scripts (a tiny BERT from ``BertConfig``, a
few steps under ``ftdoctor.watch``) that leave their Doctor in a global named
``doctor``. A bad example may crash after the doctor saw the fault (that is
often the point: the finding explains the crash). Rules that are static too
(softmax-before-loss) keep static examples, judged by the static tests; the
runner's own findings (FTD3xx) have their examples tested with the runner.
"""

from __future__ import annotations

from typing import Any

import pytest

from ftdoctor.catalogue import RuleDoc, rules_of_kind
from ftdoctor.runtime.rule import RUNTIME_RULES
from ftdoctor.runtime.rules import __name__ as _rules_package  # noqa: F401  (registers the rules)

#: rules whose examples this file must find (D1's); others may be written later
CORE_RULES = {
    "grads-accumulating", "lr-too-high", "lr-too-low", "overfitting-gap", "dead-parameters",
    "params-not-in-optimizer", "no-trainable-params", "non-finite-loss", "exploding-gradients",
    "dropout-in-eval", "eval-with-grad",
}

#: the doctor's rules; FTD3xx are findings the runner itself emits (script-crashed), not doctor rules
DOCTOR_DOCS = [doc for doc in rules_of_kind("runtime") if not doc.code.startswith("FTD3")]
RUNTIME_DOCS = [doc for doc in DOCTOR_DOCS if doc.kinds == ("runtime",)]


def _examples(kind: str) -> list[Any]:
    cases = []
    for doc in RUNTIME_DOCS:
        blocks = doc.bad_examples if kind == "bad" else doc.good_examples
        cases += [pytest.param(doc, code, id=f"{doc.slug}-{index}") for index, code in enumerate(blocks)]
    return cases


def _run(code: str, allow_crash: bool) -> Any:
    namespace: dict[str, Any] = {"__name__": "__catalogue_example__"}
    try:
        exec(compile(code, "<catalogue example>", "exec"), namespace)
    except Exception:
        if not allow_crash or "doctor" not in namespace:
            raise
    doctor = namespace.get("doctor")
    assert doctor is not None, "a runtime example must bind its Doctor to a global named `doctor`"
    assert not doctor.attached and not doctor.internal_errors
    return doctor


def test_runtime_registry_and_catalogue_match_one_to_one() -> None:
    assert set(RUNTIME_RULES) == {doc.slug for doc in DOCTOR_DOCS}


@pytest.mark.parametrize("slug", sorted(CORE_RULES))
def test_core_rules_have_bad_and_good_examples(slug: str) -> None:
    doc = next(doc for doc in RUNTIME_DOCS if doc.slug == slug)
    assert doc.bad_examples and doc.good_examples
    for section in ("what it does", "why is this bad?", "how to fix"):
        assert doc.section(section), f"{slug}: empty '{section}'"


@pytest.mark.parametrize(("doc", "code"), _examples("bad"))
def test_bad_example_triggers_its_rule(doc: RuleDoc, code: str) -> None:
    doctor = _run(code, allow_crash=True)
    assert doc.slug in {f.rule for f in doctor.findings}


@pytest.mark.parametrize(("doc", "code"), _examples("good"))
def test_good_example_is_silent(doc: RuleDoc, code: str) -> None:
    doctor = _run(code, allow_crash=False)
    assert [f.rule for f in doctor.findings if f.severity.value in ("warning", "error")] == []
