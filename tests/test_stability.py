"""Numeric stability against JAX: the primitives at the edges of floating point.

* softmax, log_softmax and logsumexp at magnitudes 1 to 1e308, and with infinite logits;
* powers at 0: value, first and second derivative of x ** p;
* the table: every primitive of the registries (``ELEMENTWISE``, ``REDUCTIONS``) and its
  derivatives at 0, ±smallest normal, ±smallest subnormal, ±1, ±1e3, ±1e30, ±huge, ±∞ and
  NaN, in float32 and float64, dtype included. ``DIFFERENCES`` lists each deliberate
  difference from JAX with its reason; a test checks that each one is real and that
  einsgrad gives there what a source independent of it says;
* the conventions at kinks that the README states of einsgrad, JAX and torch.

JAX is the independent oracle (``jax.enable_x64`` is set only around JAX's own calls, so
no other test sees it). Where the inputs allow it, central finite differences of
einsgrad's forward check the derivatives a second way.
"""

from __future__ import annotations

import functools
import itertools
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any

import autograd
import autograd.numpy as anp
import jax
import jax.numpy as jnp
import mpmath
import numpy as np
import pytest
import torch
from oracles import finite_difference

import einsgrad as eg
from einsgrad.core.primitive import ELEMENTWISE, REDUCTIONS
from einsgrad.graph import ops

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


# --- the table: every primitive and its derivatives at the edges of floating point -----------


def edge_points(dtype: Any) -> np.ndarray:
    """0, ±smallest normal, ±smallest subnormal, ±1, ±1e3, ±1e30, ±huge, ±inf and NaN,
    huge being 1e38 in float32 and 1e308 in float64."""
    info = np.finfo(dtype)
    huge = 1e38 if dtype == np.float32 else 1e308
    magnitudes = [0.0, info.tiny, info.smallest_subnormal, 1.0, 1e3, 1e30, huge, np.inf]
    return np.array([s * m for m in magnitudes for s in (1.0, -1.0)] + [np.nan], dtype=dtype)


def table_arguments(dtype: Any, count: int) -> tuple[np.ndarray, ...]:
    """Every combination of ``count`` edge points, one flat array per argument."""
    grids = np.meshgrid(*[edge_points(dtype)] * count, indexing="ij")
    return tuple(g.ravel() for g in grids)


@dataclass(frozen=True)
class Counterpart:
    """JAX's function for a primitive, called with the same arguments in the same order.

    ``constants`` names the arguments that must be constants (an exponent, a condition)
    with the values the table tries for each; the other arguments are variables.
    """

    jax: Callable[..., Any]
    constants: Mapping[int, Sequence[Any]] = field(default_factory=dict)


def _jax_mask(test: Callable[..., Any]) -> Callable[..., Any]:
    return lambda a, b: test(a, b).astype(jnp.result_type(a, b))


def _jax_shift(x: Any, axis: int) -> Any:
    """max_shift's definition in JAX: the largest finite entry, or 0; no derivative."""
    top = jnp.max(jnp.where(jnp.isfinite(x), x, -jnp.inf), axis=axis)
    return jax.lax.stop_gradient(jnp.where(jnp.isfinite(top), top, jnp.zeros_like(top)))


ELEMENTWISE_COUNTERPARTS: dict[str, Counterpart] = {
    "add": Counterpart(jnp.add),
    "subtract": Counterpart(jnp.subtract),
    "multiply": Counterpart(jnp.multiply),
    "divide": Counterpart(jnp.divide),
    "negative": Counterpart(jnp.negative),
    "power": Counterpart(lambda x, p: x**p, {1: EXPONENTS}),
    "exp": Counterpart(jnp.exp),
    "log": Counterpart(jnp.log),
    "sqrt": Counterpart(jnp.sqrt),
    "tanh": Counterpart(jnp.tanh),
    "sigmoid": Counterpart(jax.nn.sigmoid),
    "relu": Counterpart(jax.nn.relu),
    "abs": Counterpart(jnp.abs),
    "maximum": Counterpart(jnp.maximum),
    "minimum": Counterpart(jnp.minimum),
    "where": Counterpart(jnp.where, {0: (True, False)}),
    # The cotangent through a mask: JAX's relu vjp, where(mask, g, 0), scaled by the mask.
    "masked": Counterpart(lambda g, m: jnp.where(m != 0, g, 0) * m, {1: (0.0, 0.5, 1.0)}),
    "greater": Counterpart(_jax_mask(jnp.greater)),
    "equal": Counterpart(_jax_mask(jnp.equal)),
    "sign": Counterpart(jnp.sign),
}
# Called as f(x, axis).
REDUCTION_COUNTERPARTS: dict[str, Callable[..., Any]] = {
    "logsumexp": lambda x, axis: jax.nn.logsumexp(x, axis=axis),
    "max_shift": _jax_shift,
}
# Not primitives, but built on max_shift; checked at the same points.
COMPOSITIONS: dict[str, tuple[Callable[..., Any], Callable[..., Any]]] = {
    "softmax": (eg.softmax, jax.nn.softmax),
    "log_softmax": (eg.log_softmax, jax.nn.log_softmax),
}


@dataclass(frozen=True)
class Row:
    """A primitive with its constants fixed, as a function of its variables in einsgrad
    (``build``) and in JAX (``reference``). With ``vector``, its two variables are the two
    entries of one vector, reduced along it; ``cotangent`` weighs a vector result."""

    name: str
    variables: int
    build: Callable[[Sequence[eg.Expr]], eg.Expr]
    reference: Callable[[Sequence[Any]], Any]
    vector: bool = False
    cotangent: np.ndarray | None = None


def _fill(arity: int, fixed: Mapping[int, Any], variables: Sequence[Any]) -> list[Any]:
    rest = iter(variables)
    return [fixed[k] if k in fixed else next(rest) for k in range(arity)]


def _build_map(name: str, fixed: Mapping[int, Any], variables: Sequence[eg.Expr]) -> eg.Expr:
    constants = {k: eg.Const(np.asarray(v) if isinstance(v, bool) else v) for k, v in fixed.items()}
    return ops._map(name, *_fill(ELEMENTWISE[name].arity, constants, variables))


def _call_jax(name: str, fixed: Mapping[int, Any], variables: Sequence[Any]) -> Any:
    counterpart = ELEMENTWISE_COUNTERPARTS[name]
    return counterpart.jax(*_fill(ELEMENTWISE[name].arity, fixed, variables))


def _row_name(name: str, arity: int, fixed: Mapping[int, Any]) -> str:
    if not fixed:
        return name
    shown = _fill(arity, {k: repr(v) for k, v in fixed.items()}, ["_"] * arity)
    return f"{name}({', '.join(shown)})"


def table_rows() -> dict[str, Row]:
    """The table's rows: every registered primitive that has a counterpart, each constant
    of each, and the compositions."""
    rows: list[Row] = []
    for name, op in ELEMENTWISE.items():
        counterpart = ELEMENTWISE_COUNTERPARTS.get(name)
        if counterpart is None:
            continue  # test_every_primitive_has_a_jax_counterpart fails instead
        positions = sorted(counterpart.constants)
        for chosen in itertools.product(*(counterpart.constants[k] for k in positions)):
            fixed = dict(zip(positions, chosen, strict=True))
            rows.append(
                Row(
                    _row_name(name, op.arity, fixed),
                    op.arity - len(fixed),
                    functools.partial(_build_map, name, fixed),
                    functools.partial(_call_jax, name, fixed),
                )
            )
    for name, reduction in REDUCTIONS.items():
        if name in REDUCTION_COUNTERPARTS:
            rows.append(
                Row(
                    name,
                    2,
                    lambda v, op=reduction: ops.reduction(op, v[0], (-1,)),
                    lambda v, f=REDUCTION_COUNTERPARTS[name]: f(v[0], -1),
                    vector=True,
                )
            )
    for name, (build, reference) in COMPOSITIONS.items():
        rows.append(
            Row(
                name,
                2,
                lambda v, b=build: b(v[0], -1),
                lambda v, f=reference: f(v[0], axis=-1),
                vector=True,
                cotangent=np.array([0.75, -0.5]),
            )
        )
    return {row.name: row for row in rows}


ROWS = table_rows()


def _quantity_names(row: Row) -> list[str]:
    if row.vector:
        return ["value", "d/dx"]
    names = ["value"] + [f"d/dx{k}" for k in range(row.variables)]
    return names + (["d2/dx0"] if row.variables == 1 else [])


@functools.cache
def einsgrad_table(name: str, dtype: Any) -> dict[str, np.ndarray]:
    """einsgrad's value and derivatives of row ``name`` at every table point."""
    row = ROWS[name]
    arguments = table_arguments(dtype, row.variables)
    if row.vector:
        v = eg.var("V")
        value = row.build([v])
        weights = 1.0 if row.cotangent is None else row.cotangent.astype(dtype)
        outputs = [value, eg.grad(eg.sum(value * weights), v)]
        inputs = {"V": np.stack(arguments, axis=-1)}
    else:
        variables = [eg.var(f"x{k}") for k in range(row.variables)]
        value = row.build(variables)
        outputs = [value, *eg.grad(eg.sum(value), variables)]
        if row.variables == 1:
            outputs.append(eg.grad(eg.sum(outputs[1]), variables[0]))
        inputs = {f"x{k}": a for k, a in enumerate(arguments)}
    with np.errstate(all="ignore"):  # IEEE results are compared; numpy's warnings are noise
        results = eg.evaluate(outputs, **inputs)
    return dict(zip(_quantity_names(row), results, strict=True))


def jax_table(row: Row, arguments: Sequence[np.ndarray]) -> dict[str, np.ndarray]:
    """JAX's value and derivatives of ``row`` at ``arguments``."""
    f = row.reference

    def quantities(*js: Any) -> list[Any]:
        if row.vector:
            vector = jnp.stack(js, axis=-1)
            weights = 1.0 if row.cotangent is None else jnp.asarray(row.cotangent, vector.dtype)
            gradient = jax.grad(lambda v: jnp.sum(f([v]) * weights))(vector)
            return [f([vector]), gradient]
        argnums = tuple(range(len(js)))
        gradients = jax.grad(lambda *v: jnp.sum(f(v)), argnums=argnums)(*js)
        if len(js) == 1:
            first = jax.grad(lambda u: jnp.sum(f([u])))
            gradients = (*gradients, jax.grad(lambda v: jnp.sum(first(v)))(js[0]))
        return [f(js), *gradients]

    return dict(zip(_quantity_names(row), on_jax(quantities, *arguments), strict=True))


@functools.cache
def jax_reference_table(name: str, dtype: Any) -> dict[str, np.ndarray]:
    row = ROWS[name]
    return jax_table(row, table_arguments(dtype, row.variables))


# --- the deliberate differences from JAX, each with its reason ----------------------------------


def _subnormal(x: np.ndarray, dtype: Any) -> np.ndarray:
    return (x != 0) & (np.abs(x) < np.finfo(dtype).tiny)


def _square_out_of_range(x: np.ndarray, dtype: Any) -> np.ndarray:
    """Where x² in ``dtype`` overflows or is no longer normal, so that x⁻² is ∞ or 0."""
    with np.errstate(all="ignore"):
        square = (x * x).astype(dtype)
    return np.isfinite(x) & ((square == np.inf) | (square < np.finfo(dtype).tiny))


def _jax_in_float64(row: Row, quantity: str, dtype: Any, arguments: Sequence[np.ndarray]) -> Any:
    """JAX's result for float32 inputs computed in float64, where a float32 subnormal is a
    normal number, rounded back to float32. None for float64 inputs: no wider JAX type."""
    if dtype != np.float32:
        return None
    wide = jax_table(row, [a.astype(np.float64) for a in arguments])[quantity]
    return wide.astype(np.float32)


def _exact_divide_cotangent(row: Row, quantity: str, dtype: Any, arguments: Any) -> np.ndarray:
    """∂(a/b)/∂b = −a/b² in exact rational arithmetic, rounded once to ``dtype`` (NaN
    where b is 0 or not finite: those points are not this difference's)."""
    exact = []
    for a, b in zip(*(x.tolist() for x in arguments), strict=True):
        if b == 0 or not np.isfinite(b):
            exact.append(np.nan)
        elif not np.isfinite(a):  # −(±∞)/b² is ∓∞, and NaN stays NaN
            exact.append(-a)
        else:
            quotient = -Fraction(a) / Fraction(b) ** 2
            try:
                exact.append(float(quotient))
            except OverflowError:
                exact.append(-np.inf if quotient < 0 else np.inf)
    with np.errstate(over="ignore"):
        return np.array(exact).astype(dtype)


def _torch_gradient(f: Callable[..., Any]) -> Callable[..., np.ndarray]:
    def gradient(row: Row, quantity: str, dtype: Any, arguments: Any) -> np.ndarray:
        x = torch.tensor(arguments[0], requires_grad=True)
        f(x).sum().backward()
        assert x.grad is not None
        return x.grad.numpy()

    return gradient


def _autograd_gradient(f: Callable[..., Any]) -> Callable[..., np.ndarray]:
    def gradient(row: Row, quantity: str, dtype: Any, arguments: Any) -> np.ndarray:
        return np.asarray(autograd.elementwise_grad(f)(arguments[0])).astype(dtype)

    return gradient


def _mpmath(f: Callable[[Any], Any]) -> Callable[..., np.ndarray]:
    """``f`` at each finite point in 50-digit arithmetic, rounded once (NaN elsewhere)."""

    def exact(row: Row, quantity: str, dtype: Any, arguments: Any) -> np.ndarray:
        with mpmath.workdps(50):
            points = arguments[0].tolist()
            values = [float(f(mpmath.mpf(x))) if np.isfinite(x) else np.nan for x in points]
        return np.array(values).astype(dtype)

    return exact


def _stated(value: Callable[..., np.ndarray]) -> Callable[..., np.ndarray]:
    """The result the reason states, as a function of the arguments."""

    def given(row: Row, quantity: str, dtype: Any, arguments: Any) -> np.ndarray:
        return np.asarray(value(*arguments), dtype=dtype)

    return given


def _positive_infinity_row(dtype: Any, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return ((a == np.inf) | (b == np.inf)) & ~np.isnan(a) & ~np.isnan(b)


def _limit_at_infinity(finite_entries: Callable[..., Any]) -> Callable[..., np.ndarray]:
    """NaN at the +∞ entries of the vector, ``finite_entries`` (its limit) at the others."""

    def limit(a: np.ndarray, b: np.ndarray) -> np.ndarray:
        v = np.stack([a, b], axis=-1)
        return np.where(v == np.inf, np.nan, finite_entries(v))

    return limit


@dataclass(frozen=True)
class Difference:
    """Where einsgrad deliberately differs from JAX, and why.

    ``points(dtype, *arguments)`` marks the table points the difference covers; ``gives``
    is what einsgrad computes there instead, from a source independent of einsgrad (torch,
    autograd, exact arithmetic, the value the reason states), or None if there is none.
    """

    reason: str
    points: Callable[..., np.ndarray]
    gives: Callable[..., Any] | None


NEGATIVE_BASE = (
    "A negative base with a non-integer exponent has no real power: numpy, whose power is "
    "einsgrad's kernel, gives NaN for every negative x, −∞ included; JAX follows C99's "
    "pow(−∞, y) = +∞ (y > 0 not an odd integer), so its values and derivatives are ±∞ there."
)
INFINITE_LOGIT = (
    "A vector with a +∞ entry: JAX's softmax and log_softmax shift by the maximum, ∞ − ∞ "
    "is NaN, and every entry is NaN; its logsumexp shifts by 0 instead, so its gradient "
    "(the softmax) is NaN everywhere once a finite entry's exp overflows (exp(1000)). "
    "einsgrad shifts by the largest finite entry, so only the +∞ entries are NaN and the "
    "others get their limit: softmax 0, log_softmax −∞ with the derivative ȳ_i."
)
# Keyed by (row, quantity, where); "*" stands for every row or every quantity.
DIFFERENCES: dict[tuple[str, str, str], Difference] = {
    ("*", "*", "subnormal inputs"): Difference(
        "XLA on CPU flushes subnormal inputs to zero; numpy keeps IEEE 754's gradual "
        "underflow, so e.g. log(5e-324) is −744.4, not −∞, and relu'(5e-324) is 1. Checked "
        "for float32 against JAX in float64, where these inputs are normal numbers.",
        lambda dtype, *args: np.logical_or.reduce([_subnormal(a, dtype) for a in args]),
        _jax_in_float64,
    ),
    ("tanh", "d2/dx0", "0 < |x| < ulp(1)"): Difference(
        "tanh''(x) = −2 tanh(x) sech²(x) ≈ −2x for small x. einsgrad differentiates its rule "
        "ȳ (1 − y²) to −2y ẏ, a product; JAX's rule ȳ (1 − y)(1 + y) differentiates to "
        "(1 − y) − (1 + y), which cancels to 0 once |x| is below the ulp of 1.",
        lambda dtype, x: (x != 0) & (np.abs(x) < np.finfo(dtype).eps),
        _mpmath(lambda x: -2 * mpmath.tanh(x) * mpmath.sech(x) ** 2),
    ),
    ("abs", "d/dx0", "x = ±0"): Difference(
        "|x|'(0) = sign(0) = 0, the convention of torch, autograd and numpy's sign (and the "
        "symmetric difference quotient, and the smallest subgradient); JAX's rule "
        "select(x ≥ 0, 1, −1) gives 1.",
        lambda dtype, x: x == 0,
        _torch_gradient(torch.abs),
    ),
    ("abs", "d/dx0", "x = NaN"): Difference(
        "|x|'(NaN) = sign(NaN) = NaN, as in autograd; JAX's select(x ≥ 0, 1, −1) gives −1.",
        lambda dtype, x: np.isnan(x),
        _autograd_gradient(anp.abs),
    ),
    ("divide", "d/dx1", "b² out of range"): Difference(
        "∂(a/b)/∂b = −a/b² is computed as −(a/b)/b; JAX computes −a·b⁻², whose b⁻² is ∞ "
        "or 0 once b² overflows or underflows, and gives 0, ±∞ or NaN (0·∞) where the exact "
        "value is finite and nonzero (e.g. −1e-30 at a = b = 1e30 in float32).",
        lambda dtype, a, b: (b != 0) & _square_out_of_range(b, dtype),
        _exact_divide_cotangent,
    ),
    ("power(_, 0.0)", "d/dx0", "x = ±0 or NaN"): Difference(
        "x ** 0.0 is the constant 1, so its derivative is 0 everywhere (as torch and "
        "autograd give, and JAX for the int exponent x ** 0); JAX's pow rule for a float "
        "exponent forms 0.0 · x⁻¹, which is NaN where x⁻¹ is ∞ or NaN.",
        lambda dtype, x: (x == 0) | np.isnan(x),
        _stated(np.zeros_like),
    ),
    ("power(_, 0.0)", "d2/dx0", "x⁻² infinite or NaN"): Difference(
        "The second derivative of the constant 1 is 0; JAX's is 0.0 · (−x⁻²), NaN where "
        "x⁻² is ∞ (x² underflows) or NaN.",
        lambda dtype, x: _square_out_of_range(x, dtype) | np.isnan(x),
        _stated(np.zeros_like),
    ),
    ("power(_, 1.0)", "d2/dx0", "x = ±0 or NaN"): Difference(
        "x ** 1.0 is x, so its second derivative is 0; JAX differentiates its first "
        "derivative 1.0 · x ** 0.0 with the pow rule above: NaN at 0 and at NaN.",
        lambda dtype, x: (x == 0) | np.isnan(x),
        _stated(np.zeros_like),
    ),
    ("power(_, 0.5)", "value", "x = −∞"): Difference(
        NEGATIVE_BASE, lambda dtype, x: x == -np.inf, _stated(lambda x: np.full_like(x, np.nan))
    ),
    ("power(_, 1.5)", "d/dx0", "x = −∞"): Difference(
        NEGATIVE_BASE, lambda dtype, x: x == -np.inf, _stated(lambda x: np.full_like(x, np.nan))
    ),
    ("power(_, 2.5)", "d2/dx0", "x = −∞"): Difference(
        NEGATIVE_BASE, lambda dtype, x: x == -np.inf, _stated(lambda x: np.full_like(x, np.nan))
    ),
    ("softmax", "value", "a +∞ entry"): Difference(
        INFINITE_LOGIT,
        _positive_infinity_row,
        _stated(_limit_at_infinity(np.zeros_like)),
    ),
    ("logsumexp", "d/dx", "a +∞ entry"): Difference(
        INFINITE_LOGIT,
        _positive_infinity_row,
        _stated(_limit_at_infinity(np.zeros_like)),
    ),
    ("log_softmax", "value", "a +∞ entry"): Difference(
        INFINITE_LOGIT,
        _positive_infinity_row,
        _stated(_limit_at_infinity(lambda v: np.full_like(v, -np.inf))),
    ),
    ("log_softmax", "d/dx", "a +∞ entry"): Difference(
        INFINITE_LOGIT,
        _positive_infinity_row,
        _stated(
            _limit_at_infinity(lambda v: np.broadcast_to(ROWS["log_softmax"].cotangent, v.shape))
        ),
    ),
}


def _covers(key: tuple[str, str, str], row: str, quantity: str) -> bool:
    return key[0] in ("*", row) and key[1] in ("*", quantity)


def listed_points(
    row: str, quantity: str, dtype: Any, arguments: Sequence[np.ndarray], keys: Sequence[Any]
) -> np.ndarray:
    """The points (``arguments``) of ``row`` that the listed differences ``keys`` cover."""
    covered = np.zeros(arguments[0].shape, dtype=bool)
    for key in keys:
        if _covers(key, row, quantity):
            covered |= DIFFERENCES[key].points(dtype, *arguments)
    return covered


def _describe(row: Row, quantity: str, dtype: Any, mask: np.ndarray) -> str:
    arguments = table_arguments(dtype, row.variables)
    ours = einsgrad_table(row.name, dtype)[quantity].reshape(mask.shape[0], -1)
    theirs = jax_reference_table(row.name, dtype)[quantity].reshape(mask.shape[0], -1)
    lines = [
        f"  at {[a[i].item() for a in arguments]}: einsgrad {ours[i]}, JAX {theirs[i]}"
        for i in np.flatnonzero(mask)[:12]
    ]
    return f"{row.name} {quantity} ({dtype.__name__}), {mask.sum()} points:\n" + "\n".join(lines)


def test_every_primitive_has_a_jax_counterpart() -> None:
    assert set(ELEMENTWISE_COUNTERPARTS) == set(ELEMENTWISE)
    assert set(REDUCTION_COUNTERPARTS) == set(REDUCTIONS)


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: d.__name__)
@pytest.mark.parametrize("name", sorted(ROWS))
def test_table_matches_jax(name: str, dtype: Any) -> None:
    """Value and derivatives at every edge point, and the dtype, as JAX has them, except
    where DIFFERENCES lists a deliberate difference."""
    row = ROWS[name]
    ours, theirs = einsgrad_table(name, dtype), jax_reference_table(name, dtype)
    for quantity in _quantity_names(row):
        assert ours[quantity].dtype == theirs[quantity].dtype == dtype, (name, quantity)
        differs = disagreement(ours[quantity], theirs[quantity], dtype)
        arguments = table_arguments(dtype, row.variables)
        unlisted = differs & ~listed_points(name, quantity, dtype, arguments, list(DIFFERENCES))
        assert not unlisted.any(), _describe(row, quantity, dtype, unlisted)


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: d.__name__)
@pytest.mark.parametrize("key", sorted(DIFFERENCES), ids=" ".join)
def test_listed_differences_are_real(key: tuple[str, str, str], dtype: Any) -> None:
    """Each listed difference shows at some table point of this dtype, and where it is
    listed einsgrad gives what the independent source says (unless another listed
    difference covers the point too)."""
    difference = DIFFERENCES[key]
    others = [k for k in DIFFERENCES if k != key]
    shown = 0
    for row in ROWS.values():
        for quantity in _quantity_names(row):
            if not _covers(key, row.name, quantity):
                continue
            arguments = table_arguments(dtype, row.variables)
            ours = einsgrad_table(row.name, dtype)[quantity]
            theirs = jax_reference_table(row.name, dtype)[quantity]
            points = difference.points(dtype, *arguments)
            shown += int((points & disagreement(ours, theirs, dtype)).sum())
            with np.errstate(all="ignore"):  # the sources' own warnings at ±∞ and NaN
                gives = (
                    None
                    if difference.gives is None
                    else difference.gives(row, quantity, dtype, arguments)
                )
            if gives is None:
                continue
            checked = points & ~listed_points(row.name, quantity, dtype, arguments, others)
            wrong = checked & disagreement(ours, gives, dtype)
            assert not wrong.any(), f"{key}: einsgrad is not what the reason says\n" + _describe(
                row, quantity, dtype, wrong
            )
    assert shown > 0, f"{key} lists a difference from JAX that no {dtype.__name__} point shows"


# --- conventions at kinks: the README's claims about JAX and torch ---------------------------


def _torch_gradients(f: Callable[..., Any], *points: float) -> list[float]:
    tensors = [torch.tensor(p, dtype=torch.float64, requires_grad=True) for p in points]
    f(*tensors).backward()
    return [float(t.grad) for t in tensors]  # type: ignore[arg-type]


def test_kink_conventions_match_what_the_readme_says_of_jax_and_torch() -> None:
    """relu'(0) = 0 and even splits of maximum/minimum ties in einsgrad, JAX and torch;
    |x|'(0) = 0 in einsgrad, torch and autograd, while JAX gives 1 (listed in DIFFERENCES)."""
    x, a, b = eg.var("x"), eg.var("a"), eg.var("b")
    zero, one = np.array(0.0), np.array(1.0)
    with float64_jax():
        assert eg.grad(eg.relu(x), x)(x=zero) == 0.0
        assert float(jax.grad(jax.nn.relu)(0.0)) == 0.0
        assert _torch_gradients(torch.relu, 0.0) == [0.0]
        for ours, theirs, torchs in (
            (eg.maximum, jnp.maximum, torch.maximum),
            (eg.minimum, jnp.minimum, torch.minimum),
        ):
            split = eg.evaluate(list(eg.grad(ours(a, b), [a, b])), a=one, b=one)
            assert [float(g) for g in split] == [0.5, 0.5]
            assert [float(g) for g in jax.grad(theirs, (0, 1))(1.0, 1.0)] == [0.5, 0.5]
            assert _torch_gradients(torchs, 1.0, 1.0) == [0.5, 0.5]
        for at in (0.0, -0.0):
            assert eg.grad(eg.abs(x), x)(x=np.array(at)) == 0.0
            assert _torch_gradients(torch.abs, at) == [0.0]
            assert autograd.grad(anp.abs)(at) == 0.0
            assert float(jax.grad(jnp.abs)(at)) == 1.0
