"""Builders for derivations with static shapes: einsums written with explicit letters.

Forward mode with extra axes and batched reverse mode (generalized Jacobians) write
each step as an einsum whose labels are letters handed out in order; these helpers are
what every node kind's rules share for that.
"""

from __future__ import annotations

from collections.abc import Sequence

from einsgrad.core.errors import ShapeError
from einsgrad.core.ir import Const, Einsum, Expr, Shape
from einsgrad.core.labels import letters
from einsgrad.core.spec import parse_spec, resolve
from einsgrad.graph.ops import _einsum_node, _generalized, normalize_axes
from einsgrad.graph.printing import short_name

__all__ = [
    "ONE",
    "add_all",
    "ones_like",
    "reduce_labels",
    "right_aligned",
    "static_einsum",
    "static_shape",
    "static_spec",
]

ONE = Const(1.0)


def static_shape(node: Expr) -> Shape:
    """``node``'s static shape (Jacobians are derived with every shape known)."""
    if node.shape is None:
        raise ShapeError(f"{short_name(node)} has no static shape; give its variables shapes")
    return node.shape


def static_einsum(text: str, operands: Sequence[Expr], shape: Shape) -> Expr:
    """A generalized einsum with a static output shape."""
    return _einsum_node(parse_spec(text, generalized=True), operands, shape)


def ones_like(node: Expr) -> Expr:
    """Ones of ``node``'s shape (known now or only at evaluation).

    With the shape known the labels are explicit letters, so the ones are recognised as a
    broadcast constant and fold away where they multiply (``1 ⊙ x`` is ``x``).
    """
    if node.shape is not None:
        return static_einsum("->" + letters(len(node.shape)), [ONE], node.shape)
    return _generalized("->...", ONE, node)


def right_aligned(out: str, rank: int) -> str:
    """The last ``rank`` labels of ``out``: how numpy broadcasting aligns a lower rank."""
    return out[len(out) - rank :] if rank else ""


def static_spec(node: Einsum) -> tuple[list[str], str, int]:
    """``node``'s einsum with explicit letters (no '...'), and the number of labels used."""
    resolved = resolve(
        node.spec,
        [static_shape(op) for op in node.operands],
        node.like if isinstance(node.like, tuple) else None,
    )
    count = len(resolved.sizes)
    names = letters(count)
    terms = ["".join(names[label] for label in term) for term in resolved.inputs]
    return terms, "".join(names[label] for label in resolved.output), count


def reduce_labels(arg: Expr, axes: tuple[int, ...] | None, start: int) -> tuple[str, str]:
    """Letters for a reduction's argument axes (from ``start``) and for the kept ones."""
    rank = len(static_shape(arg))
    full = letters(rank, start)
    chosen = normalize_axes(axes, rank, arg)
    return full, "".join(c for i, c in enumerate(full) if i not in chosen)


def add_all(terms: Sequence[Expr]) -> Expr:
    """``terms[0] + terms[1] + ...``, in order (the sum of contributions to one node)."""
    total = terms[0]
    for term in terms[1:]:
        total = total + term
    return total
