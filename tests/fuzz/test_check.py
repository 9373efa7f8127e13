"""Fuzzed formulas for ``check``: the right verdict, or a clean refusal.

A learner's formula (``strategies.check_cases``: products, transposes, sums, scalings and
differences of the variables and the upstream gradient ``dY``, in numpy or paper
notation, with or without a ``dL/dX =`` label) gets the verdict its numpy value earns:
``correct`` if it equals the gradient, which central finite differences of
``sum(dY * forward)`` give, ``shape`` if it cannot be formed or has the wrong shape, and
``value`` otherwise. Mutated and very long formulas get a verdict or an EinsgradError.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from hypothesis import event, given, note
from hypothesis import strategies as st
from oracles import finite_difference

import einsgrad as eg
from fuzz.expressions import reference, render
from fuzz.harness import attempt, expect_value, fuzz_settings
from fuzz.strategies import EXPR_NOISE, FORWARDS, LONG_LENGTHS, CheckCase, check_cases, mutated


def _arrays(shapes: dict[str, tuple[int, ...]], seed: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    return {name: np.asarray(rng.standard_normal(shape)) for name, shape in shapes.items()}


def true_gradient(case: CheckCase, arrays: dict[str, np.ndarray]) -> np.ndarray:
    """∂/∂wrt of ``sum(dY * forward)`` by central differences (numpy forward only)."""

    def loss(**values: np.ndarray) -> float:
        return float(np.sum(values["dY"] * reference(case.forward, values)))

    return finite_difference(loss, arrays, case.wrt)


def formula_value(case: CheckCase, arrays: dict[str, np.ndarray]) -> np.ndarray | None:
    """The formula's numpy value, or None if it cannot be formed."""
    try:
        return np.asarray(reference(case.candidate, arrays))
    except Exception:
        return None


def expected_kind(case: CheckCase, arrays: dict[str, np.ndarray]) -> str:
    value = formula_value(case, arrays)
    if value is None or value.shape != case.shapes[case.wrt]:
        return "shape"
    truth = true_gradient(case, arrays)
    return "correct" if np.allclose(value, truth, rtol=1e-6, atol=1e-8) else "value"


@fuzz_settings(100)
@given(case=check_cases(), seed=st.integers(0, 2**32 - 1))
def test_check_gives_the_verdict_the_formula_earns(case: CheckCase, seed: int) -> None:
    forward = render(case.forward)
    note(f"check({case.text!r}, {forward!r}, {case.wrt!r}, shapes={case.shapes})")
    forward_shape = np.shape(
        reference(case.forward, {n: np.ones(s) for n, s in case.shapes.items()})
    )
    arrays = _arrays({**case.shapes, "dY": forward_shape}, seed)
    wanted = expected_kind(case, arrays)
    event(f"expected verdict: {wanted}")
    outcome = attempt(
        "check", lambda: eg.check(case.text, forward, case.wrt, shapes=case.shapes), case.text
    )
    verdict = expect_value(outcome, "check of a well-formed formula")
    note(f"verdict: {verdict.kind}: {verdict.message}")
    assert verdict.message.strip()
    assert verdict.kind == wanted, (
        f"check says {verdict.kind!r}, the formula's value says {wanted!r}"
    )
    assert verdict.ok == (wanted == "correct")


#: Pieces that, repeated, make long formulas (the regexes of check once ran quadratic).
LONG_FORMULA_PIECES = ["dY @ W.T + ", "X.T · dY", "1ᵀ·dY", "dY·1 ", "[X > 0] ⊙ dY", "(" * 5]


@st.composite
def odd_formulas(draw: st.DrawFn) -> tuple[str, str, str, dict[str, Any]]:
    """Formula, forward expression, wrt and shapes, any of them odd."""
    forward, labels = draw(st.sampled_from(FORWARDS))
    sizes = {label: draw(st.sampled_from([1, 2, 3])) for label in "nio"}
    if draw(st.integers(0, 2)) == 0:
        # Every matrix over 10**12 bytes: the memory guard's business, never a real
        # allocation of some GBs (vectors are 8 MB at most).
        sizes = {label: 10**6 for label in "nio"}
    shapes = {n: tuple(sizes[c] for c in term) for n, term in labels.items()}
    kind = draw(st.sampled_from(["mutated", "mutated", "long", "noise"]))
    if kind == "mutated":
        formula = draw(mutated(check_cases().map(lambda c: c.text), EXPR_NOISE))
    elif kind == "long":
        piece = draw(st.sampled_from(LONG_FORMULA_PIECES))
        formula = piece * max(draw(LONG_LENGTHS) // len(piece), 1)
    else:
        formula = draw(st.text(alphabet=EXPR_NOISE, max_size=20))
    wrt = draw(st.sampled_from([*labels, "Q", "dY", ""]))
    return formula, render(forward), wrt, shapes


@fuzz_settings(100)
@given(case=odd_formulas())
def test_any_formula_gets_a_verdict_or_is_refused(
    case: tuple[str, str, str, dict[str, Any]],
) -> None:
    formula, forward, wrt, shapes = case
    shown = f"{formula[:200]!r} ({len(formula)} characters)"
    note(f"check({shown}, {forward!r}, {wrt!r}, shapes={shapes})")
    outcome = attempt("check", lambda: eg.check(formula, forward, wrt, shapes=shapes), formula)
    event("verdict" if outcome.ok else "refused")
    if outcome.ok:
        assert outcome.value.kind in ("correct", "shape", "value")
        assert outcome.value.message.strip()
