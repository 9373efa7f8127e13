"""Reductions that einsum cannot express, and the compositions built on them.

The primitives are ``logsumexp`` and ``max_shift``, the maximum that ``softmax`` and
``log_softmax`` subtract before exponentiating (so that they neither overflow nor lose
digits at any magnitude, as JAX computes them); it has no derivative, because both are
invariant under the shift.

One registration per primitive: ``reduction(name, forward)`` decorates the derivative
rule. A rule receives the node ``y = op(x, axes)`` and the cotangent ``ȳ`` (of ``y``'s
shape) and returns ``x̄`` in IR nodes. The module ends with the ``Reduce`` node kind's row
in the rule table.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

from einsgrad.core import kinds
from einsgrad.core.derivation import ReductionSteps, rule_statement
from einsgrad.core.errors import NoFormError
from einsgrad.core.ir import Const, Expr, Meta, Reduce
from einsgrad.core.labels import letters
from einsgrad.core.lowering import Lowered, StepInput
from einsgrad.core.primitive import REDUCTIONS, ReductionOp, ReductionRule
from einsgrad.graph import ops
from einsgrad.graph.matrix_text import no_matrix_form
from einsgrad.graph.printing import ATOM, axis_text
from einsgrad.graph.static import ones_like, reduce_labels, static_einsum, static_shape
from einsgrad.rules.algebra import keep
from einsgrad.rules.elementwise import exp, log

__all__ = ["log_softmax", "logsumexp", "softmax"]


def reduction(
    name: str, forward: Callable[..., Any], differentiable: bool = True
) -> Callable[[ReductionRule], ReductionRule]:
    """Register the reduction primitive ``name``: ``forward(xp, x, axes)`` and the rule."""

    def register(rule: ReductionRule) -> ReductionRule:
        REDUCTIONS[name] = ReductionOp(name, forward, rule, differentiable)
        return rule

    return register


def _finite_max(xp: Any, x: Any, axes: tuple[int, ...], keepdims: bool) -> Any:
    """The largest finite entry over ``axes`` (0 where there is none): the shift.

    Subtracting it leaves every finite entry ≤ 0, so exp of a finite logit never
    overflows, and the largest is exp(0) = 1. Infinite entries are not subtracted from
    (∞ − ∞ is NaN): with them the shifted formulas give what the unshifted ones give,
    log Σ exp(x) = ∞ if some x is +∞, −∞ if all are −∞, NaN if some x is NaN.
    """
    finite = xp.where(xp.isfinite(x), x, xp.full_like(x, -xp.inf))
    shift = xp.max(finite, axis=axes, keepdims=keepdims)
    return xp.where(xp.isfinite(shift), shift, xp.zeros_like(shift))


def _logsumexp_forward(xp: Any, x: Any, axes: tuple[int, ...]) -> Any:
    """log Σ exp(x) over ``axes`` as log Σ exp(x − m) + m, m the largest finite entry."""
    x = xp.asarray(x)  # a number constant comes as a Python float
    if x.size == 0:
        return xp.log(xp.sum(xp.exp(x), axis=axes))
    shift = _finite_max(xp, x, axes, keepdims=True)
    summed = xp.sum(xp.exp(x - shift), axis=axes, keepdims=True)
    return xp.squeeze(xp.log(summed) + shift, axis=axes)


@reduction("logsumexp", _logsumexp_forward)
def _logsumexp(y: Reduce, g: Expr) -> Expr:
    """y_r = log Σ_s exp(x_rs) (s: the reduced axes);  x̄_rs = ȳ_r · softmax(x)_rs.

    softmax(x)_rs = exp(x_rs − y_r) in exact arithmetic, but y_r is rounded at the scale
    of x (at |x| = 1e16 in float64 its rounding error exceeds 1), so the rule uses the
    softmax shifted by the maximum, whose exponents are exact.
    """
    result: Expr = ops.unreduce(g, y) * softmax(y.arg, y.axes)
    return result


def _max_shift_forward(xp: Any, x: Any, axes: tuple[int, ...]) -> Any:
    x = xp.asarray(x)  # a number constant comes as a Python float
    if x.size == 0:  # a maximum over no elements has no value; any shift will do
        return xp.zeros(tuple(n for i, n in enumerate(x.shape) if i not in axes), dtype=x.dtype)
    return _finite_max(xp, x, axes, keepdims=False)


@reduction("max_shift", _max_shift_forward, differentiable=False)
def _max_shift(y: Reduce, g: Expr) -> Expr | None:
    """m_r = max_s x_rs over the finite x_rs (0 if none is): the shift of softmax,
    log_softmax and the logsumexp rule;  x̄_rs = 0.

    Each function that subtracts m is invariant under it (exp(x − m) / Σ exp(x − m) and
    (x − m) − log Σ exp(x − m) do not change with m), so the derivative through m is
    exactly zero and is not formed, as JAX's ``stop_gradient`` on the maximum does.
    """
    return None


def _shift(x: Expr, axis: int | Sequence[int] | None) -> Reduce:
    shift = ops.reduction(REDUCTIONS["max_shift"], x, ops._axis_tuple(axis))
    if not isinstance(shift, Reduce):  # pragma: no cover - ops.reduction always builds one
        raise TypeError("max_shift did not build a reduction")
    return shift


# --- user-facing functions ------------------------------------------------------------------


def logsumexp(x: Any, axis: int | Sequence[int] | None = None) -> Expr:
    """``log(sum(exp(x), axis))``, shifted by the maximum so it neither overflows nor underflows."""
    return ops.reduction(REDUCTIONS["logsumexp"], ops.as_expr(x), ops._axis_tuple(axis))


def softmax(x: Any, axis: int | Sequence[int] | None = -1) -> Expr:
    """softmax_i = exp(x_i − m) / Σ_j exp(x_j − m) along ``axis``, m the maximum there.

    Every exponent is ≤ 0 and the largest is 0, so nothing overflows, the sum is at least
    1, and x_i − m is exact for the logits that matter: the result sums to 1 within a few
    ulps at any magnitude. Its derivative, x̄_i = s_i (ȳ_i − Σ_j ȳ_j s_j), follows from
    the rules of exp and divide with the shift's derivative (zero) left out.
    """
    x = ops.as_expr(x)
    shift = _shift(x, axis)
    exponentials = exp(ops.subtract(x, ops.unreduce(shift, shift)))
    return ops.divide(exponentials, ops.unreduce(ops.sum(exponentials, shift.axes), shift))


def log_softmax(x: Any, axis: int | Sequence[int] | None = -1) -> Expr:
    """log_softmax_i = (x_i − m) − log Σ_j exp(x_j − m) along ``axis``, m the maximum there.

    Written with the shifted logits, not as x_i − logsumexp(x): logsumexp is rounded at
    the scale of x, so x − logsumexp(x) would lose the digits the shift keeps.
    """
    x = ops.as_expr(x)
    shift = _shift(x, axis)
    shifted = ops.subtract(x, ops.unreduce(shift, shift))
    total = ops.sum(exp(shifted), shift.axes)
    return ops.subtract(shifted, ops.unreduce(log(total), shift))


# --- the Reduce node kind's row in the rule table ------------------------------------------


def _infer(node: Reduce, children: Sequence[Meta], references: Sequence[Meta]) -> Meta:
    (meta,) = children
    axes = ops.normalize_axes(node.axes, len(meta.shape), node.arg)
    return Meta(tuple(n for i, n in enumerate(meta.shape) if i not in axes), meta.dtype)


def _vjp(node: Reduce, cotangent: Expr, wanted: Sequence[bool]) -> tuple[Expr | None, ...]:
    return (node.op.vjp(node, cotangent),) if wanted[0] else (None,)


def _partial(node: Reduce) -> Expr | None:
    """∂y_r/∂x_rs as an array of x's shape: the rule applied to ȳ = 1 (each x_rs reaches
    only its own y_r, so the rule's cotangent of ones is the Jacobian's nonzero part).
    None for a reduction without a derivative."""
    op: ReductionOp = node.op
    return op.vjp(node, ones_like(node))


def _jvp(
    node: Reduce, tangents: Sequence[Expr | None], extra: tuple[int, ...] | None
) -> Expr | None:
    """ẏ_r = Σ_s ∂y_r/∂x_rs · ẋ_rs (with ``extra`` trailing axes carried along)."""
    (tangent,) = tangents
    partial = None if tangent is None else _partial(node)
    if tangent is None or partial is None:
        return None
    if extra is None:
        return ops.sum(partial * tangent, node.axes)
    full, kept = reduce_labels(node.arg, node.axes, 0)
    extra_labels = letters(len(extra), len(full))
    text = f"{full},{full}{extra_labels}->{kept}{extra_labels}"
    return static_einsum(text, [partial, tangent], static_shape(node) + extra)


def _batched_vjp(
    node: Reduce, cotangent: Expr, wanted: Sequence[bool], batch: str
) -> list[Expr | None]:
    """x̄_{b,rs} = ȳ_{b,r} · ∂y_r/∂x_rs (b: the batch labels)."""
    partial = _partial(node) if wanted[0] else None
    if partial is None:
        return [None]
    extra = static_shape(cotangent)[: len(batch)]
    full, kept = reduce_labels(node.arg, node.axes, len(batch))
    text = f"{batch}{kept},{full}->{batch}{full}"
    return [static_einsum(text, [cotangent, partial], extra + static_shape(node.arg))]


def _lower(node: Reduce, step: StepInput) -> Lowered:
    (argument,) = step.children
    axes = ops.normalize_axes(node.axes, len(argument.shape), node.arg)
    function = step.backend.reduction(node.op.forward, axes)
    flops = 3 * math.prod(argument.shape)  # exp, sum and the shift by the maximum
    return Lowered.step(function, step.reads, f"{node.op.name} axis={axes}", flops=flops)


def _explain(node: Reduce, position: int, names: Sequence[str], output_name: str) -> ReductionSteps:
    """The primitive's rule as its docstring states it, and ∂y_r/∂x_rs as an array (the
    number 0 for a reduction without a derivative)."""
    op: ReductionOp = node.op
    partial = _partial(node)
    return ReductionSteps(
        rule_statement(op.doc), Const(0.0) if partial is None else partial, node.axes
    )


def _index(node: Reduce, labels: Sequence[str], writer: Any) -> tuple[str, int]:
    raise NoFormError(f"index notation has no form for {node.op.name}")


def _text(node: Reduce, text_of: Any, wrap: Any) -> tuple[str, int]:
    return f"{node.op.name}({text_of(node.arg)[0]}{axis_text(node.axes)})", ATOM


def _rebuild(node: Reduce, children: Sequence[Expr], references: Sequence[Expr]) -> Expr:
    return ops.reduction(node.op, children[0], node.axes)


def _key(node: Reduce, child_keys: Sequence[str], reference_keys: Sequence[str]) -> list[Any]:
    return ["reduce", node.op.name, node.axes, *child_keys]


kinds.register(
    Reduce,
    infer=_infer,
    vjp=_vjp,
    jvp=_jvp,
    batched_vjp=_batched_vjp,
    lower=_lower,
    text=_text,
    rebuild=_rebuild,
    key=_key,
    simplify=keep,
    explain=_explain,
    matrix=no_matrix_form,
    index=_index,
)
