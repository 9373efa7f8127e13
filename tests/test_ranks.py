"""How many dimensions, and how large: what einsgrad computes and what it refuses.

Arrays have up to MAX_RANK dimensions (numpy's limit, 64 on numpy 2). Elementwise
operations compute at every rank numpy does (numpy.broadcast_shapes, which einsgrad
used to call, stops at 32), with their derivatives wherever those need no einsum. An
einsum names each axis with one of the 52 letters a-z, A-Z, so sum, mean, matmul, .T,
einsum and the derivatives built from them take at most 52 labels: past that, a
ShapeError names the operand and its rank, when the expression is built if its shapes
are declared and at evaluation otherwise (not numpy's RuntimeError or a
UnicodeEncodeError). A symbolic variable may be of any size numpy can index per axis.
"""

from __future__ import annotations

from typing import Any

import autograd
import autograd.numpy as anp
import numpy as np
import pytest
from oracles import finite_difference

import einsgrad as eg
from einsgrad.core.limits import MAX_RANK


def _shape(rank: int) -> tuple[int, ...]:
    """A shape of ``rank`` dimensions with 4 elements, so any rank is cheap."""
    return (1,) * (rank - 2) + (2, 2)


def _point(rank: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(rank)
    return {"X": rng.normal(size=_shape(rank)), "b": rng.normal(size=2)}


@pytest.mark.parametrize("declared", [True, False], ids=["declared", "undeclared"])
@pytest.mark.parametrize("rank", [33, 52, 53, MAX_RANK])
def test_elementwise_operations_compute_at_every_rank_numpy_has(rank: int, declared: bool) -> None:
    point = _point(rank)
    X = eg.var("X", _shape(rank) if declared else None)
    b = eg.var("b", (2,) if declared else None)
    expr = eg.tanh(X) * b + eg.exp(X) / 2.0
    expected = np.tanh(point["X"]) * point["b"] + np.exp(point["X"]) / 2.0
    np.testing.assert_allclose(expr(**point), expected, rtol=1e-14)
    assert eg.logsumexp(X)(X=point["X"]) == pytest.approx(np.log(np.exp(point["X"]).sum()))


@pytest.mark.parametrize("rank", [33, 52])
def test_gradients_through_elementwise_operations_and_sums_up_to_52_axes(rank: int) -> None:
    point = _point(rank)
    X, b = eg.var("X", _shape(rank)), eg.var("b", (2,))
    loss = eg.sum(eg.tanh(X) * b)
    dX, db = eg.evaluate(list(eg.grad(loss, [X, b])), **point)

    def reference(x: Any, bias: Any) -> Any:
        return anp.sum(anp.tanh(x) * bias)

    ax, ab = autograd.grad(reference, (0, 1))(point["X"], point["b"])
    np.testing.assert_allclose(dX, ax, rtol=1e-12)
    np.testing.assert_allclose(db, ab, rtol=1e-12)
    np.testing.assert_allclose(dX, finite_difference(loss, point, "X"), rtol=1e-6)
    np.testing.assert_allclose(db, finite_difference(loss, point, "b"), rtol=1e-6)


def test_a_vjp_of_an_elementwise_operation_at_numpys_largest_rank() -> None:
    """No einsum in the way: tanh's vjp is elementwise, and nothing is broadcast."""
    point = _point(MAX_RANK)
    X, U = eg.var("X", _shape(MAX_RANK)), eg.var("U", _shape(MAX_RANK))
    u = np.random.default_rng(1).normal(size=_shape(MAX_RANK))
    result = eg.vjp(eg.tanh(X), X, U)(X=point["X"], U=u)
    pullback, _ = autograd.make_vjp(anp.tanh)(point["X"])
    np.testing.assert_allclose(result, pullback(u), rtol=1e-14)

    def projected(X: np.ndarray) -> Any:
        return np.sum(u * np.tanh(X))

    fd = finite_difference(projected, {"X": point["X"]}, "X")
    np.testing.assert_allclose(result, fd, rtol=1e-6)


@pytest.mark.parametrize(
    ("what", "build"),
    [
        ("sum", lambda X: eg.sum(X)),
        ("mean over an axis", lambda X: eg.mean(X, axis=0)),
        ("matmul", lambda X: X @ X),
        ("einsum", lambda X: eg.einsum("...ij->...ji", X)),
        ("the gradient of a broadcast", lambda X: eg.grad(eg.sum(X + eg.var("b", (2,))), "b")),
    ],
)
def test_einsums_past_52_labels_are_shape_errors_naming_the_operand(what: str, build: Any) -> None:
    X = eg.var("X", _shape(53))
    with pytest.raises(eg.ShapeError) as raised:
        build(X)
    assert "X has 53 dimensions" in str(raised.value) or "X + b has 53" in str(raised.value)
    assert "52 letters" in str(raised.value)


@pytest.mark.parametrize(
    "build",
    [
        lambda U: eg.sum(U),
        lambda U: eg.einsum("...->...", U),
        lambda U: eg.einsum("...ij->...ji", U),
        lambda U: U @ U,
        lambda U: eg.grad(eg.sum(eg.tanh(U)), U),
    ],
    ids=["sum", "identity", "transpose", "matmul", "gradient"],
)
def test_einsums_past_52_labels_fail_at_evaluation_when_shapes_are_undeclared(build: Any) -> None:
    U = eg.var("U")
    expr = build(U)
    with pytest.raises(eg.ShapeError, match=r"needs 5\d index labels.*U\)? has 53 dimensions"):
        expr(U=np.ones(_shape(53)))


def test_a_variable_has_at_most_as_many_dimensions_as_a_numpy_array() -> None:
    assert eg.var("X", (1,) * MAX_RANK).shape == (1,) * MAX_RANK
    with pytest.raises(eg.ShapeError, match=rf"'X' has {MAX_RANK + 1} dimensions.*{MAX_RANK}"):
        eg.var("X", (1,) * (MAX_RANK + 1))


def test_a_huge_symbolic_variable_is_fine_until_it_is_evaluated() -> None:
    X = eg.var("X", (10**10, 10**10))
    loss = eg.sum(eg.tanh(X) ** 2)
    assert eg.tanh(X).shape == (10**10, 10**10)
    assert eg.grad(loss, X).shape == (10**10, 10**10)
    assert (X + eg.var("b", (10**10,))).shape == (10**10, 10**10)
    with pytest.raises(eg.ShapeError, match=r"axis 1 from the end has sizes 10000000000 and 3"):
        X + eg.var("c", (3,))
    # A zero-stride view stands for the input: the guard refuses before allocating.
    Y = eg.var("Y", (10**5, 10**5))
    with pytest.raises(eg.MemoryLimitError, match=r"80,000,000,000 bytes"):
        eg.tanh(Y)(Y=np.broadcast_to(np.zeros(()), (10**5, 10**5)))
