"""Derivation is linear in the size of the DAG, deep graphs need no recursion, and the
derivatives of long chains are still right.

* **Growth.** ``grad``, ``jvp``, ``vjp``, ``hvp`` and ``simplify`` on chains of 200 and of
  800 layers of a 4-vector (``tanh(W @ y)``, ``tanh(1.1 * y)``, ``einsum('ij,j->i', W,
  y)``), ``hessian`` on 100 and 800 layers (all but the second chain), and the Hessian of
  a sum of 200 and of 1600 terms. Growing the size k-fold, linear work takes k times as
  long, quadratic work k² times; the bound is 2.5 k (10 for 200 vs 800). Each size is
  timed three times, interleaved with the other size, and the fastest run counts, so
  that a loaded machine slows both sizes rather than one. Every run builds its chain
  from variables of new names: nothing derived, simplified or memoized in an earlier run
  is reused (hash-consing would hand back the same nodes).
* **Depth.** Chains thousands of layers deep (a path of several thousand nodes) derive,
  simplify and evaluate under Python's default recursion limit, and their derivatives
  agree with JAX and with central differences.
* **Values.** On 50-layer chains every derivation agrees with JAX
  (``jax.grad``, ``jax.jvp``, ``jax.vjp``, ``jax.jvp`` of ``jax.grad``, ``jax.hessian``)
  and with central finite differences of einsgrad's own evaluation.
"""

from __future__ import annotations

import gc
import sys
import time
from collections.abc import Callable, Iterator
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from oracles import assert_close, finite_difference

import einsgrad as eg

WIDTH = 4
RUNS = 3
# Growing the size k-fold, linear work takes k times as long and quadratic work k² times;
# the bound is 2.5 k (10 for 200 vs 800 layers).
GROWTH_SLACK = 2.5

Chain = tuple[eg.Expr, eg.Var]


# --- the chains ------------------------------------------------------------------------------


def matvec_chain(layers: int, tag: str = "") -> Chain:
    """``L = Σ y²`` for ``y = tanh(W @ y)`` applied ``layers`` times to ``x``."""
    x, W = eg.var(f"x{tag}", (WIDTH,)), eg.var(f"W{tag}", (WIDTH, WIDTH))
    y: eg.Expr = x
    for _ in range(layers):
        y = eg.tanh(W @ y)
    return eg.sum(y * y), x


def elementwise_chain(layers: int, tag: str = "") -> Chain:
    """``L = Σ y`` for ``y = tanh(1.1 · y)`` applied ``layers`` times to ``x``."""
    x = eg.var(f"x{tag}", (WIDTH,))
    y: eg.Expr = x
    for _ in range(layers):
        y = eg.tanh(y * 1.1)
    return eg.sum(y), x


def einsum_chain(layers: int, tag: str = "") -> Chain:
    """``L = y·y`` for ``y = einsum('ij,j->i', W, y)`` applied ``layers`` times to ``x``."""
    x, W = eg.var(f"x{tag}", (WIDTH,)), eg.var(f"W{tag}", (WIDTH, WIDTH))
    y: eg.Expr = x
    for _ in range(layers):
        y = eg.einsum("ij,j->i", W, y)
    return eg.einsum("i,i->", y, y), x


def sum_of_terms(terms: int, tag: str = "") -> Chain:
    """``L = Σ_k Σ_i exp(x_i · k / terms)`` for ``k = 1 … terms``."""
    x = eg.var(f"x{tag}", (WIDTH,))
    loss: eg.Expr = eg.sum(eg.exp(x * (1 / terms)))
    for k in range(2, terms + 1):
        loss = loss + eg.sum(eg.exp(x * (k / terms)))
    return loss, x


CHAINS: dict[str, Callable[..., Chain]] = {
    "matvec": matvec_chain,
    "elementwise": elementwise_chain,
    "einsum": einsum_chain,
    "sum": sum_of_terms,
}


# --- the derivations, each prepared and then timed ---------------------------------------------

Work = Callable[[], Any]


def _simplify_work(loss: eg.Expr, x: eg.Var, v: eg.Var) -> Work:
    gradient = eg.grad(loss, x)  # grad's own result is not simplified: simplify does it
    return lambda: eg.simplify(gradient)


DERIVATIONS: dict[str, Callable[[eg.Expr, eg.Var, eg.Var], Work]] = {
    "grad": lambda loss, x, v: lambda: eg.grad(loss, x),
    "jvp": lambda loss, x, v: lambda: eg.jvp(loss, {x: v}),
    "vjp": lambda loss, x, v: lambda: eg.vjp(loss, x, 1.0),
    "hvp": lambda loss, x, v: lambda: eg.hvp(loss, x, v),
    "hessian": lambda loss, x, v: lambda: eg.hessian(loss, x),
    "simplify": _simplify_work,
}


def _seconds(chain: str, derivation: str, size: int, tag: str) -> float:
    loss, x = CHAINS[chain](size, tag)
    work = DERIVATIONS[derivation](loss, x, eg.var(f"v{tag}", (WIDTH,)))
    # The cycle collector's passes cost what is alive in the whole process (program caches
    # of earlier tests too), not what this derivation does: they are kept out of the timing.
    gc.disable()
    try:
        start = time.perf_counter()
        work()
        return time.perf_counter() - start
    finally:
        gc.enable()


def fastest_seconds(chain: str, derivation: str, sizes: tuple[int, int]) -> dict[int, float]:
    """The fastest of RUNS timings at each of the two sizes, the sizes interleaved."""
    _seconds(chain, derivation, 20, "_warm")  # first-call costs (imports, spec caches)
    best = dict.fromkeys(sizes, float("inf"))
    for run in range(RUNS):
        for size in sizes:
            elapsed = _seconds(chain, derivation, size, f"_{size}_{run}")
            best[size] = min(best[size], elapsed)
    return best


# 200 vs 800 layers. The Hessians, which carry a large linear part (two Jacobian sweeps,
# each simplified and costed), span more: there a quadratic part only shows over 8×.
# Not the elementwise chain's Hessian, the slowest derivation here: at 800 layers it alone
# would take half a minute of the suite's time, three times over. Its values are checked
# below (50 layers), and its sweeps are those of the other chains' Hessians.
BASE, WIDE, TERMS = (200, 800), (100, 800), (200, 1600)
GROWTH_CASES = [
    *(("matvec", d, BASE if d != "hessian" else WIDE) for d in DERIVATIONS),
    *(("elementwise", d, BASE) for d in DERIVATIONS if d != "hessian"),
    *(("einsum", d, BASE if d != "hessian" else WIDE) for d in DERIVATIONS),
    ("sum", "hessian", TERMS),
]


@pytest.mark.parametrize(
    ("chain", "derivation", "sizes"),
    GROWTH_CASES,
    ids=[
        f"{chain}-{derivation}-{small}-vs-{large}"
        for chain, derivation, (small, large) in GROWTH_CASES
    ],
)
def test_derivation_time_grows_linearly(
    chain: str, derivation: str, sizes: tuple[int, int]
) -> None:
    small, large = sizes
    best = fastest_seconds(chain, derivation, sizes)
    growth = best[large] / best[small]
    linear = large / small
    assert growth < GROWTH_SLACK * linear, (
        f"{derivation} of the {chain} chain: {best[small]:.3f} s at {small}, "
        f"{best[large]:.3f} s at {large}: {growth:.1f}× for {linear:g}× the size"
    )


# --- depth: thousands of layers under the default recursion limit ------------------------------

# Layers: the path from the loss down to x is over 3 nodes per layer long, several times
# more frames than Python's default recursion limit of 1000 allows a recursive walk.
DEEP = 1500
DEEP_HESSIAN = 1000


def residual_chain(layers: int) -> tuple[eg.Expr, eg.Var, eg.Var]:
    """``L = Σ y²`` for the residual ``y = y + tanh(W @ y) / layers``: derivatives stay of
    order one however deep it is, so central differences can check them."""
    x, W = eg.var("x", (WIDTH,)), eg.var("W", (WIDTH, WIDTH))
    y: eg.Expr = x
    for _ in range(layers):
        y = y + eg.tanh(W @ y) * (1.0 / layers)
    return eg.sum(y * y), x, W


def jax_residual(x: Any, W: Any, layers: int) -> Any:
    # A fori_loop, not an unrolled one: JAX traces the step once, however deep the chain.
    y = jax.lax.fori_loop(0, layers, lambda _, y: y + jnp.tanh(W @ y) * (1.0 / layers), x)
    return jnp.sum(y * y)


def tanh_chain(layers: int) -> tuple[eg.Expr, eg.Var, eg.Var]:
    """``L = Σ y`` for ``y = tanh(y)``: every tangent and cotangent is a product as long as
    the chain (flattening it used to recurse once per factor). The derivatives decay only
    like layers^-3/2 (``y`` creeps towards 0, where tanh' = 1)."""
    x, W = eg.var("x", (WIDTH,)), eg.var("W", (WIDTH, WIDTH))
    y: eg.Expr = x
    for _ in range(layers):
        y = eg.tanh(y)
    return eg.sum(y) + eg.sum(W * 0.0), x, W


def jax_tanh(x: Any, W: Any, layers: int) -> Any:
    y = jax.lax.fori_loop(0, layers, lambda _, y: jnp.tanh(y), x)
    return jnp.sum(y) + jnp.sum(W * 0.0)


DEEP_CHAINS = {"residual": (residual_chain, jax_residual), "tanh": (tanh_chain, jax_tanh)}


@pytest.fixture
def default_recursion_limit() -> Iterator[None]:
    """Python's default recursion limit (1000 frames), whatever the test runner set."""
    before = sys.getrecursionlimit()
    sys.setrecursionlimit(1000)
    try:
        yield
    finally:
        sys.setrecursionlimit(before)


def _point() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(10)
    return {
        "x": rng.uniform(-1.0, 1.0, WIDTH),
        "W": rng.normal(size=(WIDTH, WIDTH)) / np.sqrt(WIDTH),
        "v": rng.normal(size=WIDTH),
    }


def jax_derivative(f: Callable[..., Any], derivation: str, point: dict[str, np.ndarray]) -> Any:
    """``derivation`` of ``f(x, W)`` with respect to x, by JAX in float64."""
    with jax.enable_x64(True):
        x, W, v = (jnp.asarray(point[name]) for name in ("x", "W", "v"))
        loss = lambda x: f(x, W)  # noqa: E731
        if derivation in ("grad", "simplify"):
            return np.asarray(jax.grad(loss)(x))
        if derivation == "vjp":
            _, pullback = jax.vjp(loss, x)
            return np.asarray(pullback(jnp.asarray(1.0))[0])
        if derivation == "jvp":
            return np.asarray(jax.jvp(loss, (x,), (v,))[1])
        if derivation == "hvp":
            return np.asarray(jax.jvp(jax.grad(loss), (x,), (v,))[1])
        return np.asarray(jax.hessian(loss)(x))


FD_STEP = 1e-6


def _value(expr: eg.Expr, index: tuple[int, ...] = ()) -> Callable[..., float]:
    """The scalar function ``expr(**arrays)[index]``."""
    return lambda **arrays: float(np.asarray(expr(**arrays))[index])


def _directional(expr: eg.Expr, point: dict[str, np.ndarray]) -> np.ndarray:
    """Central differences of ``expr`` at x along v: ``(f(x + hv) − f(x − hv)) / 2h``."""
    x, v, W = point["x"], point["v"], point["W"]
    up = np.asarray(expr(x=x + FD_STEP * v, W=W))
    down = np.asarray(expr(x=x - FD_STEP * v, W=W))
    return (up - down) / (2 * FD_STEP)


def fd_derivative(
    loss: eg.Expr, x: eg.Var, derivation: str, point: dict[str, np.ndarray]
) -> np.ndarray:
    """``derivation`` by central differences of einsgrad's evaluation: of the loss, or of
    its evaluated gradient for second derivatives."""
    arrays = {"x": point["x"], "W": point["W"]}
    if derivation in ("grad", "vjp", "simplify"):
        return finite_difference(_value(loss), arrays, "x")
    if derivation == "jvp":
        return _directional(loss, point)
    gradient = eg.grad(loss, x)
    if derivation == "hvp":
        return _directional(gradient, point)
    return np.array([finite_difference(_value(gradient, (i,)), arrays, "x") for i in range(WIDTH)])


def einsgrad_derivative(loss: eg.Expr, x: eg.Var, derivation: str) -> eg.Expr:
    v = eg.var("v", (WIDTH,))
    if derivation == "simplify":
        result = eg.simplify(eg.grad(loss, x))
    else:
        result = DERIVATIONS[derivation](loss, x, v)()
    assert isinstance(result, eg.Expr)
    return result


def evaluate_at(result: eg.Expr, point: dict[str, np.ndarray]) -> np.ndarray:
    names = {variable.name for variable in result.variables}
    return np.asarray(result(**{name: point[name] for name in names}))


DEEP_CASES = [
    *(("residual", derivation, DEEP) for derivation in DERIVATIONS if derivation != "hessian"),
    ("residual", "hessian", DEEP_HESSIAN),
    *(("tanh", derivation, DEEP) for derivation in ("jvp", "hvp", "simplify")),
]


@pytest.mark.parametrize(("chain", "derivation", "layers"), DEEP_CASES)
def test_deep_chains_derive_without_recursion(
    chain: str, derivation: str, layers: int, default_recursion_limit: None
) -> None:
    build, reference = DEEP_CHAINS[chain]
    point = _point()
    with_jax = jax_derivative(lambda x, W: reference(x, W, layers), derivation, point)
    loss, x, _ = build(layers)
    got = evaluate_at(einsgrad_derivative(loss, x, derivation), point)
    scale = float(np.max(np.abs(with_jax)))
    what = f"{derivation} of the {layers}-layer {chain} chain"
    assert_close(got, with_jax, f"{what} vs JAX", rtol=1e-9, atol=1e-12 * scale)
    numeric = fd_derivative(loss, x, derivation, point)
    assert_close(got, numeric, f"{what} vs FD", rtol=1e-5, atol=1e-7 * scale)


# --- values: every derivation of 50-layer chains against JAX and central differences -----------

VALUE_LAYERS = 50


def jax_matvec(x: Any, W: Any, layers: int) -> Any:
    y = jax.lax.fori_loop(0, layers, lambda _, y: jnp.tanh(W @ y), x)
    return jnp.sum(y * y)


def jax_elementwise(x: Any, W: Any, layers: int) -> Any:
    y = jax.lax.fori_loop(0, layers, lambda _, y: jnp.tanh(y * 1.1), x)
    return jnp.sum(y)


def jax_einsum(x: Any, W: Any, layers: int) -> Any:
    y = jax.lax.fori_loop(0, layers, lambda _, y: jnp.einsum("ij,j->i", W, y), x)
    return jnp.einsum("i,i->", y, y)


def jax_sum(x: Any, W: Any, terms: int) -> Any:
    return sum(jnp.sum(jnp.exp(x * (k / terms))) for k in range(1, terms + 1))


JAX_CHAINS: dict[str, Callable[..., Any]] = {
    "matvec": jax_matvec,
    "elementwise": jax_elementwise,
    "einsum": jax_einsum,
    "sum": jax_sum,
}


def _value_point(chain: str) -> dict[str, np.ndarray]:
    """A point where a 50-layer chain neither saturates nor vanishes: W orthogonal (times
    1.5 inside tanh, which shrinks), so activations and derivatives stay of order one."""
    point = _point()
    q, _ = np.linalg.qr(np.random.default_rng(11).normal(size=(WIDTH, WIDTH)))
    point["W"] = q * (1.5 if chain == "matvec" else 1.0)
    return point


def _bound_chain(chain: str) -> tuple[eg.Expr, eg.Var]:
    """The chain with its variables named x and W (a W it lacks is added with weight 0)."""
    loss, x = CHAINS[chain](VALUE_LAYERS)
    if all(variable.name != "W" for variable in loss.variables):
        loss = loss + eg.sum(eg.var("W", (WIDTH, WIDTH)) * 0.0)
    return loss, x


@pytest.mark.parametrize("derivation", list(DERIVATIONS))
@pytest.mark.parametrize("chain", list(CHAINS))
def test_derivatives_of_50_layer_chains_match_jax_and_finite_differences(
    chain: str, derivation: str
) -> None:
    point = _value_point(chain)
    reference = JAX_CHAINS[chain]
    with_jax = jax_derivative(lambda x, W: reference(x, W, VALUE_LAYERS), derivation, point)
    loss, x = _bound_chain(chain)
    got = evaluate_at(einsgrad_derivative(loss, x, derivation), point)
    scale = max(1.0, float(np.max(np.abs(with_jax))))
    what = f"{derivation} of the 50-layer {chain} chain"
    assert_close(got, with_jax, f"{what} vs JAX", rtol=1e-9, atol=1e-12 * scale)
    numeric = fd_derivative(loss, x, derivation, point)
    assert_close(got, numeric, f"{what} vs FD", rtol=1e-5, atol=1e-7 * scale)
