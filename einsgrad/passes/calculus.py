"""Higher-order tensor calculus: vjp, jvp, hvp, generalized Jacobians and Hessians.

Everything here is derived from the one set of reverse-mode rules:

* ``vjp`` is reverse mode with a given cotangent.
* ``jvp`` (forward mode) pushes tangents forward. For an einsum the tangent of the
  output is the einsum with one operand replaced by its tangent (the einsum is linear in
  each operand). For an elementwise or reduction node the rule's cotangent for ``ȳ = 1``
  *is* the node's partial derivative, because such a node's Jacobian is diagonal (each
  input element reaches its own output elements only): ``ẏ = ∂y/∂x ⊙ ẋ``.
* ``jacobian`` runs the same sweeps with extra axes: forward mode seeds the variable with
  the Kronecker delta ``δ`` (its identity Jacobian, shape ``W.shape + W.shape``) and
  carries tangents of shape ``node.shape + W.shape``; reverse mode seeds the output with
  ``δ`` and carries cotangents of shape ``Y.shape + node.shape``. Each step is an einsum
  with the extra labels appended, and :func:`einsgrad.simplify` then fuses the chain and
  collapses the deltas, so ``δ`` is never evaluated where the answer has none. The
  cheaper of the two results, by opt_einsum's cost estimate, is returned.
* ``hessian(L, x)`` is the Jacobian of ``grad(L, x)``; ``hvp`` is the jvp of ``grad``.

A memory guard refuses, before anything is allocated, a result or intermediate larger
than the memory limit, naming the cheaper call (vjp, jvp or hvp) instead.
"""

from __future__ import annotations

import weakref
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np

from einsgrad.core.errors import GradError, ShapeError
from einsgrad.core.ir import Const, Einsum, Expr, Map, Reduce, Shape, Var, reaching, toposort
from einsgrad.core.limits import format_bytes as _format_bytes
from einsgrad.core.limits import get_memory_limit, guard, memory_limit, set_memory_limit
from einsgrad.core.limits import limit_for as _limit_for
from einsgrad.core.spec import parse_spec, resolve
from einsgrad.graph import ops
from einsgrad.graph.printing import short_name
from einsgrad.passes.autodiff import ORIGIN_VARIABLES, _target, cotangents, grad, variables_by_name
from einsgrad.passes.evaluate import plan as program_plan
from einsgrad.passes.simplify import simplify

__all__ = [
    "Cost",
    "cost",
    "get_memory_limit",
    "hessian",
    "hvp",
    "jacobian",
    "jvp",
    "memory_limit",
    "set_memory_limit",
    "vjp",
]

Mode = Literal["auto", "forward", "reverse"]
_LETTERS = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
_ONE = Const(1.0)

# --- the memory guard lives in einsgrad.limits; re-exported here -------------------------


def _dtype_of(*variables: Expr) -> np.dtype[Any]:
    dtypes = [v.dtype for v in variables if isinstance(v, Var) and v.dtype is not None]
    return np.result_type(*dtypes) if dtypes else np.dtype(np.float64)


# --- derivation records ----------------------------------------------------------------------


@dataclass(frozen=True)
class Cost:
    """An estimate of what evaluating an expression costs.

    ``flops``: multiply-adds and elementwise operations (opt_einsum's count for einsums);
    ``largest_bytes``: the largest single array, including opt_einsum's intermediates;
    ``total_bytes``: all node results together; ``mode``: for a Jacobian or Hessian,
    the sweep that was chosen (``"forward"``, ``"reverse"`` or ``"symbolic"`` when both
    simplify to the same closed form), with the alternatives' estimates.
    """

    flops: int
    largest_bytes: int
    total_bytes: int
    mode: str | None = None
    alternatives: Mapping[str, Cost] = field(default_factory=dict)

    def __str__(self) -> str:
        text = (
            f"{self.flops:,} FLOPs, largest array {_format_bytes(self.largest_bytes)}, "
            f"{_format_bytes(self.total_bytes)} in all"
        )
        if self.mode is not None:
            text += f" ({self.mode} mode"
            others = [f"{name}: {alt.flops:,} FLOPs" for name, alt in self.alternatives.items()]
            text += f"; {', '.join(others)})" if others else ")"
        return text


_MODES: weakref.WeakKeyDictionary[Expr, tuple[str, dict[str, Cost]]] = weakref.WeakKeyDictionary()


def cost(expr: Expr, dtype: Any = np.float64, **shapes: Sequence[int]) -> Cost:
    """Estimate the FLOPs and memory of evaluating ``expr``.

    Variables without a declared shape take theirs from ``shapes`` (``X=(64, 128)``).
    The numbers are the plan of the program evaluation would run (see
    :meth:`einsgrad.Compiled.plan`). For a result of :func:`jacobian` or :func:`hessian`
    the chosen mode is included.
    """
    plan = program_plan((expr,), shapes, dtype, "auto")
    mode, alternatives = _MODES.get(expr, (None, {}))
    return Cost(plan.flops, plan.largest_bytes, plan.total_bytes, mode, alternatives)


# --- vjp and jvp ---------------------------------------------------------------------------


def _resolve_variable(expr: Expr, item: Any) -> Var:
    """The variable ``item`` names; one the expression lacks is allowed (its result is zero)."""
    return _target(item, variables_by_name(toposort([expr])), allow_unused=True)


def _mark(result: Expr, source: Expr, *extra: Var) -> Expr:
    origin = frozenset(variables_by_name(toposort([source]))) | {v.name for v in extra}
    ORIGIN_VARIABLES[result] = ORIGIN_VARIABLES.get(result, frozenset()) | origin
    return result


def _check_shape(value: Expr, expected: Shape | None, what: str) -> None:
    if value.shape is not None and expected is not None and value.shape != expected:
        raise ShapeError(f"{what} must have shape {expected}, got {value.shape}")


def vjp(y: Expr, wrt: Any, cotangent: Any) -> Expr | tuple[Expr, ...]:
    """Reverse mode with an explicit cotangent ``U`` of ``y``'s shape: ``Σ_o U[o] ∂y[o]/∂W``.

    ``wrt`` is a variable, a name, or a list/tuple of them (then a tuple is returned).
    A variable ``y`` does not depend on gets a zero of its shape.
    """
    u = ops.as_expr(cotangent)
    _check_shape(u, y.shape, "the cotangent")
    single = not isinstance(wrt, list | tuple)
    targets = [_resolve_variable(y, item) for item in ([wrt] if single else wrt)]
    found = cotangents([(y, u)], targets)
    results = []
    for target in targets:
        value = found[target]
        if value is None:
            value = ops._generalized("->...", Const(0.0), target)
        results.append(_mark(simplify(ops.project(value, target)), y, *targets))
    return results[0] if single else tuple(results)


def _tangents(y: Expr, seeds: Mapping[Var, Expr], extra: Shape | None) -> Expr | None:
    """Forward mode: the tangent of ``y`` given tangents of some variables.

    With ``extra`` (a shape), every tangent carries those extra trailing axes: seeding a
    variable with its Kronecker delta gives generalized Jacobians.
    """
    order = toposort([y], references=False)
    tangent: dict[Expr, Expr] = {variable: seed for variable, seed in seeds.items()}
    for node in order:
        if node in tangent or not node.children:
            continue
        if not any(child in tangent for child in node.children):
            continue
        contributions: list[Expr] = []
        if isinstance(node, Einsum):
            for k, operand in enumerate(node.operands):
                if operand in tangent:
                    contributions.append(_einsum_tangent(node, k, tangent[operand], extra))
        elif isinstance(node, Map):
            wanted = tuple(arg in tangent for arg in node.args)
            partials = node.op.vjp(node, _ONE, wanted)
            for arg, partial in zip(node.args, partials, strict=True):
                if arg in tangent and partial is not None:
                    contributions.append(_map_tangent(node, arg, partial, tangent[arg], extra))
        elif isinstance(node, Reduce):
            partial = node.op.vjp(node, _ones_like(node))
            contributions.append(_reduce_tangent(node, partial, tangent[node.arg], extra))
        if contributions:
            total = contributions[0]
            for term in contributions[1:]:
                total = total + term
            tangent[node] = total
    return tangent.get(y)


def _shape(node: Expr) -> Shape:
    """``node``'s static shape (Jacobians are derived with every shape known)."""
    if node.shape is None:
        raise ShapeError(f"{short_name(node)} has no static shape; give its variables shapes")
    return node.shape


def _einsum(text: str, operands: Sequence[Expr], shape: Shape) -> Expr:
    """A generalized einsum with a static output shape."""
    return ops._einsum_node(parse_spec(text, generalized=True), operands, shape)


def _ones_like(node: Reduce) -> Expr:
    """Ones of the reduction's result shape: its rule turns them into the partials."""
    return ops._generalized("->...", _ONE, node)


def _labels(count: int, start: int = 0) -> str:
    if start + count > len(_LETTERS):
        raise ShapeError(f"a Jacobian here needs more than {len(_LETTERS)} index labels")
    return _LETTERS[start : start + count]


def _static_spec(node: Einsum) -> tuple[list[str], str, int]:
    """``node``'s einsum with explicit letters (no '...'), and the number of labels used."""
    resolved = resolve(
        node.spec,
        [op.shape for op in node.operands],  # type: ignore[misc]
        node.like if isinstance(node.like, tuple) else None,
    )
    count = len(resolved.sizes)
    letters = _labels(count)
    terms = ["".join(letters[label] for label in term) for term in resolved.inputs]
    return terms, "".join(letters[label] for label in resolved.output), count


def _einsum_tangent(node: Einsum, k: int, tangent: Expr, extra: Shape | None) -> Expr:
    operands = list(node.operands)
    operands[k] = tangent
    if extra is None:
        return ops._einsum_node(node.spec, operands, node.like)
    terms, out, used = _static_spec(node)
    extra_labels = _labels(len(extra), used)
    terms[k] += extra_labels
    return _einsum(",".join(terms) + "->" + out + extra_labels, operands, _shape(node) + extra)


def _right_aligned(out: str, rank: int) -> str:
    return out[len(out) - rank :] if rank else ""


def _map_tangent(node: Map, arg: Expr, partial: Expr, tangent: Expr, extra: Shape | None) -> Expr:
    if extra is None:
        product = partial * tangent
        if product.shape is not None and product.shape == node.shape:
            return product
        return ops._generalized("...->...", product, node)
    out = _labels(len(_shape(node)))
    extra_labels = _labels(len(extra), len(out))
    partial_labels = _right_aligned(out, len(_shape(partial)))
    arg_labels = _right_aligned(out, len(_shape(arg)))
    text = f"{partial_labels},{arg_labels}{extra_labels}->{out}{extra_labels}"
    return _einsum(text, [partial, tangent], _shape(node) + extra)


def _reduce_tangent(node: Reduce, partial: Expr, tangent: Expr, extra: Shape | None) -> Expr:
    if extra is None:
        return ops.sum(partial * tangent, node.axes)
    full, kept = _reduce_labels(node, 0)
    extra_labels = _labels(len(extra), len(full))
    text = f"{full},{full}{extra_labels}->{kept}{extra_labels}"
    return _einsum(text, [partial, tangent], _shape(node) + extra)


def jvp(y: Expr, tangents: Mapping[Any, Any]) -> Expr:
    """Forward mode: the directional derivative ``Σ_W ∂y/∂W · V_W``, of ``y``'s shape.

    ``tangents`` maps variables (or names) to tangents of their shapes. Variables not
    given have zero tangent. Shapes may be unknown until evaluation.
    """
    if not tangents:
        raise GradError("jvp needs at least one tangent: {variable: direction}")
    seeds: dict[Var, Expr] = {}
    for item, value in tangents.items():
        variable = _resolve_variable(y, item)
        direction = ops.as_expr(value)
        _check_shape(direction, variable.shape, f"the tangent of {variable.name!r}")
        seeds[variable] = direction
    result = _tangents(y, seeds, None)
    if result is None:
        result = ops._generalized("->...", Const(0.0), y)
    return _mark(simplify(result), y, *seeds)


def hvp(loss: Expr, x: Any, v: Any) -> Expr:
    """The Hessian-vector product ``Σ_j ∂²L/∂x_i∂x_j v_j`` without forming the Hessian.

    Forward mode over reverse mode: the jvp of ``grad(L, x)`` in direction ``v``.
    """
    variable = _resolve_variable(loss, x)
    gradient = grad(loss, variable)
    assert isinstance(gradient, Expr)
    return _mark(jvp(gradient, {variable: v}), loss, variable)


# --- Jacobians -----------------------------------------------------------------------------


def _delta(shape: Shape) -> Expr:
    """The Kronecker delta δ[i…, i'…] = [i… = i'…], of shape ``shape + shape``."""
    labels = _labels(len(shape))
    return _einsum("->" + labels + labels, [_ONE], shape + shape)


def _reverse_jacobian(y: Expr, target: Var) -> Expr | None:
    """Reverse sweep with cotangents of shape ``y.shape + node.shape``, seeded with δ."""
    extra = y.shape
    assert extra is not None
    order = toposort([y], references=False)
    reaches = reaching(order, [target])
    if y not in reaches:
        return None
    pending: dict[Expr, list[Expr]] = {y: [_delta(extra)]}
    batch = _labels(len(extra), 0)
    for node in reversed(order):
        contributions = pending.pop(node, None)
        if not contributions:
            continue
        total = contributions[0]
        for term in contributions[1:]:
            total = total + term
        if node is target:
            return total
        wanted = tuple(child in reaches for child in node.children)
        for child, piece in zip(
            node.children, _batched_vjp(node, total, wanted, batch), strict=True
        ):
            if piece is not None:
                pending.setdefault(child, []).append(piece)
    return None  # pragma: no cover - target is reached when y depends on it


def _batched_vjp(
    node: Expr, cotangent: Expr, wanted: Sequence[bool], batch: str
) -> list[Expr | None]:
    """Cotangents of the children of ``node`` with leading batch axes ``batch``."""
    extra = _shape(cotangent)[: len(batch)]
    results: list[Expr | None] = [None] * len(node.children)
    if isinstance(node, Einsum):
        terms, out, used = _static_spec(node)
        shifted = _labels(used, len(batch))
        rename = str.maketrans(_LETTERS[:used], shifted)
        terms = [t.translate(rename) for t in terms]
        out = out.translate(rename)
        for k, operand in enumerate(node.operands):
            if not wanted[k]:
                continue
            inputs = [*terms[:k], *terms[k + 1 :], batch + out]
            text = ",".join(inputs) + "->" + batch + terms[k]
            others = [*node.operands[:k], *node.operands[k + 1 :], cotangent]
            results[k] = _einsum(text, others, extra + _shape(operand))
        return results
    if isinstance(node, Map):
        partials = node.op.vjp(node, _ONE, tuple(wanted))
        out = _labels(len(_shape(node)), len(batch))
        for k, (arg, partial) in enumerate(zip(node.args, partials, strict=True)):
            if not wanted[k] or partial is None:
                continue
            partial_labels = _right_aligned(out, len(_shape(partial)))
            arg_labels = _right_aligned(out, len(_shape(arg)))
            text = f"{batch}{out},{partial_labels}->{batch}{arg_labels}"
            results[k] = _einsum(text, [cotangent, partial], extra + _shape(arg))
        return results
    if isinstance(node, Reduce) and wanted[0]:
        partial = node.op.vjp(node, _ones_like(node))
        full, kept = _reduce_labels(node, len(batch))
        text = f"{batch}{kept},{full}->{batch}{full}"
        results[0] = _einsum(text, [cotangent, partial], extra + _shape(node.arg))
    return results


def _reduce_labels(node: Reduce, start: int) -> tuple[str, str]:
    """Letters for the reduction's argument axes (from ``start``) and for the kept ones."""
    rank = len(_shape(node.arg))
    full = _labels(rank, start)
    axes = ops.normalize_axes(node.axes, rank, node.arg)
    return full, "".join(c for i, c in enumerate(full) if i not in axes)


def jacobian(
    y: Expr,
    wrt: Any,
    *,
    mode: Mode = "auto",
    memory_limit: int | Literal["default"] | None = "default",
) -> Expr:
    """The generalized Jacobian ``J[o…, w…] = ∂y[o…]/∂W[w…]``, of shape ``y.shape + W.shape``.

    ``mode`` is ``"forward"``, ``"reverse"`` or ``"auto"`` (both are derived and the one
    opt_einsum estimates cheaper is kept; see :func:`cost` for the choice). Shapes must be
    known. Raises MemoryLimitError at once, allocating nothing, when the Jacobian would
    exceed the memory limit (``memory_limit`` bytes, default :func:`get_memory_limit`).
    """
    variable = _resolve_variable(y, wrt)
    if y.shape is None or variable.shape is None:
        missing = short_name(y) if y.shape is None else variable.name
        raise ShapeError(
            f"jacobian needs static shapes: give {missing} a shape (einsgrad.var(name, shape))"
        )
    if mode not in ("auto", "forward", "reverse"):
        raise GradError(f"mode must be 'auto', 'forward' or 'reverse', got {mode!r}")
    limit = _limit_for(memory_limit)
    guard(
        f"the Jacobian of {short_name(y)} with respect to {variable.name}",
        y.shape + variable.shape,
        _dtype_of(*variables_by_name(toposort([y])).values(), variable),
        limit,
        "Use einsgrad.vjp (a cotangent in, a gradient out) or einsgrad.jvp (a tangent in) "
        "to get its action without forming it.",
    )
    return _mark(_choose(y, variable, mode), y, variable)


def _choose(y: Expr, variable: Var, mode: Mode) -> Expr:
    candidates: dict[str, Expr] = {}
    if mode in ("auto", "forward"):
        forward = _tangents(y, {variable: _delta(variable.shape)}, variable.shape)  # type: ignore[arg-type]
        candidates["forward"] = simplify(forward if forward is not None else _zeros(y, variable))
    if mode in ("auto", "reverse"):
        reverse = _reverse_jacobian(y, variable)
        candidates["reverse"] = simplify(reverse if reverse is not None else _zeros(y, variable))
    costs = {name: cost(expr) for name, expr in candidates.items()}
    chosen = min(candidates, key=lambda name: (costs[name].flops, name != "reverse"))
    result = candidates[chosen]
    label = chosen
    if len(candidates) == 2 and candidates["forward"] is candidates["reverse"]:
        label = "symbolic"
    alternatives = {name: c for name, c in costs.items() if name != chosen}
    if mode == "auto" or result not in _MODES:
        # A forced call that lands on a node an automatic choice made keeps that record.
        _MODES[result] = (label, alternatives)
    return result


def _zeros(y: Expr, variable: Var) -> Expr:
    shape = _shape(y) + _shape(variable)
    return _einsum("->" + _labels(len(shape)), [Const(0.0)], shape)


def hessian(
    loss: Expr,
    x: Any,
    *,
    mode: Mode = "auto",
    memory_limit: int | Literal["default"] | None = "default",
) -> Expr:
    """The Hessian ``H[i…, j…] = ∂²L/∂x[i…]∂x[j…]`` of a scalar loss, shape ``x.shape + x.shape``.

    The Jacobian of ``grad(L, x)``, simplified: for ``L = xᵀAx`` it is ``A + Aᵀ``. Raises
    MemoryLimitError at once if it would exceed the memory limit (use :func:`hvp` then).
    """
    variable = _resolve_variable(loss, x)
    if loss.shape is not None and loss.shape != ():
        raise GradError(
            f"hessian needs a scalar loss, but {short_name(loss)} has shape {loss.shape}; "
            "use jacobian of a gradient for non-scalar outputs"
        )
    if variable.shape is None:
        raise ShapeError(f"hessian needs static shapes: give {variable.name} a shape")
    limit = _limit_for(memory_limit)
    guard(
        f"the Hessian of {short_name(loss)} with respect to {variable.name}",
        variable.shape + variable.shape,
        _dtype_of(*variables_by_name(toposort([loss])).values()),
        limit,
        "Use einsgrad.hvp(loss, x, v) for Hessian-vector products without forming it.",
    )
    gradient = grad(loss, variable)
    assert isinstance(gradient, Expr)
    return _mark(jacobian(gradient, variable, mode=mode, memory_limit=memory_limit), loss, variable)
