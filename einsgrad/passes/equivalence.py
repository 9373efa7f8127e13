"""Deciding whether two expressions are equal: symbolically, else by random testing."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from einsgrad.core.errors import EinsgradError, MemoryLimitError, ShapeError
from einsgrad.core.ir import Expr, Var, toposort
from einsgrad.core.limits import format_bytes, get_memory_limit, guard
from einsgrad.graph.ops import as_expr
from einsgrad.passes.autodiff import variables_by_name
from einsgrad.passes.evaluate import evaluate, plan
from einsgrad.passes.simplify import simplify

__all__ = ["Equivalence", "equivalent", "guard_random_inputs"]

Shape = tuple[int, ...]

#: What to do about a random input over the memory limit.
_ADVICE = (
    "Nothing was allocated. Test with smaller shapes (shapes=... for shapeless variables), "
    "or raise the limit with einsgrad.memory_limit(...)."
)


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


def guard_random_inputs(
    outputs: Sequence[Expr], variables: Mapping[str, tuple[Var, Shape]]
) -> None:
    """MemoryLimitError, before anything is allocated, if testing ``outputs`` on random
    values of ``variables`` (each with the shape it is tested at) would exceed the limit.

    Each value is drawn in float64 and counted at that size. Checked in turn: every value
    alone (the error names it and its shape), all of them together, and all of them with
    the evaluation's largest array and its peak of live memory (from its plan).
    """
    limit = get_memory_limit()
    if limit is None:
        return
    total = 0
    for name, (_, shape) in variables.items():
        guard(f"the random test value of {name!r}", shape, np.float64, limit, _ADVICE)
        total += int(np.prod(shape, dtype=np.float64)) * 8
    shapes = {name: shape for name, (_, shape) in variables.items()}
    dtype = np.result_type(np.float64, *(v.dtype or np.float64 for v, _ in variables.values()))
    try:
        needs = plan(tuple(outputs), shapes, dtype, "auto")
    except MemoryLimitError:
        raise
    except EinsgradError:
        return  # evaluating will say what is wrong, and that is the verdict
    largest = max(total, total + needs.peak_bytes, needs.largest_bytes)
    if largest > limit:
        tested = ", ".join(f"{name} {shape}" for name, shape in shapes.items())
        raise MemoryLimitError(
            f"testing on random values of {tested} would need {format_bytes(largest)} "
            f"({format_bytes(total)} of random values, then {format_bytes(needs.peak_bytes)} "
            f"to evaluate), over the memory limit of {format_bytes(limit)}. {_ADVICE}"
        )


def _random_input(variable: Var, shape: Shape, rng: np.random.Generator) -> Any:
    """Values of magnitude 0.5 to 1.5 and random sign, with the variable's structure.

    Made in place, so no temporary array of the value's size is needed beyond one bool
    mask (and the transpose's sum for a symmetric variable).
    """
    array = rng.uniform(0.5, 1.5, size=shape)
    np.negative(array, out=array, where=rng.integers(0, 2, size=shape, dtype=np.bool_))
    if variable.structure == "symmetric":
        array = array + array.T
        array *= 0.5
    elif variable.structure == "diagonal":
        array = np.diag(np.diag(array))
    return array.astype(variable.dtype or np.float64, copy=False)


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
    tested = _tested_shapes(variables_by_name(toposort([a, b])), dict(shapes or {}))
    guard_random_inputs((a, b), tested)
    rng = np.random.default_rng(seed)
    worst = 0.0
    for trial in range(max(1, trials)):
        arrays = {name: _random_input(v, shape, rng) for name, (v, shape) in tested.items()}
        try:
            with np.errstate(all="ignore"):
                left, right = evaluate([a, b], arrays)
        except MemoryLimitError as error:
            # The limit says nothing about whether they are equal, so it is no verdict.
            raise MemoryLimitError(
                f"{error} (equivalent had made random test values for "
                f"{', '.join(tested)}, which are freed again)"
            ) from None
        except EinsgradError as error:
            return Equivalence(False, "numeric", f"they could not both be evaluated: {error}")
        del arrays
        difference = _compare(left, right, trial, rtol, atol)
        if isinstance(difference, Equivalence):
            return difference
        worst = max(worst, difference)
    return Equivalence(
        True,
        "numeric",
        f"equal on {max(1, trials)} random inputs (largest difference {worst:.2g}); "
        "not proven symbolically",
    )


def _tested_shapes(
    variables: Mapping[str, Var], given: Mapping[str, Sequence[int]]
) -> dict[str, tuple[Var, Shape]]:
    """Each variable with the shape it is tested at: its own, else the one ``given``."""
    tested: dict[str, tuple[Var, Shape]] = {}
    for name, variable in variables.items():
        shape = variable.shape if variable.shape is not None else given.get(name)
        if shape is None:
            hint = f"shapes={{{name!r}: ...}}"
            raise ShapeError(f"equivalent needs a shape for {name!r}: declare it or pass {hint}")
        tested[name] = (variable, tuple(shape))
    return tested


def _compare(left: Any, right: Any, trial: int, rtol: float, atol: float) -> Equivalence | float:
    """A counterexample verdict if ``left`` and ``right`` differ, else their largest finite
    difference. NaN matches only NaN."""
    if left.shape != right.shape:
        return Equivalence(False, "numeric", f"their shapes differ: {left.shape} and {right.shape}")
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
    return float(np.max(difference[finite])) if np.any(finite) else 0.0
