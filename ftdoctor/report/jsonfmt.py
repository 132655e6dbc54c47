"""``--format json``: exactly the contract's shape, :meth:`Report.to_dict`."""

from __future__ import annotations

import json
import math
from typing import Any

from ftdoctor.findings import Report


def render(report: Report) -> str:
    return dumps(report.to_dict())


def dumps(data: Any) -> str:
    """Strict JSON (no NaN/Infinity tokens), two-space indented, newline-terminated."""
    return json.dumps(jsonable(data), indent=2, ensure_ascii=False, allow_nan=False) + "\n"


def jsonable(value: Any) -> Any:
    """``value`` with what JSON cannot hold made plain.

    Non-finite floats (a diverged run's loss) become null; numpy/torch scalars
    their Python value; sets sorted lists; anything else its ``str``.
    """
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if value is None or isinstance(value, (str, int, bool)):
        return value
    if isinstance(value, dict):
        return {str(key): jsonable(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(item) for item in value]
    if isinstance(value, (set, frozenset)):
        return [jsonable(item) for item in sorted(value, key=str)]
    item = getattr(value, "item", None)
    if callable(item):
        try:
            return jsonable(item())
        except (TypeError, ValueError):
            pass
    return str(value)
