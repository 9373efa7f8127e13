"""Structured variables (symmetric, diagonal) and eg.equivalent.

The gradient convention for a structured matrix is the projection of the free gradient
onto the structure, which is exactly the gradient with respect to a free matrix M of
L(sym(M)) (or of L(diag(d)) with respect to d). That gives an independent oracle: autograd
on the parametrized function. Finite differences along random *structured* directions D
check the defining property ⟨G, D⟩ = dL/dt (S + tD) at t = 0.
"""

from __future__ import annotations

from typing import Any

import autograd
import autograd.numpy as anp
import numpy as np
import pytest
from oracles import FD_STEP

import einsgrad as eg

N = 4


def loss_builders() -> list[tuple[str, Any, Any]]:
    """(name, einsgrad loss of (S, A, b), the same loss written with autograd.numpy)."""
    return [
        (
            "tanh-product",
            lambda S, A, b: eg.sum(eg.tanh(S @ A)),
            lambda s, a, b: anp.sum(anp.tanh(s @ a)),
        ),
        (
            "quadratic-form",
            lambda S, A, b: eg.einsum("i,ij,j->", b, S, b),
            lambda s, a, b: b @ s @ b,
        ),
        (
            "asymmetric-use",
            lambda S, A, b: eg.sum(eg.exp(S * A) * 0.1) + eg.sum(S @ b),
            lambda s, a, b: anp.sum(anp.exp(s * a) * 0.1) + anp.sum(s @ b),
        ),
    ]


@pytest.fixture
def data() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(7)
    m = rng.normal(size=(N, N))
    return {
        "S": (m + m.T) / 2,
        "A": rng.normal(size=(N, N)),
        "b": rng.normal(size=N),
        "d": rng.normal(size=N),
        "D_sym": (lambda r: (r + r.T) / 2)(rng.normal(size=(N, N))),
    }


@pytest.mark.parametrize(
    ("name", "build", "reference"), loss_builders(), ids=lambda v: v if isinstance(v, str) else ""
)
def test_symmetric_gradient_is_the_gradient_of_the_symmetrized_parametrization(
    name: str, build: Any, reference: Any, data: dict[str, np.ndarray]
) -> None:
    S = eg.var("S", (N, N), symmetric=True)
    A, b = eg.var("A", (N, N)), eg.var("b", (N,))
    loss = build(S, A, b)
    used = {v.name for v in loss.variables}  # unknown variables are an error, so pass only these
    arrays = {"S": data["S"], "A": data["A"], "b": data["b"]}
    gradient = eg.grad(loss, S)(**{k: v for k, v in arrays.items() if k in used})
    expected = autograd.grad(lambda m: reference((m + m.T) / 2, data["A"], data["b"]))(data["S"])
    np.testing.assert_allclose(gradient, expected, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(gradient, gradient.T, rtol=0, atol=1e-14)
    # Defining property: <G, D> is the directional derivative along a symmetric D.
    loss = build(S, A, b)
    direction = data["D_sym"]

    used = {v.name for v in loss.variables}

    def at(t: float) -> float:
        arrays = {"S": data["S"] + t * direction, "A": data["A"], "b": data["b"]}
        return float(loss(**{k: v for k, v in arrays.items() if k in used}))

    numeric = (at(FD_STEP) - at(-FD_STEP)) / (2 * FD_STEP)
    assert np.sum(gradient * direction) == pytest.approx(numeric, rel=1e-6, abs=1e-8)


def test_a_non_symmetric_cotangent_really_is_projected(data: dict[str, np.ndarray]) -> None:
    # sum(S @ b) has the non-symmetric free gradient G[i, j] = b[j]; the projection differs.
    S, b = eg.var("S", (N, N), symmetric=True), eg.var("b", (N,))
    free = np.broadcast_to(data["b"], (N, N))
    got = eg.grad(eg.sum(S @ b), S)(S=data["S"], b=data["b"])
    np.testing.assert_allclose(got, (free + free.T) / 2)
    assert not np.allclose(got, free)


@pytest.mark.parametrize(
    ("name", "build", "reference"), loss_builders(), ids=lambda v: v if isinstance(v, str) else ""
)
def test_diagonal_gradient_is_the_gradient_with_respect_to_the_diagonal(
    name: str, build: Any, reference: Any, data: dict[str, np.ndarray]
) -> None:
    D = eg.var("D", (N, N), diagonal=True)
    A, b = eg.var("A", (N, N)), eg.var("b", (N,))
    loss = build(D, A, b)
    used = {v.name for v in loss.variables}
    arrays = {"D": np.diag(data["d"]), "A": data["A"], "b": data["b"]}
    gradient = eg.grad(loss, D)(**{k: v for k, v in arrays.items() if k in used})
    by_diagonal = autograd.grad(lambda d: reference(anp.diag(d), data["A"], data["b"]))(data["d"])
    np.testing.assert_allclose(gradient, np.diag(by_diagonal), rtol=1e-10, atol=1e-12)


def test_structured_gradients_with_shapes_left_to_the_arrays(data: dict[str, np.ndarray]) -> None:
    S, b = eg.var("S", symmetric=True), eg.var("b")
    # (matmul needs known ranks for 1-D operands, so the vector product is an einsum here)
    loss = eg.einsum("i,ij,j->", b, S, b) + eg.sum(eg.einsum("ij,j->i", S, b))
    got = eg.grad(loss, S)(S=data["S"], b=data["b"])
    free = np.outer(data["b"], data["b"]) + np.broadcast_to(data["b"], (N, N))
    np.testing.assert_allclose(got, (free + free.T) / 2)


def test_vjp_projects_too(data: dict[str, np.ndarray]) -> None:
    S, A = eg.var("S", (N, N), symmetric=True), eg.var("A", (N, N))
    U = np.arange(N * N, dtype=float).reshape(N, N)
    got = eg.vjp(S @ A, S, U)(S=data["S"], A=data["A"])
    free = U @ data["A"].T
    np.testing.assert_allclose(got, (free + free.T) / 2)


def test_arrays_without_the_declared_structure_are_refused(data: dict[str, np.ndarray]) -> None:
    S = eg.var("S", (N, N), symmetric=True)
    D = eg.var("D", (N, N), diagonal=True)
    with pytest.raises(eg.ShapeError, match=r"declared symmetric.*max \|S - Sᵀ\|"):
        eg.sum(S)(S=data["A"])
    with pytest.raises(eg.ShapeError, match=r"declared diagonal.*off-diagonal"):
        eg.sum(D)(D=data["S"])
    with pytest.raises(eg.ShapeError, match="must be square"):
        eg.var("R", (2, 3), symmetric=True)
    with pytest.raises(eg.OptionError, match="not both"):
        eg.var("R", (2, 2), symmetric=True, diagonal=True)
    with pytest.raises(eg.ShapeError, match=r"symmetric matrix, but got shape \(2, 3\)"):
        eg.sum(eg.var("R", symmetric=True))(R=np.ones((2, 3)))


# --- equivalence ----------------------------------------------------------------------------


def test_equivalent_decides_symbolically_up_to_labels_order_and_transposes() -> None:
    A, B, C = eg.var("A", (3, 4)), eg.var("B", (4, 5)), eg.var("C", (5, 2))
    pairs = [
        (eg.einsum("ij,jk->ik", A, B), eg.einsum("ab,bc->ac", A, B)),
        (eg.einsum("ij,jk->ik", A, B), eg.einsum("jk,ij->ik", B, A)),
        ((A @ B).T, B.T @ A.T),
        ((A @ B) @ C, A @ (B @ C)),
        (eg.einsum("ij,jk,kl->il", A, B, C), A @ B @ C),
    ]
    for left, right in pairs:
        verdict = eg.equivalent(left, right)
        assert verdict and verdict.method == "symbolic", (left, right, verdict)


def test_equivalent_falls_back_to_numbers_and_finds_counterexamples() -> None:
    X = eg.var("X", (3, 3))
    same = eg.equivalent(eg.exp(X) * eg.exp(X), eg.exp(2 * X))
    assert same.equal and same.method == "numeric" and "not proven" in same.reason
    different = eg.equivalent(eg.exp(X), eg.exp(X) + 1e-3)
    assert not different and different.method == "numeric" and "differ at index" in different.reason
    transposed = eg.equivalent(X, X.T)
    assert not transposed
    shapes = eg.equivalent(eg.sum(X, 0), X)
    assert not shapes and "shapes differ" in shapes.reason


def test_equivalent_needs_shapes_for_shapeless_variables() -> None:
    X = eg.var("X")
    with pytest.raises(eg.ShapeError, match="shapes="):
        eg.equivalent(eg.exp(X) * eg.exp(X), eg.exp(2 * X))
    verdict = eg.equivalent(eg.exp(X) * eg.exp(X), eg.exp(2 * X), shapes={"X": (2, 3)})
    assert verdict.equal


def test_equivalent_recognises_a_correct_hand_derived_gradient() -> None:
    X, W = eg.var("X", (6, 3)), eg.var("W", (3, 4))
    loss = eg.sum(eg.tanh(X @ W))
    by_hand = X.T @ (1 - eg.tanh(X @ W) ** 2)
    assert eg.equivalent(eg.grad(loss, W), by_hand)
    assert not eg.equivalent(eg.grad(loss, W), X.T @ (1 - eg.tanh(X @ W)))
