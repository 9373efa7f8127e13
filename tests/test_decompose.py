"""Contraction trees: n-ary einsums split along opt_einsum's path, and gradients through them.

The values are checked against numpy's own einsum, the gradients against the exact
basis-tensor reference of tests/oracles.py, and the work saved is checked with opt_einsum's
FLOP counts: forward plus every operand's gradient must cost about three forwards.
"""

from __future__ import annotations

import numpy as np
import pytest
from oracles import random_einsum_inputs, reference_grad

import einsgrad as eg
from einsgrad.backends.base import plan_info
from einsgrad.core.ir import Einsum, toposort
from einsgrad.rules.contraction_tree import contraction_tree, split_einsums
from einsgrad.rules.einsum import resolved as einsum_resolved

CASES = [
    ("ab,bc,cd,de->ae", [(2, 3), (3, 4), (4, 5), (5, 6)]),
    ("a,ac,cb,c->ab", [(2,), (2, 7), (7, 7), (7,)]),  # the output needs a final transpose
    ("ij,jk,ki->", [(3, 4), (4, 5), (5, 3)]),
    ("bi,bj,bk,ijk->b", [(2, 3), (2, 4), (2, 5), (3, 4, 5)]),
    ("ii,ij,jk->ik", [(3, 3), (3, 4), (4, 2)]),  # a diagonal inside
    ("...ij,...jk,...kl->...il", [(2, 1, 3, 4), (5, 4, 2), (2, 3)]),  # broadcasting
    ("ab,bc,cd->ad", [(1, 3), (3, 4), (4, 1)]),
    (",ab,bc,cd->ad", [(), (2, 3), (3, 4), (4, 2)]),  # a scalar factor
]


@pytest.mark.parametrize(("spec", "shapes"), CASES, ids=[c[0] for c in CASES])
def test_the_tree_computes_the_einsum(spec: str, shapes: list[tuple[int, ...]]) -> None:
    operands, _ = random_einsum_inputs(spec, shapes, seed=3)
    names = [f"T{k}" for k in range(len(shapes))]
    expr = eg.einsum(spec, *(eg.var(n, s) for n, s in zip(names, shapes, strict=True)))
    assert isinstance(expr, Einsum)
    tree = contraction_tree(expr)
    assert tree is not None and tree.node.shape == expr.shape
    arrays = dict(zip(names, operands, strict=True))
    np.testing.assert_allclose(tree.node(**arrays), np.einsum(spec, *operands), rtol=1e-12)
    (split,) = split_einsums([expr])
    assert all(
        len([op for op in node.operands if op.shape != ()]) <= 2
        for node in toposort([split])
        if isinstance(node, Einsum)
    )


@pytest.mark.parametrize(("spec", "shapes"), CASES, ids=[c[0] for c in CASES])
def test_gradients_through_the_tree_are_exact(spec: str, shapes: list[tuple[int, ...]]) -> None:
    operands, cotangent = random_einsum_inputs(spec, shapes, seed=4)
    names = [f"T{k}" for k in range(len(shapes))]
    variables = [eg.var(n, s) for n, s in zip(names, shapes, strict=True)]
    loss = eg.sum(eg.einsum(spec, *variables) * cotangent)
    gradients = eg.evaluate(list(eg.grad(loss, variables)), dict(zip(names, operands, strict=True)))
    for k, gradient in enumerate(gradients):
        expected = reference_grad(spec, operands, cotangent, k)
        np.testing.assert_allclose(gradient, expected, rtol=1e-10, atol=1e-12)


def _flops(outputs: list[eg.Expr]) -> int:
    total = 0
    for node in toposort(list(split_einsums(outputs))):
        if isinstance(node, Einsum):
            metas = [type("M", (), {"shape": op.shape})() for op in node.operands]
            resolved = einsum_resolved(node, metas, [])
            arrays = tuple(k for k, op in enumerate(node.operands) if op.shape != ())
            total += plan_info(resolved, tuple(node.operands[k].shape for k in arrays), arrays)[0]
    return total


def test_all_operand_gradients_cost_about_three_forwards() -> None:
    n = 64
    A, B, C, D = (eg.var(name, (n, n)) for name in "ABCD")
    Y = eg.einsum("ab,bc,cd,de->ae", A, B, C, D)
    gradients = eg.grad(eg.sum(Y * eg.var("G", (n, n))), [A, B, C, D])
    forward = _flops([Y])
    together = _flops([Y, *gradients])
    # Each pairwise step's backward is two pairwise contractions of the same size.
    assert together <= 3.05 * forward, (together, forward)
    # Without the tree, each gradient would be its own 4-operand contraction from scratch.
    assert together < forward + 4 * forward
