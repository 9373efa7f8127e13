"""Cases of the higher-order issue: Hessians and a generalized Jacobian.

* ``quadratic-hessian``: ∂²(xᵀAx)/∂x², with ``A`` an input. The answer is ``A + Aᵀ``, so
  numpy's own ``A + A.T`` is the floor for producing n² numbers.
* ``logreg-hessian``: the Hessian of the mean logistic-regression loss wrt the weights,
  ``Xᵀ diag(p(1−p)) X / B``.
* ``linear-jacobian``: the Jacobian of ``Y = X W`` wrt ``W``, ``J[b,j,i,k] = X[b,i] δ[j,k]``.

JAX runs ``jax.jit`` of its transform (timed after compiling, inputs already on the device);
torch runs ``torch.func``; autograd runs its ``hessian``/``jacobian``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

import einsgrad as eg

from . import competitors as lib
from .cases import Arrays, Case, Goal, Impl, Thunk, register

# autograd's hessian/jacobian runs one Python-level vjp per output element.
AUTOGRAD_MAX_N = 500


# --- competitors built from one function of (differentiated argument, *other inputs) -------


def jax_impl(transform: str, make_f: Callable[[], Callable[..., Any]], names: str) -> Impl:
    """``jax.jit(jax.<transform>(f))`` over the inputs ``names`` (the first is differentiated)."""

    def prepare(arrays: Arrays) -> Thunk:
        jax = lib.jax()
        compiled = jax.jit(getattr(jax, transform)(make_f()))
        args = lib.jax_inputs(arrays, names)
        return lambda: lib.block(compiled(*args))

    return Impl("jax", f"jax.jit(jax.{transform}(f))", prepare)


def torch_impl(transform: str, make_f: Callable[[], Callable[..., Any]], names: str) -> Impl:
    """``torch.func.<transform>(f)`` over the inputs ``names`` (the first is differentiated)."""

    def prepare(arrays: Arrays) -> Thunk:
        derivative = getattr(lib.torch().func, transform)(make_f())
        args = lib.torch_inputs(arrays, names)
        return lambda: derivative(*args)

    return Impl("torch", f"torch.func.{transform}(f)", prepare)


def autograd_impl(
    transform: str, make_f: Callable[[], Callable[..., Any]], names: str, skip: str | None = None
) -> Impl:
    """``autograd.<transform>(f)`` over the inputs ``names`` (the first is differentiated)."""

    def prepare(arrays: Arrays) -> Thunk:
        derivative = getattr(lib.autograd(), transform)(make_f())
        args = [arrays[name] for name in names.split()]
        return lambda: derivative(*args)

    return Impl("autograd", f"autograd.{transform}(f)", prepare, skip)


def numpy_impl(label: str, prepare: Callable[[Arrays], Thunk]) -> Impl:
    """Hand-written numpy."""
    return Impl("numpy", label, prepare)


# --- quadratic form -----------------------------------------------------------------------


def _quadratic_numpy(arrays: Arrays) -> Thunk:
    A = arrays["A"]
    return lambda: A + A.T


def _quadratic_f() -> Callable[..., Any]:
    return lambda x, A: x @ A @ x


def _quadratic_autograd_f() -> Callable[..., Any]:
    anp = lib.anp()
    return lambda x, A: anp.dot(x, anp.dot(A, x))


@register("quadratic-hessian", quick=(500,), full=(500, 2000))
def quadratic_hessian(n: int) -> Case:
    """Hessian of xᵀAx wrt x, A an input."""

    def inputs(rng: np.random.Generator) -> dict[str, np.ndarray]:
        return {"x": rng.standard_normal(n), "A": rng.standard_normal((n, n))}

    def derive() -> Any:
        x = eg.var("x", (n,))
        A = eg.var("A", (n, n))
        return eg.hessian(eg.einsum("i,ij,j->", x, A, x), x)

    skip = None
    if n > AUTOGRAD_MAX_N:
        skip = f"one Python-level vjp per row (~4 s a call); run up to n = {AUTOGRAD_MAX_N}"
    goals: tuple[Goal, ...] = ()
    if n == 2000:
        goals = (
            Goal("jax", 30.0, "≥ 30× faster than jax.jit(jax.hessian)"),
            Goal("numpy", 1 / 1.5, "within 1.5× of numpy's A + A.T"),
        )
    return Case(
        name="quadratic-hessian",
        group="hessians",
        size=f"n={n}",
        description="∂²(xᵀAx)/∂x² = A + Aᵀ, with A an input",
        inputs=inputs,
        derive=derive,
        competitors=(
            numpy_impl("A + A.T", _quadratic_numpy),
            jax_impl("hessian", _quadratic_f, "x A"),
            torch_impl("hessian", _quadratic_f, "x A"),
            autograd_impl("hessian", _quadratic_autograd_f, "x A", skip),
        ),
        goals=goals,
        params={"n": n},
    )


# --- logistic regression ------------------------------------------------------------------


def _logreg_numpy(arrays: Arrays) -> Thunk:
    X, w = arrays["X"], arrays["w"]

    def hessian() -> np.ndarray:
        p = 1.0 / (1.0 + np.exp(-(X @ w)))
        result: np.ndarray = (X.T * (p * (1.0 - p))) @ X / X.shape[0]
        return result

    return hessian


def _logreg_jax_f() -> Callable[..., Any]:
    jax, jnp = lib.jax(), lib.jnp()

    def loss(w: Any, X: Any, y: Any) -> Any:
        p = jax.nn.sigmoid(X @ w)
        return -jnp.mean(y * jnp.log(p) + (1 - y) * jnp.log(1 - p))

    return loss


def _logreg_torch_f() -> Callable[..., Any]:
    torch = lib.torch()

    def loss(w: Any, X: Any, y: Any) -> Any:
        p = torch.sigmoid(X @ w)
        return -torch.mean(y * torch.log(p) + (1 - y) * torch.log(1 - p))

    return loss


def _logreg_autograd_f() -> Callable[..., Any]:
    anp = lib.anp()

    def loss(w: Any, X: Any, y: Any) -> Any:
        p = 1.0 / (1.0 + anp.exp(-anp.dot(X, w)))
        return -anp.mean(y * anp.log(p) + (1 - y) * anp.log(1 - p))

    return loss


@register("logreg-hessian", quick=((512, 64),), full=((2048, 256),))
def logreg_hessian(size: tuple[int, int]) -> Case:
    """Hessian of the mean logistic-regression loss wrt the weights, X of B×d."""
    B, d = size

    def inputs(rng: np.random.Generator) -> dict[str, np.ndarray]:
        return {
            "X": rng.standard_normal((B, d)) / np.sqrt(d),
            "y": (rng.random(B) < 0.5).astype(np.float64),
            "w": rng.standard_normal(d),
        }

    def derive() -> Any:
        X = eg.var("X", (B, d))
        y = eg.var("y", (B,))
        w = eg.var("w", (d,))
        p = eg.sigmoid(X @ w)
        loss = -eg.mean(y * eg.log(p) + (1 - y) * eg.log(1 - p))
        return eg.hessian(loss, w)

    goals: tuple[Goal, ...] = ()
    if size == (2048, 256):
        goals = (Goal("jax", 2.0, "≥ 2× faster than jax.jit(jax.hessian)"),)
    return Case(
        name="logreg-hessian",
        group="hessians",
        size=f"X {B}×{d}",
        description="∂²/∂w² of −mean(y log p + (1−y) log(1−p)), p = σ(Xw)",
        inputs=inputs,
        derive=derive,
        competitors=(
            numpy_impl("Xᵀ diag(p(1−p)) X / B", _logreg_numpy),
            jax_impl("hessian", _logreg_jax_f, "w X y"),
            torch_impl("hessian", _logreg_torch_f, "w X y"),
            autograd_impl("hessian", _logreg_autograd_f, "w X y"),
        ),
        goals=goals,
        params={"B": B, "d": d},
    )


# --- linear layer -------------------------------------------------------------------------


def _linear_numpy(arrays: Arrays) -> Thunk:
    X = arrays["X"]
    identity = np.eye(arrays["W"].shape[1])
    return lambda: np.einsum("bi,jk->bjik", X, identity)


def _linear_f() -> Callable[..., Any]:
    return lambda W, X: X @ W


def _linear_autograd_f() -> Callable[..., Any]:
    anp = lib.anp()
    return lambda W, X: anp.dot(X, W)


@register("linear-jacobian", quick=((16, 32, 16),), full=((32, 64, 32),))
def linear_jacobian(size: tuple[int, int, int]) -> Case:
    """Jacobian of Y = X W wrt W, shape Y.shape + W.shape."""
    B, n_in, n_out = size

    def inputs(rng: np.random.Generator) -> dict[str, np.ndarray]:
        return {"X": rng.standard_normal((B, n_in)), "W": rng.standard_normal((n_in, n_out))}

    def derive() -> Any:
        X = eg.var("X", (B, n_in))
        W = eg.var("W", (n_in, n_out))
        return eg.jacobian(X @ W, W)

    return Case(
        name="linear-jacobian",
        group="hessians",
        size=f"X {B}×{n_in}, W {n_in}×{n_out}",
        description="∂(XW)/∂W, J[b,j,i,k] = X[b,i] δ[j,k]",
        inputs=inputs,
        derive=derive,
        competitors=(
            numpy_impl("einsum('bi,jk->bjik', X, I)", _linear_numpy),
            jax_impl("jacobian", _linear_f, "W X"),
            torch_impl("jacrev", _linear_f, "W X"),
            autograd_impl("jacobian", _linear_autograd_f, "W X"),
        ),
        params={"B": B, "n_in": n_in, "n_out": n_out},
    )
