"""Every fixture script: ``bad_*`` must trigger the rule its folder names, ``good_*`` must be clean.

``fixtures/scripts/<slug>/bad_<what>.py|.ipynb`` -> at least one ``<slug>`` finding;
``fixtures/scripts/<slug>/good_<what>.py|.ipynb`` (and everything in ``clean/``) -> no finding of any rule at
warning or above. Notebooks go through the same path as ``ftdoctor check`` (code cells joined, magics blanked).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from ftdoctor.catalogue import rules_of_kind
from ftdoctor.findings import Finding, Severity
from ftdoctor.settings import Settings
from ftdoctor.static.checker import check_notebook
from ftdoctor.static.engine import check_source

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "scripts"
SCRIPTS = sorted(
    p for p in FIXTURES.rglob("*")
    if p.suffix in (".py", ".ipynb") and not any(part.startswith(".") for part in p.relative_to(FIXTURES).parts)
)
BAD = [p for p in SCRIPTS if p.name.startswith("bad_")]
GOOD = [p for p in SCRIPTS if p.name.startswith("good_") or p.parent.name == "clean"]
STATIC_SLUGS = [doc.slug for doc in rules_of_kind("static")]



@pytest.fixture(autouse=True)
def rules_raise(monkeypatch: pytest.MonkeyPatch) -> None:
    """A rule that crashes must fail the test, not be swallowed as the engine does for users."""
    monkeypatch.setenv("FTDOCTOR_DEBUG", "1")


def check(path: Path) -> list[Finding]:
    if path.suffix == ".ipynb":
        return check_notebook(path.read_bytes(), str(path), Settings())
    return check_source(path.read_text(encoding="utf-8"), str(path))


def describe(findings: list[Finding]) -> str:
    return "; ".join(f"{f.rule}@{f.line}: {f.message}" for f in findings) or "nothing"


def fixture_id(path: Path) -> str:
    return f"{path.parent.name}/{path.name}"


def test_fixture_folders_are_rule_slugs() -> None:
    folders = {p.name for p in FIXTURES.iterdir() if p.is_dir() and not p.name.startswith(".")}
    assert folders - {"clean"} <= set(STATIC_SLUGS), folders - set(STATIC_SLUGS)


@pytest.mark.parametrize("slug", STATIC_SLUGS)
def test_every_static_rule_has_two_bad_and_two_good_fixtures(slug: str) -> None:
    folder = FIXTURES / slug
    names = [p.name for p in folder.iterdir()] if folder.is_dir() else []
    assert sum(n.startswith("bad_") for n in names) >= 2, f"{slug}: fewer than two bad fixtures"
    assert sum(n.startswith("good_") for n in names) >= 2, f"{slug}: fewer than two good fixtures"


@pytest.mark.parametrize("path", BAD, ids=fixture_id)
def test_bad_fixture_triggers_its_rule(path: Path) -> None:
    findings = check(path)
    assert any(f.rule == path.parent.name for f in findings), describe(findings)


@pytest.mark.parametrize("path", GOOD, ids=fixture_id)
def test_good_fixture_is_clean(path: Path) -> None:
    findings = [f for f in check(path) if f.severity.at_least(Severity.WARNING)]
    assert not findings, describe(findings)
