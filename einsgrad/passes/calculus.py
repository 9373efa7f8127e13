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

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np

from einsgrad.core import kinds
from einsgrad.core.errors import GradError, MemoryLimitError, OptionError, ShapeError
from einsgrad.core.ir import Const, Expr, Shape, Var, toposort
from einsgrad.core.labels import letters
from einsgrad.core.limits import format_bytes as _format_bytes
from einsgrad.core.limits import get_memory_limit, guard, memory_limit, set_memory_limit
from einsgrad.core.limits import limit_for as _limit_for
from einsgrad.graph import ops
from einsgrad.graph.printing import short_name
from einsgrad.graph.static import ONE, static_einsum, static_shape
from einsgrad.passes.autodiff import _target, cotangents, grad, variables_by_name
from einsgrad.passes.evaluate import plan as program_plan
from einsgrad.passes.records import SweepChoice, note_origin, note_sweep, sweep_choice
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

# --- the memory guard lives in einsgrad.limits; re-exported here -------------------------


def _guard(
    what: Callable[[], str], shape: Shape, dtype: Any, limit: int | None, advice: str
) -> None:
    """The memory guard, with the result described only when it is refused: describing a
    derived expression renders it, which costs more than deriving it."""
    try:
        guard("the result", shape, dtype, limit, advice)
    except MemoryLimitError:
        guard(what(), shape, dtype, limit, advice)
        raise


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


def cost(expr: Expr, dtype: Any = np.float64, **shapes: Sequence[int]) -> Cost:
    """Estimate the FLOPs and memory of evaluating ``expr``.

    Variables without a declared shape take theirs from ``shapes`` (``X=(64, 128)``).
    The numbers are the plan of the program evaluation would run (see
    :meth:`einsgrad.Compiled.plan`). For a result of :func:`jacobian` or :func:`hessian`
    the chosen mode is included.
    """
    plan = program_plan((expr,), shapes, dtype, "auto")
    choice = sweep_choice(expr)
    if choice is None:
        return Cost(plan.flops, plan.largest_bytes, plan.total_bytes)
    return Cost(plan.flops, plan.largest_bytes, plan.total_bytes, choice.mode, choice.alternatives)


# --- vjp and jvp ---------------------------------------------------------------------------


def _resolve_variable(expr: Expr, item: Any) -> Var:
    """The variable ``item`` names; one the expression lacks is allowed (its result is zero)."""
    return _target(item, variables_by_name(toposort([expr])), allow_unused=True)


def _mark(result: Expr, source: Expr, *extra: Var) -> Expr:
    names = set(variables_by_name(toposort([source]))) | {v.name for v in extra}
    return note_origin(result, names, like=source)


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

    Each node on the way gets its kind's ``jvp`` of its children's tangents. With
    ``extra`` (a shape), every tangent carries those extra trailing axes: seeding a
    variable with its Kronecker delta gives generalized Jacobians.
    """
    tangent: dict[Expr, Expr] = {variable: seed for variable, seed in seeds.items()}
    for node in toposort([y], references=False):
        if node in tangent or not any(child in tangent for child in node.children):
            continue
        child_tangents = [tangent.get(child) for child in node.children]
        result = kinds.rule(node, "jvp")(node, child_tangents, extra)
        if result is not None:
            tangent[node] = result
    return tangent.get(y)


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
    labels = letters(len(shape))
    return static_einsum("->" + labels + labels, [ONE], shape + shape)


def _reverse_jacobian(y: Expr, target: Var) -> Expr | None:
    """The reverse sweep with cotangents of shape ``y.shape + node.shape``, seeded with δ."""
    extra = static_shape(y)
    batch = letters(len(extra))
    return cotangents([(y, _delta(extra))], [target], batch)[target]


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
        raise OptionError(f"mode must be 'auto', 'forward' or 'reverse', got {mode!r}")
    limit = _limit_for(memory_limit)
    _guard(
        lambda: f"the Jacobian of {short_name(y)} with respect to {variable.name}",
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
    # A forced call that lands on a node an automatic choice made keeps that record.
    note_sweep(result, SweepChoice(label, alternatives), keep_existing=mode != "auto")
    return result


def _zeros(y: Expr, variable: Var) -> Expr:
    shape = static_shape(y) + static_shape(variable)
    return static_einsum("->" + letters(len(shape)), [Const(0.0)], shape)


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
    _guard(
        lambda: f"the Hessian of {short_name(loss)} with respect to {variable.name}",
        variable.shape + variable.shape,
        _dtype_of(*variables_by_name(toposort([loss])).values()),
        limit,
        "Use einsgrad.hvp(loss, x, v) for Hessian-vector products without forming it.",
    )
    gradient = grad(loss, variable)
    assert isinstance(gradient, Expr)
    return _mark(jacobian(gradient, variable, mode=mode, memory_limit=memory_limit), loss, variable)
