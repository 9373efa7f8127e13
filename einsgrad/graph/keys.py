"""Structural keys: a digest of an expression's structure, the same however it was built.

Simplify sorts operands and arguments by it, so that expressions differing only in the
order they were written become one node. What a node contributes to its key is its
kind's ``key`` entry in the rule table.

Keys are memoized per node, and a key is computed from the fixed-size digests of its
children and references, so computing the keys of every node of a DAG is linear in its
size: the walk below stops at nodes whose key is known instead of re-walking the whole
subexpression under each new node (simplify asks for a key at almost every node).
"""

from __future__ import annotations

import hashlib
import weakref

from einsgrad.core import kinds
from einsgrad.core.ir import Expr

__all__ = ["structural_key"]

_KEYS: weakref.WeakKeyDictionary[Expr, str] = weakref.WeakKeyDictionary()


def structural_key(node: Expr) -> str:
    """A digest of ``node``'s structure, independent of construction order (memoized)."""
    cached = _KEYS.get(node)
    if cached is not None:
        return cached
    # An explicit stack, not recursion: a 5000-layer chain is 5000 nested nodes.
    stack: list[Expr] = [node]
    while stack:
        item = stack[-1]
        if item in _KEYS:
            stack.pop()
            continue
        unknown = [dep for dep in (*item.children, *item.references) if dep not in _KEYS]
        if unknown:
            stack.extend(unknown)
            continue
        stack.pop()
        children = [_KEYS[c] for c in item.children]
        references = [_KEYS[r] for r in item.references]
        parts = kinds.rule(item, "key")(item, children, references)
        _KEYS[item] = hashlib.blake2b(repr(parts).encode(), digest_size=12).hexdigest()
    return _KEYS[node]
