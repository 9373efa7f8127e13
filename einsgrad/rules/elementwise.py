"""Elementwise and reduction primitives: each forward kernel with its derivative rule.

One registration per primitive, forward and backward side by side. A rule receives the
node ``y = op(x_1, ..., x_n)``, the cotangent ``ȳ = ∂L/∂y`` (of ``y``'s broadcast shape)
and which arguments need a cotangent; it returns ``x̄_k = ∂L/∂x_k`` written in IR nodes,
so that derivatives can be differentiated again. ``Map.vjp`` sums each result back over
the axes its argument was broadcast along; the rules here never deal with broadcasting.

Piecewise functions follow JAX and torch at their kinks: ``relu'(0) = 0``,
``|x|'(0) = 0`` and ``maximum``/``minimum`` split the cotangent half and half on ties.

The einsum rule is not here: it is one general function, in :mod:`einsgrad.rule`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from einsgrad.core.ir import Expr, Map, Meta, Reduce

# The user-facing functions this module defines (einsgrad exports them all).
__all__ = ["abs", "exp", "log", "maximum", "minimum", "relu", "sigmoid", "sqrt", "tanh"]

ElementwiseRule = Callable[["Map", "Expr", tuple[bool, ...]], tuple["Expr | None", ...]]
ReductionRule = Callable[["Reduce", "Expr"], "Expr"]


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

    @property
    def doc(self) -> str:
        return self.rule.__doc__ or ""

    def vjp(self, node: Reduce, cotangent: Expr) -> Expr:
        return self.rule(node, cotangent)


ELEMENTWISE: dict[str, ElementwiseOp] = {}
REDUCTIONS: dict[str, ReductionOp] = {}


def elementwise(
    name: str, forward: Callable[..., Any], arity: int = 1, **display: Any
) -> Callable[[ElementwiseRule], Callable[..., Expr]]:
    """Register the elementwise primitive ``name``: its forward and the decorated rule.

    ``forward(xp, *args)`` computes the value with the array namespace ``xp`` of the
    backend (numpy, or another array-API library). The decorator returns the
    user-facing function ``name(*args) -> Expr``, documented by the rule's docstring.
    """

    def register(rule: ElementwiseRule) -> Callable[..., Expr]:
        ELEMENTWISE[name] = ElementwiseOp(name, arity, forward, rule, **display)

        def build(*args: Any) -> Expr:
            if len(args) != arity:
                raise TypeError(
                    f"{name}() takes {arity} argument{'s' * (arity > 1)}, got {len(args)}"
                )
            return _ops()._map(name, *args)  # type: ignore[no-any-return]

        build.__name__ = build.__qualname__ = name
        build.__doc__ = rule.__doc__
        return build

    return register


def reduction(name: str, forward: Callable[..., Any]) -> Callable[[ReductionRule], ReductionRule]:
    """Register the reduction primitive ``name``: ``forward(xp, x, axes)`` and the rule."""

    def register(rule: ReductionRule) -> ReductionRule:
        REDUCTIONS[name] = ReductionOp(name, forward, rule)
        return rule

    return register


def _ops() -> Any:
    from einsgrad.graph import ops

    return ops


# --- arithmetic (exposed as operators by einsgrad.ops, which also simplifies x + 0 etc.) ---


@elementwise("add", lambda xp, a, b: xp.add(a, b), 2, infix="+", precedence=10)
def _add(y: Map, g: Expr, wanted: tuple[bool, ...]) -> tuple[Expr | None, ...]:
    """y_i = a_i + b_i;  ā_i = ȳ_i,  b̄_i = ȳ_i."""
    return g, g


@elementwise("subtract", lambda xp, a, b: xp.subtract(a, b), 2, infix="-", precedence=10)
def _subtract(y: Map, g: Expr, wanted: tuple[bool, ...]) -> tuple[Expr | None, ...]:
    """y_i = a_i − b_i;  ā_i = ȳ_i,  b̄_i = −ȳ_i."""
    return g, (-g if wanted[1] else None)


@elementwise("multiply", lambda xp, a, b: xp.multiply(a, b), 2, infix="*", precedence=20)
def _multiply(y: Map, g: Expr, wanted: tuple[bool, ...]) -> tuple[Expr | None, ...]:
    """y_i = a_i · b_i;  ā_i = ȳ_i · b_i,  b̄_i = ȳ_i · a_i."""
    a, b = y.args
    return (g * b if wanted[0] else None), (g * a if wanted[1] else None)


@elementwise("divide", lambda xp, a, b: xp.divide(a, b), 2, infix="/", precedence=20)
def _divide(y: Map, g: Expr, wanted: tuple[bool, ...]) -> tuple[Expr | None, ...]:
    """y_i = a_i / b_i;  ā_i = ȳ_i / b_i,  b̄_i = −ȳ_i · y_i / b_i."""
    b = y.args[1]
    return (g / b if wanted[0] else None), (-(g * y) / b if wanted[1] else None)


@elementwise("negative", lambda xp, x: xp.negative(x), 1, infix="-", precedence=30)
def _negative(y: Map, g: Expr, wanted: tuple[bool, ...]) -> tuple[Expr | None, ...]:
    """y_i = −x_i;  x̄_i = −ȳ_i."""
    return (-g,)


@elementwise("power", lambda xp, x, p: xp.power(x, p), 2, infix="**", precedence=40)
def _power(y: Map, g: Expr, wanted: tuple[bool, ...]) -> tuple[Expr | None, ...]:
    """y_i = x_i ** p for a constant scalar p;  x̄_i = ȳ_i · p · x_i ** (p − 1).

    The exponent is a constant (``ops.power`` enforces it), so it gets no cotangent.
    """
    x, p = y.args
    exponent = p.value  # type: ignore[attr-defined]
    if exponent == 2:
        return g * (2 * x), None
    return g * (exponent * x ** (exponent - 1)), None


# --- transcendental -------------------------------------------------------------------------


@elementwise("exp", lambda xp, x: xp.exp(x))
def exp(y: Map, g: Expr, wanted: tuple[bool, ...]) -> tuple[Expr | None, ...]:
    """Elementwise exponential.

    y_i = exp(x_i);  x̄_i = ȳ_i · y_i.
    """
    return (g * y,)


@elementwise("log", lambda xp, x: xp.log(x))
def log(y: Map, g: Expr, wanted: tuple[bool, ...]) -> tuple[Expr | None, ...]:
    """Elementwise natural logarithm.

    y_i = log(x_i);  x̄_i = ȳ_i / x_i.
    """
    return (g / y.args[0],)


@elementwise("sqrt", lambda xp, x: xp.sqrt(x))
def sqrt(y: Map, g: Expr, wanted: tuple[bool, ...]) -> tuple[Expr | None, ...]:
    """Elementwise square root.

    y_i = √x_i;  x̄_i = ȳ_i / (2 y_i).
    """
    return (g / (2 * y),)


@elementwise("tanh", lambda xp, x: xp.tanh(x))
def tanh(y: Map, g: Expr, wanted: tuple[bool, ...]) -> tuple[Expr | None, ...]:
    """Elementwise hyperbolic tangent.

    y_i = tanh(x_i);  x̄_i = ȳ_i · (1 − y_i²).
    """
    return (g * (1 - y * y),)


def _sigmoid_forward(xp: Any, x: Any) -> Any:
    """1 / (1 + e^−x) from e^−|x| ≤ 1: no overflow, and full precision for x ≪ 0."""
    small = xp.exp(-xp.abs(x))
    return xp.where(x >= 0, 1 / (1 + small), small / (1 + small))


@elementwise("sigmoid", _sigmoid_forward)
def sigmoid(y: Map, g: Expr, wanted: tuple[bool, ...]) -> tuple[Expr | None, ...]:
    """Elementwise logistic function, computed without overflow.

    y_i = 1 / (1 + exp(−x_i));  x̄_i = ȳ_i · y_i · (1 − y_i).
    """
    return (g * (y * (1 - y)),)


# --- piecewise ------------------------------------------------------------------------------


@elementwise("relu", lambda xp, x: xp.maximum(x, 0))
def relu(y: Map, g: Expr, wanted: tuple[bool, ...]) -> tuple[Expr | None, ...]:
    """Elementwise max(x, 0).

    y_i = max(x_i, 0);  x̄_i = ȳ_i · [x_i > 0], so relu'(0) = 0 as in JAX and torch.
    """
    return (g * greater(y.args[0], 0),)


@elementwise("abs", lambda xp, x: xp.abs(x))
def abs(y: Map, g: Expr, wanted: tuple[bool, ...]) -> tuple[Expr | None, ...]:
    """Elementwise absolute value.

    y_i = |x_i|;  x̄_i = ȳ_i · sign(x_i), so |x|'(0) = 0 as in JAX and torch.
    """
    return (g * sign(y.args[0]),)


@elementwise("maximum", lambda xp, a, b: xp.maximum(a, b), 2)
def maximum(y: Map, g: Expr, wanted: tuple[bool, ...]) -> tuple[Expr | None, ...]:
    """Elementwise maximum, with numpy broadcasting.

    y_i = max(a_i, b_i);  ā_i = ȳ_i · ([a_i > b_i] + ½[a_i = b_i]),  b̄_i = ȳ_i − ā_i.
    Ties split the cotangent evenly, as JAX, torch and autograd do.
    """
    a, b = y.args
    share_a = greater(a, b) + 0.5 * equal(a, b)
    return (g * share_a if wanted[0] else None), (g * (1 - share_a) if wanted[1] else None)


@elementwise("minimum", lambda xp, a, b: xp.minimum(a, b), 2)
def minimum(y: Map, g: Expr, wanted: tuple[bool, ...]) -> tuple[Expr | None, ...]:
    """Elementwise minimum, with numpy broadcasting.

    y_i = min(a_i, b_i);  ā_i = ȳ_i · ([a_i < b_i] + ½[a_i = b_i]),  b̄_i = ȳ_i − ā_i.
    Ties split the cotangent evenly, as JAX, torch and autograd do.
    """
    a, b = y.args
    share_a = greater(b, a) + 0.5 * equal(a, b)
    return (g * share_a if wanted[0] else None), (g * (1 - share_a) if wanted[1] else None)


# einsgrad.graph.ops.where checks that the condition is a constant before building this.
@elementwise("where", lambda xp, c, a, b: xp.where(c, a, b), 3)
def _where(y: Map, g: Expr, wanted: tuple[bool, ...]) -> tuple[Expr | None, ...]:
    """y_i = a_i if c_i else b_i (c constant);  ā_i = ȳ_i · [c_i],  b̄_i = ȳ_i · [¬c_i]."""
    condition = y.args[0]
    return (
        None,
        _ops().where(condition, g, 0.0) if wanted[1] else None,
        _ops().where(condition, 0.0, g) if wanted[2] else None,
    )


# --- masks: piecewise constant, so their derivative is zero -----------------------------


def _mask(xp: Any, test: Any, a: Any, b: Any) -> Any:
    return xp.asarray(test(a, b), dtype=xp.result_type(a, b))


@elementwise("greater", lambda xp, a, b: _mask(xp, xp.greater, a, b), 2, differentiable=False)
def greater(y: Map, g: Expr, wanted: tuple[bool, ...]) -> tuple[Expr | None, ...]:
    """The mask [a_i > b_i] as 0.0 or 1.0; piecewise constant, so its derivative is zero."""
    return None, None


@elementwise("equal", lambda xp, a, b: _mask(xp, xp.equal, a, b), 2, differentiable=False)
def equal(y: Map, g: Expr, wanted: tuple[bool, ...]) -> tuple[Expr | None, ...]:
    """The mask [a_i = b_i] as 0.0 or 1.0; piecewise constant, so its derivative is zero."""
    return None, None


@elementwise("sign", lambda xp, x: xp.sign(x), differentiable=False)
def sign(y: Map, g: Expr, wanted: tuple[bool, ...]) -> tuple[Expr | None, ...]:
    """Elementwise sign (−1, 0 or 1); piecewise constant, so its derivative is zero."""
    return (None,)


# --- reductions -----------------------------------------------------------------------------


def _logsumexp_forward(xp: Any, x: Any, axes: tuple[int, ...]) -> Any:
    """log Σ exp(x) over ``axes``, shifted by the (finite) maximum so nothing overflows."""
    if x.size == 0:
        return xp.log(xp.sum(xp.exp(x), axis=axes))
    shift = xp.max(x, axis=axes, keepdims=True)
    shift = xp.where(xp.isfinite(shift), shift, 0)
    summed = xp.sum(xp.exp(x - shift), axis=axes, keepdims=True)
    return xp.squeeze(xp.log(summed) + shift, axis=axes)


@reduction("logsumexp", _logsumexp_forward)
def _logsumexp(y: Reduce, g: Expr) -> Expr:
    """y_r = log Σ_s exp(x_rs) (s: the reduced axes);  x̄_rs = ȳ_r · exp(x_rs − y_r).

    The forward shifts by the maximum before exponentiating, and the backward only
    exponentiates x − y ≤ 0, so neither overflows.
    """
    ops = _ops()
    result: Expr = ops.unreduce(g, y) * exp(y.arg - ops.unreduce(y, y))
    return result
