"""Straight-line programs: what evaluation runs, planned once per shape signature.

For a set of outputs and the shapes and dtypes of their inputs, :func:`build` turns the
expression DAG into a list of steps, one per node whose value some output needs (nodes
only referenced for their shape are never computed). Each einsum step holds its
resolved contraction and the opt_einsum expression planned for it; each step knows which
earlier values it reads, and values are released after their last use. Running a program
is then a loop of calls, with no graph walking, hashing or planning per call.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from einsgrad.backends.base import Backend
from einsgrad.core import kinds
from einsgrad.core.ir import Expr, Meta
from einsgrad.core.lowering import Lowered, StepInput

__all__ = ["Plan", "PlanStep", "Program", "build"]


_FLOAT64: np.dtype[Any] = np.dtype(np.float64)


@dataclass(frozen=True)
class PlanStep:
    """One step of a plan: what it computes, how, and what it costs."""

    name: str
    operation: str
    path: str
    flops: int
    largest: int  # elements of the largest array the step makes (result or intermediate)
    shape: tuple[int, ...]
    slot: int = -1  # the node's position in the walk's order
    dtype: np.dtype[Any] = _FLOAT64

    @property
    def result_bytes(self) -> int:
        return math.prod(self.shape) * self.dtype.itemsize

    @property
    def largest_bytes(self) -> int:
        return self.largest * self.dtype.itemsize

    @property
    def largest_shape(self) -> tuple[int, ...]:
        """The shape of the largest array: the result's, or an intermediate's length."""
        return self.shape if self.largest == math.prod(self.shape) else (self.largest,)


@dataclass(frozen=True)
class Plan:
    """The steps of a compiled program for one shape signature, and the totals.

    ``largest_bytes`` is the largest single array (a result or an opt_einsum
    intermediate); ``peak_bytes`` the most memory live at once, as if each value were
    freed after its last reader (inputs and constants not counted, outputs kept to the
    end, a step's largest array counted while it runs); ``total_bytes`` all step results
    together.
    """

    steps: tuple[PlanStep, ...]
    flops: int
    largest_bytes: int
    peak_bytes: int
    total_bytes: int

    def largest_step(self) -> PlanStep | None:
        """The first step that makes the largest array, or None if no step makes one."""
        for step in self.steps:
            if step.largest and step.largest_bytes == self.largest_bytes:
                return step
        return None

    def __str__(self) -> str:
        lines = [f"{'step':<6} {'operation':<44} {'shape':<16} {'FLOPs':>14}  path"]
        for step in self.steps:
            lines.append(
                f"{step.name:<6} {step.operation[:44]:<44} {step.shape!s:<16} "
                f"{step.flops:>14,}  {step.path}"
            )
        lines.append(
            f"total: {self.flops:,} FLOPs, largest array {self.largest_bytes:,} bytes, "
            f"peak {self.peak_bytes:,} bytes live, {self.total_bytes:,} bytes in all"
        )
        return "\n".join(lines)


# (slot, function of the values it reads, the slots it reads, slots to free afterwards)
Step = tuple[int, Callable[..., Any], tuple[int, ...], tuple[int, ...]]

#: Programs whose arrays are all smaller than this keep every value to the end: freeing
#: saves no memory worth the bookkeeping, which costs more than a tiny step's arithmetic.
RELEASE_BYTES = 1 << 16


@dataclass(frozen=True)
class Program:
    """Steps and constants in slots of one value list; see :meth:`run`.

    ``template`` is the value list before a call: constants in their slots, None
    elsewhere. Each step calls its function on the values of the slots it reads (arrays
    only, positionally) and stores the result in its slot.
    """

    steps: tuple[Step, ...]
    template: tuple[Any, ...]
    variables: tuple[int, ...]  # the slot of each input, in the order run() takes them
    outputs: tuple[int, ...]
    plan: Plan

    def run(self, inputs: Sequence[Any]) -> list[Any]:
        """The outputs' values, from the inputs' arrays in the order of ``variables``."""
        values = list(self.template)
        for slot, value in zip(self.variables, inputs, strict=True):
            values[slot] = value
        # The loop every call runs: one function call per step, the common arities
        # spelled out so no argument tuple is built.
        for slot, function, reads, freed in self.steps:
            if len(reads) == 2:
                values[slot] = function(values[reads[0]], values[reads[1]])
            elif len(reads) == 1:
                values[slot] = function(values[reads[0]])
            else:
                values[slot] = function(*[values[r] for r in reads])
            if freed:
                for old in freed:
                    values[old] = None
        return [values[slot] for slot in self.outputs]


def build(
    order: Sequence[Expr],
    index: dict[Expr, int],
    needs_value: frozenset[Expr],
    metas: Sequence[Meta],
    inputs: Sequence[Expr],
    outputs: Sequence[Expr],
    backend: Backend,
    optimize: str = "auto",
) -> Program:
    """The program computing ``outputs`` for the shapes in ``metas`` (see module doc).

    ``inputs`` are the variables, in the order :meth:`Program.run` takes their arrays.
    Each node some output needs is lowered by its kind's ``lower`` rule: to an input
    (bound by the caller), to a value known now (computed once, here, not per call), or
    to a step.
    """
    computed: list[tuple[int, Callable[..., Any], tuple[int, ...]]] = []
    template: list[Any] = [None] * len(order)
    plan_steps: list[PlanStep] = []
    for slot, node in enumerate(order):
        if node not in needs_value:
            continue
        meta = metas[slot]
        reads = tuple(index[c] for c in node.children)
        step_input = StepInput(
            meta,
            [metas[r] for r in reads],
            [metas[index[r]] for r in node.references],
            reads,
            [template[r] for r in reads],
            backend,
            optimize,
        )
        lowered: Lowered = kinds.rule(node, "lower")(node, step_input)
        if lowered.is_input:
            continue
        dtype = meta.dtype or _FLOAT64
        if lowered.function is None:
            template[slot] = lowered.value
            if lowered.listed:
                plan_steps.append(
                    PlanStep(f"v{slot}", lowered.operation, "", 0, 0, meta.shape, slot, dtype)
                )
            continue
        computed.append((slot, lowered.function, lowered.reads))
        largest = max(lowered.largest, math.prod(meta.shape))
        plan_steps.append(
            PlanStep(
                f"v{slot}",
                lowered.operation,
                lowered.path,
                lowered.flops,
                largest,
                meta.shape,
                slot,
                dtype,
            )
        )
    program_inputs = tuple(index[variable] for variable in inputs)
    return _assemble(index, program_inputs, outputs, computed, template, plan_steps)


def _assemble(
    index: dict[Expr, int],
    inputs: tuple[int, ...],
    outputs: Sequence[Expr],
    computed: list[tuple[int, Callable[..., Any], tuple[int, ...]]],
    template: list[Any],
    plan_steps: list[PlanStep],
) -> Program:
    """The program from its lowered steps: totals, and which values to free when."""
    kept = {index[out] for out in outputs}
    last_use = _last_uses(computed)
    plan = _plan(tuple(plan_steps), computed, last_use, kept)
    release = _release(computed, last_use, kept, plan.largest_bytes)
    steps = tuple(
        (slot, function, reads, freed)
        for (slot, function, reads), freed in zip(computed, release, strict=True)
    )
    return Program(
        steps,
        tuple(template),
        inputs,
        tuple(index[out] for out in outputs),
        plan,
    )


Computed = Sequence[tuple[int, Callable[..., Any], tuple[int, ...]]]


def _last_uses(computed: Computed) -> dict[int, int]:
    """For each slot some step reads, the position of the last step that reads it."""
    last_use: dict[int, int] = {}
    for position, (_, _, reads) in enumerate(computed):
        for read in reads:
            last_use[read] = position
    return last_use


def _plan(
    steps: tuple[PlanStep, ...], computed: Computed, last_use: dict[int, int], kept: set[int]
) -> Plan:
    """The plan's totals: FLOPs, the largest array, and the live and total memory.

    Walks the steps in order with each value freed after its last reader, whether or
    not the program frees it (see RELEASE_BYTES): the peak is what the schedule needs.
    """
    by_slot = {step.slot: step for step in steps}
    dying: list[list[int]] = [[] for _ in computed]
    for position, (slot, _, _) in enumerate(computed):
        if slot not in kept:
            dying[last_use.get(slot, position)].append(slot)
    live = peak = total = 0
    for position, (slot, _, _) in enumerate(computed):
        step = by_slot[slot]
        peak = max(peak, live + max(step.result_bytes, step.largest_bytes))
        live += step.result_bytes
        total += step.result_bytes
        live -= sum(by_slot[dead].result_bytes for dead in dying[position])
    flops = sum(step.flops for step in steps)
    largest = max((step.largest_bytes for step in steps), default=0)
    return Plan(steps, flops, largest, peak, total)


def _release(
    computed: Computed, last_use: dict[int, int], kept: set[int], largest_bytes: int
) -> list[tuple[int, ...]]:
    """For each step, the values to free after it: those it reads for the last time."""
    if largest_bytes < RELEASE_BYTES:
        return [() for _ in computed]
    release: list[list[int]] = [[] for _ in computed]
    for read, position in last_use.items():
        if read not in kept:
            release[position].append(read)
    return [tuple(freed) for freed in release]
