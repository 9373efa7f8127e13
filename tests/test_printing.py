"""Printed gradient programs read as the math: no identity wrappers, no factors of 1.

The expected programs below are written from the derivative, not copied from output.
For ``L = mean(relu(Z) ** 2)`` with ``Z = X @ W + b`` over a 2×5 ``Z``::

    ∂L/∂W_jk = Σ_i X_ij · (2/10) · relu(Z_ik) · [Z_ik > 0]

and for the bilinear form ``f = xᵀ A y``: ``∂f/∂x = A y`` and ``∂f/∂y = Aᵀ x``. Each
printed program is also evaluated against numpy or autograd, so a wrapper can only be
missing from the text where it is missing from the program, and where it was an identity.
"""

from __future__ import annotations

import time
from typing import Any

import autograd.numpy as anp
import numpy as np
import pytest
from oracles import autograd_gradients

import einsgrad as eg
from einsgrad.core.ir import Einsum, toposort

SHAPES = {"X": (2, 3), "W": (3, 5), "b": (5,)}
LAYER = "mean(relu(X @ W + b) ** 2)"


def _arrays(shapes: dict[str, tuple[int, ...]], seed: int = 7) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    return {name: rng.normal(size=shape) for name, shape in shapes.items()}


def _layer(X: Any, W: Any, b: Any) -> Any:
    return anp.mean(anp.maximum(anp.matmul(X, W) + b, 0) ** 2)


def test_the_declared_layer_prints_its_derivative() -> None:
    derived = eg.grad(LAYER, wrt="W", shapes=SHAPES)
    assert str(derived) == (
        "t1 = einsum('ij,jk->ik', X, W) + b\n"
        "einsum('ij,ik->jk', X, masked(0.2 * relu(t1), greater(t1, 0)))"
    )
    arrays = _arrays(SHAPES)
    want = autograd_gradients(_layer, arrays, ["W"])[0]
    np.testing.assert_allclose(derived(**arrays), want, rtol=1e-12)


def test_a_bilinear_form_prints_A_y_and_A_transpose_x() -> None:
    x, y, A = eg.var("x", (3,)), eg.var("y", (4,)), eg.var("A", (3, 4))
    dx, dy = eg.grad(eg.einsum("i,ij,j->", x, A, y), [x, y])
    printed = f"{dx}\n{dy}\n{(dx, dy)}"
    assert ", 1.0)" not in printed
    assert str(dx) == "einsum('ab,b->a', A, y)"
    assert str(dy) == "einsum('ab,a->b', A, x)"
    arrays = _arrays({"x": (3,), "y": (4,), "A": (3, 4)})
    np.testing.assert_allclose(dx(**arrays), arrays["A"] @ arrays["y"], rtol=1e-14)
    np.testing.assert_allclose(dy(**arrays), arrays["A"].T @ arrays["x"], rtol=1e-14)


@pytest.mark.parametrize("source", ["string", "variables"])
def test_the_shapeless_layer_keeps_only_the_wrapper_b_can_need(source: str) -> None:
    if source == "string":
        derived = eg.grad(LAYER, wrt="W")
    else:
        X, W, b = eg.var("X"), eg.var("W"), eg.var("b")
        derived = eg.grad(eg.mean(eg.relu(X @ W + b) ** 2), W)
    text = str(derived)
    assert ", 1.0)" not in text
    assert "ones_like" not in text  # a mean is a scalar, so its seed is the number 1
    # b may broadcast X @ W (b of shape (4, 2, 5)): its cotangent is summed back to the
    # shape of X @ W, and that is the one '...->...' that is not an identity.
    assert text.count("einsum('...->...'") == 1, text
    wrappers = [
        node
        for node in toposort([derived])
        if isinstance(node, Einsum) and node.spec.text == "...->..."
    ]
    assert len(wrappers) == 1
    assert wrappers[0].like is eg.var("X") @ eg.var("W")  # hash-consed: the one node
    np.testing.assert_allclose(
        derived(**_arrays(SHAPES)),
        autograd_gradients(_layer, _arrays(SHAPES), ["W"])[0],
        rtol=1e-12,
    )


@pytest.mark.parametrize(
    "shapes",
    [
        SHAPES,
        {"X": (2, 3), "W": (3, 5), "b": (1, 5)},  # a size-1 axis of b, summed with keepdims
        {"X": (2, 3), "W": (3, 5), "b": (4, 2, 5)},  # b broadcasts X @ W
        {"X": (4, 2, 3), "W": (3, 5), "b": (5,)},  # a batch that W is broadcast along
    ],
    ids=["bias", "row-bias", "b-broadcasts-XW", "batched-X"],
)
def test_shapeless_broadcasts_still_get_their_sums(shapes: dict[str, tuple[int, ...]]) -> None:
    X, W, b = eg.var("X"), eg.var("W"), eg.var("b")
    loss = eg.mean(eg.relu(X @ W + b) ** 2)
    arrays = _arrays(shapes)
    expected = autograd_gradients(_layer, arrays, ["X", "W", "b"])
    got = eg.evaluate(list(eg.grad(loss, [X, W, b])), **arrays)
    for name, value, want in zip("XWb", got, expected, strict=True):
        assert value.shape == shapes[name], name
        np.testing.assert_allclose(value, want, rtol=1e-12, atol=1e-14, err_msg=name)


# --- deep and shared expressions: printing is linear in the DAG and bounded -----------------


def _chain_gradient(layers: int) -> eg.Expr:
    """∂/∂x of sum(y_n) for y_k = tanh(1.1 · y_{k-1}), y_0 = x: every layer's value is
    used twice by the gradient, so the gradient written as a tree (inline) doubles in
    length with each layer."""
    x = eg.var("x", (4,))
    y = x
    for _ in range(layers):
        y = eg.tanh(y * 1.1)
    return eg.grad(eg.sum(y), x)


def test_repr_of_a_1000_layer_gradient_is_short() -> None:
    derived = _chain_gradient(1000)
    text = repr(derived)
    assert text.startswith("<einsgrad.Expr ") and text.endswith("...>")
    assert len(text) == len("<einsgrad.Expr >") + 200  # the limit repr documents
    # str() names each shared value once: one line per shared node, so about one per layer.
    program = str(derived)
    assert 1000 <= program.count("\n") <= 4000


def test_a_cut_text_is_the_start_of_the_whole_text() -> None:
    terms = [eg.var(f"v{k}", (2,)) for k in range(100)]
    total = terms[0]
    for term in terms[1:]:
        total = total + term
    whole = " + ".join(f"v{k}" for k in range(100))  # left-associated sums need no brackets
    assert str(total) == whole
    assert repr(total) == f"<einsgrad.Expr {whole[:197]}...>"
    assert eg.matrix_form(total, limit=50) == whole[:47] + "..."


def _best_time(function: Any, repeats: int = 3) -> float:
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        function()
        best = min(best, time.perf_counter() - start)
    return best


def test_repr_time_grows_linearly_with_depth() -> None:
    """A generous bound: 4× the layers may take at most 12× the time (linear takes about
    4×; writing the DAG inline, as repr once did, grows exponentially with the depth)."""
    small, large = _chain_gradient(200), _chain_gradient(800)
    ratio = _best_time(lambda: repr(large)) / _best_time(lambda: repr(small))
    assert ratio < 12, ratio


def test_matrix_form_of_a_deep_gradient_names_its_limit() -> None:
    derived = _chain_gradient(1000)
    with pytest.raises(eg.EinsgradError, match="longer than 100,000 characters"):
        eg.matrix_form(derived)
    cut = eg.matrix_form(derived, limit=300)
    assert cut is not None and len(cut) == 300 and cut.endswith("...")
    small = _chain_gradient(3)
    whole = eg.matrix_form(small)
    assert whole is not None and len(whole) > 40
    assert eg.matrix_form(small, limit=40) == whole[:37] + "..."
    assert eg.matrix_form(small, limit=len(whole)) == whole
