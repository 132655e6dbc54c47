"""The doctor itself: clean detach, guarded rules, settings, report, and the public API."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import torch
from harness import Spec, tiny_bert, train

import ftdoctor
from ftdoctor.findings import Severity
from ftdoctor.runtime import distributed
from ftdoctor.runtime.doctor import Doctor
from ftdoctor.runtime.hooks import losses_patched
from ftdoctor.runtime.options import DoctorOptions
from ftdoctor.runtime.rules.grads_accumulating import GradsAccumulating
from ftdoctor.settings import Settings

ORIGINAL_CROSS_ENTROPY = torch.nn.functional.cross_entropy


def _hook_counts(model: torch.nn.Module, optimizer: torch.optim.Optimizer) -> dict[str, int]:
    return {
        "forward_pre": len(model._forward_pre_hooks),
        "forward": len(model._forward_hooks),
        "step_pre": len(optimizer._optimizer_step_pre_hooks),
        "step_post": len(optimizer._optimizer_step_post_hooks),
        "zero_grad_wrapped": int("zero_grad" in vars(model)) + int("zero_grad" in vars(optimizer)),
    }


def _steps(model: torch.nn.Module, optimizer: torch.optim.Optimizer, count: int = 2, **model_kwargs: Any) -> None:
    for _ in range(count):
        optimizer.zero_grad()
        out = model(input_ids=torch.randint(5, 200, (4, 10)), labels=torch.randint(0, 2, (4,)), **model_kwargs)
        out.loss.backward()
        optimizer.step()


# --- attach / detach ------------------------------------------------------------------------------


def test_everything_detaches_on_exit() -> None:
    model = tiny_bert()
    optimizer = torch.optim.AdamW(model.parameters())
    before = _hook_counts(model, optimizer)
    with ftdoctor.watch(model, optimizer) as doctor:
        assert _hook_counts(model, optimizer) != before
        assert losses_patched()
        _steps(model, optimizer)
    assert _hook_counts(model, optimizer) == before
    assert torch.nn.functional.cross_entropy is ORIGINAL_CROSS_ENTROPY
    assert not losses_patched() and not doctor.attached
    assert doctor.step == 2
    _steps(model, optimizer)  # the model and optimizer still work, unobserved
    assert doctor.step == 2


def test_detaches_when_the_training_raises() -> None:
    model = tiny_bert()
    optimizer = torch.optim.AdamW(model.parameters())
    before = _hook_counts(model, optimizer)
    with pytest.raises(ValueError, match="boom"):
        with ftdoctor.watch(model, optimizer) as doctor:
            _steps(model, optimizer, 1)
            raise ValueError("boom")
    assert _hook_counts(model, optimizer) == before and not losses_patched()
    assert isinstance(doctor.exception, ValueError)


def test_two_doctors_share_the_loss_patch_until_both_leave() -> None:
    first, second = tiny_bert(), tiny_bert()
    with ftdoctor.watch(first) as one:
        with ftdoctor.watch(second):
            assert losses_patched()
        assert losses_patched()
        one.detach()
        assert not losses_patched()


# --- guarded rules -----------------------------------------------------------------------------------


def test_a_rule_that_raises_is_disabled_and_training_continues(monkeypatch: pytest.MonkeyPatch, capsys: Any) -> None:
    def broken(self: GradsAccumulating, event: Any) -> None:
        raise ZeroDivisionError("bug in a rule")

    monkeypatch.setattr(GradsAccumulating, "on_before_step", broken)
    run = train(Spec(orphan_head=True, skip_zero_grad=True, steps=6))
    assert run.error is None and run.doctor.step == 6
    assert len(run.doctor.internal_errors) == 1 and "grads-accumulating" in run.doctor.internal_errors[0]
    assert capsys.readouterr().err.count("ftdoctor: internal error in rule grads-accumulating") == 1
    assert "dead-parameters" in run.slugs  # the other rules still judge


def test_a_failing_on_finding_callback_does_not_stop_the_run() -> None:
    model = tiny_bert()
    optimizer = torch.optim.AdamW([p for n, p in model.named_parameters() if not n.startswith("classifier")])
    seen = []
    with ftdoctor.watch(model, optimizer) as doctor:
        doctor.on_finding.append(seen.append)
        doctor.on_finding.append(lambda finding: 1 / 0)
        _steps(model, optimizer)
    assert [f.rule for f in seen] == ["params-not-in-optimizer"] and doctor.step == 2
    assert any("on_finding" in error for error in doctor.internal_errors)


# --- settings and report -----------------------------------------------------------------------------


def test_settings_ignore_and_severity_overrides_apply() -> None:
    ignored = train(Spec(orphan_head=True, steps=4, doctor_kwargs={"settings": Settings(ignore=["dead-parameters"])}))
    assert "dead-parameters" not in ignored.slugs
    assert "dead-parameters" not in {r.slug for r in ignored.doctor.rules}  # not even instantiated
    overridden = Settings(severity_overrides={"dead-parameters": Severity.INFO})
    run = train(Spec(orphan_head=True, steps=4, doctor_kwargs={"settings": overridden}))
    assert run.finding("dead-parameters").severity is Severity.INFO


def test_report_states_steps_overhead_metrics_and_history() -> None:
    run = train(Spec(skip_zero_grad=True, steps=5))
    report = run.doctor.report(metrics={"val_accuracy": 0.5})
    data = report.to_dict()
    assert data["mode"] == "run" and data["steps"] == 5
    assert 0 < data["overhead"] < 1
    assert data["metrics"] == {"val_accuracy": 0.5}
    assert data["findings"][0]["rule"] == "grads-accumulating"
    finding = data["findings"][0]
    # one numbering: the second step reuses gradients; the finding, its message and history row 2 all say 2
    assert finding["step"] == 2 and finding["evidence"] and "optimizer step 2 " in finding["message"]
    assert run.doctor.history[1].step == 2
    history = run.doctor.history
    assert [r.step for r in history] == [1, 2, 3, 4, 5]
    assert all(r.grad_norm and r.grad_norm > 0 and r.lr == 1e-3 for r in history)
    assert history[0].update_ratio is not None and history[0].loss == pytest.approx(run.losses[0], rel=1e-5)


def test_gradients_are_sampled_after_the_dense_phase() -> None:
    options = DoctorOptions(dense_steps=4, sparse_every=3, update_ratio_every=1)
    history = train(Spec(steps=10, doctor_kwargs={"options": options})).doctor.history
    measured = [r.step for r in history if r.grad_norm is not None]
    assert measured == [1, 2, 3, 4, 7, 10]  # steps 0-3 dense, then every 3rd (history steps are 1-based)
    assert [r.step for r in history if r.update_ratio is not None] == [1, 2, 3, 4, 7, 10]
    thorough = train(Spec(steps=10, doctor_kwargs={"options": DoctorOptions(thorough=True)})).doctor.history
    assert all(r.grad_norm is not None and r.update_ratio is not None for r in thorough)


# --- the public API ------------------------------------------------------------------------------------


def test_optimizer_added_after_watch_and_wrapped_optimizers() -> None:
    class Wrapper:  # like accelerate's AcceleratedOptimizer
        def __init__(self, optimizer: torch.optim.Optimizer) -> None:
            self.optimizer = optimizer

    model = tiny_bert()
    with ftdoctor.watch(model) as doctor:
        optimizer = torch.optim.AdamW(model.parameters())
        doctor.add_optimizer(Wrapper(optimizer))
        doctor.add_optimizer(optimizer)  # the same one again: ignored
        _steps(model, optimizer, 3)
    assert doctor.optimizers == [optimizer] and doctor.step == 3
    with pytest.raises(TypeError, match="torch.optim.Optimizer"):
        Doctor(model, optimizer=object())  # type: ignore[arg-type]


def test_label_counts_from_the_model_call_and_from_observe_batch() -> None:
    model = tiny_bert()
    optimizer = torch.optim.AdamW(model.parameters())
    with ftdoctor.watch(model, optimizer) as doctor:
        model(input_ids=torch.randint(5, 200, (4, 8)), labels=torch.tensor([0, 1, 1, -100]))
        with torch.no_grad():  # eval batches are not training labels
            model(input_ids=torch.randint(5, 200, (2, 8)), labels=torch.tensor([0, 0]))
    assert doctor.label_counts == {0: 1, 1: 2}
    with ftdoctor.watch(model, optimizer) as explicit:
        explicit.observe_batch({"labels": torch.tensor([1, 1, 0])})
        model(input_ids=torch.randint(5, 200, (4, 8)), labels=torch.tensor([0, 0, 0, 0]))  # not counted twice
    assert explicit.label_counts == {0: 1, 1: 2}


def test_training_in_eval_mode_is_not_an_evaluation() -> None:
    """Some train with model.eval() to disable dropout: backpropagated forwards are training forwards."""
    model = tiny_bert()
    optimizer = torch.optim.AdamW(model.parameters())
    model.eval()
    with ftdoctor.watch(model, optimizer) as doctor:
        _steps(model, optimizer, 3)
    assert not {"eval-with-grad", "dropout-in-eval"} & {f.rule for f in doctor.findings}


def test_eval_after_last_step_is_judged_at_detach() -> None:
    model = tiny_bert()
    optimizer = torch.optim.AdamW(model.parameters())
    with ftdoctor.watch(model, optimizer) as doctor:
        _steps(model, optimizer, 2)
        model.eval()  # eval mode, autograd still on, never backpropagated, no observe_eval
        model(input_ids=torch.randint(5, 200, (4, 8)))
    assert [f.rule for f in doctor.findings] == ["eval-with-grad"]


def test_distributed_helpers_in_a_single_process_group(tmp_path: Path) -> None:
    assert distributed.is_main_process() and distributed.all_reduce_counts({1: 2}) == {1: 2}
    store = f"file://{tmp_path / 'store'}"
    torch.distributed.init_process_group("gloo", init_method=store, rank=0, world_size=1)
    try:
        assert distributed.is_distributed() and distributed.is_main_process()
        assert distributed.all_reduce_counts({0: 3, 4: 1, -1: 2}) == {0: 3, 4: 1, -1: 2}
        assert distributed.all_reduce_counts({}) == {}
        run = train(Spec(steps=2, batch_size=4))
        assert run.doctor.global_label_counts() == dict(run.doctor.label_counts)
        assert sum(run.doctor.label_counts.values()) == 8
    finally:
        torch.distributed.destroy_process_group()


def test_a_bug_in_the_doctor_itself_never_stops_training(monkeypatch: pytest.MonkeyPatch) -> None:
    import ftdoctor.runtime.doctor as doctor_module

    def broken(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("statistics bug")

    monkeypatch.setattr(doctor_module, "gradient_stats", broken)
    run = train(Spec(steps=4))
    assert run.error is None and len(run.losses) == 4
    assert run.doctor.internal_errors and "doctor (optimizer step)" in run.doctor.internal_errors[0]


def test_observe_datasets_reaches_the_rules_after_the_preflight() -> None:
    from ftdoctor.runtime.events import LabelledData

    model = tiny_bert()
    optimizer = torch.optim.AdamW(model.parameters())
    with ftdoctor.watch(model, optimizer) as doctor:
        _steps(model, optimizer, 1)
        texts = [f"review number {i} was fine" for i in range(40)]
        train_data = LabelledData(texts=texts, labels=[i % 2 for i in range(40)], name="train")
        val_data = LabelledData(texts=texts[:20], labels=[i % 2 for i in range(20)], name="validation")
        doctor.observe_datasets(train=train_data, val=val_data)
    assert doctor.train_data is train_data and not doctor.internal_errors
    assert "train-val-overlap" in {f.rule for f in doctor.findings}  # judged although the preflight had passed
