"""Every static rule's catalogue examples run through the real engine.

* ``## Example`` blocks must trigger their rule and no other rule at warning or above;
* ``## Use instead`` blocks must produce nothing at warning or above;
* the registry of static rules and the catalogue's static entries match one to one.
"""

from __future__ import annotations

import pytest

from ftdoctor.catalogue import RuleDoc, rules_of_kind
from ftdoctor.findings import Finding, Severity
from ftdoctor.static.engine import check_source
from ftdoctor.static.rule import STATIC_RULES

STATIC_DOCS = rules_of_kind("static")
SECTIONS = ("what it does", "why is this bad?", "how to fix", "example", "use instead")



@pytest.fixture(autouse=True)
def rules_raise(monkeypatch: pytest.MonkeyPatch) -> None:
    """A rule that crashes must fail the test, not be swallowed as the engine does for users."""
    monkeypatch.setenv("FTDOCTOR_DEBUG", "1")


def serious(findings: list[Finding]) -> list[Finding]:
    return [f for f in findings if f.severity.at_least(Severity.WARNING)]


def describe(findings: list[Finding]) -> str:
    return "; ".join(f"{f.rule}@{f.line}: {f.message}" for f in findings) or "nothing"


def test_registry_and_catalogue_match_one_to_one() -> None:
    assert set(STATIC_RULES) == {doc.slug for doc in STATIC_DOCS}


@pytest.mark.parametrize("doc", STATIC_DOCS, ids=lambda d: d.slug)
def test_catalogue_entry_is_complete(doc: RuleDoc) -> None:
    for title in SECTIONS:
        assert doc.section(title), f"{doc.slug}: section '{title}' is empty"
    assert doc.bad_examples, f"{doc.slug}: no example that triggers the rule"
    assert doc.good_examples, f"{doc.slug}: no 'use instead' example"


BAD = [(doc, index, code) for doc in STATIC_DOCS for index, code in enumerate(doc.bad_examples)]
GOOD = [(doc, index, code) for doc in STATIC_DOCS for index, code in enumerate(doc.good_examples)]


@pytest.mark.parametrize(("doc", "index", "code"), BAD, ids=[f"{d.slug}-{i}" for d, i, _ in BAD])
def test_bad_example_triggers_exactly_its_rule(doc: RuleDoc, index: int, code: str) -> None:
    findings = check_source(code, f"{doc.slug}_example_{index}.py")
    assert any(f.rule == doc.slug for f in findings), f"{doc.slug} not triggered; got {describe(findings)}"
    others = [f for f in serious(findings) if f.rule != doc.slug]
    assert not others, f"other rules fired on {doc.slug}'s example: {describe(others)}"


@pytest.mark.parametrize(("doc", "index", "code"), GOOD, ids=[f"{d.slug}-{i}" for d, i, _ in GOOD])
def test_good_example_is_silent(doc: RuleDoc, index: int, code: str) -> None:
    findings = serious(check_source(code, f"{doc.slug}_good_{index}.py"))
    assert not findings, f"{doc.slug}'s correct example triggered: {describe(findings)}"
