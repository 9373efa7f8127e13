"""Evaluation: the three ways to call it, dtypes, fresh results, and shape signatures.

``expr(**arrays)``, ``expr.eval(mapping)`` and ``einsgrad.evaluate([...], **arrays)`` must
agree with numpy; float32 stays float32 and integers become float64; every result is a
fresh writable array that shares memory with neither the inputs nor another result; one
expression over undeclared variables evaluates for several shape signatures in turn
(gradients included, checked against autograd and finite differences), while a declared
shape rejects any other.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import autograd
import autograd.numpy as anp
import numpy as np
import pytest
from oracles import finite_difference

import einsgrad as eg


@pytest.fixture
def data() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(0)
    return {"X": rng.normal(size=(4, 3)), "W": rng.normal(size=(3, 2))}


# --- the three entry points ---------------------------------------------------------------------


def test_call_eval_and_evaluate_agree(data: dict[str, np.ndarray]) -> None:
    X, W = eg.var("X"), eg.var("W")
    Y = eg.tanh(X @ W)
    expected = np.tanh(data["X"] @ data["W"])
    np.testing.assert_allclose(Y(**data), expected, rtol=1e-14)
    np.testing.assert_allclose(Y.eval(data), expected, rtol=1e-14)
    np.testing.assert_allclose(Y.eval({"X": data["X"]}, W=data["W"]), expected, rtol=1e-14)
    np.testing.assert_allclose(eg.evaluate(Y, **data), expected, rtol=1e-14)
    single = eg.evaluate([Y], **data)
    assert isinstance(single, tuple) and len(single) == 1


def test_evaluate_several_outputs(data: dict[str, np.ndarray]) -> None:
    X, W = eg.var("X"), eg.var("W")
    L = eg.mean(eg.tanh(X @ W) ** 2)
    dX, dW = eg.grad(L, [X, W])
    value, gx, gw = eg.evaluate([L, dX, dW], **data)
    assert isinstance(value, np.ndarray) and value.shape == ()
    np.testing.assert_allclose(value, L(**data), rtol=1e-15)
    np.testing.assert_allclose(gx, dX(**data), rtol=1e-15)
    np.testing.assert_allclose(gw, dW(**data), rtol=1e-15)

    def ref(x: Any, w: Any) -> Any:
        return anp.mean(anp.tanh(x @ w) ** 2)

    ax, aw = autograd.grad(ref, (0, 1))(data["X"], data["W"])
    np.testing.assert_allclose(gx, ax, rtol=1e-12)
    np.testing.assert_allclose(gw, aw, rtol=1e-12)
    np.testing.assert_allclose(gw, finite_difference(L, data, "W"), rtol=1e-6)


def test_gradients_accept_the_variables_of_the_loss(data: dict[str, np.ndarray]) -> None:
    """d/dW of sum(X @ W) does not depend on W, yet takes the loss's arrays."""
    X, W = eg.var("X"), eg.var("W")
    dW = eg.grad(eg.sum(X @ W), W)
    np.testing.assert_allclose(dW(**data), np.repeat(data["X"].sum(0)[:, None], 2, axis=1))


def test_python_scalars_lists_and_zero_d_arrays() -> None:
    X = eg.var("X")
    value = eg.sum(X * 2)(X=[1, 2, 3])
    assert isinstance(value, np.ndarray) and value.shape == () and value == 12.0
    assert eg.exp(X)(X=0.0) == 1.0
    assert eg.exp(X)(X=np.array(0.0)).shape == ()
    assert eg.as_expr(np.ones(3)).__call__().tolist() == [1.0, 1.0, 1.0]


# --- dtypes -------------------------------------------------------------------------------------


def _model(X: eg.Expr, W: eg.Expr) -> eg.Expr:
    hidden = eg.sigmoid(X @ W + 0.5)
    return eg.mean(eg.log_softmax(hidden, axis=1) ** 2) + 1e-3 * eg.sum(W**2) + eg.logsumexp(hidden)


def test_float32_stays_float32(data: dict[str, np.ndarray]) -> None:
    X, W = eg.var("X"), eg.var("W")
    L = _model(X, W)
    dX, dW = eg.grad(L, [X, W])
    data32 = {k: v.astype(np.float32) for k, v in data.items()}
    values32 = eg.evaluate([L, dX, dW, eg.softmax(X), X * 2.0 + 1, eg.mean(X, 0)], **data32)
    for v in values32:
        assert v.dtype == np.float32
    values64 = eg.evaluate([L, dX, dW], **data)
    for v32, v64 in zip(values32, values64, strict=False):
        np.testing.assert_allclose(v32, v64, rtol=1e-4, atol=1e-5)

    def ref(x: Any, w: Any) -> Any:
        h = 1 / (1 + anp.exp(-(x @ w + 0.5)))
        ls = h - anp.log(anp.sum(anp.exp(h), 1, keepdims=True))
        return anp.mean(ls**2) + 1e-3 * anp.sum(w**2) + anp.log(anp.sum(anp.exp(h)))

    expected = autograd.grad(ref, (0, 1))(data["X"], data["W"])
    np.testing.assert_allclose(values64[1], expected[0], rtol=1e-10)
    np.testing.assert_allclose(values64[2], expected[1], rtol=1e-10)
    np.testing.assert_allclose(values64[2], finite_difference(L, data, "W"), rtol=1e-5)


def test_float32_meets_float64_as_numpy_says(data: dict[str, np.ndarray]) -> None:
    X = eg.var("X")
    x32 = data["X"].astype(np.float32)
    assert (X * np.ones(3))(X=x32).dtype == np.result_type(x32, np.ones(3))
    assert (X * np.ones(3, dtype=np.float32))(X=x32).dtype == np.float32


@pytest.mark.parametrize("dtype", [np.int64, np.int32, np.uint8, np.bool_])
def test_integers_are_promoted_to_float64(dtype: Any) -> None:
    X = eg.var("X")
    x = np.array([0, 1, 1, 0]).astype(dtype)
    assert eg.exp(X)(X=x).dtype == np.float64
    assert (X * 2)(X=x).dtype == np.float64
    assert (X / 2)(X=x).tolist() == [0.0, 0.5, 0.5, 0.0]  # true division, not integer
    dX = eg.grad(eg.sum(X**3 - X), X)
    grad = dX(X=x)
    assert grad.dtype == np.float64
    np.testing.assert_allclose(grad, autograd.grad(lambda v: anp.sum(v**3 - v))(x.astype(float)))
    numeric = finite_difference(eg.sum(X**3 - X), {"X": x.astype(float)}, "X")
    np.testing.assert_allclose(grad, numeric, rtol=1e-6, atol=1e-8)


# --- fresh writable results ----------------------------------------------------------------------


IDENTITY_LIKE: list[tuple[str, Callable[[eg.Var], eg.Expr]]] = [
    ("X", lambda X: X),
    ("X + 0", lambda X: X + 0),
    ("X * 1", lambda X: X * 1),
    ("X.T", lambda X: X.T),
    ("einsum ij->ij", lambda X: eg.einsum("ij->ij", X)),
    ("einsum ij->ji", lambda X: eg.einsum("ij->ji", X)),
    ("sum over no axis", lambda X: eg.sum(X, ())),
    ("exp", eg.exp),
    ("gradient", lambda X: eg.grad(eg.sum(X), X)),
    ("broadcast gradient", lambda X: eg.grad(eg.sum(X) * 2.0, X)),
]


@pytest.mark.parametrize("declared", [True, False], ids=["declared", "undeclared"])
@pytest.mark.parametrize(("what", "build"), IDENTITY_LIKE, ids=[w for w, _ in IDENTITY_LIKE])
def test_results_are_fresh_writable_arrays(
    what: str, build: Callable[[eg.Var], eg.Expr], declared: bool
) -> None:
    x = np.arange(6.0).reshape(2, 3)
    original = x.copy()
    X = eg.var("X", (2, 3) if declared else None)
    expr = build(X)
    # The first call binds and plans; the second takes the per-call path of a known
    # signature. Neither may hand out the input, a view of it, or an earlier result.
    out = expr(X=x)
    again = expr(X=x)
    for result in (out, again):
        assert result.flags.writeable
        assert not np.shares_memory(result, x), f"{what}: the result is a view of the input"
    assert not np.shares_memory(out, again), f"{what}: two calls return the same memory"
    before = out.copy()
    out[...] = -7.0  # must touch neither the input nor later results
    np.testing.assert_array_equal(x, original)
    np.testing.assert_array_equal(again, before)
    np.testing.assert_array_equal(expr(X=x), before)


def test_constant_results_are_writable_copies() -> None:
    const = eg.as_expr(np.ones(3))
    out = const()
    assert out.flags.writeable
    out[0] = 5.0
    np.testing.assert_array_equal(const(), np.ones(3))


def test_several_outputs_do_not_share_memory() -> None:
    X = eg.var("X")
    e = eg.exp(X)
    for _ in range(2):  # binding and planning, then the per-call path
        a, b = eg.evaluate([e, e], X=np.zeros(3))
        assert not np.shares_memory(a, b)
        a[0] = 5.0
        assert b[0] == 1.0


# --- shape signatures -----------------------------------------------------------------------------


def test_one_expression_several_shape_signatures() -> None:
    X, W, b = eg.var("X"), eg.var("W"), eg.var("b")
    L = eg.mean(eg.tanh(X @ W + b) ** 2) + eg.logsumexp(W, axis=-1).sum()
    grads = eg.grad(L, [X, W, b])
    rng = np.random.default_rng(1)

    def ref(x: Any, w: Any, bb: Any) -> Any:
        return anp.mean(anp.tanh(x @ w + bb) ** 2) + anp.sum(anp.log(anp.sum(anp.exp(w), -1)))

    for n, d, k in [(4, 3, 2), (2, 5, 6), (4, 3, 2), (1, 1, 1), (3, 2, 1)]:
        arrays = {
            "X": rng.normal(size=(n, d)),
            "W": rng.normal(size=(d, k)),
            "b": rng.normal(size=k),
        }
        values = eg.evaluate([L, *grads], **arrays)
        np.testing.assert_allclose(values[0], ref(*arrays.values()), rtol=1e-12)
        expected = autograd.grad(ref, (0, 1, 2))(*arrays.values())
        for name, got, want in zip(arrays, values[1:], expected, strict=True):
            assert got.shape == arrays[name].shape
            np.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-14)
            np.testing.assert_allclose(
                got, finite_difference(L, arrays, name), rtol=1e-5, atol=1e-8
            )


def test_mean_divides_by_the_current_size() -> None:
    X = eg.var("X")
    m = eg.mean(X, axis=0)
    for rows in (2, 5, 2):
        x = np.arange(rows * 3.0).reshape(rows, 3)
        np.testing.assert_allclose(m(X=x), x.mean(0))
        dX = eg.grad(eg.sum(m), X)(X=x)
        np.testing.assert_allclose(dX, np.full_like(x, 1 / rows))


def test_broadcasting_differs_between_signatures() -> None:
    X, b = eg.var("X"), eg.var("b")
    L = eg.sum((X + b) ** 2)
    db = eg.grad(L, b)
    for x, bb in [
        (np.ones((2, 3)), np.ones(3)),
        (np.ones((2, 3)), np.ones((2, 1))),
        (np.ones(3), np.ones(())),
    ]:
        got = db(X=x, b=bb)
        assert got.shape == bb.shape
        np.testing.assert_allclose(got, autograd.grad(lambda v, x=x: anp.sum((x + v) ** 2))(bb))
        numeric = finite_difference(L, {"X": x, "b": bb}, "b")
        np.testing.assert_allclose(got, numeric, rtol=1e-6)


def test_a_declared_shape_rejects_other_shapes() -> None:
    X = eg.var("X", (2, 3))
    L = eg.sum(eg.exp(X))
    dX = eg.grad(L, X)
    np.testing.assert_allclose(L(X=np.zeros((2, 3))), 6.0)
    for bad in (np.zeros((3, 2)), np.zeros((2, 3, 1)), np.zeros(6), np.zeros(())):
        with pytest.raises(eg.ShapeError, match=r"\(2, 3\)"):
            L(X=bad)
        with pytest.raises(eg.ShapeError, match=r"\(2, 3\)"):
            dX(X=bad)


def test_a_complex_one_factor_makes_the_result_complex_as_in_numpy() -> None:
    x = np.arange(3.0)
    got = eg.einsum("i,->i", eg.var("x"), 1 + 0j)(x=x)
    want = np.einsum("i,->i", x, 1 + 0j)
    assert got.dtype == want.dtype == np.complex128
    np.testing.assert_array_equal(got, want)
