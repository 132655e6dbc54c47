"""The distribution: an installable name that is ours, one version, install lines that install this project."""

from __future__ import annotations

import importlib
import re
import sys
from pathlib import Path

import pytest

import ftdoctor

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

REPO = Path(__file__).resolve().parents[1]
PROJECT = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))["project"]
#: On PyPI these names install an unrelated tool with the same `ftdoctor` command.
TAKEN = {"ftdoctor", "finetune-doctor"}
DISTRIBUTION = "fine-tuning-doctor"


def normalized(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def test_distribution_name_is_not_the_other_projects() -> None:
    assert normalized(PROJECT["name"]) == DISTRIBUTION
    assert normalized(PROJECT["name"]) not in TAKEN


def test_command_and_import_name_stay_ftdoctor() -> None:
    module, _, attribute = PROJECT["scripts"]["ftdoctor"].partition(":")
    assert callable(getattr(importlib.import_module(module), attribute))


def test_extras_refer_to_this_distribution() -> None:
    for extra, requirements in PROJECT["optional-dependencies"].items():
        for requirement in requirements:
            name = re.split(r"[\[<>=; ]", requirement, maxsplit=1)[0]
            assert normalized(name) not in TAKEN, f"extra {extra!r} would install the other project: {requirement}"


def test_one_version_from_the_package() -> None:
    pyproject = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))
    assert "version" in PROJECT.get("dynamic", []) and "version" not in PROJECT
    assert pyproject["tool"]["hatch"]["version"]["path"] == "ftdoctor/version.py"
    assert re.fullmatch(r"\d+\.\d+\.\d+", ftdoctor.__version__)


INSTALL = re.compile(r"pip install\s+(?:-[\w-]+\s+)*(?P<target>\"[^\"]+\"|'[^']+'|\S+)")


def install_targets(text: str) -> list[str]:
    return [m.group("target").strip("\"'`") for m in INSTALL.finditer(text)]


@pytest.mark.parametrize("document", ["README.md", ".pre-commit-hooks.yaml", "action.yml"])
def test_every_install_line_installs_this_project(document: str) -> None:
    path = REPO / document
    if not path.exists():
        pytest.skip(f"{document} not present")
    for target in install_targets(path.read_text(encoding="utf-8")):
        if target.startswith(("torch", "-")):
            continue  # the CPU torch wheel the quickstart pins
        name = re.split(r"[\[<>=@ ]", target, maxsplit=1)[0]
        local = name.startswith((".", "/", "$", "${{"))
        assert local or normalized(name) == DISTRIBUTION, f"{document}: `pip install {target}` installs something else"


def test_install_line_check_can_fail() -> None:
    assert install_targets('pip install ftdoctor && pip install -e ".[test]"') == ["ftdoctor", ".[test]"]


def test_readme_names_the_project_that_shares_the_command() -> None:
    readme = " ".join((REPO / "README.md").read_text(encoding="utf-8").split())
    assert "fine-tuning-doctor" in readme
    assert "finetune-doctor" in readme and "checkpoint picker" in readme
