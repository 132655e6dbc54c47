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


def test_models_are_proven_by_construction_not_by_name() -> None:
    module = model_of(
        """
        import timm
        import deepspeed
        import torch
        from torch import nn
        from diffusers import DDPMScheduler, DiffusionPipeline, StableDiffusionPipeline, UNet2DConditionModel
        from peft import PeftModel, get_peft_model
        from transformers import (AutoImageProcessor, AutoModelForCausalLM, BertForSequenceClassification,
                                  DataCollatorForLanguageModeling, GenerationConfig, TFAutoModel,
                                  TokenClassificationPipeline, pipeline)
        from mylib import build_model, Widget

        class Head(nn.Module):
            def __init__(self):
                super().__init__()
                self.fc = nn.Linear(4, 2)

        class Scale(nn.Module):
            def forward(self, x):
                return 2 * x

        class DataModule(LightningDataModule):
            pass

        lm = AutoModelForCausalLM.from_pretrained("gpt2")
        clf = BertForSequenceClassification(config)
        adapted = PeftModel.from_pretrained(lm, "out")
        unet = UNet2DConditionModel.from_pretrained("sd", subfolder="unet")
        vit = timm.create_model("vit_base_patch16_224")
        head = Head()
        scale = Scale()
        pipe = DiffusionPipeline.from_pretrained("sd")
        sd = StableDiffusionPipeline.from_pretrained("sd").to("cuda")
        classify = pipeline("text-classification")
        tagger = TokenClassificationPipeline(model=clf, tokenizer=tokenizer)
        noise = DDPMScheduler.from_pretrained("sd", subfolder="scheduler")
        processor = AutoImageProcessor.from_pretrained("vit")
        generation = GenerationConfig.from_pretrained("gpt2")
        collator = DataCollatorForLanguageModeling(tokenizer)
        tf_model = TFAutoModel.from_pretrained("bert-base-uncased")
        guessed = build_model()
        widget = Widget.from_pretrained("x")
        data = DataModule()
        engine, ds_optimizer, _, ds_scheduler = deepspeed.initialize(model=head, config_params={})
        """
    )
    kinds = {b.name: b.kind for b in module.module_scope.bindings.values() for b in b if b.source == "assign"}
    kinds.update({b.name: b.kind for b in module.module_scope.bindings.get("engine", [])})
    assert {name for name, kind in kinds.items() if kind == "model"} == {
        "lm", "clf", "adapted", "unet", "vit", "head", "scale", "engine",
    }
    assert kinds["pipe"] == kinds["sd"] == kinds["classify"] == kinds["tagger"] == "pipeline"
    assert kinds["noise"] == "object" and kinds["generation"] == "config"
    assert kinds["processor"] == "tokenizer"
    for name in ("collator", "tf_model", "guessed", "widget", "data"):
        assert kinds[name] == "unknown", name
    scope = module.module_scope
    assert module.binding_of_key("scale", scope).info.parameter_free
    assert not module.binding_of_key("head", scope).info.parameter_free
    engine = module.binding_of_key("engine", scope)
    assert engine.info.via == "engine" and engine.origin().name == "head"
    assert module.binding_of_key("ds_optimizer", scope).kind == "optimizer"


def test_a_pandas_formatted_dataset_slice_is_no_dict() -> None:
    module = model_of(
        """
        from datasets import load_dataset
        ds = load_dataset("imdb", split="train")
        ds.set_format("pandas")
        frame = ds[:]
        torch_rows = load_dataset("imdb", split="test").with_format("torch")
        row = torch_rows[0]
        table = load_dataset("imdb", split="test").with_format("arrow")
        sliced = table[:10]
        """
    )
    scope = module.module_scope
    assert module.binding_of_key("frame", scope).kind == "unknown"
    assert module.binding_of_key("row", scope).kind == "dict"
    assert module.binding_of_key("sliced", scope).kind == "unknown"


def test_closure_steps_deepspeed_engines_and_distributed_contexts() -> None:
    module = model_of(
        """
        import deepspeed
        import torch
        import torch.distributed.autograd as dist_autograd
        from torch.distributed.optim import DistributedOptimizer
        from transformers import AutoModelForSequenceClassification
        model = AutoModelForSequenceClassification.from_pretrained("bert-base-uncased")
        lbfgs = torch.optim.LBFGS(model.parameters())
        for x in data:
            def closure():
                lbfgs.zero_grad()
                loss = model(**x).loss
                loss.backward()
                return loss
            lbfgs.step(closure)
        engine, _, _, _ = deepspeed.initialize(model=model, config_params={})
        for batch in loader:
            engine.backward(engine(**batch).loss)
            engine.step()
        dist_opt = DistributedOptimizer(torch.optim.SGD, params, lr=0.1)
        for batch in loader:
            with dist_autograd.context() as ctx:
                dist_autograd.backward(ctx, [model(**batch).loss])
                dist_opt.step(ctx)
        """
    )
    closure_loop, engine_loop, rpc_loop = module.training_loops()
    assert [e.kind for e in closure_loop.events] == ["zero_grad", "forward", "backward", "step"]
    assert [e.kind for e in engine_loop.events] == ["forward", "backward", "step", "zero_grad"]
    assert engine_loop.of_kind("backward")[0].text == "engine(**batch).loss"
    assert [e.kind for e in rpc_loop.events] == ["zero_grad", "forward", "backward", "step"]
    assert rpc_loop.of_kind("backward")[0].text == "model(**batch).loss"
    assert not rpc_loop.of_kind("step")[0].target.info.has_zero_grad


def test_backward_slice_and_exclusive_arms() -> None:
    from ftdoctor.static.analysis_tensors import backpropagated_keys

    module = model_of(
        """
        def update(policy, optimizer, rewards):
            terms = []
            for log_prob, ret in zip(policy.saved_log_probs, rewards):
                terms.append(-log_prob * ret)
            style = 0.0
            style += sum(terms)
            total = style + outputs.loss
            total.backward()
            logged = []
            logged.append(total.item())

        if flag:
            x = {}
        else:
            x = make()
        """
    )
    keys = backpropagated_keys(module, module.functions["update"])
    assert {"total", "style", "terms", "log_prob", "policy.saved_log_probs", "outputs"} <= keys
    assert "logged" not in keys
    first, second = module.module_scope.bindings["x"]
    assert module.exclusive(first.node, second.node)
    assert not module.exclusive(first.node, module.module_scope.bindings["x"][0].node)


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


# --------------------------------------------------------------------------- loops and events
def kinds(loop) -> list[tuple[str, str]]:  # type: ignore[no-untyped-def]
    return [(e.kind, e.text) for e in loop.events]


def test_calls_are_followed_three_levels_deep_with_arguments_mapped() -> None:
    module = model_of(
        """
        import torch
        from transformers import AutoModelForSequenceClassification
        model = AutoModelForSequenceClassification.from_pretrained("bert-base-uncased")
        opt = torch.optim.AdamW(model.parameters(), lr=2e-5)

        def level3(o):
            o.step()
            o.zero_grad()

        def level2(m, o, b):
            m(**b).loss.backward()
            level3(o)

        def level1(m, o, b):
            level2(m, o, b)

        for batch in loader:
            level1(model, opt, batch)
        """
    )
    (loop,) = module.training_loops()
    assert [e.kind for e in loop.events] == ["forward", "backward", "step", "zero_grad"]
    step = loop.of_kind("step")[0]
    assert step.target is not None and step.target.name == "opt" and step.target.kind == "optimizer"
    assert step.site.lineno == 19  # located at the call in the loop, not inside level3
    assert step.node.lineno == 8


def test_nested_epoch_loop_is_not_the_training_loop() -> None:
    module = model_of(
        """
        for epoch in range(3):
            optimizer.zero_grad()
            for batch in loader:
                model(**batch).loss.backward()
                optimizer.step()
        """
    )
    outer, inner = module.loops()
    assert not outer.is_training and inner.is_training
    assert outer.of_kind("step")[0].depth == 1


def test_accumulation_guard_and_accelerate_accumulation() -> None:
    manual = model_of(
        """
        for i, batch in enumerate(loader):
            (model(**batch).loss / 4).backward()
            if (i + 1) % 4 == 0 or i == last:
                optimizer.step()
                optimizer.zero_grad()
        """
    )
    (loop,) = manual.training_loops()
    assert loop.accumulation_guard is not None and not loop.uses_accelerate_accumulation
    zero, step = loop.of_kind("zero_grad")[0], loop.of_kind("step")[0]
    assert zero.under(loop.accumulation_guard.node) and step.under(loop.accumulation_guard.node)

    accelerated = model_of(
        """
        from accelerate import Accelerator
        accelerator = Accelerator(gradient_accumulation_steps=4)
        for batch in loader:
            with accelerator.accumulate(model):
                accelerator.backward(model(**batch).loss)
                optimizer.step()
                optimizer.zero_grad()
        """
    )
    (loop,) = accelerated.training_loops()
    assert loop.uses_accelerate_accumulation and loop.accumulation_guard is None
    assert loop.of_kind("backward")[0].text == "model(**batch).loss"


def test_branch_exclusivity_of_events() -> None:
    module = model_of(
        """
        for batch in loader:
            loss = model(**batch).loss
            loss.backward()
            if ok(loss):
                optimizer.step()
            else:
                optimizer.zero_grad()
        """
    )
    (loop,) = module.training_loops()
    step, zero = loop.of_kind("step")[0], loop.of_kind("zero_grad")[0]
    assert step.exclusive_with(zero) and zero.exclusive_with(step)
    assert not step.exclusive_with(loop.of_kind("backward")[0])


def test_evaluation_loops_and_grad_state() -> None:
    module = model_of(
        """
        import torch
        from transformers import AutoModelForSequenceClassification
        model = AutoModelForSequenceClassification.from_pretrained("bert-base-uncased")

        @torch.no_grad()
        def validate(m, loader):
            for b in loader:
                m(**b)

        def compute_loss(m, chunks):
            total = 0
            for c in chunks:
                total = total + m(**c).loss
            return total

        for batch in train_loader:
            compute_loss(model, batch).backward()
            optimizer.step()
            optimizer.zero_grad()
            validate(model, val_loader)
        """
    )
    by_line = {loop.line: loop for loop in module.loops()}
    assert by_line[8].is_evaluation and by_line[8].of_kind("forward")[0].grad_disabled
    assert not by_line[13].is_evaluation  # feeds the training loop's backward
    assert by_line[17].is_training and not by_line[17].is_evaluation


def test_trainer_subclass_loops_are_not_training_loops() -> None:
    module = model_of(
        """
        from transformers import Trainer
        class MyTrainer(Trainer):
            def training_step(self, model, inputs):
                for _ in range(2):
                    model(**inputs).loss.backward()
                    self.optimizer.step()
        """
    )
    assert module.loops() and not module.training_loops()


# --------------------------------------------------------------------------- constants
def test_constants_follow_names_argparse_dicts_and_dataclasses() -> None:
    from ftdoctor.static.constants import UNKNOWN, resolve_constant

    module = model_of(
        """
        import argparse
        from dataclasses import dataclass
        BASE_LR = 1e-5
        LR = BASE_LR * 2
        parser = argparse.ArgumentParser()
        parser.add_argument("--learning-rate", type=float, default="3e-5")
        args = parser.parse_args()
        config = {"lr": 5e-5, "epochs": 3}
        cfg = dict(lr=7e-5)

        @dataclass
        class Hyper:
            lr: float = 4e-5

        hp = Hyper()
        use(LR, args.learning_rate, config["lr"], cfg["lr"], config.get("warmup", 0.1), hp.lr, unknown_name)
        """
    )
    call = first_call(module, "use")
    assert [resolve_constant(module, arg) for arg in call.args] == [2e-5, 3e-5, 5e-5, 7e-5, 0.1, 4e-5, UNKNOWN]


# --------------------------------------------------------------------------- node index and source text
def test_nodes_index_and_exact_source_segments() -> None:
    module = model_of('label = "café"\nvalue = compute(\n    label,\n    "ünïcode")\n')
    calls = module.nodes(ast.Call)
    assert calls == module.calls()
    assert module.source_segment(calls[0]) == 'compute(\n    label,\n    "ünïcode")'
    assert module.source_segment(module.nodes(ast.Constant)[0]) == '"café"'
    assert len(module.nodes(ast.Assign, ast.Call)) == 3


def test_relative_and_star_imports() -> None:
    module = model_of("from . import helpers\nfrom .data import load\nfrom torch.nn import *\nhelpers.f()\nload()\n")
    names = [module.qualified_name(call.func) for call in module.calls()]
    assert names == [".helpers.f", ".data.load"]
