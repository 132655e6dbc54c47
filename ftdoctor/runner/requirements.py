"""What ``ftdoctor run`` needs installed, checked before anything heavy is imported.

The checker installs alone (``check`` never needs torch); ``run`` needs the ``run``
extra. A checker-only install must hear which extra to install, not "internal error".
"""

from __future__ import annotations

import importlib.util

from ftdoctor.errors import FtdoctorError
from ftdoctor.version import DISTRIBUTION

#: import name -> what it is for, in the order a message lists them
RUN_EXTRA_MODULES = {
    "torch": "PyTorch",
    "transformers": "Hugging Face transformers",
    "datasets": "Hugging Face datasets",
    "sklearn": "scikit-learn (metrics)",
    "pydantic": "pydantic (run configs)",
}
RUN_INSTALL = f'pip install "{DISTRIBUTION}[run]"'


def missing_run_modules() -> list[str]:
    return [name for name in RUN_EXTRA_MODULES if importlib.util.find_spec(name) is None]


def require_run_extra() -> None:
    """Exit 2 naming the install command when the ``run`` extra is not installed."""
    missing = missing_run_modules()
    if missing:
        what = ", ".join(RUN_EXTRA_MODULES[name] for name in missing)
        raise FtdoctorError(
            f"`ftdoctor run` needs the runtime extra, and this install lacks {what}; install it with: "
            f"{RUN_INSTALL}  (the checker, `ftdoctor check`, needs none of it)"
        )
