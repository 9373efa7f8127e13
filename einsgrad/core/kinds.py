"""The rule table: what each node kind does in each pass, registered in one place per kind.

A node kind (``Einsum``, ``Map``, a ``Reshape`` of your own) is a class in
:mod:`einsgrad.core.ir`; its behaviour is a row of this table, one entry per pass:

==============  ======================================================================
entry           signature and meaning
==============  ======================================================================
``infer``       ``(node, children: [Meta], references: [Meta]) -> Meta``: shape and dtype
``vjp``         ``(node, ȳ, wanted: [bool]) -> [Expr | None]``: reverse mode, one
                cotangent per child (``None`` is a zero)
``jvp``         ``(node, tangents: [Expr | None], extra: Shape | None) -> Expr | None``:
                forward mode; with ``extra`` every tangent carries those trailing axes
``batched_vjp`` ``(node, ȳ, wanted, batch: str) -> [Expr | None]``: reverse mode with
                cotangents carrying leading batch axes (one label each in ``batch``)
``lower``       ``(node, step: LowerContext) -> Lowered``: the program step computing it
``text``        ``(node, text_of, wrap) -> (str, precedence)``: Python-like rendering
``rebuild``     ``(node, children, references) -> Expr``: the node again from new parts,
                through the checking constructors (rewrites call it)
``key``         ``(node, child_keys, reference_keys) -> list``: what a structural digest
                is made of (simplify's canonical order)
``simplify``    ``(node, shared: set[Expr]) -> Expr``: the local rewrite to canonical form
``explain``     ``(node, position, names, output_name) -> derivation data``: what the
                teaching layer renders (:mod:`einsgrad.core.derivation`)
``matrix``      ``(node, form_of, style) -> (str | None, precedence)``: matrix notation
                (None: there is none) from the children's forms
``index``       ``(node, labels, writer) -> (str, precedence)``: index notation with the
                node's axes labelled ``labels`` (NoFormError where there is none)
==============  ======================================================================

Passes look entries up with :func:`rule`; a node kind without the entry a pass needs
raises :class:`MissingRuleError`, naming the kind and the pass, so a new kind can never
silently differentiate to zero or keep a stale subtree. :func:`missing` lists the gaps.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from einsgrad.core.errors import MissingRuleError
from einsgrad.core.ir import Expr

__all__ = ["PASSES", "kinds", "missing", "register", "rule", "unregister"]

PASSES: tuple[str, ...] = (
    "infer",
    "vjp",
    "jvp",
    "batched_vjp",
    "lower",
    "text",
    "rebuild",
    "key",
    "simplify",
    "explain",
    "matrix",
    "index",
)

_TABLE: dict[type[Expr], dict[str, Callable[..., Any]]] = {}


def register(kind: type[Expr], **entries: Callable[..., Any]) -> None:
    """Add ``entries`` (pass name → function) to the row of ``kind``.

    Unknown pass names are refused, so a misspelt entry cannot go unnoticed.
    """
    unknown = sorted(set(entries) - set(PASSES))
    if unknown:
        raise MissingRuleError(
            f"register({kind.__name__}, ...): unknown pass {', '.join(unknown)}; "
            f"the passes are {', '.join(PASSES)}"
        )
    _TABLE.setdefault(kind, {}).update(entries)


def unregister(kind: type[Expr]) -> None:
    """Remove the row of ``kind`` (a kind registered for a test, say)."""
    _TABLE.pop(kind, None)


def rule(node: Expr, pass_name: str) -> Callable[..., Any]:
    """The ``pass_name`` entry of ``node``'s kind, or MissingRuleError naming what is missing."""
    entry = _TABLE.get(type(node), {}).get(pass_name)
    if entry is None:
        kind = type(node).__name__
        raise MissingRuleError(
            f"node kind {kind} has no {pass_name!r} rule, so this pass cannot handle it; "
            f"register one with einsgrad.core.kinds.register({kind}, {pass_name}=...)"
        )
    return entry


def kinds() -> tuple[type[Expr], ...]:
    """Every node kind with a row in the table."""
    return tuple(_TABLE)


def missing(kind: type[Expr]) -> tuple[str, ...]:
    """The passes ``kind`` has no entry for."""
    row = _TABLE.get(kind, {})
    return tuple(name for name in PASSES if name not in row)
