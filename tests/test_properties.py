"""Property tests: einsgrad's gradients of random valid einsums against independent oracles.

A hypothesis strategy builds random einsum specs numpy accepts, constructed valid rather
than filtered: 1-6 operands over a five-letter alphabet, labels repeated within an
operand (diagonals, traces), labels only one operand has, scalar operands (empty terms),
an optional ``...`` with rank broadcasting and size-1 axes (in the output alone, too: a
``...`` of no axes), explicit labels broadcast with size 1, and implicit or explicit
outputs. Every generated case is first run through
``np.einsum``.

For each case, every operand's gradient of ``L = sum(G * einsum(...))`` from ``eg.grad``
(with and without declared shapes) and from ``eg.backward(spec, k).apply`` is compared
with the exact basis-tensor reference (numpy's forward einsum only, by linearity) and,
where the static predicate ``autograd_unsupported`` allows, with HIPS autograd's own
einsum VJP. Where the predicate excludes autograd, the test asserts autograd really fails,
so the predicate is checked on every example too. The oracles come from
``tests/oracles.py``; the docstring of ``tests/test_einsum_table.py`` explains why they
are independent.

A second property differentiates random matrix chains in which one variable is used by
two operands (possibly transposed), where the gradient is the sum over both uses.

A third property checks ``resolve`` alone against ``np.einsum``'s shapes: random plain
specs with shapes that mostly fit, some changed to a wrong size, rank or operand count.
Where numpy accepts, ``resolve`` gives numpy's result shape; where numpy rejects,
``resolve`` raises a ShapeError. The cases where the two are known to decide differently
are listed in ``_known_difference`` and left out of the comparison.

All properties are derandomized, so CI runs the same examples every time.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import HealthCheck, event, given, note, settings
from hypothesis import strategies as st
from hypothesis.strategies import DrawFn, composite
from oracles import (
    ELLIPSIS,
    Shape,
    assert_autograd_fails,
    assert_close,
    autograd_grad,
    autograd_shared_grad,
    autograd_unsupported,
    explicit_sizes,
    parse_terms,
    random_einsum_inputs,
    reference_grad,
    shared_reference,
)

import einsgrad as eg
from einsgrad.core.spec import parse_spec, resolve

ALPHABET = "abcde"
# Reproducible in CI: derandomized (a fixed seed per test) and no example database.
REPRODUCIBLE = settings(
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow],
)


@dataclass(frozen=True)
class EinsumCase:
    spec: str
    shapes: tuple[Shape, ...]
    seed: int


def _size_one_sometimes(draw: DrawFn, size: int) -> int:
    """``size``, or 1 about a quarter of the time (numpy broadcasts size-1 axes)."""
    return 1 if draw(st.integers(0, 3)) == 0 else size


@composite
def einsum_cases(draw: DrawFn) -> EinsumCase:
    sizes = {label: draw(st.integers(1, 3)) for label in ALPHABET}
    batch: list[int] = []
    if draw(st.booleans()):
        batch = draw(st.lists(st.integers(1, 3), max_size=2))
        use_ellipsis = True
    else:
        use_ellipsis = False
    terms: list[str] = []
    shapes: list[Shape] = []
    any_ellipsis = False
    for _ in range(draw(st.integers(1, 6))):
        count = draw(st.sampled_from([2, 1, 3, 0]))
        labels = draw(st.lists(st.sampled_from(ALPHABET), min_size=count, max_size=count))
        # Per operand and label: the full size or a broadcast size-1 axis. Repeats of a
        # label within one operand share the choice (a diagonal needs equal sizes).
        local = {label: _size_one_sometimes(draw, sizes[label]) for label in dict.fromkeys(labels)}
        term = "".join(labels)
        shape = [local[label] for label in labels]
        if use_ellipsis and draw(st.booleans()):
            rank = draw(st.integers(0, len(batch)))
            dims = [_size_one_sometimes(draw, n) for n in batch[len(batch) - rank :]]
            at = draw(st.integers(0, len(labels)))
            term = term[:at] + ELLIPSIS + term[at:]
            shape = shape[:at] + dims + shape[at:]
            any_ellipsis = True
        terms.append(term)
        shapes.append(tuple(shape))
    spec = ",".join(terms)
    if draw(st.sampled_from(["explicit", "implicit", "explicit"])) == "explicit":
        present = sorted({label for term in terms for label in term if label != "."})
        chosen = draw(st.permutations(present))[: draw(st.integers(0, len(present)))]
        output = "".join(chosen)
        # numpy reads an output '...' that no input has as a '...' of no axes.
        if any_ellipsis or draw(st.integers(0, 4)) == 0:
            at = draw(st.integers(0, len(output)))
            output = output[:at] + ELLIPSIS + output[at:]
        spec += "->" + output
    return EinsumCase(spec, tuple(shapes), draw(st.integers(0, 2**32 - 1)))


def _check_operand(
    spec: str,
    operands: list[np.ndarray],
    cotangent: np.ndarray,
    k: int,
    got: dict[str, Any],
) -> None:
    reference = reference_grad(spec, operands, cotangent, k)
    for how, value in got.items():
        assert_close(value, reference, f"{how} vs reference, operand {k}")
    reason = autograd_unsupported(spec, [a.shape for a in operands], k)
    note(f"operand {k}: autograd {reason or 'supported'}")
    if reason is None:
        expected = autograd_grad(spec, operands, cotangent, k)
        for how, value in got.items():
            assert_close(value, expected, f"{how} vs autograd, operand {k}")
    else:
        assert_autograd_fails(spec, operands, cotangent, k, reason, reference)


def _features(case: EinsumCase) -> list[str]:
    """What a generated case exercises (shown by ``--hypothesis-show-statistics``)."""
    inputs, output = parse_terms(case.spec)
    features = [f"{len(inputs)} operands"]
    if "->" not in case.spec:
        features.append("implicit output")
    if any(not term for term in inputs):
        features.append("scalar operand")
    if any(ELLIPSIS in term for term in inputs):
        features.append("ellipsis")
    elif ELLIPSIS in output:
        features.append("'...' in the output only")
    sizes: dict[str, set[int]] = {}
    for term, shape in zip(inputs, case.shapes, strict=True):
        letters = [label for label in term if label != ELLIPSIS]
        if len(set(letters)) < len(letters):
            features.append("repeated label")
        for label, size in explicit_sizes(term, shape):
            sizes.setdefault(label, set()).add(size)
    if any(len(s) > 1 for s in sizes.values()):
        features.append("explicit label broadcast from size 1")
    letters = [label for term in inputs for label in term if label != ELLIPSIS]
    if any(letters.count(label) == 1 and label not in output for label in letters):
        features.append("label only in one operand, summed")
    return list(dict.fromkeys(features))


@settings(REPRODUCIBLE, max_examples=300, deadline=None)
@given(einsum_cases())
def test_random_einsum_gradients(case: EinsumCase) -> None:
    note(f"np.einsum({case.spec!r}) with shapes {case.shapes}")
    for feature in _features(case):
        event(feature)
    # The generator only builds valid cases: numpy's einsum runs.
    operands, cotangent = random_einsum_inputs(case.spec, case.shapes, case.seed)
    out = np.einsum(case.spec, *operands)
    names = [f"X{k}" for k in range(len(operands))]
    arrays = dict(zip(names, operands, strict=True))
    results: dict[str, tuple[Any, ...]] = {}
    for with_shapes in (True, False):
        variables = [
            eg.var(name, array.shape if with_shapes else None)
            for name, array in zip(names, operands, strict=True)
        ]
        g = eg.var("G", cotangent.shape if with_shapes else None)
        loss = eg.sum(eg.einsum(case.spec, *variables) * g)
        forward = eg.einsum(case.spec, *variables)(**arrays)
        assert_close(forward, out, "forward einsum")
        grads = eg.grad(loss, variables)
        results[f"eg.grad (shapes {'given' if with_shapes else 'left out'})"] = eg.evaluate(
            list(grads), G=cotangent, **arrays
        )
    for k in range(len(operands)):
        got = {how: values[k] for how, values in results.items()}
        got["backward().apply"] = eg.backward(case.spec, k).apply(operands, cotangent)
        _check_operand(case.spec, operands, cotangent, k, got)


# --- one variable in two operands of a chain ------------------------------------------------


@dataclass(frozen=True)
class SharedChain:
    spec: str
    shapes: tuple[Shape, ...]  # one per distinct variable; variable 0 is the shared one
    uses: tuple[int, ...]  # uses[k]: the variable operand k is
    seed: int


@composite
def shared_chains(draw: DrawFn) -> SharedChain:
    """``l0l1,l1l2,...`` with variable S at two positions, the second maybe transposed."""
    count = draw(st.integers(2, 8))  # operands in the chain, two of them S
    first = draw(st.integers(0, count - 2))
    second = draw(st.integers(first + 1, count - 1))
    transposed = draw(st.booleans())
    dims = [draw(st.integers(1, 3)) for _ in range(count + 1)]
    # One at a time: when second == first + 1 the two uses share a label.
    if transposed:  # S's term at `second` is written l_{q+1} l_q
        dims[second + 1] = dims[first]
        dims[second] = dims[first + 1]
    else:
        dims[second] = dims[first]
        dims[second + 1] = dims[first + 1]
    letters = "abcdefghijklmnopqrstuvwxyz"
    terms = [letters[j : j + 2] for j in range(count)]
    if transposed:
        terms[second] = terms[second][::-1]
    ends = [letters[0], letters[count]]
    output = "".join(draw(st.permutations(ends))[: draw(st.integers(0, 2))])
    spec = ",".join(terms) + ("->" + output if draw(st.integers(0, 3)) else "")
    uses: list[int] = []
    shapes: list[Shape] = [(dims[first], dims[first + 1])]
    for j in range(count):
        if j in (first, second):
            uses.append(0)
        else:
            uses.append(len(shapes))
            shapes.append((dims[j], dims[j + 1]))
    at_second = (dims[second], dims[second + 1])
    assert shapes[0] == (at_second[::-1] if transposed else at_second)
    return SharedChain(spec, tuple(shapes), tuple(uses), draw(st.integers(0, 2**32 - 1)))


@settings(REPRODUCIBLE, max_examples=50, deadline=None)
@given(shared_chains())
def test_variable_used_twice_in_a_chain(case: SharedChain) -> None:
    note(f"np.einsum({case.spec!r}) variables {case.shapes} used as {case.uses}")
    first, second = (k for k, v in enumerate(case.uses) if v == 0)
    event("adjacent uses" if second == first + 1 else "separated uses")
    terms = case.spec.partition("->")[0].split(",")
    event("transposed second use" if terms[second][0] > terms[second][1] else "same orientation")
    event(f"{len(case.uses)} operands")
    values, cotangent = random_einsum_inputs(case.spec, case.shapes, case.seed, case.uses)
    operands = [values[v] for v in case.uses]
    expected = shared_reference(case.spec, values, case.uses, cotangent)
    names = ["S", *(f"V{v}" for v in range(1, len(values)))]
    arrays = dict(zip(names, values, strict=True))
    for with_shapes in (True, False):
        variables = [
            eg.var(n, s if with_shapes else None) for n, s in zip(names, case.shapes, strict=True)
        ]
        g = eg.var("G", cotangent.shape if with_shapes else None)
        loss = eg.sum(eg.einsum(case.spec, *[variables[v] for v in case.uses]) * g)
        grads = eg.evaluate(list(eg.grad(loss, variables)), G=cotangent, **arrays)
        for v, got in enumerate(grads):
            assert_close(got, expected[v], f"{names[v]} (shapes given: {with_shapes})")
    # Chains never repeat a label in an operand nor broadcast, so autograd always applies.
    assert all(
        autograd_unsupported(case.spec, [a.shape for a in operands], k) is None
        for k in range(len(operands))
    )
    for v in range(len(values)):
        got = autograd_shared_grad(case.spec, values, case.uses, cotangent, v)
        assert_close(got, expected[v], f"autograd, {names[v]}")


# --- resolve's shapes against numpy's -------------------------------------------------------


@dataclass(frozen=True)
class ShapeCase:
    spec: str
    shapes: tuple[Shape, ...]


#: Labels for the shape cases: a capital too, which sorts first in an implicit output.
SHAPE_ALPHABET = "abcdE"


def _mutated(draw: DrawFn, shapes: list[list[int]]) -> list[list[int]]:
    """``shapes``, perhaps with one size changed, an axis added or dropped, or an operand."""
    how = draw(st.sampled_from(["none", "none", "size", "size", "rank", "count"]))
    if how == "size" and any(shapes):
        k = draw(st.sampled_from([k for k, shape in enumerate(shapes) if shape]))
        axis = draw(st.integers(0, len(shapes[k]) - 1))
        shapes[k][axis] = draw(st.integers(0, 4))
    elif how == "rank":
        k = draw(st.integers(0, len(shapes) - 1))
        if shapes[k] and draw(st.booleans()):
            shapes[k].pop(draw(st.integers(0, len(shapes[k]) - 1)))
        else:
            shapes[k].insert(draw(st.integers(0, len(shapes[k]))), draw(st.integers(1, 3)))
    elif how == "count":
        if len(shapes) > 1 and draw(st.booleans()):
            shapes.pop()
        else:
            shapes.append([])
    return shapes


@composite
def shape_cases(draw: DrawFn) -> ShapeCase:
    """A plain einsum spec numpy accepts, and shapes that mostly fit it.

    Sizes run from 0 to 3, with size-1 axes broadcast against larger ones, repeated labels,
    scalar operands, ``...`` over up to two broadcast axes, and implicit or explicit outputs
    (which may leave out an input's ``...``). A third of the cases then get a changed size,
    rank or operand count, which numpy may or may not still accept.
    """
    sizes = {label: draw(st.integers(0, 3)) for label in SHAPE_ALPHABET}
    batch = draw(st.lists(st.integers(0, 3), max_size=2))
    use_ellipsis = draw(st.sampled_from([True, False, True]))
    terms: list[str] = []
    shapes: list[list[int]] = []
    for _ in range(draw(st.integers(1, 4))):
        count = draw(st.sampled_from([2, 1, 3, 0]))
        labels = draw(st.lists(st.sampled_from(SHAPE_ALPHABET), min_size=count, max_size=count))
        local = {label: _size_one_sometimes(draw, sizes[label]) for label in dict.fromkeys(labels)}
        term = "".join(labels)
        shape = [local[label] for label in labels]
        if use_ellipsis and draw(st.sampled_from([True, False, True])):
            rank = draw(st.integers(0, len(batch)))
            dims = [_size_one_sometimes(draw, n) for n in batch[len(batch) - rank :]]
            at = draw(st.integers(0, len(labels)))
            term = term[:at] + ELLIPSIS + term[at:]
            shape = shape[:at] + dims + shape[at:]
        terms.append(term)
        shapes.append(shape)
    spec = ",".join(terms)
    if draw(st.sampled_from(["explicit", "implicit", "explicit"])) == "explicit":
        present = sorted({label for term in terms for label in term if label != "."})
        chosen = draw(st.permutations(present))[: draw(st.integers(0, len(present)))]
        output = "".join(chosen)
        if ELLIPSIS in spec and draw(st.integers(0, 3)):
            at = draw(st.integers(0, len(output)))
            output = output[:at] + ELLIPSIS + output[at:]
        spec += "->" + output
    return ShapeCase(spec, tuple(tuple(shape) for shape in _mutated(draw, shapes)))


def _repeated_label_sizes(term: list[str] | tuple[str, ...], shape: Shape) -> list[list[int]]:
    """The sizes of each label an operand repeats, in axis order ([] if the rank is wrong)."""
    explicit = len(term) - term.count(ELLIPSIS)
    if len(shape) < explicit or (ELLIPSIS not in term and len(shape) != explicit):
        return []
    by_label: dict[str, list[int]] = {}
    for label, size in explicit_sizes(tuple(term), shape):
        by_label.setdefault(label, []).append(size)
    return [sizes for sizes in by_label.values() if len(sizes) > 1]


def _known_difference(case: ShapeCase) -> str | None:
    """The known difference from numpy that ``case`` may hit, or ``None``.

    Each entry is a case numpy and einsgrad are known to decide differently; on every
    other case they must agree. The checks are conservative: a case that only might hit a
    difference is left out of the comparison too.

    * **'...' summed**: an explicit output without ``...`` while an input's ``...`` covers
      at least one axis. numpy rejects it ("output has more dimensions than subscripts
      given"); einsgrad sums those axes, as JAX, PyTorch and opt_einsum do (a deliberate
      extension: einsgrad's own sums over arrays of unknown rank are such einsums).
      ``test_einsum_accepts_exactly_what_numpy_accepts`` checks its value.
    * **numpy's size-0 diagonal**: one operand repeating a label whose first axis has size
      0 while a later one does not. numpy's single-operand path takes a size-0 axis for
      "not yet known" and accepts ``np.einsum('ii->i', np.zeros((0, 3)))`` as shape (3,);
      einsgrad rejects it, as numpy itself does with two operands or any summed label.
    """
    inputs, output = parse_terms(case.spec)
    if len(inputs) != len(case.shapes):
        return None
    if "->" in case.spec and ELLIPSIS not in output:
        for term, shape in zip(inputs, case.shapes, strict=True):
            if ELLIPSIS in term and len(shape) > len(term) - 1:
                return "'...' summed"
    if len(inputs) == 1:
        for sizes in _repeated_label_sizes(inputs[0], case.shapes[0]):
            if sizes[0] == 0 and any(sizes):
                return "numpy's size-0 diagonal"
    return None


@settings(REPRODUCIBLE, max_examples=200, deadline=None)
@given(shape_cases())
def test_resolve_agrees_with_numpy_on_shapes(case: ShapeCase) -> None:
    """``resolve`` accepts exactly the shapes ``np.einsum`` does, with numpy's result shape."""
    note(f"np.einsum({case.spec!r}) with shapes {case.shapes}")
    spec = parse_spec(case.spec)
    try:
        expected: Shape | None = np.einsum(case.spec, *[np.zeros(s) for s in case.shapes]).shape
    except ValueError as error:
        note(f"numpy rejects: {error}")
        expected = None
    try:
        got: Shape | None = resolve(spec, case.shapes).shape
    except eg.EinsgradError as error:
        note(f"einsgrad rejects: {error}")
        assert isinstance(error, eg.ShapeError), f"{type(error).__name__}, not a ShapeError"
        got = None
    known = _known_difference(case)
    event(f"known difference: {known}" if known else "compared")
    event("numpy rejects" if expected is None else "numpy accepts")
    if known is None:
        assert got == expected, f"einsgrad gives {got}, numpy {expected}"


@pytest.mark.parametrize(
    ("case", "difference"),
    [
        (ShapeCase("...ij->ij", ((1, 2, 3),)), "'...' summed"),
        (ShapeCase("a...,b->ab", ((2, 3), (4,))), "'...' summed"),
        (ShapeCase("ii->i", ((0, 3),)), "numpy's size-0 diagonal"),
        (ShapeCase("iij->ji", ((0, 2, 5),)), "numpy's size-0 diagonal"),
    ],
)
def test_known_differences_from_numpy_are_real(case: ShapeCase, difference: str) -> None:
    """Each listed difference still holds: when one goes away, take it off the list."""
    assert _known_difference(case) == difference
    try:
        np.einsum(case.spec, *[np.zeros(s) for s in case.shapes])
        numpy_accepts = True
    except ValueError:
        numpy_accepts = False
    try:
        resolve(parse_spec(case.spec), case.shapes)
        einsgrad_accepts = True
    except eg.ShapeError:
        einsgrad_accepts = False
    assert numpy_accepts != einsgrad_accepts


# --- which spec strings eg.einsum and eg.backward accept, against numpy ---------------------


@dataclass(frozen=True)
class SpecString:
    spec: str
    shapes: tuple[Shape, ...]
    seed: int


#: Labels of the acceptance cases (capitals too), and what may replace one character.
SPEC_ALPHABET = "abcAB"
CORRUPTIONS = [" ", ".", "-", ">", ",", "1", "é", "z", "..."]


def _output_term(draw: DrawFn, terms: list[str]) -> str:
    """An explicit output: some of the inputs' labels, perhaps with ``...`` (whether or
    not an input has one), perhaps a repeated label or one no input has."""
    present = sorted({label for term in terms for label in term if label != "."})
    output = "".join(draw(st.permutations(present))[: draw(st.integers(0, len(present)))])
    if draw(st.integers(0, 2)) == 0:
        at = draw(st.integers(0, len(output)))
        output = output[:at] + ELLIPSIS + output[at:]
    extra = draw(st.sampled_from(["", "", "", "", "repeat", "absent"]))
    if extra == "repeat" and present:
        output += draw(st.sampled_from(present))
    elif extra == "absent":
        output += draw(st.sampled_from([c for c in SPEC_ALPHABET + "z" if c not in present]))
    return output


def _spaced(draw: DrawFn, spec: str) -> str:
    """``spec`` with spaces put in at a few places (numpy ignores them between tokens)."""
    for _ in range(draw(st.sampled_from([0, 0, 1, 2]))):
        at = draw(st.integers(0, len(spec)))
        spec = spec[:at] + " " + spec[at:]
    return spec


@composite
def spec_strings(draw: DrawFn) -> SpecString:
    """A spec string and shapes, valid or nearly so, for numpy to judge.

    The terms are built as in :func:`einsum_cases` (repeated labels, scalar operands,
    size-1 axes, ``...`` with rank broadcasting), over lower- and uppercase labels; the
    output is implicit or explicit (see :func:`_output_term`); spaces go anywhere, even
    inside ``...`` or ``->``; a few cases get one character replaced, or their shapes a
    changed size, rank or operand count.
    """
    sizes = {label: draw(st.integers(1, 3)) for label in SPEC_ALPHABET}
    batch = draw(st.lists(st.integers(1, 3), max_size=2))
    terms: list[str] = []
    shapes: list[list[int]] = []
    for _ in range(draw(st.integers(1, 3))):
        count = draw(st.sampled_from([2, 1, 3, 0]))
        labels = draw(st.lists(st.sampled_from(SPEC_ALPHABET), min_size=count, max_size=count))
        local = {label: _size_one_sometimes(draw, sizes[label]) for label in dict.fromkeys(labels)}
        term, shape = "".join(labels), [local[label] for label in labels]
        if draw(st.integers(0, 2)) == 0:
            rank = draw(st.integers(0, len(batch)))
            dims = [_size_one_sometimes(draw, n) for n in batch[len(batch) - rank :]]
            at = draw(st.integers(0, len(labels)))
            term, shape = term[:at] + ELLIPSIS + term[at:], shape[:at] + dims + shape[at:]
        terms.append(term)
        shapes.append(shape)
    spec = ",".join(terms)
    if draw(st.booleans()):
        spec += "->" + _output_term(draw, terms)
    spec = _spaced(draw, spec)
    if spec and draw(st.integers(0, 7)) == 0:
        at = draw(st.integers(0, len(spec) - 1))
        spec = spec[:at] + draw(st.sampled_from(CORRUPTIONS)) + spec[at + 1 :]
    shaped = _mutated(draw, shapes) if draw(st.integers(0, 3)) == 0 else shapes
    return SpecString(spec, tuple(tuple(s) for s in shaped), draw(st.integers(0, 2**32 - 1)))


#: numpy's refusal of the one deliberate extension, an output that sums '...' axes.
SUMMED_ELLIPSIS = "output has more dimensions than subscripts given"


@dataclass(frozen=True)
class NumpyVerdict:
    """What numpy makes of a case: the result, and the spec and cotangent whose exact
    gradient (by linearity, from numpy's einsum) is the one to expect."""

    result: np.ndarray
    spec: str

    def reference_grad(
        self, operands: list[np.ndarray], cotangent: np.ndarray, k: int
    ) -> np.ndarray:
        """dL/dX_k of L = sum(G * result): summing axes broadcasts G back along them."""
        full = np.einsum(self.spec, *operands).shape
        return reference_grad(self.spec, operands, np.broadcast_to(cotangent, full), k)


def _numpy_einsum(case: SpecString, operands: list[np.ndarray]) -> NumpyVerdict | None:
    """numpy's verdict on the case, or None when numpy rejects the spec with these shapes.

    Where numpy refuses only because the output sums the axes under ``...`` (einsgrad's
    extension, JAX's and PyTorch's behaviour), the expected result is numpy's einsum with
    ``...`` kept in front of the output, summed over those axes.
    """
    try:
        return NumpyVerdict(np.asarray(np.einsum(case.spec, *operands)), case.spec)
    except ValueError as error:
        note(f"numpy rejects: {error}")
        if SUMMED_ELLIPSIS not in str(error):
            return None
    lhs, _, rhs = case.spec.partition("->")
    kept = np.asarray(np.einsum(f"{lhs}->...{rhs}", *operands))
    event("'...' summed: numpy with '...' kept, then summed")
    leading = kept.ndim - len(rhs.replace(" ", ""))
    return NumpyVerdict(kept.sum(axis=tuple(range(leading))), f"{lhs}->...{rhs}")


def _einsgrad_einsum(case: SpecString, operands: list[np.ndarray], declared: bool) -> Any:
    """eg.einsum's result (variables declared with their shapes or not), or its error."""
    names = [f"X{k}" for k in range(len(operands))]
    variables = [
        eg.var(name, array.shape if declared else None)
        for name, array in zip(names, operands, strict=True)
    ]
    try:
        return eg.einsum(case.spec, *variables)(**dict(zip(names, operands, strict=True)))
    except eg.EinsgradError as error:
        assert str(error), "an einsgrad error with an empty message"
        assert isinstance(error, eg.SpecError | eg.ShapeError), type(error).__name__
        return error


@settings(REPRODUCIBLE, max_examples=400, deadline=None)
@given(spec_strings())
def test_einsum_accepts_exactly_what_numpy_accepts(case: SpecString) -> None:
    """eg.einsum and eg.backward accept a spec with given shapes exactly when np.einsum does
    (but for summed '...' axes, see :func:`_numpy_einsum`), and then give numpy's result
    (eg.einsum) and the exact gradient (eg.backward)."""
    note(f"np.einsum({case.spec!r}) with shapes {case.shapes}")
    rng = np.random.default_rng(case.seed)
    operands = [rng.standard_normal(shape) for shape in case.shapes]
    expected = _numpy_einsum(case, operands)
    event("numpy rejects" if expected is None else "numpy accepts")
    for declared in (True, False):
        got = _einsgrad_einsum(case, operands, declared)
        if expected is None:
            assert isinstance(got, eg.EinsgradError), f"einsgrad accepts, giving {got!r}"
        else:
            assert not isinstance(got, Exception), f"einsgrad rejects: {got}"
            assert_close(got, expected.result, f"eg.einsum (shapes declared: {declared})")
    if expected is None:
        return
    cotangent = rng.standard_normal(expected.result.shape)
    for k in range(len(operands)):
        got = eg.backward(case.spec, k).apply(operands, cotangent)
        assert_close(got, expected.reference_grad(operands, cotangent, k), f"backward {k}")


@pytest.mark.parametrize(("spec", "shape"), [("ij->...ij", (2, 3)), ("i->...i", (4,))])
def test_an_output_ellipsis_no_input_has_stands_for_no_axes(spec: str, shape: Shape) -> None:
    x = np.arange(float(np.prod(shape))).reshape(shape)
    assert_close(eg.einsum(spec, eg.var("X", shape))(X=x), np.einsum(spec, x), spec)


@pytest.mark.parametrize(
    ("spec", "axes"), [("...->", (0, 1)), ("i...->i", (1,)), ("i...->", (0, 1))]
)
def test_an_output_without_ellipsis_sums_its_axes_as_jax_does(
    spec: str, axes: tuple[int, ...]
) -> None:
    """The one deliberate extension: numpy refuses, JAX (and PyTorch) sum."""
    x = np.arange(6.0).reshape(2, 3)
    with pytest.raises(ValueError, match=SUMMED_ELLIPSIS):
        np.einsum(spec, x)
    expected = np.asarray(jnp.einsum(spec, x), dtype=np.float64)  # exact: small integers
    assert_close(expected, x.sum(axis=axes), "jax")
    for declared in ((2, 3), None):
        assert_close(eg.einsum(spec, eg.var("X", declared))(X=x), expected, spec)
