"""Rebuilding an expression DAG node by node, with a hook: the one walk rewrites share."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

from einsgrad.core import kinds
from einsgrad.core.ir import Expr, toposort

__all__ = ["rebuild"]

Hook = Callable[[Expr, Expr], Expr]


def rebuild(
    outputs: Sequence[Expr],
    hook: Hook | None = None,
    replace: Mapping[Expr, Expr] | None = None,
) -> tuple[Expr, ...]:
    """``outputs`` rebuilt bottom-up.

    A node in ``replace`` becomes its replacement; every other node is rebuilt from its
    rebuilt children and references by its kind's ``rebuild`` rule (through the ordinary
    constructors, so shapes are checked again), then passed to ``hook(original,
    rebuilt)``, whose return value takes its place. A kind with no ``rebuild`` rule
    raises MissingRuleError rather than keep a subtree that a replacement should change.
    """
    replacements = dict(replace or {})
    done: dict[Expr, Expr] = {}
    for node in toposort(outputs):
        if node in replacements:
            done[node] = replacements[node]
            continue
        children = [done[c] for c in node.children]
        references = [done[r] for r in node.references]
        new = kinds.rule(node, "rebuild")(node, children, references)
        done[node] = hook(node, new) if hook is not None else new
    return tuple(done[out] for out in outputs)
