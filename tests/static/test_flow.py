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
