"""Reductions that einsum cannot express (``logsumexp``), and the compositions built on them.

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
from einsgrad.core.ir import Expr, Meta, Reduce
from einsgrad.core.labels import letters
from einsgrad.core.lowering import Lowered, StepInput
from einsgrad.core.primitive import REDUCTIONS, ReductionOp, ReductionRule
from einsgrad.graph import ops
from einsgrad.graph.matrix_text import no_matrix_form
from einsgrad.graph.printing import ATOM, axis_text
from einsgrad.graph.static import ones_like, reduce_labels, static_einsum, static_shape
from einsgrad.rules.algebra import keep
from einsgrad.rules.elementwise import exp

__all__ = ["log_softmax", "logsumexp", "softmax"]


def reduction(name: str, forward: Callable[..., Any]) -> Callable[[ReductionRule], ReductionRule]:
    """Register the reduction primitive ``name``: ``forward(xp, x, axes)`` and the rule."""

    def register(rule: ReductionRule) -> ReductionRule:
        REDUCTIONS[name] = ReductionOp(name, forward, rule)
        return rule

    return register


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
    result: Expr = ops.unreduce(g, y) * exp(y.arg - ops.unreduce(y, y))
    return result


# --- user-facing functions ------------------------------------------------------------------


def logsumexp(x: Any, axis: int | Sequence[int] | None = None) -> Expr:
    """``log(sum(exp(x), axis))``, shifted by the maximum so it neither overflows nor underflows."""
    return ops.reduction(REDUCTIONS["logsumexp"], ops.as_expr(x), ops._axis_tuple(axis))


def softmax(x: Any, axis: int | Sequence[int] | None = -1) -> Expr:
    """softmax_i = exp(x_i − logsumexp(x)) along ``axis``: stable, and sums to 1 there."""
    return exp(log_softmax(ops.as_expr(x), axis))


def log_softmax(x: Any, axis: int | Sequence[int] | None = -1) -> Expr:
    """log_softmax_i = x_i − logsumexp(x) along ``axis``."""
    x = ops.as_expr(x)
    lse = logsumexp(x, axis)
    if not isinstance(lse, Reduce):  # pragma: no cover - logsumexp always builds a Reduce
        raise TypeError("logsumexp did not build a reduction")
    return ops.subtract(x, ops.unreduce(lse, lse))


# --- the Reduce node kind's row in the rule table ------------------------------------------


def _infer(node: Reduce, children: Sequence[Meta], references: Sequence[Meta]) -> Meta:
    (meta,) = children
    axes = ops.normalize_axes(node.axes, len(meta.shape), node.arg)
    return Meta(tuple(n for i, n in enumerate(meta.shape) if i not in axes), meta.dtype)


def _vjp(node: Reduce, cotangent: Expr, wanted: Sequence[bool]) -> tuple[Expr | None, ...]:
    return (node.op.vjp(node, cotangent),) if wanted[0] else (None,)


def _partial(node: Reduce) -> Expr:
    """∂y_r/∂x_rs as an array of x's shape: the rule applied to ȳ = 1 (each x_rs reaches
    only its own y_r, so the rule's cotangent of ones is the Jacobian's nonzero part)."""
    op: ReductionOp = node.op
    return op.vjp(node, ones_like(node))


def _jvp(
    node: Reduce, tangents: Sequence[Expr | None], extra: tuple[int, ...] | None
) -> Expr | None:
    """ẏ_r = Σ_s ∂y_r/∂x_rs · ẋ_rs (with ``extra`` trailing axes carried along)."""
    (tangent,) = tangents
    if tangent is None:
        return None
    if extra is None:
        return ops.sum(_partial(node) * tangent, node.axes)
    full, kept = reduce_labels(node.arg, node.axes, 0)
    extra_labels = letters(len(extra), len(full))
    text = f"{full},{full}{extra_labels}->{kept}{extra_labels}"
    return static_einsum(text, [_partial(node), tangent], static_shape(node) + extra)


def _batched_vjp(
    node: Reduce, cotangent: Expr, wanted: Sequence[bool], batch: str
) -> list[Expr | None]:
    """x̄_{b,rs} = ȳ_{b,r} · ∂y_r/∂x_rs (b: the batch labels)."""
    if not wanted[0]:
        return [None]
    extra = static_shape(cotangent)[: len(batch)]
    full, kept = reduce_labels(node.arg, node.axes, len(batch))
    text = f"{batch}{kept},{full}->{batch}{full}"
    return [static_einsum(text, [cotangent, _partial(node)], extra + static_shape(node.arg))]


def _lower(node: Reduce, step: StepInput) -> Lowered:
    (argument,) = step.children
    axes = ops.normalize_axes(node.axes, len(argument.shape), node.arg)
    function = step.backend.reduction(node.op.forward, axes)
    flops = 3 * math.prod(argument.shape)  # exp, sum and the shift by the maximum
    return Lowered.step(function, step.reads, f"{node.op.name} axis={axes}", flops=flops)


def _explain(node: Reduce, position: int, names: Sequence[str], output_name: str) -> ReductionSteps:
    """The primitive's rule as its docstring states it, and ∂y_r/∂x_rs as an array."""
    op: ReductionOp = node.op
    return ReductionSteps(rule_statement(op.doc), _partial(node), node.axes)


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
