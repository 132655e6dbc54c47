"""Which files `check` reads when it walks folders, and how it decodes them."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from ftdoctor.sources import UndecodableSource, decode_python, discover_files

pytestmark = pytest.mark.usefixtures("marker_engine")


def checked_paths(run_check, cwd: Path, *paths: str) -> list[str]:
    result = run_check("check", "--format", "json", "--select", "FTD101", *(paths or (".",)), cwd=cwd)
    assert result.code in (0, 1), result.stderr
    return sorted(f["path"] for f in json.loads(result.stdout)["findings"])


def make(root: Path, *relative: str) -> None:
    for rel in relative:
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("BUG()\n")


def test_walk_skips_hidden_cache_venv_and_site_packages(run_check, tmp_path: Path) -> None:
    make(tmp_path, "a.py", "pkg/b.py", ".hidden/c.py", "__pycache__/d.py", "lib/site-packages/e.py",
         "venv/f.py", "myenv/g.py", "node_modules/h.py", "pkg/notes.txt", "pkg/setup.cfg")
    (tmp_path / "myenv" / "pyvenv.cfg").write_text("home = /usr\n")
    assert checked_paths(run_check, tmp_path) == ["a.py", "pkg/b.py"]


def test_a_named_hidden_folder_is_still_walked(run_check, tmp_path: Path) -> None:
    make(tmp_path, ".config/x.py")
    assert checked_paths(run_check, tmp_path, ".config") == [".config/x.py"]


@pytest.mark.skipif(not hasattr(os, "symlink"), reason="needs symlinks")
def test_symlink_loops_terminate_and_files_are_checked_once(run_check, tmp_path: Path) -> None:
    make(tmp_path, "pkg/sub/a.py")
    os.symlink(tmp_path / "pkg", tmp_path / "pkg" / "sub" / "loop")  # pkg/sub/loop -> pkg
    os.symlink(tmp_path / "pkg" / "sub" / "a.py", tmp_path / "pkg" / "alias.py")
    os.symlink(tmp_path / "missing.py", tmp_path / "pkg" / "dangling.py")
    data = json.loads(run_check("check", "--format", "json", ".", cwd=tmp_path).stdout)
    assert data["files_checked"] == 1
    assert [f["path"] for f in data["findings"]] == ["pkg/alias.py"]  # the first name met in walk order


def test_files_outside_the_working_directory_keep_their_given_path(run_check, tmp_path: Path) -> None:
    make(tmp_path, "outside/x.py")
    (tmp_path / "cwd").mkdir()
    assert checked_paths(run_check, tmp_path / "cwd", "../outside/x.py") == ["../outside/x.py"]


def test_discovery_order_is_stable(tmp_path: Path) -> None:
    make(tmp_path, "b.py", "a/z.py", "a/b.py", "c.ipynb")
    names = [f.path.relative_to(tmp_path).as_posix() for f in discover_files([str(tmp_path)])]
    assert names == ["b.py", "c.ipynb", "a/b.py", "a/z.py"]  # a folder's files, then its subfolders, sorted


@pytest.mark.parametrize(
    ("data", "text"),
    [
        (b"\xef\xbb\xbfx = 1\n", "x = 1\n"),  # UTF-8 BOM
        ("# -*- coding: latin-1 -*-\nname = 'café'\n".encode("latin-1"), "# -*- coding: latin-1 -*-\nname = 'café'\n"),
        (b"", ""),
        ("s = 'ünïcode'\n".encode(), "s = 'ünïcode'\n"),
    ],
)
def test_decode_honours_bom_and_coding_cookie(data: bytes, text: str) -> None:
    assert decode_python(data) == text


@pytest.mark.parametrize(
    ("data", "reason", "line"),
    [
        (b"x = 1\ny = '\xff\xfe'\n", "not valid UTF-8 text (invalid start byte on line 2)", 2),
        (b"# coding: klingon\nx = 1\n", "encoding declaration is invalid", 1),
        (b"\x7fELF\x02\x01\x01\x00\x00\x00", "binary", None),
        (b"# -*- coding: utf-8 -*-\nx = '\xe9'\n", "not valid UTF-8", 2),
        (b"#!/usr/bin/env python\n# coding: latin-9000\n", "encoding declaration is invalid", 2),
    ],
)
def test_undecodable_bytes_explain_why(data: bytes, reason: str, line: int | None) -> None:
    with pytest.raises(UndecodableSource) as raised:
        decode_python(data)
    assert reason in str(raised.value)
    assert raised.value.line == line


def test_undecodable_file_is_a_parse_error_finding(run_check, tmp_path: Path) -> None:
    (tmp_path / "latin.py").write_bytes(b"x = 1\nname = 'caf\xe9'\n")
    (tmp_path / "ok.py").write_text("BUG()\n")
    data = json.loads(run_check("check", "--format", "json", ".", cwd=tmp_path).stdout)
    assert [(f["path"], f["rule"], f["line"]) for f in data["findings"]] == [
        ("latin.py", "parse-error", 2), ("ok.py", "missing-zero-grad", 1)]
    assert "UTF-8" in data["findings"][0]["message"]
