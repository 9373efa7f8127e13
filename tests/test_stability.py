"""Numeric stability against JAX: softmax and its relatives, powers at 0.

* softmax, log_softmax and logsumexp at magnitudes 1 to 1e308, and with infinite logits;
* powers at 0: value, first and second derivative of x ** p.

JAX is the independent oracle (``jax.enable_x64`` is set only around JAX's own calls, so
no other test sees it). Where the inputs allow it, central finite differences of
einsgrad's forward check the derivatives a second way.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from oracles import finite_difference

import einsgrad as eg

DTYPES = [np.float32, np.float64]


@contextmanager
def float64_jax() -> Iterator[None]:
    """JAX with float64 arrays, for this block only (the flag is JAX's context manager)."""
    with jax.enable_x64(True):
        yield


def on_jax(f: Callable[..., Any], *arrays: np.ndarray) -> Any:
    """``f`` of ``arrays`` as JAX arrays of the same dtype, returned as numpy arrays."""
    with float64_jax():
        result = f(*(jnp.asarray(a) for a in arrays))
        return jax.tree_util.tree_map(np.asarray, result)


def ulps(dtype: Any, n: float) -> float:
    return n * float(np.finfo(dtype).eps)


def disagreement(got: np.ndarray, want: np.ndarray, dtype: Any) -> np.ndarray:
    """Per point (the first axis): True where ``got`` and ``want`` differ.

    Equal are: both NaN, the same infinity, and finite values within 4 ulps or within the
    smallest normal number of each other (XLA on CPU flushes subnormal results to zero).
    """
    got, want = np.asarray(got, dtype=np.float64), np.asarray(want, dtype=np.float64)
    with np.errstate(invalid="ignore"):
        close = np.abs(got - want) <= ulps(dtype, 4) * np.abs(want) + np.finfo(dtype).tiny
    finite = np.isfinite(got) & np.isfinite(want)
    same = (np.isnan(got) & np.isnan(want)) | (got == want) | (finite & close)
    different = ~same
    return different.reshape(different.shape[0], -1).any(axis=1)


# --- softmax, log_softmax and logsumexp at large magnitudes ----------------------------------

# 1e308 overflows float32 to inf: its float32 row uses 1e38, the largest power of ten below
# float32's maximum (3.4e38).
MAGNITUDES = {
    np.float32: [1.0, 1e3, 1e5, 1e16, 1e38],
    np.float64: [1.0, 1e3, 1e5, 1e16, 1e308],
}
AXIS_FUNCTIONS: dict[str, tuple[Callable[..., Any], Callable[..., Any]]] = {
    "softmax": (eg.softmax, jax.nn.softmax),
    "log_softmax": (eg.log_softmax, jax.nn.log_softmax),
    "logsumexp": (eg.logsumexp, jax.nn.logsumexp),
}


def large_logits(magnitude: float, dtype: Any) -> np.ndarray:
    """Rows of logits around ``±magnitude``: spread by O(1) (rounded to the magnitude's ulp,
    so at 1e16 and above some become ties), all equal (the issue's [1e16, 1e16]), and
    spread over the whole range (exp of −1.5·magnitude underflows)."""
    rng = np.random.default_rng(int(np.log10(magnitude)))
    spread = rng.uniform(-3.0, 3.0, size=(2, 6))
    rows = [
        magnitude + spread[0],
        -magnitude + spread[1],
        np.full(6, magnitude),
        np.array([magnitude, -magnitude / 2, 0.0, magnitude / 2, magnitude - 1, -magnitude / 4]),
    ]
    return np.array(rows, dtype=dtype)


def _magnitude_params() -> list[Any]:
    return [
        pytest.param(dtype, magnitude, id=f"{dtype.__name__}-{magnitude:g}")
        for dtype in DTYPES
        for magnitude in MAGNITUDES[dtype]
    ]


def assert_close(got: np.ndarray, want: np.ndarray, dtype: Any, what: str, n: float = 8) -> None:
    """Equal dtype, and equal within ``n`` ulps (relative, and absolute at the scale 1)."""
    assert got.dtype == want.dtype == dtype, what
    np.testing.assert_allclose(got, want, rtol=ulps(dtype, n), atol=ulps(dtype, n), err_msg=what)


@pytest.mark.parametrize("axis", [-1, 0], ids=["axis-1", "axis0"])
@pytest.mark.parametrize("name", sorted(AXIS_FUNCTIONS))
@pytest.mark.parametrize(("dtype", "magnitude"), _magnitude_params())
def test_axis_functions_match_jax_at_large_magnitudes(
    dtype: Any, magnitude: float, name: str, axis: int
) -> None:
    """Values, gradients and forward-mode derivatives, evaluated and compiled."""
    build, reference = AXIS_FUNCTIONS[name]
    x = large_logits(magnitude, dtype)
    X = eg.var("X", x.shape)
    value = build(X, axis)
    weights = np.random.default_rng(7).normal(size=value.shape).astype(dtype)
    direction = np.random.default_rng(8).normal(size=x.shape).astype(dtype)
    loss = eg.sum(value * weights)
    outputs = [value, eg.grad(loss, X), eg.jvp(value, {X: direction})]

    def jax_outputs(x: Any, weights: Any, direction: Any) -> Any:
        f = lambda v: reference(v, axis=axis)  # noqa: E731
        gradient = jax.grad(lambda v: jnp.sum(f(v) * weights))(x)
        return f(x), gradient, jax.jvp(f, (x,), (direction,))[1]

    expected = on_jax(jax_outputs, x, weights, direction)
    # No NaN on the way (∞ − ∞, 0 · ∞). Overflow is legitimate here: at 1e308 a logit's
    # distance from the maximum along axis 0 can exceed float64's range.
    with np.errstate(invalid="raise", over="ignore"):
        evaluated = eg.evaluate(outputs, X=x)
        compiled = eg.compile(outputs)(X=x)
    for what, got, want, again in zip(
        ["value", "vjp", "jvp"], evaluated, expected, compiled, strict=True
    ):
        assert_close(got, want, dtype, f"{name} {what}")
        np.testing.assert_array_equal(again, got, err_msg=f"{name} {what}, compiled")


@pytest.mark.parametrize(("dtype", "magnitude"), _magnitude_params())
def test_softmax_sums_to_one_and_matches_float64_at_large_magnitudes(
    dtype: Any, magnitude: float
) -> None:
    """The issue's case: float32 softmax([1e4, 1e4]) summed to 0.99979, [1e16, 1e16] to 2.

    The reference is the shifted formula evaluated in float64 (or extended precision for
    float64 inputs) from the same, exactly representable, logits.
    """
    x = large_logits(magnitude, dtype)
    got = eg.softmax(eg.var("X"))(X=x)
    wide = x.astype(np.longdouble)
    exact = np.exp(wide - wide.max(axis=-1, keepdims=True))
    exact /= exact.sum(axis=-1, keepdims=True)
    np.testing.assert_allclose(got.sum(axis=-1), 1.0, rtol=ulps(dtype, 8))
    np.testing.assert_allclose(got, exact.astype(dtype), rtol=ulps(dtype, 8), atol=1e-300)
    pair = eg.softmax(eg.var("X"))(X=np.array([magnitude, magnitude], dtype=dtype))
    np.testing.assert_array_equal(pair, [0.5, 0.5])


INFINITE_LOGITS = np.array(
    [
        [1000.0, np.inf],
        [1.0, np.inf],
        [-np.inf, 0.0],
        [-np.inf, -np.inf],
        [np.inf, np.inf],
        [np.inf, -np.inf],
    ]
)
NAN = np.nan


def test_softmax_family_with_infinite_logits() -> None:
    """Each entry is its limit where the limit exists and NaN where it does not.

    The shift is the largest finite logit, so exp of a finite logit never overflows: with
    the maximum, or 0 when the maximum is infinite, softmax([1000, ∞]) was [NaN, NaN]
    (exp(1000) = ∞, ∞/∞) instead of [0, NaN]. The expected values are the limits.
    """
    X = eg.var("X", INFINITE_LOGITS.shape)
    softmax = [[0, NAN], [0, NAN], [0, 1], [NAN, NAN], [NAN, NAN], [NAN, 0]]
    log_softmax = [
        [-np.inf, NAN],
        [-np.inf, NAN],
        [-np.inf, 0],
        [NAN, NAN],
        [NAN, NAN],
        [NAN, -np.inf],
    ]
    logsumexp = [np.inf, np.inf, 0, -np.inf, np.inf, np.inf]
    outputs = [
        eg.softmax(X),
        eg.log_softmax(X),
        eg.logsumexp(X, -1),
        eg.grad(eg.sum(eg.logsumexp(X, -1)), X),
    ]
    with np.errstate(all="ignore"):
        values = eg.evaluate(outputs, X=INFINITE_LOGITS)
    for got, want in zip(values, [softmax, log_softmax, logsumexp, softmax], strict=True):
        np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize("magnitude", [1.0, 1e3])
@pytest.mark.parametrize("name", sorted(AXIS_FUNCTIONS))
def test_axis_function_gradients_match_finite_differences(name: str, magnitude: float) -> None:
    """Where a step of 1e-6 is still far above the logits' ulp, central differences apply."""
    build, _ = AXIS_FUNCTIONS[name]
    x = large_logits(magnitude, np.float64)
    X = eg.var("X", x.shape)
    value = build(X, -1)
    weights = np.random.default_rng(9).normal(size=value.shape)
    loss = eg.sum(value * weights)
    numeric = finite_difference(loss, {"X": x}, "X")
    np.testing.assert_allclose(eg.grad(loss, X)(X=x), numeric, rtol=1e-6, atol=1e-6)


# --- powers at 0, through the user-facing x ** p -------------------------------------------------

# Python ints and floats as exponents: an int is JAX's integer_pow, a float its pow, and an
# einsgrad constant keeps the type as well.
EXPONENTS = (0, 1, 2, 3, -1, -2, 0.5, 1.5, -0.5, 2.5, 0.0, 1.0, 2.0)
POWER_POINTS = (0.0, -0.0, 1.5, -1.5)
# Where x ** p is smooth around x, central differences check the derivatives too.
SMOOTH_AT_ZERO = (0, 1, 2, 3, 0.0, 1.0, 2.0)


@pytest.mark.parametrize("declared", [True, False], ids=["declared", "undeclared"])
@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: d.__name__)
@pytest.mark.parametrize("exponent", EXPONENTS, ids=repr)
def test_powers_at_zero_match_jax(exponent: float, dtype: Any, declared: bool) -> None:
    """grad(sum(x ** 0)) at 0 was NaN (0 · 0⁻¹); JAX, torch and autograd give 0.

    Value, first and second derivative of x ** p at ±0 (and at ±1.5) against JAX's x ** p.
    An integral float exponent is compared with JAX's int exponent (integer_pow): JAX's
    rule for a float exponent gives NaN at 0 for 0.0 and 1.0, a difference the table lists.
    """
    x = np.array(POWER_POINTS, dtype=dtype)
    X = eg.var("X", x.shape if declared else None)
    value = X**exponent
    first = eg.grad(eg.sum(value), X, allow_unused=True)
    second = eg.grad(eg.sum(first), X, allow_unused=True)  # x ** 2's first is 2x, ...
    with np.errstate(all="ignore"):
        results = eg.evaluate([value, first, second], X=x)
    reference = int(exponent) if float(exponent).is_integer() else exponent

    def jax_power(v: Any) -> list[Any]:
        f = lambda u: jnp.sum(u**reference)  # noqa: E731
        return [v**reference, jax.grad(f)(v), jax.grad(lambda u: jnp.sum(jax.grad(f)(u)))(v)]

    for what, ours, theirs in zip(
        ["value", "d/dx", "d2/dx2"], results, on_jax(jax_power, x), strict=True
    ):
        # With a declared shape, a derivative that does not depend on x (of x ** 0, x ** 1)
        # folds to a float64 constant: a known gap outside the power rule (the table
        # checks every primitive's dtype with undeclared shapes).
        if not declared or reference not in (0, 1):
            assert ours.dtype == theirs.dtype == dtype, what
        differs = disagreement(ours, theirs, dtype)
        assert not differs.any(), (what, x, ours, theirs)
    if dtype == np.float64 and not declared:
        at = {"X": np.array([0.0, 1.5]) if exponent in SMOOTH_AT_ZERO else np.array([1.5])}
        for derivative, of in ((first, value), (second, first)):
            numeric = finite_difference(eg.sum(of), at, "X")
            np.testing.assert_allclose(derivative(**at), numeric, rtol=1e-6, atol=1e-6)
