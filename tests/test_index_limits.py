"""Index notation and its LaTeX on inputs of any size.

``to_index`` and ``to_latex`` write without recursion, so a 1100-layer chain or a
2000-term sum writes out; a formula longer than 100,000 characters (a DAG written out as
a tree can be exponentially long) is refused with an error that names the limit. Fresh
labels never run out: ``i, j, ..., z`` (without ``o``), then ``i1, i2, ...``.

Expected texts are built here from the notation's definition (each einsum a product of
indexed factors, its summed labels written out in LaTeX), not taken from einsgrad.
"""

from __future__ import annotations

import numpy as np
import pytest

import einsgrad as eg

#: The fresh labels of index notation, in order, as the module documentation gives them.
FRESH = [*"ijklmnpqrstuvwxyz", *(f"i{k}" for k in range(1, 2000))]


def _tanh_chain(layers: int) -> tuple[eg.Expr, eg.Expr]:
    W, x = eg.var("W", (4, 4)), eg.var("x", (4,))
    y = x
    for _ in range(layers):
        y = eg.tanh(W @ y)
    return x, y


def _subscript(labels: list[str]) -> str:
    return ("," if any(len(label) > 1 for label in labels) else "").join(labels)


def test_a_1100_layer_chain_writes_out_in_index_notation_and_latex() -> None:
    """y_k = tanh(Σ_j W[i,j] y_{k-1}[j]): each layer sums over one fresh label, so the
    1100 layers need more labels than there are letters, and are nested 1100 deep."""
    layers = 1100
    _, y = _tanh_chain(layers)
    text = f"x[{FRESH[layers]}]"
    latex = f"x_{{{FRESH[layers]}}}"
    for k in range(layers, 0, -1):
        outer, inner = FRESH[k - 1], FRESH[k]
        text = f"tanh(W[{outer},{inner}] * {text})"
        latex = (
            f"\\operatorname{{tanh}}\\left(\\sum_{{{inner}}} "
            f"W_{{{_subscript([outer, inner])}}} {latex}\\right)"
        )
    assert eg.to_index(y) == f"Y[i] = {text}"
    assert eg.to_latex(y) == f"Y_{{i}} = {latex}"


def test_a_short_chain_reads_back_as_the_same_function() -> None:
    _, y = _tanh_chain(30)
    rng = np.random.default_rng(0)
    W, x = rng.normal(size=(4, 4)) / 2, rng.normal(size=4)
    want = x
    for _ in range(30):
        want = np.tanh(W @ want)
    parsed = eg.parse(eg.to_index(y), shapes={"W": (4, 4), "x": (4,)})
    np.testing.assert_allclose(parsed(W=W, x=x), want, rtol=1e-12)


def test_a_2000_term_sum_writes_out() -> None:
    x = eg.var("x", (3,))
    total = x
    for _ in range(1999):
        total = total + x
    assert eg.to_index(total) == "Y[i] = " + " + ".join(["x[i]"] * 2000)
    assert eg.to_latex(total) == "Y_{i} = " + " + ".join(["x_{i}"] * 2000)


def test_an_exponentially_long_index_form_is_refused_naming_the_limit() -> None:
    x, y = _tanh_chain(1000)
    derived = eg.grad(eg.sum(y), x)  # each layer's value is used twice: 2^1000 as a tree
    for write in (eg.to_index, eg.to_latex):
        with pytest.raises(eg.EinsgradError, match="longer than 100,000 characters"):
            write(derived)


def test_labels_are_handed_out_in_reading_order() -> None:
    """tanh(u * v) + u over u (3×1) and v (1×4): the size-1 axes broadcast, so each
    factor gets a fresh label there, in the order the equation is read: k and l inside
    the tanh, then m for the last u."""
    u, v = eg.var("u", (3, 1)), eg.var("v", (1, 4))
    expr = eg.tanh(u * v) + u
    text = eg.to_index(expr)
    assert text == "Y[i,j] = tanh(u[i,k] * v[l,j]) + u[i,m]"
    rng = np.random.default_rng(1)
    arrays = {"u": rng.normal(size=(3, 1)), "v": rng.normal(size=(1, 4))}
    parsed = eg.parse(text, shapes={"u": (3, 1), "v": (1, 4)})
    want = np.tanh(arrays["u"] * arrays["v"]) + arrays["u"]
    np.testing.assert_allclose(parsed(**arrays), want, rtol=1e-12)


@pytest.mark.parametrize("rank", [33, 52])
def test_arrays_of_any_rank_have_printable_labels(rank: int) -> None:
    X, Z = eg.var("X", (1,) * rank), eg.var("Z", (1,) * rank)
    product = eg.einsum("...,...->...", X, Z)
    labels = ",".join(FRESH[:rank])
    assert eg.to_index(product) == f"Y[{labels}] = X[{labels}] * Z[{labels}]"
    assert eg.to_latex(product) == f"Y_{{{labels}}} = X_{{{labels}}} Z_{{{labels}}}"
    assert repr(product) == "<einsgrad.Expr einsum('...,...->...', X, Z)>"
    assert eg.to_index(X).encode("ascii")  # plain ASCII: no label past the alphabet


def test_elementwise_work_past_the_einsum_letters_has_printable_labels() -> None:
    # An einsum names at most 52 axes; an elementwise product has numpy's 64.
    X, Z = eg.var("X", (1,) * 60), eg.var("Z", (1,) * 60)
    labels = ",".join(FRESH[:60])
    assert eg.to_index(X * Z) == f"Y[{labels}] = X[{labels}] * Z[{labels}]"
    assert eg.to_index(X * Z).encode("ascii")


def test_a_30_operand_einsum_writes_out() -> None:
    operands = [eg.var(f"A{k}", (2,)) for k in range(30)]
    product = eg.einsum(",".join(["i"] * 30) + "->", *operands)
    assert eg.to_index(product) == "Y = " + " * ".join(f"A{k}[i]" for k in range(30))
    assert eg.to_latex(product) == "Y = \\sum_{i} " + " ".join(f"A{k}_{{i}}" for k in range(30))
