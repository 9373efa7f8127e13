"""Cases of the reliability issue: how long deriving takes as the expression grows.

* ``chain-hvp``: ``eg.hvp(L, x, v)`` of ``L = Σ y²``, ``y = tanh(W @ y)`` applied n times to a
  4-vector ``x`` (``W`` 4×4): reverse mode, then forward mode over it, then simplify.
* ``chain-hessian``: ``eg.hessian(L, x)`` of the same chain: both Jacobian sweeps of the
  gradient, each simplified and costed.
* ``sum-hessian``: ``eg.hessian`` of ``Σ_k Σ_i exp(x_i · k / n)``, k = 1 … n.

The timed call is the derivation itself (``Case.timed = "derivation"``), on an expression
built anew for every call from variables of new names: hash-consing would otherwise hand
back the previous call's nodes, and everything memoized about them (structural keys,
contraction trees, planned programs). Building the chain is about 1% of the call. The
size is also counted in nodes of the differentiated expression, and the report divides
the time by it. No competitor runs: JAX traces and compiles a function instead of
deriving an expression, which is not the same work.

The goal: derivation time linear in the size of the DAG, measured as the exponent of the
growth of the median from the smallest size to each larger one (linear is 1, quadratic
2), at most 1.2.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable

import numpy as np

import einsgrad as eg
from einsgrad.core.ir import toposort

from .cases import Case, growth_within, register

WIDTH = 4
GROWTH_GOAL = growth_within(1.2, "derivation time ∝ nᵏ with k ≤ 1.2 (linear in the DAG)")

# A fresh suffix for the variables of every expression built (see the module docstring).
_fresh = itertools.count()

Build = Callable[[int, str], tuple[eg.Expr, eg.Var]]


def tanh_chain(layers: int, tag: str) -> tuple[eg.Expr, eg.Var]:
    """``Σ y²`` for ``y = tanh(W @ y)`` applied ``layers`` times to ``x``."""
    x, W = eg.var(f"x{tag}", (WIDTH,)), eg.var(f"W{tag}", (WIDTH, WIDTH))
    y: eg.Expr = x
    for _ in range(layers):
        y = eg.tanh(W @ y)
    return eg.sum(y * y), x


def exp_sum(terms: int, tag: str) -> tuple[eg.Expr, eg.Var]:
    """``Σ_k Σ_i exp(x_i · k / terms)`` for ``k = 1 … terms``."""
    x = eg.var(f"x{tag}", (WIDTH,))
    loss: eg.Expr = eg.sum(eg.exp(x * (1 / terms)))
    for k in range(2, terms + 1):
        loss = loss + eg.sum(eg.exp(x * (k / terms)))
    return loss, x


def _no_inputs(rng: np.random.Generator) -> dict[str, np.ndarray]:
    return {}  # nothing is evaluated: the derivation is what is timed


def _case(name: str, n: int, build: Build, derivation: str, description: str, noun: str) -> Case:
    derive_one: Callable[[eg.Expr, eg.Var], object] = {
        "hvp": lambda loss, x: eg.hvp(loss, x, eg.var(f"v{x.name}", (WIDTH,))),
        "hessian": lambda loss, x: eg.hessian(loss, x),
    }[derivation]

    def derive() -> None:
        loss, x = build(n, f"_{next(_fresh)}")
        derive_one(loss, x)

    loss, _ = build(n, "")
    return Case(
        name=name,
        group="scaling",
        size=f"{n} {noun}",
        description=description,
        inputs=_no_inputs,
        derive=derive,
        competitors=(),
        goals=(GROWTH_GOAL,),
        params={"n": n},
        scale=(noun, n),
        timed="derivation",
        label=f"eg.{derivation}(L, x{', v' if derivation == 'hvp' else ''}), L built anew",
        units=("node", len(toposort([loss]))),
    )


@register("chain-hvp", quick=(200, 800), full=(200, 800, 2000))
def chain_hvp(n: int) -> Case:
    """The Hessian-vector product of an n-layer tanh chain, derived."""
    return _case(
        "chain-hvp", n, tanh_chain, "hvp", "eg.hvp of Σ y², y = tanh(W @ y) n times", "layers"
    )


@register("chain-hessian", quick=(), full=(200, 800))
def chain_hessian(n: int) -> Case:
    """The Hessian of an n-layer tanh chain, derived."""
    return _case(
        "chain-hessian",
        n,
        tanh_chain,
        "hessian",
        "eg.hessian of Σ y², y = tanh(W @ y) n times",
        "layers",
    )


@register("sum-hessian", quick=(), full=(200, 800))
def sum_hessian(n: int) -> Case:
    """The Hessian of a sum of n exponential terms, derived."""
    return _case(
        "sum-hessian", n, exp_sum, "hessian", "eg.hessian of Σ_k Σ_i exp(x_i k / n), k ≤ n", "terms"
    )
