"""Simplification to a canonical form: einsum fusion, delta elimination, constant folding.

``simplify(expr)`` rebuilds the expression bottom-up, applying local rewrites:

* **Einsum fusion.** An einsum operand that is itself an einsum is inlined, so nested
  contractions with no elementwise op between them become one multi-operand einsum that
  opt_einsum plans at once. Work is shared, not duplicated: an inner einsum used by more
  than one node is kept as it is, unless it holds no arrays at all (a broadcast constant
  or a Kronecker delta), which costs nothing to inline.
* **Delta elimination.** A Kronecker delta is an einsum with a repeated output label
  (``δ_ij`` is ``einsum("->ii", 1.0)``). Inlining it identifies its two labels, so the
  delta collapses the contraction it meets (``Σ_j A_ij δ_jk = A_ik``); a delta survives
  only where the true answer has one (a repeated label in the result).
* **Constants.** Plain-number factors are multiplied into one; a sum over an axis that no
  operand carries becomes a factor (its size); ``x · 1``, ``x + 0`` and ``−(−x)`` go;
  multiplying by a broadcast constant becomes a scalar factor; ``c · einsum`` folds ``c``
  into the einsum.
* **Collecting terms.** ``einsum(…, u, …) + einsum(…, v, …)`` with all other operands
  equal becomes ``einsum(…, u + v, …)``; operands of an einsum with identical index
  strings are multiplied elementwise first (``"bi,b,b,bj"`` → ``"bi,b,bj"``).
* **Canonical form.** Einsum labels are renamed in a fixed order and operands sorted by a
  structural key; the arguments of ``+`` and ``·`` are sorted. Expressions that differ
  only by label names, operand order or transposition bookkeeping become the same node.

Fusion needs static shapes; expressions with shapes unknown until evaluation keep their
einsums as they are.

**Linear time.** The walk visits each node once, and each rewrite looks only a bounded
distance down: an einsum of more than ``MAX_FUSED_OPERANDS`` operands (or
``MAX_FUSED_LABELS`` labels) is not inlined into its consumers, and a product of more than
``MAX_FACTORS`` factors is kept whole as one factor of its consumers
(:mod:`einsgrad.rules.algebra`). Without the bounds a chain of n links would re-flatten
every link below each new one, n²/2 steps; with them, the canonical form (sorted, label
names fixed) holds within those bounds, and simplifying a result again changes nothing.
"""

from __future__ import annotations

from einsgrad.core import kinds
from einsgrad.core.ir import Expr, toposort
from einsgrad.graph.keys import structural_key
from einsgrad.graph.rewrite import rebuild
from einsgrad.passes.records import note_origin

__all__ = ["simplify", "structural_key"]


def simplify(expr: Expr) -> Expr:
    """The canonical, simplified form of ``expr`` (see the module documentation).

    The result is equal to ``expr`` for every input; it is usually smaller and cheaper.
    """
    uses: dict[Expr, int] = {}
    for node in toposort([expr]):
        for child in node.children:
            uses[child] = uses.get(child, 0) + 1
    shared: set[Expr] = set()

    def rewrite(node: Expr, new: Expr) -> Expr:
        new = kinds.rule(new, "simplify")(new, shared)
        if uses.get(node, 0) > 1:
            shared.add(new)
        return new

    (result,) = rebuild([expr], rewrite)
    return note_origin(result, (), like=expr)
