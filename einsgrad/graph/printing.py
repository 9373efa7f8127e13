"""Readable text for expressions: Python-like, with shared subexpressions named once.

``str(expr)`` of a derived gradient reads like the program it is::

    t1 = einsum('bi,ij->bj', X, W) + b
    t2 = 2 * relu(t1) * greater(t1, 0) / 640
    einsum('bi,bj->ij', X, t2)

Nodes used more than once get a name ``t1, t2, ...`` and a line of their own; everything
else is written inline.

Each node's text is built once, as a :class:`Template` that refers to its children's
texts by placeholder instead of copying them, and the text is assembled at the end in
one left-to-right pass. So printing is linear in the size of the DAG (and of the text),
however deep the expression; and with a ``limit`` the assembly stops after ``limit``
characters, so a text that would be exponentially long (a DAG written inline, as a tree)
is never built.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

import numpy as np

from einsgrad.core import kinds
from einsgrad.core.ir import Const, Expr, Var, toposort

__all__ = [
    "ATOM",
    "TRUNCATED",
    "Template",
    "axis_text",
    "const_text",
    "literal_length",
    "short_name",
    "to_text",
    "visible_order",
]

ATOM = 1000

#: What ends a text cut at its limit.
TRUNCATED = "..."

# Placeholders are private-use characters, which no identifier, number or einsum spec has.
_OPEN, _CLOSE = "\ue000", "\ue001"
_PLACEHOLDER = re.compile(f"{_OPEN}([0-9]+){_CLOSE}")


class Template:
    """Texts that refer to each other by placeholder: a node's rule writes the placeholder
    of a child where it would have copied the child's whole text.

    ``add(text)`` stores a text and returns its placeholder (``reserve`` a placeholder
    first and ``fill`` it later for a text written after its parent's); ``expand(text)``
    writes a text with every placeholder replaced, iteratively (no recursion, whatever the
    depth).
    """

    def __init__(self) -> None:
        self._stored: list[list[str | int]] = []

    def add(self, text: str) -> str:
        """Store ``text`` (which may hold placeholders); return its own placeholder."""
        placeholder = self.reserve()
        self.fill(placeholder, text)
        return placeholder

    def reserve(self) -> str:
        """A placeholder for a text to be given later by :meth:`fill` (empty until then)."""
        self._stored.append([])
        return f"{_OPEN}{len(self._stored) - 1}{_CLOSE}"

    def fill(self, placeholder: str, text: str) -> None:
        """Give the reserved ``placeholder`` its text."""
        self._stored[int(placeholder[1:-1])] = _pieces(text)

    def expand(self, text: str, cap: int | None = None) -> str:
        """``text`` with its placeholders expanded, cut after ``cap`` characters if given."""
        chunks: list[str] = []
        length = 0
        stack: list[tuple[list[str | int], int]] = [(_pieces(text), 0)]
        while stack and (cap is None or length < cap):
            pieces, at = stack.pop()
            if at == len(pieces):
                continue
            stack.append((pieces, at + 1))
            piece = pieces[at]
            if isinstance(piece, int):
                stack.append((self._stored[piece], 0))
            else:
                chunks.append(piece)
                length += len(piece)
        joined = "".join(chunks)
        return joined if cap is None else joined[:cap]


def literal_length(text: str) -> int:
    """The length of ``text`` without its placeholders: what it adds to the expanded text."""
    return len(_PLACEHOLDER.sub("", text))


def _pieces(text: str) -> list[str | int]:
    # re.split alternates literal text and the captured numbers of the placeholders.
    split = _PLACEHOLDER.split(text)
    return [int(piece) if odd % 2 else piece for odd, piece in enumerate(split) if piece]


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


def visible_order(root: Expr, given: Mapping[Expr, Any]) -> list[Expr]:
    """The nodes below ``root`` children first, not looking below the nodes of ``given``
    (other than ``root``): they are written as their given names, whatever they hold."""
    return toposort([root], stop=given)


def to_text(
    expr: Expr,
    *,
    inline: bool = False,
    limit: int | None = None,
    given: Mapping[Expr, str] | None = None,
) -> str:
    """Render ``expr``. With ``inline=True`` shared nodes are repeated instead of named;
    nodes in ``given`` are written as the names it gives them (``{dY: "∂L/∂Y"}``).

    With ``limit``, a longer text is cut to ``limit`` characters ending in ``...``; only
    that much of it is ever assembled.
    """
    given = {} if given is None else given
    order = visible_order(expr, given)
    uses: dict[Expr, int] = {}
    for node in order:
        if node is expr or node not in given:
            for dep in node.children + node.references:
                uses[dep] = uses.get(dep, 0) + 1
    names: dict[Expr, str] = {}
    lines: list[str] = []
    rendered: dict[Expr, tuple[str, int]] = {}
    template = Template()

    def text_of(node: Expr) -> tuple[str, int]:
        if node in names:
            return names[node], ATOM
        if node is not expr and node in given:
            return given[node], ATOM
        return rendered[node]

    def wrap(node: Expr, precedence: int, *, right: bool = False) -> str:
        text, own = text_of(node)
        if own < precedence or (right and own == precedence):
            return f"({text})"
        return text

    for node in order:
        if node is not expr and node in given:
            continue
        text, precedence = _render(node, text_of, wrap)
        rendered[node] = template.add(text), precedence
        shared = uses.get(node, 0) > 1 and node is not expr
        if not inline and shared and not isinstance(node, Var | Const):
            name = f"t{len(names) + 1}"
            names[node] = name
            lines.append(f"{name} = {rendered[node][0]}")
    body = "\n".join([*lines, rendered[expr][0]])
    if limit is None:
        return template.expand(body)
    text = template.expand(body, limit + 1)
    if len(text) > limit:
        text = text[: max(0, limit - len(TRUNCATED))] + TRUNCATED
    return text


def _render(node: Expr, text_of: Any, wrap: Any) -> tuple[str, int]:
    rendered: tuple[str, int] = kinds.rule(node, "text")(node, text_of, wrap)
    return rendered
