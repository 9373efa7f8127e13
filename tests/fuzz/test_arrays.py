"""Fuzzed shapes and dtypes: what ``var`` accepts, what arrays evaluate to, huge sizes.

* ``var``'s shape (``strategies.shape_objects``): a sequence of whole, non-negative
  sizes of any rank gives exactly those sizes; anything else (floats, booleans,
  strings, negative sizes, sizes numpy cannot index) is an EinsgradError.
* Arrays of every dtype (``strategies.DTYPES``) and of rank up to 70 give numpy's value
  in the dtype einsgrad documents (numpy's; integers and booleans become float64), or
  an EinsgradError; masked arrays keep their mask or are refused, never silently lose it.
* Variables of huge declared sizes (over 10**12 bytes each) build, differentiate,
  print, cost and check symbolically, or raise an EinsgradError (the memory guard), but
  never reach numpy's allocator.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from hypothesis import event, given, note
from hypothesis import strategies as st

import einsgrad as eg
from fuzz.expressions import NUMPY_NATIVE, operations, reference, render
from fuzz.harness import attempt, expect_error, expect_value, fuzz_settings, printed
from fuzz.strategies import (
    DTYPES,
    ExpressionCase,
    ShapeObject,
    expression_cases,
    huge_shapes,
    shape_objects,
)

#: numpy indexes arrays with intp: a larger size could never be an array's.
LARGEST_SIZE = np.iinfo(np.intp).max
#: numpy's largest number of dimensions.
MAX_RANK = 64


@fuzz_settings(150)
@given(shape=shape_objects())
def test_var_takes_whole_sizes_and_refuses_the_rest(shape: ShapeObject) -> None:
    note(f"eg.var('X', {shape.value!r})")
    outcome = attempt("eg.var", lambda: eg.var("X", shape.value))
    meaning = shape.meaning
    if meaning is not None and len(meaning) > MAX_RANK:
        event("beyond numpy's rank: either answer")  # no array could ever be bound to it
        return
    if meaning is not None and all(0 <= d <= LARGEST_SIZE for d in meaning):
        variable = expect_value(outcome, f"var with shape {shape.value!r}")
        assert variable.shape == meaning, f"{shape.value!r} became {variable.shape}"
        assert all(type(d) is int for d in variable.shape)
    else:
        expect_error(outcome, f"var with shape {shape.value!r}")


@st.composite
def high_rank_cases(draw: st.DrawFn) -> tuple[str, tuple[int, ...]]:
    """An einsum over an array of rank 30-64 (numpy's einsum takes up to 52 labels)."""
    rank = draw(st.sampled_from([30, 32, 33, 40, 52, 53, 64]))
    letters = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
    if rank <= len(letters):
        term = letters[:rank]
        spec = f"{term}->{draw(st.sampled_from(['', term[::-1], term[: rank // 2]]))}"
    else:
        spec = draw(st.sampled_from(["...->...", "...", "a...->a..."]))
    shape = tuple(draw(st.sampled_from([1, 1, 1, 2])) for _ in range(rank))
    return spec, shape


def _numpy_or_none(action: Any) -> Any:
    try:
        with np.errstate(all="ignore"):
            return action()
    except Exception:
        return None


@fuzz_settings(40)
@given(case=high_rank_cases(), op=st.sampled_from(["einsum", "tanh", "sum", "grad"]))
def test_high_rank_arrays_give_numpys_value_or_an_einsgrad_error(
    case: tuple[str, tuple[int, ...]], op: str
) -> None:
    spec, shape = case
    note(f"{op} with spec {spec!r} on an array of rank {len(shape)}")
    x = np.full(shape, 0.5)
    X = eg.var("X")
    build = {
        "einsum": lambda: eg.einsum(spec, X),
        "tanh": lambda: eg.tanh(X),
        "sum": lambda: eg.sum(X),
        "grad": lambda: eg.grad(eg.sum(eg.tanh(X)), X),
    }[op]
    expected = _numpy_or_none(
        {
            "einsum": lambda: np.einsum(spec, x),
            "tanh": lambda: np.tanh(x),
            "sum": lambda: np.sum(x),
            "grad": lambda: 1 - np.tanh(x) ** 2,
        }[op]
    )
    built = attempt(f"building {op}", build)
    outcome = attempt(f"evaluating {op}", lambda: built.value(X=x)) if built.ok else built
    event(f"rank {len(shape)}: {'value' if outcome.ok else 'refused'}")
    if outcome.ok:
        assert expected is not None, f"{op} of rank {len(shape)}: a value where numpy refuses"
        np.testing.assert_allclose(outcome.value, expected, rtol=1e-12)


def _cast(array: np.ndarray, dtype: Any) -> np.ndarray:
    if dtype is object:
        return array.astype(object)
    if np.issubdtype(dtype, np.integer) or dtype is np.bool_:
        return np.round(array * 2).astype(dtype)  # small whole numbers, some zeros
    if np.issubdtype(dtype, np.complexfloating):
        return (array + 1j * array[::-1] if array.ndim else array + 0.5j).astype(dtype)
    return array.astype(dtype)


def einsgrad_dtype(dtype: Any) -> np.dtype[Any]:
    """The dtype einsgrad documents for arrays of ``dtype``: numpy's inexact dtypes stay;
    integers, booleans and (if taken at all) object arrays of numbers become float64."""
    if dtype is not object and np.issubdtype(dtype, np.inexact):
        return np.dtype(dtype)
    return np.dtype(np.float64)


#: Operations that numpy defines for complex numbers and einsgrad may be asked for.
COMPLEX_SAFE = {"var", "number", "+", "-", "*", "/", "@", "neg", "pos", "T", "transpose",
                "einsum", "exp", "log", "sqrt", "tanh", "sigmoid", "sum", "mean"}  # fmt: skip


def _tolerance(dtype: np.dtype[Any]) -> float:
    """Half precision and single precision round far more than double."""
    return {2: 5e-3, 4: 1e-5}.get(np.finfo(dtype).dtype.itemsize, 1e-9)


@fuzz_settings(80)
@given(case=expression_cases(), dtype=st.sampled_from(DTYPES), seed=st.integers(0, 2**32 - 1))
def test_every_dtype_gives_numpys_value_or_an_einsgrad_error(
    case: ExpressionCase, dtype: Any, seed: int
) -> None:
    if not case.valid or not case.shapes:
        return
    if np.dtype(dtype).kind == "c" and not operations(case.node) <= COMPLEX_SAFE:
        return
    text = render(case.node)
    rng = np.random.default_rng(seed)
    arrays = {n: _cast(rng.uniform(-1.5, 1.5, s), dtype) for n, s in case.shapes.items()}
    note(f"{text} on {np.dtype(dtype)} arrays of shapes {case.shapes}")
    outcome = attempt(text, lambda: eg.parse_expr(text)(**arrays), text)
    wanted = einsgrad_dtype(dtype)
    event(f"{np.dtype(dtype)}: {'value' if outcome.ok else 'refused'}")
    if not outcome.ok:
        return
    working = {n: a.astype(wanted) for n, a in arrays.items()}
    expected = _numpy_or_none(lambda: np.asarray(reference(case.node, working)))
    assert expected is not None, f"{text}: a value where numpy refuses on {wanted} arrays"
    value = np.asarray(outcome.value)
    if operations(case.node) <= NUMPY_NATIVE or value.dtype.kind == "c":
        assert value.dtype == einsgrad_dtype(expected.dtype), f"{value.dtype} != {expected.dtype}"
    tolerance = _tolerance(value.dtype)
    np.testing.assert_allclose(value, expected, rtol=tolerance, atol=tolerance, err_msg=text)


@fuzz_settings(30)
@given(case=expression_cases(max_steps=3), seed=st.integers(0, 2**32 - 1))
def test_masked_arrays_keep_their_mask_or_are_refused(case: ExpressionCase, seed: int) -> None:
    if not case.valid or not case.shapes:
        return
    text = render(case.node)
    rng = np.random.default_rng(seed)
    arrays = {
        n: np.ma.array(rng.uniform(0.5, 1.5, s), mask=rng.integers(0, 2, s).astype(bool))
        for n, s in case.shapes.items()
    }
    note(f"{text} on masked arrays {arrays}")
    outcome = attempt(text, lambda: eg.parse_expr(text)(**arrays), text)
    event("value" if outcome.ok else "refused")
    if outcome.ok:
        expected = _numpy_or_none(lambda: reference(case.node, arrays))
        masked = np.ma.getmaskarray(expected) if expected is not None else None
        if masked is not None and masked.any():
            assert isinstance(outcome.value, np.ma.MaskedArray), f"{text}: the mask was dropped"
            np.testing.assert_array_equal(np.ma.getmaskarray(outcome.value), masked)


def _huge_calls(X: eg.Var) -> dict[str, Any]:
    """Calls that need no array: each must give a result or an EinsgradError."""

    def loss() -> eg.Expr:
        return eg.sum(eg.tanh(X) * eg.tanh(X))

    return {
        "tanh": lambda: eg.tanh(X),
        "einsum": lambda: eg.einsum("...->", X),
        "matmul": lambda: X @ X.T if X.ndim == 2 else X @ X,
        "grad": lambda: eg.grad(loss(), X),
        "jacobian": lambda: eg.jacobian(eg.tanh(X), X),
        "hessian": lambda: eg.hessian(loss(), X),
        "hvp": lambda: eg.hvp(loss(), X, X),
        "cost": lambda: str(eg.cost(eg.grad(loss(), X))),
        "compile plan": lambda: str(eg.compile([eg.tanh(X), eg.grad(loss(), X)]).plan()),
        "simplify": lambda: eg.simplify(eg.grad(loss(), X)),
        "str": lambda: str(eg.grad(loss(), X)),
        "to_index": lambda: eg.to_index(eg.grad(loss(), X)),
        "explain": lambda: eg.explain(loss(), X).text,
        "equivalent": lambda: eg.equivalent(X * 2, X + X),
        "check": lambda: eg.check("2 * dY * X", "X * X", "X", shapes={"X": X.shape}),
    }


#: Calls that only build or describe expressions: with a declared shape numpy could
#: index, nothing stands in their way, however big the arrays would be.
SYMBOLIC = {"tanh", "einsum", "grad", "hvp", "cost", "simplify", "str", "to_index", "explain"}


@fuzz_settings(30)
@given(shape=huge_shapes(), call=st.sampled_from(sorted(_huge_calls(eg.var("X", (2, 2))))))
def test_huge_declared_sizes_stay_symbolic_or_are_refused(
    shape: tuple[int, ...], call: str
) -> None:
    note(f"{call} of X with shape {shape}")
    made = attempt("eg.var", lambda: eg.var("X", shape))
    if not made.ok:
        return  # a size numpy cannot index, refused
    outcome = attempt(call, _huge_calls(made.value)[call])
    event(f"{call}: {'result' if outcome.ok else type(outcome.error).__name__}")
    if call in SYMBOLIC:
        expect_value(outcome, f"{call} of a variable of shape {shape}")
    if outcome.ok and isinstance(outcome.value, eg.Expr):
        printed("str", lambda: str(outcome.value), 100)
