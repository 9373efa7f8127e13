"""Reverse mode over the expression DAG: ``grad``.

Every node on a path from the loss to a variable asked for is visited once, in reverse
topological order; the cotangents reaching it are summed, and its kind's ``vjp`` rule
(:mod:`einsgrad.core.kinds`) hands cotangents to exactly the children that lead to a
wanted variable. Branches that lead nowhere are never built. The result is an ordinary
expression: it prints, evaluates and can be differentiated again.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any, overload

from einsgrad.core import kinds
from einsgrad.core.errors import GradError, VariableError
from einsgrad.core.ir import Const, Expr, Var, reaching, toposort
from einsgrad.core.labels import letters
from einsgrad.frontends.parse import parse_expr
from einsgrad.graph import ops
from einsgrad.graph.printing import short_name
from einsgrad.graph.static import add_all, static_einsum
from einsgrad.passes.records import note_origin

__all__ = ["cotangents", "grad", "variables_by_name"]


def variables_by_name(nodes: Iterable[Expr]) -> dict[str, Var]:
    """The variables among ``nodes`` by name; two different variables of one name are an error."""
    found: dict[str, Var] = {}
    for node in nodes:
        if isinstance(node, Var):
            other = found.setdefault(node.name, node)
            if other is not node:
                raise VariableError(
                    f"variable {node.name!r} is declared twice, with shapes {other.shape} and "
                    f"{node.shape}; use one einsgrad.var for it"
                )
    return found


def variable_of(expr: Expr, wrt: Any) -> Var:
    """The variable of ``expr`` that ``wrt`` (a variable or a name) stands for."""
    by_name = variables_by_name(toposort([expr]))
    variable = by_name.get(wrt) if isinstance(wrt, str) else wrt
    if not isinstance(variable, Var) or by_name.get(variable.name) is not variable:
        known = ", ".join(sorted(by_name)) or "none"
        raise GradError(f"wrt={wrt!r} is not a variable of the expression (its variables: {known})")
    return variable


def cotangents(
    seeds: Sequence[tuple[Expr, Expr]], targets: Sequence[Expr], batch: str | None = None
) -> dict[Expr, Expr | None]:
    """Reverse-mode cotangents of ``targets`` given cotangents for some output nodes.

    The one reverse sweep: every node on a path from a seeded output to a target is
    visited once, children after parents; the cotangents reaching it are summed and its
    kind's rule hands cotangents to exactly the children that lead to a target.
    ``seeds`` pairs outputs with their cotangents. With ``batch`` (one letter per leading
    axis the cotangents carry) the sweep runs each kind's ``batched_vjp`` rule, which is
    how generalized Jacobians are derived; otherwise its ``vjp`` rule. Returns, for each
    target, the summed cotangent, or ``None`` where no path leads to it (a zero).
    """
    order = toposort([out for out, _ in seeds], references=False)
    wanted_targets = set(targets)
    leads_to_target = reaching(order, wanted_targets)
    pending: dict[Expr, list[Expr]] = {}
    for out, cotangent in seeds:
        if out in leads_to_target:
            pending.setdefault(out, []).append(cotangent)
    results: dict[Expr, Expr | None] = {target: None for target in targets}
    entry = "vjp" if batch is None else "batched_vjp"
    extra = () if batch is None else (batch,)
    for node in reversed(order):
        contributions = pending.pop(node, None)
        if not contributions:
            continue
        total = add_all(contributions)
        if node in wanted_targets:
            results[node] = total
        wanted = [child in leads_to_target for child in node.children]
        if not any(wanted):
            continue
        pieces = kinds.rule(node, entry)(node, total, wanted, *extra)
        for child, piece in zip(node.children, pieces, strict=True):
            if piece is not None:
                pending.setdefault(child, []).append(piece)
    return results


def _zeros_like(variable: Var) -> Expr:
    """Zeros of the variable's shape: a broadcast 0.0, so that nothing is allocated while
    deriving (a declared (10⁵, 10⁵) variable's zeros are 75 GiB) and evaluation gives
    them the dtype of the call's arrays."""
    if variable.shape is not None:
        return static_einsum("->" + letters(len(variable.shape)), [Const(0.0)], variable.shape)
    return ops._generalized("->...", Const(0.0), variable)


@overload
def grad(
    expr: Expr | str,
    wrt: Var | str,
    *,
    allow_unused: bool = ...,
    shapes: Mapping[str, Sequence[int]] | None = ...,
) -> Expr: ...


@overload
def grad(
    expr: Expr | str,
    wrt: list[Var | str] | tuple[Var | str, ...],
    *,
    allow_unused: bool = ...,
    shapes: Mapping[str, Sequence[int]] | None = ...,
) -> tuple[Expr, ...]: ...


def grad(
    expr: Expr | str,
    wrt: Any,
    *,
    allow_unused: bool = False,
    shapes: Mapping[str, Sequence[int]] | None = None,
) -> Expr | tuple[Expr, ...]:
    """The gradient of the scalar ``expr`` with respect to ``wrt``, as expressions.

    ``expr`` is an expression or an expression string (see :func:`einsgrad.parse_expr`;
    ``shapes`` then gives variable shapes). ``wrt`` is a variable, a variable's name, or a
    list or tuple of them: a single ``wrt`` gives a single expression, a list or tuple
    gives a tuple. Each gradient has the shape of its variable.

    Raises GradError if ``expr`` is not a scalar (use ``vjp``/``jacobian`` then), if a name
    in ``wrt`` is not a variable of ``expr``, or if a variable does not occur in ``expr``
    and ``allow_unused`` is false (with it, the gradient is zero).
    """
    if isinstance(expr, str):
        expr = parse_expr(expr, shapes=shapes)
    if not isinstance(expr, Expr):
        raise GradError(
            f"grad needs an einsgrad expression or an expression string, got {type(expr).__name__}"
        )
    nodes = toposort([expr])
    by_name = variables_by_name(nodes)
    single = not isinstance(wrt, list | tuple)
    requested = [wrt] if single else list(wrt)
    if not requested:
        raise GradError("wrt is empty: name at least one variable")
    targets: list[Var] = []
    for item in requested:
        targets.append(_target(item, by_name, allow_unused))
    if expr.shape is not None and expr.shape != ():
        raise GradError(
            f"grad needs a scalar loss, but {short_name(expr)} has shape {expr.shape}; "
            "use vjp (with a cotangent of that shape) or jacobian for non-scalar outputs"
        )
    found = cotangents([(expr, ops.seed(expr))], targets)
    results: list[Expr] = []
    for target in targets:
        cotangent = found[target]
        result = cotangent if cotangent is not None else _zeros_like(target)
        if target.structure is not None:
            result = ops.project(result, target)
        results.append(note_origin(result, by_name))
    return results[0] if single else tuple(results)


def _target(item: Any, by_name: dict[str, Var], allow_unused: bool) -> Var:
    if isinstance(item, str):
        if item not in by_name:
            known = ", ".join(sorted(by_name)) or "none"
            raise GradError(
                f"wrt={item!r} is not a variable of the expression (its variables: {known})"
            )
        return by_name[item]
    if isinstance(item, Var):
        if by_name.get(item.name) is item or allow_unused:
            if item.name in by_name and by_name[item.name] is not item:
                raise GradError(
                    f"wrt names a variable {item.name!r} of shape {item.shape}, but the expression "
                    f"uses a different variable of that name (shape {by_name[item.name].shape})"
                )
            return item
        known = ", ".join(sorted(by_name)) or "none"
        raise GradError(
            f"variable {item.name!r} does not occur in the expression (its variables: {known}); "
            "pass allow_unused=True for a zero gradient"
        )
    raise GradError(f"wrt must be a variable or a variable's name, got {type(item).__name__}")
