"""One registry type for both engines: slug -> rule class, filled by a decorator."""

from __future__ import annotations

from typing import TypeVar

T = TypeVar("T", bound=type)


class RuleRegistry(dict[str, type]):
    """Rule classes of one kind (``static`` or ``runtime``) by slug.

    ``registry.register`` is the class decorator; registering a slug twice is
    a programming error caught at import time.
    """

    def __init__(self, kind: str) -> None:
        super().__init__()
        self.kind = kind

    def register(self, cls: T) -> T:
        slug = cls.slug  # type: ignore[attr-defined]
        if slug in self:
            raise ValueError(f"{self.kind} rule {slug} registered twice")
        self[slug] = cls
        return cls
