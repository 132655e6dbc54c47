"""What `ftdoctor check` reads: which files, their decoded text, and the project config (core).

- Paths given on the command line are checked; directories are walked for
  ``.py`` and ``.ipynb`` files, skipping hidden, virtualenv, ``__pycache__`` and
  ``site-packages`` folders, following symlinks without looping forever.
- ``exclude`` patterns (gitignore syntax) are relative to the directory of the
  ``pyproject.toml`` they come from. Walked files are always filtered; files named
  explicitly only with ``--force-exclude`` (what the pre-commit hook passes).
- ``[tool.ftdoctor]`` comes from the nearest ``pyproject.toml`` that has one,
  walking up from the checked paths; command-line options override it. ``ftdoctor
  run`` reads its settings here too, so no engine depends on another for them.
"""

from __future__ import annotations

import io
import os
import sys
import tokenize
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Iterator, Sequence

from ftdoctor.catalogue import lookup
from ftdoctor.errors import FtdoctorError
from ftdoctor.findings import FAIL_ON_CHOICES, Severity
from ftdoctor.settings import Settings, SettingsError, validate_selectors

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on 3.10 only
    import tomli as tomllib

SOURCE_SUFFIXES = (".py", ".ipynb")
#: Folder names never walked into (a folder named explicitly is still checked).
SKIPPED_DIRS = frozenset({"__pycache__", "site-packages", "node_modules", "venv", "__pypackages__", "_build"})
CONFIG_KEYS = ("select", "ignore", "fail-on", "exclude", "severity", "lr-range", "check-tests")
#: The names `[tool.ftdoctor.lr-range]` takes. The config schema is core; lr-out-of-range maps
#: each name to its ranges (``RANGE_NAMES``), and a test keeps the two equal.
LR_RANGE_NAMES = ("full", "peft", "lora", "prompt", "ia3", "sgd")
SEVERITY_NAMES = tuple(s.value for s in Severity)


# ----------------------------------------------------------------------------- files


@dataclass(frozen=True)
class SourceFile:
    """A file to check: where it is, and how reports name it."""

    path: Path
    display: str

    @property
    def is_notebook(self) -> bool:
        return self.path.suffix.lower() == ".ipynb"


def display_path(path: Path) -> str:
    """A path as reports show it: relative to the working directory when inside it."""
    # abspath, not resolve: a file reached through a symlink keeps the name it was reached by
    try:
        return Path(os.path.abspath(path)).relative_to(os.getcwd()).as_posix()
    except (ValueError, OSError):
        return str(path)


def discover_files(
    paths: Sequence[str], *, exclude: "ExcludeSpec | None" = None, force_exclude: bool = False
) -> list[SourceFile]:
    """Every file to check under ``paths``, in a stable order, each once.

    A path that does not exist is a usage error naming it.
    """
    missing = [p for p in paths if not os.path.exists(p)]
    if missing:
        names = ", ".join(repr(p) for p in missing)
        raise FtdoctorError(
            f"no such file or directory: {names}. `ftdoctor check` takes Python files, notebooks (.ipynb) "
            "and directories to walk; check the spelling, or run it from the folder that holds them."
        )
    seen: set[Path] = set()
    found: list[SourceFile] = []
    for raw in paths:
        root = Path(raw)
        if root.is_dir():
            # A folder named explicitly is walked even when excluded (unless forced), as files are.
            named_excluded = exclude is not None and not force_exclude and exclude.matches(root)
            candidates: Iterable[Path] = _walk(root, None if named_excluded else exclude)
        elif force_exclude and exclude is not None and exclude.matches(root):
            candidates = ()
        else:
            candidates = (root,)  # named explicitly: checked whatever its suffix
        for path in candidates:
            key = _real(path)
            if key not in seen:
                seen.add(key)
                found.append(SourceFile(path, display_path(path)))
    return found


def _real(path: Path) -> Path:
    try:
        return path.resolve()
    except (OSError, RuntimeError):  # RuntimeError: a symlink loop on old Pythons
        return path.absolute()


def _walk(root: Path, exclude: "ExcludeSpec | None") -> Iterator[Path]:
    """Source files under ``root``; a folder reached twice (symlink loop) is walked once."""
    visited: set[Path] = set()
    for dirpath, dirnames, filenames in os.walk(root, followlinks=True):
        here = Path(dirpath)
        real = _real(here)
        if real in visited:
            dirnames[:] = []
            continue
        visited.add(real)
        dirnames[:] = sorted(
            name for name in dirnames if not _skipped_dir(here / name) and not _excluded(exclude, here / name)
        )
        for name in sorted(filenames):
            path = here / name
            if path.suffix.lower() in SOURCE_SUFFIXES and not _excluded(exclude, path) and path.is_file():
                yield path


def _skipped_dir(path: Path) -> bool:
    name = path.name
    return name.startswith(".") or name in SKIPPED_DIRS or (path / "pyvenv.cfg").exists()


def _excluded(exclude: "ExcludeSpec | None", path: Path) -> bool:
    return exclude is not None and exclude.matches(path)


@dataclass
class ExcludeSpec:
    """gitignore-style patterns, relative to ``root``; compiled on first use."""

    patterns: list[str]
    root: Path
    _spec: Any = field(default=None, repr=False)

    def matches(self, path: Path) -> bool:
        if self._spec is None:
            import pathspec  # ~20 ms to import: only when a path is actually tested

            self._spec = pathspec.GitIgnoreSpec.from_lines(self.patterns)
            self.root = _real(self.root)
        try:
            relative = _real(path).relative_to(self.root).as_posix()
        except ValueError:
            return False  # outside the project: its patterns do not speak about it
        if path.is_dir():
            relative += "/"
        return bool(self._spec.match_file(relative))


# ---------------------------------------------------------------------------- decode


class UndecodableSource(Exception):
    """The bytes are not text Python can read; the message says why (and where, when known)."""

    def __init__(self, reason: str, line: int | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.line = line


def decode_python(data: bytes) -> str:
    """Decode source bytes as Python does: BOM, PEP 263 coding cookie, else UTF-8."""
    if b"\x00" in data:
        raise UndecodableSource("it looks like a binary file (it contains NUL bytes)")
    try:
        encoding, _ = tokenize.detect_encoding(io.BytesIO(data).readline)
    except SyntaxError as exc:  # not UTF-8 without a cookie, or an unknown/conflicting cookie
        if exc.msg.startswith("invalid or missing encoding declaration"):
            raise UndecodableSource("it is not valid UTF-8 text and declares no other encoding", exc.lineno or 1) from exc
        cookie_line = 1 if b"coding" in data.split(b"\n", 1)[0] else 2
        raise UndecodableSource(f"its encoding declaration is invalid ({exc.msg})", cookie_line) from exc
    try:
        return data.decode(encoding)
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        name = encoding.upper() if encoding.startswith("utf") else encoding
        raise UndecodableSource(f"it is not valid {name} text ({exc.reason} on line {line})", line) from exc


def read_text_lines(path: Path) -> list[str] | None:
    """The decoded lines of a Python file, or None when it cannot be read."""
    try:
        return decode_python(path.read_bytes()).splitlines()
    except (OSError, UndecodableSource):
        return None


# ---------------------------------------------------------------------------- config


@dataclass
class ProjectConfig:
    """``[tool.ftdoctor]`` as read from one file (or nothing: all defaults)."""

    path: Path | None = None
    table: dict[str, Any] = field(default_factory=dict)

    @property
    def root(self) -> Path:
        return self.path.parent if self.path else Path.cwd()


def find_config(paths: Sequence[str]) -> Path | None:
    """The nearest ``pyproject.toml`` with a ``[tool.ftdoctor]`` table above the checked paths."""
    start = _common_dir(paths)
    for folder in (start, *start.parents):
        candidate = folder / "pyproject.toml"
        if candidate.is_file() and _has_ftdoctor_table(candidate):
            return candidate
    return None


def _common_dir(paths: Sequence[str]) -> Path:
    dirs = [(_real(Path(p)) if os.path.isdir(p) else _real(Path(p)).parent) for p in paths] or [Path.cwd()]
    try:
        return Path(os.path.commonpath([str(d) for d in dirs]))
    except ValueError:  # different drives on Windows
        return dirs[0]


def _has_ftdoctor_table(path: Path) -> bool:
    try:
        return "ftdoctor" in _read_toml(path).get("tool", {})
    except FtdoctorError:
        # Broken TOML is ours to report only when it tries to configure us.
        if "tool.ftdoctor" in path.read_text(encoding="utf-8", errors="replace"):
            raise
        return False


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as handle:
            return tomllib.load(handle)
    except OSError as exc:
        raise FtdoctorError(f"cannot read config file {path}: {exc.strerror or exc}") from exc
    except tomllib.TOMLDecodeError as exc:
        raise FtdoctorError(f"{path} is not valid TOML: {exc}") from exc


def load_config(explicit: str | None, paths: Sequence[str]) -> ProjectConfig:
    """The config named by ``--config``, else the nearest one found, validated."""
    if explicit is not None:
        path = Path(explicit)
        if not path.is_file():
            raise FtdoctorError(f"--config {explicit!r}: no such file; point it at a pyproject.toml")
        table = _read_toml(path).get("tool", {}).get("ftdoctor")
        if table is None:
            raise FtdoctorError(f"--config {explicit!r} has no [tool.ftdoctor] table")
    else:
        found = find_config(paths)
        if found is None:
            return ProjectConfig()
        path, table = found, _read_toml(found)["tool"]["ftdoctor"]
    _validate_table(table, path)
    return ProjectConfig(path=path, table=table)


def _validate_table(table: Any, path: Path) -> None:
    where = "tool.ftdoctor"
    if not isinstance(table, dict):
        raise SettingsError(f"{path}: {where} must be a table")
    for key, value in table.items():
        if key not in CONFIG_KEYS:
            raise SettingsError(f"{path}: unknown key {where}.{key}; expected one of {', '.join(CONFIG_KEYS)}")
        if key in ("select", "ignore", "exclude"):
            _expect_string_list(value, f"{path}: {where}.{key}")
        if key in ("select", "ignore"):
            validate_selectors(value, f"{path}: {where}.{key}")
        if key == "fail-on" and value not in FAIL_ON_CHOICES:
            raise SettingsError(f"{path}: {where}.fail-on must be one of {', '.join(FAIL_ON_CHOICES)}; got {value!r}")
        if key == "severity":
            _validate_severity_table(value, path)
        if key == "lr-range":
            _validate_lr_range_table(value, path)
        if key == "check-tests" and not isinstance(value, bool):
            raise SettingsError(f"{path}: {where}.check-tests must be true or false; got {value!r}")


def _expect_string_list(value: Any, where: str) -> None:
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise SettingsError(f"{where} must be a list of strings, e.g. [\"build/\"]; got {value!r}")


def _validate_severity_table(table: Any, path: Path) -> None:
    if not isinstance(table, dict):
        raise SettingsError(f"{path}: tool.ftdoctor.severity must be a table of rule = \"error|warning|info\"")
    for rule, severity in table.items():
        where = f"{path}: tool.ftdoctor.severity.{rule}"
        if lookup(rule) is None:
            raise SettingsError(f"{where}: {rule!r} names no rule; use a slug or code (`ftdoctor rules` lists them)")
        if severity not in SEVERITY_NAMES:
            raise SettingsError(f"{where} must be one of {', '.join(SEVERITY_NAMES)}; got {severity!r}")


def _validate_lr_range_table(table: Any, path: Path) -> None:
    example = 'full = [1e-6, 1e-4]'
    if not isinstance(table, dict):
        raise SettingsError(f"{path}: tool.ftdoctor.lr-range must be a table like {example}")
    for name, bounds in table.items():
        where = f"{path}: tool.ftdoctor.lr-range.{name}"
        if name not in LR_RANGE_NAMES:
            raise SettingsError(f"{where}: unknown range; expected one of {', '.join(LR_RANGE_NAMES)}")
        numbers = isinstance(bounds, list) and len(bounds) == 2 and all(
            isinstance(b, (int, float)) and not isinstance(b, bool) for b in bounds
        )
        if not numbers or not 0 < bounds[0] < bounds[1]:
            raise SettingsError(f"{where} must be [low, high] with 0 < low < high, e.g. {example}; got {bounds!r}")


def build_settings(
    config: ProjectConfig, *, select: Sequence[str] = (), ignore: Sequence[str] = (), fail_on: str | None = None
) -> Settings:
    """Settings from the config, with command-line choices on top.

    ``--select`` replaces the configured selection (and its ignores: asking for a
    rule by name shows it); ``--ignore`` adds to the configured ignores.
    """
    validate_selectors(select, "--select")
    validate_selectors(ignore, "--ignore")
    table = config.table
    if select:
        chosen_select, chosen_ignore = list(select), list(ignore)
    else:
        chosen_select = list(table.get("select", ["ALL"]))
        chosen_ignore = [*table.get("ignore", []), *ignore]
    overrides = {_slug(rule): Severity(value) for rule, value in table.get("severity", {}).items()}
    return Settings(
        select=chosen_select,
        ignore=chosen_ignore,
        fail_on=fail_on or table.get("fail-on", "warning"),
        severity_overrides=overrides,
        exclude=list(table.get("exclude", [])),
        rule_options={"lr-out-of-range": dict(table["lr-range"])} if "lr-range" in table else {},
        check_tests=table.get("check-tests", False),
    )


def _slug(rule: str) -> str:
    doc = lookup(rule)
    assert doc is not None  # validated before
    return doc.slug


def exclude_spec(settings: Settings, config: ProjectConfig) -> ExcludeSpec | None:
    return ExcludeSpec(settings.exclude, config.root) if settings.exclude else None
