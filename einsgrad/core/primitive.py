"""Primitive operations: an elementwise or reduction kernel with its derivative rule.

The rules themselves are registered by :mod:`einsgrad.rules.elementwise` and
:mod:`einsgrad.rules.reductions`; the graph builders look primitives up here by name.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from einsgrad.core.errors import MissingRuleError
from einsgrad.core.ir import Expr, Map, Meta, Reduce

__all__ = ["ELEMENTWISE", "REDUCTIONS", "ElementwiseOp", "ReductionOp", "elementwise_op"]

ElementwiseRule = Callable[[Map, Expr, tuple[bool, ...]], tuple[Expr | None, ...]]
ReductionRule = Callable[[Reduce, Expr], Expr | None]


@dataclass(frozen=True, eq=False)
class ElementwiseOp:
    """An elementwise primitive: kernel name, arity, derivative rule and display."""

    name: str
    arity: int
    forward: Callable[..., Any] = field(repr=False)  # forward(xp, *args), xp: array namespace
    rule: ElementwiseRule = field(repr=False)
    infix: str | None = None  # operator symbol for display, e.g. "+"
    precedence: int = 100  # binding strength for display (higher binds tighter)
    differentiable: bool = True  # False for masks (piecewise constant): zero derivative

    @property
    def doc(self) -> str:
        return self.rule.__doc__ or ""

    def vjp(self, node: Map, cotangent: Expr, wanted: tuple[bool, ...]) -> tuple[Expr | None, ...]:
        if not self.differentiable:
            return tuple(None for _ in wanted)
        return self.rule(node, cotangent, wanted)

    def result_dtype(self, metas: Sequence[Meta]) -> np.dtype[Any] | None:
        dtypes = [m.dtype for m in metas if m.dtype is not None]
        return np.result_type(*dtypes) if dtypes else None


@dataclass(frozen=True, eq=False)
class ReductionOp:
    """A reduction over axes that einsum cannot express."""

    name: str
    forward: Callable[..., Any] = field(repr=False)  # forward(xp, x, axes)
    rule: ReductionRule = field(repr=False)
    # False for a shift that its users are invariant under (max_shift): zero derivative.
    differentiable: bool = True

    @property
    def doc(self) -> str:
        return self.rule.__doc__ or ""

    def vjp(self, node: Reduce, cotangent: Expr) -> Expr | None:
        if not self.differentiable:
            return None
        return self.rule(node, cotangent)


ELEMENTWISE: dict[str, ElementwiseOp] = {}
REDUCTIONS: dict[str, ReductionOp] = {}


def elementwise_op(name: str) -> ElementwiseOp:
    """The registered elementwise primitive ``name``."""
    try:
        return ELEMENTWISE[name]
    except KeyError:
        raise MissingRuleError(
            f"no elementwise primitive {name!r} is registered "
            f"(known: {', '.join(sorted(ELEMENTWISE))})"
        ) from None
