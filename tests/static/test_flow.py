"""Flow and call sensitivity: per-call-site producers, reaching definitions per branch, dead arms."""

from __future__ import annotations

import ast
import textwrap

from ftdoctor.static.constants import data_identity, resolve_constant
from ftdoctor.static.engine import _build


def module_of(source: str):
    return _build(textwrap.dedent(source), "flow.py")


def value_named(module, name: str) -> ast.expr:
    """The last read of ``name`` in the module (an argument of ``use(...)``)."""
    reads = [n for n in module.nodes(ast.Name) if n.id == name and isinstance(n.ctx, ast.Load)]
    return reads[-1]


HELPER = """
    def get(split, n=10):
        ds = corpus[split].select(range(n))
        return ds.map(tokenize)

    a = get("train")
    b = get("test")
    c = get("train")
    d = get(split="train", n=10)
    use(a, b, c, d)
"""


def test_a_helper_returns_different_data_per_argument() -> None:
    module = module_of(HELPER)
    a, b, c, d = (data_identity(module, value_named(module, name)) for name in "abcd")
    assert a and a != b
    assert a == c == d  # the same arguments, by position, keyword or default


def test_arguments_that_are_not_constants_are_compared_by_what_produces_them() -> None:
    module = module_of("""
        def to_tensors(frame):
            return TensorDataset(frame.values)

        fit, val = read("fit.csv"), read("val.csv")
        x = to_tensors(fit)
        y = to_tensors(val)
        z = to_tensors(fit)
        use(x, y, z)
    """)
    x, y, z = (data_identity(module, value_named(module, name)) for name in "xyz")
    assert x != y and x == z


def test_a_parameter_read_through_a_call_is_that_calls_argument() -> None:
    module = module_of("""
        def pick(split):
            return table[split]

        chosen = pick("validation")
        other = pick("train")
        use(chosen)
    """)
    (site,) = data_identity(module, value_named(module, "chosen"))
    assert site[1] == ((("split", "validation"),),)
    assert resolve_constant(module, value_named(module, "chosen")) is not None  # no crash on the same path


TRAIN = """
import torch
from transformers import AutoModelForSequenceClassification

model = AutoModelForSequenceClassification.from_pretrained("bert-base-uncased")
optimizer = torch.optim.AdamW(model.parameters(), lr=2e-5)
torch.manual_seed(0)
{block}
"""
LOOP = "for batch in loader:\n    model.train()\n    model(**batch).loss.backward()\n    optimizer.step()\n"


def rules_in(block: str) -> set[str]:
    from ftdoctor.static.engine import check_source

    return {f.rule for f in check_source(TRAIN.format(block=block), "train.py") if f.severity.value != "info"}


def test_the_dead_arm_of_a_constant_condition_is_not_reported() -> None:
    indented = textwrap.indent(LOOP, "    ")
    assert "missing-zero-grad" in rules_in(LOOP)
    assert "missing-zero-grad" in rules_in("if 1:\n" + indented)
    assert "missing-zero-grad" not in rules_in("if 0:\n" + indented)
    assert "missing-zero-grad" not in rules_in("if True:\n    pass\nelse:\n" + indented)
    assert "missing-zero-grad" not in rules_in("while False:\n" + indented)
    assert "missing-zero-grad" in rules_in("if flag:\n" + indented)


def test_a_binding_in_a_dead_arm_reaches_nothing() -> None:
    module = module_of("""
        lr = 2e-5
        if False:
            lr = 1.0
        use(lr)
    """)
    assert resolve_constant(module, value_named(module, "lr")) == 2e-5


def test_a_binding_before_return_does_not_reach_past_its_block() -> None:
    module = module_of("""
        def pick(fast):
            lr = 2e-5
            if fast:
                lr = 1e-3
                return lr
            use(lr)
    """)
    assert resolve_constant(module, value_named(module, "lr")) == 2e-5


def test_loops_and_try_keep_the_earlier_value_reaching() -> None:
    loop = module_of("""
        lr = 2e-5
        for trial in trials:
            lr = 1e-3
        use(lr)
    """)
    assert resolve_constant(loop, value_named(loop, "lr")) is not None
    assert repr(resolve_constant(loop, value_named(loop, "lr"))) == "UNKNOWN"  # either value may hold
    guarded = module_of("""
        try:
            lr = load_lr()
        except OSError:
            lr = 2e-5
        use(lr)
    """)
    assert repr(resolve_constant(guarded, value_named(guarded, "lr"))) == "UNKNOWN"  # the handler's or load_lr's
    plain = module_of("""
        lr = 2e-5
        with open("x") as handle:
            lr = 3e-5
        use(lr)
    """)
    assert resolve_constant(plain, value_named(plain, "lr")) == 3e-5


def test_the_same_item_of_the_same_container_is_the_same_data() -> None:
    module = module_of("""
        data = load_dataset("imdb")
        a = data["train"]
        b = data["train"]
        c = data["test"]
        use(a, b, c)
    """)
    a, b, c = (data_identity(module, value_named(module, name)) for name in "abc")
    assert a and a == b and a != c


def test_an_arm_that_returns_is_not_an_alternative_value() -> None:
    module = module_of("""
        def pick(fast):
            if fast:
                lr = 1.0
                return None
            else:
                lr = 2e-5
            use(lr)
    """)
    assert resolve_constant(module, value_named(module, "lr")) == 2e-5


def test_a_conditional_expression_holds_either_arm() -> None:
    module = module_of("""
        fast = 2e-5 if 1 else 1.0
        either = 2e-5 if flag else 1.0
        same = 2e-5 if flag else 2e-5
        use(fast, either, same)
    """)
    values = [resolve_constant(module, value_named(module, name)) for name in ("fast", "either", "same")]
    assert values[0] == 2e-5 and repr(values[1]) == "UNKNOWN" and values[2] == 2e-5
