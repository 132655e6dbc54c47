"""ftdoctor — the fine-tuning doctor.

The static checker (``ftdoctor check``) imports nothing heavy. The runtime
doctor is reached lazily through ``ftdoctor.watch`` so that importing this
package never pulls torch.
"""

from __future__ import annotations

from typing import Any

from ftdoctor.version import __version__

__all__ = ["__version__", "watch"]


def __getattr__(name: str) -> Any:
    # Lazy attribute: `ftdoctor.watch` imports the runtime half on first use.
    if name == "watch":
        from ftdoctor.runtime.doctor import watch

        return watch
    raise AttributeError(f"module 'ftdoctor' has no attribute {name!r}")
