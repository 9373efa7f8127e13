"""Contraction trees: an n-ary einsum as the pairwise einsums of opt_einsum's path.

Differentiating ``einsum("ab,bc,cd,de->ae", A, B, C, D)`` operand by operand costs n
separate (n−1)-operand contractions, each planned from scratch. Instead, with static
shapes, the einsum is split along the path opt_einsum picks for the forward pass into
pairwise einsums, and reverse mode runs through that tree: each pairwise step's backward
is two pairwise einsums (the einsum rule applied to a two-operand einsum), and the
intermediates of the forward pass are the very nodes the backward uses (hash-consing
makes them one). The gradient with respect to every operand then costs about twice the
forward contraction, on top of the forward itself.

Evaluation splits n-ary einsums the same way (:func:`split_einsums`), so the forward value
shares its intermediates with the gradients.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass

import opt_einsum

from einsgrad.core.ir import Const, Einsum, Expr, toposort
from einsgrad.core.labels import LETTERS
from einsgrad.core.spec import parse_spec, resolve
from einsgrad.graph import ops
from einsgrad.graph.rewrite import rebuild

__all__ = ["Tree", "contraction_tree", "split_einsums"]


@dataclass(frozen=True)
class Tree:
    """A node of a contraction tree: a leaf is an operand position, else a pairwise einsum."""

    node: Expr
    position: int | None = None
    left: Tree | None = None
    right: Tree | None = None


def _eligible(node: Einsum) -> bool:
    if node.shape is None or any(op.shape is None for op in node.operands):
        return False
    arrays = [op for op in node.operands if not (isinstance(op, Const) and op.is_scalar)]
    return len(arrays) >= 3


def _letters(labels: Sequence[int], names: dict[int, str]) -> str:
    for label in labels:
        if label not in names:
            names[label] = LETTERS[len(names)]
    return "".join(names[label] for label in labels)


@functools.lru_cache(maxsize=2048)
def contraction_tree(node: Einsum) -> Tree | None:
    """``node`` as a tree of pairwise einsums along opt_einsum's path, or None if not split.

    The root's value equals ``node``'s. Scalar factors and any final transpose, broadcast
    or diagonal are applied by a last single-operand einsum.
    """
    if not _eligible(node):
        return None
    like = node.like if isinstance(node.like, tuple) else None
    resolved = resolve(node.spec, [op.shape for op in node.operands], like)  # type: ignore[misc]
    if len(resolved.sizes) > len(LETTERS):
        return None
    positions = [
        k for k, op in enumerate(node.operands) if not (isinstance(op, Const) and op.is_scalar)
    ]
    scalars = [op for op in node.operands if isinstance(op, Const) and op.is_scalar]
    names: dict[int, str] = {}
    terms = [tuple(resolved.inputs[k]) for k in positions]
    text = ",".join(_letters(t, names) for t in terms) + "->" + _letters(resolved.core, names)
    shapes = tuple(node.operands[k].shape for k in positions)
    path = _path(text, shapes)
    live: list[tuple[tuple[int, ...], Tree]] = [
        (term, Tree(node.operands[k], position=k)) for term, k in zip(terms, positions, strict=True)
    ]
    for step in path:
        picked = [live[i] for i in step]
        for i in sorted(step, reverse=True):
            live.pop(i)
        remaining = {label for term, _ in live for label in term} | set(resolved.core)
        inputs = [term for term, _ in picked]
        seen = dict.fromkeys(label for term in inputs for label in term)
        out = tuple(label for label in seen if label in remaining)
        if not live:  # the last step writes the output's order: no transpose after it
            out = resolved.core
        spec = ",".join(_letters(t, names) for t in inputs) + "->" + _letters(out, names)
        expr = ops._einsum_node(parse_spec(spec), [tree.node for _, tree in picked], None)
        if len(picked) == 1:
            merged = Tree(expr, left=picked[0][1])
        else:
            merged = Tree(expr, left=picked[0][1], right=picked[1][1])
        live.append((out, merged))
    ((term, root),) = live
    final_out = _letters(resolved.output, names)
    generalized = not resolved.is_plain
    if _letters(term, names) == final_out and not scalars and not generalized:
        return root
    spec = ",".join([_letters(term, names), *("" for _ in scalars)]) + "->" + final_out
    shape = node.shape if generalized else None
    expr = ops._einsum_node(parse_spec(spec, generalized=generalized), [root.node, *scalars], shape)
    return Tree(expr, left=root)


@functools.lru_cache(maxsize=4096)
def _path(text: str, shapes: tuple[tuple[int, ...], ...]) -> tuple[tuple[int, ...], ...]:
    """opt_einsum's contraction path for ``text`` over ``shapes``.

    Cached by spec and shapes: the layers of a deep network repeat a few contractions
    thousands of times, and planning one costs more than everything else einsgrad does
    for it.
    """
    path, _ = opt_einsum.contract_path(text, *shapes, shapes=True, optimize="auto")
    return tuple(tuple(step) for step in path)


def split_einsums(outputs: Sequence[Expr]) -> tuple[Expr, ...]:
    """``outputs`` with every splittable n-ary einsum replaced by its contraction tree."""
    if not any(isinstance(n, Einsum) and _eligible(n) for n in toposort(outputs, references=False)):
        return tuple(outputs)

    def split(node: Expr, rebuilt: Expr) -> Expr:
        if isinstance(rebuilt, Einsum):
            tree = contraction_tree(rebuilt)
            if tree is not None:
                return tree.node
        return rebuilt

    return rebuild(outputs, split)
