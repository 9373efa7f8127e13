"""Fuzzed deep and wide graphs built through the API: every pass in time, or a refusal.

Strings are bounded in length and nesting, but the API builds graphs of any size: a
chain of hundreds of layers (``tanh(W·h)``, ``h + x``, ``h ⊙ h``) or a sum of hundreds
of terms over a 4-vector. Derivation, simplification, printing, index notation and
explain must each finish within the time bound (they are linear in the graph's size)
or raise an EinsgradError, and printing must stay linear in length.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from hypothesis import given, note
from hypothesis import strategies as st

import einsgrad as eg
from fuzz.harness import (
    PRINTED_PER_NODE,
    REPR_LIMIT,
    SECONDS_PER_NODE,
    TIME_BOUND,
    attempt,
    fuzz_settings,
    graph_size,
    printed,
)

SIZES = st.sampled_from([50, 200, 400, 800])
LAYERS = ["tanh(W·h)", "h + x", "h ⊙ h", "sigmoid(h)"]


def layer(kind: str, h: eg.Expr, x: eg.Var, W: eg.Var) -> eg.Expr:
    if kind == "tanh(W·h)":
        return eg.tanh(W @ h)
    if kind == "h + x":
        return h + x
    if kind == "h ⊙ h":
        return h * h * 0.5
    return eg.sigmoid(h)


@st.composite
def graphs(draw: st.DrawFn) -> tuple[str, eg.Expr, eg.Var]:
    x, W = eg.var("x", (4,)), eg.var("W", (4, 4))
    count = draw(SIZES)
    if draw(st.booleans()):
        kinds = draw(st.lists(st.sampled_from(LAYERS), min_size=1, max_size=3))
        h: eg.Expr = x
        for k in range(count):
            h = layer(kinds[k % len(kinds)], h, x, W)
        return f"a {count}-layer chain of {kinds}", eg.sum(h), x
    terms = [eg.tanh(x * (k + 1)) for k in range(count)]
    total = terms[0]
    for term in terms[1:]:
        total = total + term
    return f"a sum of {count} terms", eg.sum(total), x


def passes(loss: eg.Expr, x: eg.Var) -> dict[str, Callable[[], Any]]:
    v = eg.var("v", (4,))
    return {
        "grad": lambda: eg.grad(loss, x),
        "simplify(grad)": lambda: eg.simplify(eg.grad(loss, x)),
        "jvp": lambda: eg.jvp(loss, {x: v}),
        "vjp": lambda: eg.vjp(loss, x, 1.0),
        "hvp": lambda: eg.hvp(loss, x, v),
        "hessian": lambda: eg.hessian(loss, x),
        "explain": lambda: eg.explain(loss, x).text,
        "str(grad)": lambda: str(eg.grad(loss, x)),
        "repr(grad)": lambda: repr(eg.grad(loss, x)),
        "to_index(grad)": lambda: eg.to_index(eg.grad(loss, x)),
        "cost(grad)": lambda: str(eg.cost(eg.grad(loss, x))),
    }


PASSES = sorted(passes(eg.sum(eg.var("x", (4,))), eg.var("x", (4,))))


@fuzz_settings(40)
@given(graph=graphs(), name=st.sampled_from(PASSES))
def test_every_pass_over_a_deep_or_wide_graph_finishes_in_time(
    graph: tuple[str, eg.Expr, eg.Var], name: str
) -> None:
    what, loss, x = graph
    note(f"{name} of {what}")
    action = passes(loss, x)[name]
    if name.startswith(("str", "repr", "to_index", "explain")):
        text = printed(f"{name} of {what}", action, graph_size(loss), PRINTED_PER_NODE)
        if name.startswith("repr"):
            assert len(text) <= REPR_LIMIT
    else:
        seconds = TIME_BOUND + SECONDS_PER_NODE * graph_size(loss)
        attempt(f"{name} of {what}", action, seconds=seconds)
