"""Focused cases for the loop-mechanics rules: each bug in several shapes, and the look-alikes that must stay silent."""

from __future__ import annotations

import textwrap

import pytest

from ftdoctor.static.engine import check_source

HEADER = """\
import torch
from torch import nn
from torch.utils.data import DataLoader
from transformers import AutoModelForSequenceClassification, get_linear_schedule_with_warmup, set_seed
set_seed(0)
model = AutoModelForSequenceClassification.from_pretrained("bert-base-uncased", num_labels=2)
optimizer = torch.optim.AdamW(model.parameters(), lr=2e-5)
scheduler = get_linear_schedule_with_warmup(optimizer, 0, 100)
loader = DataLoader(train_set, batch_size=8, shuffle=True)
"""



@pytest.fixture(autouse=True)
def rules_raise(monkeypatch: pytest.MonkeyPatch) -> None:
    """A rule that crashes must fail the test, not be swallowed as the engine does for users."""
    monkeypatch.setenv("FTDOCTOR_DEBUG", "1")


def rules_of(body: str, header: str = HEADER) -> dict[str, list[int]]:
    found: dict[str, list[int]] = {}
    for finding in check_source(header + textwrap.dedent(body), "case.py"):
        found.setdefault(finding.rule, []).append(finding.line or 0)
    return found


def triggers(slug: str, body: str, header: str = HEADER) -> bool:
    return slug in rules_of(body, header)


# ------------------------------------------------------------------ missing-zero-grad
@pytest.mark.parametrize(
    "body",
    [
        # while loop with a manual iterator
        """
        model.train()
        it = iter(loader)
        while True:
            batch = next(it)
            model(**batch).loss.backward()
            optimizer.step()
        """,
        # step inside a method, loop in another method
        """
        class Runner:
            def __init__(self, model, optimizer):
                self.model, self.optimizer = model, optimizer
            def step(self, batch):
                self.model(**batch).loss.backward()
                self.optimizer.step()
            def run(self, loader):
                self.model.train()
                for batch in loader:
                    self.step(batch)
        Runner(model, optimizer).run(loader)
        """,
    ],
)
def test_missing_zero_grad_shapes(body: str) -> None:
    assert triggers("missing-zero-grad", body)


@pytest.mark.parametrize(
    "body",
    [
        "model.train()\nfor batch in loader:\n    model.zero_grad()\n    model(**batch).loss.backward()\n    optimizer.step()\n",
        # cleared three calls deep
        """
        def clear(m):
            for p in m.parameters():
                p.grad = None
        def finish(m, opt):
            opt.step()
            clear(m)
        def train_step(m, opt, batch):
            m(**batch).loss.backward()
            finish(m, opt)
        model.train()
        for batch in loader:
            train_step(model, optimizer, batch)
        """,
        # LBFGS-style closure that clears and backpropagates
        """
        model.train()
        for batch in loader:
            def closure():
                optimizer.zero_grad()
                loss = model(**batch).loss
                loss.backward()
                return loss
            optimizer.step(closure)
        """,
        # an external helper receiving the optimizer may clear it: stay silent
        """
        from mylib import apply_gradients
        model.train()
        for batch in loader:
            model(**batch).loss.backward()
            apply_gradients(optimizer)
        """,
    ],
)
def test_missing_zero_grad_silent(body: str) -> None:
    assert not triggers("missing-zero-grad", body)


def test_loop_rules_are_silent_for_trainer_scripts() -> None:
    source = """\
from transformers import AutoModelForSequenceClassification, Trainer, TrainingArguments
model = AutoModelForSequenceClassification.from_pretrained("bert-base-uncased", num_labels=2)
args = TrainingArguments("out", learning_rate=2e-5, gradient_accumulation_steps=4)

class WeightedTrainer(Trainer):
    def compute_loss(self, model, inputs, return_outputs=False, **kwargs):
        outputs = model(**inputs)
        loss = outputs.loss * 2
        return (loss, outputs) if return_outputs else loss

    def training_step(self, model, inputs, num_items_in_batch=None):
        for _ in range(1):
            loss = self.compute_loss(model, inputs)
            loss.backward()
        return loss.detach()

trainer = WeightedTrainer(model=model, args=args, train_dataset=train_ds, eval_dataset=val_ds)
trainer.train()
"""
    assert check_source(source, "trainer.py") == []


# ------------------------------------------------------------------ zero-grad-misplaced
def test_zero_grad_between_backward_and_step_through_scaler() -> None:
    body = """
    scaler = torch.cuda.amp.GradScaler()
    model.train()
    for batch in loader:
        scaler.scale(model(**batch).loss).backward()
        optimizer.zero_grad()
        scaler.step(optimizer)
        scaler.update()
    """
    assert rules_of(body)["zero-grad-misplaced"] == [15]


def test_zero_grad_in_else_branch_of_step_is_fine() -> None:
    body = """
    model.train()
    for batch in loader:
        loss = model(**batch).loss
        loss.backward()
        if torch.isfinite(loss):
            optimizer.step()
            optimizer.zero_grad()
        else:
            optimizer.zero_grad()
    """
    assert not triggers("zero-grad-misplaced", body)


# ------------------------------------------------------------------ scheduler-before-optimizer
def test_scheduler_in_separate_branch_is_not_before_step() -> None:
    body = """
    model.train()
    for i, batch in enumerate(loader):
        optimizer.zero_grad()
        model(**batch).loss.backward()
        if i < 10:
            optimizer.step()
        else:
            optimizer.step()
            scheduler.step()
    """
    assert not triggers("scheduler-before-optimizer", body)


def test_scheduler_stepped_in_helper_before_optimizer() -> None:
    body = """
    def advance(sched):
        sched.step()
    model.train()
    for batch in loader:
        optimizer.zero_grad()
        model(**batch).loss.backward()
        advance(scheduler)
        optimizer.step()
    """
    assert triggers("scheduler-before-optimizer", body)


# ------------------------------------------------------------------ modes
def test_train_mode_set_through_helper_counts() -> None:
    body = """
    def prepare(m):
        m.train()
        return m
    prepare(model)
    for batch in loader:
        optimizer.zero_grad()
        model(**batch).loss.backward()
        optimizer.step()
    """
    assert not triggers("missing-train-mode", body)


def test_model_built_from_config_starts_in_train_mode() -> None:
    header = HEADER.replace(
        'AutoModelForSequenceClassification.from_pretrained("bert-base-uncased", num_labels=2)',
        "AutoModelForSequenceClassification.from_config(config)",
    )
    body = "for batch in loader:\n    optimizer.zero_grad()\n    model(**batch).loss.backward()\n    optimizer.step()\n"
    assert not triggers("missing-train-mode", body, header)


def test_teacher_eval_inside_distillation_loop_is_not_missing_train_after_eval() -> None:
    body = """
    teacher = AutoModelForSequenceClassification.from_pretrained("bert-large-uncased", num_labels=2)
    model.train()
    for batch in loader:
        teacher.eval()
        with torch.no_grad():
            soft = teacher(**batch).logits
        optimizer.zero_grad()
        logits = model(**batch).logits
        loss = nn.functional.kl_div(logits.log_softmax(-1), soft.softmax(-1), reduction="batchmean")
        loss.backward()
        optimizer.step()
    """
    assert not triggers("missing-train-after-eval", body)


def test_eval_then_train_in_same_branch_is_fine_and_missing_train_is_found() -> None:
    good = """
    model.train()
    for step, batch in enumerate(loader):
        optimizer.zero_grad()
        model(**batch).loss.backward()
        optimizer.step()
        if step % 100 == 0:
            model.eval()
            model.train()
    """
    bad = good.replace("            model.train()\n", "")
    assert not triggers("missing-train-after-eval", good)
    assert rules_of(bad)["missing-train-after-eval"] == [17]


def test_eval_loop_before_training_of_pretrained_model_needs_no_eval() -> None:
    body = """
    with torch.no_grad():
        for batch in val_loader:
            print(model(**batch).loss.item())
    for epoch in range(2):
        model.train()
        for batch in loader:
            optimizer.zero_grad()
            model(**batch).loss.backward()
            optimizer.step()
    """
    assert not triggers("missing-eval-mode", body)


def test_evaluation_in_epoch_loop_before_training_sees_previous_epoch_mode() -> None:
    body = """
    model.train()
    for epoch in range(3):
        with torch.no_grad():
            for batch in val_loader:
                print(model(**batch).loss.item())
        for batch in loader:
            optimizer.zero_grad()
            model(**batch).loss.backward()
            optimizer.step()
    """
    assert triggers("missing-eval-mode", body)


def test_no_grad_through_callers_and_set_grad_enabled() -> None:
    body = """
    def score(m, batches):
        m.eval()
        return [m(**b).logits for b in batches] + [m(**b).logits for b in batches if b]
    def run_eval(m, batches):
        out = []
        for b in batches:
            out.append(m(**b).logits.argmax(-1))
        return out
    with torch.no_grad():
        run_eval(model, val_loader)
    torch.set_grad_enabled(False)
    model.eval()
    for b in val_loader:
        model(**b)
    """
    assert not triggers("missing-no-grad-eval", body)


def test_loop_inside_model_forward_is_not_an_evaluation_loop() -> None:
    body = """
    class Ensemble(nn.Module):
        def __init__(self):
            super().__init__()
            self.members = nn.ModuleList([AutoModelForSequenceClassification.from_pretrained("bert-base-uncased")])
            self.model = self.members[0]
        def forward(self, **batch):
            total = 0
            for _ in range(2):
                total = total + self.model(**batch).logits
            return total
    """
    found = rules_of(body)
    assert "missing-no-grad-eval" not in found and "missing-eval-mode" not in found


# ------------------------------------------------------------------ losses
def test_loss_accumulates_graph_variants() -> None:
    bad = """
    model.train()
    running = 0
    for batch in loader:
        optimizer.zero_grad()
        loss = nn.functional.cross_entropy(model(**batch).logits, batch["labels"])
        loss.backward()
        optimizer.step()
        running = running + loss
    """
    assert rules_of(bad)["loss-accumulates-graph"] == [18]
    assert not triggers("loss-accumulates-graph", bad.replace("running + loss", "running + loss.item()"))
    assert not triggers("loss-accumulates-graph", bad.replace("running + loss", "running + float(loss)"))


def test_detached_loss_variants() -> None:
    template = """
    model.train()
    for batch in loader:
        optimizer.zero_grad()
        loss = model(**batch).loss
        {cut}
        loss.backward()
        optimizer.step()
    """
    for cut in ("loss = loss.detach()", "loss = loss.data", "loss = torch.tensor(loss.item(), requires_grad=True) / 2"):
        assert triggers("detached-loss", template.format(cut=cut)), cut
    for fine in ("loss = loss * 1.0", "print(loss.item(), loss.detach())", "loss = loss.mean()"):
        assert not triggers("detached-loss", template.format(cut=fine)), fine


def test_accelerator_backward_is_traced_to_its_argument() -> None:
    body = """
    from accelerate import Accelerator
    accelerator = Accelerator()
    model, optimizer, loader = accelerator.prepare(model, optimizer, loader)
    model.train()
    for batch in loader:
        optimizer.zero_grad()
        loss = model(**batch).loss.item()
        accelerator.backward(torch.tensor(loss, requires_grad=True))
        optimizer.step()
    """
    assert triggers("detached-loss", body)


def test_grad_accumulation_scaling_variants() -> None:
    template = """
    k = 4
    model.train()
    for i, batch in enumerate(loader):
        loss = model(**batch).loss
        {scale}
        loss.backward()
        if (i + 1) % k == 0:
            optimizer.step()
            optimizer.zero_grad()
    """
    assert triggers("grad-accum-unscaled-loss", template.format(scale="pass"))
    for scale in ("loss = loss / k", "loss /= k", "loss = loss * (1 / k)"):
        assert not triggers("grad-accum-unscaled-loss", template.format(scale=scale)), scale


def test_logging_condition_is_not_accumulation() -> None:
    body = """
    model.train()
    for i, batch in enumerate(loader):
        optimizer.zero_grad()
        loss = model(**batch).loss
        loss.backward()
        optimizer.step()
        if i % 50 == 0:
            print(loss.item())
    """
    assert not triggers("grad-accum-unscaled-loss", body)


# ------------------------------------------------------------------ optimizer-stale-params
def test_parameter_groups_capture_the_model() -> None:
    body = """
    no_decay = ["bias", "LayerNorm.weight"]
    groups = [
        {"params": [p for n, p in model.named_parameters() if not any(nd in n for nd in no_decay)], "weight_decay": 0.01},
        {"params": [p for n, p in model.named_parameters() if any(nd in n for nd in no_decay)], "weight_decay": 0.0},
    ]
    opt = torch.optim.AdamW(groups, lr=2e-5)
    model.resize_token_embeddings(30600)
    """

    def stale_optimizers(source: str) -> list[str]:
        findings = check_source(HEADER + textwrap.dedent(source), "case.py")
        return [f.message.split("`")[1] for f in findings if f.rule == "optimizer-stale-params"]

    # the header's `optimizer` is stale too: it also holds model.parameters() from before the resize
    assert stale_optimizers(body) == ["optimizer", "opt"]
    rebuilt = body + "opt = torch.optim.AdamW(model.parameters(), lr=2e-5)\n"
    assert stale_optimizers(rebuilt) == ["optimizer"]


@pytest.mark.parametrize(
    "change",
    [
        "model = model.to('cuda')",
        "model.to('cuda')",
        "model = torch.compile(model)",
        "model.dropout = nn.Dropout(0.3)",
        "model.config.num_labels = 2",
        "model.classifier = nn.Linear(768, 2)\noptimizer.add_param_group({'params': model.classifier.parameters()})",
    ],
)
def test_changes_that_keep_parameters_are_fine(change: str) -> None:
    assert not triggers("optimizer-stale-params", change + "\n")


# ------------------------------------------------------------------ dict batches
def test_list_of_dicts_dataset_and_default_data_collator() -> None:
    body = """
    from transformers import default_data_collator
    rows = [{"input_ids": ids, "labels": y} for ids, y in pairs]
    dl = DataLoader(rows, batch_size=4, shuffle=True, collate_fn=default_data_collator)
    model.train()
    for batch in dl:
        optimizer.zero_grad()
        model(input_ids=batch.input_ids, labels=batch["labels"]).loss.backward()
        optimizer.step()
    """
    assert rules_of(body)["dict-batch-attribute-access"] == [17]


def test_tensor_dataset_batches_and_custom_collate_are_not_dicts() -> None:
    body = """
    from torch.utils.data import TensorDataset
    dl = DataLoader(TensorDataset(x, y), batch_size=4, shuffle=True)
    dl2 = DataLoader(hf_rows, batch_size=4, shuffle=True, collate_fn=my_collate)
    model.train()
    for batch in dl2:
        optimizer.zero_grad()
        model(input_ids=batch.input_ids).loss.backward()
        optimizer.step()
    """
    assert not triggers("dict-batch-attribute-access", body)


# ------------------------------------------------------------------ seed
def test_seed_rule_is_info_and_silent_without_training() -> None:
    header = "import torch\nfrom transformers import AutoModel\nmodel = AutoModel.from_pretrained('bert-base-uncased')\n"
    assert not triggers("seed-not-set", "print(model)\n", header)
    body = "model.train()\nfor batch in loader:\n    optimizer.zero_grad()\n    model(**batch).loss.backward()\n    optimizer.step()\n"
    findings = check_source(HEADER.replace("set_seed(0)\n", "") + body, "noseed.py")
    assert [(f.rule, f.severity.value) for f in findings] == [("seed-not-set", "info")]


# ------------------------------------------------------------------ comprehensions and inline evaluation
def test_comprehension_over_validation_data_is_an_evaluation_loop() -> None:
    body = """
    model.eval()
    val_losses = [model(**batch).loss.item() for batch in val_loader]
    """
    assert rules_of(body)["missing-no-grad-eval"] == [12]
    assert not triggers("missing-no-grad-eval", body.replace("model.eval()", "model.eval()\ntorch.set_grad_enabled(False)"))


def test_comprehension_whose_sum_is_backpropagated_is_training() -> None:
    body = """
    model.train()
    for batch in loader:
        optimizer.zero_grad()
        loss = sum(model(**chunk).loss for chunk in split(batch))
        loss.backward()
        optimizer.step()
        (sum(model(**c).loss for c in split(batch)) / 2).backward()
    """
    found = rules_of(body)
    assert "missing-no-grad-eval" not in found and "missing-eval-mode" not in found


def test_inline_validation_inside_training_loop_needs_no_grad() -> None:
    body = """
    model.train()
    for step, batch in enumerate(loader):
        optimizer.zero_grad()
        model(**batch).loss.backward()
        optimizer.step()
        if step % 100 == 0:
            model.eval()
            for val_batch in val_loader:
                print(model(**val_batch).loss.item())
            model.train()
    """
    assert rules_of(body) == {"missing-no-grad-eval": [18]}


def test_loss_turned_into_a_number_after_backward_is_fine() -> None:
    body = """
    model.train()
    total = 0.0
    for batch in loader:
        optimizer.zero_grad()
        loss = model(**batch).loss
        loss.backward()
        optimizer.step()
        loss = loss.item()
        total += loss
    """
    assert not triggers("loss-accumulates-graph", body)
    helper = """
    from mylib import forward_loss
    model.train()
    total = 0
    for batch in loader:
        optimizer.zero_grad()
        loss = forward_loss(model, batch)
        loss.backward()
        optimizer.step()
        total += loss
    """
    assert triggers("loss-accumulates-graph", helper)


def test_a_callee_named_like_a_model_is_no_model_call() -> None:
    """Names assert nothing: `model(x)` is a forward pass only when `model` is proven a model."""
    source = """\
import tensorflow as tf
model = build_model()
for x, y in dataset:
    predictions = model(x, training=False)
"""
    assert check_source(source, "tf_eval.py") == []
    torch_source = "import torch\n" + source.replace("import tensorflow as tf\n", "")
    assert check_source(torch_source, "torch_eval.py") == []
    proven = torch_source.replace(
        "model = build_model()", "from transformers import AutoModel\nmodel = AutoModel.from_pretrained('bert-base-uncased')"
    )
    assert "missing-no-grad-eval" in {f.rule for f in check_source(proven, "torch_eval.py")}


def test_a_context_that_may_disable_grad_counts_as_no_grad() -> None:
    maybe = """
    def evaluate(loader, with_grad=False):
        model.eval()
        ctx = torch.enable_grad() if with_grad else torch.no_grad()
        with ctx:
            for batch in loader:
                model(**batch)
    """
    never = """
    def evaluate(loader):
        model.eval()
        ctx = torch.enable_grad()
        with ctx:
            for batch in loader:
                model(**batch)
    """
    assert not triggers("missing-no-grad-eval", maybe)
    assert triggers("missing-no-grad-eval", never)
