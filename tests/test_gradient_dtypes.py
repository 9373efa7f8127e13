"""A gradient has its variable's dtype even where it uses no variable, as in JAX and torch.

``grad(sum(X), X)`` is a broadcast 1.0 that uses no array: it takes the dtype of the
arrays the call passes, so float32 in gives float32 out. Zero gradients are broadcasts
too, so that deriving never allocates the zeros of a huge declared variable.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import einsgrad as eg

X = eg.var("X", (3,))

CASES: list[tuple[str, eg.Expr, Callable[[Any], Any]]] = [
    ("grad sum", eg.grad(eg.sum(X), X), jax.grad(jnp.sum)),
    ("grad mean", eg.grad(eg.mean(X), X), jax.grad(jnp.mean)),
    ("grad sum x**0", eg.grad(eg.sum(X**0), X), jax.grad(lambda x: jnp.sum(x**0))),
    ("hessian sum x*x", eg.hessian(eg.sum(X * X), X), jax.hessian(lambda x: jnp.sum(x * x))),
    ("hessian sum x", eg.hessian(eg.sum(X), X), jax.hessian(jnp.sum)),
]


@pytest.mark.parametrize("name, gradient, reference", CASES, ids=[c[0] for c in CASES])
@pytest.mark.parametrize("run", ["call", "evaluate", "compile"])
def test_a_gradient_that_uses_no_variable_keeps_float32(
    name: str, gradient: eg.Expr, reference: Callable[[Any], Any], run: str
) -> None:
    x = np.array([0.0, 1.5, -2.0], dtype=np.float32)
    if run == "call":
        value = gradient(X=x)
    elif run == "evaluate":
        (value,) = eg.evaluate([gradient], X=x)
    else:
        value = eg.compile(gradient)(X=x)
    want = np.asarray(reference(jnp.asarray(x)))
    assert want.dtype == np.float32  # the oracle's own dtype, not an assumption
    assert value.dtype == want.dtype, name
    np.testing.assert_array_equal(value, want)


def test_a_float64_call_still_gives_float64() -> None:
    value = eg.grad(eg.sum(X), X)(X=np.zeros(3))
    assert value.dtype == np.float64


def test_the_zero_gradient_of_a_huge_unused_variable_allocates_nothing() -> None:
    # 10⁵ × 10⁵ float64 zeros are 75 GiB: deriving them as an array raised MemoryError.
    huge = eg.var("H", (100_000, 100_000))
    y = eg.var("y", (3,))
    zero = eg.grad(eg.sum(y), huge, allow_unused=True)
    assert zero.shape == (100_000, 100_000)
    with pytest.raises(eg.MemoryLimitError, match="memory limit"):
        zero(y=np.zeros(3))


def test_the_zero_gradient_of_an_unused_variable_is_zero() -> None:
    W = eg.var("W", (2, 3))
    zero = eg.grad(eg.sum(X), W, allow_unused=True)
    value = zero(X=np.ones(3, dtype=np.float32))
    np.testing.assert_array_equal(value, np.zeros((2, 3)))
    assert value.dtype == np.float32
