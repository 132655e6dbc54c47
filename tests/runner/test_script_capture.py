"""The capture under `ftdoctor run SCRIPT.py`: optimizers seen as built, the model they train, patches undone."""

from __future__ import annotations

import copy
import sys
from pathlib import Path

import pytest
import torch
from torch import nn

from ftdoctor.runner.capture import Capture, _PatchOnImport, find_model, optimizer_parameters

torch.set_num_threads(1)


class Classifier(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.encoder = nn.Sequential(nn.Embedding(50, 8), nn.Linear(8, 8))
        self.head = nn.Linear(8, 2)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        return self.head(self.encoder(ids).mean(1))


class CustomAdam(torch.optim.Adam):
    """A user's optimizer subclass: it reaches Optimizer.__init__ through super()."""


def test_every_optimizer_is_reported_when_built() -> None:
    model = Classifier()
    seen: list[torch.optim.Optimizer] = []
    with Capture(seen.append):
        sgd = torch.optim.SGD(model.parameters(), lr=0.1)
        adamw = torch.optim.AdamW(model.head.parameters(), lr=0.1)
        custom = CustomAdam(model.encoder.parameters())
    torch.optim.SGD(model.parameters(), lr=0.1)  # after the capture: not reported
    assert seen == [sgd, adamw, custom]
    # a reported optimizer is fully built and works
    model(torch.tensor([[1, 2]])).sum().backward()
    custom.step()


def test_patches_are_undone_even_when_the_block_raises() -> None:
    original_init = torch.optim.Optimizer.__init__
    meta_path = list(sys.meta_path)
    with pytest.raises(RuntimeError, match="boom"), Capture(lambda optimizer: None, lambda trainer: None):
        assert torch.optim.Optimizer.__init__ is not original_init
        raise RuntimeError("boom")
    assert torch.optim.Optimizer.__init__ is original_init
    assert sys.meta_path == meta_path


def test_a_failing_callback_never_breaks_the_script(capsys: pytest.CaptureFixture[str]) -> None:
    def broken(optimizer: torch.optim.Optimizer) -> None:
        raise ValueError("bug in the doctor")

    with Capture(broken):
        optimizer = torch.optim.SGD(Classifier().parameters(), lr=0.1)
    assert optimizer.param_groups
    assert "ftdoctor: internal error while capturing an optimizer: ValueError: bug in the doctor" in capsys.readouterr().err


def test_the_trainer_class_is_patched_and_restored() -> None:
    from transformers.trainer import Trainer

    original = Trainer.__init__
    with Capture(lambda optimizer: None, lambda trainer: None):
        assert Trainer.__init__ is not original
    assert Trainer.__init__ is original


def test_a_module_imported_during_the_capture_is_patched_on_import(tmp_path: Path) -> None:
    (tmp_path / "late_module.py").write_text("VALUE = 1\n")
    loaded: list[str] = []
    finder = _PatchOnImport("late_module", lambda module: loaded.append(module.VALUE))
    sys.path.insert(0, str(tmp_path))
    sys.meta_path.insert(0, finder)
    try:
        import late_module  # noqa: F401  (imported for its side effect on the finder)
    finally:
        sys.meta_path.remove(finder)
        sys.path.remove(str(tmp_path))
        sys.modules.pop("late_module", None)
    assert loaded == [1]
    assert late_module.__loader__ is not finder  # handed back to the real loader


def test_the_model_is_the_outermost_module_holding_the_parameters() -> None:
    model = Classifier()
    assert find_model(model.parameters()) is model
    # a head left out of the optimizer still belongs to the watched model
    assert find_model(model.encoder.parameters()) is model


def test_a_container_without_forward_is_looked_into() -> None:
    models = nn.ModuleDict({"student": Classifier(), "teacher": Classifier()})
    assert find_model(models["student"].parameters()) is models["student"]


def test_models_not_built_under_the_capture_are_found() -> None:
    base = Classifier()
    copied = copy.deepcopy(base)
    assert find_model(copied.parameters()) is copied


def test_parameters_of_no_module_name_no_model() -> None:
    loose = nn.Parameter(torch.zeros(3))
    assert find_model([loose]) is None
    assert find_model([]) is None


def test_optimizer_parameters_span_every_group() -> None:
    model = Classifier()
    optimizer = torch.optim.AdamW(
        [{"params": model.encoder.parameters()}, {"params": model.head.parameters(), "lr": 1e-2}]
    )
    assert {id(p) for p in optimizer_parameters(optimizer)} == {id(p) for p in model.parameters()}



def test_a_data_parallel_wrapper_is_looked_through() -> None:
    # The wrapper has no config (num_labels) and calls the inner model's forward: watch the inner one.
    inner = Classifier()
    wrapped = nn.DataParallel(inner)
    assert find_model(wrapped.parameters()) is inner
