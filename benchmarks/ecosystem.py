"""The ecosystem check: `ftdoctor check` on pinned real repositories, measured against a hand-judged ledger.

After ruff-ecosystem and mypy_primer. The corpus (``benchmarks/ecosystem/repos.toml``) pins public repositories
at one commit each; the ledger (``benchmarks/ecosystem/ledger.toml``) records a person's verdict on every finding
the checker has produced on them: ``tp`` (a real mistake a demanding ML engineer wants reported), ``fp`` (the code
is right, or the advice would break it) or ``debatable`` (a style choice, or test/benchmark code where the rule
does not apply). This script runs the checker in-process over checkouts that live outside this repository and
prints precision at warning and above — per repository, per corpus kind and per rule — every error-severity
false alarm, every finding nobody has judged yet, and every judged true positive that no longer fires.

    python benchmarks/ecosystem.py --checkouts CHECKOUTS_DIR
    FTDOCTOR_ECOSYSTEM_DIR=CHECKOUTS_DIR python benchmarks/ecosystem.py --json
    python benchmarks/ecosystem.py --repo huggingface/peft --write-stubs unjudged.toml
    python benchmarks/ecosystem.py --fetch-script            # how to get the checkouts

Exit status: 0 every finding is judged, no error-severity finding is false and no judged true positive was lost;
1 otherwise; 2 bad input (a missing checkout, a malformed corpus or ledger).
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import re
import sys
import tomllib
from collections import Counter, defaultdict
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Iterable, Sequence

REPO = Path(__file__).resolve().parent.parent
ECOSYSTEM = REPO / "benchmarks" / "ecosystem"
CORPUS_FILE = ECOSYSTEM / "repos.toml"
LEDGER_FILE = ECOSYSTEM / "ledger.toml"
CHECKOUTS_ENV = "FTDOCTOR_ECOSYSTEM_DIR"

KINDS = ("library", "examples", "user")
VERDICTS = ("tp", "fp", "debatable")
LOUD = ("warning", "error")
ENTRY_FIELDS = ("repo", "path", "line", "slug", "verdict", "reason")
#: A notebook finding is located by its code cell and the line within it.
CELL_PREFIX = re.compile(r"^cell (\d+): ")
MISSED_FIELDS = ("repo", "path", "line", "slug", "reason")


class InputError(Exception):
    """A corpus, ledger or checkout problem; the message says what to fix."""


# ------------------------------------------------------------------------------------------- the inputs


@dataclass(frozen=True)
class Repo:
    """One pinned repository: checked out as ``<checkouts>/<owner>+<name>``."""

    name: str
    github: str  # owner/name
    commit: str  # full hash
    kind: str
    paths: tuple[str, ...] = ()  # relative to the checkout; empty = all of it

    @property
    def folder(self) -> str:
        return self.github.replace("/", "+")


@dataclass(frozen=True)
class Entry:
    """One judged finding: ``repo`` is ``owner/name@commit`` (the commit may be abbreviated)."""

    repo: str
    path: str
    line: int
    slug: str
    verdict: str
    reason: str
    cell: int | None = None  # notebooks: the code cell; line is then the line within it

    @property
    def github(self) -> str:
        return self.repo.split("@", 1)[0]

    @property
    def commit(self) -> str:
        return self.repo.split("@", 1)[1] if "@" in self.repo else ""

    @property
    def key(self) -> "FindingKey":
        return (self.github, self.path, self.cell, self.line, self.slug)


FindingKey = tuple[str, str, "int | None", int, str]


@dataclass(frozen=True)
class Missed:
    """A real mistake the checker does not report (recall, not precision)."""

    repo: str
    path: str
    line: int
    slug: str  # the rule that should catch it, or "no-rule"
    reason: str


@dataclass
class Ledger:
    entries: list[Entry] = field(default_factory=list)
    missed: list[Missed] = field(default_factory=list)


def read_toml(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as handle:
            return tomllib.load(handle)
    except OSError as exc:
        raise InputError(f"cannot read {path}: {exc.strerror or exc}") from exc
    except tomllib.TOMLDecodeError as exc:
        raise InputError(f"{path} is not valid TOML: {exc}") from exc


def load_corpus(path: Path = CORPUS_FILE) -> list[Repo]:
    """The ``[[repo]]`` tables of ``repos.toml``, validated."""
    repos: list[Repo] = []
    for index, table in enumerate(read_toml(path).get("repo", []), start=1):
        where = f"{path.name}: [[repo]] #{index}"
        missing = [key for key in ("name", "github", "commit", "kind") if not table.get(key)]
        if missing:
            raise InputError(f"{where} lacks {', '.join(missing)}")
        if table["kind"] not in KINDS:
            raise InputError(f"{where}: kind {table['kind']!r} is not one of {', '.join(KINDS)}")
        if table["github"].count("/") != 1:
            raise InputError(f"{where}: github {table['github']!r} is not owner/name")
        paths = tuple(table.get("paths", ()))
        repos.append(Repo(table["name"], table["github"], table["commit"], table["kind"], paths))
    names = Counter(repo.github for repo in repos)
    doubled = [name for name, count in names.items() if count > 1]
    if doubled:
        raise InputError(f"{path.name}: {', '.join(doubled)} listed twice")
    return repos


def load_ledger(path: Path = LEDGER_FILE) -> Ledger:
    """The ``[[finding]]`` and ``[[missed]]`` tables of ``ledger.toml``, validated."""
    data = read_toml(path)
    ledger = Ledger()
    for index, table in enumerate(data.get("finding", []), start=1):
        _require(table, ENTRY_FIELDS, f"{path.name}: [[finding]] #{index}")
        if table["verdict"] not in VERDICTS:
            raise InputError(
                f"{path.name}: [[finding]] #{index} ({table['path']}:{table['line']}) has verdict "
                f"{table['verdict']!r}; use one of {', '.join(VERDICTS)}"
            )
        cell = table.get("cell")
        if cell is not None and (not isinstance(cell, int) or cell < 1):
            raise InputError(f"{path.name}: [[finding]] #{index}: cell must be a code cell number (1, 2, ...)")
        ledger.entries.append(Entry(**{key: table[key] for key in ENTRY_FIELDS}, cell=cell))
    for index, table in enumerate(data.get("missed", []), start=1):
        _require(table, MISSED_FIELDS, f"{path.name}: [[missed]] #{index}")
        ledger.missed.append(Missed(**{key: table[key] for key in MISSED_FIELDS}))
    keys = Counter(entry.key for entry in ledger.entries)
    doubled = [key for key, count in keys.items() if count > 1]
    if doubled:
        raise InputError(f"{path.name}: judged twice: " + ", ".join(_key_text(key) for key in doubled))
    return ledger


def _require(table: dict[str, Any], fields: Sequence[str], where: str) -> None:
    missing = [key for key in fields if table.get(key) in (None, "")]
    if missing:
        raise InputError(f"{where} lacks {', '.join(missing)}")
    if not isinstance(table["line"], int) or table["line"] < 0:
        raise InputError(f"{where}: line must be a whole number")


# ------------------------------------------------------------------------------------------- the checker


@dataclass(frozen=True)
class Observed:
    """One finding of the current checker, located relative to its checkout."""

    repo: str  # owner/name
    path: str
    line: int
    slug: str
    severity: str
    message: str
    cell: int | None = None

    @property
    def key(self) -> FindingKey:
        return (self.repo, self.path, self.cell, self.line, self.slug)


def _key_text(key: FindingKey) -> str:
    repo, path, cell, line, slug = key
    return f"{repo} {path}:{line}{'' if cell is None else f' (cell {cell})'} {slug}"


def _notebook_cell(finding: Any) -> int | None:
    """The code cell of a notebook finding: a field when the report has one, else the message's prefix."""
    cell = getattr(finding, "cell", None)
    if cell is not None:
        return int(cell)
    match = CELL_PREFIX.match(finding.message)
    return int(match.group(1)) if match else None


def checkout_dir(repo: Repo, checkouts: Path) -> Path:
    root = checkouts / repo.folder
    if not root.is_dir():
        raise InputError(
            f"no checkout of {repo.github} at {root}; extract commit {repo.commit[:12]} there "
            "(see `python benchmarks/ecosystem.py --fetch-script`)"
        )
    return root


def run_checker(repo: Repo, checkouts: Path) -> tuple[list[Observed], int]:
    """``ftdoctor check <paths>`` on one checkout, in-process, through the command's own public steps."""
    from ftdoctor.errors import FtdoctorError
    from ftdoctor.static.checker import check_files
    from ftdoctor.sources import build_settings, discover_files, exclude_spec, load_config

    root = checkout_dir(repo, checkouts)
    paths = [str(root / sub) for sub in repo.paths] or [str(root)]
    absent = [path for path in paths if not os.path.exists(path)]
    if absent:
        raise InputError(f"{repo.github}: paths {', '.join(absent)} are not in the checkout")
    try:
        config = load_config(None, paths)
        settings = build_settings(config)
        files = discover_files(paths, exclude=exclude_spec(settings, config))
        report = check_files(files, settings, cache=False)  # never write into the checkouts
    except FtdoctorError as exc:  # e.g. a checkout's own broken [tool.ftdoctor] table
        raise InputError(f"{repo.github}: ftdoctor check refused the checkout: {exc}") from exc
    observed = [
        Observed(
            repo=repo.github,
            path=Path(os.path.relpath(os.path.abspath(finding.path or ""), root)).as_posix(),
            line=finding.line or 0,
            slug=finding.rule,
            severity=finding.severity.value,
            message=CELL_PREFIX.sub("", finding.message),
            cell=_notebook_cell(finding),
        )
        for finding in report.sorted_findings()
    ]
    return observed, report.files_checked


# ------------------------------------------------------------------------------------------- comparing


@dataclass
class Tally:
    findings: int = 0
    tp: int = 0
    fp: int = 0
    debatable: int = 0
    unjudged: int = 0

    def add(self, verdict: str | None) -> None:
        self.findings += 1
        if verdict is None:
            self.unjudged += 1
        else:
            setattr(self, verdict, getattr(self, verdict) + 1)

    @property
    def precision(self) -> float | None:
        judged = self.tp + self.fp
        return self.tp / judged if judged else None

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "precision": self.precision}


@dataclass
class Comparison:
    """The current findings held against the ledger."""

    files: dict[str, int]  # files checked per repository
    judged: list[tuple[Observed, Entry]]
    unjudged: list[Observed]
    lost_tp: list[Entry]  # judged tp, no longer reported
    gone_fp: list[Entry]  # judged fp, no longer reported (fixed)
    stale: list[Entry]  # judged at a commit other than the pinned one
    by_repo: dict[str, Tally]
    by_kind: dict[str, Tally]
    by_rule: dict[str, Tally]
    overall: Tally
    include_info: bool = False

    @property
    def error_fp(self) -> list[tuple[Observed, Entry]]:
        return [(seen, entry) for seen, entry in self.judged if seen.severity == "error" and entry.verdict == "fp"]

    @property
    def failed(self) -> bool:
        return bool(self.unjudged or self.error_fp or self.lost_tp)


def compare(
    repos: Sequence[Repo],
    observed: Iterable[Observed],
    ledger: Ledger,
    files: dict[str, int],
    *,
    include_info: bool = False,
) -> Comparison:
    """Match findings to ledger entries by (repository, path, line, slug) at the pinned commit."""
    pinned = {repo.github: repo for repo in repos}
    current: dict[FindingKey, Entry] = {}
    stale: list[Entry] = []
    for entry in ledger.entries:
        repo = pinned.get(entry.github)
        if repo is None:
            continue  # repository not in this run (--repo)
        if not repo.commit.startswith(entry.commit) or len(entry.commit) < 7:
            stale.append(entry)
        else:
            current[entry.key] = entry
    counted = LOUD + (("info",) if include_info else ())
    tallies: dict[str, dict[str, Tally]] = {axis: defaultdict(Tally) for axis in ("repo", "kind", "rule")}
    overall = Tally()
    judged: list[tuple[Observed, Entry]] = []
    unjudged: list[Observed] = []
    fired: set[FindingKey] = set()
    for seen in observed:
        fired.add(seen.key)
        entry = current.get(seen.key)
        if entry is not None:
            judged.append((seen, entry))
        if seen.severity not in counted:
            continue
        if entry is None:
            unjudged.append(seen)
        verdict = entry.verdict if entry else None
        overall.add(verdict)
        tallies["repo"][seen.repo].add(verdict)
        tallies["kind"][pinned[seen.repo].kind].add(verdict)
        tallies["rule"][seen.slug].add(verdict)
    silent = [entry for key, entry in current.items() if key not in fired]
    return Comparison(
        files=files,
        judged=judged,
        unjudged=unjudged,
        lost_tp=[entry for entry in silent if entry.verdict == "tp"],
        gone_fp=[entry for entry in silent if entry.verdict == "fp"],
        stale=stale,
        by_repo=dict(sorted(tallies["repo"].items())),
        by_kind={kind: tallies["kind"][kind] for kind in KINDS if kind in tallies["kind"]},
        by_rule=dict(sorted(tallies["rule"].items())),
        overall=overall,
        include_info=include_info,
    )


# ------------------------------------------------------------------------------------------- reporting


def _percent(value: float | None) -> str:
    return "—" if value is None else f"{100 * value:.0f} %"


def precision_table(title: str, tallies: dict[str, Tally], overall: Tally | None = None) -> list[str]:
    lines = [
        f"| {title} | findings | tp | fp | debatable | unjudged | precision tp/(tp+fp) |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    rows = list(tallies.items()) + ([("**all**", overall)] if overall is not None else [])
    for name, tally in rows:
        lines.append(
            f"| {name} | {tally.findings} | {tally.tp} | {tally.fp} | {tally.debatable} | {tally.unjudged} "
            f"| {_percent(tally.precision)} |"
        )
    return lines


def render_text(result: Comparison, repos: Sequence[Repo]) -> str:
    kinds = {repo.github: repo.kind for repo in repos}
    files = sum(result.files.values())
    counted = "info and above" if result.include_info else "warning and above"
    out = [
        f"ftdoctor ecosystem check: {len(result.files)} repositories, {files} files, "
        f"{result.overall.findings} findings at {counted}",
        "",
        *precision_table("corpus kind", result.by_kind, result.overall),
        "",
        *precision_table("repository", {f"{name} ({kinds[name]})": t for name, t in result.by_repo.items()}),
        "",
        *precision_table("rule", result.by_rule),
    ]
    sections = [
        ("error-severity false alarms", [_where(seen) + f" — {entry.reason}" for seen, entry in result.error_fp]),
        ("judged true positives no longer reported (recall lost)", [_entry_where(entry) for entry in result.lost_tp]),
        ("findings not yet judged (add them to the ledger: --write-stubs FILE)",
         [_where(seen) + f" [{seen.severity}] {seen.message}" for seen in result.unjudged]),
        ("judged false alarms no longer reported (fixed)", [_entry_where(entry) for entry in result.gone_fp]),
        ("ledger entries judged at another commit (re-judge them)", [_entry_where(entry) for entry in result.stale]),
    ]
    for title, items in sections:
        if items:
            out += ["", f"{title}: {len(items)}", *(f"  {item}" for item in items)]
    return "\n".join(out) + "\n"


def _where(seen: Observed) -> str:
    return _key_text(seen.key)


def _entry_where(entry: Entry) -> str:
    return f"{_key_text(entry.key)} @{entry.commit} ({entry.verdict}: {entry.reason})"


def render_json(result: Comparison, repos: Sequence[Repo]) -> str:
    pinned = {repo.github: repo for repo in repos}
    data = {
        "date": datetime.date.today().isoformat(),
        "counted": ["info", *LOUD] if result.include_info else list(LOUD),
        "files": result.files,
        "precision": {
            "overall": result.overall.as_dict(),
            "kind": {name: t.as_dict() for name, t in result.by_kind.items()},
            "repository": {name: t.as_dict() for name, t in result.by_repo.items()},
            "rule": {name: t.as_dict() for name, t in result.by_rule.items()},
        },
        "error_fp": [{**asdict(seen), "reason": entry.reason} for seen, entry in result.error_fp],
        "unjudged": [{**asdict(seen), "commit": pinned[seen.repo].commit} for seen in result.unjudged],
        "lost_tp": [asdict(entry) for entry in result.lost_tp],
        "gone_fp": [asdict(entry) for entry in result.gone_fp],
        "stale": [asdict(entry) for entry in result.stale],
        "failed": result.failed,
    }
    return json.dumps(data, indent=2, ensure_ascii=False) + "\n"


def render_stubs(unjudged: Sequence[Observed], repos: Sequence[Repo]) -> str:
    """Ledger entries to fill in: set verdict (tp, fp or debatable) and reason, then append to the ledger."""
    pinned = {repo.github: repo for repo in repos}
    blocks = []
    for seen in unjudged:
        blocks.append(
            "[[finding]]\n"
            f"repo = {json.dumps(seen.repo + '@' + pinned[seen.repo].commit[:7])}\n"
            f"path = {json.dumps(seen.path)}\n"
            + (f"cell = {seen.cell}\n" if seen.cell is not None else "")
            + f"line = {seen.line}\n"
            f"slug = {json.dumps(seen.slug)}\n"
            f"# [{seen.severity}] {seen.message}\n"
            'verdict = ""  # tp | fp | debatable\n'
            'reason = ""\n'
        )
    return "\n".join(blocks)


FETCH_SCRIPT = """\
# Each checkout is the pinned commit of one repository, extracted (no .git) into
# <checkouts>/<owner>+<name>. With a local clone or mirror of owner/name:
#
#   mkdir -p "$CHECKOUTS/<owner>+<name>"
#   git --git-dir=<clone>/.git archive <commit> | tar -x -C "$CHECKOUTS/<owner>+<name>"
#
# (When a large blob is missing from a partial mirror, archive only the checked files:
#   git --git-dir=... ls-tree -r --name-only <commit> | grep -E '\\.(py|ipynb|toml|cfg)$' \\
#     | xargs git --git-dir=... archive <commit> -- | tar -x -C ...)
# A repository listed with `paths` needs only those folders. The commands for this corpus:
"""


def render_fetch_script(repos: Sequence[Repo]) -> str:
    lines = [FETCH_SCRIPT, 'CHECKOUTS="${FTDOCTOR_ECOSYSTEM_DIR:?set it to the checkouts folder}"', "set -e"]
    for repo in repos:
        dest = f'"$CHECKOUTS/{repo.folder}"'
        only = "".join(f" {path}" for path in repo.paths)
        lines.append(
            f"clone=$(mktemp -d) && git clone --quiet --filter=blob:none --no-checkout "
            f'https://github.com/{repo.github}.git "$clone" && mkdir -p {dest} && '
            f'git -C "$clone" archive {repo.commit}{only} | tar -x -C {dest} && rm -rf "$clone"'
        )
    return "\n".join(lines) + "\n"


# ------------------------------------------------------------------------------------------- the command


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python benchmarks/ecosystem.py",
        description=(
            "Run `ftdoctor check` on pinned public repositories and hold every finding against the hand-judged "
            "ledger: precision at warning and above (tp/(tp+fp), debatable apart) per repository, corpus kind and "
            "rule; every error-severity false alarm; every finding not yet judged; every judged true positive that "
            "no longer fires."
        ),
        epilog=(
            "Judging: run with --write-stubs FILE, read the code around each stub, set verdict = tp (a real mistake "
            "a demanding ML engineer wants reported), fp (the code is right, or the advice would break it) or "
            "debatable (a style choice, or test/benchmark code the rule should not judge) and a one-line specific "
            "reason, and append the stubs to benchmarks/ecosystem/ledger.toml. "
            "Exit status: 0 all judged, no error-severity fp, no tp lost; 1 otherwise; 2 bad input."
        ),
    )
    parser.add_argument("--checkouts", metavar="DIR", default=os.environ.get(CHECKOUTS_ENV),
                        help=f"folder with one checkout per repository, named owner+name [default: ${CHECKOUTS_ENV}]")
    parser.add_argument("--corpus", metavar="FILE", type=Path, default=CORPUS_FILE, help="the pinned repositories")
    parser.add_argument("--ledger", metavar="FILE", type=Path, default=LEDGER_FILE, help="the judged findings")
    parser.add_argument("--repo", action="append", default=[], metavar="OWNER/NAME",
                        help="check this repository (repeatable; with --kind, either selects) [default: all]")
    parser.add_argument("--kind", action="append", default=[], choices=KINDS,
                        help="check the repositories of this corpus kind (repeatable)")
    parser.add_argument("--include-info", action="store_true",
                        help="count info findings (seed-not-set) too, in the tables and the unjudged list")
    parser.add_argument("--json", action="store_true", help="print the result as JSON, for machines")
    parser.add_argument("--write-stubs", metavar="FILE", help="write ledger stubs for the unjudged findings to FILE")
    parser.add_argument("--fetch-script", action="store_true",
                        help="print shell commands that create the checkouts from GitHub, then exit")
    return parser


def select_repos(repos: Sequence[Repo], names: Sequence[str], kinds: Sequence[str]) -> list[Repo]:
    unknown = [name for name in names if name not in {repo.github for repo in repos} | {repo.name for repo in repos}]
    if unknown:
        raise InputError(f"--repo {', '.join(unknown)}: not in the corpus")
    if not names and not kinds:
        return list(repos)
    return [repo for repo in repos if repo.github in names or repo.name in names or repo.kind in kinds]


def run(args: argparse.Namespace) -> int:
    corpus = load_corpus(args.corpus)
    repos = select_repos(corpus, args.repo, args.kind)
    if args.fetch_script:
        sys.stdout.write(render_fetch_script(repos))
        return 0
    ledger = load_ledger(args.ledger)
    unknown = sorted({entry.github for entry in ledger.entries} - {repo.github for repo in corpus})
    if unknown:
        raise InputError(f"{args.ledger.name} judges repositories that are not in the corpus: {', '.join(unknown)}")
    if not args.checkouts:
        raise InputError(f"where are the checkouts? pass --checkouts DIR or set {CHECKOUTS_ENV}")
    checkouts = Path(args.checkouts).expanduser()
    for repo in repos:
        checkout_dir(repo, checkouts)  # all missing checkouts fail before any work
    observed: list[Observed] = []
    files: dict[str, int] = {}
    for repo in repos:
        found, files[repo.github] = run_checker(repo, checkouts)
        observed += found
    result = compare(repos, observed, ledger, files, include_info=args.include_info)
    sys.stdout.write(render_json(result, repos) if args.json else render_text(result, repos))
    if args.write_stubs:
        Path(args.write_stubs).write_text(render_stubs(result.unjudged, repos), encoding="utf-8")
    return 1 if result.failed else 0


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return run(args)
    except InputError as exc:
        print(f"ecosystem: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("ecosystem: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.path.insert(0, str(REPO))
    sys.exit(main())
