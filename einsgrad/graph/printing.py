"""Readable text for expressions: Python-like, with shared subexpressions named once.

``str(expr)`` of a derived gradient reads like the program it is::

    t1 = einsum('bi,ij->bj', X, W) + b
    t2 = 2 * relu(t1) * greater(t1, 0) / 640
    einsum('bi,bj->ij', X, t2)

Nodes used more than once get a name ``t1, t2, ...`` and a line of their own; everything
else is written inline.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from einsgrad.core import kinds
from einsgrad.core.ir import Const, Expr, Var, toposort

__all__ = ["ATOM", "axis_text", "const_text", "short_name", "to_text"]

ATOM = 1000


def short_name(expr: Expr) -> str:
    """A short description for error messages: a variable's name, or the kind and shape."""
    if isinstance(expr, Var):
        return expr.name
    if isinstance(expr, Const):
        return const_text(expr)
    text = to_text(expr, inline=True, limit=60)
    return text


def const_text(node: Const) -> str:
    value = node.value
    if node.is_scalar:
        return repr(value)
    array: np.ndarray[Any, Any] = value
    if array.size <= 6:
        return f"array({array.tolist()!r})"
    return f"const{tuple(array.shape)}"


def axis_text(axes: tuple[int, ...] | None) -> str:
    if axes is None:
        return ""
    return f", axis={axes[0]}" if len(axes) == 1 else f", axis={axes}"


def to_text(
    expr: Expr,
    *,
    inline: bool = False,
    limit: int | None = None,
    given: Mapping[Expr, str] | None = None,
) -> str:
    """Render ``expr``. With ``inline=True`` shared nodes are repeated instead of named;
    nodes in ``given`` are written as the names it gives them (``{dY: "∂L/∂Y"}``)."""
    order = toposort([expr])
    uses: dict[Expr, int] = {}
    for node in order:
        for dep in node.children + node.references:
            uses[dep] = uses.get(dep, 0) + 1
    names: dict[Expr, str] = {}
    lines: list[str] = []
    rendered: dict[Expr, tuple[str, int]] = {}

    def text_of(node: Expr) -> tuple[str, int]:
        if node in names:
            return names[node], ATOM
        if given is not None and node in given:
            return given[node], ATOM
        return rendered[node]

    def wrap(node: Expr, precedence: int, *, right: bool = False) -> str:
        text, own = text_of(node)
        if own < precedence or (right and own == precedence):
            return f"({text})"
        return text

    for node in order:
        rendered[node] = _render(node, text_of, wrap)
        shared = uses.get(node, 0) > 1 and node is not expr
        if not inline and shared and not isinstance(node, Var | Const):
            name = f"t{len(names) + 1}"
            names[node] = name
            lines.append(f"{name} = {rendered[node][0]}")
    result = rendered[expr][0]
    text = "\n".join([*lines, result])
    if limit is not None and len(text) > limit:
        text = text[: max(0, limit - 3)] + "..."
    return text


def _render(node: Expr, text_of: Any, wrap: Any) -> tuple[str, int]:
    rendered: tuple[str, int] = kinds.rule(node, "text")(node, text_of, wrap)
    return rendered
