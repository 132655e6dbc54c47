"""Runtime rules: one small module per rule, each registered with ``@register_runtime_rule``.

Importing this package imports every rule module in it (modules whose name
starts with ``_`` are shared helpers, not rules).
"""

from __future__ import annotations

import importlib
import pkgutil

for _module in pkgutil.iter_modules(__path__):
    if not _module.name.startswith("_"):
        importlib.import_module(f"{__name__}.{_module.name}")
