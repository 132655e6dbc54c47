"""What the doctor observes beyond one module's hooks (issue 11): autograd backward passes, separate
heads, losses' targets, every optimizer — and why a parameter got no gradient. Plain torch, fast."""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

import ftdoctor
from ftdoctor.runtime.events import OptimizerAdded
from ftdoctor.runtime.rule import RUNTIME_RULES, RuntimeRule

torch.set_num_threads(1)


def _data(step: int) -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(step)
    x = torch.randn(8, 6, generator=generator)
    return x, (x[:, 0] > 0).long()


class Extractor(nn.Module):
    """A feature extractor and a head; ``mode`` says how the extractor's output reaches the head."""

    def __init__(self, mode: str) -> None:
        super().__init__()
        self.features = nn.Linear(6, 6)
        self.head = nn.Linear(6, 2)
        self.mode = mode

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.mode == "no_grad":
            with torch.no_grad():  # frozen by design, though its weights sit in the optimizer
                x = self.features(x)
        elif self.mode == "detached":
            x = self.features(x).detach()
        elif self.mode == "unused":
            pass
        return self.head(x)


def _train(model: nn.Module, steps: int = 5) -> Any:
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
    with ftdoctor.watch(model, optimizer) as doctor:
        for step in range(steps):
            x, y = _data(step)
            optimizer.zero_grad()
            F.cross_entropy(model(x), y).backward()
            optimizer.step()
    return doctor


def test_dead_parameters_tells_unused_from_frozen_under_no_grad() -> None:
    unused = [f for f in _train(Extractor("unused")).findings if f.rule == "dead-parameters"]
    assert len(unused) == 1 and "the forward never uses them" in unused[0].message
    assert unused[0].evidence["parameters"] == ["features.bias", "features.weight"] and unused[0].step == 3
    detached = [f for f in _train(Extractor("detached")).findings if f.rule == "dead-parameters"]
    assert len(detached) == 1 and "nothing they compute reaches the loss" in detached[0].message
    frozen = _train(Extractor("no_grad"))
    assert [f.rule for f in frozen.findings if f.rule == "dead-parameters"] == []
    assert not frozen.model.features._forward_pre_hooks  # the probe removed its hooks


def test_a_separate_head_and_a_loss_outside_any_model_are_one_run() -> None:
    encoder, head = nn.Sequential(nn.Linear(6, 6), nn.Tanh()), nn.Linear(6, 2)
    optimizer = torch.optim.SGD([*encoder.parameters(), *head.parameters()], lr=0.1)
    with ftdoctor.watch(encoder, optimizer) as doctor:
        doctor.watch_module(head)
        doctor.watch_module(encoder[0])  # inside a watched module already: ignored
        for step in range(4):
            x, y = _data(step)
            F.cross_entropy(head(encoder(x)), y).backward()  # zero_grad forgotten
            optimizer.step()  # noqa: FTD101 — the forgotten zero_grad is the fault under test
    assert list(doctor.modules) == ["", "Linear#1"]
    assert [f.rule for f in doctor.findings] == ["grads-accumulating"]
    assert doctor.observed["labels"] and doctor.observed["logits"] and doctor.observed["loss"]
    assert all(record.loss is not None for record in doctor.history)


def test_model_forward_called_directly_is_seen_through_autograd_and_the_optimizer() -> None:
    model = nn.Linear(6, 2)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    with ftdoctor.watch(model, optimizer) as doctor:
        for step in range(3):
            x, y = _data(step)
            optimizer.zero_grad()
            F.cross_entropy(model.forward(x), y).backward()  # no module hook runs
            optimizer.step()
    assert doctor.step == 3 and doctor.observed["loss"] and doctor.observed["backward"]
    assert all(record.loss is not None and record.loss > 0 for record in doctor.history)
    assert torch.autograd.backward.__module__ == "torch.autograd"  # restored on detach


def test_every_optimizer_counts_and_a_rebuilt_one_is_announced() -> None:
    added: list[OptimizerAdded] = []

    class Listener(RuntimeRule):
        slug = "params-not-in-optimizer"  # any registered slug: the rule list is built from the registry

        def on_optimizer_added(self, event: OptimizerAdded) -> None:
            added.append(event)

    model = nn.Linear(6, 2)
    doctor = ftdoctor.watch(model)
    doctor.rules.append(Listener())
    doctor._handlers["on_optimizer_added"].append((doctor.rules[-1], doctor.rules[-1].on_optimizer_added))
    with doctor:
        for epoch in range(3):
            optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
            doctor.add_optimizer(optimizer)
            for step in range(5):
                x, y = _data(step)
                optimizer.zero_grad()
                F.cross_entropy(model(x), y).backward()
                optimizer.step()
    assert doctor.step == 15 and len(doctor.history) == 15
    assert [(e.index, e.params, e.shared_params, e.earlier_steps) for e in added] == [(0, 2, 0, 0), (1, 2, 2, 5), (2, 2, 2, 10)]
    assert "params-not-in-optimizer" in RUNTIME_RULES


def test_the_lr_recorded_for_a_step_is_the_one_it_used() -> None:
    model = nn.Linear(6, 2)
    optimizer = torch.optim.SGD(model.parameters(), lr=1.0)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: 1.0 / (step + 1))
    with ftdoctor.watch(model, optimizer) as doctor:
        for step in range(3):
            x, y = _data(step)
            optimizer.zero_grad()
            F.cross_entropy(model(x), y).backward()
            optimizer.step()
            scheduler.step()
    assert [round(record.lr, 4) for record in doctor.history] == [1.0, 0.5, 0.3333]
    assert [record.step for record in doctor.history] == [1, 2, 3]


def test_coverage_names_the_rules_that_could_not_run() -> None:
    model = nn.Linear(6, 2)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    with ftdoctor.watch(model, optimizer) as doctor:
        for step in range(3):
            x, y = _data(step)
            optimizer.zero_grad()
            (model(x) ** 2).mean().backward()  # no labels, no classification loss, no evaluation
            optimizer.step()
    report = doctor.report()
    assert report.verdict == "incomplete"
    assert report.unobserved() == ["labels", "evaluation"]
    not_run = {entry["rule"] for entry in report.coverage["not_run"]}
    needing = {slug for slug, cls in RUNTIME_RULES.items() if {"labels", "evaluation"} & set(cls.needs)}
    assert not_run == needing and "label-out-of-range" in not_run and "grads-accumulating" not in not_run
    assert report.exit_code("warning") == 1 and report.exit_code("error") == 0


def _lr_findings(*, head_only: bool, lr: float) -> list[str]:
    """A 'checkpoint' (tiny BERT marked as loaded from one) trained 12 steps, head-only or in full."""
    from harness import tiny_bert

    model = tiny_bert()
    model.config._name_or_path = "a-checkpoint"  # what from_pretrained records
    if head_only:
        for param in model.bert.parameters():
            param.requires_grad = False
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=lr)
    generator = torch.Generator().manual_seed(0)
    with ftdoctor.watch(model, optimizer) as doctor:
        for _ in range(12):
            ids = torch.randint(10, 100, (8, 12), generator=generator)
            optimizer.zero_grad()
            model(input_ids=ids, labels=(ids[:, 1] > 55).long()).loss.backward()
            optimizer.step()
    return [f.rule for f in doctor.findings if f.rule.startswith("lr-")]


def test_a_head_only_lr_of_1e_2_over_a_frozen_checkpoint_is_normal() -> None:
    assert _lr_findings(head_only=True, lr=1e-2) == []
    assert _lr_findings(head_only=False, lr=1e-2) == ["lr-too-high"]  # the same lr moving the checkpoint itself
    assert _lr_findings(head_only=True, lr=1.0) == ["lr-too-high"]


def test_every_runtime_rule_declares_the_signals_it_needs() -> None:
    import ftdoctor.runtime.rules  # noqa: F401  (registers every rule)
    from ftdoctor.runtime.events import CORE_SIGNALS

    for slug, cls in RUNTIME_RULES.items():
        assert "needs" in cls.__dict__, f"{slug}: declare `needs` (the core signals it cannot judge without)"
        assert set(cls.needs) <= set(CORE_SIGNALS), slug


def test_a_separate_head_left_out_of_the_optimizer_is_named() -> None:
    encoder, head = nn.Sequential(nn.Linear(6, 6), nn.Tanh()), nn.Linear(6, 2)
    optimizer = torch.optim.SGD(encoder.parameters(), lr=0.1)  # the head was forgotten
    with ftdoctor.watch(encoder, optimizer) as doctor:
        doctor.watch_module(head)
        for step in range(2):
            x, y = _data(step)
            optimizer.zero_grad()
            F.cross_entropy(head(encoder(x)), y).backward()
            optimizer.step()
    finding = next(f for f in doctor.findings if f.rule == "params-not-in-optimizer")
    assert finding.evidence["parameters"] == ["Linear#1.weight", "Linear#1.bias"]


def test_an_evaluation_before_unfreezing_is_not_no_trainable_params() -> None:
    model = Extractor("plain")
    for param in model.parameters():
        param.requires_grad = False
    doctor = ftdoctor.watch(model)
    with doctor:
        with torch.no_grad():  # a baseline evaluation of the frozen model: it reaches the pre-flight
            model(_data(0)[0])
        for param in model.head.parameters():
            param.requires_grad = True
        optimizer = torch.optim.SGD(model.head.parameters(), lr=0.1)
        doctor.add_optimizer(optimizer)
        for step in range(2):
            x, y = _data(step)
            optimizer.zero_grad()
            F.cross_entropy(model(x), y).backward()
            optimizer.step()
    assert "no-trainable-params" not in {f.rule for f in doctor.findings}
    assert doctor.step == 2


def test_an_optimizer_built_each_epoch_in_a_plain_loop_joins_the_run_without_add_optimizer() -> None:
    """watch(model, first) and then a new AdamW per epoch: every step counts, and the reset is a finding."""
    import torch

    import ftdoctor
    from harness import tiny_bert

    torch.manual_seed(0)
    model = tiny_bert()
    other = torch.nn.Linear(4, 2)  # a foreign optimizer (another model) never joins
    foreign = torch.optim.SGD(other.parameters(), lr=0.1)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
    with ftdoctor.watch(model, optimizer) as doctor:
        for epoch in range(3):
            if epoch:
                optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)  # the bug: Adam state reset
            for _ in range(4):
                optimizer.zero_grad()
                model(input_ids=torch.randint(5, 200, (8, 12)), labels=torch.randint(0, 2, (8,))).loss.backward()
                optimizer.step()
                foreign.zero_grad()
                other(torch.randn(2, 4)).sum().backward()
                foreign.step()
    assert len(doctor.optimizers) == 3 and all(o is not foreign for o in doctor.optimizers)
    assert doctor.step == 12
    assert "optimizer-recreated-in-loop" in {f.rule for f in doctor.findings}
