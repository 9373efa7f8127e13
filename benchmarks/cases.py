"""The registry of benchmark cases.

A *family* (``quadratic-hessian``) is a factory from a problem size to a :class:`Case`,
registered with the sizes its quick and full modes run. A case carries einsgrad's derivation
(run once, outside the timed loop, then compiled), the competitors and the performance goals
that hold at its size.
"""

from __future__ import annotations

import fnmatch
import importlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

Arrays = Mapping[str, np.ndarray]
Thunk = Callable[[], Any]

# The modules whose import registers case families.
CASE_MODULES = ("benchmarks.gradients", "benchmarks.hessians", "benchmarks.scaling")


@dataclass(frozen=True)
class Impl:
    """One competitor: ``prepare(arrays)`` does the setup and returns the call to time."""

    name: str  # the column: numpy, jax, torch, autograd
    label: str  # what exactly runs, e.g. "jax.jit(jax.hessian(f))"
    prepare: Callable[[Arrays], Thunk]
    skip: str | None = None  # a reason not to run it at this size


@dataclass(frozen=True)
class Goal:
    """A performance goal, of one of four kinds:

    * ``"faster"``: ``competitor``'s median is at least ``ratio`` × einsgrad's; the measured
      value is competitor / einsgrad (``Goal("jax", 30.0, "≥ 30× faster than jax")``);
    * ``"at-most"``: einsgrad's median is at most ``ratio`` × ``competitor``'s; the measured
      value is einsgrad / competitor (``at_most("numpy", 1.10, ...)``);
    * ``"derivation"``: einsgrad's derivation + compilation takes at most ``ratio`` seconds
      (``derivation_within(0.05, ...)``; ``competitor`` is unused);
    * ``"growth"``: einsgrad's median grows at most as ``scale ** ratio`` from the family's
      smallest size measured in the run to this one; the measured value is the exponent
      ``log(t / t₀) / log(scale / scale₀)`` (``growth_within(1.2, ...)``; ``competitor`` is
      unused, and at the smallest size there is nothing to measure).
    """

    competitor: str
    ratio: float
    text: str
    kind: str = "faster"


def at_most(competitor: str, factor: float, text: str) -> Goal:
    """einsgrad's median ≤ ``factor`` × ``competitor``'s (measured: einsgrad / competitor)."""
    return Goal(competitor, factor, text, kind="at-most")


def derivation_within(seconds: float, text: str) -> Goal:
    """einsgrad's derivation + compilation (done once) takes at most ``seconds``."""
    return Goal("derivation", seconds, text, kind="derivation")


def growth_within(exponent: float, text: str) -> Goal:
    """einsgrad's median grows at most as ``scale ** exponent`` across the family's sizes."""
    return Goal("growth", exponent, text, kind="growth")


@dataclass(frozen=True)
class Case:
    """A problem at one size: inputs, einsgrad's derivation, competitors and goals."""

    name: str
    group: str  # the results file: benchmarks/results/<group>-<mode>.json
    size: str
    description: str
    inputs: Callable[[np.random.Generator], dict[str, np.ndarray]]
    # Builds einsgrad's expression, or a list/tuple of them (gradients); the harness
    # compiles it with eg.compile and times f(**arrays). An einsgrad Compiled passes as is.
    # With timed="derivation", derive() itself is the timed call (see below).
    derive: Callable[[], Any]
    competitors: tuple[Impl, ...]
    goals: tuple[Goal, ...] = ()
    params: dict[str, Any] = field(default_factory=dict)
    # The problem size on the x axis of the family's plot: (axis label, value).
    scale: tuple[str, float] | None = None
    rtol: float = 1e-7
    atol: float = 1e-10
    # What einsgrad's timed call is: "call", f(**arrays) of the compiled derivation; or
    # "derivation", derive() itself (for cases about how long deriving takes).
    timed: str = "call"
    # einsgrad's column label for a timed derivation (what derive() runs).
    label: str | None = None
    # The size in units the report divides einsgrad's time by: ("node", 3204) reports the
    # time per node of the differentiated expression.
    units: tuple[str, int] | None = None


@dataclass(frozen=True)
class Family:
    """A case factory with the sizes each mode runs."""

    name: str
    build: Callable[[Any], Case]
    quick: tuple[Any, ...]
    full: tuple[Any, ...]


_FAMILIES: dict[str, Family] = {}


def register(
    name: str, *, quick: Sequence[Any], full: Sequence[Any]
) -> Callable[[Callable[[Any], Case]], Callable[[Any], Case]]:
    """Register a case factory under ``name`` with its quick-mode and full-mode sizes."""

    def decorate(build: Callable[[Any], Case]) -> Callable[[Any], Case]:
        if name in _FAMILIES:
            raise ValueError(f"benchmark case {name!r} is registered twice")
        _FAMILIES[name] = Family(name, build, tuple(quick), tuple(full))
        return build

    return decorate


def families() -> dict[str, Family]:
    """Every registered family, by name, in registration order."""
    for module in CASE_MODULES:
        importlib.import_module(module)
    return dict(_FAMILIES)


def select(mode: str, only: Sequence[str] = ()) -> list[Case]:
    """The cases of ``mode`` ("quick" or "full"), restricted to names matching ``only``.

    ``only`` holds case names or shell patterns (``*-hessian``); a pattern matching nothing
    is an error.
    """
    known = families()
    for pattern in only:
        if not fnmatch.filter(known, pattern):
            raise KeyError(f"no benchmark case matches {pattern!r}; cases: {', '.join(known)}")
    chosen = [
        family
        for name, family in known.items()
        if not only or any(fnmatch.fnmatchcase(name, pattern) for pattern in only)
    ]
    return [family.build(size) for family in chosen for size in getattr(family, mode)]
