"""Fuzzed index notation: the documented Einstein rules' value, or a clean refusal.

Valid equations (``strategies.index_cases``: sums of products of tensors, diagonals,
numbers, powers, divisions and functions of products, with multi-letter labels) must
evaluate to the value ``fuzz/index_notation.py`` computes from the rules the parser
documents; ``to_index`` of the result must read back to the same value unless it writes
a ``Σ``. Mutated, garbage and very long equations must parse or raise an EinsgradError.
"""

from __future__ import annotations

import numpy as np
from hypothesis import event, given, note
from hypothesis import strategies as st

import einsgrad as eg
from fuzz.harness import REPR_LIMIT, attempt, expect_value, fuzz_settings, printed
from fuzz.index_notation import reference, render, tensor_shapes
from fuzz.strategies import EXPR_NOISE, LONG_LENGTHS, IndexCase, index_cases, index_texts, mutated


def _arrays(shapes: dict[str, tuple[int, ...]], seed: int) -> dict[str, np.ndarray]:
    """Positive entries, so logs, square roots and divisions stay finite."""
    rng = np.random.default_rng(seed)
    return {name: rng.uniform(0.5, 1.5, shape) for name, shape in shapes.items()}


@fuzz_settings(80)
@given(case=index_cases(), seed=st.integers(0, 2**32 - 1), declared=st.booleans())
def test_equations_follow_the_documented_rules(case: IndexCase, seed: int, declared: bool) -> None:
    text = render(case.equation)
    shapes = tensor_shapes(case.equation, case.sizes)
    note(f"{text} with shapes {shapes}")
    arrays = _arrays(shapes, seed)
    parsed = attempt("eg.parse", lambda: eg.parse(text, shapes=shapes if declared else None), text)
    expr = expect_value(parsed, text)
    used = {v.name for v in expr.variables}
    value = expect_value(
        attempt("evaluate", lambda: expr(**{k: v for k, v in arrays.items() if k in used})),
        "evaluate",
    )
    expected = reference(case.equation, arrays, case.sizes)
    assert np.shape(value) == expected.shape, f"{text}: shape {np.shape(value)} != {expected.shape}"
    np.testing.assert_allclose(value, expected, rtol=1e-9, atol=1e-12, err_msg=text)
    if not declared:
        return
    written = attempt("to_index", lambda: eg.to_index(expr))
    if not written.ok or "Σ" in written.value:
        event("no readable index form" if not written.ok else "written with Σ")
        return
    event("read back")
    note(f"written back as {written.value}")
    again = expect_value(
        attempt(
            "eg.parse of to_index", lambda: eg.parse(written.value, shapes=shapes), written.value
        ),
        "read back",
    )
    reused = {v.name for v in again.variables}
    second = expect_value(
        attempt("evaluate", lambda: again(**{k: v for k, v in arrays.items() if k in reused})),
        "evaluate",
    )
    np.testing.assert_allclose(second, expected, rtol=1e-9, atol=1e-12, err_msg=written.value)


@st.composite
def long_equations(draw: st.DrawFn) -> str:
    fragment = draw(
        st.sampled_from(
            ["X[i] + ", "X[i] * ", "tanh(", "X[i, i, i, i] + ", "A[i" + ", i" * 10 + "] + "]
        )
    )
    count = max(draw(LONG_LENGTHS) // len(fragment), 1)
    closing = ")" * count if fragment.endswith("(") else ""
    return "Y[i] = " + fragment * count + "X[i]" + closing


ANY_EQUATION = st.one_of(
    mutated(index_texts(), EXPR_NOISE + ",[]="),
    long_equations(),
    st.text(alphabet="Y[]ij,=+*XW() ", max_size=24),
)


@fuzz_settings(120)
@given(text=ANY_EQUATION)
def test_any_equation_parses_or_is_refused(text: str) -> None:
    note(f"{text[:300]!r} ({len(text)} characters)")
    outcome = attempt(f"eg.parse({text[:80]!r})", lambda: eg.parse(text), text)
    event("parses" if outcome.ok else "refused")
    if outcome.ok:
        expr = outcome.value
        printed("str", lambda: str(expr), len(text))
        assert len(printed("repr", lambda: repr(expr), len(text))) <= REPR_LIMIT
        printed("to_index", lambda: eg.to_index(expr), len(text))
        printed("to_latex", lambda: eg.to_latex(expr), len(text))
