"""Fuzzed einsum specs: numpy's value and JAX's gradient, or a clean refusal.

Valid specs (``strategies.einsum_cases``, accepted by ``numpy.einsum``) must give numpy's
result, with variables whose shapes are declared or left to the arrays, and their
gradients must match JAX's (float64) and central finite differences. Near-valid and
garbage specs (``strategies.spec_texts``) must be accepted exactly when numpy accepts them,
with numpy's result, and otherwise raise an EinsgradError; ``eg.backward`` and its index
form must not fail otherwise on any spec, however long.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from hypothesis import event, given, note
from hypothesis import strategies as st
from oracles import (
    assert_close,
    explicit_sizes,
    finite_difference_grad,
    parse_terms,
    random_einsum_inputs,
)

import einsgrad as eg
from fuzz.harness import REPR_LIMIT, attempt, expect_error, expect_value, fuzz_settings, printed
from fuzz.strategies import EinsumCase, einsum_cases, long_specs, spec_texts

#: Operands with at most this many entries in all also get finite differences.
FD_ENTRIES = 40


def _numpy_einsum(spec: str, arrays: list[np.ndarray]) -> np.ndarray | None:
    """numpy's result, or None where numpy refuses the spec or the shapes."""
    try:
        return np.asarray(np.einsum(spec, *arrays))
    except Exception:
        return None


def numpy_size_zero_diagonal(spec: str, shapes: tuple[tuple[int, ...], ...]) -> bool:
    """numpy's one-operand path accepts a diagonal whose first axis has size 0 and a
    later one not (``np.einsum('ii->i', np.zeros((0, 3)))`` is of shape (3,)), which it
    refuses with two operands; einsgrad refuses both, so the case is left out."""
    inputs, _ = parse_terms(spec)
    if len(inputs) != 1:
        return False
    by_label: dict[str, list[int]] = {}
    for label, size in explicit_sizes(inputs[0], shapes[0]):
        by_label.setdefault(label, []).append(size)
    return any(len(s) > 1 and s[0] == 0 and any(s) for s in by_label.values())


def _variables(case: EinsumCase, declared: bool) -> list[eg.Var]:
    return [eg.var(f"X{k}", s if declared else None) for k, s in enumerate(case.shapes)]


@fuzz_settings(60)
@given(case=einsum_cases(), seed=st.integers(0, 2**32 - 1), declared=st.booleans())
def test_valid_specs_give_numpys_value(case: EinsumCase, seed: int, declared: bool) -> None:
    note(f"np.einsum({case.spec!r}) with shapes {case.shapes}")
    arrays, _ = random_einsum_inputs(case.spec, case.shapes, seed)
    expected = np.einsum(case.spec, *arrays)
    variables = _variables(case, declared)
    named = {v.name: a for v, a in zip(variables, arrays, strict=True)}
    expr = expect_value(attempt("eg.einsum", lambda: eg.einsum(case.spec, *variables)), "build")
    value = expect_value(attempt("evaluate", lambda: expr(**named)), "evaluate")
    assert_close(value, expected, "einsum of variables")
    constant = attempt("einsum of arrays", lambda: eg.einsum(case.spec, *arrays)())
    assert_close(expect_value(constant, "einsum of arrays"), expected, "einsum of arrays")


def jax_einsum_vjp(
    spec: str, operands: list[np.ndarray], cotangent: np.ndarray
) -> list[np.ndarray]:
    """JAX's gradient of ``sum(G * einsum(spec, ...))`` for each operand, in float64."""
    with jax.enable_x64(True):
        _, pullback = jax.vjp(lambda *a: jnp.einsum(spec, *a), *map(jnp.asarray, operands))
        return [np.asarray(g) for g in pullback(jnp.asarray(cotangent))]


@fuzz_settings(25)
@given(case=einsum_cases(max_operands=3), seed=st.integers(0, 2**32 - 1))
def test_valid_spec_gradients_match_jax_and_finite_differences(case: EinsumCase, seed: int) -> None:
    note(f"np.einsum({case.spec!r}) with shapes {case.shapes}")
    operands, cotangent = random_einsum_inputs(case.spec, case.shapes, seed)
    variables = _variables(case, declared=True)
    named: dict[str, Any] = {v.name: a for v, a in zip(variables, operands, strict=True)}
    loss = eg.sum(eg.einsum(case.spec, *variables) * eg.var("G", cotangent.shape))
    grads = expect_value(attempt("eg.grad", lambda: eg.grad(loss, variables)), "grad")
    values = attempt("evaluate grads", lambda: eg.evaluate(list(grads), G=cotangent, **named))
    got = expect_value(values, "evaluate grads")
    expected = jax_einsum_vjp(case.spec, operands, cotangent)
    small = sum(a.size for a in operands) <= FD_ENTRIES
    event("finite differences too" if small else "JAX only (large operands)")
    for k in range(len(operands)):
        assert_close(got[k], expected[k], f"operand {k} vs JAX")
        rule = attempt("eg.backward(...).apply", lambda: eg.backward(case.spec, k))  # noqa: B023
        applied = expect_value(rule, "backward").apply(operands, cotangent)
        assert_close(applied, expected[k], f"backward({k}).apply vs JAX")
        if small:
            numeric = finite_difference_grad(case.spec, operands, cotangent, k)
            assert_close(got[k], numeric, f"operand {k} vs finite differences", rtol=1e-6)


@fuzz_settings(150)
@given(case=spec_texts(), declared=st.booleans())
def test_any_spec_is_accepted_exactly_when_numpy_accepts_it(
    case: EinsumCase, declared: bool
) -> None:
    note(f"spec {case.spec!r} with shapes {case.shapes}")
    arrays = [np.arange(1.0, 1.0 + np.prod(s)).reshape(s) for s in case.shapes]
    variables = _variables(case, declared)
    named = {v.name: a for v, a in zip(variables, arrays, strict=True)}
    outcome = attempt(
        f"eg.einsum({case.spec!r}) evaluated",
        lambda: eg.einsum(case.spec, *variables)(**named),
        text=case.spec,
    )
    expected = _numpy_einsum(case.spec, arrays)
    event(f"einsgrad {'accepts' if outcome.ok else 'refuses'}")
    event(f"numpy {'refuses' if expected is None else 'accepts'}")
    if "\x00" in case.spec:
        # numpy's C parser ends the spec at a NUL and judges what comes before it.
        expect_error(outcome, f"a spec with a NUL character, {case.spec!r}")
        return
    if expected is not None and numpy_size_zero_diagonal(case.spec, case.shapes):
        return
    if outcome.ok:
        assert expected is not None, f"einsgrad accepts {case.spec!r} {case.shapes}; numpy refuses"
        assert_close(outcome.value, expected, f"einsum {case.spec!r}")
    else:
        assert expected is None, (
            f"einsgrad refuses {case.spec!r} {case.shapes}, which numpy accepts: {outcome.error}"
        )


NAMES = st.one_of(
    st.none(),
    st.lists(st.sampled_from(["X", "W", "Y", "Z", "Out", "Result", "dY", "x1", "1x", "α", ""])),
)


@fuzz_settings(100)
@given(
    spec=st.one_of(spec_texts().map(lambda c: c.spec), long_specs()),
    wrt=st.integers(-1, 4),
    names=NAMES,
)
def test_backward_of_any_spec_is_a_rule_or_an_einsgrad_error(
    spec: str, wrt: int, names: list[str] | None
) -> None:
    note(f"eg.backward({spec[:200]!r} ({len(spec)} characters), {wrt}, names={names})")
    outcome = attempt("eg.backward", lambda: eg.backward(spec, wrt, names=names), text=spec)
    if outcome.ok:
        rule = outcome.value
        assert printed("index_form", rule.index_form, len(spec))
        assert isinstance(rule.spec, str)


@fuzz_settings(30)
@given(spec=long_specs(), declared_rank=st.booleans())
def test_long_specs_are_built_or_refused_in_time(spec: str, declared_rank: bool) -> None:
    """A spec of up to 40,000 characters: an expression (printable) or an EinsgradError."""
    note(f"{spec[:100]!r}... ({len(spec)} characters)")
    count = min(spec.count(",") + 1, 2000)
    variables = [eg.var(f"X{k}") for k in range(count)]
    outcome = attempt("eg.einsum of a long spec", lambda: eg.einsum(spec, *variables), text=spec)
    if outcome.ok:
        printed("str", lambda: str(outcome.value), len(spec))
        assert len(printed("repr", lambda: repr(outcome.value), len(spec))) <= REPR_LIMIT
