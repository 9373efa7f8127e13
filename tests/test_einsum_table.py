"""A table of einsum cases: every operand's gradient against three independent oracles.

For each ``(spec, shapes)`` case and each operand ``k`` the loss is
``L = sum(G * einsum(spec, *operands))`` for a fixed random cotangent ``G``, and
einsgrad's gradient (``eg.grad`` through the IR with and without declared shapes, and
``eg.backward(spec, k).apply``) is compared with:

(a) the exact basis-tensor reference. einsum is linear in each operand, so
    ``dL/dX_k[idx] = sum(G * np.einsum(spec, ..., e_idx, ...))`` with ``e_idx`` the basis
    tensor that is 1 at ``idx``. It only runs numpy's forward einsum, never a derivative
    rule, so it cannot share a mistake with einsgrad's label-permutation rule;
(b) central finite differences of ``L``, also built from numpy's forward einsum only, which
    checks the reference itself (a wrong reference would disagree with (b));
(c) HIPS autograd's hand-written einsum VJP, a third implementation of the backward rule.
    autograd cannot do two categories of operands, decided by the static predicate
    :func:`autograd_unsupported` (never by catching its errors): a label repeated within
    the operand (it builds an einsum with a repeated output label, which numpy rejects),
    and an explicit label of size > 1 whose every other occurrence is a size-1 axis and
    that the output lacks (its VJP contraction then gets the size-1 axis, and
    ``unbroadcast`` only ever sums axes away, so the gradient has the wrong shape).
    :func:`test_autograd_fails_exactly_where_excluded` proves that autograd really fails
    on each excluded (case, operand), so the exclusion fails loudly if autograd improves.

The file also checks hand-derived ``BackwardRule`` metadata (``spec``, ``broadcast``,
``diagonal``, ``index_form``), float32 in/float32 out, one variable used twice, and the
numpy backend's writable-diagonal ``expand`` against the generic Kronecker-delta path.

The oracles, the static predicate and the tests' own einsum parser live in
``tests/oracles.py``, shared with ``tests/test_properties.py``.
"""

from __future__ import annotations

import itertools
import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache
from typing import Any

import numpy as np
import pytest
from oracles import (
    Shape,
    assert_autograd_fails,
    assert_close,
    autograd_grad,
    autograd_shared_grad,
    autograd_unsupported,
    finite_difference_grad,
    random_einsum_inputs,
    reference_grad,
    shared_reference,
)

import einsgrad as eg
from einsgrad.backends.base import Backend
from einsgrad.backends.numpy import NumpyBackend
from einsgrad.core.spec import parse_spec, resolve

# --- the table ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Case:
    spec: str
    shapes: tuple[Shape, ...]
    name: str

    @property
    def seed(self) -> int:
        return zlib.crc32(f"{self.name}|{self.spec}|{self.shapes}".encode())


def _chain(n: int) -> str:
    labels = "abcdefghijklmnopqrstuvwxyz"
    terms = [labels[i : i + 2] for i in range(n)]
    return ",".join(terms) + f"->a{labels[n]}"


def _chain_shapes(n: int) -> tuple[Shape, ...]:
    size = [2 + (i % 2) for i in range(n + 1)]  # 2, 3, 2, 3, ...: transposes show
    return tuple((size[i], size[i + 1]) for i in range(n))


def row(spec: str, *shapes: Shape, name: str | None = None) -> Case:
    return Case(spec, tuple(tuple(s) for s in shapes), name or spec)


CASES: list[Case] = [
    # matrix products
    row("ij,jk->ik", (2, 3), (3, 4), name="matmul"),
    row("ij,jk", (2, 3), (3, 4), name="matmul implicit"),
    row("bij,bjk->bik", (2, 3, 4), (2, 4, 5), name="batched matmul"),
    row("ij,j->i", (2, 3), (3,), name="matvec"),
    row("i,ij->j", (2,), (2, 3), name="vecmat"),
    row("ij,kj->ik", (2, 3), (4, 3), name="matmul transposed B"),
    row("ji,jk->ik", (3, 2), (3, 4), name="matmul transposed A"),
    row("ij,ji->", (2, 3), (3, 2), name="trace of product"),
    row("bhqd,bhkd->bhqk", (2, 1, 3, 4), (2, 1, 2, 4), name="attention scores"),
    row("bhqk,bhkd->bhqd", (2, 3, 4, 2), (2, 3, 2, 5), name="attention values"),
    row("ijk,ikl->ijl", (2, 3, 4), (2, 4, 1), name="batched matmul size-1 l"),
    row("ijk,jkl,lm->im", (2, 3, 4), (3, 4, 2), (2, 3), name="three-way contraction"),
    # transposes and permutations
    row("ij->ji", (2, 3), name="transpose"),
    row("ijk->kij", (2, 3, 4), name="permute"),
    row("ji", (2, 3), name="implicit transpose"),
    row("ba", (2, 3), name="implicit transpose ba"),
    row("ij", (2, 3), name="implicit identity"),
    row("i->i", (3,), name="identity"),
    # sums and labels only in one operand
    row("ij->", (2, 3), name="full sum"),
    row("i->", (3,), name="vector sum"),
    row("ij->i", (2, 3), name="row sum"),
    row("ij->j", (2, 3), name="column sum"),
    row("ijk->j", (2, 3, 4), name="sum two axes"),
    row("ijk->ki", (2, 3, 4), name="sum and transpose"),
    row("ij,k->ik", (2, 3), (4,), name="label only in first"),
    row("i,jk->ij", (2,), (3, 4), name="label only in second"),
    # repeated labels
    row("ii->", (3, 3), name="trace"),
    row("ii", (3, 3), name="implicit trace"),
    row("ii->i", (3, 3), name="diagonal"),
    row("bii->bi", (2, 3, 3), name="batched diagonal"),
    row("iij,j->i", (3, 3, 2), (2,), name="diagonal contracted"),
    row("iii->i", (3, 3, 3), name="triple diagonal"),
    row("iii->", (2, 2, 2), name="triple trace"),
    row("ijij->ij", (2, 3, 2, 3), name="paired diagonal"),
    row("ii,i->i", (3, 3), (3,), name="diagonal times vector"),
    row("iij->", (2, 2, 3), name="trace and sum"),
    row("iji->j", (2, 3, 2), name="non-adjacent trace"),
    row("jii->ij", (3, 2, 2), name="diagonal transposed"),
    row("ii,jj->ij", (2, 2), (3, 3), name="outer of diagonals"),
    row("ii,ij,jj->", (2, 2), (2, 3), (3, 3), name="diagonal sandwich"),
    row("ii->i", (1, 1), name="size-1 diagonal"),
    row("ii,i->", (2, 2), (1,), name="trace with size-1 partner"),
    row("iij,ij->j", (2, 2, 3), (1, 3), name="diagonal with size-1 partner"),
    row("ii,i->i", (2, 2), (1,), name="diagonal kept with size-1 partner"),
    # implicit output
    row("ij,ij", (2, 3), (2, 3), name="implicit frobenius"),
    row("ij,jk,kl", (2, 3), (3, 4), (4, 2), name="implicit chain"),
    row("i,j", (2,), (3,), name="implicit outer"),
    # scalars
    row(",ij->ij", (), (2, 3), name="scalar times matrix"),
    row("i,i->", (3,), (3,), name="dot"),
    row(",->", (), (), name="scalar product"),
    row("->", (), name="0-d identity"),
    row("i,->i", (3,), (), name="vector times scalar"),
    row(",i,->i", (), (3,), (), name="two scalars"),
    row("...,->...", (2, 3), (), name="ellipsis times scalar"),
    row("...->...", (), name="ellipsis on 0-d"),
    # outer products, Hadamard, bilinear
    row("i,j->ij", (2,), (3,), name="outer"),
    row("i,j,k->ijk", (2,), (3,), (4,), name="triple outer"),
    row("ij,kl->ijkl", (2, 3), (4, 2), name="matrix outer"),
    row("ij,ij->ij", (2, 3), (2, 3), name="hadamard"),
    row("ij,ij,ij->ij", (2, 3), (2, 3), (2, 3), name="triple hadamard"),
    row("i,i,i,i->i", (3,), (3,), (3,), (3,), name="four-way hadamard"),
    row("i,ij,j->", (2,), (2, 3), (3,), name="bilinear"),
    # chains of many operands
    row("ab,bc,cd->ad", (2, 3), (3, 4), (4, 2), name="chain 3"),
    row(_chain(5), *_chain_shapes(5), name="chain 5"),
    row(_chain(11), *_chain_shapes(11), name="chain 11"),
    row("ab,bc,cd,de,ef,fg,gh,hi,ij,jk->ak", *_chain_shapes(10), name="chain 10 literal"),
    row("ij,jk,kl->", (2, 3), (3, 4), (4, 2), name="chain to scalar"),
    row("a,b,c,d,e,f,g,h,i,j,k->", *[(2,)] * 11, name="11-way outer sum"),
    row(",".join("a" * 12) + "->a", *[(3,)] * 12, name="12-way hadamard"),
    # '...' and numpy broadcasting
    row("...ij,...jk->...ik", (2, 1, 3, 4), (5, 4, 2), name="ellipsis matmul broadcast"),
    row("...i,...i->...i", (1, 3), (2, 3), name="ellipsis size-1"),
    row("...,...->...", (2, 3), (3,), name="ellipsis rank broadcast"),
    row("...,...->...", (2, 1), (1, 3), name="ellipsis both size-1"),
    row("...ij->...", (2, 3, 4), name="ellipsis sum"),
    row("...ij->...ji", (2, 3, 4), name="ellipsis transpose"),
    row("i...->...i", (2, 3, 4), name="ellipsis moved"),
    row("...ii->...i", (2, 3, 3), name="ellipsis diagonal"),
    row("...ii->...", (2, 3, 3), name="ellipsis trace"),
    row("a...b,b...->...", (2, 3, 4), (4, 3), name="ellipsis in the middle"),
    row("...i,i->...", (2, 1, 3), (3,), name="ellipsis matvec size-1"),
    row("...ij,j->...i", (2, 3, 4), (4,), name="ellipsis matvec"),
    row("...,ij->...ij", (2,), (3, 4), name="ellipsis outer"),
    row("...ij,...jk", (3, 2, 4), (1, 4, 2), name="ellipsis implicit"),
    row("...,...", (2, 3), (3,), name="ellipsis implicit hadamard"),
    row("...", (2, 3), name="ellipsis implicit single"),
    row("...ij->", (2, 3), name="empty ellipsis"),
    row("...ij->...", (2, 3), name="empty ellipsis kept"),
    row("...ii,...i->...i", (2, 1, 3, 3), (1, 4, 3), name="ellipsis diagonal broadcast"),
    # explicit labels broadcast with size 1
    row("ij,ij->ij", (1, 3), (2, 3), name="hadamard size-1 row"),
    row("ij,ij->ij", (1, 3), (2, 1), name="hadamard both size-1"),
    row("ij,ij->ij", (1, 1), (2, 3), name="hadamard size-1 both axes"),
    row("i,i->i", (1,), (3,), name="vector size-1"),
    row("ij,j->i", (2, 1), (3,), name="contracted size-1"),
    row("ij,kj->ik", (2, 3), (4, 1), name="contracted size-1 second"),
    row("ij,jk->ik", (2, 1), (3, 4), name="matmul size-1 inner"),
    row("ij,jk->ik", (2, 1), (1, 4), name="matmul inner 1"),
    row("ij,ik->jk", (1, 3), (2, 4), name="contracted size-1 first"),
    row("ij,ij->", (1, 3), (2, 3), name="frobenius size-1"),
]

CASE_IDS = [case.name for case in CASES]


@dataclass
class Oracle:
    """Operands, cotangent and the oracle gradients of one case."""

    operands: list[np.ndarray]
    cotangent: np.ndarray
    reference: list[np.ndarray]
    unsupported: list[str | None]


@cache
def oracle(case: Case) -> Oracle:
    operands, cotangent = random_einsum_inputs(case.spec, case.shapes, case.seed)
    count = len(operands)
    return Oracle(
        operands=operands,
        cotangent=cotangent,
        reference=[reference_grad(case.spec, operands, cotangent, k) for k in range(count)],
        unsupported=[autograd_unsupported(case.spec, case.shapes, k) for k in range(count)],
    )


def _var_names(count: int) -> list[str]:
    return [f"X{k}" for k in range(count)]


def einsgrad_grads(case: Case, *, with_shapes: bool) -> tuple[np.ndarray, ...]:
    """Every operand's gradient of sum(G * einsum) from eg.grad, evaluated."""
    o = oracle(case)
    names = _var_names(len(case.shapes))
    variables = [
        eg.var(name, shape if with_shapes else None)
        for name, shape in zip(names, case.shapes, strict=True)
    ]
    g = eg.var("G", o.cotangent.shape if with_shapes else None)
    loss_expr = eg.sum(eg.einsum(case.spec, *variables) * g)
    grads = eg.grad(loss_expr, variables)
    arrays = dict(zip(names, o.operands, strict=True))
    return eg.evaluate(list(grads), G=o.cotangent, **arrays)


# --- the oracles agree with each other ----------------------------------------------------


def test_table_is_large_enough() -> None:
    assert len(CASES) >= 70
    assert len(set(CASE_IDS)) == len(CASE_IDS)


@pytest.mark.parametrize("case", CASES, ids=CASE_IDS)
def test_reference_agrees_with_finite_differences(case: Case) -> None:
    o = oracle(case)
    for k in range(len(case.shapes)):
        fd = finite_difference_grad(case.spec, o.operands, o.cotangent, k)
        assert_close(o.reference[k], fd, f"reference vs FD, operand {k}", rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("case", CASES, ids=CASE_IDS)
def test_autograd_agrees_with_reference(case: Case) -> None:
    o = oracle(case)
    for k in range(len(case.shapes)):
        if o.unsupported[k] is None:
            ag = autograd_grad(case.spec, o.operands, o.cotangent, k)
            assert_close(ag, o.reference[k], f"autograd vs reference, operand {k}")


UNSUPPORTED = [
    pytest.param(case, k, id=f"{case.name}-{k}")
    for case in CASES
    for k in range(len(case.shapes))
    if autograd_unsupported(case.spec, case.shapes, k) is not None
]


def test_both_exclusion_categories_occur() -> None:
    reasons = {
        autograd_unsupported(c.spec, c.shapes, k) for c, k in (p.values for p in UNSUPPORTED)
    }
    assert reasons == {"repeated label", "size-1 broadcast"}


@pytest.mark.parametrize(("case", "k"), UNSUPPORTED)
def test_autograd_fails_exactly_where_excluded(case: Case, k: int) -> None:
    o = oracle(case)
    reason = o.unsupported[k]
    assert reason is not None
    assert_autograd_fails(case.spec, o.operands, o.cotangent, k, reason, o.reference[k])


# --- einsgrad against the oracles ---------------------------------------------------------


def check_against_oracles(case: Case, grads: Sequence[Any], how: str) -> None:
    o = oracle(case)
    assert len(grads) == len(case.shapes)
    for k, got in enumerate(grads):
        assert_close(got, o.reference[k], f"{how} vs reference, operand {k}")
        if o.unsupported[k] is None:
            ag = autograd_grad(case.spec, o.operands, o.cotangent, k)
            assert_close(got, ag, f"{how} vs autograd, operand {k}")


@pytest.mark.parametrize("case", CASES, ids=CASE_IDS)
def test_grad_with_shapes(case: Case) -> None:
    grads = einsgrad_grads(case, with_shapes=True)
    check_against_oracles(case, grads, "eg.grad (shapes given)")
    o = oracle(case)
    for k, got in enumerate(grads):
        fd = finite_difference_grad(case.spec, o.operands, o.cotangent, k)
        assert_close(got, fd, f"eg.grad vs FD, operand {k}", rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("case", CASES, ids=CASE_IDS)
def test_grad_without_shapes(case: Case) -> None:
    grads = einsgrad_grads(case, with_shapes=False)
    check_against_oracles(case, grads, "eg.grad (shape=None)")


@pytest.mark.parametrize("case", CASES, ids=CASE_IDS)
def test_backward_apply(case: Case) -> None:
    o = oracle(case)
    grads = [
        eg.backward(case.spec, k).apply(o.operands, o.cotangent) for k in range(len(case.shapes))
    ]
    check_against_oracles(case, grads, "backward().apply")


@pytest.mark.parametrize("case", CASES, ids=CASE_IDS)
def test_backward_spec_is_a_numpy_einsum(case: Case) -> None:
    """``.spec`` runs in numpy; where nothing is broadcast or diagonal it is the gradient."""
    o = oracle(case)
    for k in range(len(case.shapes)):
        rule = eg.backward(case.spec, k)
        others = [*o.operands[:k], *o.operands[k + 1 :], o.cotangent]
        try:
            contracted = np.einsum(rule.spec, *others)
        except ValueError as error:
            shapes = [a.shape for a in others]
            pytest.fail(
                f"backward({case.spec!r}, {k}).spec = {rule.spec!r} is not a valid numpy "
                f"einsum for the operand shapes {shapes}: {error}"
            )
        if not rule.broadcast and not rule.diagonal and contracted.shape == case.shapes[k]:
            assert_close(contracted, o.reference[k], f"np.einsum({rule.spec!r}), operand {k}")


# --- rule metadata, dtypes ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("spec", "wrt", "expected"),
    [
        ("bi,ij->bj", 1, "bi,bj->ij"),
        ("bi,ij->bj", 0, "ij,bj->bi"),
        ("bi,ij->bj", -1, "bi,bj->ij"),
        ("ij,jk", 0, "jk,ik->ij"),
        ("ij->ji", 0, "ji->ij"),
        ("ij->i", 0, "i->i"),
        ("bii->bi", 0, "bi->bi"),
        ("ii->", 0, "->"),
        ("i,ij,j->", 1, "i,j,->ij"),
        ("i,ij,j->", 0, "ij,j,->i"),
        ("...ij,...jk->...ik", 0, "...jk,...ik->...ij"),
        ("ab,bc,cd->ad", 1, "ab,cd,ad->bc"),
    ],
)
def test_backward_spec_strings(spec: str, wrt: int, expected: str) -> None:
    assert eg.backward(spec, wrt).spec == expected


def test_backward_broadcast_and_diagonal() -> None:
    rule = eg.backward("ij->i", 0)
    assert rule.broadcast == ("j",)
    assert rule.diagonal == ()
    rule = eg.backward("bii->bi", 0)
    assert rule.diagonal == ("i",)
    assert rule.broadcast == ()
    assert rule.full == "bi->bii"
    rule = eg.backward("ii->", 0)
    assert rule.diagonal == ("i",)
    assert rule.broadcast == ("i",)
    assert rule.full == "->ii"
    rule = eg.backward("ijk->j", 0)
    assert rule.broadcast == ("i", "k")
    rule = eg.backward("bi,ij->bj", 1)
    assert (rule.broadcast, rule.diagonal, rule.wrt) == ((), (), 1)


def test_index_form() -> None:
    layer = ["X", "W"]
    assert eg.backward("bi,ij->bj", 1, names=layer).index_form() == "dW[i,j] = Σ_b X[b,i] · dY[b,j]"
    assert eg.backward("bi,ij->bj", 0, names=layer).index_form() == "dX[b,i] = Σ_j W[i,j] · dY[b,j]"
    assert eg.backward("ii->", 0).index_form() == "dA[i,i′] = δ[i,i′] · dY"


def test_float32_in_float32_out() -> None:
    rng = np.random.default_rng(32)
    x = rng.standard_normal((2, 3)).astype(np.float32)
    w = rng.standard_normal((3, 4)).astype(np.float32)
    g = rng.standard_normal((2, 4)).astype(np.float32)
    for k in (0, 1):
        got = eg.backward("bi,ij->bj", k).apply([x, w], g)
        assert got.dtype == np.float32, k
    for spec, shapes in [("bi,ij->bj", None), ("bi,ij->bj", ((2, 3), (3, 4)))]:
        xv = eg.var("X", None if shapes is None else shapes[0])
        wv = eg.var("W", None if shapes is None else shapes[1])
        gv = eg.var("G", None if shapes is None else (2, 4))
        dx, dw = eg.grad(eg.sum(eg.einsum(spec, xv, wv) * gv), [xv, wv])
        got_x, got_w = eg.evaluate([dx, dw], X=x, W=w, G=g)
        assert got_x.dtype == np.float32
        assert got_w.dtype == np.float32
        np.testing.assert_allclose(got_w, x.T.astype(np.float64) @ g, rtol=1e-5)
    # A diagonal embedding keeps float32 as well.
    a = rng.standard_normal((3, 3)).astype(np.float32)
    assert eg.backward("ii->i", 0).apply([a], g[0, :3]).dtype == np.float32


# --- one variable used twice --------------------------------------------------------------


@dataclass(frozen=True)
class SharedCase:
    spec: str
    shapes: tuple[Shape, ...]  # one shape per distinct variable
    uses: tuple[int, ...]  # uses[k]: which variable operand k is


SHARED = [
    SharedCase("i,ij,j->", ((3,), (3, 3)), (0, 1, 0)),
    SharedCase("ij,jk->ik", ((3, 3),), (0, 0)),
    SharedCase("ij,jk,kl->il", ((3, 3),), (0, 0, 0)),
    SharedCase("ij,ij->", ((2, 3),), (0, 0)),
    SharedCase("ij,kj->ik", ((2, 3),), (0, 0)),
    SharedCase("ii,ij->j", ((3, 3),), (0, 0)),
    SharedCase("i,i->i", ((3,),), (0, 0)),
    SharedCase("...i,...i->...", ((2, 3),), (0, 0)),
    SharedCase("ab,bc,cd->ad", ((2, 3), (3, 2)), (0, 1, 0)),
]


@pytest.mark.parametrize("case", SHARED, ids=[f"{c.spec} {c.uses}" for c in SHARED])
def test_same_variable_twice(case: SharedCase) -> None:
    seed = zlib.crc32(case.spec.encode())
    values, cotangent = random_einsum_inputs(case.spec, case.shapes, seed, case.uses)
    operands = [values[v] for v in case.uses]
    expected = shared_reference(case.spec, values, case.uses, cotangent)
    names = [f"V{v}" for v in range(len(values))]
    for with_shapes in (True, False):
        variables = [
            eg.var(n, s if with_shapes else None) for n, s in zip(names, case.shapes, strict=True)
        ]
        g = eg.var("G", cotangent.shape if with_shapes else None)
        loss_expr = eg.sum(eg.einsum(case.spec, *[variables[v] for v in case.uses]) * g)
        grads = eg.evaluate(
            list(eg.grad(loss_expr, variables)),
            G=cotangent,
            **dict(zip(names, values, strict=True)),
        )
        for v, got in enumerate(grads):
            assert_close(got, expected[v], f"variable {v} (shapes given: {with_shapes})")

    shapes = [a.shape for a in operands]
    for v in range(len(values)):
        uses = [k for k, u in enumerate(case.uses) if u == v]
        reasons = {autograd_unsupported(case.spec, shapes, k) for k in uses} - {None}
        if not reasons:
            got = autograd_shared_grad(case.spec, values, case.uses, cotangent, v)
            assert_close(got, expected[v], f"autograd, variable {v}")
        else:  # autograd cannot do one of the uses (see autograd_unsupported)
            assert reasons == {"repeated label"}
            with pytest.raises(ValueError, match="output subscript"):
                autograd_shared_grad(case.spec, values, case.uses, cotangent, v)


def test_bilinear_form_with_x_twice() -> None:
    rng = np.random.default_rng(7)
    a = rng.standard_normal((3, 3))
    x = rng.standard_normal(3)
    xv, av = eg.var("x", (3,)), eg.var("A", (3, 3))
    dx, da = eg.grad(eg.einsum("i,ij,j->", xv, av, xv), [xv, av])
    got_x, got_a = eg.evaluate([dx, da], x=x, A=a)
    assert_close(got_x, a @ x + a.T @ x, "d(xᵀAx)/dx")
    assert_close(got_a, np.outer(x, x), "d(xᵀAx)/dA")
    dx_only = eg.grad(eg.einsum("i,ij,j->", eg.var("x"), eg.var("A"), eg.var("x")), "x")
    assert_close(dx_only(x=x, A=a), a @ x + a.T @ x, "d(xᵀAx)/dx, shapes not given")


# --- diagonal embedding: numpy view vs generic Kronecker deltas -----------------------------


def _letters(labels: Sequence[int]) -> str:
    return "".join(chr(ord("a") + label) for label in labels)


def expand_by_loops(
    core: np.ndarray, core_labels: Sequence[int], output: Sequence[int], sizes: Sequence[int]
) -> np.ndarray:
    """The embedding written out: each output entry is core's entry if repeats agree, else 0."""
    result = np.zeros(tuple(sizes[label] for label in output))
    for idx in itertools.product(*(range(sizes[label]) for label in output)):
        value: dict[int, int] = {}
        if all(value.setdefault(label, i) == i for label, i in zip(output, idx, strict=True)):
            result[idx] = core[tuple(value[label] for label in core_labels)]
    return result


EXPAND_CASES = [
    ("ii->", [(3, 3)], 0),
    ("ii->i", [(3, 3)], 0),
    ("iii->i", [(2, 2, 2)], 0),
    ("bii->bi", [(2, 3, 3)], 0),
    ("iij,j->i", [(3, 3, 2), (2,)], 0),
    ("ijij->ij", [(2, 3, 2, 3)], 0),
    ("jii->ij", [(3, 2, 2)], 0),
    ("ii,j->j", [(3, 3), (2,)], 0),
    ("...ii->...i", [(2, 3, 3)], 0),
    ("ii,ij,jj->", [(2, 2), (2, 3), (3, 3)], 2),
]


@pytest.mark.parametrize(("spec", "shapes", "wrt"), EXPAND_CASES)
def test_numpy_expand_matches_generic_expand(spec: str, shapes: list[Shape], wrt: int) -> None:
    operands, cotangent = random_einsum_inputs(spec, shapes, zlib.crc32(spec.encode()))
    full = parse_spec(eg.backward(spec, wrt).full, generalized=True)
    inputs = [*operands[:wrt], *operands[wrt + 1 :], cotangent]
    resolved = resolve(full, [a.shape for a in inputs], shapes[wrt])
    assert len(set(resolved.output)) < len(resolved.output), "not a diagonal case"
    terms = ",".join(_letters(term) for term in resolved.inputs)
    core = np.einsum(f"{terms}->{_letters(resolved.core)}", *inputs)
    args = (core, resolved.core, resolved.output, resolved.sizes, np.float64)
    fast = NumpyBackend().expand(*args)
    generic = Backend.expand(NumpyBackend(), *args)
    loops = expand_by_loops(core, resolved.core, resolved.output, resolved.sizes)
    assert_close(fast, loops, "NumpyBackend.expand", rtol=0, atol=0)
    assert_close(generic, loops, "Backend.expand (Kronecker deltas)", rtol=1e-15, atol=1e-15)
    assert fast.flags.writeable
    ref = reference_grad(spec, operands, cotangent, wrt)
    assert_close(fast, ref, "expanded gradient vs reference")
