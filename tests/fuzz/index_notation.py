"""Index-notation equations of the fuzz layer: their text for ``eg.parse``, and an oracle.

An :class:`Equation` ``Y[labels] = term ± term ...`` is a sum of products of factors: a
tensor ``A[i,k]`` (a repeated label is its diagonal), a number, a tensor to a constant
power (``A[i] ** 2``, which keeps the tensor's labels) or a function of a product
(``tanh(A[i,k] * B[k])``); a factor after ``/`` divides. :func:`reference` evaluates it
with ``numpy.einsum`` by the rules ``einsgrad/frontends/index.py`` documents, restated
here from its docstring and not from its code:

* Einstein convention: in each product, a label not needed outside it is summed;
* function scope: inside a function's argument, a label is needed outside only if the
  equation's left side, or another factor of the enclosing product, mentions it;
* a sum's terms are broadcast to the labels they have between them, then to the left
  side's order.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from fuzz.expressions import apply_unary

#: Functions of index notation (einsgrad's elementwise functions of one argument).
INDEX_FUNCTIONS = ("relu", "exp", "tanh", "sigmoid", "abs", "log", "sqrt")


@dataclass(frozen=True)
class Factor:
    kind: str  # "tensor", "number", "power" or a function name
    name: str = ""
    labels: tuple[str, ...] = ()
    inner: tuple[Factor, ...] = ()
    number: float = 0.0
    inverted: bool = False


@dataclass(frozen=True)
class Term:
    factors: tuple[Factor, ...]
    negated: bool = False


@dataclass(frozen=True)
class Equation:
    labels: tuple[str, ...]
    terms: tuple[Term, ...]


def _product_text(factors: tuple[Factor, ...]) -> str:
    text = ""
    for k, factor in enumerate(factors):
        if k:
            text += " / " if factor.inverted else " * "
        text += _factor_text(factor)
    return text


def _factor_text(factor: Factor) -> str:
    if factor.kind == "number":
        return repr(factor.number)
    tensor = f"{factor.name}[{', '.join(factor.labels)}]" if factor.labels else factor.name
    if factor.kind == "tensor":
        return tensor
    if factor.kind == "power":
        return f"{tensor} ** {factor.number!r}"
    return f"{factor.kind}({_product_text(factor.inner)})"


def render(equation: Equation) -> str:
    text = ""
    for k, term in enumerate(equation.terms):
        if k:
            text += " - " if term.negated else " + "
        text += _product_text(term.factors)
    left = f"Y[{', '.join(equation.labels)}]" if equation.labels else "Y"
    return f"{left} = {text}"


def mentioned(factor: Factor) -> set[str]:
    """Labels written anywhere in ``factor``, inside its functions too."""
    found, stack = set(), [factor]
    while stack:
        current = stack.pop()
        found.update(current.labels)
        stack.extend(current.inner)
    return found


def tensor_shapes(equation: Equation, sizes: Mapping[str, int]) -> dict[str, tuple[int, ...]]:
    shapes = {}
    stack = [f for term in equation.terms for f in term.factors]
    while stack:
        factor = stack.pop()
        if factor.kind in ("tensor", "power"):
            shapes[factor.name] = tuple(sizes[label] for label in factor.labels)
        stack.extend(factor.inner)
    return shapes


class _Letters(dict[str, str]):
    """Einsum letters for label names, given out in order."""

    def __missing__(self, label: str) -> str:
        self[label] = "abcdefghijklmnopqrstuvwxyz"[len(self)]
        return self[label]

    def term(self, labels: tuple[str, ...] | list[str]) -> str:
        return "".join(self[label] for label in labels)


def _factor_value(
    factor: Factor, needed: set[str], arrays: Mapping[str, np.ndarray], letters: _Letters
) -> tuple[Any, tuple[str, ...]]:
    if factor.kind == "number":
        return np.asarray(factor.number), ()
    if factor.kind in ("tensor", "power"):
        distinct = tuple(dict.fromkeys(factor.labels))
        value = np.einsum(
            f"{letters.term(factor.labels)}->{letters.term(distinct)}", arrays[factor.name]
        )
        return (value**factor.number if factor.kind == "power" else value), distinct
    value, labels = _product_value(factor.inner, needed, arrays, letters)
    return apply_unary(np, factor.kind, value), labels


def _product_value(
    factors: tuple[Factor, ...],
    needed: set[str],
    arrays: Mapping[str, np.ndarray],
    letters: _Letters,
) -> tuple[Any, tuple[str, ...]]:
    mentions = [mentioned(f) for f in factors]
    values, terms = [], []
    for p, factor in enumerate(factors):
        outside = needed.union(*(m for q, m in enumerate(mentions) if q != p))
        value, labels = _factor_value(factor, outside, arrays, letters)
        values.append(1.0 / value if factor.inverted else value)
        terms.append(labels)
    everything = list(dict.fromkeys(label for term in terms for label in term))
    kept = tuple(label for label in everything if label in needed)
    spec = ",".join(letters.term(t) for t in terms) + "->" + letters.term(kept)
    return np.einsum(spec, *values), kept


def _aligned(
    value: Any,
    labels: tuple[str, ...],
    target: tuple[str, ...],
    sizes: Mapping[str, int],
    letters: _Letters,
) -> Any:
    """``value`` (axes ``labels``) on axes ``target``, broadcast along the missing ones."""
    ones = [np.ones(sizes[label]) for label in target if label not in labels]
    missing = [label for label in target if label not in labels]
    spec = ",".join([letters.term(labels), *(letters[m] for m in missing)])
    return np.einsum(f"{spec}->{letters.term(target)}", value, *ones)


def reference(
    equation: Equation, arrays: Mapping[str, np.ndarray], sizes: Mapping[str, int]
) -> np.ndarray:
    """The value of ``equation``'s right side, with axes in its left side's order."""
    letters = _Letters()
    needed = set(equation.labels)
    total = np.zeros(tuple(sizes[label] for label in equation.labels))
    for term in equation.terms:
        value, labels = _product_value(term.factors, needed, arrays, letters)
        aligned = _aligned(value, labels, equation.labels, sizes, letters)
        total = total - aligned if term.negated else total + aligned
    return total
