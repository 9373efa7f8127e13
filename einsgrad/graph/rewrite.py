"""Rebuilding an expression DAG node by node, with a hook: the one walk rewrites share."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

from einsgrad.core.ir import Const, Einsum, Expr, Map, Reduce, Seed, Size, Var, toposort

__all__ = ["rebuild"]

Hook = Callable[[Expr, Expr], Expr]


def rebuild(
    outputs: Sequence[Expr],
    hook: Hook | None = None,
    replace: Mapping[Expr, Expr] | None = None,
) -> tuple[Expr, ...]:
    """``outputs`` rebuilt bottom-up.

    A node in ``replace`` becomes its replacement; every other node is rebuilt from its
    rebuilt children and references (through the ordinary constructors, so shapes are
    checked again), then passed to ``hook(original, rebuilt)``, whose return value takes
    its place.
    """
    from einsgrad.graph import ops

    replacements = dict(replace or {})
    done: dict[Expr, Expr] = {}
    for node in toposort(outputs):
        if node in replacements:
            done[node] = replacements[node]
            continue
        children = [done[c] for c in node.children]
        new: Expr
        if isinstance(node, Var | Const):
            new = node
        elif isinstance(node, Einsum):
            like = done[node.like] if isinstance(node.like, Expr) else node.like
            new = ops._einsum_node(node.spec, children, like)
        elif isinstance(node, Map):
            new = ops._map(node.op.name, *children)
        elif isinstance(node, Reduce):
            new = ops.reduction(node.op, children[0], node.axes)
        elif isinstance(node, Size):
            new = ops.size(done[node.arg], node.axes)
        elif isinstance(node, Seed):
            loss = done[node.loss]
            new = Const(1.0) if loss.shape == () else Seed(loss)
        else:  # pragma: no cover - every node kind is listed above
            new = node
        done[node] = hook(node, new) if hook is not None else new
    return tuple(done[out] for out in outputs)
