"""Module summaries cached by content hash under ``.ftdoctor_cache/`` at the project root (as ruff does).

One JSON file per summarised source, named by the hash of its bytes, in a folder named for the cache
format and a fingerprint of the analysis code, so an upgraded or edited ftdoctor never reads old
summaries. Writes go to a temporary file renamed into place, so parallel workers never see half a
file; a file that cannot be read or parsed counts as a miss and is rewritten; folders of other versions are
removed when a new one is made. The cache folder holds a ``.gitignore`` of ``*`` so it never shows up in
version control.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from pathlib import Path
from typing import Any

from ftdoctor.version import __version__

CACHE_DIR = ".ftdoctor_cache"
#: bump when the summary layout changes
FORMAT = 2


def content_key(data: bytes) -> str:
    return hashlib.blake2b(data, digest_size=16).hexdigest()


class SummaryCache:
    """Summaries of one project, by content key; silently inert where the folder cannot be written."""

    def __init__(self, root: Path) -> None:
        self.base = root / CACHE_DIR
        self.folder = self.base / f"summaries-{FORMAT}-{__version__}-{_code_fingerprint()}"
        self.writable = True

    def load(self, key: str) -> dict[str, Any] | None:
        try:
            with open(self.folder / f"{key}.json", encoding="utf-8") as handle:
                payload = json.load(handle)
        except (OSError, ValueError):
            return None
        if not isinstance(payload, dict) or payload.get("key") != key or not isinstance(payload.get("summary"), dict):
            return None
        return payload["summary"]

    def store(self, key: str, summary: dict[str, Any]) -> None:
        if not self.writable:
            return
        try:
            self._prepare()
            temporary = self.folder / f".{key}.{os.getpid()}.tmp"
            with open(temporary, "w", encoding="utf-8") as handle:
                json.dump({"key": key, "summary": summary}, handle, separators=(",", ":"))
            os.replace(temporary, self.folder / f"{key}.json")
        except OSError:
            self.writable = False  # read-only checkout, full disk: carry on without a cache

    def _prepare(self) -> None:
        if self.folder.is_dir():
            return
        self.folder.mkdir(parents=True, exist_ok=True)
        ignore = self.base / ".gitignore"
        if not ignore.exists():
            ignore.write_text("# Automatically created by ftdoctor.\n*\n", encoding="utf-8")
        for stale in self.base.glob("summaries-*"):  # written by another ftdoctor: never read again
            if stale != self.folder:
                shutil.rmtree(stale, ignore_errors=True)


_FINGERPRINT: str | None = None


def _code_fingerprint() -> str:
    """Sizes and modification times of the static engine's sources: summaries made by other code are not reused."""
    global _FINGERPRINT
    if _FINGERPRINT is None:
        here = Path(__file__).resolve().parent
        digest = hashlib.blake2b(digest_size=6)
        for path in sorted(here.glob("*.py")):
            try:
                stat = path.stat()
            except OSError:
                continue
            digest.update(f"{path.name}:{stat.st_size}:{stat.st_mtime_ns};".encode())
        _FINGERPRINT = digest.hexdigest()
    return _FINGERPRINT
