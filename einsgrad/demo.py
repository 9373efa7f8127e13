"""``einsgrad demo``: the linear-layer derivations of the seed notes, derived and checked.

Derives the backward einsums of ``Y = X W`` (X 2×3, W 3×5, as in the notes), then the
gradients of a loss through a bias, a ReLU and a batch mean, prints each rule in index
notation and as the einsum einsgrad runs, and checks every gradient against central
finite differences. Returns 0 when every check passes.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from einsgrad.core.ir import Expr
from einsgrad.graph import ops
from einsgrad.passes.autodiff import grad
from einsgrad.passes.evaluate import evaluate
from einsgrad.rules.einsum import backward
from einsgrad.rules.elementwise import relu

TOLERANCE = 1e-6


def _central_difference(
    loss: Callable[[np.ndarray], float], at: np.ndarray, step: float = 1e-6
) -> np.ndarray:
    result = np.zeros_like(at)
    for index in np.ndindex(at.shape):
        shifted = at.copy()
        shifted[index] += step
        up = loss(shifted)
        shifted[index] -= 2 * step
        result[index] = (up - loss(shifted)) / (2 * step)
    return result


def _shape(shape: tuple[int, ...]) -> str:
    return "×".join(map(str, shape)) if shape else "scalar"


def run(print_: Callable[[str], None] = print) -> int:
    """Print the demo; return the number of failed numeric checks."""
    rng = np.random.default_rng(0)
    x, w, b = rng.normal(size=(2, 3)), rng.normal(size=(3, 5)), rng.normal(size=5)

    print_("einsgrad demo: the linear layer of the seed notes, Y = X W with X 2×3 and W 3×5\n")
    print_("1. The rule engine on the bare einsum 'bi,ij->bj' (labels permuted, nothing else):")
    for k, name in enumerate(["X", "W"]):
        rule = backward("bi,ij->bj", wrt=k, names=["X", "W"], output="Y")
        print_(f"   d{name}: {rule.index_form()}")
        print_(f"       einsum {rule.spec!r}  (other operand, then dY)")
    dy = _shape((2, 5))
    print_(f"   shapes: dW is {_shape(w.shape)} = Xᵀ ({_shape(x.shape[::-1])}) · dY ({dy}),")
    print_(f"           dX is {_shape(x.shape)} = dY ({dy}) · Wᵀ ({_shape(w.shape[::-1])})\n")

    X, W, B = ops.var("X", x.shape), ops.var("W", w.shape), ops.var("b", b.shape)
    Y = ops.einsum("bi,ij->bj", X, W) + B
    # Seed 001: a per-example loss l_b = Σ_j relu(Y_bj)², averaged over the batch (1/B).
    loss = ops.mean(ops.sum(relu(Y) ** 2, axis=1))
    print_("2. A loss through a bias, a ReLU and the batch mean (seed 001's 1/B):")
    print_(f"   L = {loss}\n")
    gradients = grad(loss, [W, X, B])
    arrays = {"X": x, "W": w, "b": b}
    values = evaluate(list(gradients), arrays)

    def loss_at(name: str) -> Callable[[np.ndarray], float]:
        def value(at: np.ndarray) -> float:
            return float(evaluate(loss, {**arrays, name: at}))

        return value

    failures = 0
    print_("3. The derived gradients, as the programs einsgrad runs, checked numerically:")
    for variable, derived, value in zip([W, X, B], gradients, values, strict=True):
        expected = _central_difference(loss_at(variable.name), arrays[variable.name])
        error = float(np.max(np.abs(value - expected)))
        ok = error < TOLERANCE
        failures += not ok
        print_(f"\n   dL/d{variable.name}  (shape {_shape(value.shape)}, same as {variable.name}):")
        print_("     " + str(derived).replace("\n", "\n     "))
        print_(
            f"     max |einsgrad − finite differences| = {error:.2e}  {'OK' if ok else 'FAILED'}"
        )
    print_("\nThe bias gradient sums dL/dY over the batch rows ('ab->b'), and the 1/B = 1/2 of the")
    print_("batch mean is the constant factor that every gradient carries.")
    print_(f"\n{'all checks passed' if failures == 0 else f'{failures} check(s) FAILED'}")
    return failures


def main() -> int:
    """Entry point of ``einsgrad demo``: exit status 0 when every check passes."""
    return 1 if run() else 0


__all__ = ["Expr", "main", "run"]
