"""The engine's contract and the semantic model's queries."""

from __future__ import annotations

import ast
import textwrap

import pytest

from ftdoctor.settings import Settings
from ftdoctor.static.engine import check_source
from ftdoctor.static.model import ModuleModel, build_model


def model_of(source: str) -> ModuleModel:
    source = textwrap.dedent(source)
    return build_model(ast.parse(source), source, "script.py")


def first_call(module: ModuleModel, name: str) -> ast.Call:
    return next(c for c in module.calls() if ast.unparse(c.func).endswith(name))


# --------------------------------------------------------------------------- engine
def test_syntax_error_becomes_one_parse_error_finding_at_its_line() -> None:
    findings = check_source("import torch\n\ndef f(:\n    pass\n", "bad.py")
    assert [(f.rule, f.line, f.path) for f in findings] == [("parse-error", 3, "bad.py")]
    assert findings[0].column and findings[0].column >= 1


def test_pathological_nesting_is_a_parse_error_not_a_crash() -> None:
    findings = check_source("x = " + "+".join(["1"] * 30000), "deep.py")
    assert [f.rule for f in findings] == ["parse-error"]
    assert "too deeply nested" in findings[0].message


def test_null_bytes_are_a_parse_error() -> None:
    assert [f.rule for f in check_source("a = 1\x00\n", "nul.py")] == ["parse-error"]


def test_empty_source_has_no_findings() -> None:
    assert check_source("", "empty.py") == []


def test_ignored_parse_error_is_dropped() -> None:
    assert check_source("def f(:\n", "bad.py", Settings(ignore=["parse-error"])) == []


def test_checking_never_executes_the_file(tmp_path) -> None:  # type: ignore[no-untyped-def]
    marker = tmp_path / "executed.txt"
    source = textwrap.dedent(
        f"""
        import pathlib
        pathlib.Path({str(marker)!r}).write_text("ran")
        raise SystemExit("this script must never run during a check")
        """
    )
    check_source(source, "side_effect.py")
    assert not marker.exists()


def test_a_crashing_rule_is_swallowed(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    from ftdoctor.static import rule as rule_module

    class Boom(rule_module.StaticRule):
        slug = "seed-not-set"

        def check(self, module):  # type: ignore[no-untyped-def]
            raise RuntimeError("boom")

    monkeypatch.setitem(rule_module.STATIC_RULES, "seed-not-set", Boom)
    monkeypatch.delenv("FTDOCTOR_DEBUG", raising=False)
    check_source("x = 1\n", "ok.py")  # does not raise
    monkeypatch.setenv("FTDOCTOR_DEBUG", "1")
    with pytest.raises(RuntimeError):
        check_source("x = 1\n", "ok.py")


# --------------------------------------------------------------------------- imports and aliases
def test_qualified_names_follow_import_aliases() -> None:
    module = model_of(
        """
        import torch.nn as nn
        import torch.nn.functional as F
        from torch import optim
        from transformers import AutoModel as AM, BertModel
        import transformers

        a = nn.Linear(768, 2)
        b = F.cross_entropy(x, y)
        c = optim.AdamW(p)
        d = AM.from_pretrained("bert-base-uncased")
        e = BertModel.from_pretrained("bert-base-uncased")
        f = transformers.AutoTokenizer.from_pretrained("x")
        """
    )
    names = [module.qualified_name(call.func) for call in module.calls()]
    assert names == [
        "torch.nn.Linear",
        "torch.nn.functional.cross_entropy",
        "torch.optim.AdamW",
        "transformers.AutoModel.from_pretrained",
        "transformers.BertModel.from_pretrained",
        "transformers.AutoTokenizer.from_pretrained",
    ]


def test_local_variables_have_no_qualified_name_but_builtins_do() -> None:
    module = model_of("import torch\nmodel = make()\nmodel.train()\nprint(1)\n")
    assert module.qualified_name(first_call(module, "model.train").func) is None
    assert module.qualified_name(first_call(module, "print").func) == "print"


# --------------------------------------------------------------------------- bindings
def test_model_bindings_know_class_head_checkpoint_and_origin() -> None:
    module = model_of(
        """
        from transformers import AutoModelForSequenceClassification, BertModel, BertConfig, BertForSequenceClassification
        CKPT = "bert-base-uncased"
        head = AutoModelForSequenceClassification.from_pretrained(CKPT, num_labels=3)
        base = BertModel.from_pretrained("bert-base-cased")
        fresh = BertForSequenceClassification(BertConfig())
        head = head.to("cuda")
        """
    )
    head, base, fresh, moved = module.bindings_of_kind("model")
    assert (head.info.class_name, head.info.is_head, head.info.checkpoint, head.info.via) == (
        "AutoModelForSequenceClassification", True, "bert-base-uncased", "from_pretrained")
    assert (base.info.class_name, base.info.is_head, base.info.checkpoint) == ("BertModel", False, "bert-base-cased")
    assert (fresh.info.via, fresh.info.is_head) == ("config", True)
    assert moved.origin() is head


def test_kinds_of_training_objects() -> None:
    module = model_of(
        """
        import torch
        import bitsandbytes as bnb
        from torch.utils.data import DataLoader
        from transformers import AutoTokenizer, get_linear_schedule_with_warmup, Trainer, TrainingArguments
        from accelerate import Accelerator

        tok = AutoTokenizer.from_pretrained("roberta-base")
        opt = torch.optim.AdamW(model.parameters(), lr=1e-5)
        opt8 = bnb.optim.AdamW8bit(model.parameters())
        sched = get_linear_schedule_with_warmup(opt, 0, 10)
        plateau = torch.optim.lr_scheduler.ReduceLROnPlateau(opt)
        crit = torch.nn.CrossEntropyLoss()
        loader = DataLoader(ds, batch_size=8, shuffle=True)
        targs = TrainingArguments("out", learning_rate=2e-5)
        trainer = Trainer(model=model, args=targs)
        accelerator = Accelerator()
        """
    )
    kinds = {b.name: b.kind for b in module.all_bindings()}
    assert kinds == {
        "tok": "tokenizer", "opt": "optimizer", "opt8": "optimizer", "sched": "scheduler", "plateau": "scheduler",
        "crit": "loss", "loader": "dataloader", "targs": "training_args", "trainer": "trainer",
        "accelerator": "accelerator",
    }
    assert module.binding_of_key("tok", module.module_scope).info.checkpoint == "roberta-base"
    assert module.uses_trainer


def test_accelerator_prepare_unpacks_positionally() -> None:
    module = model_of(
        """
        import torch
        from accelerate import Accelerator
        from torch.utils.data import DataLoader
        from transformers import AutoModelForSequenceClassification
        accelerator = Accelerator()
        net = AutoModelForSequenceClassification.from_pretrained("distilbert-base-uncased")
        opt = torch.optim.AdamW(net.parameters())
        dl = DataLoader(ds, shuffle=True)
        model, optimizer, train_dl = accelerator.prepare(net, opt, dl)
        """
    )
    scope = module.module_scope
    assert module.binding_of_key("model", scope).kind == "model"
    assert module.binding_of_key("model", scope).origin().name == "net"
    assert module.binding_of_key("optimizer", scope).kind == "optimizer"
    assert module.binding_of_key("train_dl", scope).kind == "dataloader"


def test_self_attributes_bind_on_the_class() -> None:
    module = model_of(
        """
        import torch
        from transformers import AutoModel
        class Runner:
            def __init__(this, lr):
                this.model = AutoModel.from_pretrained("bert-base-uncased")
                this.optimizer = torch.optim.AdamW(this.model.parameters(), lr=lr)
            def step(self, batch):
                out = self.model(**batch)
                self.optimizer.step()
        """
    )
    call = first_call(module, "self.optimizer.step")
    binding = module.binding_of(call.func.value)
    assert binding is not None and binding.kind == "optimizer" and binding.name == "self.optimizer"
    assert module.binding_of(first_call(module, "self.model").func).kind == "model"


def test_parameters_take_the_kind_their_callers_pass() -> None:
    module = model_of(
        """
        import torch
        from transformers import AutoModel
        def train(net, opt):
            opt.step()
        model = AutoModel.from_pretrained("bert-base-uncased")
        train(model, torch.optim.SGD(model.parameters(), lr=0.1))
        """
    )
    scope = module.functions["train"]
    assert module.binding_of_key("net", scope).kind == "model"
    assert module.binding_of_key("opt", scope).kind == "optimizer"


def test_dataloader_batches_and_dicts() -> None:
    module = model_of(
        """
        from torch.utils.data import DataLoader
        from tqdm import tqdm
        loader = DataLoader(ds, batch_size=4)
        for step, batch in enumerate(tqdm(loader)):
            moved = {k: v for k, v in batch.items()}
        """
    )
    kinds = {b.name: b.kind for b in module.all_bindings()}
    assert kinds["batch"] == "batch" and kinds["moved"] == "dict" and kinds["step"] == "unknown"
    assert module.binding_of_key("batch", module.module_scope).info.origin.name == "loader"
