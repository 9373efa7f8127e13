"""Deciding whether two expressions are equal: symbolically, else by random testing."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from einsgrad.core.errors import EinsgradError, ShapeError
from einsgrad.core.ir import Var, toposort
from einsgrad.graph.ops import as_expr
from einsgrad.passes.autodiff import variables_by_name
from einsgrad.passes.evaluate import evaluate
from einsgrad.passes.simplify import simplify

__all__ = ["Equivalence", "equivalent"]


@dataclass(frozen=True)
class Equivalence:
    """The verdict of :func:`equivalent`. True in a boolean context when they are equal.

    ``method`` is ``"symbolic"`` (the canonical forms are the same node, so they are equal
    for every input) or ``"numeric"`` (evaluated on random inputs: equal there, or a
    counterexample); ``reason`` says what was found.
    """

    equal: bool
    method: Literal["symbolic", "numeric"]
    reason: str

    def __bool__(self) -> bool:
        return self.equal

    def __str__(self) -> str:
        return f"{'equivalent' if self.equal else 'not equivalent'} ({self.method}): {self.reason}"


def _random_input(variable: Var, shape: Sequence[int], rng: np.random.Generator) -> Any:
    array = rng.uniform(0.5, 1.5, size=tuple(shape)) * rng.choice([-1.0, 1.0], size=tuple(shape))
    if variable.structure == "symmetric":
        array = (array + array.T) / 2
    elif variable.structure == "diagonal":
        array = np.diag(np.diag(array))
    return array.astype(variable.dtype or np.float64)


def equivalent(
    first: Any,
    second: Any,
    *,
    shapes: Mapping[str, Sequence[int]] | None = None,
    trials: int = 3,
    rtol: float = 1e-7,
    atol: float = 1e-9,
    seed: int = 0,
) -> Equivalence:
    """Whether ``first`` and ``second`` are the same function of their variables.

    First symbolically: both are simplified to canonical form, and the same node means
    equal for every input (label names, operand order, transpositions and deltas do not
    matter). Otherwise both are evaluated on ``trials`` random inputs (shapes from the
    variables or ``shapes``); a difference beyond ``rtol``/``atol`` is a counterexample,
    agreement is reported as numeric evidence, not proof.
    """
    a, b = as_expr(first), as_expr(second)
    if simplify(a) is simplify(b):
        return Equivalence(True, "symbolic", "their canonical forms are the same expression")
    if a.shape is not None and b.shape is not None and a.shape != b.shape:
        return Equivalence(False, "symbolic", f"their shapes differ: {a.shape} and {b.shape}")
    variables = variables_by_name(toposort([a, b]))
    given = dict(shapes or {})
    rng = np.random.default_rng(seed)
    worst = 0.0
    for trial in range(max(1, trials)):
        arrays = {}
        for name, variable in variables.items():
            shape = variable.shape if variable.shape is not None else given.get(name)
            if shape is None:
                hint = f"shapes={{{name!r}: ...}}"
                raise ShapeError(
                    f"equivalent needs a shape for {name!r}: declare it or pass {hint}"
                )
            arrays[name] = _random_input(variable, shape, rng)
        try:
            with np.errstate(all="ignore"):
                left, right = evaluate([a, b], arrays)
        except EinsgradError as error:
            return Equivalence(False, "numeric", f"they could not both be evaluated: {error}")
        if left.shape != right.shape:
            return Equivalence(
                False, "numeric", f"their shapes differ: {left.shape} and {right.shape}"
            )
        difference = np.abs(left - right)
        both_nan = np.isnan(left) & np.isnan(right)
        tolerance = atol + rtol * np.abs(right)
        bad = (difference > tolerance) & ~both_nan | (np.isnan(left) ^ np.isnan(right))
        if np.any(bad):
            where = tuple(int(i) for i in np.argwhere(bad)[0])
            return Equivalence(
                False,
                "numeric",
                f"on random input {trial + 1} they differ at index {where}: "
                f"{left[where] if left.ndim else left} vs {right[where] if right.ndim else right}",
            )
        finite = np.isfinite(difference)
        if np.any(finite):
            worst = max(worst, float(np.max(difference[finite])))
    return Equivalence(
        True,
        "numeric",
        f"equal on {max(1, trials)} random inputs (largest difference {worst:.2g}); "
        "not proven symbolically",
    )
