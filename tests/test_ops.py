"""Every elementwise op and reduction: values and derivatives against two oracles.

Each derivative einsgrad derives is compared with

* HIPS autograd (``autograd.grad``) applied to the same function written with
  ``autograd.numpy``, and
* central finite differences of einsgrad's own forward evaluation,

for declared and undeclared (``shape=None``) variables, under numpy broadcasting, along
every kind of ``axis``, at large magnitudes (stability), at kinks (documented
conventions), to second order (grad of grad), and for float32 inputs.

The op tables are checked against the primitive registries, so registering a new
primitive without adding a test case here fails :func:`test_tables_cover_the_registry`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import autograd
import autograd.numpy as anp
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from oracles import Shape, autograd_gradients, autograd_gradients_traced, finite_difference

import einsgrad as eg
from einsgrad.core.ir import Einsum, Map
from einsgrad.core.primitive import ELEMENTWISE, REDUCTIONS
from einsgrad.graph import ops

RTOL = 1e-5
ATOL = 1e-6


# --- oracles ----------------------------------------------------------------------------------


def check_gradients(
    loss: eg.Expr,
    ref: Callable[..., Any],
    arrays: Mapping[str, np.ndarray],
    names: Sequence[str],
    *,
    rtol: float = RTOL,
    atol: float = ATOL,
) -> tuple[np.ndarray, ...]:
    """Assert value and gradients of ``loss`` match ``ref`` (autograd) and finite differences."""
    np.testing.assert_allclose(loss(**arrays), ref(**arrays), rtol=1e-10, atol=1e-12)
    grads = eg.evaluate(list(eg.grad(loss, list(names))), **arrays)
    expected = autograd_gradients(ref, arrays, names)
    for name, got, want in zip(names, grads, expected, strict=True):
        assert got.shape == np.shape(arrays[name]), name
        np.testing.assert_allclose(got, want, rtol=rtol, atol=atol, err_msg=f"autograd, d/d{name}")
        numeric = finite_difference(loss, arrays, name)
        np.testing.assert_allclose(got, numeric, rtol=rtol, atol=atol, err_msg=f"FD, d/d{name}")
    return tuple(grads)


# --- inputs -------------------------------------------------------------------------------------


def sample(rng: np.random.Generator, shape: Shape, domain: str, slot: int) -> np.ndarray:
    """Random inputs that keep finite differences away from every kink.

    ``"real"`` values of argument ``slot`` lie within 0.05 of ``0.5 k + 0.125 + 0.25 slot``:
    at least 0.075 from 0, and two arguments at least 0.15 apart, so relu, abs, maximum
    and minimum are smooth within a finite-difference step. ``"positive"`` is [0.5, 2].
    """
    if domain == "positive":
        return rng.uniform(0.5, 2.0, size=shape)
    lattice = 0.5 * rng.integers(-4, 4, size=shape) + 0.125 + 0.25 * slot
    return lattice + rng.uniform(-0.05, 0.05, size=shape)


def declare(name: str, shape: Shape, declared: bool) -> eg.Var:
    return eg.var(name, shape if declared else None)


# --- the elementwise table --------------------------------------------------------------------


def _sigmoid(x: Any) -> Any:
    return 1.0 / (1.0 + anp.exp(-x))


BINARY_SHAPES: list[tuple[Shape, ...]] = [
    ((3, 4), (3, 4)),
    ((3, 4), (4,)),
    ((3, 1), (1, 4)),
    ((3, 4), ()),
    ((), (2, 3)),
]
UNARY_SHAPES: list[tuple[Shape, ...]] = [((3, 4),), ((5,),), ((),)]
CONDITION = np.array([[True, False, True, True], [False, False, True, False], [True] * 4])
ZEROS = np.zeros(CONDITION.shape)
# A mask as relu, abs, maximum and minimum pass their cotangent through: 0, ½ or 1 (or −1).
MASK = np.array([[1.0, 0.0, 0.5, 1.0], [0.0, -1.0, 1.0, 0.0], [0.5, 1.0, 0.0, 1.0]])


@dataclass(frozen=True)
class OpCase:
    """A registered elementwise primitive, as einsgrad calls it and as autograd does."""

    name: str
    build: Callable[..., Any]
    ref: Callable[..., Any]
    domains: tuple[str, ...]
    shapes: tuple[tuple[Shape, ...], ...]


def _case(
    name: str,
    build: Callable[..., Any],
    ref: Callable[..., Any],
    domains: tuple[str, ...] = ("real",),
    shapes: Sequence[tuple[Shape, ...]] | None = None,
) -> OpCase:
    default = UNARY_SHAPES if len(domains) == 1 else BINARY_SHAPES
    return OpCase(name, build, ref, domains, tuple(shapes or default))


ELEMENTWISE_CASES: dict[str, OpCase] = {
    c.name: c
    for c in [
        _case("add", lambda a, b: a + b, lambda a, b: a + b, ("real", "real")),
        _case("subtract", lambda a, b: a - b, lambda a, b: a - b, ("real", "real")),
        _case("multiply", lambda a, b: a * b, lambda a, b: a * b, ("real", "real")),
        _case("divide", lambda a, b: a / b, lambda a, b: a / b, ("real", "positive")),
        _case("negative", lambda x: -x, lambda x: -x),
        _case("power", lambda x: x**3, lambda x: x**3),
        _case("exp", eg.exp, anp.exp),
        _case("log", eg.log, anp.log, ("positive",)),
        _case("sqrt", eg.sqrt, anp.sqrt, ("positive",)),
        _case("tanh", eg.tanh, anp.tanh),
        _case("sigmoid", eg.sigmoid, _sigmoid),
        _case("relu", eg.relu, lambda x: anp.maximum(x, 0.0)),
        _case("abs", eg.abs, anp.abs),
        _case("maximum", eg.maximum, anp.maximum, ("real", "real")),
        _case("minimum", eg.minimum, anp.minimum, ("real", "real")),
        _case(
            "where",
            lambda a, b: eg.where(CONDITION, a, b),
            # autograd's where does not sum broadcast cotangents back: broadcast first.
            lambda a, b: anp.where(CONDITION, a + ZEROS, b + ZEROS),
            ("real", "real"),
            [((3, 4), (3, 4)), ((3, 4), (4,)), ((3, 1), (1, 4)), ((), (3, 4)), ((), ())],
        ),
        _case(
            "masked",
            # float32, exact for these values, so that it keeps a float32 g in float32.
            lambda g: ops._map("masked", g, MASK.astype(np.float32)),
            lambda g: anp.where(MASK != 0, g + ZEROS, 0.0) * MASK,
            ("real",),
            [((3, 4),), ((4,),), ((3, 1),), ((),)],
        ),
    ]
}

# Masks: piecewise constant, registered as not differentiable. Built as IR nodes because
# they are internal (the derivative rules of relu, abs, maximum and minimum use them).
MASK_CASES: dict[str, tuple[Callable[..., Any], int]] = {
    "greater": (lambda a, b: (np.greater(a, b)).astype(np.float64), 2),
    "equal": (lambda a, b: (np.equal(a, b)).astype(np.float64), 2),
    "sign": (np.sign, 1),
}

REDUCTION_CASES: dict[str, tuple[Callable[..., Any], Callable[..., Any]]] = {
    "logsumexp": (eg.logsumexp, lambda x, axis: anp.log(anp.sum(anp.exp(x), axis=axis))),
}


def _finite_max(x: np.ndarray, axis: Any) -> np.ndarray:
    top = np.max(np.where(np.isfinite(x), x, -np.inf), axis=axis)
    return np.where(np.isfinite(top), top, 0.0)


# Shifts: reductions registered without a derivative, because every function built on them
# is invariant under the shift (softmax, log_softmax). Internal, so built from the registry.
SHIFT_CASES: dict[str, Callable[..., Any]] = {"max_shift": _finite_max}


def test_tables_cover_the_registry() -> None:
    differentiable = {name for name, op in ELEMENTWISE.items() if op.differentiable}
    masks = {name for name, op in ELEMENTWISE.items() if not op.differentiable}
    assert set(ELEMENTWISE_CASES) == differentiable
    assert set(MASK_CASES) == masks
    assert set(REDUCTION_CASES) == {n for n, op in REDUCTIONS.items() if op.differentiable}
    assert set(SHIFT_CASES) == {n for n, op in REDUCTIONS.items() if not op.differentiable}


def _op_params() -> list[Any]:
    return [
        pytest.param(case, shapes, id=f"{case.name}-{'x'.join(map(str, shapes))}")
        for case in ELEMENTWISE_CASES.values()
        for shapes in case.shapes
    ]


def _inputs(case: OpCase, shapes: tuple[Shape, ...], seed: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    return {
        f"A{k}": sample(rng, shape, domain, k)
        for k, (shape, domain) in enumerate(zip(shapes, case.domains, strict=True))
    }


def _loss_of(case: OpCase, shapes: tuple[Shape, ...], declared: bool, dtype: Any = np.float64):
    """``sum(op(args) * C)`` in einsgrad and in autograd, for a fixed random cotangent C."""
    out_shape = np.broadcast_shapes(
        *shapes, *(() if case.name not in ("where", "masked") else (CONDITION.shape,))
    )
    weights = np.random.default_rng(99).normal(size=out_shape).astype(dtype)
    variables = [declare(f"A{k}", shape, declared) for k, shape in enumerate(shapes)]
    loss = eg.sum(case.build(*variables) * weights)

    def ref(**arrays: Any) -> Any:
        return anp.sum(case.ref(*(arrays[f"A{k}"] for k in range(len(shapes)))) * weights)

    return loss, ref


@pytest.mark.parametrize("declared", [True, False], ids=["declared", "undeclared"])
@pytest.mark.parametrize(("case", "shapes"), _op_params())
def test_elementwise_gradient(case: OpCase, shapes: tuple[Shape, ...], declared: bool) -> None:
    arrays = _inputs(case, shapes, seed=len(case.name) + 7 * len(shapes[0]))
    loss, ref = _loss_of(case, shapes, declared)
    check_gradients(loss, ref, arrays, list(arrays))


@pytest.mark.parametrize("case", ELEMENTWISE_CASES.values(), ids=lambda c: c.name)
def test_elementwise_forward_shape_and_value(case: OpCase) -> None:
    shapes = case.shapes[min(1, len(case.shapes) - 1)]
    arrays = _inputs(case, shapes, seed=3)
    expr = case.build(*(eg.var(name) for name in arrays))
    value = expr(**arrays)
    expected = np.asarray(case.ref(*arrays.values()))
    assert value.shape == expected.shape
    np.testing.assert_allclose(value, expected, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("case", ELEMENTWISE_CASES.values(), ids=lambda c: c.name)
def test_elementwise_forward_makes_a_new_array(case: OpCase) -> None:
    """Programs hand a step's result to the caller as it is when the step made it."""
    shapes = case.shapes[min(1, len(case.shapes) - 1)]
    arrays = _inputs(case, shapes, seed=4)
    node = case.build(*(eg.var(name) for name in arrays))
    assert isinstance(node, Map) and node.op is ELEMENTWISE[case.name]
    args = [arrays[a.name] if isinstance(a, eg.Var) else a.value for a in node.args]
    result = node.op.forward(np, *args)
    for given in args:
        assert result is not given
        assert not np.shares_memory(result, given)


def test_products_of_numbers_fold() -> None:
    X = eg.var("X", (3,))
    assert 0.5 * (2 * X) is X
    assert 3 * (X * 2) is 6.0 * X
    assert (2 * X) * 0.25 is 0.5 * X
    np.testing.assert_allclose((3 * (X * 2))(X=np.arange(3.0)), [0.0, 6.0, 12.0])
    # The seed layer: the mean's 1/B and the square's 2 cancel, leaving relu(Y) selected by [Y > 0].
    W, b = eg.var("W", (3, 5)), eg.var("b", (5,))
    Xb = eg.var("Xb", (2, 3))
    loss = eg.mean(eg.sum(eg.relu(Xb @ W + b) ** 2, axis=1))
    plan = eg.compile(list(eg.grad(loss, [W, Xb, b]))).plan()
    operations = [step.operation for step in plan.steps]
    assert operations.count("multiply") == 0 and operations.count("masked") == 1


@pytest.mark.parametrize(("case", "shapes"), _op_params())
def test_elementwise_float32(case: OpCase, shapes: tuple[Shape, ...]) -> None:
    """float32 in gives float32 values and gradients, close to the float64 results."""
    arrays = _inputs(case, shapes, seed=5)
    loss64, _ = _loss_of(case, shapes, declared=False)
    loss32, _ = _loss_of(case, shapes, declared=False, dtype=np.float32)
    arrays32 = {k: v.astype(np.float32) for k, v in arrays.items()}
    value = loss32(**arrays32)
    assert value.dtype == np.float32
    np.testing.assert_allclose(value, loss64(**arrays), rtol=1e-4, atol=1e-4)
    grads32 = eg.evaluate(list(eg.grad(loss32, list(arrays))), **arrays32)
    grads64 = eg.evaluate(list(eg.grad(loss64, list(arrays))), **arrays)
    for g32, g64 in zip(grads32, grads64, strict=True):
        assert g32.dtype == np.float32
        np.testing.assert_allclose(g32, g64, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("name", sorted(MASK_CASES))
def test_masks_are_exact_and_have_zero_derivative(name: str) -> None:
    reference, arity = MASK_CASES[name]
    op = ELEMENTWISE[name]
    rng = np.random.default_rng(11)
    # Values: integers, so that ties and zeros occur.
    ints = {f"A{k}": rng.integers(-2, 3, size=(4, 5)).astype(np.float64) for k in range(arity)}
    variables = [eg.var(n) for n in ints]
    mask = eg.Map(op, variables, None)
    np.testing.assert_array_equal(mask(**ints), reference(*ints.values()))
    # Derivative: away from ties the mask is a constant factor, so
    # d/dA0 sum(mask * A0**2) = mask * 2 A0 (autograd sees the mask as a constant too).
    arrays = {f"A{k}": sample(rng, (4, 5), "real", k) for k in range(arity)}
    loss = eg.sum(mask * variables[0] ** 2) + eg.sum(variables[-1] * 0.0)
    constant = reference(*arrays.values())
    check_gradients(
        loss,
        lambda **a: anp.sum(constant * a["A0"] ** 2) + anp.sum(a[f"A{arity - 1}"] * 0.0),
        arrays,
        ["A0"] if name == "equal" else list(arrays),
    )


# --- power: every exponent branch ------------------------------------------------------------


@pytest.mark.parametrize(
    ("exponent", "domain"),
    [
        (2, "real"),
        (3, "real"),
        (1, "real"),
        (0, "real"),
        (-2, "real"),
        (0.5, "positive"),
        (-1.5, "positive"),
        (2.5, "positive"),
        (1.0, "positive"),
    ],
)
@pytest.mark.parametrize("declared", [True, False], ids=["declared", "undeclared"])
def test_power_exponents(exponent: float, domain: str, declared: bool) -> None:
    rng = np.random.default_rng(17)
    arrays = {"X": sample(rng, (2, 3), domain, 0)}
    weights = rng.normal(size=(2, 3))
    x = declare("X", (2, 3), declared)
    loss = eg.sum(x**exponent * weights)
    check_gradients(loss, lambda X: anp.sum(X**exponent * weights), arrays, ["X"])


def test_power_of_a_composite_and_reflected_scalars() -> None:
    rng = np.random.default_rng(2)
    arrays = {"X": rng.normal(size=(3,)), "Y": rng.uniform(0.5, 2, size=(3,))}
    x, y = eg.var("X"), eg.var("Y")
    loss = eg.sum((2.0 - x * y) ** 3 / (1 + y) + 3 / y - (x - 1) ** 2)
    check_gradients(
        loss,
        lambda X, Y: anp.sum((2.0 - X * Y) ** 3 / (1 + Y) + 3 / Y - (X - 1) ** 2),
        arrays,
        ["X", "Y"],
    )


# --- reductions over axes ---------------------------------------------------------------------


def _lse(x: Any, axis: Any) -> Any:
    return anp.log(anp.sum(anp.exp(x), axis=axis))


def _softmax(x: Any, axis: Any) -> Any:
    e = anp.exp(x)
    return e / anp.sum(e, axis=axis, keepdims=True)


def _log_softmax(x: Any, axis: Any) -> Any:
    return x - anp.log(anp.sum(anp.exp(x), axis=axis, keepdims=True))


AXIS_FUNCTIONS: dict[str, tuple[Callable[..., Any], Callable[..., Any]]] = {
    "sum": (eg.sum, lambda x, axis: anp.sum(x, axis=axis)),
    "mean": (eg.mean, lambda x, axis: anp.mean(x, axis=axis)),
    "softmax": (eg.softmax, _softmax),
    "log_softmax": (eg.log_softmax, _log_softmax),
    "logsumexp": (eg.logsumexp, _lse),
}
AXES: list[Any] = [None, 0, 1, -1, -3, (0, 2), (-1, 0), (2, 1, 0), (1,), ()]


def _reduced_shape(shape: Shape, axis: Any, name: str) -> Shape:
    if name in ("softmax", "log_softmax"):
        return shape
    return np.sum(np.zeros(shape), axis=axis).shape


@pytest.mark.parametrize("declared", [True, False], ids=["declared", "undeclared"])
@pytest.mark.parametrize("axis", AXES, ids=repr)
@pytest.mark.parametrize("name", sorted(AXIS_FUNCTIONS))
def test_axis_variants(name: str, axis: Any, declared: bool) -> None:
    build, reference = AXIS_FUNCTIONS[name]
    shape = (2, 3, 4)
    rng = np.random.default_rng(23)
    arrays = {"X": rng.normal(size=shape)}
    weights = rng.normal(size=_reduced_shape(shape, axis, name))
    x = declare("X", shape, declared)
    out = build(x, axis)
    assert out(**arrays).shape == weights.shape
    loss = eg.sum(out * weights)
    check_gradients(loss, lambda X: anp.sum(reference(X, axis) * weights), arrays, ["X"])


def test_default_axes() -> None:
    """softmax and log_softmax default to the last axis; the others to all axes."""
    x = np.random.default_rng(1).normal(size=(2, 3))
    X = eg.var("X")
    np.testing.assert_allclose(eg.softmax(X)(X=x), _softmax(x, -1))
    np.testing.assert_allclose(eg.log_softmax(X)(X=x), _log_softmax(x, -1))
    np.testing.assert_allclose(eg.logsumexp(X)(X=x), _lse(x, None))
    np.testing.assert_allclose(eg.sum(X)(X=x), np.sum(x))
    np.testing.assert_allclose(eg.mean(X)(X=x), np.mean(x))
    np.testing.assert_allclose(X.sum(0)(X=x), np.sum(x, axis=0))
    np.testing.assert_allclose(X.mean(axis=1)(X=x), np.mean(x, axis=1))


@pytest.mark.parametrize("axis", [None, -1, (0, 2)], ids=repr)
@pytest.mark.parametrize("name", sorted(AXIS_FUNCTIONS))
def test_axis_functions_keep_float32(name: str, axis: Any) -> None:
    build, _ = AXIS_FUNCTIONS[name]
    x = np.random.default_rng(24).normal(size=(2, 3, 4))
    weights = np.random.default_rng(25).normal(size=_reduced_shape(x.shape, axis, name))
    X = eg.var("X")
    loss32 = eg.sum(build(X, axis) * weights.astype(np.float32))
    loss64 = eg.sum(build(X, axis) * weights)
    value, grad = eg.evaluate([loss32, eg.grad(loss32, X)], X=x.astype(np.float32))
    assert value.dtype == np.float32 and grad.dtype == np.float32
    np.testing.assert_allclose(value, loss64(X=x), rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(grad, eg.grad(loss64, X)(X=x), rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("name", sorted(REDUCTION_CASES))
@pytest.mark.parametrize("shape", [(5,), (2, 3), ()], ids=str)
def test_registered_reductions(name: str, shape: Shape) -> None:
    build, reference = REDUCTION_CASES[name]
    rng = np.random.default_rng(4)
    arrays = {"X": rng.normal(size=shape)}
    loss = build(eg.var("X", shape))
    check_gradients(loss, lambda X: reference(X, None), arrays, ["X"])


@pytest.mark.parametrize("name", sorted(SHIFT_CASES))
@pytest.mark.parametrize("axis", [None, -1, (0, 2)], ids=repr)
def test_shifts_are_exact_and_have_zero_derivative(name: str, axis: Any) -> None:
    reference = SHIFT_CASES[name]
    x = np.random.default_rng(12).normal(size=(2, 3, 4))
    x[0, 0, :] = [np.inf, 1.0, -np.inf, 2.0]  # the shift is the largest finite entry, 2
    x[1, 2, :] = -np.inf  # no finite entry: the shift is 0
    x[1, 1, :] = [np.nan, 3.0, np.inf, 1.0]
    X = eg.var("X", x.shape)
    shift = ops.reduction(REDUCTIONS[name], X, ops._axis_tuple(axis))
    np.testing.assert_array_equal(shift(X=x), reference(x, axis))
    # Zero by design, not the maximum's derivative (which is no oracle for it): the
    # functions using the shift are checked against autograd and finite differences.
    weights = np.random.default_rng(13).normal(size=np.shape(reference(x, axis)))
    point = np.random.default_rng(14).normal(size=x.shape)
    loss = eg.sum(shift * weights)
    np.testing.assert_array_equal(eg.grad(loss, X)(X=point), np.zeros(x.shape))
    tangent = eg.jvp(shift, {X: np.ones(x.shape)})
    np.testing.assert_array_equal(tangent(X=point), np.zeros(np.shape(weights)))


def test_softmax_sums_to_one_along_its_axes() -> None:
    x = np.random.default_rng(8).normal(size=(2, 3, 4)) * 5
    X = eg.var("X")
    for axis in [0, -1, (0, 2)]:
        np.testing.assert_allclose(np.sum(eg.softmax(X, axis)(X=x), axis=axis), 1.0)


# --- stability -----------------------------------------------------------------------------------


@pytest.mark.parametrize("offset", [1000.0, -1000.0])
@pytest.mark.parametrize("declared", [True, False], ids=["declared", "undeclared"])
def test_softmax_and_logsumexp_are_stable(offset: float, declared: bool) -> None:
    rng = np.random.default_rng(5)
    small = rng.normal(size=(3, 4))
    x = small + offset
    weights = rng.normal(size=(3, 4))
    X = declare("X", (3, 4), declared)
    with np.errstate(all="raise"):  # no overflow, underflow-to-nan or invalid operation
        lse = eg.logsumexp(X, -1)(X=x)
        soft = eg.softmax(X)(X=x)
        log_soft = eg.log_softmax(X)(X=x)
        d_lse = eg.grad(eg.sum(eg.logsumexp(X, -1)), X)(X=x)
        d_soft = eg.grad(eg.sum(eg.softmax(X) * weights), X)(X=x)
        d_log_soft = eg.grad(eg.sum(eg.log_softmax(X) * weights), X)(X=x)
    for value in (lse, soft, log_soft, d_lse, d_soft, d_log_soft):
        assert np.all(np.isfinite(value))
    # All of these are shift-invariant, or shift exactly: compare with the small inputs.
    np.testing.assert_allclose(lse, offset + _lse(small, -1), rtol=1e-14)
    np.testing.assert_allclose(soft, _softmax(small, -1), rtol=1e-12)
    np.testing.assert_allclose(log_soft, _log_softmax(small, -1), atol=1e-10)
    np.testing.assert_allclose(d_lse, _softmax(small, -1), rtol=1e-12)
    expected_soft = autograd.grad(lambda s: anp.sum(_softmax(s, -1) * weights))(small)
    expected_log_soft = autograd.grad(lambda s: anp.sum(_log_softmax(s, -1) * weights))(small)
    np.testing.assert_allclose(d_soft, expected_soft, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(d_log_soft, expected_log_soft, rtol=1e-10, atol=1e-12)
    numeric = finite_difference(eg.sum(eg.softmax(X) * weights), {"X": x}, "X")
    np.testing.assert_allclose(d_soft, numeric, atol=1e-5)


def test_log_softmax_with_a_huge_spread() -> None:
    """exp(-2000) underflows to 0: a naive log(softmax) would give -inf; this must not."""
    x = np.array([1000.0, 0.0, -1000.0])
    weights = np.array([0.5, -1.0, 2.0])
    X = eg.var("X", (3,))
    np.testing.assert_allclose(eg.log_softmax(X)(X=x), [0.0, -1000.0, -2000.0], atol=1e-12)
    np.testing.assert_allclose(eg.logsumexp(X)(X=x), 1000.0, rtol=1e-15)
    grad = eg.grad(eg.sum(eg.log_softmax(X) * weights), X)(X=x)
    shift = np.max(x)  # a constant: log_softmax(x) = (x - c) - log(sum(exp(x - c)))
    expected = autograd.grad(lambda v: anp.sum(_log_softmax(v - shift, None) * weights))(x)
    np.testing.assert_allclose(grad, expected, atol=1e-12)
    numeric = finite_difference(eg.sum(eg.log_softmax(X) * weights), {"X": x}, "X")
    np.testing.assert_allclose(grad, numeric, atol=1e-5)


def _stable_sigmoid(v: Any) -> Any:
    return anp.exp(-anp.logaddexp(0.0, -v))


def test_sigmoid_is_stable_at_large_magnitudes() -> None:
    x = np.array([-1000.0, -5.0, 0.0, 5.0, 50.0, 1000.0])
    X = eg.var("X")
    with np.errstate(over="raise", invalid="raise"):
        value = eg.sigmoid(X)(X=x)
        grad = eg.grad(eg.sum(eg.sigmoid(X)), X)(X=x)
    assert np.all(np.isfinite(value)) and np.all(np.isfinite(grad))
    np.testing.assert_allclose(
        value, [0.0, 1 / (1 + np.exp(5.0)), 0.5, 1 / (1 + np.exp(-5.0)), 1, 1]
    )
    expected = autograd.grad(lambda v: anp.sum(_stable_sigmoid(v)))(x)
    np.testing.assert_allclose(grad, expected, rtol=1e-12, atol=1e-15)
    numeric = finite_difference(eg.sum(eg.sigmoid(X)), {"X": x}, "X")
    np.testing.assert_allclose(grad, numeric, atol=1e-7)


def test_sigmoid_keeps_relative_accuracy_in_the_left_tail() -> None:
    """sigmoid(-50) = 1.9e-22 is a normal float64; so is its derivative, and log of it is -50."""
    x = np.array([-20.0, -40.0, -50.0, -700.0])
    X = eg.var("X")
    exact = np.exp(x) / (1 + np.exp(x))  # no cancellation for x < 0
    np.testing.assert_allclose(eg.sigmoid(X)(X=x), exact, rtol=1e-12)
    np.testing.assert_allclose(eg.log(eg.sigmoid(X))(X=x), x - np.log1p(np.exp(x)), rtol=1e-12)
    # Closed form σ'(x) = e^x / (1 + e^x)², exact for x < 0. autograd's logaddexp gradient
    # is not an oracle here: it rounds σ'(-50) to 0.
    expected = np.exp(x) / (1 + np.exp(x)) ** 2
    np.testing.assert_allclose(eg.grad(eg.sum(eg.sigmoid(X)), X)(X=x), expected, rtol=1e-10)
    # Finite differences of the summed loss carry ~1e-19 of rounding from the -20 entry.
    numeric = finite_difference(eg.sum(eg.sigmoid(X)), {"X": x}, "X")
    np.testing.assert_allclose(expected, numeric, rtol=1e-3, atol=1e-18)


# --- kinks: documented conventions -----------------------------------------------------------


KINK_INPUT = np.array([-1.5, 0.0, 2.0, 0.0])


def test_relu_derivative_at_zero_is_zero() -> None:
    X = eg.var("X")
    grad = eg.grad(eg.sum(eg.relu(X)), X)(X=KINK_INPUT)
    np.testing.assert_array_equal(grad, [0.0, 0.0, 1.0, 0.0])  # documented: relu'(0) = 0
    # autograd's where-form of relu has the same convention (JAX's and torch's) ...
    expected = autograd.grad(lambda x: anp.sum(anp.where(x > 0, x, 0.0)))(KINK_INPUT)
    np.testing.assert_array_equal(grad, expected)
    # ... while its maximum(x, 0) splits the tie; einsgrad's maximum does the same.
    split = autograd.grad(lambda x: anp.sum(anp.maximum(x, 0.0)))(KINK_INPUT)
    np.testing.assert_array_equal(eg.grad(eg.sum(eg.maximum(X, 0.0)), X)(X=KINK_INPUT), split)
    assert split[1] == 0.5


def test_abs_derivative_at_zero_is_zero() -> None:
    X = eg.var("X")
    grad = eg.grad(eg.sum(eg.abs(X)), X)(X=KINK_INPUT)
    np.testing.assert_array_equal(grad, [-1.0, 0.0, 1.0, 0.0])  # documented: |x|'(0) = 0
    np.testing.assert_array_equal(grad, autograd.grad(lambda x: anp.sum(anp.abs(x)))(KINK_INPUT))
    # The symmetric difference quotient of |x| at 0 is 0 as well.
    numeric = finite_difference(eg.sum(eg.abs(X)), {"X": KINK_INPUT}, "X")
    np.testing.assert_allclose(grad, numeric, atol=ATOL)


@pytest.mark.parametrize(("op", "ref"), [(eg.maximum, anp.maximum), (eg.minimum, anp.minimum)])
def test_ties_split_evenly(op: Callable[..., Any], ref: Callable[..., Any]) -> None:
    a = np.array([1.0, 2.0, -3.0, 0.5])
    b = np.array([1.0, 1.0, -3.0, 4.0])
    A, B = eg.var("A"), eg.var("B")
    loss = eg.sum(op(A, B))
    da, db = eg.evaluate(list(eg.grad(loss, [A, B])), A=a, B=b)
    tie = a == b
    np.testing.assert_array_equal(da[tie], 0.5)  # documented: ties split 0.5/0.5
    np.testing.assert_array_equal(db[tie], 0.5)
    np.testing.assert_array_equal(da + db, 1.0)
    expected = autograd.grad(lambda x, y: anp.sum(ref(x, y)), (0, 1))(a, b)
    np.testing.assert_array_equal(da, expected[0])
    np.testing.assert_array_equal(db, expected[1])
    # Moving one argument of a tie moves the result half as fast on average: the
    # central difference quotient is exactly the split.
    for name, got in (("A", da), ("B", db)):
        numeric = finite_difference(loss, {"A": a, "B": b}, name)
        np.testing.assert_allclose(got, numeric, atol=ATOL)
    # The same variable on both sides: both halves come back.
    np.testing.assert_array_equal(eg.grad(eg.sum(op(A, A)), A)(A=a), np.ones_like(a))


@pytest.mark.parametrize(("op", "ref"), [(eg.maximum, anp.maximum), (eg.minimum, anp.minimum)])
def test_a_nan_argument_gets_no_cotangent(op: Callable[..., Any], ref: Callable[..., Any]) -> None:
    """Where a_i or b_i is NaN the result is NaN and neither argument gets a cotangent, as
    in autograd and JAX; b̄ = ȳ − ā gave all of it to b. (Central differences are NaN at
    NaN: autograd is the oracle here, and tests/test_stability.py compares with JAX.)"""
    a = np.array([np.nan, 1.0, np.nan, 2.0, 3.0])
    b = np.array([1.0, np.nan, np.nan, 3.0, 2.0])
    A, B = eg.var("A"), eg.var("B")
    da, db = eg.evaluate(list(eg.grad(eg.sum(op(A, B)), [A, B])), A=a, B=b)
    expected = autograd.grad(lambda x, y: anp.sum(ref(x, y)), (0, 1))(a, b)
    np.testing.assert_array_equal(da, expected[0])
    np.testing.assert_array_equal(db, expected[1])
    np.testing.assert_array_equal(da[:3], 0.0)
    np.testing.assert_array_equal(db[:3], 0.0)


def test_tie_with_a_broadcast_constant() -> None:
    x = np.array([[0.0, 1.0], [-1.0, 0.0]])
    X = eg.var("X")
    grad = eg.grad(eg.sum(eg.minimum(X, 0.0) * 3.0), X)(X=x)
    expected = autograd.grad(lambda v: anp.sum(anp.minimum(v, 0.0) * 3.0))(x)
    np.testing.assert_array_equal(grad, expected)
    np.testing.assert_array_equal(grad, [[1.5, 0.0], [3.0, 1.5]])


# --- second derivatives -----------------------------------------------------------------------


def test_grad_of_grad_of_tanh_cubed() -> None:
    """d/dx sum(grad(sum(tanh(x)**3), x) * v) against autograd's nested grad and FD."""
    rng = np.random.default_rng(6)
    arrays = {"X": rng.normal(size=(3, 2)), "V": rng.normal(size=(3, 2))}
    X, V = eg.var("X"), eg.var("V")
    inner = eg.grad(eg.sum(eg.tanh(X) ** 3), X)
    hvp = eg.sum(inner * V)

    def ref(X: Any, V: Any) -> Any:
        return anp.sum(autograd.grad(lambda x: anp.sum(anp.tanh(x) ** 3))(X) * V)

    check_gradients(hvp, ref, arrays, ["X", "V"])


@pytest.mark.parametrize("case", ELEMENTWISE_CASES.values(), ids=lambda c: c.name)
def test_hessian_vector_products(case: OpCase) -> None:
    """grad(sum(grad(L, args) · v), args) for every primitive, vs nested autograd and FD."""
    shapes = case.shapes[1] if len(case.shapes) > 1 else case.shapes[0]
    arrays = _inputs(case, shapes, seed=13)
    names = list(arrays)
    rng = np.random.default_rng(14)
    directions = {f"V{k}": rng.normal(size=np.shape(arrays[n])) for k, n in enumerate(names)}
    loss, ref = _loss_of(case, shapes, declared=False)
    grads = eg.grad(loss, names)
    hvp = eg.sum(grads[0] * eg.var("V0"))
    for k in range(1, len(names)):
        hvp = hvp + eg.sum(grads[k] * eg.var(f"V{k}"))

    def ref_hvp(**point: Any) -> Any:
        first = autograd_gradients_traced(ref, point, names)
        return sum(anp.sum(g * point[f"V{k}"]) for k, g in enumerate(first))

    check_gradients(hvp, ref_hvp, {**arrays, **directions}, names)


@pytest.mark.parametrize("name", sorted(AXIS_FUNCTIONS))
def test_second_derivatives_of_axis_functions(name: str) -> None:
    build, reference = AXIS_FUNCTIONS[name]
    rng = np.random.default_rng(21)
    arrays = {"X": rng.normal(size=(2, 3)), "V": rng.normal(size=(2, 3))}
    weights = rng.normal(size=_reduced_shape((2, 3), -1, name))
    X, V = eg.var("X", (2, 3)), eg.var("V", (2, 3))
    first = eg.grad(eg.sum(eg.tanh(build(X, -1)) * weights), X)
    hvp = eg.sum(first * V)

    def ref(X: Any, V: Any) -> Any:
        g = autograd.grad(lambda x: anp.sum(anp.tanh(reference(x, -1)) * weights))(X)
        return anp.sum(g * V)

    check_gradients(hvp, ref, arrays, ["X", "V"])


def test_third_derivative() -> None:
    X = eg.var("X", ())
    third = eg.grad(eg.grad(eg.grad(eg.tanh(X) * eg.exp(X), X), X), X)
    x = np.array(0.3)
    expected = autograd.grad(autograd.grad(autograd.grad(lambda v: anp.tanh(v) * anp.exp(v))))(x)
    np.testing.assert_allclose(third(X=x), expected, rtol=1e-12)
    second = eg.grad(eg.grad(eg.tanh(X) * eg.exp(X), X), X)
    numeric = finite_difference(second, {"X": x}, "X")
    np.testing.assert_allclose(third(X=x), numeric, rtol=1e-6)


# --- matmul and .T ----------------------------------------------------------------------------


MATMUL_SHAPES: list[tuple[Shape, Shape]] = [
    ((3,), (3,)),
    ((3,), (3, 4)),
    ((2, 3), (3,)),
    ((2, 3), (3, 4)),
    ((5, 2, 3), (3, 4)),
    ((2, 3), (5, 3, 4)),
    ((5, 2, 3), (5, 3, 4)),
    ((1, 2, 3), (5, 3, 4)),
    ((3,), (5, 3, 4)),
    ((5, 2, 3), (3,)),
    ((2, 1, 2, 3), (4, 3, 2)),
]


@pytest.mark.parametrize(("sa", "sb"), MATMUL_SHAPES, ids=str)
def test_matmul_matches_numpy(sa: Shape, sb: Shape) -> None:
    rng = np.random.default_rng(31)
    arrays = {"A": rng.normal(size=sa), "B": rng.normal(size=sb)}
    expected = arrays["A"] @ arrays["B"]
    A, B = eg.var("A", sa), eg.var("B", sb)
    product = A @ B
    assert product.shape == expected.shape
    value = product(**arrays)
    assert value.shape == expected.shape
    np.testing.assert_allclose(value, expected, rtol=1e-12)
    np.testing.assert_allclose(eg.matmul(A, B)(**arrays), expected, rtol=1e-12)
    weights = rng.normal(size=expected.shape)
    check_gradients(
        eg.sum(product * weights),
        lambda A, B: anp.sum(anp.matmul(A, B) * weights),
        arrays,
        ["A", "B"],
    )


@pytest.mark.parametrize(
    ("sa", "sb"), [s for s in MATMUL_SHAPES if len(s[0]) > 1 and len(s[1]) > 1], ids=str
)
def test_matmul_with_undeclared_shapes(sa: Shape, sb: Shape) -> None:
    rng = np.random.default_rng(32)
    arrays = {"A": rng.normal(size=sa), "B": rng.normal(size=sb)}
    weights = rng.normal(size=(arrays["A"] @ arrays["B"]).shape)
    A, B = eg.var("A"), eg.var("B")
    check_gradients(
        eg.sum((A @ B) * weights),
        lambda A, B: anp.sum(anp.matmul(A, B) * weights),
        arrays,
        ["A", "B"],
    )


def test_matmul_with_numpy_arrays_on_either_side() -> None:
    rng = np.random.default_rng(33)
    m = rng.normal(size=(4, 3))
    x = rng.normal(size=(3, 2))
    X = eg.var("X", (3, 2))
    left = m @ X  # numpy defers to the expression
    assert isinstance(left, eg.Expr)
    np.testing.assert_allclose(left(X=x), m @ x)
    np.testing.assert_allclose((X @ m[:2])(X=x), x @ m[:2])
    check_gradients(eg.sum(eg.tanh(m @ X)), lambda X: anp.sum(anp.tanh(m @ X)), {"X": x}, ["X"])


@pytest.mark.parametrize("declared", [True, False], ids=["declared", "undeclared"])
def test_transpose(declared: bool) -> None:
    rng = np.random.default_rng(34)
    arrays = {"A": rng.normal(size=(2, 3)), "B": rng.normal(size=(2, 4))}
    A, B = declare("A", (2, 3), declared), declare("B", (2, 4), declared)
    np.testing.assert_array_equal(A.T(A=arrays["A"]), arrays["A"].T)
    np.testing.assert_array_equal(eg.transpose(A)(A=arrays["A"]), arrays["A"].T)
    if declared:
        assert A.T.shape == (3, 2)
    weights = rng.normal(size=(3, 4))
    loss = eg.sum((A.T @ B) * weights) + eg.sum(eg.tanh((A @ A.T).T) ** 2)
    check_gradients(
        loss,
        lambda A, B: anp.sum((A.T @ B) * weights) + anp.sum(anp.tanh((A @ A.T).T) ** 2),
        arrays,
        ["A", "B"],
    )


# --- declared and undeclared shapes agree -------------------------------------------------------


def test_declared_and_undeclared_shapes_give_identical_results() -> None:
    rng = np.random.default_rng(41)
    arrays = {"X": rng.normal(size=(4, 3)), "W": rng.normal(size=(3, 2)), "b": rng.normal(size=2)}

    def model(X: eg.Expr, W: eg.Expr, b: eg.Expr) -> eg.Expr:
        hidden = eg.sigmoid(X @ W + b)
        return eg.mean(eg.log_softmax(hidden, axis=0) ** 2) + eg.logsumexp(hidden, axis=(0, 1))

    results = []
    for declared in (True, False):
        variables = [declare(n, a.shape, declared) for n, a in arrays.items()]
        loss = model(*variables)
        results.append(eg.evaluate([loss, *eg.grad(loss, variables)], **arrays))
    for with_shapes, without in zip(*results, strict=True):
        np.testing.assert_allclose(with_shapes, without, rtol=1e-13, atol=1e-15)


# --- builders: factors of 1, identity einsums and identity unbroadcasts leave no node -------


def test_a_factor_of_one_leaves_the_einsum() -> None:
    x, A = eg.var("x", (3,)), eg.var("A", (3, 4))
    assert eg.einsum("i,->i", x, 1.0) is x
    assert eg.einsum("i,,ij->j", x, 1, A) is eg.einsum("i,ij->j", x, A)
    scaled = eg.einsum("i,->i", x, 2.0)
    assert isinstance(scaled, Einsum) and scaled.spec.text == "i,->i"
    # 1+0j is kept: in numpy it makes the result complex.
    complex_one = eg.einsum("i,->i", x, 1 + 0j)
    assert isinstance(complex_one, Einsum) and len(complex_one.operands) == 2
    assert eg.einsum(",->", 1.0, 1.0) is eg.as_expr(1.0)
    ones = ops._generalized("->ab", eg.as_expr(1.0), (2, 3))  # the one operand stays
    assert isinstance(ones, Einsum) and len(ones.operands) == 1
    np.testing.assert_array_equal(ones.eval(), np.ones((2, 3)))


def test_an_identity_einsum_is_its_operand() -> None:
    A, M, row = eg.var("A", (3, 4)), eg.var("M", (3, 3)), eg.var("row", (1, 4))
    assert eg.einsum("ij->ij", A) is A
    assert eg.einsum("...->...", A) is A
    assert isinstance(eg.einsum("ij->ji", A), Einsum)
    assert isinstance(ops._generalized("ii->ii", M, M), Einsum)  # zero off the diagonal
    assert isinstance(ops._generalized("ij->ij", row, (3, 4)), Einsum)  # a broadcast


def test_an_unbroadcast_to_a_provably_equal_shape_is_the_cotangent() -> None:
    t, s = eg.var("t"), eg.var("s", ())
    cotangent = ops._generalized("->...", s, eg.relu(t)) * eg.sigmoid(t) * 2
    assert ops.unbroadcast(cotangent, t) is cotangent
    assert ops.unbroadcast(cotangent, eg.tanh(t) ** 2) is cotangent
    # x + y may broadcast x, so a cotangent of x + y's shape is summed back to x's.
    x, y = eg.var("x"), eg.var("y")
    summed = ops.unbroadcast(ops._generalized("->...", s, x + y) * 2, x)
    assert isinstance(summed, Einsum) and summed.like is x
    value = summed(s=1.5, x=np.ones(3), y=np.ones((2, 3)))
    np.testing.assert_array_equal(value, np.full(3, 6.0))


def test_a_shapeless_seed_is_one_only_for_a_provable_scalar() -> None:
    x = eg.var("x")
    assert "ones_like" not in str(eg.grad(eg.sum(x * x), x))
    assert "ones_like" not in str(eg.grad(eg.logsumexp(x), x))
    unsure = eg.grad(x * 2, x)  # a scalar only if x is one: evaluation checks
    assert "ones_like" in str(unsure)
    assert unsure(x=np.array(1.5)) == 2.0
    with pytest.raises(eg.GradError, match="scalar loss"):
        unsure(x=np.ones(3))


def _random_step(choice: int, u: eg.Expr, v: eg.Expr) -> eg.Expr:
    """One of the ways a node's shape follows from its arguments' (or does not)."""
    if choice == 0:
        return u + v
    if choice == 1:
        return u * v
    if choice == 2:
        return eg.relu(u) * 2
    if choice == 3:
        return eg.sum(u)
    if choice == 4:
        return ops._generalized("->...", eg.sum(v), u)
    return eg.where(np.array(True), u, 0.0)


def test_shape_witnesses_only_pair_nodes_of_equal_shape() -> None:
    """Random shapeless expressions: nodes with one witness evaluate to one shape."""
    rng = np.random.default_rng(51)
    shapes = {"a": (2, 3), "b": (3,), "c": (1, 3), "d": (2, 1), "s": ()}
    arrays = {name: rng.normal(size=shape) for name, shape in shapes.items()}
    for _ in range(20):
        nodes: list[eg.Expr] = [eg.var(name) for name in shapes]
        for _ in range(25):
            u, v = (nodes[k] for k in rng.integers(len(nodes), size=2))
            nodes.append(_random_step(int(rng.integers(6)), u, v))
        values = eg.evaluate(nodes, **arrays)
        by_witness: dict[int, set[tuple[int, ...]]] = {}
        for node, value in zip(nodes, values, strict=True):
            witness = ops.shape_witness(node)
            by_witness.setdefault(id(witness), set()).add(np.shape(value))
            if witness is ops.SCALAR:
                assert np.shape(value) == (), node
        assert all(len(found) == 1 for found in by_witness.values()), by_witness


def test_a_deep_shapeless_chain_needs_no_unbroadcast() -> None:
    x = eg.var("x")
    h = x
    for _ in range(3000):
        h = eg.tanh(h) * 1.5
    derived = eg.grad(eg.sum(h), x)
    # Compared by name, so that a failure message holds no repr of the deep DAG.
    kind = type(derived).__name__
    assert kind == "Map"  # no '...->...' around the last product
    assert np.shape(derived(x=np.full((2,), 0.1))) == (2,)


# --- numbers as expressions compute in float64 ------------------------------------------------

NUMBER_EXPRESSIONS: list[tuple[str, Callable[[], Any], float]] = [
    # (what, the expression, numpy's value of the same formula on float64(2))
    ("logsumexp(2)", lambda: eg.logsumexp(2), float(np.log(np.exp(np.float64(2))))),
    ("log_softmax(2)", lambda: eg.log_softmax(2, axis=None), 0.0),
    ("softmax(2)", lambda: eg.softmax(2, axis=None), 1.0),
    ("mean(2)", lambda: eg.mean(2), 2.0),
    ("sum(2)", lambda: eg.sum(2), 2.0),
    ("(-2)", lambda: eg.parse_expr("(-2)"), -2.0),
    ("as_expr(-2)", lambda: ops.as_expr(-2), -2.0),
]


@pytest.mark.parametrize(
    ("what", "build", "expected"), NUMBER_EXPRESSIONS, ids=[row[0] for row in NUMBER_EXPRESSIONS]
)
def test_a_number_as_an_expression_evaluates_to_float64(
    what: str, build: Callable[[], Any], expected: float
) -> None:
    value = np.asarray(build().eval())
    assert value.dtype == np.float64, what
    np.testing.assert_allclose(value, expected, rtol=1e-15)


def test_a_reduction_of_a_number_times_a_variable() -> None:
    X = eg.var("X")
    x = np.array([1.0, -2.0, 3.0])
    product = X * eg.logsumexp(2)
    np.testing.assert_allclose(product(X=x), x * 2.0, rtol=1e-15)
    grad = eg.grad(eg.sum(product), X)(X=x)
    np.testing.assert_allclose(grad, np.full(3, 2.0), rtol=1e-15)
    np.testing.assert_allclose(grad, autograd.grad(lambda x: anp.sum(x * 2.0))(x), rtol=1e-15)


# --- complex arguments: numpy's formula, or a refusal -----------------------------------------

COMPLEX_POINTS = np.array([0.5 + 0.5j, -1.0 + 2.0j, 3.0 - 0.25j, -0.5 - 4.0j])

# numpy's formula for each primitive that is defined on complex numbers.
COMPLEX_FORMULAS: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "exp": np.exp,
    "log": np.log,
    "sqrt": np.sqrt,
    "tanh": np.tanh,
    "sigmoid": lambda z: 1 / (1 + np.exp(-z)),
    "abs": np.abs,
}


@pytest.mark.parametrize("name", sorted(COMPLEX_FORMULAS))
def test_complex_arguments_follow_numpys_formula(name: str) -> None:
    Z = eg.var("Z")
    value = getattr(eg, name)(Z)(Z=COMPLEX_POINTS)
    expected = COMPLEX_FORMULAS[name](COMPLEX_POINTS)
    assert value.dtype == expected.dtype
    np.testing.assert_allclose(value, expected, rtol=1e-14)


def test_complex_sigmoid_derivative_is_the_holomorphic_one() -> None:
    """d sigmoid/dz = sigmoid(z)(1 − sigmoid(z)), checked by a complex central difference."""
    Z = eg.var("Z")
    z, h = COMPLEX_POINTS, 1e-6
    tangent = eg.jvp(eg.sigmoid(Z), {Z: np.ones_like(z)})(Z=z)
    formula = COMPLEX_FORMULAS["sigmoid"]
    np.testing.assert_allclose(tangent, (formula(z + h) - formula(z - h)) / (2 * h), rtol=1e-8)


@pytest.mark.parametrize(
    "build",
    [eg.relu, lambda z: eg.maximum(z, 0.0), lambda z: eg.minimum(z, 0.0)],
    ids=["relu", "maximum", "minimum"],
)
def test_ordering_primitives_refuse_complex_arguments(build: Callable[[Any], Any]) -> None:
    Z = eg.var("Z")
    with pytest.raises(eg.ShapeError, match=r"complex numbers have no order: Z complex128"):
        build(Z)(Z=COMPLEX_POINTS)


# --- an infinite cotangent through a zero mask -------------------------------------------------

SQRT_AT_KINKS = np.array([0.0, -1.0, 4.0])

# (name, einsgrad's f, JAX's f, where einsgrad deliberately differs from jax.grad)
KINK_COMPOSITIONS: list[
    tuple[str, Callable[[Any], Any], Callable[[Any], Any], dict[int, float]]
] = [
    ("sqrt(relu(x))", lambda x: eg.sqrt(eg.relu(x)), lambda x: jnp.sqrt(jax.nn.relu(x)), {}),
    # At -1 JAX multiplies ∞ by maximum's 0 mask (NaN); the select gives 0, as relu's does.
    (
        "sqrt(maximum(x, 0))",
        lambda x: eg.sqrt(eg.maximum(x, 0.0)),
        lambda x: jnp.sqrt(jnp.maximum(x, 0.0)),
        {1: 0.0},
    ),
    # At 0 JAX takes |x|'(0) = 1 (∞); einsgrad's |x|'(0) = 0 selects 0 (torch: 0 · ∞ = NaN).
    ("sqrt(abs(x))", lambda x: eg.sqrt(eg.abs(x)), lambda x: jnp.sqrt(jnp.abs(x)), {0: 0.0}),
]


@pytest.mark.parametrize(
    ("name", "build", "reference", "differs"),
    KINK_COMPOSITIONS,
    ids=[row[0] for row in KINK_COMPOSITIONS],
)
def test_an_infinite_cotangent_where_the_mask_is_zero_gives_zero(
    name: str,
    build: Callable[[Any], Any],
    reference: Callable[[Any], Any],
    differs: dict[int, float],
) -> None:
    """sqrt'(0) = ∞ meets a mask of 0: the cotangent is selected, not multiplied (0 · ∞)."""
    X = eg.var("X")
    grad = eg.grad(eg.sum(build(X)), X)(X=SQRT_AT_KINKS)
    with jax.enable_x64(True):
        expected = np.array(
            jax.vmap(jax.grad(reference))(jnp.asarray(SQRT_AT_KINKS)), dtype=np.float64
        )
    for position, value in differs.items():
        assert expected[position] != value  # the listed difference is real
        expected[position] = value
    np.testing.assert_allclose(grad, expected, rtol=1e-15)
    assert not np.isnan(grad).any()
    # Away from 0 the function is smooth: central differences agree there.
    for k in (1, 2):
        h = 1e-6
        point = SQRT_AT_KINKS.copy()
        point[k] += h
        up = np.sum(build(X)(X=point))
        point[k] -= 2 * h
        down = np.sum(build(X)(X=point))
        np.testing.assert_allclose(grad[k], (up - down) / (2 * h), rtol=1e-6, atol=1e-9)


def test_relu_still_explains_itself_as_a_mask() -> None:
    X = eg.var("X", (3,))
    text = str(eg.explain(eg.sum(eg.relu(X)), X))
    assert "∂L/∂X = [X > 0]" in text
    assert "masked" not in text
