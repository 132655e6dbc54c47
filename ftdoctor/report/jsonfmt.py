"""``--format json``: exactly the contract's shape, :meth:`Report.to_dict`."""

from __future__ import annotations

import json

from ftdoctor.findings import Report


def render(report: Report) -> str:
    return json.dumps(report.to_dict(), indent=2, ensure_ascii=False, allow_nan=False, default=_jsonable) + "\n"


def _jsonable(value: object) -> object:
    # Runtime evidence may hold numpy scalars or tuples-of-things; never crash the report on them.
    item = getattr(value, "item", None)
    if callable(item):
        return item()
    if isinstance(value, (set, frozenset)):
        return sorted(value, key=str)
    return str(value)
