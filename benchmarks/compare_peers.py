"""ftdoctor's static checker side by side with the linters a user would otherwise pick.

Peers: TorchFix (PyTorch's own linter), dslinter (a pylint plugin for data-science code smells) and plain
pylint. Each lives in its own throw-away virtual environment under ``benchmarks/.peers/`` (git-ignored),
created by ``--setup``; no peer code is vendored. Every tool sees the same staged copy of the corpus, outside
the repository so that no project configuration (ours excludes ``fixtures/``) changes what a tool checks.

    python benchmarks/compare_peers.py --setup          # once: create the peers' venvs from PyPI
    python benchmarks/compare_peers.py                  # detection table + wall-time ratios (markdown)
    python benchmarks/compare_peers.py --output benchmarks/results/compare_peers.md

What "catches" and "false alarm" mean is defined in benchmarks/README.md and implemented in
:func:`peer_catches` / :func:`detection_rows`.
"""

from __future__ import annotations

import argparse
import ast
import datetime
import glob
import importlib.util
import json
import os
import platform
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable, Sequence

REPO = Path(__file__).resolve().parent.parent
FIXTURES = REPO / "fixtures" / "scripts"
CORPUS = REPO / "benchmarks" / "corpus"
PEERS_DIR = REPO / "benchmarks" / ".peers"
FTDOCTOR = Path(sys.executable).with_name("ftdoctor")
RUN_TIMEOUT_S = 1800

# --------------------------------------------------------------------------------------------- tool findings


@dataclass(frozen=True)
class ToolFinding:
    """One message of any tool, normalised: path relative to the staged corpus root."""

    path: str
    line: int
    end_line: int
    code: str  # message id: FTD101, TOR002, W5517, W0612 ...
    name: str  # slug / symbol
    counted: bool  # False for messages that are style or environment noise (see README)


# pylint's own stylistic categories (convention, refactor, informational) are not bug reports; dslinter's
# messages (55xx, and 999x of its older checkers) are all domain smells and count whatever their category letter.
_PYLINT_STYLE_TYPES = {"convention", "refactor", "info"}
# Raised only because the peers' venvs do not install torch/transformers: an artefact of the set-up.
_ENVIRONMENT_NOISE = {"import-error", "no-name-in-module"}
_TORCHFIX_LINE = re.compile(r"^(?P<path>.+?):(?P<line>\d+):(?P<col>\d+): (?P<code>TOR\d+)\b(?: \[\*\])? (?P<msg>.*)$")


def parse_ftdoctor_json(text: str) -> list[ToolFinding]:
    """Findings of ``ftdoctor check --format json`` (the contract's JSON report). Info findings are not counted."""
    report = json.loads(text)
    return [
        ToolFinding(
            path=_norm(item["path"]),
            line=int(item.get("line") or 1),
            end_line=int(item.get("end_line") or item.get("line") or 1),
            code=item["code"],
            name=item["rule"],
            counted=item["severity"] in ("warning", "error"),
        )
        for item in report["findings"]
    ]


def parse_pylint_json(text: str) -> list[ToolFinding]:
    """Messages of ``pylint --output-format=json`` (plain pylint and dslinter, which runs inside pylint)."""
    messages = json.loads(text) if text.strip() else []
    return [
        ToolFinding(
            path=_norm(msg["path"]),
            line=int(msg["line"]),
            end_line=int(msg.get("endLine") or msg["line"]),
            code=msg["message-id"],
            name=msg["symbol"],
            counted=_pylint_message_counts(msg),
        )
        for msg in messages
    ]


def _pylint_message_counts(msg: dict) -> bool:
    if msg["symbol"] in _ENVIRONMENT_NOISE:
        return False
    is_dslinter = msg["message-id"][1:3] in ("55", "99")
    return is_dslinter or msg["type"] not in _PYLINT_STYLE_TYPES


def parse_torchfix_text(text: str) -> list[ToolFinding]:
    """``torchfix`` prints ``path:line:col: TORnnn [*] message`` lines, then diffs of fixable ones (ignored)."""
    found = []
    for raw in text.splitlines():
        match = _TORCHFIX_LINE.match(raw.strip())
        if match:
            line = int(match["line"])
            found.append(ToolFinding(_norm(match["path"]), line, line, match["code"], match["code"], True))
    return found


def _norm(path: str) -> str:
    return Path(path).as_posix().removeprefix("./")


# --------------------------------------------------------------------------------------------- the tools


@dataclass
class Tool:
    """How to set up, run and read one linter. ``argv(files)`` is run with cwd = the staged corpus root."""

    name: str
    version_spec: str
    counterparts: dict[str, tuple[str, ...]]  # our slug -> message ids of the peer's rule for the same bug
    argv: Callable[[Path, list[str]], list[str]]
    parse: Callable[[str], list[ToolFinding]]
    python_candidates: Sequence[str] = ("python3.11", "python3")
    requirements: Sequence[str] = ()

    @property
    def venv(self) -> Path:
        return PEERS_DIR / self.name

    @property
    def is_peer(self) -> bool:
        return self.name != "ftdoctor"

    def unavailable_reason(self) -> str | None:
        """Why this tool cannot run here (None when it can)."""
        if not self.is_peer:
            return None if FTDOCTOR.exists() else f"{FTDOCTOR} not found (pip install -e . first)"
        failed = self.venv / "SETUP_FAILED"
        if failed.exists():
            return failed.read_text().strip()
        if not (self.venv / "bin" / "python").exists():
            return f"not set up: run `python benchmarks/compare_peers.py --setup` ({self.venv} missing)"
        return None

    def version(self) -> str:
        """e.g. ``torchfix 0.7.0 on Python 3.11.7`` (written by --setup)."""
        if not self.is_peer:
            from ftdoctor import __version__

            return f"ftdoctor {__version__} on Python {platform.python_version()}"
        stamp = self.venv / "VERSION"
        return stamp.read_text().strip() if stamp.exists() else f"{self.name} (version unknown)"


def _ftdoctor_argv(_venv: Path, files: list[str]) -> list[str]:
    return [str(FTDOCTOR), "check", "--format", "json", "--fail-on", "never", *files]


def _torchfix_argv(venv: Path, files: list[str]) -> list[str]:
    # --select ALL gives TorchFix every rule it has, including the opt-in ones (TOR3xx, TOR4xx, TOR9xx).
    return [str(venv / "bin" / "torchfix"), "--select", "ALL", *files]


def _pylint_argv(venv: Path, files: list[str]) -> list[str]:
    return [str(venv / "bin" / "pylint"), "--output-format=json", "--persistent=n", "--score=n", *files]


def _dslinter_argv(venv: Path, files: list[str]) -> list[str]:
    return [*_pylint_argv(venv, files)[:1], "--load-plugins=dslinter", *_pylint_argv(venv, files)[1:]]


TOOLS: list[Tool] = [
    Tool("ftdoctor", "this checkout", {}, _ftdoctor_argv, parse_ftdoctor_json),
    Tool(
        "torchfix",
        "torchfix==0.7.0",
        {"freeze-noop": ("TOR002",)},  # "Likely typo `require_grad` in assignment"
        _torchfix_argv,
        parse_torchfix_text,
        requirements=("torchfix==0.7.0",),
    ),
    Tool(
        "dslinter",
        "dslinter==2.0.9",
        # gradient-clear-pytorch; mode-toggling-pytorch; randomness-control-pytorch / -numpy
        {"missing-zero-grad": ("W5517",), "missing-train-after-eval": ("W9998",), "seed-not-set": ("W5511", "W5508")},
        _dslinter_argv,
        parse_pylint_json,
        # dslinter pins astroid<2.10/pylint 2.12, which do not run on Python 3.11.
        python_candidates=("python3.10",),
        requirements=("dslinter==2.0.9",),
    ),
    Tool("pylint", "pylint==4.1.4", {}, _pylint_argv, parse_pylint_json, requirements=("pylint==4.1.4",)),
]


# --------------------------------------------------------------------------------------------- --setup


def find_python(candidates: Sequence[str]) -> str | None:
    """The first interpreter that actually starts (pyenv shims exist for versions that are not selected)."""
    paths = [shutil.which(name) for name in candidates]
    for name in candidates:  # pyenv installs that no shim selects
        paths += sorted(glob.glob(os.path.expanduser(f"~/.pyenv/versions/{name.removeprefix('python')}*/bin/{name}")))
    for path in filter(None, paths):
        if subprocess.run([path, "--version"], capture_output=True).returncode == 0:
            return path
    return None


def setup_tool(tool: Tool) -> str:
    """Create the tool's venv and install it; on failure write SETUP_FAILED with the exact reason."""
    shutil.rmtree(tool.venv, ignore_errors=True)
    tool.venv.mkdir(parents=True)
    python = find_python(tool.python_candidates)
    if python is None:
        return _setup_failed(tool, f"no working interpreter among {', '.join(tool.python_candidates)}")
    pip = str(tool.venv / "bin" / "pip")
    steps = [[python, "-m", "venv", str(tool.venv)], [pip, "install", "-q", *tool.requirements]]
    for argv in steps:
        done = subprocess.run(argv, capture_output=True, text=True)
        if done.returncode != 0:
            return _setup_failed(tool, f"`{' '.join(argv[-3:])}` failed: {_last_lines(done.stderr)}")
    (tool.venv / "VERSION").write_text(_installed_version(tool, python))
    return f"{tool.name}: ok ({(tool.venv / 'VERSION').read_text()})"


def _installed_version(tool: Tool, python: str) -> str:
    package = tool.requirements[0].split("==")[0]
    pip = [str(tool.venv / "bin" / "pip"), "show", package]
    shown = subprocess.run(pip, capture_output=True, text=True).stdout
    version = re.search(r"^Version: (.+)$", shown, re.M)
    interpreter = subprocess.run([python, "--version"], capture_output=True, text=True).stdout.strip()
    return f"{package} {version[1] if version else '?'} on {interpreter}"


def _setup_failed(tool: Tool, reason: str) -> str:
    (tool.venv / "SETUP_FAILED").write_text(reason + "\n")
    return f"{tool.name}: could not be set up: {reason}"


def _last_lines(text: str, count: int = 6) -> str:
    lines = [line for line in text.strip().splitlines() if "is ignored: it is neither" not in line]
    return " | ".join(lines[-count:])


# --------------------------------------------------------------------------------------------- the corpus


@dataclass(frozen=True)
class Fixture:
    """A staged fixture: ``rel`` is its path under the staged root, e.g. ``missing-zero-grad/bad_loop.py``."""

    rel: str
    slug: str  # the folder: the rule it exercises, or "clean"
    bad: bool


def stage_fixtures(source: Path, dest: Path) -> list[Fixture]:
    """Copy ``fixtures/scripts/<slug>/{bad,good}_*`` to ``dest``; notebooks become .py (peers read only .py)."""
    fixtures = []
    for path in sorted(source.glob("*/*")):
        if path.suffix not in (".py", ".ipynb") or not path.name.startswith(("bad_", "good_")):
            continue
        rel = f"{path.parent.name}/{path.stem}.py"
        target = dest / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        text = notebook_as_script(path) if path.suffix == ".ipynb" else path.read_bytes().decode("utf-8", "replace")
        target.write_text(text, encoding="utf-8")
        fixtures.append(Fixture(rel, path.parent.name, path.name.startswith("bad_")))
    return fixtures


def notebook_as_script(path: Path) -> str:
    """Code cells joined in order; IPython magics and shell escapes become comments so every tool can parse it."""
    cells = json.loads(path.read_text(encoding="utf-8")).get("cells", [])
    chunks = []
    for cell in cells:
        if cell.get("cell_type") != "code":
            continue
        source = cell.get("source", "")
        source = "".join(source) if isinstance(source, list) else source
        lines = source.splitlines()
        cell_magic = bool(lines) and lines[0].lstrip().startswith("%%")  # the whole cell is not Python
        chunks.append("\n".join(f"# {line}" if cell_magic or _is_magic(line) else line for line in lines))
    return "\n\n".join(chunks) + "\n"


def _is_magic(line: str) -> bool:
    return line.lstrip().startswith(("%", "!"))


def stage_corpus(dest: Path, minimum: int = 1000) -> tuple[list[str], str]:
    """The generated benchmark corpus (helper C's benchmarks/bench_check.py), copied to ``dest``.

    Uses benchmarks/corpus/ when it is there, else asks bench_check to generate it. Notebooks become .py as for
    the fixtures. Returns the staged files and a note on where they came from (or why there are none).
    """
    if len(_corpus_files(CORPUS)) < minimum:
        generate = _bench_check_generator()
        if generate is None:
            return [], "generated corpus skipped: benchmarks/bench_check.py has no corpus generator yet"
        generate(CORPUS)
    staged = []
    for path in _corpus_files(CORPUS):
        rel = path.relative_to(CORPUS).with_suffix(".py").as_posix()
        target = dest / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        text = notebook_as_script(path) if path.suffix == ".ipynb" else path.read_bytes().decode("utf-8", "replace")
        target.write_text(text, encoding="utf-8")
        staged.append(rel)
    notebooks = sum(path.suffix == ".ipynb" for path in _corpus_files(CORPUS))
    note = f"generated corpus: {len(staged)} scripts from benchmarks/bench_check.py ({notebooks} notebooks as .py)"
    return staged, note


def _corpus_files(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*") if p.suffix in (".py", ".ipynb")) if root.is_dir() else []


def _bench_check_generator() -> Callable[[Path], object] | None:
    path = REPO / "benchmarks" / "bench_check.py"
    if not path.exists():
        return None
    spec = importlib.util.spec_from_file_location("bench_check", path)
    module = importlib.util.module_from_spec(spec)  # type: ignore[arg-type]
    sys.modules["bench_check"] = module
    spec.loader.exec_module(module)  # type: ignore[union-attr]
    return getattr(module, "generate_corpus", None)


# --------------------------------------------------------------------------------------------- running


@dataclass
class RunResult:
    findings: list[ToolFinding]
    seconds: float
    error: str | None = None


def run_tool(tool: Tool, root: Path, files: list[str]) -> RunResult:
    """One invocation of ``tool`` on ``files`` (relative to ``root``); wall time of the whole process."""
    argv = tool.argv(tool.venv, files)
    started = time.perf_counter()
    # A session of its own, so that a timeout ends the tool's worker processes too.
    process = subprocess.Popen(argv, cwd=root, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                               start_new_session=True)
    try:
        stdout, stderr = process.communicate(timeout=RUN_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.communicate()
        return RunResult([], time.perf_counter() - started, f"timed out after {RUN_TIMEOUT_S} s")
    seconds = time.perf_counter() - started
    try:
        return RunResult(tool.parse(stdout), seconds)
    except (ValueError, KeyError) as exc:
        detail = _last_lines(stderr or stdout, 3)
        return RunResult([], seconds, f"exit {process.returncode}, unreadable output ({exc}): {detail}")


# --------------------------------------------------------------------------------------------- detection


def buggy_span(source: str, line: int, end_line: int) -> tuple[int, int]:
    """The buggy lines: ftdoctor's reported span grown to the innermost statement containing it.

    If that statement is compound (a ``for`` loop whose header ftdoctor points at), the whole statement counts.
    """
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return line, end_line
    best: tuple[int, int] | None = None
    for node in ast.walk(tree):
        if not isinstance(node, ast.stmt) or node.end_lineno is None:
            continue
        if node.lineno <= line and end_line <= node.end_lineno:
            span = (node.lineno, node.end_lineno)
            if best is None or span[1] - span[0] < best[1] - best[0]:
                best = span
    return best or (line, end_line)


def peer_catches(
    findings: list[ToolFinding], span: tuple[int, int] | None, lookalike_ids: set[str]
) -> list[ToolFinding]:
    """The peer's findings that catch this buggy fixture (benchmarks/README.md, "Caught").

    Counted (not style/environment noise), of a message id the peer reports on none of the rule's correct
    look-alikes, and overlapping the buggy span (``span=None``: anywhere in the file).
    """
    return [
        f
        for f in findings
        if f.counted
        and f.code not in lookalike_ids
        and (span is None or (f.line <= span[1] and f.end_line >= span[0]))
    ]


@dataclass
class Score:
    """One tool on one rule's fixtures."""

    caught: int = 0  # bad fixtures caught on the buggy lines
    caught_anywhere: int = 0  # bad fixtures caught anywhere in the file
    false_alarms: int | None = None  # correct fixtures on which the tool claims this rule; None: it has no such rule
    catching_ids: Counter = field(default_factory=Counter)  # message ids that caught


@dataclass
class RuleRow:
    slug: str
    code: str
    bad: int
    good: int
    scores: dict[str, Score] = field(default_factory=dict)


def detection_rows(
    fixtures: list[Fixture],
    root: Path,
    results: dict[str, list[ToolFinding]],
    rules: list[tuple[str, str]],
    counterparts: dict[str, dict[str, tuple[str, ...]]] | None = None,
) -> list[RuleRow]:
    """The detection table.

    ``results`` maps tool name -> its findings on the staged fixtures; ftdoctor's own findings locate the bug in
    each bad fixture (the buggy lines peers are judged on). ``counterparts`` maps a peer -> our slug -> the
    message ids of its documented rule for the same bug (what makes it claim that bug on correct code).
    """
    by_tool = {name: _group_by_path(found) for name, found in results.items()}
    sources = {fx.rel: (root / fx.rel).read_text(encoding="utf-8") for fx in fixtures}
    ctx = _Context(sources, by_tool.get("ftdoctor", {}), [fx for fx in fixtures if not fx.bad])
    rows = []
    for slug, code in rules:
        bads = [fx for fx in fixtures if fx.slug == slug and fx.bad]
        goods = [fx for fx in fixtures if fx.slug == slug and not fx.bad]
        row = RuleRow(slug, code, len(bads), len(goods))
        for tool, files in by_tool.items():
            if tool == "ftdoctor":
                row.scores[tool] = _score_ftdoctor(slug, files, bads, ctx)
            else:
                claims = (counterparts or {}).get(tool, {}).get(slug, ())
                row.scores[tool] = _score_peer(slug, files, bads, goods, ctx, claims)
        rows.append(row)
    return rows


@dataclass
class _Context:
    sources: dict[str, str]
    locator: dict[str, list[ToolFinding]]  # ftdoctor's findings by path
    correct: list[Fixture]  # every correct fixture, of every rule folder

    def buggy_lines(self, fx: Fixture, slug: str) -> tuple[int, int] | None:
        """ftdoctor's finding for ``slug`` grown to its statement; None (whole file) when ftdoctor missed it."""
        mine = [f for f in self.locator.get(fx.rel, []) if f.name == slug]
        if not mine:
            return None
        return buggy_span(self.sources[fx.rel], min(f.line for f in mine), max(f.end_line for f in mine))

    def correct_claiming(self, files: dict[str, list[ToolFinding]], claims: Callable[[ToolFinding], bool]) -> int:
        return sum(any(map(claims, files.get(fx.rel, []))) for fx in self.correct)


def _score_ftdoctor(slug: str, files: dict[str, list[ToolFinding]], bads: list[Fixture], ctx: _Context) -> Score:
    """Caught: ftdoctor reports the fixture's rule. False alarm: it reports that rule on correct code."""
    caught = sum(any(f.name == slug for f in files.get(fx.rel, [])) for fx in bads)
    return Score(
        caught=caught,
        caught_anywhere=caught,
        false_alarms=ctx.correct_claiming(files, lambda f: f.name == slug),
        catching_ids=Counter({slug: caught} if caught else {}),
    )


def _score_peer(
    slug: str,
    files: dict[str, list[ToolFinding]],
    bads: list[Fixture],
    goods: list[Fixture],
    ctx: _Context,
    claims: tuple[str, ...],
) -> Score:
    lookalike_ids = {f.code for fx in goods for f in files.get(fx.rel, [])}
    score = Score()
    for fx in bads:
        found = files.get(fx.rel, [])
        hits = peer_catches(found, ctx.buggy_lines(fx, slug), lookalike_ids)
        score.caught += bool(hits)
        score.caught_anywhere += bool(peer_catches(found, None, lookalike_ids))
        score.catching_ids.update({_label(f) for f in hits})
    if claims:
        score.false_alarms = ctx.correct_claiming(files, lambda f: f.code in claims)
    return score


def _label(finding: ToolFinding) -> str:
    return finding.code if finding.code == finding.name else f"{finding.code} {finding.name}"


def _group_by_path(findings: Iterable[ToolFinding]) -> dict[str, list[ToolFinding]]:
    grouped: dict[str, list[ToolFinding]] = {}
    for finding in findings:
        grouped.setdefault(finding.path, []).append(finding)
    return grouped


# --------------------------------------------------------------------------------------------- timing


@dataclass
class Corpus:
    name: str
    root: Path
    files: list[str]


def run_side_by_side(
    tools: list[Tool], corpora: list[Corpus], repeats: int, repeat_limit: float = float("inf")
) -> dict[tuple[str, str], list[RunResult]]:
    """Every tool on every corpus, interleaved round by round so that machine load hits all tools alike.

    A tool whose first run on a corpus took longer than ``repeat_limit`` seconds is not repeated there.
    """
    runs: dict[tuple[str, str], list[RunResult]] = {}
    for round_no in range(repeats):
        for corpus in corpora:
            for tool in tools:
                done = runs.setdefault((tool.name, corpus.name), [])
                if done and done[0].seconds > repeat_limit:
                    continue
                done.append(run_tool(tool, corpus.root, corpus.files))
                print(f"  round {round_no + 1}/{repeats}: {tool.name} on {corpus.name}: {done[-1].seconds:.2f} s",
                      file=sys.stderr, flush=True)
    return runs


def median_seconds(results: list[RunResult]) -> float:
    return statistics.median(r.seconds for r in results)


# --------------------------------------------------------------------------------------------- report


def machine_line() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        names = re.findall(r"^model name\s*:\s*(.+)$", Path("/proc/cpuinfo").read_text(), re.M)
        cpu = names[0] if names else cpu
    except OSError:
        pass
    return f"{os.cpu_count()}-core CPU ({cpu}), {platform.system()} {platform.release()}, no GPU"


def load_average() -> str:
    """The 1/5/15-minute load averages: how busy the machine was (other processes share these CPUs)."""
    return "/".join(f"{x:.1f}" for x in os.getloadavg())


def render_detection(rows: list[RuleRow], tools: list[str]) -> list[str]:
    head = ["code", "rule", "buggy"] + tools + ["correct"] + [f"false alarms {t}" for t in tools]
    out = [_md_row(head), _md_row(["---"] * len(head))]
    for row in rows:
        caught = [_caught_cell(row.scores[t], row.bad) for t in tools]
        alarms = [_alarm_cell(row.scores[t].false_alarms) for t in tools]
        out.append(_md_row([row.code, row.slug, str(row.bad), *caught, str(row.good), *alarms]))
    bad, good = sum(r.bad for r in rows), sum(r.good for r in rows)
    totals = {t: _total([r.scores[t] for r in rows]) for t in tools}
    out.append(_md_row(["", "**all rules**", str(bad), *[_caught_cell(totals[t], bad) for t in tools], str(good),
                        *[_alarm_cell(totals[t].false_alarms) for t in tools]]))
    return out


def _total(scores: list[Score]) -> Score:
    alarms = [s.false_alarms for s in scores if s.false_alarms is not None]
    return Score(
        caught=sum(s.caught for s in scores),
        caught_anywhere=sum(s.caught_anywhere for s in scores),
        false_alarms=sum(alarms) if alarms else None,
    )


def _caught_cell(score: Score, bad: int) -> str:
    cell = f"{score.caught}/{bad}"
    return cell if score.caught_anywhere == score.caught else f"{cell} ({score.caught_anywhere})"


def _alarm_cell(alarms: int | None) -> str:
    return "—" if alarms is None else str(alarms)


def render_mapping(rows: list[RuleRow], peers: list[Tool], findings: dict[str, list[ToolFinding]]) -> list[str]:
    """Which peer messages did the catching, next to the peer's documented rule for the same bug (if any)."""
    names = {f.code: _label(f) for found in findings.values() for f in found}
    head = ["rule"] + [f"{p.name}: its rule for this bug / messages that caught" for p in peers]
    out = [_md_row(head), _md_row(["---"] * len(head))]
    for row in rows:
        cells = []
        for peer in peers:
            own = ", ".join(names.get(code, code) for code in peer.counterparts.get(row.slug, ())) or "none"
            ids = row.scores[peer.name].catching_ids
            caught = ", ".join(f"{label} ×{n}" for label, n in ids.most_common(3)) or "—"
            cells.append(f"{own} / {caught}")
        if any(cell != "none / —" for cell in cells):
            out.append(_md_row([row.slug, *cells]))
    return out


def render_noise(fixtures: list[Fixture], results: dict[str, list[ToolFinding]], tools: list[str]) -> list[str]:
    correct = {fx.rel for fx in fixtures if not fx.bad}
    head = ["tool", "correct fixtures", "with any counted finding", "most frequent counted messages on them"]
    out = [_md_row(head), _md_row(["---"] * len(head))]
    for tool in tools:
        counted = [f for f in results.get(tool, []) if f.counted and f.path in correct]
        noisy = len({f.path for f in counted})
        top = ", ".join(f"{label} ×{n}" for label, n in Counter(map(_label, counted)).most_common(4)) or "—"
        out.append(_md_row([tool, str(len(correct)), str(noisy), top]))
    return out


def render_timing(runs: dict[tuple[str, str], list[RunResult]], corpora: list[Corpus], tools: list[str]) -> list[str]:
    head = ["tool"] + [f"{c.name} ({len(c.files)} files): median s / × ftdoctor" for c in corpora]
    out = [_md_row(head), _md_row(["---"] * len(head))]
    for tool in tools:
        cells = [_timing_cell(runs.get((tool, c.name), []), runs.get(("ftdoctor", c.name), [])) for c in corpora]
        out.append(_md_row([tool, *cells]))
    return out


def _timing_cell(mine: list[RunResult], ours: list[RunResult]) -> str:
    """Median seconds and the ratio to ftdoctor's runs of the same rounds (a tool not repeated: round 1 only)."""
    if not mine:
        return "—"
    seconds = median_seconds(mine)
    same_rounds = ours[: len(mine)]
    ratio = f"{seconds / median_seconds(same_rounds):.1f}×" if same_rounds else "?"
    timed_out = any(r.error and r.error.startswith("timed out") for r in mine)
    cell = f"> {seconds:.0f} s (timed out) / > {ratio}" if timed_out else f"{seconds:.2f} s / {ratio}"
    return cell + (" (1 run)" if len(mine) == 1 and len(ours) > 1 else "")


def _md_row(cells: Sequence[str]) -> str:
    return "| " + " | ".join(cells) + " |"


# --------------------------------------------------------------------------------------------- main


def static_rules() -> list[tuple[str, str]]:
    from ftdoctor.catalogue import rules_of_kind

    return [(doc.slug, doc.code) for doc in rules_of_kind("static")]


def main(argv: Sequence[str] | None = None) -> int:
    args = _parse_args(argv)
    tools = [t for t in TOOLS if t.name in args.tools]
    if args.setup:
        for tool in tools:
            if tool.is_peer:
                print(setup_tool(tool), flush=True)
        return 0
    report = render_report(compare(tools, args.repeats, args.corpus, Path(args.fixtures), args.repeat_limit))
    print(report)
    if args.output:
        Path(args.output).write_text(report + "\n", encoding="utf-8")
    return 0


@dataclass
class Comparison:
    """Everything one comparison run measured, ready to render."""

    tools: list[Tool]  # the ones that ran
    skipped: dict[str, str]  # tool -> why it did not run
    fixtures: list[Fixture]
    corpora: list[Corpus]
    corpus_note: str
    runs: dict[tuple[str, str], list[RunResult]]
    rows: list[RuleRow]
    repeats: int
    load_at_start: str

    @property
    def fixture_results(self) -> dict[str, list[ToolFinding]]:
        return {t.name: self.runs[(t.name, "fixtures")][0].findings for t in self.tools}

    @property
    def errors(self) -> dict[str, str]:
        return {f"{tool} on {corpus}": r.error for (tool, corpus), rs in self.runs.items() for r in rs if r.error}


def compare(
    tools: list[Tool], repeats: int, with_corpus: bool, fixtures_dir: Path = FIXTURES, repeat_limit: float = 120.0
) -> Comparison:
    skipped = {t.name: reason for t in tools if (reason := t.unavailable_reason())}
    runnable = [t for t in tools if t.name not in skipped]
    load_at_start = load_average()
    with tempfile.TemporaryDirectory(prefix="ftdoctor-peers-") as tmp:
        fixtures = stage_fixtures(fixtures_dir, Path(tmp) / "fixtures")
        corpora = [Corpus("fixtures", Path(tmp) / "fixtures", [fx.rel for fx in fixtures])]
        corpus_note = "generated corpus not requested (--no-corpus)"
        if with_corpus:
            files, corpus_note = stage_corpus(Path(tmp) / "generated")
            if files:
                corpora.append(Corpus("generated", Path(tmp) / "generated", files))
        runs = run_side_by_side(runnable, corpora, repeats, repeat_limit)
        results = {t.name: runs[(t.name, "fixtures")][0].findings for t in runnable}
        counterparts = {t.name: t.counterparts for t in runnable}
        rows = detection_rows(fixtures, corpora[0].root, results, static_rules(), counterparts)
    return Comparison(runnable, skipped, fixtures, corpora, corpus_note, runs, rows, repeats, load_at_start)


def render_report(cmp: Comparison) -> str:
    names = [t.name for t in cmp.tools]
    bad, good = sum(fx.bad for fx in cmp.fixtures), sum(not fx.bad for fx in cmp.fixtures)
    lines = [
        "# ftdoctor check vs. TorchFix, dslinter and pylint",
        "",
        f"- date: {datetime.date.today().isoformat()}; machine: {machine_line()}; every figure is from CPUs",
        f"- load average (1/5/15 min) at start {cmp.load_at_start}, at end {load_average()}",
        "- command: `python benchmarks/compare_peers.py --setup && python benchmarks/compare_peers.py`",
        "- versions: " + "; ".join(t.version() for t in cmp.tools),
        f"- corpus: fixtures/scripts ({bad} buggy, {good} correct fixtures; notebooks as .py); {cmp.corpus_note}",
        "- what *caught* and *false alarm* mean: benchmarks/README.md",
    ]
    lines += [f"- **{name} not run**: {reason}" for name, reason in cmp.skipped.items()]
    lines += [f"- **error**: {where}: {message}" for where, message in cmp.errors.items()]
    lines += ["", "## Detection on the rule fixtures", "", _DETECTION_LEGEND, ""]
    lines += render_detection(cmp.rows, names)
    lines += ["", "## Which peer message caught what", ""]
    lines += render_mapping(cmp.rows, [t for t in cmp.tools if t.is_peer], cmp.fixture_results)
    lines += ["", "## Noise on correct code", ""] + render_noise(cmp.fixtures, cmp.fixture_results, names)
    lines += ["", f"## Wall time, side by side (median of {cmp.repeats} unless marked, whole process, same files)", ""]
    lines += render_timing(cmp.runs, cmp.corpora, names)
    lines += ["", "## Reading these figures", "", *_NOTES]
    return "\n".join(lines)


_NOTES = [
    "- The fixtures are ftdoctor's own test fixtures: its test suite requires it to catch every buggy one and to "
    "stay silent on every correct one, so its column shows that its catalogue is covered, not its accuracy on "
    "unseen code. The peers' columns show whether they cover these bug classes at all.",
    "- The peers were built for other goals (TorchFix: deprecated and slow PyTorch APIs; dslinter: data-science "
    "code smells; pylint: Python in general); only the bug classes of ftdoctor's catalogue are scored here.",
    "- Wall times are whole processes (interpreter start-up included) on a machine shared with other work; the "
    "load averages above say how busy it was. Ratios compare runs of the same rounds.",
]


_DETECTION_LEGEND = (
    "Cells: buggy fixtures caught on the buggy lines (in brackets, when different: caught anywhere in the file). "
    "False alarms: correct fixtures (of any rule) on which the tool claims this rule's bug — for a peer, its own "
    "rule for that bug fires; — where the peer has no rule for it."
)


def _parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--setup", action="store_true", help="create the peers' venvs under benchmarks/.peers/")
    parser.add_argument("--tools", nargs="+", default=[t.name for t in TOOLS], choices=[t.name for t in TOOLS])
    parser.add_argument("--repeats", type=int, default=3, help="timing rounds (median reported)")
    parser.add_argument("--fixtures", default=str(FIXTURES), help="rule fixtures: <slug>/bad_*.py, good_*.py")
    parser.add_argument("--repeat-limit", type=float, default=120.0,
                        help="do not repeat a tool on a corpus whose first run took longer (seconds)")
    parser.add_argument("--no-corpus", dest="corpus", action="store_false", help="fixtures only")
    parser.add_argument("--output", help="also write the markdown report here")
    return parser.parse_args(argv)


if __name__ == "__main__":
    sys.exit(main())
