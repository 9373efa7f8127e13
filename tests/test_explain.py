"""``eg.explain``: the derivations of the seed notes, step by step, and checked in numbers.

* Golden tests for every example of the seed notes (``/work/shared/seeds``): the linear
  layer ``Y = X W`` of seed 000 (X 2×3, W 3×5) with respect to ``W`` and ``X``, the bias
  and the ReLU of seed 000, the batch mean (the 1/B factor) of seed 001, the generalized
  Jacobian example of seed 002 (``y = x W`` with N=1, D=2, M=3, whose handout slip
  ``dL/dy·xᵀ`` must come out as ``dL/dy·Wᵀ``), and a multi-layer chain. The mathematical
  lines are compared exactly; the prose around them is not.
* Every golden derivation is also checked in numbers: ``d.result`` is evaluated and
  compared with a formula by hand in numpy, with HIPS autograd and with central finite
  differences (``tests/oracles.py``), never with einsgrad itself.
* The text, Markdown, LaTeX and Jupyter renderings, and the errors for bad input.
* Robustness: random expressions from a small hypothesis strategy are explained without a
  crash, and their derived gradient agrees with autograd.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import autograd.numpy as anp
import numpy as np
import pytest
from hypothesis import HealthCheck, given, note, settings
from hypothesis import strategies as st
from hypothesis.strategies import DrawFn, composite
from oracles import assert_close, autograd_gradients, finite_difference

import einsgrad as eg
from einsgrad import Derivation, Step
from einsgrad.core.spec import parse_spec
from einsgrad.rules.einsum import einsum_steps

REPRODUCIBLE = settings(
    derandomize=True,
    database=None,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)


# --- helpers ---------------------------------------------------------------------------------


def titles(d: Derivation) -> list[str]:
    return [s.title for s in d.steps]


def step(d: Derivation, title: str, nth: int = 0) -> Step:
    """The ``nth`` step whose title starts with ``title``."""
    found = [s for s in d.steps if s.title.startswith(title)]
    assert len(found) > nth, f"no step {nth} titled {title!r} in {titles(d)}"
    return found[nth]


def lines(d: Derivation) -> list[str]:
    return [line.strip() for s in d.steps for line in s.text]


def value(d: Derivation, arrays: dict[str, np.ndarray]) -> np.ndarray:
    """``d.result`` evaluated with the arrays of the variables it uses."""
    used = {v.name for v in d.result.variables}
    return np.asarray(eg.evaluate(d.result, {k: v for k, v in arrays.items() if k in used}))


def random_arrays(shapes: dict[str, tuple[int, ...]], seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    return {name: rng.standard_normal(shape) for name, shape in shapes.items()}


def check_vjp(
    d: Derivation,
    forward: Callable[..., Any],
    arrays: dict[str, np.ndarray],
    wrt: str,
    upstream: str = "dY",
    by_hand: np.ndarray | None = None,
) -> None:
    """``d.result`` (a function of the upstream gradient) against autograd and differences.

    ``L = sum(G * forward(**arrays))`` with ``G = arrays[upstream]`` is the scalar whose
    gradient the derivation stands for.
    """
    inputs = {k: v for k, v in arrays.items() if k != upstream}
    cotangent = arrays[upstream]

    def loss(**point: Any) -> Any:
        return anp.sum(cotangent * forward(**point))

    got = value(d, arrays)
    (reference,) = autograd_gradients(loss, inputs, [wrt])
    assert_close(got, reference, f"∂L/∂{wrt} against autograd")
    assert_close(got, finite_difference(loss, inputs, wrt), f"∂L/∂{wrt} against FD", atol=1e-6)
    if by_hand is not None:
        assert_close(got, by_hand, f"∂L/∂{wrt} against the formula by hand")


def check_grad(
    d: Derivation, loss: Callable[..., Any], arrays: dict[str, np.ndarray], wrt: str
) -> None:
    """``d.result`` for a scalar loss against autograd and central differences."""
    got = value(d, arrays)
    (reference,) = autograd_gradients(loss, arrays, [wrt])
    assert_close(got, reference, f"∂L/∂{wrt} against autograd")
    assert_close(got, finite_difference(loss, arrays, wrt), f"∂L/∂{wrt} against FD", atol=1e-6)


def relu(x: Any) -> Any:
    return anp.maximum(x, 0.0)


# --- seed 000: the linear layer Y = X W, X 2×3, W 3×5 ----------------------------------------

SEED000 = {"X": (2, 3), "W": (3, 5), "dY": (2, 5)}


def linear_layer() -> eg.Expr:
    # The labels of the notes: b for the batch, i for the input and j for the output features.
    X, W = eg.var("X", SEED000["X"]), eg.var("W", SEED000["W"])
    return eg.einsum("bi,ij->bj", X, W)


EINSUM_STEPS = [
    "Chain rule through Y = einsum('bi,ij->bj', X, W)",
    "The forward contraction, written out",
    "The partial derivative",
    "Substitute: the deltas collapse the sum",
    "Result for ",
    "Shapes",
]


def test_seed000_linear_layer_wrt_W_golden() -> None:
    d = eg.explain(linear_layer(), "W")
    assert [t.split(":")[0] for t in titles(d)] == [
        "Y = X·W is not a scalar",
        "Chain rule through Y = einsum('bi,ij->bj', X, W)",
        "The forward contraction, written out",
        "The partial derivative",
        "Substitute",
        "Result for ∂L/∂W",
        "Shapes",
        "So ∂L/∂W (shape 3×5)",
    ]
    # The upstream gradient is given (L = f(Y), "Assuming J_y = ∂L/∂y" in the notes).
    assert "the upstream gradient ∂L/∂Y (shape 2×5) is given," in lines(d)
    # 1. The chain rule sums over the output's labels (b and k: Y's j clashes with W's j).
    chain = step(d, "Chain rule through Y")
    assert chain.text == ("∂L/∂W_ij = Σ_b Σ_k ∂L/∂Y_bk · ∂Y_bk/∂W_ij",)
    assert chain.latex == (
        "\\frac{\\partial L}{\\partial W_{ij}} = \\sum_{b} \\sum_{k} "
        "\\frac{\\partial L}{\\partial Y_{bk}} \\frac{\\partial Y_{bk}}{\\partial W_{ij}}",
    )
    # 2. The forward contraction written out.
    assert step(d, "The forward contraction").text == ("Y_bk = Σ_l X_bl · W_lk",)
    # 3. The partial derivative as Kronecker deltas, one per label of W; the δ_li collapses
    #    the forward sum over l.
    partial = step(d, "The partial derivative")
    assert "Kronecker delta" in partial.title
    assert partial.text == (
        "∂Y_bk/∂W_ij = Σ_l δ_li · δ_kj · X_bl",
        "   = δ_kj · X_bi   (the sum over l collapses onto i)",
    )
    assert partial.latex == (
        "\\frac{\\partial Y_{bk}}{\\partial W_{ij}} = \\sum_{l} \\delta_{li} \\delta_{kj} X_{bl}"
        " = \\delta_{kj} X_{bi}",
    )
    # 4. δ_kj collapses the chain rule's sum over k; b stays summed: "B is the contracting dim".
    assert step(d, "Substitute").text == (
        "the deltas set k = j: only those terms of the sum survive",
        "∂L/∂W_ij = Σ_b X_bi · ∂L/∂Y_bj",
        "summed (contracting) labels: b",
    )
    # 5. The backward einsum and the matrix form J_W = Xᵀ·J_y.
    assert step(d, "Result for ∂L/∂W").text == (
        "index form: dW[i,j] = Σ_b X[b,i] · dY[b,j]",
        "einsum: 'bi,bj->ij'",
        "matrix form: ∂L/∂W = Xᵀ·∂L/∂Y",
    )
    # 6. The shapes: "3×5 = 3×2 · 2×5".
    assert step(d, "Shapes").text == (
        "∂L/∂W has the shape of W: 3×5",
        "X is 2×3; W is 3×5; ∂L/∂Y is 2×5 (the shape of Y)",
        "3×5 = (3×2) · (2×5)",
    )
    assert d.summary == "∂L/∂W = Xᵀ·∂L/∂Y"
    assert d.wrt == "W"
    assert d.result.shape == (3, 5)
    arrays = random_arrays(SEED000)
    check_vjp(
        d,
        lambda X, W: X @ W,
        arrays,
        "W",
        by_hand=arrays["X"].T @ arrays["dY"],
    )


def test_seed000_linear_layer_wrt_X_golden() -> None:
    d = eg.explain(linear_layer(), "X")
    assert step(d, "Chain rule through Y").text == ("∂L/∂X_bi = Σ_k Σ_j ∂L/∂Y_kj · ∂Y_kj/∂X_bi",)
    assert step(d, "The forward contraction").text == ("Y_kj = Σ_l X_kl · W_lj",)
    assert step(d, "The partial derivative").text == (
        "∂Y_kj/∂X_bi = Σ_l δ_kb · δ_li · W_lj",
        "   = δ_kb · W_ij   (the sum over l collapses onto i)",
    )
    assert step(d, "Substitute").text == (
        "the deltas set k = b: only those terms of the sum survive",
        "∂L/∂X_bi = Σ_j W_ij · ∂L/∂Y_bj",
        "summed (contracting) labels: j",
    )
    assert step(d, "Result for ∂L/∂X").text == (
        "index form: dX[b,i] = Σ_j W[i,j] · dY[b,j]",
        "einsum: 'ij,bj->bi'",
        "matrix form: ∂L/∂X = ∂L/∂Y·Wᵀ",
    )
    assert step(d, "Shapes").text == (
        "∂L/∂X has the shape of X: 2×3",
        "X is 2×3; W is 3×5; ∂L/∂Y is 2×5 (the shape of Y)",
        "2×3 = (2×5) · (5×3)",
    )
    assert d.summary == "∂L/∂X = ∂L/∂Y·Wᵀ"
    arrays = random_arrays(SEED000, seed=1)
    check_vjp(d, lambda X, W: X @ W, arrays, "X", by_hand=arrays["dY"] @ arrays["W"].T)


def test_seed000_matmul_string_gives_the_same_rule_under_its_own_labels() -> None:
    # "X @ W" parses to einsum('ij,jk->ik'): the same derivation, in those letters.
    d = eg.explain("X @ W", "W", shapes=SEED000)
    assert (
        step(d, "Chain rule through Y").title == "Chain rule through Y = einsum('ij,jk->ik', X, W)"
    )
    assert "summed (contracting) labels: i" in lines(d)
    assert "einsum: 'ij,ik->jk'" in lines(d)
    assert "3×5 = (3×2) · (2×5)" in lines(d)
    assert d.summary == "∂L/∂W = Xᵀ·∂L/∂Y"
    arrays = random_arrays(SEED000, seed=2)
    check_vjp(d, lambda X, W: X @ W, arrays, "W", by_hand=arrays["X"].T @ arrays["dY"])


def test_seed000_bias_is_a_sum_of_the_rows() -> None:
    shapes = {"X": (2, 3), "W": (3, 5), "b": (5,), "dY": (2, 5)}
    d = eg.explain("X @ W + b", "b", shapes=shapes)
    block = step(d, "Through Y = a sum")
    assert "Y = X·W + b" in block.text
    # The sum over the rows is part of the step: ∂L/∂Y is 2×5, ∂L/∂b a 5-vector.
    assert "∂L/∂b = ∂L/∂Y" not in block.text
    assert "∂L/∂b_j = Σ_i ∂L/∂Y_ij, so ∂L/∂b = 1ᵀ·∂L/∂Y" in block.text
    broadcast = [line for line in block.text if "was broadcast" in line]
    assert len(broadcast) == 1
    assert broadcast[0].startswith("b (5) was broadcast to 2×5: sum over i")
    assert "1ᵀ·(…), a sum of the rows, as for a bias" in broadcast[0]
    # No einsum block: the bias does not go through the matrix product.
    assert not [t for t in titles(d) if t.startswith("Chain rule")]
    assert d.summary == "∂L/∂b = 1ᵀ·∂L/∂Y"
    arrays = random_arrays(shapes, seed=3)
    check_vjp(d, lambda X, W, b: X @ W + b, arrays, "b", by_hand=arrays["dY"].sum(axis=0))


def test_a_broadcast_argument_sums_its_gradient_in_its_own_step() -> None:
    shapes = {"X": (2, 3), "W": (3, 5), "c": (1, 5)}
    d = eg.explain("sum(relu(X @ W + b))", "b", shapes={**shapes, "b": (5,)})
    assert "∂L/∂b_j = Σ_i ∂L/∂Y_ij, so ∂L/∂b = 1ᵀ·∂L/∂Y" in lines(d)  # Y = X·W + b
    # A kept axis of size 1 has the one index 0, and there is no 1ᵀ· for a 1×5 result.
    d = eg.explain("sum((X @ W) * c)", "c", shapes=shapes)
    (line,) = [text for text in lines(d) if text.startswith("∂L/∂c_")]
    assert line.startswith("∂L/∂c_0j = Σ_i (") and "1ᵀ" not in line
    arrays = random_arrays(shapes, seed=25)
    check_grad(d, lambda X, W, c: anp.sum((X @ W) * c), arrays, "c")


def test_seed000_relu_is_an_elementwise_mask() -> None:
    shapes = {"X": (2, 3), "W": (3, 5), "b": (5,), "dY": (2, 5)}
    d = eg.explain("relu(X @ W + b)", "W", shapes=shapes)
    assert step(d, "where").text == ("Z = X·W", "H = Z + b")
    relu_block = step(d, "Through Y = relu")
    assert "∂L/∂H = ∂L/∂Y ⊙ [H > 0]" in relu_block.text
    assert any(line.startswith("rule: y_i = max(x_i, 0)") for line in relu_block.text)
    # The blocks run top-down: relu, then the bias, then the matrix product.
    order = titles(d)
    assert order.index("Through Y = relu(…)") < order.index("Through H = a sum")
    assert order.index("Through H = a sum") < order.index(
        "Chain rule through Z = einsum('ij,jk->ik', X, W)"
    )
    assert "matrix form: ∂L/∂W = Xᵀ·∂L/∂Z" in lines(d)
    assert d.summary == "∂L/∂W = Xᵀ·(∂L/∂Y ⊙ [b + X·W > 0])"
    arrays = random_arrays(shapes, seed=4)
    x, w, b, g = arrays["X"], arrays["W"], arrays["b"], arrays["dY"]
    check_vjp(
        d,
        lambda X, W, b: relu(X @ W + b),
        arrays,
        "W",
        by_hand=x.T @ (g * (x @ w + b > 0)),
    )


def test_seed000_relu_wrt_the_bias() -> None:
    shapes = {"X": (2, 3), "W": (3, 5), "b": (5,), "dY": (2, 5)}
    d = eg.explain("relu(X @ W + b)", "b", shapes=shapes)
    assert "∂L/∂Z = ∂L/∂Y ⊙ [Z > 0]" in lines(d)
    assert d.summary == "∂L/∂b = 1ᵀ·(∂L/∂Y ⊙ [b + X·W > 0])"
    arrays = random_arrays(shapes, seed=5)
    x, w, b, g = arrays["X"], arrays["W"], arrays["b"], arrays["dY"]
    check_vjp(
        d,
        lambda X, W, b: relu(X @ W + b),
        arrays,
        "b",
        by_hand=(g * (x @ w + b > 0)).sum(axis=0),
    )


# --- seed 001: the batch mean and its 1/B ------------------------------------------------------


def test_seed001_batch_mean_shows_the_one_over_B_factor() -> None:
    # A per-example loss l_b = Σ_j Y_bj², averaged over a batch of B = 4 examples.
    shapes = {"X": (4, 3), "W": (3, 5)}
    d = eg.explain("mean(sum((X @ W) ** 2, axis=1))", "W", shapes=shapes)
    mean_block = step(d, "Through L = a quotient")
    assert "L = U / 4" in mean_block.text
    assert "∂L/∂U = 1/4 · ∂L/∂L" in mean_block.text
    assert "1/4 is the 1/B of a mean: each entry gets 1/4 of ∂L/∂L" in mean_block.text
    # The per-example sum over the output features, then the chain rule down to W, where
    # the batch label is the contracting one.
    assert step(d, "where").text == ("Y = X·W", "Z = Y**2", "H = Z·1", "U = 1ᵀ·H")
    assert "∂L/∂Y = ∂L/∂Z ⊙ 2 · Y" in lines(d)
    assert "∂L/∂W_jk = Σ_i X_ij · ∂L/∂Y_ik" in lines(d)
    assert "summed (contracting) labels: i" in lines(d)
    assert "matrix form: ∂L/∂W = Xᵀ·∂L/∂Y" in lines(d)
    assert "3×5 = (3×4) · (4×5)" in lines(d)
    arrays = random_arrays(shapes, seed=6)
    x, w = arrays["X"], arrays["W"]
    # By hand: ∂L/∂Y = (2/B) Y, so ∂L/∂W = (1/B) Xᵀ (2 X W).
    assert_close(value(d, arrays), x.T @ (2 * x @ w) / 4, "∂L/∂W by hand")
    check_grad(d, lambda X, W: anp.mean(anp.sum((X @ W) ** 2, axis=1)), arrays, "W")


def test_seed001_batch_mean_wrt_X() -> None:
    shapes = {"X": (4, 3), "W": (3, 5), "b": (5,)}
    d = eg.explain("mean(sum(relu(X @ W + b) ** 2, axis=1))", "X", shapes=shapes)
    assert "1/4 is the 1/B of a mean: each entry gets 1/4 of ∂L/∂L" in lines(d)
    assert "matrix form: ∂L/∂X = ∂L/∂Y·Wᵀ" in lines(d)
    arrays = random_arrays(shapes, seed=7)
    check_grad(d, lambda X, W, b: anp.mean(anp.sum(relu(X @ W + b) ** 2, axis=1)), arrays, "X")


def test_a_mean_over_all_entries_names_its_factor_b_times_m() -> None:
    # X 2×3, W 3×5: relu(X W + b) is 2×5, so the mean divides by 10 = B·M, not by B = 2.
    shapes = {"X": (2, 3), "W": (3, 5), "b": (5,)}
    d = eg.explain("mean(relu(X @ W + b))", "W", shapes=shapes)
    mean_block = step(d, "Through L = a quotient")
    assert "L = U / 10" in mean_block.text
    (line,) = [text for text in mean_block.text if "mean" in text]
    assert line.startswith("1/10 = 1/(2·5), the mean over all 10 entries")
    assert "1/B of a mean" not in d.text
    arrays = random_arrays(shapes, seed=24)
    check_grad(d, lambda X, W, b: anp.mean(relu(X @ W + b)), arrays, "W")


def test_a_mean_over_another_axis_is_not_a_batch_mean() -> None:
    shapes = {"X": (2, 3), "W": (3, 5)}
    d = eg.explain("sum(mean(X @ W, axis=1))", "W", shapes=shapes)
    (line,) = [text for text in lines(d) if "mean" in text]
    assert line.startswith("1/5 is the 1/N of a mean over axis 1 (N = 5)")
    check_grad(d, lambda X, W: anp.sum(anp.mean(X @ W, axis=1)), random_arrays(shapes), "W")


def test_a_division_by_a_number_is_not_called_a_mean() -> None:
    d = eg.explain("sum(X @ W) / 2", "W", shapes={"X": (2, 3), "W": (3, 5)})
    assert not any("mean" in line for line in lines(d))


def _says_nothing(line: str) -> bool:
    """``A = A``: a line whose two sides are the same text."""
    sides = [side.strip() for side in line.split(" = ")]
    return len(sides) == 2 and sides[0] == sides[1]


@pytest.mark.parametrize(
    "loss", ["sum(Y @ W)", "sum(relu(Y @ W))", "mean(Y @ W)"], ids=["sum", "relu", "mean"]
)
def test_no_line_says_a_thing_equals_itself(loss: str) -> None:
    d = eg.explain(loss, "W", shapes={"Y": (2, 3), "W": (3, 5)})
    assert [line for line in lines(d) if _says_nothing(line.split(",")[0])] == []
    assert all(s.text for s in d.steps)


# --- seed 002: Justin Johnson's generalized Jacobian example, N=1, D=2, M=3 -------------------

SEED002 = {"x": (1, 2), "W": (2, 3), "dy": (1, 3)}


def test_seed002_dx_is_dy_times_W_transposed_not_x_transposed() -> None:
    d = eg.explain("x @ W", "x", shapes=SEED002, upstream="y")
    assert d.steps[0].title == "y = x·W is not a scalar"
    assert "the upstream gradient ∂L/∂y (shape 1×3) is given," in lines(d)
    assert step(d, "Chain rule through y").text == ("∂L/∂x_ij = Σ_l Σ_k ∂L/∂y_lk · ∂y_lk/∂x_ij",)
    assert "∂L/∂x_ij = Σ_k W_jk · ∂L/∂y_ik" in lines(d)
    assert "matrix form: ∂L/∂x = ∂L/∂y·Wᵀ" in lines(d)
    assert "1×2 = (1×3) · (3×2)" in lines(d)
    # The handout's slip, dL/dy·xᵀ, appears nowhere.
    assert d.summary == "∂L/∂x = ∂L/∂y·Wᵀ"
    assert "xᵀ" not in d.text
    arrays = random_arrays(SEED002, seed=8)
    check_vjp(
        d, lambda x, W: x @ W, arrays, "x", upstream="dy", by_hand=arrays["dy"] @ arrays["W"].T
    )
    # ... and the Jacobian ∂y/∂x (3×2 entries here) is never formed: the result is built from
    # dy and W alone, and has x's shape.
    assert {v.name for v in d.result.variables} == {"dy", "W"}
    assert d.result.shape == (1, 2)


def test_seed002_dW_is_x_transposed_times_dy() -> None:
    d = eg.explain("x @ W", "W", shapes=SEED002, upstream="y")
    assert d.summary == "∂L/∂W = xᵀ·∂L/∂y"
    assert "2×3 = (2×1) · (1×3)" in lines(d)
    arrays = random_arrays(SEED002, seed=9)
    check_vjp(
        d, lambda x, W: x @ W, arrays, "W", upstream="dy", by_hand=arrays["x"].T @ arrays["dy"]
    )


# --- a weight stored out×in: Y = X·Wᵀ + b -------------------------------------------------------

OUT_BY_IN = {"X": (2, 3), "W": (5, 3), "b": (5,)}


def test_a_transposed_weight_is_folded_into_the_contraction() -> None:
    # Explained as built, Wᵀ took the name Y, so ∂L/∂Y meant the gradient of Wᵀ.
    d = eg.explain("mean(relu(X @ W.T + b))", "W", shapes=OUT_BY_IN)
    assert step(d, "where").text[0] == "Y = X·Wᵀ"  # the layer's output, not "Y = Wᵀ"
    assert not any(line.endswith("= Wᵀ") for line in lines(d))
    assert "Chain rule through Y = einsum('ij,kj->ik', X, W)" in titles(d)
    assert "Y_il = Σ_m X_im · W_lm" in lines(d)
    assert "einsum: 'ij,ik->kj'" in lines(d)  # ∂L/∂W_kj = Σ_i X_ij ∂L/∂Y_ik
    arrays = random_arrays(OUT_BY_IN, seed=21)
    check_grad(d, lambda X, W, b: anp.mean(relu(X @ W.T + b)), arrays, "W")


def test_a_transposed_weight_keeps_the_upstream_name_for_the_layer_output() -> None:
    d = eg.explain("X @ W.T + b", "W", shapes=OUT_BY_IN)
    assert d.steps[0].title == "Y = Z + b is not a scalar"
    assert step(d, "where").text == ("Z = X·Wᵀ",)
    assert "∂L/∂Z = ∂L/∂Y" in lines(d)
    arrays = random_arrays({**OUT_BY_IN, "dY": (2, 5)}, seed=22)
    check_vjp(
        d,
        lambda X, W, b: X @ W.T + b,
        arrays,
        "W",
        by_hand=arrays["dY"].T @ arrays["X"],
    )


def test_a_transpose_used_twice_is_left_as_its_own_step() -> None:
    # Folding a shared Wᵀ into both contractions would hide that it is one value.
    W = eg.var("W", (3, 3))
    X = eg.var("X", (2, 3))
    shared = W.T
    d = eg.explain(eg.sum((X @ shared) @ shared), W)
    assert any(line.endswith("= Wᵀ") for line in step(d, "where").text)
    arrays = random_arrays({"X": (2, 3), "W": (3, 3)}, seed=23)
    check_grad(d, lambda X, W: anp.sum((X @ W.T) @ W.T), arrays, "W")


def test_upstream_name_is_used_throughout_the_first_step() -> None:
    # With upstream="y" the derivation is about ∂L/∂y; its first step should not switch to
    # a capital Y ("L = f(Y)") that names nothing in this derivation.
    d = eg.explain("x @ W", "x", shapes=SEED002, upstream="y")
    first = " ".join(d.steps[0].text)
    assert "f(y)" in first, first


# --- multi-layer chains: one block per node on the path ---------------------------------------

MLP = {"X": (4, 3), "W1": (3, 5), "W2": (5, 2), "V": (3, 2), "dY": (4, 2)}


def test_two_layers_non_scalar_one_block_per_node_on_the_path() -> None:
    d = eg.explain("relu(X @ W1) @ W2", "W1", shapes=MLP)
    assert step(d, "where").text == ("Z = X·W1", "H = relu(Z)")
    chain_titles = [t for t in titles(d) if t.startswith(("Chain rule", "Through"))]
    assert chain_titles == [
        "Chain rule through Y = einsum('ij,jk->ik', H, W2)",
        "Through H = relu(…)",
        "Chain rule through Z = einsum('ij,jk->ik', X, W1)",
    ]
    # Each einsum block has the full six steps.
    assert titles(d).count("The forward contraction, written out") == 2
    assert titles(d).count("Shapes") == 2
    assert "matrix form: ∂L/∂H = ∂L/∂Y·W2ᵀ" in lines(d)
    assert "∂L/∂Z = ∂L/∂H ⊙ [Z > 0]" in lines(d)
    assert "matrix form: ∂L/∂W1 = Xᵀ·∂L/∂Z" in lines(d)
    # W2 is not on the path to W1: its gradient is not derived.
    assert not any("∂L/∂W2" in t for t in titles(d))
    assert d.summary == "∂L/∂W1 = Xᵀ·(∂L/∂Y·W2ᵀ ⊙ [X·W1 > 0])"
    arrays = random_arrays(MLP, seed=10)
    x, w1, w2, g = arrays["X"], arrays["W1"], arrays["W2"], arrays["dY"]
    check_vjp(
        d,
        lambda X, W1, W2: relu(X @ W1) @ W2,
        {k: arrays[k] for k in ("X", "W1", "W2", "dY")},
        "W1",
        by_hand=x.T @ ((g @ w2.T) * (x @ w1 > 0)),
    )


def test_two_layers_scalar_loss_and_a_branch_off_the_path() -> None:
    d = eg.explain("sum(relu(X @ W1) @ W2 + X @ V)", "W1", shapes=MLP)
    chain_titles = [t for t in titles(d) if t.startswith(("Chain rule", "Through", "The loss"))]
    assert chain_titles == [
        "The loss L = einsum('ab->', U)",
        "Through U = a sum",
        "Chain rule through H = einsum('ij,jk->ik', Z, W2)",
        "Through Z = relu(…)",
        "Chain rule through Y = einsum('ij,jk->ik', X, W1)",
    ]
    # X @ V does not depend on W1: no block goes through it.
    assert not any("V" in t for t in titles(d))
    assert titles(d)[-1] == "So ∂L/∂W1 (shape 3×5)"
    arrays = random_arrays({k: MLP[k] for k in ("X", "W1", "W2", "V")}, seed=11)
    check_grad(d, lambda X, W1, W2, V: anp.sum(relu(X @ W1) @ W2 + X @ V), arrays, "W1")


def test_three_layers_scalar_loss() -> None:
    shapes = {"X": (4, 3), "W1": (3, 5), "W2": (5, 4), "W3": (4, 2)}
    d = eg.explain("mean(tanh(relu(X @ W1) @ W2) @ W3)", "W1", shapes=shapes)
    einsum_blocks = [t for t in titles(d) if t.startswith("Chain rule through")]
    # the mean's sum, then the three matrix products
    assert len(einsum_blocks) == 4
    assert [t for t in titles(d) if t.startswith("Through")] == [
        "Through L = a quotient",
        "Through U = tanh(…)",
        "Through Z = relu(…)",
    ]
    assert step(d, "where").text == (
        "Y = X·W1",
        "Z = relu(Y)",
        "H = Z·W2",
        "U = tanh(H)",
        "V = U·W3",
        "P = 1ᵀ·V·1",
    )
    # A mean over all 4×2 entries divides by B·M = 8, not by the batch size B = 4.
    (mean_line,) = [line for line in lines(d) if "1/8" in line and "mean" in line]
    assert mean_line.startswith("1/8 = 1/(4·2), the mean over all 8 entries")
    assert "1/B of a mean" not in mean_line
    arrays = random_arrays(shapes, seed=12)
    check_grad(d, lambda X, W1, W2, W3: anp.mean(anp.tanh(relu(X @ W1) @ W2) @ W3), arrays, "W1")


def test_a_node_used_twice_says_its_contributions_add() -> None:
    shapes = {"X": (2, 3), "W": (3, 5)}
    d = eg.explain("sum((X @ W) * (X @ W))", "W", shapes=shapes)
    note_step = step(d, "Y is used 2 times")
    assert titles(d).count("Through Z = a product") == 2
    arrays = random_arrays(shapes, seed=13)
    x, w = arrays["X"], arrays["W"]
    assert_close(value(d, arrays), 2 * x.T @ (x @ w), "∂L/∂W by hand")
    check_grad(d, lambda X, W: anp.sum((X @ W) * (X @ W)), arrays, "W")
    # The note must point the right way at the contributions it announces.
    position = d.steps.index(note_step)
    contributions = [k for k, s in enumerate(d.steps) if s.title == "Through Z = a product"]
    (text,) = note_step.text
    if "below" in text:
        assert all(k > position for k in contributions), (
            f"step {position + 1} ({text!r}) announces contributions 'below', but they are "
            f"steps {[k + 1 for k in contributions]}"
        )
    else:
        assert "above" in text
        assert all(k < position for k in contributions)


def test_three_operand_einsum_wrt_the_middle_operand() -> None:
    # Not a template for matrix products: the deltas and sums follow the spec.
    A, B, C = eg.var("A", (2, 3)), eg.var("B", (3, 4)), eg.var("C", (4, 5))
    d = eg.explain(eg.einsum("ij,jk,kl->il", A, B, C), "B")
    assert step(d, "The partial derivative").text == (
        "∂Y_il/∂B_jk = Σ_m Σ_n δ_mj · δ_nk · A_im · C_nl",
        "   = A_ij · C_kl   (the sum over m, n collapses onto j, k)",
    )
    assert "summed (contracting) labels: i, l" in lines(d)
    assert "einsum: 'ij,kl,il->jk'" in lines(d)
    shapes = {"A": (2, 3), "B": (3, 4), "C": (4, 5), "dY": (2, 5)}
    arrays = random_arrays(shapes, seed=14)
    a, c, g = arrays["A"], arrays["C"], arrays["dY"]
    check_vjp(
        d,
        lambda A, B, C: anp.einsum("ij,jk,kl->il", A, B, C),
        arrays,
        "B",
        by_hand=a.T @ g @ c.T,
    )


# --- renderings ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def derivation() -> Derivation:
    shapes = {"X": (4, 3), "W": (3, 5), "b": (5,)}
    return eg.explain("mean(sum(relu(X @ W + b) ** 2, axis=1))", "W", shapes=shapes)


def test_text_rendering(derivation: Derivation) -> None:
    text = derivation.text
    assert str(derivation) == text
    out = text.splitlines()
    assert out[0] == f"1. {derivation.steps[0].title}"
    numbered = [line for line in out if re.match(r"^\d+\. ", line)]
    assert [line.split(". ", 1)[1] for line in numbered] == titles(derivation)
    assert out[-1] == f"Result: {derivation.summary}"
    assert "   ∂L/∂W_jk = Σ_i X_ij · ∂L/∂Y_ik" in out


def test_markdown_rendering(derivation: Derivation) -> None:
    md = derivation.markdown
    assert derivation._repr_markdown_() == md
    assert md.startswith("### Derivation of ∂L/∂W\n")
    assert "$$" in md
    for number, s in enumerate(derivation.steps, 1):
        assert f"{number}. **{s.title}**" in md
        for math in s.latex:
            assert f"$$ {math} $$" in md
        if not s.latex:
            for line in s.text:
                assert f"`{line}`" in md
    # The chain rule in LaTeX, between $$.
    assert (
        "$$ \\frac{\\partial L}{\\partial W_{jk}} = \\sum_{i} \\sum_{l} "
        "\\frac{\\partial L}{\\partial Y_{il}} \\frac{\\partial Y_{il}}{\\partial W_{jk}} $$"
    ) in md
    assert md.rstrip().endswith(f"**Result:** `{derivation.summary}`")


def test_latex_rendering(derivation: Derivation) -> None:
    tex = derivation.latex
    assert derivation._repr_latex_() == tex
    out = tex.splitlines()
    assert out[0] == "\\begin{enumerate}"
    assert out[-1] == "\\end{enumerate}"
    assert sum(line.strip().startswith("\\item ") for line in out) == len(derivation.steps)
    assert "\\frac{\\partial L}" in tex
    assert "\\delta_{" in tex
    for line in out:
        if line.strip().startswith("\\["):
            assert line.rstrip().endswith("\\]"), line
            # Braces balance on every display line (escaped ones aside).
            body = line.replace("\\{", "").replace("\\}", "")
            assert body.count("{") == body.count("}"), line
    # Text lines are escaped for LaTeX: an underscore of the index form does not start a
    # subscript in \text{...}, and Unicode math becomes inline math pdflatex can set.
    assert "\\text{index form: dW[j,k] = $\\Sigma$\\_i X[i,j] $\\cdot$ dY[i,k]}" in tex
    assert not any(char in tex for char in "∂Σᵀ×·δ⊙")


def test_markdown_and_latex_of_a_non_scalar_derivation() -> None:
    d = eg.explain(linear_layer(), "X")
    assert "$$ \\frac{\\partial L}{\\partial X_{bi}} = \\sum_{j} W_{ij}" in d.markdown
    assert "\\[ \\frac{\\partial Y_{kj}}{\\partial X_{bi}}" in d.latex


# --- errors ----------------------------------------------------------------------------------


def test_unknown_wrt_is_a_grad_error() -> None:
    with pytest.raises(eg.GradError, match=r"wrt='Q' is not a variable.*W, X"):
        eg.explain("X @ W", "Q", shapes=SEED000)
    with pytest.raises(eg.GradError):
        eg.explain("X @ W", eg.var("Q", (3, 5)), shapes=SEED000)
    with pytest.raises(eg.GradError):
        eg.explain("X @ W", 3, shapes=SEED000)


def test_missing_shapes_is_a_shape_error() -> None:
    with pytest.raises(eg.ShapeError, match="explain needs shapes"):
        eg.explain("X @ W", "W")
    with pytest.raises(eg.ShapeError, match="explain needs shapes"):
        eg.explain("sum(X @ W)", "W", shapes={"X": (2, 3)})
    with pytest.raises(eg.ShapeError):
        eg.explain(eg.var("A") @ eg.var("B"), "A")


def test_bad_expressions_raise_einsgrad_errors() -> None:
    with pytest.raises(eg.ParseError):
        eg.explain("X @ W +", "W", shapes=SEED000)
    with pytest.raises(eg.ShapeError, match="inner sizes 3 and 4 differ"):
        eg.explain("X @ W", "W", shapes={"X": (2, 3), "W": (4, 5)})


# --- robustness: random expressions ----------------------------------------------------------

ROBUST_SHAPES = {"X": (3, 4), "W": (4, 2), "b": (2,), "V": (3, 2)}


@dataclass(frozen=True)
class Case:
    text: str
    fn: Callable[..., Any]
    names: frozenset[str]


def _leaf(draw: DrawFn) -> Case:
    choice = draw(st.sampled_from(["XW", "V", "XWb"]))
    if choice == "XW":
        return Case("X @ W", lambda e: e["X"] @ e["W"], frozenset("XW"))
    if choice == "V":
        return Case("V", lambda e: e["V"], frozenset("V"))
    return Case("(X @ W + b)", lambda e: e["X"] @ e["W"] + e["b"], frozenset("XWb"))


UNARY: dict[str, Callable[[Any], Any]] = {
    "relu": relu,
    "tanh": anp.tanh,
    "sigmoid": lambda x: 1 / (1 + anp.exp(-x)),
}


@composite
def matrices(draw: DrawFn, depth: int = 0) -> Case:
    """A 3×2 expression over X (3×4), W (4×2), b (2,) and V (3×2)."""
    if depth >= 3 or draw(st.integers(0, 2)) == 0:
        return _leaf(draw)
    a = draw(matrices(depth + 1))
    kind = draw(st.sampled_from(["unary", "add", "mul", "square", "scale", "bias"]))
    if kind == "unary":
        name = draw(st.sampled_from(sorted(UNARY)))
        f = UNARY[name]
        return Case(f"{name}({a.text})", lambda e: f(a.fn(e)), a.names)
    if kind == "square":
        return Case(f"({a.text}) ** 2", lambda e: a.fn(e) ** 2, a.names)
    if kind == "scale":
        return Case(f"({a.text}) / 3", lambda e: a.fn(e) / 3, a.names)
    if kind == "bias":
        return Case(f"({a.text}) - b", lambda e: a.fn(e) - e["b"], a.names | {"b"})
    c = draw(matrices(depth + 1))
    if kind == "add":
        return Case(f"({a.text}) + ({c.text})", lambda e: a.fn(e) + c.fn(e), a.names | c.names)
    return Case(f"({a.text}) * ({c.text})", lambda e: a.fn(e) * c.fn(e), a.names | c.names)


@composite
def explain_cases(draw: DrawFn) -> tuple[Case, bool, str]:
    m = draw(matrices())
    scalar = draw(st.booleans())
    if scalar:
        loss = draw(st.sampled_from(["sum", "mean", "mean_rows"]))
        if loss == "mean_rows":
            m = Case(
                f"mean(sum({m.text}, axis=1))",
                lambda e, f=m.fn: anp.mean(anp.sum(f(e), axis=1)),
                m.names,
            )
        else:
            reducer = anp.sum if loss == "sum" else anp.mean
            m = Case(f"{loss}({m.text})", lambda e, f=m.fn, r=reducer: r(f(e)), m.names)
    wrt = draw(st.sampled_from(sorted(m.names)))
    return m, scalar, wrt


@settings(REPRODUCIBLE, max_examples=100)
@given(explain_cases())
def test_explain_random_expressions(case: tuple[Case, bool, str]) -> None:
    m, scalar, wrt = case
    note(f"L = {m.text}, wrt {wrt}, scalar={scalar}")
    shapes = {k: v for k, v in ROBUST_SHAPES.items() if k in m.names}
    d = eg.explain(m.text, wrt, shapes=shapes)
    # Renderings work and end with the result.
    assert d.text.splitlines()[-1] == f"Result: {d.summary}"
    assert d.markdown and d.latex.startswith("\\begin{enumerate}")
    assert d.steps[-1].title == f"So ∂L/∂{wrt} (shape {'×'.join(map(str, shapes[wrt]))})"
    assert d.result.shape == shapes[wrt]
    rng = np.random.default_rng(len(m.text))
    arrays = {k: rng.standard_normal(v) for k, v in shapes.items()}
    if scalar:
        (reference,) = autograd_gradients(lambda **e: m.fn(e), arrays, [wrt])
    else:
        cotangent = rng.standard_normal((3, 2))
        arrays["dY"] = cotangent
        inputs = {k: v for k, v in arrays.items() if k != "dY"}
        (reference,) = autograd_gradients(lambda **e: anp.sum(cotangent * m.fn(e)), inputs, [wrt])
    assert_close(value(d, arrays), reference, f"∂L/∂{wrt} of {m.text}", rtol=1e-6, atol=1e-8)


# --- the final formula is in matrix notation, also for a broadcast result -------------------

# Each case: (einsum spec, operand shape, output shape, the formula written by hand, and the
# same formula in numpy, from which the einsum's value is checked: the text cannot be right
# about a formula that computes something else).
BROADCAST_FORMS = [
    ("cb->ab", (5, 3), (4, 3), "1·1ᵀ·X", lambda X: np.ones((4, 5)) @ X),
    ("bc->ab", (3, 5), (4, 3), "1·1ᵀ·Xᵀ", lambda X: np.ones((4, 5)) @ X.T),
    ("ac->ab", (4, 5), (4, 3), "X·1·1ᵀ", lambda X: X @ np.ones((5, 3))),
    ("ca->ab", (5, 4), (4, 3), "Xᵀ·1·1ᵀ", lambda X: X.T @ np.ones((5, 3))),
    ("b->ab", (3,), (4, 3), "1·Xᵀ", lambda X: np.outer(np.ones(4), X)),
    ("a->ab", (4,), (4, 3), "X·1ᵀ", lambda X: np.outer(X, np.ones(3))),
    ("cd->ab", (5, 2), (4, 3), "(1ᵀ·X·1)·1·1ᵀ", lambda X: X.sum() * np.ones((4, 3))),
    ("c->a", (5,), (4,), "(1ᵀ·X)·1", lambda X: X.sum() * np.ones(4)),
]


@pytest.mark.parametrize("case", BROADCAST_FORMS, ids=lambda case: case[0])
def test_broadcast_einsums_have_a_matrix_form(case: Any) -> None:
    spec, shape, out_shape, formula, numpy_formula = case
    X = eg.var("X", shape)
    # numpy's einsum has no broadcast output labels; the generalized dialect does.
    broadcast = eg.Einsum(parse_spec(spec, generalized=True), [X], out_shape, out_shape)
    assert broadcast.to_matrix() == formula
    x = np.random.default_rng(3).normal(size=shape)
    np.testing.assert_allclose(broadcast(X=x), numpy_formula(x), rtol=1e-12)


def test_a_mean_of_a_transposed_layer_ends_in_a_matrix_formula_with_its_einsum() -> None:
    X, W, b = eg.var("X", (5, 3)), eg.var("W", (4, 3)), eg.var("b", (4,))
    d = eg.explain(eg.mean(X @ W.T + b), W)
    # ∂/∂W_kj of (1/20) Σ_ik (Σ_j X_ij W_kj + b_k) is (1/20) Σ_i X_ij: 1/20 · 1·1ᵀ·X.
    assert d.summary == "∂L/∂W = 1/20 · 1·1ᵀ·X"
    final = d.steps[-1].text
    assert final[0] == d.summary and final[1].startswith("as one einsum: einsum(")
    x = np.random.default_rng(4).normal(size=(5, 3))
    want = np.ones((4, 5)) @ x / 20
    got = d.result(X=x, W=np.zeros((4, 3)), b=np.zeros(4))
    np.testing.assert_allclose(got, want, rtol=1e-12)


# --- sizes past the alphabets: labels and names never run out -------------------------------

#: explain's display labels, in order: these letters (o left out), then i1, i2, ...
DISPLAY = [*"ijklmnpqrstuvwxyzabcdefgh", *(f"i{k}" for k in range(1, 100))]


@pytest.mark.parametrize("count", [25, 30, 52])
def test_an_einsum_with_more_labels_than_display_letters_is_explained(count: int) -> None:
    """L = Σ X ⊙ Z over ``count`` labels: every label of X needs a fresh label in the
    partial derivative, more than the 25 display letters once ``count`` is 25."""
    labels = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"[:count]
    shape = (2, 3) + (1,) * (count - 2)
    X, Z = eg.var("X", shape), eg.var("Z", shape)
    spec = f"{labels},{labels}->"
    d = eg.explain(eg.einsum(spec, X, Z), X)
    assert d.summary == "∂L/∂X = Z"  # ∂/∂X_t Σ_s X_s Z_s = Z_t
    arrays = random_arrays({"X": shape, "Z": shape})
    assert_close(value(d, arrays), arrays["Z"], "by hand")

    def loss(X: Any, Z: Any) -> Any:
        return anp.sum(X * Z)

    assert_close(value(d, arrays), finite_difference(loss, arrays, "X"), "FD", rtol=1e-6)
    assert_close(value(d, arrays), autograd_gradients(loss, arrays, ["X"])[0], "autograd")
    steps = einsum_steps(parse_spec(spec), 0, ["X", "Z"], "L")
    deltas = [f.labels for f in steps.raw_partial.factors if f.kind == "delta"]
    forward = [pair[0] for pair in deltas]
    assert [pair[1] for pair in deltas] == list(labels)  # one δ per label of X
    assert len(set(forward)) == count and not set(forward) & set(labels)


def test_a_2000_term_sum_is_explained() -> None:
    """x + x + ... + x (2000 terms): 1999 intermediate sums, each with a name of its own
    (more than the display names there used to be), and ∂L/∂x = 2000 · 1."""
    x = eg.var("x", (3,))
    total = x
    for _ in range(1999):
        total = total + x
    d = eg.explain(eg.sum(total), x)
    definitions = step(d, "where").text
    names = [line.split(" = ")[0] for line in definitions]
    assert len(names) == 1999 == len(set(names))
    arrays = random_arrays({"x": (3,)})
    assert_close(value(d, arrays), np.full(3, 2000.0), "by hand")

    def loss(x: Any) -> Any:
        return anp.sum(2000 * x)

    assert_close(value(d, arrays), finite_difference(loss, arrays, "x"), "FD", rtol=1e-6)
    assert_close(value(d, arrays), autograd_gradients(loss, arrays, ["x"])[0], "autograd")


def test_a_bias_broadcast_over_30_axes_sums_over_each_of_them() -> None:
    """b (3) added to X (2×1×…×1×3, rank 30): ∂L/∂b sums ∂L/∂Y over the 29 leading
    axes, with a label for each, past the display letters."""
    shape = (2,) + (1,) * 28 + (3,)
    X, b = eg.var("X", shape), eg.var("b", (3,))
    d = eg.explain(eg.sum(eg.tanh(X + b)), b)
    labels = DISPLAY[:30]
    sums = "".join(f"Σ_{label} " for label in labels[:29])
    assert f"∂L/∂b_{labels[29]} = {sums}∂L/∂Y_{','.join(labels)}" in lines(d)
    arrays = random_arrays({"X": shape, "b": (3,)})

    def loss(X: Any, b: Any) -> Any:
        return anp.sum(anp.tanh(X + b))

    by_hand = (1 - np.tanh(arrays["X"] + arrays["b"]) ** 2).reshape(-1, 3).sum(axis=0)
    assert_close(value(d, arrays), by_hand, "by hand")
    assert_close(value(d, arrays), finite_difference(loss, arrays, "b"), "FD", rtol=1e-6)
    assert_close(value(d, arrays), autograd_gradients(loss, arrays, ["b"])[0], "autograd")


def test_a_partial_derivative_that_is_a_difference_is_bracketed() -> None:
    X = eg.var("X", (3,))
    lines = eg.explain(eg.sum(eg.tanh(X)), X).text.splitlines()
    assert "   ∂L/∂X = ∂L/∂Y ⊙ (1 - Y ⊙ Y)" in lines


def test_explain_walks_through_a_generalized_einsum_of_the_derivation() -> None:
    # softmax's graph held the broadcast einsum '->a', which numpy's dialect refuses:
    # explain re-read it as a user's spec and failed.
    X = eg.var("X", (3,))
    derivation = eg.explain(eg.sum(eg.softmax(X) * X), X)
    x = np.array([0.3, -1.2, 2.0])

    def reference(X: Any) -> Any:
        shifted = anp.exp(X - anp.max(X))
        return anp.sum(shifted / anp.sum(shifted) * X)

    (want,) = autograd_gradients(reference, {"X": x}, ["X"])
    assert_close(derivation.result(X=x), want, "explain(sum(softmax(X) * X)).result")


# --- size and time on deep and wide graphs (found by the fuzz layer) ------------------------


def _tanh_chain(layers: int) -> tuple[eg.Expr, eg.Var]:
    """L = Σ tanh(W·tanh(W·…tanh(W·h))), ``layers`` deep, with W 3×3 and h a 3-vector."""
    h, W = eg.var("h", (3,)), eg.var("W", (3, 3))
    out: eg.Expr = h
    for _ in range(layers):
        out = eg.tanh(W @ out)
    return eg.sum(out), W


def test_each_step_of_a_deep_chain_writes_its_formula_in_the_derivation_s_names() -> None:
    """A layer's matrix form names the layer below (∂L/∂W = einsum('i,j->ij', ∂L/∂V, U)):
    it once wrote the layers below out in full, up to the length limit."""
    loss, W = _tanh_chain(100)
    d = eg.explain(loss, W)
    forms = [line for line in lines(d) if line.startswith("matrix form:")]
    assert len(forms) == 199  # one per layer for W, one per layer above h for its input
    assert max(len(line) for line in forms) <= 80, max(forms, key=len)
    assert "tanh" not in "".join(forms)
    rng = np.random.default_rng(1)
    arrays = {"h": rng.standard_normal(3), "W": 0.5 * rng.standard_normal((3, 3))}

    def forward(h: Any, W: Any) -> Any:
        out = h
        for _ in range(100):
            out = anp.tanh(W @ out)
        return anp.sum(out)

    assert_close(value(d, arrays), finite_difference(forward, arrays, "W"), "FD", rtol=1e-5)
    assert_close(value(d, arrays), autograd_gradients(forward, arrays, ["W"])[0], "autograd")


def test_the_text_of_a_deep_chain_grows_linearly_with_its_depth() -> None:
    """Per node of the graph a bounded amount of text: 4 times the layers, at most about 4
    times the text (it was 5.5 times, 2,200 characters a node at 200 layers)."""
    short, long = (eg.explain(*_tanh_chain(layers)).text for layers in (50, 200))
    assert len(long) <= 4.5 * len(short)
    nodes = 2 * 200 + 3  # a product and a tanh per layer, h, W and the sum
    assert len(long) <= 1000 * nodes


def _tanh_sum(terms: int) -> tuple[eg.Expr, eg.Var]:
    """L = Σ (tanh(x) + tanh(2x) + … + tanh(terms·x)) over a 4-vector x."""
    x = eg.var("x", (4,))
    total: eg.Expr = eg.tanh(x)
    for k in range(2, terms + 1):
        total = total + eg.tanh(x * k)
    return eg.sum(total), x


def _cpu_seconds(action: Callable[[], Any]) -> float:
    """The least CPU time of three runs (the others absorb the machine's noise)."""
    times = []
    for _ in range(3):
        start = time.process_time()
        action()
        times.append(time.process_time() - start)
    return min(times)


def test_explaining_a_wide_sum_takes_time_linear_in_its_terms() -> None:
    """4 times the terms, at most 8 times the time (it was quadratic: each definition
    counted every name before it)."""
    small, large = _tanh_sum(200), _tanh_sum(800)
    ratio = _cpu_seconds(lambda: eg.explain(*large).text) / _cpu_seconds(
        lambda: eg.explain(*small).text
    )
    assert ratio <= 8, ratio
    d = eg.explain(*small)
    arrays = random_arrays({"x": (4,)})

    def loss(x: Any) -> Any:
        return anp.sum(sum(anp.tanh(k * x) for k in range(1, 201)))

    assert_close(value(d, arrays), finite_difference(loss, arrays, "x"), "FD", rtol=1e-6)
    assert_close(value(d, arrays), autograd_gradients(loss, arrays, ["x"])[0], "autograd")
