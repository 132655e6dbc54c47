"""What the model/config rules rely on: the checkpoint table and constant propagation."""

from __future__ import annotations

import ast
import textwrap

import pytest

from ftdoctor.static import checkpoints
from ftdoctor.static.constants import UNKNOWN, producers, resolve_constant
from ftdoctor.static.model import ModuleModel, build_model


# --------------------------------------------------------------------------- checkpoints
@pytest.mark.parametrize(
    "name, hidden",
    [
        ("bert-base-uncased", 768),
        ("google-bert/bert-base-uncased", 768),
        ("  Google-BERT/BERT-Large-Cased ", 1024),
        ("FacebookAI/roberta-large", 1024),
        ("sentence-transformers/all-MiniLM-L6-v2", 384),
        ("nreimers/MiniLM-L6-H384-uncased", 384),
        ("albert-base-v2", 768),
        ("google/electra-small-discriminator", 256),
        ("microsoft/deberta-v3-small", 768),
        ("microsoft/deberta-v3-large", 1024),
        ("xlm-roberta-base", 768),
        ("google/bert_uncased_L-4_H-256_A-4", 256),
        ("https://huggingface.co/distilbert-base-uncased", 768),
    ],
)
def test_known_checkpoints_and_their_hidden_size(name: str, hidden: int) -> None:
    assert checkpoints.hidden_size(name) == hidden


@pytest.mark.parametrize("name", ["my-org/bert-base-uncased", "./bert-base-uncased", "bert-base", "", None])
def test_unknown_checkpoints_are_none(name: str | None) -> None:
    assert checkpoints.lookup(name) is None


def test_vocabularies_shared_and_different() -> None:
    assert checkpoints.same_checkpoint("google-bert/bert-base-uncased", "bert-base-uncased")
    assert not checkpoints.vocabularies_differ("bert-base-uncased", "distilbert-base-uncased")
    assert not checkpoints.vocabularies_differ("bert-large-uncased", "google/electra-base-discriminator")
    assert checkpoints.vocabularies_differ("bert-base-uncased", "bert-base-cased")
    assert checkpoints.vocabularies_differ("roberta-base", "xlm-roberta-base")
    assert not checkpoints.vocabularies_differ("roberta-base", "my-org/unknown")  # unknown: no opinion


# --------------------------------------------------------------------------- constants
def model_of(source: str) -> ModuleModel:
    source = textwrap.dedent(source)
    return build_model(ast.parse(source), source, "script.py")


def value_at_end(source: str) -> object:
    """The value of the expression statement ending the source."""
    module = model_of(source)
    last = module.tree.body[-1]
    assert isinstance(last, ast.Expr)
    return resolve_constant(module, last.value)


def test_argparse_default_through_a_function_that_returns_parse_args() -> None:
    assert value_at_end(
        """
        import argparse

        def get_args():
            parser = argparse.ArgumentParser()
            parser.add_argument("--learning-rate", "--lr", type=float, default="3e-5")
            parser.add_argument("--fp16", action="store_true")
            return parser.parse_args()

        def train(args):
            (args.learning_rate, args.fp16)

        train(get_args())
        (get_args().lr, get_args().fp16)
        """
    ) == (3e-5, False)


def test_dataclass_fields_by_keyword_position_and_default() -> None:
    assert value_at_end(
        """
        from dataclasses import dataclass

        @dataclass
        class Config:
            lr: float = 1e-5
            epochs: int = 3
            warmup: float = 0.1

        cfg = Config(2e-5, epochs=5)
        (cfg.lr, cfg.epochs, cfg.warmup)
        """
    ) == (2e-5, 5, 0.1)


def test_dict_configs_get_and_tuple_returns() -> None:
    assert value_at_end(
        """
        CONFIG = dict(lr=4e-5, batch_size=16)

        def hyper():
            return CONFIG["lr"] * 2, CONFIG.get("epochs", 3)

        lr, epochs = hyper()
        (lr, epochs, CONFIG.get("batch_size"))
        """
    ) == (8e-5, 3, 16)


def test_parameters_resolve_only_when_every_call_site_agrees() -> None:
    agreeing = """
        def build(lr=1e-3):
            lr

        build(lr=2e-5)
        build(2e-5)
        build(lr=2e-5)
        """
    module = model_of(agreeing)
    probe = module.functions["build"].node.body[0].value  # type: ignore[attr-defined]
    assert resolve_constant(module, probe) == 2e-5
    disagreeing = model_of("def build(lr=1e-3):\n    lr\n\nbuild(2e-5)\nbuild()\n")
    probe = disagreeing.functions["build"].node.body[0].value  # type: ignore[attr-defined]
    assert resolve_constant(disagreeing, probe) is UNKNOWN


def test_producers_follow_assignments_parameters_and_returns() -> None:
    module = model_of(
        """
        from torch.utils.data import DataLoader

        def loaders(data):
            return DataLoader(data, batch_size=8), DataLoader(data, batch_size=16)

        def run(loader):
            for batch in loader:
                pass

        train_loader, val_loader = loaders(dataset)
        run(train_loader)
        """
    )
    loop = module.tree.body[2].body[0]  # type: ignore[attr-defined]
    assert [ast.unparse(p) for p in producers(module, loop.iter)] == ["DataLoader(data, batch_size=8)"]


@pytest.mark.parametrize(
    "source, expected",
    [
        ("x = 1\nif c:\n    x = 2\nelse:\n    x = 3\nx\n", UNKNOWN),  # either arm
        ("x = 1\nif c:\n    x = 2\nx\n", UNKNOWN),  # the if may be skipped
        ("x = 2\nif c:\n    x = 2\nx\n", 2),  # every path agrees
        ("x = 1\nx = 5\nx\n", 5),
        ("if a:\n    x = 1\nelif b:\n    x = 2\nelse:\n    x = 3\nx\n", UNKNOWN),
    ],
)
def test_constants_consider_every_branch_that_may_reach(source: str, expected: object) -> None:
    value = value_at_end(source)
    assert (value is UNKNOWN) if expected is UNKNOWN else (value == expected)


def test_producers_of_a_name_bound_in_both_arms() -> None:
    module = model_of("if iterable:\n    data = Stream(values)\nelse:\n    data = Table(values)\ndata\n")
    last = module.tree.body[-1].value  # type: ignore[attr-defined]
    assert sorted(ast.unparse(p) for p in producers(module, last)) == ["Stream(values)", "Table(values)"]
