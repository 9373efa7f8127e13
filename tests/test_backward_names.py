"""``backward()``: any distinct identifiers as names, and an index form linear in the spec.

Names that take every usual output name (Y, Z, Out, Result) work; bad names are refused
naming the bad one; default operand names never run out (``A..Z``, then ``A0, A1, ...``);
copies of a repeated label are ``i′, i′′, i′′′, i′4, ...``, so the index form of a label
repeated n times has O(n) characters.
"""

from __future__ import annotations

import autograd
import autograd.numpy as anp
import numpy as np
import pytest
from oracles import finite_difference

import einsgrad as eg
from einsgrad.core.labels import default_operand_names


def test_names_that_take_every_default_output_name_work() -> None:
    """Operands named Y, Z, Out and Result leave none of the usual output names: the
    output's cotangent is dOut1, and dY is the gradient of the operand Y."""
    rule = eg.backward("i,i,i,i->", 0, names=["Y", "Z", "Out", "Result"])
    assert rule.output_name == "Out1"
    assert rule.index_form() == "dY[i] = Z[i] · Out[i] · Result[i] · dOut1"
    rng = np.random.default_rng(2)
    operands = {name: rng.normal(size=3) for name in ("a", "b", "c", "d")}

    def product(a: np.ndarray, b: np.ndarray, c: np.ndarray, d: np.ndarray) -> float:
        return float(np.sum(a * b * c * d))

    got = rule.apply(list(operands.values()), 1.0)
    np.testing.assert_allclose(got, finite_difference(product, operands, "a"), rtol=1e-7)
    by_autograd = autograd.grad(
        lambda a: anp.sum(a * operands["b"] * operands["c"] * operands["d"])
    )
    np.testing.assert_allclose(got, by_autograd(operands["a"]), rtol=1e-12)


@pytest.mark.parametrize(
    ("names", "message"),
    [
        (["X", "X"], "operand name 'X' .* is given twice"),
        (["X", "1W"], "operand name 1 .* must be a Python identifier, got '1W'"),
        (["X", "W b"], "must be a Python identifier, got 'W b'"),
        (["X", 7], "must be a Python identifier, got 7"),
        ("XW", "got the string 'XW'"),
        (["X"], "has 2 operands but 1 names"),
    ],
    ids=["duplicate", "leading-digit", "space", "not-a-string", "a-string", "too-few"],
)
def test_bad_names_are_refused_naming_the_bad_one(names: object, message: str) -> None:
    with pytest.raises(eg.SpecError, match=message):
        eg.backward("bi,ij->bj", 0, names=names)  # type: ignore[arg-type]


def test_a_bad_output_name_is_refused() -> None:
    with pytest.raises(eg.SpecError, match=r"output name .* got 'd Y'"):
        eg.backward("bi,ij->bj", 0, output="d Y")


@pytest.mark.parametrize("count", [1, 26, 27, 60, 1000])
def test_default_operand_names_are_distinct_identifiers(count: int) -> None:
    names = default_operand_names(count)
    assert len(names) == count == len(set(names))
    assert all(name.isidentifier() for name in names)
    if count <= 26:
        assert "".join(names) == "ABCDEFGHIJKLMNOPQRSTUVWXYZ"[:count]


def test_the_backward_of_a_27_operand_einsum_has_identifier_names() -> None:
    rule = eg.backward(",".join(["i"] * 27) + "->", 26)
    assert rule.operand_names == tuple(f"A{k}" for k in range(27))
    assert rule.index_form() == "dA26[i] = " + " · ".join(f"A{k}[i]" for k in range(26)) + " · dY"


def test_the_index_form_of_a_long_repeated_label_is_linear() -> None:
    """'i' * n is the n-fold diagonal: the gradient lives on it, so the rule writes n - 1
    Kronecker deltas, each tying i to a distinct copy of it."""
    n = 3000
    form = eg.backward("i" * n, 0).index_form()
    assert len(form) < 30 * n
    left, right = form.split(" = ")
    copies = left.removeprefix("dA[").removesuffix("]").split(",")
    assert len(copies) == n == len(set(copies)) and copies[0] == "i"
    assert copies[1:4] == ["i′", "i′′", "i′′′"] and copies[4] == "i′4"
    deltas = right.split(" · ")
    assert deltas[-1] == "dY"
    assert deltas[:-1] == [f"δ[i,{copy}]" for copy in copies[1:]]
