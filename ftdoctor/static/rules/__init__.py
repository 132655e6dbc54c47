"""Static rules: every module of this package is imported so its ``@register_static_rule`` classes register."""

from __future__ import annotations

import importlib
import pkgutil


def load_all() -> None:
    """Import every rule module of this package (idempotent)."""
    for info in pkgutil.iter_modules(__path__):
        importlib.import_module(f"{__name__}.{info.name}")


load_all()
