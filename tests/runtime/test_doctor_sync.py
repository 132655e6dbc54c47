"""The doctor never forces a host-device sync per step: statistics stay on the device and are
read back at sampled steps only (on a GPU each read stalls the pipeline).

On CPU there is no stall to time, so the test counts the calls that would sync —
``Tensor.item``, ``.cpu()``, ``.tolist()`` and ``bool``/``float``/``int`` of a tensor —
made by the doctor's own code while it watches a run, and proves them O(sampled steps), not O(steps).
"""

from __future__ import annotations

import sys
from collections import Counter
from pathlib import Path
from typing import Any, Callable

import pytest
import torch
import torch.nn.functional as F
from torch import nn

import ftdoctor
from ftdoctor.runtime.options import DoctorOptions

torch.set_num_threads(1)

SYNCING = ("item", "cpu", "tolist", "__bool__", "__float__", "__int__")
#: only the doctor's own reads count (torch's optimizers read their CPU step counters themselves)
DOCTOR = str(Path(ftdoctor.__file__).resolve().parent)


def _split_model() -> tuple[nn.Module, nn.Module, torch.optim.Optimizer]:
    torch.manual_seed(0)
    encoder = nn.Sequential(nn.Linear(8, 16), nn.Tanh(), nn.Dropout(0.1))
    head = nn.Linear(16, 2)
    optimizer = torch.optim.AdamW([*encoder.parameters(), *head.parameters()], lr=1e-3)
    return encoder, head, optimizer


def _count_syncs(monkeypatch: pytest.MonkeyPatch, counts: Counter[str], enabled: list[bool]) -> None:
    for name in SYNCING:
        original = getattr(torch.Tensor, name)

        def counting(self: torch.Tensor, *args: Any, __name: str = name, __original: Callable[..., Any] = original) -> Any:
            if enabled[0] and sys._getframe(1).f_code.co_filename.startswith(DOCTOR):
                counts[__name] += 1
            return __original(self, *args)

        monkeypatch.setattr(torch.Tensor, name, counting)


def test_syncs_are_proportional_to_sampled_steps_not_to_steps(monkeypatch: pytest.MonkeyPatch) -> None:
    encoder, head, optimizer = _split_model()
    options = DoctorOptions()
    x = torch.randn(1200, 16, 8)
    y = (x[:, :, 0] > 0).long()
    counts: Counter[str] = Counter()
    enabled = [False]
    _count_syncs(monkeypatch, counts, enabled)
    per_range: dict[str, int] = {}
    with ftdoctor.watch(encoder, optimizer, options=options) as doctor:
        doctor.watch_module(head)
        for step in range(1200):
            if step in (400, 800):
                per_range[f"before {step}"] = sum(counts.values())
            enabled[0] = step >= 400  # past every rule's window (the longest is 128 batches)
            optimizer.zero_grad()
            F.cross_entropy(head(encoder(x[step])), y[step]).backward()  # labels only reach the loss
            optimizer.step()
        enabled[0] = False
    assert doctor.step == 1200 and doctor.observed["labels"] and doctor.observed["loss"]
    first, second = per_range["before 800"] - per_range["before 400"], sum(counts.values()) - per_range["before 800"]
    sampled = 400 // options.sparse_every  # measured steps in each range of 400
    # a handful of reads per sampled step (gradient norms + losses, update ratio, clearing check)
    # plus one label fold every 64 batches; a per-step sync would make it >= 400
    assert first <= 4 * sampled + 400 // 64 + 2, counts
    assert second <= 4 * sampled + 400 // 64 + 2, counts
    # and the losses of the steps in between were still read back, late but complete
    assert all(record.loss is not None for record in doctor.history[:-options.sparse_every])


def test_unmeasured_steps_make_no_sync_at_all(monkeypatch: pytest.MonkeyPatch) -> None:
    encoder, head, optimizer = _split_model()
    options = DoctorOptions(dense_steps=2, sparse_every=50)
    counts: Counter[str] = Counter()
    enabled = [False]
    _count_syncs(monkeypatch, counts, enabled)
    with ftdoctor.watch(encoder, optimizer, options=options) as doctor:
        doctor.watch_module(head)
        for step in range(300):
            # steps 151..199 are neither measured (every 50th) nor inside a rule's batch window
            enabled[0] = 151 <= step < 199 and (step + 1) % 64 != 0  # the label histogram folds every 64th
            optimizer.zero_grad()
            F.cross_entropy(head(encoder(torch.randn(4, 8))), torch.tensor([0, 1, 0, 1])).backward()
            optimizer.step()
        enabled[0] = False
    assert sum(counts.values()) == 0, counts


def test_labels_out_of_range_after_the_window_are_still_caught_and_explain_the_crash() -> None:
    torch.manual_seed(0)
    model = nn.Linear(8, 2)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    # step 8 is routine (past the dense phase, not measured) and past the read-back window
    options = DoctorOptions(label_window_batches=2, dense_steps=2, sparse_every=50)
    doctor = ftdoctor.watch(model, optimizer, options=options)
    with pytest.raises(IndexError, match="out of bounds"):
        with doctor:
            for step in range(8):
                labels = torch.tensor([0, 1, 0, 2 if step == 7 else 1])  # the batch in flight at the crash
                optimizer.zero_grad()
                F.cross_entropy(model(torch.randn(4, 8)), labels).backward()
                optimizer.step()
    finding = next(f for f in doctor.findings if f.rule == "label-out-of-range")
    assert finding.evidence["max_label"] == 2 and finding.evidence["out_of_range"] == 1
    assert next(rule for rule in doctor.rules if rule.slug == "label-out-of-range").explains(doctor.exception)


def test_a_nan_loss_read_back_late_is_reported_at_the_step_it_fed() -> None:
    model = nn.Linear(8, 2)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01)
    with ftdoctor.watch(model, optimizer, options=DoctorOptions(dense_steps=2, sparse_every=10)) as doctor:
        for step in range(30):
            optimizer.zero_grad()
            x = torch.randn(4, 8) * (float("nan") if step == 13 else 1.0)  # the 14th step, unmeasured, gets a NaN
            F.cross_entropy(model(x), torch.tensor([0, 1, 0, 1])).backward()
            optimizer.step()
    finding = next(f for f in doctor.findings if f.rule == "non-finite-loss")
    assert finding.step == 14 and "optimizer step 14" in finding.message
