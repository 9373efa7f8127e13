"""The test oracles shared by the test files: what einsgrad's results are checked against.

Nothing here calls einsgrad. Every oracle is built from numpy's forward computations or
from HIPS autograd, so it cannot share a mistake with einsgrad's derivative rules.

Generic oracles, for a scalar function of named arrays:

* :func:`finite_difference`: central differences with respect to every entry of one array;
* :func:`autograd_gradients` (and :func:`autograd_gradients_traced`, for nesting):
  autograd's gradient of a function written with ``autograd.numpy``;
* :func:`caret` and :func:`assert_caret_under`: where the caret line of an einsgrad error
  message points.

Einsum oracles, for ``L = sum(G * einsum(spec, *operands))`` with a fixed cotangent ``G``
(``tests/test_einsum_table.py`` explains why they are independent of each other):

* :func:`reference_grad`: the exact basis-tensor gradient. einsum is linear in each
  operand, so ``dL/dX_k[idx] = sum(G * np.einsum(spec, ..., e_idx, ...))`` with ``e_idx``
  the basis tensor that is 1 at ``idx``: numpy's forward einsum only, never a derivative
  rule. :func:`shared_reference` sums it over the operands one variable stands for;
* :func:`finite_difference_grad`: central differences of ``L``;
* :func:`autograd_grad` and :func:`autograd_shared_grad`: autograd's einsum VJP, where the
  static predicate :func:`autograd_unsupported` allows it; :func:`assert_autograd_fails`
  checks that autograd really fails where the predicate says it does.

The einsum specs are read by a parser of the tests' own (:func:`parse_terms`), independent
of ``einsgrad.spec``.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import autograd
import autograd.numpy as anp
import numpy as np
import pytest

Shape = tuple[int, ...]
Term = list[str]

ELLIPSIS = "..."
FD_STEP = 1e-6


# --- generic oracles: a scalar function of named arrays ------------------------------------


def finite_difference(
    f: Callable[..., Any], arrays: Mapping[str, np.ndarray], name: str
) -> np.ndarray:
    """Central differences of the scalar ``f(**arrays)`` with respect to ``arrays[name]``.

    Every array is copied to float64 first; entry by entry, ``arrays[name]`` is moved by
    ``±FD_STEP`` in place and ``f`` is called with all the arrays as keyword arguments.
    """
    point = {k: np.array(v, dtype=np.float64) for k, v in arrays.items()}
    x = point[name]
    result = np.zeros_like(x)
    for index in np.ndindex(x.shape):
        original = x[index]
        x[index] = original + FD_STEP
        up = float(f(**point))
        x[index] = original - FD_STEP
        down = float(f(**point))
        x[index] = original
        result[index] = (up - down) / (2 * FD_STEP)
    return result


def autograd_gradients_traced(
    ref: Callable[..., Any], point: Mapping[str, Any], names: Sequence[str]
) -> tuple[Any, ...]:
    """autograd's gradient as a traceable function (for nesting), without array coercion.

    The gradient of the scalar ``ref(**point)`` with respect to each of ``names``.
    """

    def as_positional(*values: Any) -> Any:
        return ref(**{**point, **dict(zip(names, values, strict=True))})

    grads: tuple[Any, ...] = autograd.grad(as_positional, tuple(range(len(names))))(
        *(point[n] for n in names)
    )
    return grads


def autograd_gradients(
    ref: Callable[..., Any], arrays: Mapping[str, np.ndarray], names: Sequence[str]
) -> tuple[np.ndarray, ...]:
    """autograd's gradient of the scalar ``ref(**arrays)`` with respect to each of ``names``."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # "output seems independent of input"
        grads = autograd_gradients_traced(ref, arrays, names)
    return tuple(np.asarray(g) for g in grads)


def caret(message: str) -> tuple[str, int, int]:
    """The quoted text above the caret line, the caret column in it, and the caret width."""
    lines = message.splitlines()
    for k, line in enumerate(lines):
        stripped = line.strip()
        if k > 0 and stripped and set(stripped) == {"^"}:
            text_line, caret_line = lines[k - 1], line
            indent = len(text_line) - len(text_line.lstrip(" ")) if text_line.strip() else 4
            indent = min(indent, 4)  # the quote is indented by four spaces
            column = caret_line.index("^") - indent
            return text_line[indent:], column, len(stripped)
    raise AssertionError(f"no caret line in:\n{message}")


def assert_caret_under(message: str, text: str, underlined: str) -> int:
    """``message`` quotes ``text`` with a caret line under ``underlined``; the caret column."""
    quoted, column, width = caret(message)
    assert quoted == text
    assert quoted[column : column + width] == underlined
    return column


def assert_close(
    actual: Any, expected: np.ndarray, what: str, *, rtol: float = 1e-7, atol: float = 1e-9
) -> None:
    """``actual`` has ``expected``'s shape and is close to it; ``what`` names the check."""
    actual = np.asarray(actual)
    assert actual.shape == expected.shape, f"{what}: shape {actual.shape} != {expected.shape}"
    np.testing.assert_allclose(actual, expected, rtol=rtol, atol=atol, err_msg=what)


# --- an einsum parser of the tests' own (independent of einsgrad.spec) ----------------------


def _split_term(term: str) -> Term:
    """``"a...bc"`` -> ``["a", "...", "b", "c"]``."""
    head, dots, tail = term.partition(ELLIPSIS)
    return [*head, *([ELLIPSIS] if dots else []), *tail]


def parse_terms(spec: str) -> tuple[list[Term], Term]:
    """The input terms and the (explicit or numpy-implicit) output term of ``spec``."""
    spec = spec.replace(" ", "")
    lhs, arrow, rhs = spec.partition("->")
    inputs = [_split_term(t) for t in lhs.split(",")]
    if arrow:
        return inputs, _split_term(rhs)
    letters = [label for term in inputs for label in term if label != ELLIPSIS]
    once = sorted(label for label in set(letters) if letters.count(label) == 1)
    has_ellipsis = any(ELLIPSIS in term for term in inputs)
    return inputs, [ELLIPSIS] * has_ellipsis + once


def explicit_sizes(term: Term, shape: Shape) -> list[tuple[str, int]]:
    """(label, size) for each explicit label axis of an operand with ``term`` and ``shape``."""
    if ELLIPSIS not in term:
        return list(zip(term, shape, strict=True))
    cut = term.index(ELLIPSIS)
    after = len(term) - cut - 1
    head = list(zip(term[:cut], shape[:cut], strict=True))
    tail = list(zip(term[cut + 1 :], shape[len(shape) - after :], strict=True))
    return head + tail


def autograd_unsupported(spec: str, shapes: Sequence[Shape], k: int) -> str | None:
    """Why autograd's einsum VJP cannot differentiate operand ``k`` (``None`` if it can).

    A static look at the spec and the shapes, mirroring autograd's ``grad_einsum``:

    * ``"repeated label"``: operand ``k``'s term repeats a label. autograd contracts onto
      that term, an einsum output with a repeated label, which numpy rejects.
    * ``"size-1 broadcast"``: operand ``k`` has an explicit label of size > 1 that the
      output lacks and that every other operand carrying it has at size 1. autograd's
      contraction then yields a size-1 axis, and its ``unbroadcast`` never enlarges one.
    """
    inputs, output = parse_terms(spec)
    term = inputs[k]
    letters = [label for label in term if label != ELLIPSIS]
    if len(set(letters)) != len(letters):
        return "repeated label"
    others: dict[str, set[int]] = {}
    for j, (other, shape) in enumerate(zip(inputs, shapes, strict=True)):
        if j != k:
            for label, size in explicit_sizes(other, shape):
                others.setdefault(label, set()).add(size)
    for label, size in explicit_sizes(term, shapes[k]):
        if size > 1 and label not in output and others.get(label) == {1}:
            return "size-1 broadcast"
    return None


# --- einsum oracles: L = sum(G * einsum(spec, *operands)) ----------------------------------


def random_einsum_inputs(
    spec: str, shapes: Sequence[Shape], seed: int, uses: Sequence[int] | None = None
) -> tuple[list[np.ndarray], np.ndarray]:
    """Standard-normal arrays of ``shapes``, then a standard-normal cotangent ``G``.

    Both come from one ``np.random.default_rng(seed)``, the arrays first. ``G`` has the
    shape of ``np.einsum(spec, *operands)``, where operand ``k`` is ``arrays[uses[k]]``
    (the arrays in order if ``uses`` is ``None``).
    """
    rng = np.random.default_rng(seed)
    values = [rng.standard_normal(shape) for shape in shapes]
    operands = values if uses is None else [values[v] for v in uses]
    cotangent = rng.standard_normal(np.einsum(spec, *operands).shape)
    return values, cotangent


def einsum_loss(spec: str, operands: Sequence[np.ndarray], cotangent: np.ndarray) -> float:
    """``L = sum(G * np.einsum(spec, *operands))`` with ``G = cotangent``."""
    return float(np.sum(cotangent * np.einsum(spec, *operands)))


def reference_grad(
    spec: str, operands: Sequence[np.ndarray], cotangent: np.ndarray, k: int
) -> np.ndarray:
    """Exact dL/dX_k by linearity: L evaluated with X_k replaced by each basis tensor."""
    shape = operands[k].shape
    result = np.zeros(shape)
    for idx in np.ndindex(*shape):
        basis = np.zeros(shape)
        basis[idx] = 1.0
        replaced = [*operands[:k], basis, *operands[k + 1 :]]
        result[idx] = einsum_loss(spec, replaced, cotangent)
    return result


def shared_reference(
    spec: str, values: Sequence[np.ndarray], uses: Sequence[int], cotangent: np.ndarray
) -> list[np.ndarray]:
    """Chain rule: a variable's gradient is the sum of its operands' reference gradients.

    Operand ``k`` of ``spec`` is the variable ``values[uses[k]]``.
    """
    operands = [values[v] for v in uses]
    total = [np.zeros(v.shape) for v in values]
    for k, v in enumerate(uses):
        total[v] += reference_grad(spec, operands, cotangent, k)
    return total


def finite_difference_grad(
    spec: str, operands: Sequence[np.ndarray], cotangent: np.ndarray, k: int
) -> np.ndarray:
    """Central differences of L with respect to every entry of X_k."""
    names = [f"X{j}" for j in range(len(operands))]

    def f(**arrays: np.ndarray) -> float:
        return einsum_loss(spec, [arrays[n] for n in names], cotangent)

    return finite_difference(f, dict(zip(names, operands, strict=True)), names[k])


def autograd_grad(
    spec: str, operands: Sequence[np.ndarray], cotangent: np.ndarray, k: int
) -> np.ndarray:
    """dL/dX_k from HIPS autograd (raises or misbehaves where autograd_unsupported says)."""

    def f(*arrays: Any) -> Any:
        return anp.sum(cotangent * anp.einsum(spec, *arrays))

    return np.asarray(autograd.grad(f, k)(*operands))


def autograd_shared_grad(
    spec: str, values: Sequence[np.ndarray], uses: Sequence[int], cotangent: np.ndarray, v: int
) -> np.ndarray:
    """dL/d(variable v) from HIPS autograd, where operand ``k`` is ``values[uses[k]]``."""

    def f(*variables: Any) -> Any:
        return anp.sum(cotangent * anp.einsum(spec, *[variables[u] for u in uses]))

    return np.asarray(autograd.grad(f, v)(*values))


def assert_autograd_fails(
    spec: str,
    operands: Sequence[np.ndarray],
    cotangent: np.ndarray,
    k: int,
    reason: str,
    reference: np.ndarray,
) -> None:
    """autograd raises (repeated label) or gives a wrongly shaped gradient (size-1 broadcast)."""
    if reason == "repeated label":
        with pytest.raises(ValueError, match="output subscript"):
            autograd_grad(spec, operands, cotangent, k)
        return
    assert reason == "size-1 broadcast", reason
    got = autograd_grad(spec, operands, cotangent, k)
    assert got.shape != reference.shape, (
        f"autograd now handles {spec!r} operand {k} ({reason}); drop the exclusion"
    )
