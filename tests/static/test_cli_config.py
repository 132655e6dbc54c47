"""[tool.ftdoctor] in pyproject.toml: discovery, precedence, exclude, validation."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

pytestmark = pytest.mark.usefixtures("marker_engine")

SCRIPT = "BUG()\nWARN()\nINFO()\n"


def rules_found(run_check, *args: str, cwd: Path) -> set[str]:
    result = run_check("check", "--format", "json", *args, cwd=cwd)
    assert result.code in (0, 1), result.stderr
    return {f["rule"] for f in json.loads(result.stdout)["findings"]}


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    """A project whose pyproject sits two levels above the checked script."""
    (tmp_path / "src" / "pkg").mkdir(parents=True)
    (tmp_path / "src" / "pkg" / "train.py").write_text(SCRIPT)
    return tmp_path


def write_config(folder: Path, body: str) -> None:
    (folder / "pyproject.toml").write_text(f"[project]\nname = 'x'\n\n[tool.ftdoctor]\n{body}\n")


def test_config_is_found_walking_up_from_the_checked_path(run_check, repo: Path) -> None:
    write_config(repo, 'ignore = ["seed-not-set", "FTD118"]')
    assert rules_found(run_check, "src/pkg/train.py", cwd=repo) == {"missing-zero-grad"}
    # from elsewhere too: discovery follows the paths, not the working directory
    assert rules_found(run_check, str(repo / "src"), cwd=repo.parent) == {"missing-zero-grad"}


def test_pyproject_without_our_table_is_skipped(run_check, repo: Path) -> None:
    write_config(repo, 'ignore = ["ALL"]')
    (repo / "src" / "pyproject.toml").write_text("[project]\nname = 'inner'\n")
    assert rules_found(run_check, "src/pkg", cwd=repo) == set()


def test_nearest_config_wins(run_check, repo: Path) -> None:
    write_config(repo, 'ignore = ["ALL"]')
    write_config(repo / "src", 'select = ["FTD125"]')
    assert rules_found(run_check, "src/pkg", cwd=repo) == {"seed-not-set"}


def test_fail_on_from_config_and_cli_override(run_check, repo: Path) -> None:
    write_config(repo, 'select = ["train-loader-not-shuffled"]\nfail-on = "error"')
    assert run_check("check", "src", cwd=repo).code == 0
    assert run_check("check", "--fail-on", "warning", "src", cwd=repo).code == 1


def test_severity_override_by_slug_or_code(run_check, repo: Path) -> None:
    write_config(repo, 'select = ["seed-not-set"]\n[tool.ftdoctor.severity]\nFTD125 = "error"')
    result = run_check("check", "--format", "json", "src", cwd=repo)
    assert result.code == 1
    assert json.loads(result.stdout)["findings"][0]["severity"] == "error"
    write_config(repo, 'select = ["missing-zero-grad"]\n[tool.ftdoctor.severity]\nmissing-zero-grad = "info"')
    assert run_check("check", "src", cwd=repo).code == 0


def test_cli_select_replaces_configured_select_and_ignore(run_check, repo: Path) -> None:
    write_config(repo, 'select = ["FTD101"]\nignore = ["seed-not-set"]')
    assert rules_found(run_check, "--select", "seed-not-set", "src", cwd=repo) == {"seed-not-set"}


def test_cli_ignore_adds_to_configured_ignore(run_check, repo: Path) -> None:
    write_config(repo, 'ignore = ["seed-not-set"]')
    assert rules_found(run_check, "--ignore", "FTD101", "src", cwd=repo) == {"train-loader-not-shuffled"}


def test_explicit_config_file(run_check, repo: Path, tmp_path: Path) -> None:
    other = tmp_path / "elsewhere"
    other.mkdir()
    write_config(other, 'select = ["FTD118"]')
    write_config(repo, 'ignore = ["ALL"]')
    assert rules_found(run_check, "--config", str(other / "pyproject.toml"), "src", cwd=repo) == {"train-loader-not-shuffled"}


def test_exclude_is_relative_to_the_config_and_gitignore_style(run_check, repo: Path) -> None:
    write_config(repo, 'exclude = ["build/", "*_generated.py", "/src/pkg/vendored"]')
    for rel in ("build/a.py", "src/pkg/b_generated.py", "src/pkg/vendored/c.py", "src/pkg/deeper/build/d.py"):
        path = repo / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("BUG()\n")
    (repo / "src" / "pkg" / "keep.py").write_text("BUG()\n")
    data = json.loads(run_check("check", "--format", "json", ".", cwd=repo / "src").stdout)
    assert sorted({f["path"] for f in data["findings"]}) == ["pkg/keep.py", "pkg/train.py"]


def test_explicit_files_are_excluded_only_with_force_exclude(run_check, repo: Path) -> None:
    write_config(repo, 'exclude = ["src/pkg/"]')
    assert run_check("check", "src/pkg/train.py", cwd=repo).code == 1
    forced = run_check("check", "--force-exclude", "--format", "json", "src/pkg/train.py", cwd=repo)
    assert forced.code == 0 and json.loads(forced.stdout)["files_checked"] == 0


@pytest.mark.parametrize(
    ("body", "named"),
    [
        ('selct = ["ALL"]', "tool.ftdoctor.selct"),
        ('ignore = "seed-not-set"', "tool.ftdoctor.ignore"),
        ('select = ["not-a-rule"]', "tool.ftdoctor.select"),
        ('fail-on = "sometimes"', "tool.ftdoctor.fail-on"),
        ('exclude = [1, 2]', "tool.ftdoctor.exclude"),
        ('[tool.ftdoctor.severity]\nfoo = "error"', "tool.ftdoctor.severity.foo"),
        ('[tool.ftdoctor.severity]\nseed-not-set = "fatal"', "tool.ftdoctor.severity.seed-not-set"),
        ('select = [', "pyproject.toml is not valid TOML"),
    ],
)
def test_invalid_config_is_exit_2_naming_the_key(run_check, repo: Path, body: str, named: str) -> None:
    write_config(repo, body)
    result = run_check("check", "src", cwd=repo)
    assert result.code == 2
    assert named in result.stderr
    assert "Traceback" not in result.stderr and result.stderr.count("\n") <= 2


def test_broken_unrelated_pyproject_above_is_ignored(run_check, repo: Path) -> None:
    (repo / "pyproject.toml").write_text("this is [not toml")
    assert run_check("check", "src", cwd=repo).code == 1


def test_missing_explicit_config_is_exit_2(run_check, repo: Path) -> None:
    result = run_check("check", "--config", "nope.toml", "src", cwd=repo)
    assert result.code == 2 and "nope.toml" in result.stderr


def test_a_folder_named_explicitly_is_walked_even_if_excluded(run_check, repo: Path) -> None:
    write_config(repo, 'exclude = ["src/"]')
    assert run_check("check", ".", cwd=repo).code == 0  # walked from above: excluded
    assert run_check("check", "src/pkg", cwd=repo).code == 1  # named: checked
    assert run_check("check", "--force-exclude", "src/pkg", cwd=repo).code == 0
