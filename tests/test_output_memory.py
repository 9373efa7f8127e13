"""Results are the caller's own memory, whatever the order of the outputs.

An output may be a step's fresh array, a view of one (a transpose, a diagonal, a
reshape), an input itself or a view of one, a constant, or the same node twice. Handed
out in any order, by evaluate or by a compiled function (its first call and the per-call
path of a known signature), no two results share memory, no result shares memory with an
input, and writing into the results changes neither the inputs nor the next call's values.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from typing import Any

import autograd
import autograd.numpy as anp
import numpy as np
import pytest

import einsgrad as eg

X, W = eg.var("X", (3, 3)), eg.var("W", (3, 3))
S, V, C = eg.var("S", (3, 3)), eg.var("V", (3,)), eg.var("C", (3, 1))
TRUTH = np.array([[True, False, True], [False, True, False], [True, True, False]])

RNG = np.random.default_rng(7)
ARRAYS = {
    "X": RNG.normal(size=(3, 3)),
    "W": RNG.normal(size=(3, 3)),
    "S": RNG.normal(size=(3, 3)),
    "V": RNG.normal(size=3),
    "C": RNG.normal(size=(3, 1)),
}


def _loss(x: Any, w: Any) -> Any:
    return anp.sum(anp.tanh(x @ w))


_DX, _DW = autograd.grad(_loss, (0, 1))(ARRAYS["X"], ARRAYS["W"])
x, w, s, v = ARRAYS["X"], ARRAYS["W"], ARRAYS["S"], ARRAYS["V"]
_LOSS = eg.sum(eg.tanh(X @ W))
_GX, _GW = eg.grad(_LOSS, [X, W])

# Each list is (its outputs, their values computed with numpy and autograd), evaluated
# with the arrays of the variables it names in VARIABLES.
LISTS: dict[str, tuple[list[eg.Expr], list[np.ndarray]]] = {
    "a product, its transpose, an input": ([(X @ W).T, X @ W, X], [(x @ w).T, x @ w, x]),
    "tanh, its transpose, an input's transpose": (
        [eg.tanh(X).T, eg.tanh(X), X.T],
        [np.tanh(x).T, np.tanh(x), x.T],
    ),
    "diagonals of an input and of a step": (
        [eg.einsum("ii->i", S), S, eg.einsum("ii->i", eg.tanh(S)), eg.tanh(S)],
        [np.diag(s), s, np.diag(np.tanh(s)), np.tanh(s)],
    ),
    # d/dC sum(sum(C, axis=1) * tanh(V)) is tanh(V) reshaped to (3, 1): a view of tanh(V).
    "a reshaped step and the step": (
        [eg.grad(eg.sum(eg.sum(C, axis=1) * eg.tanh(V)), C), eg.tanh(V), V],
        [np.tanh(v)[:, None], np.tanh(v), v],
    ),
    "the same outputs twice": (
        [eg.tanh(X), eg.tanh(X), eg.tanh(X).T, X, X],
        [np.tanh(x), np.tanh(x), np.tanh(x).T, x, x],
    ),
    "gradients beside the forward values": (
        [_GX, _GW, eg.tanh(X @ W), (X @ W).T, _LOSS],
        [_DX, _DW, np.tanh(x @ w), (x @ w).T, np.array(_loss(x, w))],
    ),
    # d/dX sum(X) is a broadcast of ones; a boolean constant is bound as float64 once.
    "a broadcast gradient and constants": (
        [eg.grad(eg.sum(X), X), eg.as_expr(TRUTH), eg.as_expr(TRUTH).T, X],
        [np.ones((3, 3)), TRUTH.astype(float), TRUTH.T.astype(float), x],
    ),
}

VARIABLES = {
    "a product, its transpose, an input": "XW",
    "tanh, its transpose, an input's transpose": "X",
    "diagonals of an input and of a step": "S",
    "a reshaped step and the step": "CV",
    "the same outputs twice": "X",
    "gradients beside the forward values": "XW",
    "a broadcast gradient and constants": "X",
}

ORDERS = [
    (name, order)
    for name, (outputs, _) in LISTS.items()
    for order in itertools.permutations(range(len(outputs)))
]


def _evaluate(outputs: list[eg.Expr]) -> Callable[..., tuple[Any, ...]]:
    def call(**arrays: Any) -> tuple[Any, ...]:
        return tuple(eg.evaluate(outputs, **arrays))

    return call


def _compiled(outputs: list[eg.Expr]) -> Callable[..., tuple[Any, ...]]:
    return eg.compile(outputs)  # type: ignore[return-value]


def _assert_separate(results: tuple[Any, ...], arrays: dict[str, np.ndarray], where: str) -> None:
    for k, result in enumerate(results):
        assert isinstance(result, np.ndarray) and result.flags.writeable, f"{where}: output {k}"
        for name, given in arrays.items():
            assert not np.shares_memory(result, given), f"{where}: output {k} is in {name}"
    for (i, a), (j, b) in itertools.combinations(enumerate(results), 2):
        assert not np.shares_memory(a, b), f"{where}: outputs {i} and {j} share memory"


@pytest.mark.parametrize("runner", [_evaluate, _compiled], ids=["evaluate", "compile"])
@pytest.mark.parametrize(("name", "order"), ORDERS, ids=[f"{n}-{o}" for n, o in ORDERS])
def test_no_output_shares_memory_in_any_order(
    runner: Callable[[list[eg.Expr]], Callable[..., tuple[Any, ...]]],
    name: str,
    order: tuple[int, ...],
) -> None:
    all_outputs, all_expected = LISTS[name]
    outputs = [all_outputs[k] for k in order]
    expected = [all_expected[k] for k in order]
    arrays = {variable: ARRAYS[variable] for variable in VARIABLES[name]}
    originals = {key: value.copy() for key, value in arrays.items()}
    call = runner(outputs)
    # The first call binds and plans; the second takes the path of a known signature.
    for attempt in ("first call", "second call"):
        results = call(**arrays)
        _assert_separate(results, arrays, f"{name} {order}, {attempt}")
        for k, (result, value) in enumerate(zip(results, expected, strict=True)):
            np.testing.assert_allclose(result, value, rtol=1e-12, err_msg=f"output {k}")
        for result in results:
            result[...] = np.nan  # must reach no input and no later call
        for key, value in arrays.items():
            np.testing.assert_array_equal(value, originals[key])
