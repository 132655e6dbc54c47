"""`check --fix`: every fixer on every bad example of its rule (catalogue and fixtures).

For each example the fix must make the rule silent, leave a file that parses, leave every
other rule's findings as they were, and be idempotent (a second run changes nothing).
Examples a fixer must decline are listed with the reason, so a decline elsewhere fails.
"""

from __future__ import annotations

import ast
import re
from collections import Counter
from pathlib import Path

import pytest

from ftdoctor.catalogue import load_catalogue
from ftdoctor.settings import Settings
from ftdoctor.static.checker import check_python
from ftdoctor.static.fixes import FIXERS
from ftdoctor.static.fixes.flow import grown_containers, leaks_state, reaches_autograd, trains
from ftdoctor.static.fixing import fix_text

REPO = Path(__file__).resolve().parents[2]
FIXTURES = REPO / "fixtures" / "scripts"

#: (slug, example) -> why the fixer leaves it alone
DECLINED = {
    ("zero-grad-misplaced", "bad_helper_clears_before_step.py"):
        "zero_grad() and step() both sit inside a helper the loop calls; the loop's code has nothing to move",
    ("missing-zero-grad", "bad_lbfgs_closure_without_zero_grad.py"):
        "with step(closure) the clearing belongs inside the closure, which the fixer does not rewrite",
    ("missing-no-grad-eval", "bad_predict_single_forward.py"):
        "a single forward, not an evaluation loop: the fixer wraps loops only",
}


def examples(slug: str) -> list[tuple[str, str]]:
    doc = load_catalogue()[slug]
    found = [(f"{doc.path.name}#{i}", code) for i, code in enumerate(doc.bad_examples, 1)]  # type: ignore[union-attr]
    found += [(path.name, path.read_text(encoding="utf-8")) for path in sorted((FIXTURES / slug).glob("bad_*.py"))]
    return found


CASES = [pytest.param(slug, name, code, id=f"{slug}:{name}") for slug in sorted(FIXERS) for name, code in examples(slug)]


def others(source: str, slug: str) -> Counter[tuple[str, str]]:
    """Other rules' findings, line numbers blanked (a fix may insert lines above them)."""
    return Counter((f.rule, re.sub(r"\d+", "N", f.message)) for f in check_python(source, "example.py", Settings())
                   if f.rule != slug)


def test_every_fixer_has_bad_examples() -> None:
    for slug in FIXERS:
        assert examples(slug), slug


@pytest.mark.parametrize(("slug", "name", "code"), CASES)
def test_fix_silences_the_rule_and_nothing_else_changes(slug: str, name: str, code: str) -> None:
    assert any(f.rule == slug for f in check_python(code, "example.py", Settings())), "not a bad example"
    fixed = fix_text(code, "example.py", Settings(), unsafe=True, rules={slug})
    if (slug, name) in DECLINED:
        assert not fixed.changed, DECLINED[slug, name]
        return
    assert fixed.changed and {f.rule for f in fixed.applied} == {slug}
    ast.parse(fixed.text)
    after = check_python(fixed.text, "example.py", Settings())
    assert not [f for f in after if f.rule == slug], fixed.text
    assert others(fixed.text, slug) == others(code, slug)
    again = fix_text(fixed.text, "example.py", Settings(), unsafe=True, rules={slug})
    assert not again.changed


@pytest.mark.parametrize("slug", sorted(FIXERS))
def test_good_examples_are_left_alone(slug: str) -> None:
    doc = load_catalogue()[slug]
    goods = [*doc.good_examples, *(p.read_text(encoding="utf-8") for p in sorted((FIXTURES / slug).glob("good_*.py")))]
    for code in goods:
        assert not fix_text(code, "example.py", Settings(), unsafe=True).changed


def test_catalogue_says_which_rules_have_a_fix() -> None:
    declared = {slug: doc.fix for slug, doc in load_catalogue().items() if doc.fix != "none"}
    assert declared == {slug: fixer.safety for slug, fixer in FIXERS.items()}


def test_catalogue_rejects_an_unknown_fix_kind(tmp_path: Path) -> None:
    from ftdoctor.catalogue import CatalogueError, parse_rule_file

    path = tmp_path / "FTD999-x.md"
    path.write_text("---\ncode: FTD999\nslug: x\nkind: runtime\nseverity: error\nfix: sometimes\nsummary: s\n---\n")
    with pytest.raises(CatalogueError, match="fix must be one of"):
        parse_rule_file(path)
    path.write_text("---\ncode: FTD999\nslug: x\nkind: runtime\nseverity: error\nfix: safe\nsummary: s\n---\n")
    with pytest.raises(CatalogueError, match="only static rules"):
        parse_rule_file(path)


# ------------------------------------------------------------------- safe vs unsafe

LOSS_LOOP = """import torch
from transformers import AutoModelForSequenceClassification

model = AutoModelForSequenceClassification.from_pretrained("bert-base-uncased", num_labels=2)
optimizer = torch.optim.AdamW(model.parameters(), lr=2e-5)
model.train()
total = 0.0
for batch in loader:
    optimizer.zero_grad()
    loss = model(**batch).loss
    loss.backward()
    optimizer.step()
    total += loss
{after}
"""


@pytest.mark.parametrize(("after", "safe"), [
    ('print(f"mean loss {total / len(loader):.4f}")', True),
    ("mean = total / len(loader)\nprint(round(mean, 4))", True),
    ("print(total.item())", False),  # a float has no .item(): only with --unsafe-fixes
    ("mean = total / len(loader)\nlog(mean.cpu())", False),
])
def test_loss_item_is_safe_only_when_every_read_takes_a_number(after: str, safe: bool) -> None:
    code = LOSS_LOOP.format(after=after)
    fixed = fix_text(code, "t.py", Settings(), rules={"loss-accumulates-graph"})
    assert fixed.changed is safe
    assert "total += loss.item()" in (fixed.text if safe else fix_text(code, "t.py", Settings(), unsafe=True).text)
    assert fixed.unsafe_left == (0 if safe else 1)


EVAL_LOOP = """import torch
from transformers import AutoModelForSequenceClassification

model = AutoModelForSequenceClassification.from_pretrained("bert-base-uncased", num_labels=2)
model.train()
for batch in train_loader:
    optimizer.zero_grad()
    model(**batch).loss.backward()
    optimizer.step()
for batch in val_loader:
    outputs = model(**batch)
    {extra}
"""


def test_eval_mode_fix_restores_training_mode_after_the_loop() -> None:
    code = EVAL_LOOP.format(extra="print(outputs.logits)")
    fixed = fix_text(code, "t.py", Settings(), rules={"missing-eval-mode"})
    assert "model.eval()\nfor batch in val_loader:" in fixed.text
    assert fixed.text.rstrip().endswith("model.train()")


def test_no_grad_fix_is_unsafe_when_the_loop_feeds_backward() -> None:
    code = EVAL_LOOP.format(extra="extra = outputs.loss") + "extra.backward()\n"
    assert not fix_text(code, "t.py", Settings(), rules={"missing-no-grad-eval"}).changed
    unsafe = fix_text(code, "t.py", Settings(), unsafe=True, rules={"missing-no-grad-eval"})
    assert "with torch.no_grad():\n    for batch in val_loader:" in unsafe.text


def test_suppressed_findings_are_not_fixed() -> None:
    code = LOSS_LOOP.format(after="print(total)").replace("    total += loss\n", "    total += loss  # noqa: FTD114\n")
    assert not fix_text(code, "t.py", Settings()).changed


def test_layout_and_comments_survive() -> None:
    code = LOSS_LOOP.format(after="print(total)").replace(
        "    optimizer.zero_grad()\n", "").replace("loader:\n", "loader:  # the training data\n    # forward\n")
    fixed = fix_text(code, "t.py", Settings(), rules={"missing-zero-grad"})
    assert fixed.text == code.replace("    optimizer.step()\n", "    optimizer.step()\n    optimizer.zero_grad()\n")


def test_shuffle_keyword_keeps_a_multiline_call_layout() -> None:
    code = """from torch.utils.data import DataLoader

train_loader = DataLoader(
    train_set,
    batch_size=16,
)
for batch in train_loader:
    optimizer.zero_grad()
    model(**batch).loss.backward()
    optimizer.step()
"""
    fixed = fix_text(code, "t.py", Settings(), rules={"train-loader-not-shuffled"})
    assert "    batch_size=16,\n    shuffle=True,\n)" in fixed.text


# ------------------------------------------------ what a fix must not break (flow facts)
# Minimised from fix hazards measured with `check --diff --unsafe-fixes` on
# pytorch/examples@77f55b9: distributed/FSDP/T5_training.py:148 (an epoch loop calling train()),
# reinforcement_learning/actor_critic.py:121,150 (rollout log-probs and losses backpropagated later),
# fast_neural_style/neural_style/neural_style.py:91 (an accumulated loss that is backpropagated);
# and on huggingface/peft@5d602fd examples/orthogonal_subspace_learning/osf_continual_learning.py
# (a task loop that hands training to `trainer.train()`).

HAZARDS = """
def train(model, loader, optimizer):
    for batch in loader:
        model(batch).sum().backward()
        optimizer.step()

def select_action(state):
    probs = policy(state)
    policy.saved_log_probs.append(probs.log())

for epoch in range(3):
    train(model, loader, optimizer)
    val = validate(model)

for t in range(100):
    select_action(env.state)

for task in tasks:
    trainer = Trainer(model=model, train_dataset=task)
    trainer.train()
    scores.append(evaluate(model))

style = 0.0
for f in features:
    style += mse(f, target)
total = content + style
total.backward()

preds = []
for batch in val_loader:
    preds.append(model(batch).argmax(-1))
accuracy = (torch.cat(preds) == labels).float().mean()
"""


def _loops(tree: ast.Module) -> list[ast.For]:
    return [node for node in tree.body if isinstance(node, ast.For)]


def test_a_loop_calling_this_files_training_code_trains() -> None:
    tree = ast.parse(HAZARDS)
    epoch, rollout, tasks, _, evaluation = _loops(tree)
    assert trains(tree, epoch) and trains(tree, tasks)
    assert not trains(tree, rollout) and not trains(tree, evaluation)


def test_values_leaving_a_loop_for_backward_are_seen() -> None:
    tree = ast.parse(HAZARDS)
    _, rollout, _, _, evaluation = _loops(tree)
    assert leaks_state(tree, rollout)  # select_action grows policy.saved_log_probs
    assert reaches_autograd(tree, {"style"})  # style -> total -> total.backward()
    assert grown_containers(evaluation) == {"preds"}
    assert not reaches_autograd(tree, {"preds"}) and not leaks_state(tree, evaluation)


def test_calls_into_the_projects_other_modules_make_no_grad_unsafe(tmp_path: Path) -> None:
    # Minimised from RizkyPurnomo/finetuning-bert finetuning.py: a loop over model names calling
    # `bert_model.evaluate_model(...)`, which fine-tunes inside another module of the project.
    (tmp_path / "bert_model.py").write_text("def evaluate_model(name):\n    ...\n")
    code = """import torch
import bert_model
from transformers import AutoModelForSequenceClassification

model = AutoModelForSequenceClassification.from_pretrained("bert-base-uncased", num_labels=2)
model.eval()
for batch in val_loader:
    outputs = model(**batch)
    results.append(bert_model.evaluate_model(outputs))
"""
    path = str(tmp_path / "run.py")
    assert fix_text(code, "elsewhere/run.py", Settings(), rules={"missing-no-grad-eval"}).changed
    assert not fix_text(code, path, Settings(), rules={"missing-no-grad-eval"}).changed
    assert fix_text(code, path, Settings(), unsafe=True, rules={"missing-no-grad-eval"}).changed


# ------------------------------------------------------------ model outputs and argparse flags

BERT_FORWARD = """import torch
from transformers import {cls}

model = {cls}.from_pretrained("bert-base-uncased")
{extra}
def forward(input_ids, mask, labels, batch):
    {targets} = model({args})
    return locals()
"""


@pytest.mark.parametrize(("cls", "targets", "args", "expected"), [
    ("BertModel", "_, pooled", "input_ids, attention_mask=mask", "pooled = model(input_ids, attention_mask=mask).pooler_output"),
    ("BertModel", "seq, pooled", "input_ids", "outputs = model(input_ids)\n    seq, pooled = outputs.last_hidden_state, outputs.pooler_output"),
    ("AutoModelForSequenceClassification", "loss, logits", "input_ids, labels=labels",
     "outputs = model(input_ids, labels=labels)\n    loss, logits = outputs.loss, outputs.logits"),
    ("AutoModelForQuestionAnswering", "start, end", "input_ids, attention_mask=mask",
     "outputs = model(input_ids, attention_mask=mask)\n    start, end = outputs.start_logits, outputs.end_logits"),
])
def test_output_fields_are_named_in_the_order_of_the_old_tuple(cls: str, targets: str, args: str, expected: str) -> None:
    code = BERT_FORWARD.format(cls=cls, targets=targets, args=args, extra="")
    fixed = fix_text(code, "t.py", Settings(), rules={"model-output-tuple-unpack"})
    assert expected in fixed.text, fixed.text


@pytest.mark.parametrize(("cls", "targets", "args"), [
    ("AutoModel", "seq, pooled", "input_ids"),  # BERT has a pooler, DistilBERT none: position 1 is unknown
    ("DistilBertModel", "seq, pooled", "input_ids"),  # no pooler: position 1 was never pooler_output
    ("AutoModelForSequenceClassification", "loss, logits", '**{"input_ids": input_ids}'),  # labels in it or not
    ("BertForSequenceClassification", "loss, logits", "input_ids, mask, None, None, None, None, labels"),
])
def test_unknown_fields_get_only_the_unsafe_tuple(cls: str, targets: str, args: str) -> None:
    code = BERT_FORWARD.format(cls=cls, targets=targets, args=args, extra="")
    assert not fix_text(code, "t.py", Settings(), rules={"model-output-tuple-unpack"}).changed
    unsafe = fix_text(code, "t.py", Settings(), unsafe=True, rules={"model-output-tuple-unpack"})
    assert f"{targets} = model({args}, return_dict=False)" in unsafe.text, unsafe.text


def test_a_read_underscore_and_a_taken_name_are_respected() -> None:
    code = BERT_FORWARD.format(cls="BertModel", targets="_, pooled", args="input_ids",
                               extra="outputs = []\nprint(_)\n")
    fixed = fix_text(code, "t.py", Settings(), rules={"model-output-tuple-unpack"})
    assert ("model_outputs = model(input_ids)\n"
            "    _, pooled = model_outputs.last_hidden_state, model_outputs.pooler_output") in fixed.text


def test_visually_aligned_arguments_follow_the_call() -> None:
    # Minimised from nobu-g/simple-BERT-classification bert_sample.ipynb cell 12: the arguments aligned under
    # the call's parenthesis stay aligned when the call moves to `outputs = ...`.
    code = """from transformers import BertModel

bert = BertModel.from_pretrained("bert-base-uncased")
seq, pooled = bert(input_ids,
                   attention_mask=mask)
"""
    fixed = fix_text(code, "t.py", Settings(), rules={"model-output-tuple-unpack"})
    assert "outputs = bert(input_ids,\n               attention_mask=mask)\n" in fixed.text, fixed.text


FLAGS = """import argparse

parser = argparse.ArgumentParser()
parser.add_argument("--fp16", type=bool{rest})
args = parser.parse_args()
"""


@pytest.mark.parametrize(("rest", "safe"), [
    (", default=False", True),
    (", default=True, nargs='?', const=True", True),
    (", action='append'", True),
    (", default='yes'", True),  # argparse converts string defaults: "yes" stays True
    (", default='False'", False),  # ...and "False" was True, now False: the default run changes
    (", default=os.environ.get('FP16')", False),  # may be a string that spells false
    (", action=MyAction", False),
    (", **extra", False),
    (", default=False)\nfrom helpers import *\nprint(", False),  # a star import may bring its own str2bool
])
def test_bool_converter_is_safe_only_when_the_default_run_cannot_change(rest: str, safe: bool) -> None:
    code = FLAGS.format(rest=rest)
    fixed = fix_text(code, "t.py", Settings(), rules={"argparse-type-bool"})
    assert fixed.changed is safe
    assert "type=str2bool" in fix_text(code, "t.py", Settings(), unsafe=True).text


def test_bool_converter_differs_from_bool_only_on_words_that_mean_false() -> None:
    fixed = fix_text(FLAGS.format(rest=""), "t.py", Settings(), rules={"argparse-type-bool"})
    namespace: dict[str, object] = {}
    exec(ast.unparse([n for n in ast.parse(fixed.text).body if isinstance(n, ast.FunctionDef)][0]), namespace)
    convert = namespace["str2bool"]
    for text in ("False", "false", "0", "no", "NO", "off", "f", "n", ""):
        assert convert(text) is False  # type: ignore[operator]
    for text in ("True", "1", "yes", "on", "y", "t", "2", "enabled", " false"):
        assert convert(text) is bool(text)  # type: ignore[operator]


def test_one_converter_for_several_flags_in_one_function() -> None:
    # Minimised from JoungheeKim/Pytorch-BERT-Classification train.py:31,35 (checkout of 2026-12): two fixes of
    # one round each defined the converter; difflib aligned the blank line above `def` differently for each, so
    # their hunks did not overlap and the round applied both definitions.
    code = """from argparse import ArgumentParser
import json

def build_parser():
    parser = ArgumentParser()
    parser.add_argument("--freeze", default=False, type=bool)
    parser.add_argument("--dropout", default=0.1, type=float)
    parser.add_argument("--fp16", default=True, type=bool)
    return parser
"""
    fixed = fix_text(code, "t.py", Settings(), rules={"argparse-type-bool"})
    assert fixed.text.count("def str2bool") == 1 and fixed.text.count("type=str2bool") == 2, fixed.text
    assert len(fixed.applied) == 2


def test_a_converter_of_the_users_own_is_never_replaced() -> None:
    code = FLAGS.format(rest=", default=False").replace(
        "parser = ", "def str2bool(v):\n    return v in ('yes',)\n\nparser = ")
    fixed = fix_text(code, "t.py", Settings(), rules={"argparse-type-bool"})
    assert "type=parse_bool" in fixed.text and "return v in ('yes',)" in fixed.text
