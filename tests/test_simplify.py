"""``einsgrad.simplify``: value preservation, idempotence and the canonical form.

A hypothesis property builds random small expression trees with static shapes from
einsums (several operands, summed labels, repeated labels, transpositions, scalar
operands, Kronecker deltas, one subexpression used by two operands), ``+``, ``*``, ``−``,
``exp``, ``tanh``, numpy broadcasting, the constants 0, ±1 and 2, and raw (unsimplified)
gradients, and checks that simplification keeps the value (numpy evaluation before and
after) and the shape, and is idempotent.

Hand-written cases check the rewrites the module documents: expressions that differ only
by label names, operand order, transposition bookkeeping or where a Kronecker delta sits
become the same node (``is``: nodes are hash-consed); nested contractions fuse into one
einsum; a shared contraction is not duplicated; constants fold; terms are collected.
Every rewrite is also checked numerically against plain numpy.
"""

from __future__ import annotations

import sys
from collections.abc import Mapping
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, assume, given, note, settings
from hypothesis import strategies as st
from hypothesis.strategies import DrawFn, composite
from oracles import assert_close

import einsgrad as eg
from einsgrad.core.ir import toposort

REPRODUCIBLE = settings(
    derandomize=True,
    database=None,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
LETTERS = "abcdefghijklmnopqrstuvwxyz"
SIZES = (2, 3)


def bind(expr: eg.Expr, values: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    """The arrays of ``expr``'s own variables (simplification may drop some)."""
    return {v.name: values[v.name] for v in expr.variables}


def negate(expr: eg.Expr) -> eg.Expr:
    """``-expr`` (a helper, so that ``-(-x)`` reads as two negations to linters too)."""
    return -expr


def values_for(*exprs: eg.Expr, seed: int = 0) -> dict[str, np.ndarray]:
    """A standard-normal array for every variable of ``exprs``, one generator per name."""
    result: dict[str, np.ndarray] = {}
    for expr in exprs:
        for v in expr.variables:
            if v.name not in result:
                assert v.shape is not None
                rng = np.random.default_rng([seed, *v.name.encode()])
                result[v.name] = rng.uniform(-1.0, 1.0, size=v.shape)
    return result


def assert_same_value(simplified: eg.Expr, original: eg.Expr, seed: int = 0) -> None:
    values = values_for(original, simplified, seed=seed)
    assert simplified.shape == original.shape
    want = np.asarray(original(**bind(original, values)))
    got = np.asarray(simplified(**bind(simplified, values)))
    assert_close(got, want, "simplified vs original", rtol=1e-10, atol=1e-12)


def delta(n: int) -> eg.Expr:
    """The n×n Kronecker delta as einsgrad derives it: the Jacobian of a vector by itself."""
    return eg.jacobian(eg.var(f"d{n}", (n,)), f"d{n}")


# --- random expression trees -------------------------------------------------------------------


@composite
def expressions(draw: DrawFn, shape: tuple[int, ...], depth: int) -> eg.Expr:
    """A random expression of ``shape`` with at most ``depth`` levels of operations."""
    kinds = ["var"]
    if depth > 0:  # operations only: leaves at the bottom, so trees are not all tiny
        kinds = ["einsum", "einsum", "shared", "unary", "binary", "broadcast", "constant"]
        kinds += ["gradient"]
    kind = draw(st.sampled_from(kinds))
    if kind == "var":
        prefix = draw(st.sampled_from("pq"))
        return eg.var(f"{prefix}_{'_'.join(map(str, shape))}", shape)
    if kind == "gradient":
        # A raw reverse-mode result: generalized einsums, broadcast ones, unbroadcasts.
        child = draw(expressions(shape, depth - 1))
        candidates = [v for v in child.variables if v.shape == shape]
        if not candidates:
            return child
        target = draw(st.sampled_from(candidates))
        weight = eg.var(f"w_{'_'.join(map(str, shape))}", shape)
        return eg.grad(eg.sum(eg.tanh(child) * weight), target)
    if kind == "unary":
        op = draw(st.sampled_from(["exp", "tanh", "negative"]))
        child = draw(expressions(shape, depth - 1))
        return {"exp": eg.exp, "tanh": eg.tanh, "negative": negate}[op](child)
    if kind == "binary":
        left = draw(expressions(shape, depth - 1))
        right = draw(expressions(shape, depth - 1))
        op = draw(st.sampled_from(["+", "*", "-"]))
        return left + right if op == "+" else left * right if op == "*" else left - right
    if kind == "broadcast":
        full = draw(expressions(shape, depth - 1))
        cut = draw(st.integers(0, len(shape)))
        part = draw(expressions(shape[cut:], depth - 1))
        op = draw(st.sampled_from(["+", "*", "-"]))
        a, b = (full, part) if draw(st.booleans()) else (part, full)
        return a + b if op == "+" else a * b if op == "*" else a - b
    if kind == "constant":
        child = draw(expressions(shape, depth - 1))
        number = draw(st.sampled_from([0.0, 1.0, 2.0, -1.0]))
        form = draw(st.sampled_from(["c*x", "x*c", "c+x", "x+c", "x-c", "-(-x)"]))
        return {
            "c*x": lambda: number * child,
            "x*c": lambda: child * number,
            "c+x": lambda: number + child,
            "x+c": lambda: child + number,
            "x-c": lambda: child - number,
            "-(-x)": lambda: negate(negate(child)),
        }[form]()
    return draw(_einsums(shape, depth, shared=kind == "shared"))


@composite
def _einsums(draw: DrawFn, shape: tuple[int, ...], depth: int, shared: bool) -> eg.Expr:
    """An einsum with output ``shape``: 1-3 operands, summed and repeated labels."""
    letters = list(draw(st.permutations(LETTERS[:8])))
    out = letters[: len(shape)]
    n_summed = draw(st.integers(0, 2))
    summed = letters[len(shape) : len(shape) + n_summed]
    size = dict(zip(out, shape, strict=True))
    size.update({label: draw(st.sampled_from(SIZES)) for label in summed})
    every = out + summed
    if shared:
        # One subexpression used by both operands: einsum('T,T'->out', c, c).
        term = draw(st.permutations(every))
        child = draw(expressions(tuple(size[label] for label in term), depth - 1))
        other = list(term)
        swap = draw(st.permutations(range(len(term)))) if term else []
        candidate = [term[k] for k in swap]
        if all(size[a] == size[b] for a, b in zip(candidate, term, strict=True)):
            other = candidate
        spec = f"{''.join(term)},{''.join(other)}->{''.join(out)}"
        note(f"shared einsum {spec}")
        return eg.einsum(spec, child, child)
    n_operands = draw(st.integers(1, 3))
    terms: list[list[str]] = []
    for _ in range(n_operands):
        chosen = draw(st.lists(st.sampled_from(every), max_size=3, unique=True)) if every else []
        if chosen and draw(st.integers(0, 4)) == 0:
            chosen.insert(draw(st.integers(0, len(chosen))), chosen[0])  # a repeated label
        terms.append(chosen)
    missing = [label for label in out if not any(label in t for t in terms)]
    terms[draw(st.integers(0, n_operands - 1))].extend(missing)
    operands: list[Any] = []
    for term in terms:
        if not term and draw(st.booleans()):
            operands.append(draw(st.sampled_from([2.0, 0.5, 1.0])))  # a scalar operand
        elif len(term) == 2 and size[term[0]] == size[term[1]] and draw(st.integers(0, 3)) == 0:
            operands.append(delta(size[term[0]]))  # a Kronecker delta
        else:
            operands.append(draw(expressions(tuple(size[label] for label in term), depth - 1)))
    spec = ",".join("".join(t) for t in terms) + "->" + "".join(out)
    note(f"einsum {spec}")
    return eg.einsum(spec, *operands)


@composite
def trees(draw: DrawFn) -> eg.Expr:
    rank = draw(st.integers(0, 2))
    shape = tuple(draw(st.sampled_from(SIZES)) for _ in range(rank))
    return draw(expressions(shape, draw(st.integers(1, 3))))


@settings(REPRODUCIBLE, max_examples=250)
@given(trees(), st.integers(0, 3))
def test_simplify_preserves_values_and_is_idempotent(expr: eg.Expr, seed: int) -> None:
    note(repr(expr))
    values = values_for(expr, seed=seed)
    with np.errstate(over="ignore", invalid="ignore"):
        original = np.asarray(expr(**bind(expr, values)))
    assume(np.all(np.isfinite(original)) and np.max(np.abs(original), initial=0) < 1e6)
    simplified = eg.simplify(expr)
    note(f"simplified: {simplified!r}")
    assert simplified.shape == expr.shape
    got = np.asarray(simplified(**bind(simplified, values)))
    scale = max(1.0, float(np.max(np.abs(original), initial=0)))
    assert_close(got, original, "simplify(e) vs e", rtol=1e-10, atol=1e-12 * scale)
    assert eg.simplify(simplified) is simplified, "simplify is not idempotent"


# --- idempotence on fixed examples ------------------------------------------------------------


def _gradient_example() -> eg.Expr:
    X, W, b = eg.var("X", (4, 3)), eg.var("W", (3, 2)), eg.var("b", (2,))
    return eg.grad(eg.mean(eg.tanh(X @ W + b) ** 2), W)


@pytest.mark.parametrize(
    "build",
    [
        _gradient_example,
        lambda: eg.hessian(eg.sum(eg.exp(eg.var("x", (3,)))), "x"),
        lambda: eg.einsum("ij,jk->ik", eg.var("A", (2, 3)), eg.var("B", (3, 2))).T,
    ],
    ids=["gradient", "hessian", "transposed-matmul"],
)
def test_simplify_is_idempotent(build: Any) -> None:
    expr = build()
    once = eg.simplify(expr)
    assert eg.simplify(once) is once
    assert_same_value(once, expr)


# --- canonical form ------------------------------------------------------------------------------

A = eg.var("A", (2, 3))
B = eg.var("B", (3, 4))
C = eg.var("C", (4, 5))
M = eg.var("M", (3, 3))
N = eg.var("N", (3, 3))
x = eg.var("x", (3,))
u = eg.var("u", (3,))
v = eg.var("v", (3,))


def test_label_names_do_not_matter() -> None:
    first = eg.einsum("ij,jk->ik", A, B)
    second = eg.einsum("ab,bc->ac", A, B)
    assert first is not second
    assert eg.simplify(first) is eg.simplify(second)
    assert_same_value(eg.simplify(second), first)


def test_operand_order_does_not_matter() -> None:
    first = eg.einsum("ij,jk->ik", A, B)
    second = eg.einsum("jk,ij->ik", B, A)
    assert eg.simplify(first) is eg.simplify(second)
    three = eg.einsum("ij,jk,kl->il", A, B, C)
    shuffled = eg.einsum("kl,ij,jk->il", C, A, B)
    assert eg.simplify(three) is eg.simplify(shuffled)
    assert_same_value(eg.simplify(shuffled), three)


def test_commutative_maps_are_sorted() -> None:
    assert eg.simplify(x + u) is eg.simplify(u + x)
    assert eg.simplify(eg.tanh(x) * u) is eg.simplify(u * eg.tanh(x))


def test_double_transpose_is_the_identity() -> None:
    assert eg.simplify(eg.einsum("ji->ij", eg.einsum("ij->ji", A))) is A
    assert eg.simplify(A.T.T) is A


def test_transpose_of_a_product() -> None:
    """(AB)ᵀ and BᵀAᵀ are one node."""
    left = eg.simplify((A @ B).T)
    right = eg.simplify(B.T @ A.T)
    assert left is right
    assert isinstance(left, eg.Einsum) and sorted(map(id, left.operands)) == sorted([id(A), id(B)])
    values = values_for(A, B)
    np.testing.assert_allclose(left(**values), (values["A"] @ values["B"]).T, rtol=1e-12)


def _delta() -> eg.Expr:
    """The 3×3 Kronecker delta, as einsgrad derives it: the Jacobian of x by x."""
    result = eg.jacobian(x, x)
    assert result.shape == (3, 3) and result.variables == ()
    np.testing.assert_array_equal(result(), np.eye(3))
    return result


def test_delta_collapses_a_contraction_on_either_side() -> None:
    delta = _delta()
    assert eg.simplify(eg.einsum("ij,jk->ik", M, delta)) is M
    assert eg.simplify(eg.einsum("ij,jk->ik", delta, M)) is M
    assert eg.simplify(eg.einsum("ij,jk->ik", delta, delta)) is eg.simplify(delta)
    assert eg.simplify(eg.einsum("ij,jk,kl->il", M, delta, N)) is eg.simplify(M @ N)


def test_delta_placement_gives_the_same_node() -> None:
    delta = _delta()
    forms = [
        eg.einsum("i,jk->ijk", x, delta),
        eg.einsum("jk,i->ijk", delta, x),
        eg.einsum("ijk->ikj", eg.einsum("i,jk->ijk", x, delta)),  # δ is symmetric
        eg.einsum("ab,c->cba", delta, x),
    ]
    simplified = [eg.simplify(f) for f in forms]
    assert all(s is simplified[0] for s in simplified), simplified
    # The delta survives as a repeated output label over x alone, never as an array.
    result = simplified[0]
    assert isinstance(result, eg.Einsum) and result.operands == (x,)
    out = result.spec.output
    assert len(out) == 3 and out[1] == out[2] != out[0]
    value = result(x=values_for(x)["x"])
    np.testing.assert_array_equal(value, np.einsum("i,jk->ijk", values_for(x)["x"], np.eye(3)))


def test_nested_contractions_fuse_into_one_einsum() -> None:
    nested = eg.einsum("ij,jk->ik", eg.einsum("ab,bc->ac", A, B), C)
    fused = eg.simplify(nested)
    assert isinstance(fused, eg.Einsum)
    assert len(fused.operands) == 3
    assert {id(op) for op in fused.operands} == {id(A), id(B), id(C)}
    assert not any(isinstance(op, eg.Einsum) for op in fused.operands)
    assert fused is eg.simplify(eg.einsum("ij,jk,kl->il", A, B, C))
    assert_same_value(fused, nested)


def test_shared_contraction_is_not_duplicated() -> None:
    inner = eg.einsum("ij,jk->ik", A, B)  # sums over j: worth computing once
    outer = eg.einsum("ik,il->kl", inner, inner)
    simplified = eg.simplify(outer)
    assert isinstance(simplified, eg.Einsum)
    assert len(simplified.operands) == 2 and simplified.operands[0] is simplified.operands[1]
    assert isinstance(simplified.operands[0], eg.Einsum)
    assert simplified.operands[0].operands in ((A, B), (B, A))
    assert_same_value(simplified, outer)
    # Used by an elementwise op and by another contraction: still one node.
    D = eg.var("D", (4, 4))
    mixed = eg.tanh(inner) * eg.einsum("ik,kl->il", inner, D)
    result = eg.simplify(mixed)
    holders = [
        node
        for node in toposort([result])
        if isinstance(node, eg.Einsum) and any(op is A for op in node.operands)
    ]
    assert len(holders) == 1, result
    assert_same_value(result, mixed)


def test_constant_factors_fold() -> None:
    assert eg.simplify(2 * (3 * x)) is eg.simplify(6 * x)
    assert eg.simplify((x * 2) * 3) is eg.simplify(6 * x)
    assert eg.simplify(2 * (3 * eg.tanh(x))) is eg.simplify(6 * eg.tanh(x))
    assert_same_value(eg.simplify(2 * (3 * x)), 6 * x)


def test_constant_factors_fold_into_einsums() -> None:
    product = A @ B
    assert eg.simplify(2 * (3 * product)) is eg.simplify(6 * product)
    assert eg.simplify(6 * product) is eg.simplify(product * 6.0)
    folded = eg.simplify(2 * (3 * product))
    assert isinstance(folded, eg.Einsum)
    assert_same_value(folded, 6 * product)
    # Numbers multiplied together while building already fold.
    assert eg.simplify(eg.as_expr(2.0) * 3 * x) is eg.simplify(6 * x)


@pytest.mark.parametrize(
    "form",
    ["x*1", "1*x", "x+0", "0+x", "x-0", "-(-x)"],
)
def test_neutral_elements_go(form: str) -> None:
    for base in (x, eg.tanh(x), eg.einsum("ij,j->i", M, x)):
        expr = {
            "x*1": lambda b: b * 1,
            "1*x": lambda b: 1.0 * b,
            "x+0": lambda b: b + 0,
            "0+x": lambda b: 0.0 + b,
            "x-0": lambda b: b - 0.0,
            "-(-x)": lambda b: negate(negate(b)),
        }[form](base)
        assert eg.simplify(expr) is eg.simplify(base), f"{form} with {base!r}"
        assert_same_value(eg.simplify(expr), expr)


def test_negation_pairs_cancel_through_elementwise_ops() -> None:
    expr = negate(negate(eg.exp(x) + u))
    assert eg.simplify(expr) is eg.simplify(eg.exp(x) + u)


def test_collecting_terms() -> None:
    Au = eg.einsum("ij,j->i", A, u)
    Av = eg.einsum("ij,j->i", A, v)
    collected = eg.simplify(Au + Av)
    assert collected is eg.simplify(eg.einsum("ij,j->i", A, u + v))
    assert isinstance(collected, eg.Einsum) and len(collected.operands) == 2
    (summed,) = (op for op in collected.operands if op is not A)
    assert isinstance(summed, eg.Map) and summed.op.name == "add"
    assert {id(a) for a in summed.args} == {id(u), id(v)}
    assert_same_value(collected, Au + Av)
    # Label names and operand order do not hide the common factor.
    other = eg.einsum("ab,b->a", A, u) + eg.einsum("b,ab->a", v, A)
    assert eg.simplify(other) is collected


def test_collecting_terms_keeps_coefficients() -> None:
    Au = eg.einsum("ij,j->i", A, u)
    Av = eg.einsum("ij,j->i", A, v)
    for expr in (2 * Au + Av, Au - Av, Av - 3 * Au):
        simplified = eg.simplify(expr)
        assert isinstance(simplified, eg.Einsum) and any(op is A for op in simplified.operands)
        assert len(simplified.operands) == 2, simplified
        assert_same_value(simplified, expr)


def test_simplify_keeps_unknown_shapes_working() -> None:
    P, Q = eg.var("P"), eg.var("Q")
    expr = eg.einsum("ij,jk->ik", eg.einsum("ij,jk->ik", P, Q), Q) * 1 + 0
    simplified = eg.simplify(expr)
    values = {"P": np.arange(6.0).reshape(2, 3), "Q": np.linspace(-1, 1, 9).reshape(3, 3)}
    np.testing.assert_allclose(
        simplified(**values), values["P"] @ values["Q"] @ values["Q"], rtol=1e-12
    )
    assert eg.simplify(simplified) is simplified


def test_operands_with_one_index_string_fold_canonically() -> None:
    """``einsum('i,i,i->i', a, b, c)`` is the product ``a·b·c``, in one canonical form.

    (The random-tree property first found ``einsum(',,->', p, q, q)`` simplifying to
    ``p * q * q`` and then to ``q * (p * q)``.)

    Operands with identical index strings are multiplied elementwise first; the product
    must be the same node as simplifying ``a * b * c`` directly, and stay put when
    simplified again.
    """
    names = ["a", "b", "c", "d", "e", "f"]
    for shape in [(), (3,)]:
        variables = [eg.var(f"{name}{len(shape)}", shape) for name in names]
        for k in range(len(variables) - 2):
            a, b, c = variables[k : k + 3]
            spec = ",".join(["i" * len(shape)] * 3) + "->" + "i" * len(shape)
            for operands in [(a, b, c), (a, b, b)]:
                folded = eg.simplify(eg.einsum(spec, *operands))
                assert eg.simplify(folded) is folded, f"{spec} {operands}: {folded!r}"
                first, second, third = operands
                direct = eg.simplify(first * second * third)
                assert folded is direct, f"{folded!r} is not {direct!r}"
                assert_same_value(folded, eg.einsum(spec, *operands))


def test_sums_over_axes_nothing_varies_along_become_factors() -> None:
    X = eg.var("X", (2, 3))
    ones = eg.grad(eg.sum(X), X)  # a broadcast 1, shape (2, 3)
    rows = eg.simplify(eg.einsum("ab->a", ones))
    assert isinstance(rows, eg.Einsum) and rows.variables == ()
    np.testing.assert_array_equal(rows(), [3.0, 3.0])
    delta = _delta()
    trace = eg.simplify(eg.einsum("ij->", delta))
    assert trace.variables == ()
    np.testing.assert_array_equal(trace(), 3.0)
    np.testing.assert_array_equal(eg.simplify(eg.einsum("ij->i", delta))(), np.ones(3))
    assert eg.simplify(eg.einsum("ij,j->", delta, x)) is eg.simplify(eg.sum(x))


def test_adding_a_zero_keeps_broadcasting() -> None:
    zero = eg.hessian(eg.sum(A @ x), x)  # the Hessian of a linear function: zeros (3, 3)
    np.testing.assert_array_equal(zero(**values_for(A, x)), np.zeros((3, 3)))
    assert eg.simplify(zero + M) is M
    assert eg.simplify(M + zero) is M
    widened = eg.simplify(u + zero)  # the zero is what makes the result 3 × 3
    assert widened.shape == (3, 3)
    assert_same_value(widened, u + zero)


# --- long chains: bounded flattening, no recursion -------------------------------------------


def test_collecting_terms_of_deep_shared_chains_needs_no_recursion() -> None:
    """``W…W a + W…W b`` collects to ``W(W(…(a + b)))`` level by level, as a loop.

    Each ``Wᵏa`` is also used by a ``tanh``, so it stays a node of its own and the two
    chains meet only at the top: collecting their terms goes all the way down. That walk
    used to be a recursion, one level per layer (RecursionError at about 500 layers).
    """
    layers = 1500
    W, a, b = eg.var("W", (3, 3)), eg.var("a", (3,)), eg.var("b", (3,))
    y, z = a, b
    side: eg.Expr = eg.sum(a)
    for _ in range(layers):
        y, z = W @ y, W @ z
        side = side + eg.sum(eg.tanh(y) + eg.tanh(z))
    expr = (y + z) * side
    limit = sys.getrecursionlimit()
    sys.setrecursionlimit(1000)  # Python's default
    try:
        simplified = eg.simplify(expr)
    finally:
        sys.setrecursionlimit(limit)
    rng = np.random.default_rng(3)
    w = np.linalg.qr(rng.normal(size=(3, 3)))[0]  # orthogonal: Wᵏa neither grows nor vanishes
    av, bv = rng.normal(size=3), rng.normal(size=3)
    ya, zb, total = av, bv, np.sum(av)
    for _ in range(layers):
        ya, zb = w @ ya, w @ zb
        total += np.sum(np.tanh(ya) + np.tanh(zb))
    np.testing.assert_allclose(simplified(W=w, a=av, b=bv), (ya + zb) * total, rtol=1e-9)


def test_long_products_simplify_to_a_fixed_point_with_their_value() -> None:
    """A product of 40 factors (the tangent of a 40-layer elementwise chain is one) is
    flattened in bounded pieces; simplifying the result again changes nothing."""
    factors = [eg.tanh(eg.var(f"f{k}", (3,))) for k in range(40)]
    chain: eg.Expr = factors[0]
    for factor in factors[1:]:
        chain = 1.5 * (factor * chain)
    reordered: eg.Expr = factors[-1]
    for factor in reversed(factors[:-1]):
        reordered = (reordered * 1.5) * factor
    for expr in (chain, reordered):
        once = eg.simplify(expr)
        assert eg.simplify(once) is once
        assert_same_value(once, expr)
    # A product short enough to flatten whole is canonical: written in any order, one node.
    short = factors[:6]
    forward, backward = short[0], short[-1]
    for factor in short[1:]:
        forward = forward * factor
    for factor in reversed(short[:-1]):
        backward = factor * backward
    assert eg.simplify(forward) is eg.simplify(backward)


def test_long_contraction_chains_simplify_to_a_fixed_point_with_their_value() -> None:
    """60 matrix products fuse into einsums of bounded size (one einsum of 60 operands
    would need more labels than einsum has), which simplifying again leaves as they are."""
    mats = [eg.var(f"m{k}", (2, 2)) for k in range(60)]
    product: eg.Expr = mats[0]
    for m in mats[1:]:
        product = product @ m
    once = eg.simplify(product)
    assert eg.simplify(once) is once
    largest = max(len(n.operands) for n in toposort([once]) if isinstance(n, eg.Einsum))
    assert 2 < largest <= 16, largest
    values = values_for(product)
    expected = values["m0"]
    for k in range(1, 60):
        expected = expected @ values[f"m{k}"]
    np.testing.assert_allclose(once(**bind(once, values)), expected, rtol=1e-10)


def test_dividing_by_a_tiny_number_is_not_multiplying_by_inf() -> None:
    # x / 1e-310 is finite for x = 0, but 1 / 1e-310 is inf and 0 · inf is nan.
    x = eg.var("x", (2,))
    expr = eg.sum(x / 1e-310)
    zeros = np.zeros(2)
    np.testing.assert_array_equal(eg.simplify(expr)(x=zeros), np.sum(zeros / 1e-310))
