"""Composite models: gradients of whole losses against autograd and finite differences.

Each model is written twice, once with einsgrad and once with ``autograd.numpy``; every
parameter's gradient is compared with autograd's and with central finite differences of
einsgrad's own forward evaluation (all entries for small models, random directions for
the full-size issue example). Closed forms derived by hand (the 1/B of a batch mean,
``(A + Aᵀ)x``, ``softmax - onehot``) are checked as well.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import autograd
import autograd.numpy as anp
import numpy as np
import pytest
from oracles import FD_STEP, autograd_gradients, finite_difference

import einsgrad as eg
from einsgrad.core.ir import toposort

# --- oracles ----------------------------------------------------------------------------------


def directional_difference(
    f: Callable[..., Any], arrays: Mapping[str, np.ndarray], name: str, direction: np.ndarray
) -> float:
    """Central difference of ``f`` along ``direction`` in ``arrays[name]``: ≈ <grad, direction>."""
    up = {**arrays, name: arrays[name] + FD_STEP * direction}
    down = {**arrays, name: arrays[name] - FD_STEP * direction}
    return (float(f(**up)) - float(f(**down))) / (2 * FD_STEP)


def check_model(
    loss: eg.Expr,
    ref: Callable[..., Any],
    arrays: Mapping[str, np.ndarray],
    names: Sequence[str],
    *,
    full_fd: bool = True,
) -> tuple[np.ndarray, ...]:
    """Value and gradients of ``loss`` against autograd and finite differences; returns grads."""
    np.testing.assert_allclose(loss(**arrays), ref(**arrays), rtol=1e-12)
    grads = eg.evaluate(list(eg.grad(loss, list(names))), **arrays)
    expected = autograd_gradients(ref, arrays, names)
    rng = np.random.default_rng(1234)
    for name, got, want in zip(names, grads, expected, strict=True):
        assert got.shape == arrays[name].shape
        np.testing.assert_allclose(got, want, rtol=1e-9, atol=1e-12, err_msg=f"autograd d/d{name}")
        if full_fd:
            numeric = finite_difference(loss, arrays, name)
            np.testing.assert_allclose(got, numeric, rtol=1e-5, atol=1e-7, err_msg=f"FD d/d{name}")
        else:
            for _ in range(3):
                direction = rng.normal(size=arrays[name].shape)
                numeric = directional_difference(loss, arrays, name, direction)
                np.testing.assert_allclose(np.sum(got * direction), numeric, rtol=1e-5, atol=1e-7)
    return tuple(grads)


def declare(name: str, array: np.ndarray, declared: bool) -> eg.Var:
    return eg.var(name, array.shape if declared else None)


DECLARED = pytest.mark.parametrize("declared", [True, False], ids=["declared", "undeclared"])


# --- (a) the issue example ------------------------------------------------------------------


def _linear_relu_ref(X: Any, W: Any, b: Any) -> Any:
    return anp.mean(anp.maximum(anp.einsum("bi,ij->bj", X, W) + b, 0.0) ** 2)


@DECLARED
@pytest.mark.parametrize(
    ("batch", "features", "outputs", "full_fd"),
    [(8, 5, 3, True), (64, 128, 10, False)],
    ids=["small", "issue-size"],
)
def test_issue_example(
    batch: int, features: int, outputs: int, full_fd: bool, declared: bool
) -> None:
    rng = np.random.default_rng(0)
    arrays = {
        "X": rng.normal(size=(batch, features)),
        "W": rng.normal(size=(features, outputs)) / np.sqrt(features),
        "b": rng.normal(size=(outputs,)),
    }
    X, W, b = (declare(n, a, declared) for n, a in arrays.items())
    Y = eg.einsum("bi,ij->bj", X, W) + b
    L = eg.mean(eg.relu(Y) ** 2)
    # No pre-activation within a finite-difference step of the relu kink.
    assert np.min(np.abs(arrays["X"] @ arrays["W"] + arrays["b"])) > 1e-4
    dW, db = check_model(L, _linear_relu_ref, arrays, ["W", "b"], full_fd=full_fd)
    # The closed form: dL/dY = 2 relu(Y) / (B·J), dW = Xᵀ dL/dY, db = Σ_b dL/dY.
    y = arrays["X"] @ arrays["W"] + arrays["b"]
    dy = 2 * np.maximum(y, 0) / y.size
    np.testing.assert_allclose(dW, arrays["X"].T @ dy, rtol=1e-10, atol=1e-14)
    np.testing.assert_allclose(db, dy.sum(axis=0), rtol=1e-10, atol=1e-14)


# --- (b) a two-layer MLP with MSE ---------------------------------------------------------------


@DECLARED
def test_two_layer_mlp_mse(declared: bool) -> None:
    rng = np.random.default_rng(1)
    arrays = {
        "X": rng.normal(size=(6, 4)),
        "W1": rng.normal(size=(4, 5)),
        "b1": rng.normal(size=(5,)),
        "W2": rng.normal(size=(5, 3)),
        "b2": rng.normal(size=(3,)),
        "T": rng.normal(size=(6, 3)),
    }
    X, W1, b1, W2, b2, T = (declare(n, a, declared) for n, a in arrays.items())
    hidden = eg.relu(X @ W1 + b1)
    loss = eg.mean((hidden @ W2 + b2 - T) ** 2)

    def ref(X: Any, W1: Any, b1: Any, W2: Any, b2: Any, T: Any) -> Any:
        h = anp.maximum(X @ W1 + b1, 0.0)
        return anp.mean((h @ W2 + b2 - T) ** 2)

    assert np.min(np.abs(arrays["X"] @ arrays["W1"] + arrays["b1"])) > 1e-4
    check_model(loss, ref, arrays, ["W1", "b1", "W2", "b2", "X"])


# --- (c) softmax cross-entropy with one-hot labels --------------------------------------------


@DECLARED
def test_softmax_cross_entropy(declared: bool) -> None:
    rng = np.random.default_rng(2)
    batch, classes = 5, 4
    arrays = {
        "X": rng.normal(size=(batch, 3)),
        "W": rng.normal(size=(3, classes)),
        "b": rng.normal(size=(classes,)),
    }
    labels = rng.integers(0, classes, size=batch)
    onehot = np.eye(classes)[labels]  # a constant array in the expression
    X, W, b = (declare(n, a, declared) for n, a in arrays.items())
    logits = X @ W + b
    loss = -eg.mean(eg.sum(onehot * eg.log_softmax(logits, axis=1), axis=1))

    def ref(X: Any, W: Any, b: Any) -> Any:
        z = X @ W + b
        return -anp.mean(anp.sum(onehot * (z - anp.log(anp.sum(anp.exp(z), 1, keepdims=True))), 1))

    check_model(loss, ref, arrays, ["W", "b", "X"])
    # dL/dlogits = (softmax(logits) - onehot) / B, so db is its column sum.
    z = arrays["X"] @ arrays["W"] + arrays["b"]
    p = np.exp(z - z.max(1, keepdims=True))
    p /= p.sum(1, keepdims=True)
    db = eg.grad(loss, b)(**arrays)
    np.testing.assert_allclose(db, ((p - onehot) / batch).sum(0), rtol=1e-10, atol=1e-15)
    # The same loss through softmax and log agrees.
    other = -eg.mean(eg.sum(onehot * eg.log(eg.softmax(logits, axis=-1)), axis=-1))
    np.testing.assert_allclose(eg.grad(other, b)(**arrays), db, rtol=1e-10, atol=1e-15)


# --- (d) a batch mean: the 1/B factor ---------------------------------------------------------


@DECLARED
def test_batch_mean_has_the_one_over_b_factor(declared: bool) -> None:
    rng = np.random.default_rng(3)
    B = 7  # distinct from every other size, so a missing or wrong factor shows
    arrays = {
        "X": rng.normal(size=(B, 3)),
        "W": rng.normal(size=(3, 2)),
        "T": rng.normal(size=(B, 2)),
    }
    X, W, T = (declare(n, a, declared) for n, a in arrays.items())
    Y = eg.einsum("bi,ij->bj", X, W)
    per_example = eg.sum((Y - T) ** 2, axis=1)  # shape (B,)
    loss = eg.mean(per_example, axis=0)

    def ref(X: Any, W: Any, T: Any) -> Any:
        return anp.mean(anp.sum((X @ W - T) ** 2, axis=1), axis=0)

    (dW,) = check_model(loss, ref, arrays, ["W"])
    x, w, t = arrays["X"], arrays["W"], arrays["T"]
    dl_dy = 2 * (x @ w - t)  # d(per-example loss)/dY, by hand
    np.testing.assert_allclose(dW, (1 / B) * x.T @ dl_dy, rtol=1e-12)
    assert not np.allclose(dW, x.T @ dl_dy)  # the factor is really there


def test_batch_mean_factor_follows_the_batch_size_at_evaluation() -> None:
    """Without declared shapes the 1/B comes from the arrays: two batch sizes, two factors."""
    X, W, T = eg.var("X"), eg.var("W"), eg.var("T")
    loss = eg.mean(eg.sum((X @ W - T) ** 2, axis=1))
    dW = eg.grad(loss, W)
    rng = np.random.default_rng(4)
    w = rng.normal(size=(3, 2))
    for B in (7, 3, 7):
        x, t = rng.normal(size=(B, 3)), rng.normal(size=(B, 2))
        got = dW(X=x, W=w, T=t)
        np.testing.assert_allclose(got, (1 / B) * x.T @ (2 * (x @ w - t)), rtol=1e-12)
        expected = autograd.grad(lambda w_, x=x, t=t: anp.mean(anp.sum((x @ w_ - t) ** 2, axis=1)))(
            w
        )
        np.testing.assert_allclose(got, expected, rtol=1e-12)
        numeric = finite_difference(loss, {"X": x, "W": w, "T": t}, "W")
        np.testing.assert_allclose(got, numeric, rtol=1e-6)


# --- (e) quadratic form -------------------------------------------------------------------------


@DECLARED
def test_quadratic_form(declared: bool) -> None:
    rng = np.random.default_rng(5)
    a = rng.normal(size=(4, 4))  # not symmetric: (A + Aᵀ)x differs from 2Ax
    arrays = {"x": rng.normal(size=(4,)), "A": a}
    x, A = (declare(n, v, declared) for n, v in arrays.items())
    forms = [eg.einsum("i,ij,j->", x, A, x), eg.sum(x * eg.einsum("ij,j->i", A, x))]
    if declared:
        forms.append(x @ A @ x)  # 1-D matmul needs the rank: declared shapes only
    for loss in forms:
        dx, dA = check_model(loss, lambda x, A: x @ A @ x, arrays, ["x", "A"])
        np.testing.assert_allclose(dx, (a + a.T) @ arrays["x"], rtol=1e-12)
        np.testing.assert_allclose(dA, np.outer(arrays["x"], arrays["x"]), rtol=1e-12)
    # With A a constant array, the Hessian is A + Aᵀ: grad of <grad, v> is (A + Aᵀ)v.
    v = rng.normal(size=(4,))
    xv = eg.var("x")
    hvp = eg.grad(eg.sum(eg.grad(eg.einsum("i,ij,j->", xv, a, xv), xv) * v), xv)
    np.testing.assert_allclose(hvp(x=arrays["x"]), (a + a.T) @ v, rtol=1e-12)
    nested = autograd.grad(lambda z: anp.sum(autograd.grad(lambda y: y @ a @ y)(z) * v))
    np.testing.assert_allclose(hvp(x=arrays["x"]), nested(arrays["x"]), rtol=1e-12)
    first = eg.grad(eg.einsum("i,ij,j->", xv, a, xv), xv)
    numeric = finite_difference(lambda x: eg.sum(first * v)(x=x), {"x": arrays["x"]}, "x")
    np.testing.assert_allclose(hvp(x=arrays["x"]), numeric, rtol=1e-6)


# --- (f) the string API -----------------------------------------------------------------------


ISSUE_STRING = "mean(relu(einsum('bi,ij->bj', X, W) + b) ** 2)"


@pytest.mark.parametrize(
    "shapes", [None, {"X": (8, 5), "W": (5, 3), "b": (3,)}], ids=["no-shapes", "shapes"]
)
def test_string_api_matches_python_api(shapes: dict[str, tuple[int, ...]] | None) -> None:
    rng = np.random.default_rng(6)
    arrays = {"X": rng.normal(size=(8, 5)), "W": rng.normal(size=(5, 3)), "b": rng.normal(size=3)}
    shape_of = shapes or {}
    X, W, b = (eg.var(n, shape_of.get(n)) for n in ("X", "W", "b"))
    python_loss = eg.mean(eg.relu(eg.einsum("bi,ij->bj", X, W) + b) ** 2)
    from_string = eg.grad(ISSUE_STRING, wrt="W", shapes=shapes)
    python_dW, python_db = eg.grad(python_loss, [W, b])
    dW_db = eg.grad(ISSUE_STRING, wrt=["W", "b"], shapes=shapes)
    assert isinstance(dW_db, tuple) and len(dW_db) == 2
    values = eg.evaluate([from_string, *dW_db, python_dW, python_db], **arrays)
    np.testing.assert_array_equal(values[0], values[3])
    np.testing.assert_array_equal(values[1], values[3])
    np.testing.assert_array_equal(values[2], values[4])
    parsed = eg.parse_expr(ISSUE_STRING, shapes=shapes)
    np.testing.assert_array_equal(parsed(**arrays), python_loss(**arrays))
    check_model(parsed, _linear_relu_ref, arrays, ["W", "b"])


# --- (g) the printed backward einsum ---------------------------------------------------------


def test_printed_gradient_shows_the_backward_einsum() -> None:
    X, W, b = eg.var("X", (64, 128)), eg.var("W", (128, 10)), eg.var("b", (10,))
    loss = eg.mean(eg.relu(eg.einsum("bi,ij->bj", X, W) + b) ** 2)
    dW = eg.grad(loss, W)
    text = str(dW)
    assert "einsum('bi,bj->ij'" in text
    assert "einsum('bi,bj->ij'" not in str(eg.grad(loss, b))
    # What it prints is what it computes.
    rng = np.random.default_rng(7)
    arrays = {
        "X": rng.normal(size=(64, 128)),
        "W": rng.normal(size=(128, 10)) / 11,
        "b": rng.normal(size=10),
    }
    expected = autograd.grad(_linear_relu_ref, 1)(arrays["X"], arrays["W"], arrays["b"])
    np.testing.assert_allclose(dW(**arrays), expected, rtol=1e-10, atol=1e-14)


def test_printing_also_works_for_the_python_operator_form() -> None:
    X, W = eg.var("X", (4, 3)), eg.var("W", (3, 2))
    dW = eg.grad(eg.sum(eg.tanh(X @ W)), W)
    assert "X" in str(dW) and "tanh" in str(dW)
    assert repr(dW).startswith("<einsgrad.Expr")


# --- (h) a deep tanh MLP ----------------------------------------------------------------------


def _deep_mlp(depth: int, width: int = 4, batch: int = 3, declared: bool = True):
    rng = np.random.default_rng(8)
    arrays = {"X": rng.normal(size=(batch, width))}
    for k in range(depth):
        arrays[f"W{k}"] = rng.normal(size=(width, width)) * 0.9
        arrays[f"b{k}"] = rng.normal(size=(width,)) * 0.1
    variables = {n: declare(n, a, declared) for n, a in arrays.items()}
    h: eg.Expr = variables["X"]
    for k in range(depth):
        h = eg.tanh(h @ variables[f"W{k}"] + variables[f"b{k}"])
    loss = eg.mean(h**2)

    def ref(**a: Any) -> Any:
        z = a["X"]
        for k in range(depth):
            z = anp.tanh(z @ a[f"W{k}"] + a[f"b{k}"])
        return anp.mean(z**2)

    return loss, ref, arrays


@DECLARED
def test_twenty_layer_tanh_mlp(declared: bool) -> None:
    loss, ref, arrays = _deep_mlp(20, declared=declared)
    names = [n for n in arrays if n != "X"] + ["X"]
    check_model(loss, ref, arrays, names, full_fd=declared)
    if not declared:  # the full check ran above; directions suffice for the second pass
        check_model(loss, ref, arrays, names, full_fd=False)


def test_deep_gradient_graph_grows_linearly() -> None:
    """Reverse mode shares work: the gradient graph is linear in depth, not exponential."""

    def size(depth: int) -> int:
        loss, _, arrays = _deep_mlp(depth)
        grads = eg.grad(loss, [n for n in arrays if n != "X"])
        return len(toposort(grads))

    small, large = size(10), size(20)
    assert large < 2.3 * small, (small, large)
