"""``eg.check``: every verdict on hand-derived gradient formulas, from the seed notes.

* ``correct``, proven symbolically or found numerically (the tests say which they expect);
* paper notation: ``dY·Wᵀ``, ``dL/dX = dL/dY · Wᵀ``, ``∂L/∂Y``, ``grad(Y)``, ``X^T``;
* ``shape``: seed 003's ``Wᵀ·dL/dY``, with each factor's shape and the right formula; the
  weight-layout confusion (out×in vs in×out); numpy's 1-D arrays; the transposed answer;
* ``value``: the right shape but wrong numbers, with the largest error and the right
  formula in the user's own notation (numpy in, numpy out; math in, math out);
* seed 002's handout slip ``dL/dx = dL/dy · xᵀ``;
* bad input raises EinsgradError subclasses;
* the formula ``check`` offers as the right one passes ``check`` itself.

The verdicts are checked against numbers computed here with numpy, not by einsgrad.
"""

from __future__ import annotations

import time
import tracemalloc
from typing import Any

import numpy as np
import pytest

import einsgrad as eg
from einsgrad.frontends.parse import MAX_LENGTH

# Seed 003: Y = X·W with X n×3 (n = 5 examples) and W 3×4 (in×out), so dL/dY is 5×4.
LINEAR = {"X": (5, 3), "W": (3, 4)}
BIAS = {"X": (5, 3), "W": (3, 4), "b": (4,)}
# Seed 003 with numpy 1-D arrays: x has shape (3,), so y = x @ W and dL/dy have shape (4,).
ONE_D = {"x": (3,), "W": (3, 4)}
# Seed 002: y = x·W with N = 1, D = 2, M = 3.
SEED002 = {"x": (1, 2), "W": (2, 3)}


def verdict(
    formula: str,
    expr: str = "X @ W",
    wrt: str = "X",
    shapes: dict[str, tuple[int, ...]] = LINEAR,
    output: str = "Y",
) -> eg.Verdict:
    return eg.check(formula, expr, wrt, shapes=shapes, output=output)


# --- correct -----------------------------------------------------------------------------------


def test_correct_symbolically() -> None:
    v = verdict("dY @ W.T")
    assert v.ok is True and bool(v)
    assert v.kind == "correct"
    assert v.method == "symbolic"
    assert v.expected == "dY @ W.T"
    assert v.max_error is None
    assert v.message == "correct (symbolically): ∂L/∂X = dY @ W.T"
    assert str(v) == v.message


def test_correct_for_W() -> None:
    v = verdict("X.T @ dY", wrt="W")
    assert (v.ok, v.kind, v.method, v.expected) == (True, "correct", "symbolic", "X.T @ dY")


def test_equivalent_rewrites_that_simplify_proves() -> None:
    # (W dYᵀ)ᵀ = dY Wᵀ: simplify normalizes both to the same einsum, so we expect "symbolic".
    for formula in ("(W @ dY.T).T", 'einsum("bj,ij->bi", dY, W)', "transpose(W @ transpose(dY))"):
        v = verdict(formula)
        assert (v.ok, v.kind, v.method) == (True, "correct", "symbolic"), formula


def test_equivalent_rewrite_found_numerically() -> None:
    # log(exp(·)) is the identity, which simplify does not know: we expect "numeric".
    v = verdict("log(exp(dY @ W.T))")
    assert (v.ok, v.kind) == (True, "correct")
    assert v.method == "numeric"
    assert v.message == "correct (numerically, on random inputs): ∂L/∂X = dY @ W.T"
    v = verdict("(dY @ W.T + X) - X")
    assert (v.ok, v.kind) == (True, "correct")
    assert v.method in ("symbolic", "numeric")


def test_the_numeric_comparison_is_sharp() -> None:
    # A factor of 1.001 is not "equal on random inputs".
    v = verdict("dY @ W.T * 1.001")
    assert (v.ok, v.kind) == (False, "value")
    assert v.max_error is not None and 0 < v.max_error < 0.1


def test_an_expression_object_works_like_a_string() -> None:
    X, W = eg.var("X", (5, 3)), eg.var("W", (3, 4))
    v = eg.check("dY @ W.T", X @ W, "X")
    assert (v.ok, v.kind) == (True, "correct")
    v = eg.check("W.T @ dY", X @ W, X)
    assert (v.ok, v.kind) == (False, "shape")


# --- paper notation ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("formula", "wrt", "expected"),
    [
        ("dY·Wᵀ", "X", "dY·Wᵀ"),
        ("dL/dX = dL/dY · Wᵀ", "X", "dY·Wᵀ"),
        ("∂L/∂X = ∂L/∂Y·Wᵀ", "X", "dY·Wᵀ"),
        ("grad(Y) @ W.T", "X", "dY @ W.T"),
        ("J_Y @ W.T", "X", "dY @ W.T"),
        ("Xᵀ·dL/dY", "W", "Xᵀ·dY"),
        ("∂L/∂W = Xᵀ·∂L/∂Y", "W", "Xᵀ·dY"),
        ("X^T @ dY", "W", "Xᵀ·dY"),
    ],
)
def test_paper_notation(formula: str, wrt: str, expected: str) -> None:
    v = verdict(formula, wrt=wrt)
    assert (v.ok, v.kind) == (True, "correct"), v.message
    assert v.expected == expected


def test_output_name_sets_the_upstream_gradient() -> None:
    v = verdict("X.T @ dL/dZ", wrt="W", output="Z")
    assert (v.ok, v.expected) == (True, "X.T @ dZ")
    v = verdict("Xᵀ·dZ", wrt="W", output="Z")
    assert (v.ok, v.expected) == (True, "Xᵀ·dZ")
    with pytest.raises(eg.ParseError, match="upstream gradient is dZ"):
        verdict("X.T @ dY", wrt="W", output="Z")


# --- wrong shape --------------------------------------------------------------------------------


def test_seed003_W_transposed_times_dY_cannot_be_formed() -> None:
    v = verdict("Wᵀ·dL/dY")
    assert (v.ok, v.kind) == (False, "shape")
    assert v.method is None and v.max_error is None
    # The factors' shapes: Wᵀ is (4, 3) and dY is (5, 4), so the product cannot be formed.
    assert "cannot be formed" in v.message
    assert "W is (3, 4), so Wᵀ is (4, 3)" in v.message
    assert "dY is (5, 4)" in v.message
    assert "the inner sizes 3 and 5 differ" in v.message
    # The fix, with its shape.
    assert v.expected == "dY·Wᵀ"
    assert "The gradient is ∂L/∂X = dY·Wᵀ, of shape (5, 3) (the shape of X)." in v.message
    # dY·Wᵀ really is (5, 4)·(4, 3) = (5, 3), and Wᵀ·dY really cannot be formed.
    dy, w = np.ones((5, 4)), np.ones((3, 4))
    assert (dy @ w.T).shape == (5, 3)
    with pytest.raises(ValueError):
        w.T @ dy


def test_seed003_in_numpy_notation_gets_the_fix_in_numpy_notation() -> None:
    v = verdict("W.T @ dY")
    assert (v.ok, v.kind, v.expected) == (False, "shape", "dY @ W.T")
    assert "so Wᵀ is (4, 3)" in v.message
    assert "The gradient is ∂L/∂X = dY @ W.T, of shape (5, 3)" in v.message
    # Not the weight-layout confusion: with W stored 4×3, Wᵀ·dY is still not dL/dX.
    assert "weight layout" not in v.message


def test_weight_layout_confusion() -> None:
    # Right for W stored out×in (4×3, Andrew Ng's layout): there Y = X·Wᵀ and dX = dY·W.
    v = verdict("dY @ W")
    assert (v.ok, v.kind, v.expected) == (False, "shape", "dY @ W.T")
    assert (
        "Your formula would be right if W were stored as 4×3 (out×in, the other weight "
        "layout); here W is 3×4 (in×out), so transpose it in the formula."
    ) in v.message
    # The claim itself, in numbers: with V = Wᵀ stored 4×3, dL/dX of X·Vᵀ is dY·V.
    rng = np.random.default_rng(0)
    dy, v_stored = rng.standard_normal((5, 4)), rng.standard_normal((4, 3))
    x = rng.standard_normal((5, 3))
    # L = sum(dY * X Vᵀ) is linear in X with gradient dY V.
    base = np.sum(dy * (x @ v_stored.T))
    e = np.zeros_like(x)
    e[1, 2] = 1.0
    assert np.isclose(np.sum(dy * ((x + e) @ v_stored.T)) - base, (dy @ v_stored)[1, 2])
    # Math notation gets the same diagnosis.
    v = verdict("dY·W")
    assert v.expected == "dY·Wᵀ"
    assert "would be right if W were stored as 4×3" in v.message


def test_weight_layout_confusion_with_W_stored_out_by_in() -> None:
    # Y = X·Wᵀ + b with W 4×3: W is stored out×in (4 outputs, 3 inputs), and dX = dY·W.
    # "dY @ W.T" is right for the in×out layout, W stored 3×4, as in Y = X·W.
    v = verdict("dY @ W.T", expr="X @ W.T + b", shapes={"X": (5, 3), "W": (4, 3), "b": (4,)})
    assert (v.ok, v.kind, v.expected) == (False, "shape", "dY @ W")
    assert (
        "Your formula would be right if W were stored as 3×4 (in×out, the other weight "
        "layout); here W is 4×3 (out×in), so transpose it in the formula."
    ) in v.message
    # The claim itself, in numbers: with U = Wᵀ stored 3×4 (in×out), dL/dX of X·U is dY·Uᵀ.
    rng = np.random.default_rng(1)
    dy, u = rng.standard_normal((5, 4)), rng.standard_normal((3, 4))
    x, e = rng.standard_normal((5, 3)), np.zeros((5, 3))
    e[2, 1] = 1.0
    change = np.sum(dy * ((x + e) @ u)) - np.sum(dy * (x @ u))
    assert np.isclose(change, (dy @ u.T)[2, 1])


@pytest.mark.parametrize(
    ("formula", "expr", "shapes", "layout"),
    [
        ("dY @ W", "X @ W", LINEAR, "here W is 3×4 (in×out)"),
        ("dY @ W.T", "X @ W.T", {"X": (5, 3), "W": (4, 3)}, "here W is 4×3 (out×in)"),
        # Column vectors, Y = W·X: W's rows are its 4 outputs.
        ("W @ dY", "W @ X", {"X": (3, 5), "W": (4, 3)}, "here W is 4×3 (out×in)"),
        ("dY @ W", "X @ W + b", BIAS, "here W is 3×4 (in×out)"),
    ],
    ids=["X@W", "X@W.T", "W@X", "X@W+b"],
)
def test_the_layout_named_is_the_one_the_expression_uses(
    formula: str, expr: str, shapes: dict[str, tuple[int, ...]], layout: str
) -> None:
    assert layout in verdict(formula, expr=expr, shapes=shapes).message


def test_numpy_1d_arrays_are_neither_rows_nor_columns() -> None:
    # Seed 003: "x.T @ dY" for dL/dW, with x of shape (3,) and dY of shape (4,).
    v = verdict("x.T @ dY", expr="x @ W", wrt="W", shapes=ONE_D)
    assert (v.ok, v.kind) == (False, "shape")
    assert "x is 1-D with shape (3,)" in v.message
    assert "neither (1, 3) nor (3, 1)" in v.message
    assert "x.T is x itself" in v.message
    assert "einsum('i,j->ij', …)" in v.message
    # ... which is what numpy does: x.T is x, and x @ dY is an inner product that fails.
    x, dy = np.ones(3), np.ones(4)
    assert x.T.shape == (3,)
    with pytest.raises(ValueError):
        x.T @ dy


def test_seed003_q2_with_1d_arrays() -> None:
    # "dL/dX = Wᵀ·dL/dY cannot be calculated: Wᵀ is (4, 3) and dL/dY is (4,)".
    v = verdict("W.T @ dY", expr="x @ W", wrt="x", shapes=ONE_D)
    assert (v.ok, v.kind) == (False, "shape")
    assert "Wᵀ is (4, 3)" in v.message
    assert "dY is (4,)" in v.message
    assert "dY is 1-D with shape (4,)" in v.message
    # For 1-D dY, W @ dY and dY @ W.T are both right (numpy contracts the shared axis).
    for formula in ("W @ dY", "dY @ W.T"):
        v = verdict(formula, expr="x @ W", wrt="x", shapes=ONE_D)
        assert (v.ok, v.kind) == (True, "correct"), formula


def test_the_transpose_of_the_answer_is_named() -> None:
    v = verdict("dY.T @ X", wrt="W")
    assert (v.ok, v.kind, v.expected) == (False, "shape", "X.T @ dY")
    assert v.message.startswith(
        "your formula has shape (4, 3), but ∂L/∂W has the shape of W, (3, 4)."
    )
    assert "It is the transpose of the right answer." in v.message
    # A wrongly shaped formula that is not the transposed answer gets no such note.
    v = verdict("2 * dY.T @ X", wrt="W")
    assert (v.ok, v.kind) == (False, "shape")
    assert "transpose of the right answer" not in v.message


def test_a_formable_formula_of_the_wrong_shape() -> None:
    v = verdict("dY", expr="X @ W + b", wrt="b", shapes=BIAS)
    assert (v.ok, v.kind) == (False, "shape")
    assert "your formula has shape (5, 4), but ∂L/∂b has the shape of b, (4,)." in v.message


# --- wrong value --------------------------------------------------------------------------------


def test_wrong_value_numpy_notation() -> None:
    v = verdict("2 * dY @ W.T")
    assert (v.ok, v.kind) == (False, "value")
    assert v.expected == "dY @ W.T"
    assert v.max_error is not None and v.max_error > 0
    assert f"differs from the gradient by up to {v.max_error:.3g}" in v.message
    assert "The gradient is ∂L/∂X = dY @ W.T, of shape (5, 3)" in v.message


def test_wrong_value_math_notation() -> None:
    v = verdict("-dY·Wᵀ")
    assert (v.ok, v.kind) == (False, "value")
    assert v.expected == "dY·Wᵀ"
    assert "The gradient is ∂L/∂X = dY·Wᵀ" in v.message
    v = verdict("dY·Wᵀ ⊙ 2")
    assert (v.ok, v.kind, v.expected) == (False, "value", "dY·Wᵀ")


def test_max_error_is_the_largest_difference() -> None:
    # On the same random inputs, the error of c·G is |c − 1|·max|G| with G = dY·Wᵀ, so the
    # reported errors of 2G, −G and 1.5G stand in the ratios 1 : 2 : 0.5.
    double = verdict("2 * dY @ W.T").max_error
    negative = verdict("-(dY @ W.T)").max_error
    half = verdict("1.5 * (dY @ W.T)").max_error
    assert double is not None and negative is not None and half is not None
    assert np.isclose(negative, 2 * double)
    assert np.isclose(half, 0.5 * double)


def test_wrong_value_for_the_weight_gradient() -> None:
    # Half the gradient: the right shape, the wrong values.
    v = verdict("X.T @ dY - X.T @ dY / 2", wrt="W")
    assert (v.ok, v.kind, v.expected) == (False, "value", "X.T @ dY")


# --- seed 002: the handout's slip ------------------------------------------------------------


def test_seed002_handout_slip() -> None:
    v = verdict("dL/dx = dL/dy · xᵀ", expr="x @ W", wrt="x", shapes=SEED002, output="y")
    assert v.ok is False
    assert v.kind == "shape"
    assert v.expected == "dy·Wᵀ"
    assert "dy is (1, 3)" in v.message
    assert "x is (1, 2), so xᵀ is (2, 1)" in v.message
    assert "The gradient is ∂L/∂x = dy·Wᵀ, of shape (1, 2) (the shape of x)." in v.message
    # The learner's correction passes, and so does the weight gradient xᵀ·dy.
    v = verdict("dL/dx = dL/dy · Wᵀ", expr="x @ W", wrt="x", shapes=SEED002, output="y")
    assert (v.ok, v.kind) == (True, "correct")
    v = verdict("dL/dW = xᵀ·dL/dy", expr="x @ W", wrt="W", shapes=SEED002, output="y")
    assert (v.ok, v.kind) == (True, "correct")


# --- bad input ----------------------------------------------------------------------------------


def test_unknown_names_in_the_formula() -> None:
    with pytest.raises(eg.ParseError, match=r"uses 'V'.*known: W, X, dY"):
        verdict("dY @ V.T")
    # "dy" is not "dY": the upstream gradient of Y is dY.
    with pytest.raises(eg.ParseError, match="the upstream gradient is dY"):
        verdict("dy @ W.T")


def test_unknown_wrt() -> None:
    with pytest.raises(eg.GradError, match="wrt='Q' is not a variable"):
        verdict("dY @ W.T", wrt="Q")


def test_other_bad_input() -> None:
    with pytest.raises(eg.ShapeError, match="check needs shapes"):
        verdict("dY @ W.T", shapes={"X": (5, 3)})
    with pytest.raises(eg.ParseError):
        verdict("dY @ W.T +")
    with pytest.raises(eg.ParseError, match="already has a variable 'dY'"):
        eg.check("dY", "X @ dY", "X", shapes={"X": (2, 3), "dY": (3, 4)})


def test_bad_input_errors_are_einsgrad_errors() -> None:
    for call in (
        lambda: verdict("dY @ V.T"),
        lambda: verdict("dY @ W.T", wrt="Q"),
        lambda: verdict("dY @ W.T", shapes={}),
        lambda: verdict("dY @ (W.T"),
    ):
        with pytest.raises(eg.EinsgradError):
            call()


# --- library bugs: each test below fails on the current einsgrad --------------------------------


def test_a_keyword_argument_is_not_an_equation() -> None:
    # check() drops everything up to the first "=" (for "dL/db = ..."), so the "=" of
    # axis=0 cuts the formula to "0)" and a right formula is rejected as a syntax error.
    v = verdict("sum(dY, axis=0)", expr="X @ W + b", wrt="b", shapes=BIAS)
    assert (v.ok, v.kind) == (True, "correct"), v.message
    v = verdict("dL/db = sum(dL/dY, axis=0)", expr="X @ W + b", wrt="b", shapes=BIAS)
    assert (v.ok, v.kind) == (True, "correct"), v.message


def test_a_scalar_factor_in_math_notation_is_not_a_matrix_product() -> None:
    # Seed 001's batch mean: ∂L/∂W = 1/B · Xᵀ·∂L/∂Y. The "·" after a number is a scalar
    # product; check() turns every "·" into "@" and calls the formula unformable.
    v = verdict("1/4 · Xᵀ·dY", expr="X @ W / 4", wrt="W")
    assert (v.ok, v.kind) == (True, "correct"), v.message
    # ... and a wrong coefficient is a wrong value, not a wrong shape.
    v = verdict("2 · dY·Wᵀ")
    assert (v.ok, v.kind) == (False, "value"), v.message


CASES = [
    # (expr, wrt, shapes, a formula in numpy style, one in math style)
    ("X @ W", "X", LINEAR, "W.T @ dY", "Wᵀ·dY"),
    ("X @ W", "W", LINEAR, "dY @ X", "dY·X"),
    ("X @ W + b", "b", BIAS, "dY", "dYᵀ"),
    ("X @ W / 4", "W", LINEAR, "X.T @ dY", "Xᵀ·dY"),
    ("x @ W", "x", ONE_D, "W.T @ dY", "Wᵀ·dY"),
    ("x @ W", "W", ONE_D, "x.T @ dY", "xᵀ·dY"),
    ("x @ W", "x", SEED002, "dY @ x.T", "dY·xᵀ"),
    ("X @ W @ V", "W", {**LINEAR, "V": (4, 2)}, "X.T @ dY", "Xᵀ·dY"),
    ("tanh(X @ W)", "X", LINEAR, "W.T @ dY", "Wᵀ·dY"),
    ("relu(X @ W + b)", "W", BIAS, "X.T @ dY", "Xᵀ·dY"),
]


@pytest.mark.parametrize(
    ("expr", "wrt", "shapes", "numpy_style", "math_style"),
    CASES,
    ids=[f"{c[0]} wrt {c[1]} {'x'.join(map(str, c[2][c[1]]))}" for c in CASES],
)
def test_the_right_formula_offered_passes_check(
    expr: str, wrt: str, shapes: dict[str, tuple[int, ...]], numpy_style: str, math_style: str
) -> None:
    # The formula a verdict calls right, in the user's notation, must itself be right.
    failures = []
    for wrong in (numpy_style, math_style):
        offered = eg.check(wrong, expr, wrt, shapes=shapes).expected
        try:
            again = eg.check(offered, expr, wrt, shapes=shapes)
            if not again.ok:
                failures.append(f"{offered!r}: {again.message}")
        except eg.EinsgradError as error:
            failures.append(f"{offered!r}: {type(error).__name__}: {error}")
    assert not failures, "\n".join(failures)


# --- memory and input size: refused before any work --------------------------------------------


def _traced_peak(action: Any) -> tuple[BaseException | None, int]:
    """The exception ``action()`` raises (or None) and the most memory it had allocated.

    numpy reports its array buffers to tracemalloc, so an array made and freed counts.
    """
    tracemalloc.start()
    try:
        action()
        raised: BaseException | None = None
    except BaseException as error:
        raised = error
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return raised, peak


LIMIT = 4 * 2**20  # 4 MiB: a (1000, 1000) float64 input (7.6 MiB) is over it


@pytest.mark.parametrize(
    "call",
    [
        lambda X: eg.equivalent(eg.sum(X * 2), eg.sum(X + X)),
        lambda X: eg.equivalent(eg.exp(X) * eg.exp(X), eg.exp(2 * X)),
        lambda X: eg.check("log(exp(W @ dY))", X @ eg.var("W", (1000, 1000)), "X"),
        lambda X: eg.check("W @ dY * 2", X @ eg.var("W", (1000, 1000)), "X"),
    ],
    ids=["equivalent, scalar", "equivalent, array", "check, numeric", "check, wrong value"],
)
def test_random_inputs_over_the_memory_limit_are_refused_before_allocating(call: Any) -> None:
    X = eg.var("X", (1000, 1000))
    with eg.memory_limit(LIMIT):
        raised, peak = _traced_peak(lambda: call(X))
    assert isinstance(raised, eg.MemoryLimitError), f"{raised!r} instead of MemoryLimitError"
    message = str(raised)
    assert "(1000, 1000)" in message and ("'X'" in message or "'W'" in message)
    assert "Nothing was allocated" in message
    assert peak < LIMIT / 4, f"{peak:,} bytes were allocated"


def test_inputs_under_the_limit_whose_evaluation_is_over_it_are_refused_first() -> None:
    # X alone is 0.8 MiB, under the limit; with X * X and X + X, two more arrays of its
    # size, the test needs 2.4 MiB, over it.
    X = eg.var("X", (320, 320))
    with eg.memory_limit(2 * 2**20):
        raised, peak = _traced_peak(lambda: eg.equivalent(X * X, X + X))
    assert isinstance(raised, eg.MemoryLimitError), repr(raised)
    assert "X (320, 320)" in str(raised) and "Nothing was allocated" in str(raised)
    assert peak < 2**19, f"{peak:,} bytes were allocated"
    with eg.memory_limit(64 * 2**20):
        assert not eg.equivalent(X * X, X + X)


def test_a_shapeless_variable_tested_at_a_huge_shape_is_refused() -> None:
    X = eg.var("X")
    raised, peak = _traced_peak(
        lambda: eg.equivalent(eg.exp(X) * 2, eg.exp(X) + 1, shapes={"X": (10**5, 10**5)})
    )
    assert isinstance(raised, eg.MemoryLimitError)
    assert "'X' would have shape (100000, 100000)" in str(raised)
    assert peak < 2**20


def test_a_formula_over_the_length_limit_is_refused_first() -> None:
    X, W = eg.var("X", (5, 3)), eg.var("W", (3, 4))
    start = time.perf_counter()
    for formula in ("dY @ W.T " * 4_000, "x" * 10_000_000, "[" + " " * 40_000 + ">"):
        with pytest.raises(eg.ParseError, match=f"characters long; the limit is {MAX_LENGTH:,}"):
            eg.check(formula, X @ W, X)
    assert time.perf_counter() - start < 1.0  # generous: a 10 MB string is refused at once
    with pytest.raises(eg.ParseError, match="once its paper notation is written out"):
        eg.check("1ᵀ·dY" * (MAX_LENGTH // 5), X @ W, X)
    with pytest.raises(eg.OptionError, match="output="):
        eg.check("dY @ W.T", X @ W, X, output="Y" * 1000)
    with pytest.raises(eg.OptionError, match="output="):
        eg.check("dY @ W.T", X @ W, X, output="d Y")


@pytest.mark.parametrize(
    "formula",
    [
        "[" + ">" * 9_990,  # a mask rewrite used to try every split: quadratic
        "[" + " " * 700 + ">" + " " * 700 + "x",  # cubic with spaces around '>': 5 s here
        "W" * 9_990 + " · 1x",  # the '·1' row sum used to rescan the word from each letter
    ],
)
def test_formulas_under_the_limit_are_read_in_near_linear_time(formula: str) -> None:
    X, W = eg.var("X", (5, 3)), eg.var("W", (3, 4))
    start = time.perf_counter()
    with pytest.raises(eg.ParseError):
        eg.check(formula, X @ W, X)
    assert time.perf_counter() - start < 1.0  # generous: these took 1 to 5 s


def test_paper_masks_are_still_read() -> None:
    X, W = eg.var("X", (5, 3)), eg.var("W", (3, 4))
    v = eg.check("dY * [X @ W > 0] @ W.T", eg.relu(X @ W), X)
    assert (v.ok, v.kind) == (True, "correct"), v.message
    v = eg.check("(dY ⊙ [X·W > 0])·Wᵀ", eg.relu(X @ W), X)
    assert (v.ok, v.kind) == (True, "correct"), v.message


# --- regressions found by the fuzz layer ---------------------------------------------------


@pytest.mark.parametrize(
    ("formula", "expr", "wrt", "shapes"),
    [
        # W is 2×1 and dY is 2×1: W @ dY has inner sizes 1 and 2.
        ("(W @ dY)", "tanh(X @ W)", "X", {"X": (2, 2), "W": (2, 1)}),
        # Y is 1×2, so sum(dY, axis=1) has shape (1,), not the (2,) of b.
        ("sum(dY, axis=1)", "X @ W + b", "b", {"X": (1, 1), "W": (1, 2), "b": (2,)}),
    ],
)
def test_a_non_square_upstream_gradient_is_not_taken_for_a_weight(
    formula: str, expr: str, wrt: str, shapes: dict[str, tuple[int, ...]]
) -> None:
    # The layout note once flipped dY like a weight and then found no upstream gradient.
    result = eg.check(formula, expr, wrt, shapes=shapes)
    assert result.kind == "shape"
    assert not result.ok


@pytest.mark.parametrize("formula", ["dL/dYᵀ", "∂L/∂Yᵀ", "dL/dX = ∂L/∂Yᵀ"])
def test_the_upstream_alias_is_read_before_a_transpose_mark(formula: str) -> None:
    # Y = Xᵀ, so ∂L/∂X = (∂L/∂Y)ᵀ: L = Σ dY ⊙ Xᵀ has gradient dY.T.
    result = eg.check(formula, "X.T", "X", shapes={"X": (2, 3)})
    assert result.ok, result.message


def test_the_upstream_alias_before_a_transpose_mark_can_be_wrong() -> None:
    # Y = X·W (X 3×3, W 3×3): ∂L/∂X = dY·Wᵀ, and dYᵀ·W is not it.
    shapes = {"X": (3, 3), "W": (3, 3)}
    result = eg.check("∂L/∂Yᵀ·W", "X @ W", "X", shapes=shapes)
    assert result.kind == "value"
    rng = np.random.default_rng(0)
    dY, W = rng.normal(size=(3, 3)), rng.normal(size=(3, 3))
    assert not np.allclose(dY.T @ W, dY @ W.T)
