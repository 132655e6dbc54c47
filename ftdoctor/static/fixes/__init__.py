"""Fixers for `ftdoctor check --fix`: every module of this package registers its classes.

Adding a fix is one small class in a module here (``@register_fixer``, ``slug``,
``safety``, ``fix()``) plus ``fix: safe|unsafe`` in the rule's catalogue entry.
"""

from __future__ import annotations

import importlib
import pkgutil

from ftdoctor.static.fixes.base import FIXERS, Edit, FixSource, Fixer, register_fixer

__all__ = ["FIXERS", "Edit", "FixSource", "Fixer", "register_fixer"]


def load_all() -> None:
    """Import every fixer module of this package (idempotent)."""
    for info in pkgutil.iter_modules(__path__):
        if info.name != "base":
            importlib.import_module(f"{__name__}.{info.name}")


load_all()
