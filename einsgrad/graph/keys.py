"""Structural keys: a digest of an expression's structure, the same however it was built.

Simplify sorts operands and arguments by it, so that expressions differing only in the
order they were written become one node. What a node contributes to its key is its
kind's ``key`` entry in the rule table.
"""

from __future__ import annotations

import hashlib
import weakref

from einsgrad.core import kinds
from einsgrad.core.ir import Expr, toposort

__all__ = ["structural_key"]

_KEYS: weakref.WeakKeyDictionary[Expr, str] = weakref.WeakKeyDictionary()


def structural_key(node: Expr) -> str:
    """A digest of ``node``'s structure, independent of construction order (memoized)."""
    cached = _KEYS.get(node)
    if cached is not None:
        return cached
    for item in toposort([node]):
        if item in _KEYS:
            continue
        children = [_KEYS[c] for c in item.children]
        references = [_KEYS[r] for r in item.references]
        parts = kinds.rule(item, "key")(item, children, references)
        _KEYS[item] = hashlib.blake2b(repr(parts).encode(), digest_size=12).hexdigest()
    return _KEYS[node]
