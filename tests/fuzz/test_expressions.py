"""Fuzzed expression strings: numpy's value and JAX's gradient, or a clean refusal.

Valid expressions (``strategies.expression_cases``: trees of ``parse_expr``'s language
over variables with shapes) must evaluate to the value numpy gives the same tree
(``fuzz/expressions.py``), whether the shapes are declared or left to the arrays, and
their gradients must match JAX's (float64) and, where no kink is involved, central
finite differences. Trees numpy cannot compute must be refused with an EinsgradError.
Any string at all (mutated, garbage, extreme literals, tens of thousands of characters)
must parse or be refused, and whatever parses must print, differentiate, explain and
write itself in index notation, or refuse cleanly, in time; index notation that
``to_index`` writes without a ``Σ`` must read back to the same value.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from hypothesis import event, given, note
from hypothesis import strategies as st
from oracles import finite_difference

import einsgrad as eg
from fuzz.expressions import KINKED, jax_gradients, operations, reference, render, walk
from fuzz.harness import (
    PRINTED_PER_NODE,
    REPR_LIMIT,
    Outcome,
    attempt,
    expect_error,
    expect_value,
    fuzz_settings,
    graph_size,
    printed,
)
from fuzz.strategies import (
    EXPR_NOISE,
    ExpressionCase,
    LongText,
    edge_expressions,
    expression_cases,
    expression_texts,
    long_expressions,
    mutated,
    numpy_shape,
)

#: How the arrays are filled: away from every kink and pole, or with exact zeros and ties.
FLAVORS = st.sampled_from(["generic", "generic", "special"])


def random_arrays(shapes: dict[str, tuple[int, ...]], seed: int, flavor: str) -> dict[str, Any]:
    # Arrays even when 0-d: numpy's generators give a 0-d draw as a Python float.
    rng = np.random.default_rng(seed)
    if flavor == "generic":
        return {
            n: np.asarray(rng.uniform(0.5, 1.5, s) * rng.choice([-1.0, 1.0], s))
            for n, s in shapes.items()
        }
    return {n: np.asarray(rng.choice([0.0, 1.0, -1.0, 0.5, -2.0], s)) for n, s in shapes.items()}


def numpy_value(case: ExpressionCase, arrays: dict[str, Any]) -> np.ndarray:
    with np.errstate(all="ignore"):
        return np.asarray(reference(case.node, arrays))


def einsgrad_dtype(numpy_dtype: np.dtype[Any]) -> np.dtype[Any]:
    """The dtype einsgrad computes in: numpy's, except that integers and booleans (here
    only from integer literals) become float64, since every einsgrad array is inexact."""
    return numpy_dtype if np.issubdtype(numpy_dtype, np.inexact) else np.dtype(np.float64)


def has_vector_matmul(case: ExpressionCase) -> bool:
    """Some ``@`` has a 1-D operand. ``eg.matmul`` documents that an operand of unknown
    rank is taken to be at least 2-D, so with shapes left to the arrays it refuses these."""
    return any(
        node.op == "@" and any(len(numpy_shape(a, case.shapes) or ()) == 1 for a in node.args)
        for node in walk(case.node)
    )


def _evaluated(text: str, shapes: dict[str, Any] | None, arrays: dict[str, Any]) -> Outcome:
    """parse_expr then evaluate: the value, or the first EinsgradError."""
    parsed = attempt(f"parse_expr({text!r})", lambda: eg.parse_expr(text, shapes=shapes), text)
    if not parsed.ok:
        return parsed
    return attempt(f"evaluating {text!r}", lambda: parsed.value(**arrays))


@fuzz_settings(120)
@given(
    case=expression_cases(), seed=st.integers(0, 2**32 - 1), declared=st.booleans(), flavor=FLAVORS
)
def test_expressions_give_numpys_value_or_are_refused_like_numpy(
    case: ExpressionCase, seed: int, declared: bool, flavor: str
) -> None:
    text = render(case.node)
    note(f"{text} with shapes {case.shapes}")
    event("valid" if case.valid else "numpy refuses")
    arrays = random_arrays(case.shapes, seed, flavor)
    outcome = _evaluated(text, case.shapes if declared else None, arrays)
    if not declared and has_vector_matmul(case) and not outcome.ok:
        event("vector @ with undeclared shapes: refused, as documented")
        return
    if not case.valid:
        expect_error(outcome, f"{text} with shapes {case.shapes}, which numpy refuses")
        return
    value = np.asarray(expect_value(outcome, text))
    expected = numpy_value(case, arrays)
    assert value.shape == expected.shape, f"{text}: shape {value.shape} != numpy's {expected.shape}"
    assert value.dtype == einsgrad_dtype(expected.dtype), (
        f"{text}: dtype {value.dtype} != numpy's {expected.dtype}"
    )
    np.testing.assert_allclose(value, expected, rtol=1e-9, atol=1e-12, err_msg=text)


def _usable_for_gradients(case: ExpressionCase, expected: np.ndarray) -> bool:
    return case.valid and bool(case.shapes) and bool(np.all(np.isfinite(expected)))


@fuzz_settings(30)
@given(case=expression_cases(max_steps=4), seed=st.integers(0, 2**32 - 1), flavor=FLAVORS)
def test_expression_gradients_match_jax_and_finite_differences(
    case: ExpressionCase, seed: int, flavor: str
) -> None:
    text = render(case.node)
    note(f"{text} with shapes {case.shapes}, {flavor} arrays")
    if not case.valid:
        event("not differentiated (numpy refuses)")
        return
    arrays = random_arrays(case.shapes, seed, flavor)
    expected_value = numpy_value(case, arrays)
    if not _usable_for_gradients(case, expected_value):
        event("not differentiated (invalid, constant or not finite)")
        return
    names = sorted(case.shapes)
    cotangent = np.random.default_rng(seed + 1).standard_normal(expected_value.shape)
    expr = expect_value(
        attempt("parse_expr", lambda: eg.parse_expr(text, shapes=case.shapes)), text
    )
    loss = eg.sum(expr * eg.var("G", cotangent.shape))
    grads = expect_value(
        attempt("eg.grad", lambda: eg.grad(loss, names, allow_unused=True)), "grad"
    )
    got = expect_value(
        attempt("evaluate grads", lambda: eg.evaluate(list(grads), G=cotangent, **arrays)),
        "evaluate",
    )
    expected = jax_gradients(case.node, arrays, names, cotangent)
    smooth = flavor == "generic" and not operations(case.node) & KINKED
    event("finite differences too" if smooth else "JAX only (kinks or special values)")
    for name, mine, theirs in zip(names, got, expected, strict=True):
        mine = np.broadcast_to(mine, theirs.shape)
        finite = np.isfinite(theirs)
        np.testing.assert_allclose(
            mine[finite], theirs[finite], rtol=1e-7, atol=1e-9, err_msg=f"d/d{name} vs JAX"
        )
        assert not np.any(np.isfinite(mine[~finite])), f"d/d{name}: finite where JAX's is not"
        if smooth:

            def loss_value(**values: np.ndarray) -> float:
                return float(np.sum(cotangent * reference(case.node, values)))

            # Where JAX's gradient is not finite (x ** 1.5 at x < 0), differences of a
            # function that is finite nearby (an empty product) say nothing.
            numeric = finite_difference(loss_value, arrays, name)
            np.testing.assert_allclose(
                mine[finite],
                numeric[finite],
                rtol=1e-4,
                atol=1e-6,
                err_msg=f"d/d{name} vs finite differences",
            )


ANY_TEXT = st.one_of(
    mutated(expression_texts(), EXPR_NOISE),
    edge_expressions(),
    st.text(alphabet=EXPR_NOISE, max_size=30),
    st.text(max_size=20),
)


def _exercise(expr: eg.Expr, text: str) -> None:
    """Everything a parsed expression offers: a result or an EinsgradError, in time."""
    size = len(text)
    printed("str", lambda: str(expr), size)
    assert len(printed("repr", lambda: repr(expr), size)) <= REPR_LIMIT
    printed("to_index", lambda: eg.to_index(expr), size)
    names = sorted(v.name for v in expr.variables)
    arrays = {n: np.full((2, 2), 0.75) for n in names}
    attempt("evaluate", lambda: expr(**arrays))
    if names:
        attempt("grad", lambda: eg.grad(eg.sum(expr), names[0]))
        shapes = {n: (2, 2) for n in names}
        shaped = attempt("parse_expr with shapes", lambda: eg.parse_expr(text, shapes=shapes))
        if shaped.ok:
            loss = eg.sum(shaped.value)
            explained = attempt("explain", lambda: eg.explain(loss, names[0]))
            if explained.ok:
                nodes = graph_size(loss)
                printed("explain text", lambda: explained.value.text, nodes, PRINTED_PER_NODE)


@fuzz_settings(150)
@given(text=ANY_TEXT)
def test_any_string_parses_or_is_refused_and_what_parses_works(text: str) -> None:
    note(f"{text[:300]!r} ({len(text)} characters)")
    outcome = attempt(f"parse_expr({text[:80]!r})", lambda: eg.parse_expr(text), text)
    event("parses" if outcome.ok else "refused")
    if outcome.ok:
        _exercise(outcome.value, text)


@fuzz_settings(30)
@given(case=long_expressions())
def test_long_expressions_within_the_limits_parse_and_work(case: LongText) -> None:
    """Flat sums and products, deep nesting, huge literals: parsed within the documented
    limits (10,000 characters, nesting 64 deep), a located refusal beyond them."""
    note(f"{case.text[:100]!r}... ({len(case.text)} characters)")
    outcome = attempt("parse_expr of a long text", lambda: eg.parse_expr(case.text), case.text)
    limits = "within the limits" if case.within_limits else "beyond the limits"
    event(f"{limits}, {'parsed' if outcome.ok else 'refused'}")
    if case.within_limits:
        expect_value(outcome, f"a {len(case.text)}-character expression within the limits")
    if outcome.ok:
        _exercise(outcome.value, case.text)


@fuzz_settings(60)
@given(case=expression_cases(), seed=st.integers(0, 2**32 - 1))
def test_index_notation_written_by_to_index_reads_back(case: ExpressionCase, seed: int) -> None:
    if not case.valid:
        return
    text = render(case.node)
    expr = expect_value(
        attempt("parse_expr", lambda: eg.parse_expr(text, shapes=case.shapes)), text
    )
    written = attempt("to_index", lambda: eg.to_index(expr))
    note(f"{text} with shapes {case.shapes} -> {written.value or written.error}")
    if not written.ok or "Σ" in written.value:
        event("no readable index form" if not written.ok else "written with Σ")
        return
    event("read back")
    again = attempt(
        f"eg.parse({written.value!r})",
        lambda: eg.parse(written.value, shapes=case.shapes),
        written.value,
    )
    reread = expect_value(again, f"reading back {written.value!r}")
    arrays = random_arrays(case.shapes, seed, "generic")
    first = expect_value(attempt("evaluate", lambda: expr(**arrays)), "evaluate")
    used = {v.name for v in reread.variables}
    second = expect_value(
        attempt(
            "evaluate re-read", lambda: reread(**{k: v for k, v in arrays.items() if k in used})
        ),
        "evaluate re-read",
    )
    np.testing.assert_allclose(second, first, rtol=1e-9, atol=1e-12, err_msg=written.value)
