"""The rule catalogue: one Markdown file per rule under ``rules/``.

Each file starts with YAML front matter (code, slug, kind, severity, context, summary,
and ``fix: safe|unsafe|none`` — what ``check --fix`` can do, ``none`` when absent)
followed by ruff-style sections::

    ## What it does
    ## Why is this bad?
    ## How to fix
    ## Example          (one or more ```python blocks: code that must trigger the rule)
    ## Use instead      (one or more ```python blocks: look-alikes that must stay silent)

The catalogue is data: engines and rules look up code and default severity
here by slug, so no rule repeats them in code.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from ftdoctor.findings import Finding, Severity

KINDS = ("static", "runtime")
#: ``safe``: applied by ``check --fix`` where proven right in context (elsewhere offered
#: under ``--unsafe-fixes``); ``unsafe``: only with ``--unsafe-fixes``; ``none``: no fix.
FIX_KINDS = ("safe", "unsafe", "none")
#: where a rule applies: ``training-script`` rules (hyper-parameters, hygiene) skip test and benchmark code
CONTEXTS = ("any", "training-script")

_FRONT_MATTER = re.compile(r"\A---\s*\n(.*?)\n---\s*\n(.*)\Z", re.S)
_SECTION = re.compile(r"^## +(.+?)\s*$", re.M)
_CODE_BLOCK = re.compile(r"```python\n(.*?)```", re.S)
# libyaml's safe loader when PyYAML has it: every `ftdoctor check` start reads the
# whole catalogue, and the pure-Python parser costs tens of milliseconds there.
_YAML_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class CatalogueError(Exception):
    """A catalogue file is malformed (a bug in ftdoctor, caught by the tests)."""


@dataclass(frozen=True)
class RuleDoc:
    code: str
    slug: str
    kinds: tuple[str, ...]
    severity: Severity
    summary: str
    sections: dict[str, str] = field(default_factory=dict)
    path: Path | None = None
    fix: str = "none"
    context: str = "any"

    @property
    def kind_label(self) -> str:
        return "+".join(self.kinds)

    def section(self, title: str) -> str:
        return self.sections.get(title.lower(), "").strip()

    @property
    def bad_examples(self) -> list[str]:
        return _CODE_BLOCK.findall(self.sections.get("example", ""))

    @property
    def good_examples(self) -> list[str]:
        return _CODE_BLOCK.findall(self.sections.get("use instead", ""))


def catalogue_dir() -> Path:
    """Where the catalogue lives: inside the wheel, or ``rules/`` in a checkout."""
    packaged = Path(__file__).resolve().parent / "_catalogue"
    if packaged.is_dir():
        return packaged
    return Path(__file__).resolve().parent.parent / "rules"


def parse_rule_file(path: Path) -> RuleDoc:
    text = path.read_text(encoding="utf-8")
    match = _FRONT_MATTER.match(text)
    if not match:
        raise CatalogueError(f"{path}: missing YAML front matter")
    meta = yaml.load(match.group(1), Loader=_YAML_LOADER) or {}
    try:
        kinds = meta["kind"] if isinstance(meta["kind"], list) else [meta["kind"]]
        doc = RuleDoc(
            code=str(meta["code"]),
            slug=str(meta["slug"]),
            kinds=tuple(kinds),
            severity=Severity(meta["severity"]),
            summary=str(meta["summary"]).strip(),
            sections=_split_sections(match.group(2)),
            path=path,
            fix=str(meta.get("fix", "none")),
            context=str(meta.get("context", "any")),  # every entry declares it (a test checks)
        )
    except (KeyError, ValueError) as exc:
        raise CatalogueError(f"{path}: bad front matter: {exc}") from exc
    if any(kind not in KINDS for kind in doc.kinds):
        raise CatalogueError(f"{path}: kind must be one of {KINDS}")
    if doc.fix not in FIX_KINDS:
        raise CatalogueError(f"{path}: fix must be one of {FIX_KINDS}; got {doc.fix!r}")
    if doc.fix != "none" and "static" not in doc.kinds:
        raise CatalogueError(f"{path}: only static rules have fixes (`check --fix`)")
    if doc.context not in CONTEXTS:
        raise CatalogueError(f"{path}: context must be one of {CONTEXTS}; got {doc.context!r}")
    return doc


def _split_sections(body: str) -> dict[str, str]:
    parts = _SECTION.split(body)
    # parts = [preamble, title1, body1, title2, body2, ...]
    return {title.strip().lower(): text for title, text in zip(parts[1::2], parts[2::2])}


@functools.lru_cache(maxsize=1)
def load_catalogue() -> dict[str, RuleDoc]:
    """All rules by slug, in code order."""
    # Files are named FTDnnn-slug.md; anything else in the folder (README) is prose.
    docs = [parse_rule_file(path) for path in sorted(catalogue_dir().glob("FTD*.md"))]
    docs.sort(key=lambda doc: doc.code)
    return {doc.slug: doc for doc in docs}


def lookup(name: str) -> RuleDoc | None:
    """A rule by slug or code (case-insensitive code)."""
    catalogue = load_catalogue()
    if name in catalogue:
        return catalogue[name]
    upper = name.upper()
    return next((doc for doc in catalogue.values() if doc.code == upper), None)


def rules_of_kind(kind: str) -> list[RuleDoc]:
    return [doc for doc in load_catalogue().values() if kind in doc.kinds]


def make_finding(slug: str, message: str, fix: str, **details: object) -> Finding:
    """A finding for ``slug``, with its code and default severity from the catalogue.

    ``details`` are the optional Finding fields: path, line, column, end_line,
    end_column, step, evidence, cell.
    """
    doc = load_catalogue()[slug]
    return Finding(rule=slug, code=doc.code, severity=doc.severity, message=message, fix=fix, **details)  # type: ignore[arg-type]
