"""Base class of the rules that judge the datasets the doctor was shown (not a rule itself)."""

from __future__ import annotations

from typing import Any

from ftdoctor.runtime.events import DatasetsSeen, LabelledData, Preflight
from ftdoctor.runtime.rule import RuntimeRule


class DatasetRule(RuntimeRule):
    """Judges ``train_data``/``val_data`` at pre-flight (step 0), and again at the step
    ``doctor.observe_datasets`` brings them when that happens after the pre-flight
    (before it, the Preflight event already carries them)."""

    def __init__(self, options: Any = None) -> None:
        super().__init__(options)
        self.preflight_seen = False

    def on_preflight(self, event: Preflight) -> None:
        self.preflight_seen = True
        self.start(event)
        self.judge_datasets(0, event.train_data, event.val_data)

    def on_datasets(self, event: DatasetsSeen) -> None:
        if self.preflight_seen and not self.fired:
            self.judge_datasets(event.step, event.train_data, event.val_data)

    def start(self, event: Preflight) -> None:
        """Read what the rule needs from the pre-flight (head width, model kind)."""

    def judge_datasets(self, step: int, train: LabelledData | None, val: LabelledData | None) -> None:
        raise NotImplementedError
