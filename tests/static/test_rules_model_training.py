"""Tricky cases of the training-setup rules: lr-out-of-range, softmax-before-loss, freeze-noop,
eval-on-train-split, train-loader-not-shuffled, load-best-strategy-mismatch.

Each rule gets inputs that must trigger it and correct look-alikes that must not.
"""

from __future__ import annotations

import textwrap
from typing import Iterator

import pytest

from ftdoctor.findings import Finding
from ftdoctor.static.engine import check_source
from ftdoctor.settings import Settings


def findings(source: str, slug: str) -> list[Finding]:
    """The findings of one rule; the source must parse, so that silence means the rule judged it."""
    everything = check_source(textwrap.dedent(source), "script.py")
    assert not [f for f in everything if f.rule == "parse-error"], everything
    return [f for f in everything if f.rule == slug]


def lines(source: str, slug: str) -> list[int]:
    return [f.line for f in findings(source, slug)]  # type: ignore[misc]


# --------------------------------------------------------------------------- lr-out-of-range
LR = "lr-out-of-range"
PRETRAINED = (
    "import torch\nfrom transformers import AutoModelForSequenceClassification, TrainingArguments\n"
    'model = AutoModelForSequenceClassification.from_pretrained("bert-base-uncased", num_labels=2)\n'
)


@pytest.mark.parametrize(
    "setup, optimizer",
    [
        ('CONFIG = {"lr": 0.01}', 'torch.optim.AdamW(model.parameters(), lr=CONFIG["lr"])'),
        ("", "torch.optim.SGD(model.parameters(), 1.0, momentum=0.9)"),  # positional lr, SGD range
        ("", 'TrainingArguments(output_dir="o", optim="sgd", learning_rate=0.5)'),
        ("", "torch.optim.Adam(model.parameters(), lr=3e-4)"),  # fine for LoRA, too high for full fine-tuning
    ],
)
def test_lr_out_of_range_triggers(setup: str, optimizer: str) -> None:
    assert lines(PRETRAINED + setup + "\nopt = " + optimizer + "\nopt.step()\n", LR) == [5]


def test_lr_from_a_dataclass_field_through_a_parameter() -> None:
    source = """
        from dataclasses import dataclass

        import torch
        from transformers import AutoModel

        @dataclass
        class Hyper:
            checkpoint: str = "bert-base-uncased"
            lr: float = 1e-3

        def build(hp: Hyper):
            model = AutoModel.from_pretrained(hp.checkpoint)
            return torch.optim.AdamW(model.parameters(), lr=hp.lr)

        optimizer = build(Hyper())
    """
    found = findings(source, LR)
    assert [f.line for f in found] == [14]
    assert "`hp.lr` = 0.001" in found[0].message and "AdamW" in found[0].message


@pytest.mark.parametrize(
    "source",
    [
        # a network trained from scratch: fine-tuning ranges do not apply
        "import torch\nfrom transformers import BertConfig, BertForSequenceClassification\n"
        "model = BertForSequenceClassification(BertConfig(hidden_size=64, num_hidden_layers=2))\n"
        "opt = torch.optim.AdamW(model.parameters(), lr=1e-3)\n",
        # LoRA: higher rates are right
        PRETRAINED + "from peft import LoraConfig, get_peft_model\n"
        "model = get_peft_model(model, LoraConfig(r=8))\nopt = torch.optim.AdamW(model.parameters(), lr=3e-4)\n",
        # the lr cannot be known statically
        PRETRAINED + "opt = torch.optim.AdamW(model.parameters(), lr=float(input()))\n",
        # Adafactor and the range boundaries
        PRETRAINED + "from transformers import Adafactor\nopt = Adafactor(model.parameters(), lr=1e-3)\n"
        "a = torch.optim.AdamW(model.parameters(), lr=1e-4)\nb = torch.optim.AdamW(model.parameters(), lr=1e-6)\n",
        # a higher rate for the head's parameter group is a deliberate, common choice
        PRETRAINED + "opt = torch.optim.AdamW([{'params': model.classifier.parameters(), 'lr': 1e-3}], lr=2e-5)\n",
    ],
)
def test_lr_silent_cases(source: str) -> None:
    assert findings(source + "train(opt, a, b)\n", LR) == []  # every optimizer handed on: each one trains


def test_lr_ranges_are_configurable() -> None:
    wider = Settings(rule_options={LR: {"full": (1e-6, 1e-3)}})
    assert [f for f in check_source(PRETRAINED + "opt = torch.optim.AdamW(model.parameters(), lr=5e-4)\nopt.step()\n", "t.py", wider) if f.rule == LR] == []
    flagged = check_source(PRETRAINED + "opt = torch.optim.AdamW(model.parameters(), lr=5e-3)\nopt.step()\n", "t.py", wider)
    assert [f.line for f in flagged if f.rule == LR] == [4]
    # the default range still flags 5e-4
    assert lines(PRETRAINED + "opt = torch.optim.AdamW(model.parameters(), lr=5e-4)\nopt.step()\n", LR) == [4]


# --------------------------------------------------------------------------- softmax-before-loss
SOFTMAX = "softmax-before-loss"


def test_softmax_method_into_an_inline_loss_module() -> None:
    source = """
        import torch.nn as nn

        def step(model, batch):
            logits = model(**batch).logits
            return nn.CrossEntropyLoss()(logits.softmax(dim=-1).float(), batch["labels"])
    """
    found = findings(source, SOFTMAX)
    assert [f.line for f in found] == [6]
    assert "softmax" in found[0].message and "CrossEntropyLoss" in found[0].message


def test_model_whose_forward_ends_in_softmax() -> None:
    source = """
        import torch
        import torch.nn as nn

        class Net(nn.Module):
            def __init__(self):
                super().__init__()
                self.body = nn.Sequential(nn.Linear(32, 4), nn.Softmax(dim=-1))

            def forward(self, x):
                return self.body(x)

        net = Net()
        criterion = nn.CrossEntropyLoss()
        optimizer = torch.optim.SGD(net.parameters(), lr=0.1)

        def train_step(x, y):
            optimizer.zero_grad()
            loss = criterion(net(x), y)
            loss.backward()
            optimizer.step()
    """
    assert lines(source, SOFTMAX) == [19]


@pytest.mark.parametrize(
    "body",
    [
        # distillation: teacher probabilities are the *target*, which is correct
        "loss = F.cross_entropy(student_logits, F.softmax(teacher_logits / 2.0, dim=-1))",
        # log of the probabilities is a log-softmax
        "probs = F.softmax(logits, dim=-1)\nloss = F.nll_loss(torch.log(probs), labels)",
        # sigmoid into BCELoss is correct
        "loss = nn.BCELoss()(torch.sigmoid(logits), targets)",
        # rebinding: the loss sees the logits
        "probs = torch.softmax(logits, -1)\nprobs = logits\nloss = F.cross_entropy(probs, labels)",
        # KL divergence wants probabilities as target
        "loss = F.kl_div(F.log_softmax(logits, -1), F.softmax(teacher, -1), reduction='batchmean')",
    ],
)
def test_softmax_silent_cases(body: str) -> None:
    source = "import torch\nimport torch.nn as nn\nimport torch.nn.functional as F\n" + body + "\n"
    assert findings(source, SOFTMAX) == []


# --------------------------------------------------------------------------- freeze-noop
FREEZE = "freeze-noop"


@pytest.mark.parametrize(
    "statement, needle",
    [
        ("model.requires_grad_", "without calling it"),
        ("(p.requires_grad_(False) for p in model.bert.parameters())", "never consumed"),
        ("map(lambda p: p.requires_grad_(False), model.parameters())", "never consumed"),
        ("model.requires_grads = False", "`requires_grads`"),
        ("model.bert.embeddings.word_embeddings.weight.data.requires_grad = False", "copy"),
        ("model.classifier.weight.detach().requires_grad_(False)", "copy"),
    ],
)
def test_freeze_noop_triggers(statement: str, needle: str) -> None:
    source = (
        "from transformers import AutoModelForSequenceClassification\n"
        'model = AutoModelForSequenceClassification.from_pretrained("bert-base-uncased", num_labels=2)\n'
        + statement + "\n"
    )
    found = findings(source, FREEZE)
    assert [f.line for f in found] == [3]
    assert needle in found[0].message


def test_module_flag_on_layers_from_a_loop() -> None:
    source = """
        from transformers import AutoModelForSequenceClassification

        model = AutoModelForSequenceClassification.from_pretrained("bert-base-uncased", num_labels=2)
        for layer in model.bert.encoder.layer[:8]:
            layer.requires_grad = False
        for index, block in enumerate(model.bert.encoder.layer):
            block.requires_grad = index > 6
    """
    assert lines(source, FREEZE) == [6, 8]


def test_freeze_silent_cases() -> None:
    source = """
        from transformers import AutoModelForSequenceClassification

        model = AutoModelForSequenceClassification.from_pretrained("bert-base-uncased", num_labels=2)
        model.bert.embeddings.word_embeddings.weight.requires_grad = False
        for name, param in model.named_parameters():
            param.requires_grad = name.startswith("classifier")
        [p.requires_grad_(False) for p in model.bert.pooler.parameters()]
        list(map(lambda p: p.requires_grad_(False), model.bert.embeddings.parameters()))
        frozen = [p for p in model.parameters() if p.requires_grad == False]
        assert model.classifier.weight.requires_grad == True
        model.bert.requires_grad_(False)

        class Options:
            def __init__(self):
                self.require_grad = True
    """
    assert findings(source, FREEZE) == []


# --------------------------------------------------------------------------- eval-on-train-split
EVAL_TRAIN = "eval-on-train-split"
LOOP_SCRIPT = """
import torch
from datasets import load_dataset
from torch.utils.data import DataLoader
from transformers import AutoModelForSequenceClassification

model = AutoModelForSequenceClassification.from_pretrained("bert-base-uncased", num_labels=2)
optimizer = torch.optim.AdamW(model.parameters(), lr=2e-5)
train_set = load_dataset("imdb", split="train").map(lambda ex: ex)
held_out = {held_out}
train_loader = DataLoader(train_set, batch_size=16, shuffle=True)
check_loader = DataLoader(held_out, batch_size=64)

def evaluate(loader):
    model.eval()
    with torch.no_grad():
        return sum(model(**batch).loss.item() for batch in loader)

for epoch in range(2):
    model.train()
    for batch in train_loader:
        optimizer.zero_grad()
        model(**batch).loss.backward()
        optimizer.step()
    model.eval()
    with torch.no_grad():
        for batch in check_loader:
            print(model(**batch).loss.item())
"""


@pytest.mark.parametrize("held_out", ["train_set", 'load_dataset("imdb", split="train")'])
def test_evaluation_loop_over_the_training_data(held_out: str) -> None:
    found = findings(LOOP_SCRIPT.format(held_out=held_out), EVAL_TRAIN)
    assert [f.line for f in found] == [12]
    assert "`check_loader`" in found[0].message


@pytest.mark.parametrize(
    "held_out",
    ['load_dataset("imdb", split="test")', 'load_dataset("imdb", split="train[90%:]")', "make_validation_set()"],
)
def test_evaluation_loop_silent_on_held_out_or_unknown_data(held_out: str) -> None:
    assert findings(LOOP_SCRIPT.format(held_out=held_out), EVAL_TRAIN) == []


def test_trainer_evaluating_a_subset_of_the_train_split() -> None:
    source = """
        from datasets import load_dataset
        from transformers import Trainer, TrainingArguments

        data = load_dataset("imdb")
        trainer = Trainer(
            model=model,
            args=TrainingArguments(output_dir="o"),
            train_dataset=data["train"],
            eval_dataset=data["train"].select(range(1000)),
        )
    """
    assert lines(source, EVAL_TRAIN) == [10]


def test_trainer_silent_for_held_out_split_and_dict_of_splits() -> None:
    source = """
        from datasets import load_dataset
        from transformers import Trainer, TrainingArguments

        data = load_dataset("imdb")
        splits = data["train"].train_test_split(test_size=0.1, seed=0)
        a = Trainer(model=model, args=TrainingArguments(output_dir="o"), train_dataset=splits["train"],
                    eval_dataset=splits["test"])
        b = Trainer(model=model, args=TrainingArguments(output_dir="o"), train_dataset=splits["train"],
                    eval_dataset={"train": splits["train"], "test": data["test"]})
    """
    assert findings(source, EVAL_TRAIN) == []


# --------------------------------------------------------------------------- train-loader-not-shuffled
SHUFFLE = "train-loader-not-shuffled"
TRAIN_LOOP = """
import torch
from torch.utils.data import DataLoader
{imports}
model = build_model()
optimizer = torch.optim.AdamW(model.parameters(), lr=2e-5)
{dataset}
loader = DataLoader({loader_args})

def train_epoch(batches):
    model.train()
    for batch in batches:
        optimizer.zero_grad()
        model(**batch).loss.backward()
        optimizer.step()

train_epoch(loader)
"""


def shuffle_script(loader_args: str, dataset: str = "data = build_dataset()", imports: str = "") -> str:
    return TRAIN_LOOP.format(loader_args=loader_args, dataset=dataset, imports=imports)


def test_unshuffled_loader_passed_to_a_training_function() -> None:
    found = findings(shuffle_script("data, 32"), SHUFFLE)
    assert [f.line for f in found] == [8]
    assert "`loader`" in found[0].message and "line 12" in found[0].message


@pytest.mark.parametrize(
    "loader_args, dataset, imports",
    [
        ("data, batch_size=32, sampler=RandomSampler(data)", "data = build_dataset()",
         "from torch.utils.data import RandomSampler"),
        ("data, batch_size=32, shuffle=settings.shuffle", "data = build_dataset()", ""),
        ("data, batch_size=32", 'data = load_dataset("c4", "en", split="train", streaming=True)',
         "from datasets import load_dataset"),
        ("data, batch_size=32", 'data = load_dataset("imdb", split="train").shuffle(seed=0)',
         "from datasets import load_dataset"),
        ("data, batch_size=32", "data = Stream()",
         "from torch.utils.data import IterableDataset\nclass Stream(IterableDataset):\n    pass"),
        ("**loader_kwargs", "data = build_dataset()", ""),
    ],
)
def test_shuffle_silent_cases(loader_args: str, dataset: str, imports: str) -> None:
    assert findings(shuffle_script(loader_args, dataset, imports), SHUFFLE) == []


def test_unshuffled_evaluation_loader_is_fine() -> None:
    source = """
        import torch
        from torch.utils.data import DataLoader

        val_loader = DataLoader(build_dataset("val"), batch_size=64)
        model.eval()
        with torch.no_grad():
            for batch in val_loader:
                print(model(**batch).logits)
    """
    assert findings(source, SHUFFLE) == []


# --------------------------------------------------------------------------- load-best-strategy-mismatch
LOAD_BEST = "load-best-strategy-mismatch"


@pytest.mark.parametrize(
    "arguments, needle",
    [
        ('save_strategy="no"', "never evaluates"),
        ("eval_strategy=IntervalStrategy.EPOCH", 'save_strategy "steps"'),
        ('evaluation_strategy="steps", eval_steps=300', "save_steps=500"),
        ('eval_strategy="steps", logging_steps=300', "eval_steps=300"),
        ('eval_strategy="steps", eval_steps=0.1, save_steps=500', "not a round multiple"),
    ],
)
def test_load_best_triggers(arguments: str, needle: str) -> None:
    source = (
        "from transformers import IntervalStrategy, TrainingArguments\n"
        f'args = TrainingArguments(output_dir="o", load_best_model_at_end=True, {arguments})\n'
    )
    found = findings(source, LOAD_BEST)
    assert [f.line for f in found] == [2]
    assert needle in found[0].message


@pytest.mark.parametrize(
    "arguments",
    [
        'eval_strategy="steps", logging_steps=100, save_steps=500',  # eval_steps falls back to logging_steps
        'eval_strategy="steps", eval_steps=0.05, save_steps=0.1',  # ratios that divide
        'eval_strategy="epoch", save_strategy="best", metric_for_best_model="f1"',
        '**shared, eval_strategy="epoch"',  # save_strategy may be in the dict
        'eval_strategy="epoch"',  # repaired below
    ],
)
def test_load_best_silent_cases(arguments: str) -> None:
    source = (
        "from transformers import TrainingArguments\nshared = {}\n"
        f'args = TrainingArguments(output_dir="o", load_best_model_at_end=True, {arguments})\n'
    )
    if arguments == 'eval_strategy="epoch"':
        source += 'args.save_strategy = "epoch"\n'
    assert findings(source, LOAD_BEST) == []


def test_load_best_off_is_never_checked() -> None:
    source = 'from transformers import TrainingArguments\nargs = TrainingArguments(output_dir="o", eval_strategy="epoch")\n'
    assert findings(source, LOAD_BEST) == []


def test_lr_head_only_training_may_use_higher_rates_but_not_lower() -> None:
    probe = PRETRAINED + (
        "for p in model.bert.parameters():\n    p.requires_grad = False\n"
        "opt = torch.optim.AdamW(model.classifier.parameters(), lr=1e-2)\n"
    )
    assert findings(probe, LR) == []
    head = PRETRAINED + "head = torch.nn.Linear(768, 2)\nopt = torch.optim.Adam(head.parameters(), lr=5e-3)\n"
    assert findings(head, LR) == []
    too_low = PRETRAINED + "opt = torch.optim.AdamW(model.classifier.parameters(), lr=1e-8)\nopt.step()\n"
    assert lines(too_low, LR) == [4]


def test_shuffle_silent_when_one_branch_builds_an_iterable_dataset() -> None:
    dataset = "if streaming:\n    data = Stream()\nelse:\n    data = build_dataset()"
    imports = "from torch.utils.data import IterableDataset\nclass Stream(IterableDataset):\n    pass"
    assert findings(shuffle_script("data, batch_size=32", dataset, imports), SHUFFLE) == []
