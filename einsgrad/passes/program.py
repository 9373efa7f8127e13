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

__all__ = ["LiveArray", "Plan", "PlanStep", "Program", "build"]


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
class LiveArray:
    """An array live at a plan's peak: a step's ``result``, the largest ``intermediate``
    of the step running then, or the ``copy`` handed out for an output that is an input,
    a constant, or an output given twice."""

    slot: int  # the node's position in the walk's order
    shape: tuple[int, ...]
    dtype: np.dtype[Any]
    nbytes: int
    role: str


@dataclass(frozen=True)
class Plan:
    """The steps of a compiled program for one shape signature, and the totals.

    ``largest_bytes`` is the largest single array (a result or an opt_einsum
    intermediate); ``peak_bytes`` the most memory live at once as the program runs
    (inputs and constants not counted; each value freed after its last reader, or kept
    to the end in a program of arrays too small to free; outputs kept to the end and
    counted again where handing them out copies them; a step's largest intermediate
    counted beside its result while it runs; a step whose result is a view counted as
    if it allocated); ``at_peak`` the arrays live then, largest first;
    ``total_bytes`` all step results together. The memory guard compares ``peak_bytes``
    with the limit.
    """

    steps: tuple[PlanStep, ...]
    flops: int
    largest_bytes: int
    peak_bytes: int
    total_bytes: int
    at_peak: tuple[LiveArray, ...] = ()

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
    copies = _handed_copies(outputs, index, metas, {slot for slot, _, _ in computed})
    return _assemble(index, program_inputs, outputs, computed, template, plan_steps, copies)


def _handed_copies(
    outputs: Sequence[Expr], index: dict[Expr, int], metas: Sequence[Meta], computed: set[int]
) -> tuple[LiveArray, ...]:
    """The copies handing out the outputs makes: of each output that is not a step's own
    result (an input, a constant) or that repeats an earlier output."""
    copies: list[LiveArray] = []
    seen: set[int] = set()
    for out in outputs:
        slot = index[out]
        if slot not in computed or slot in seen:
            meta = metas[slot]
            dtype = meta.dtype or _FLOAT64
            size = math.prod(meta.shape) * dtype.itemsize
            copies.append(LiveArray(slot, meta.shape, dtype, size, "copy"))
        seen.add(slot)
    return tuple(copies)


def _assemble(
    index: dict[Expr, int],
    inputs: tuple[int, ...],
    outputs: Sequence[Expr],
    computed: list[tuple[int, Callable[..., Any], tuple[int, ...]]],
    template: list[Any],
    plan_steps: list[PlanStep],
    copies: tuple[LiveArray, ...],
) -> Program:
    """The program from its lowered steps: totals, and which values to free when."""
    kept = {index[out] for out in outputs}
    last_use = _last_uses(computed)
    largest = max((step.largest_bytes for step in plan_steps), default=0)
    if largest < RELEASE_BYTES:
        release: list[tuple[int, ...]] = [() for _ in computed]
        dying: list[list[int]] = [[] for _ in computed]
    else:
        release = _release(computed, last_use, kept)
        dying = _dying(computed, last_use, kept)
    # The plan counts what the program does: kept to the end, or freed after last use.
    plan = _plan(tuple(plan_steps), computed, dying, copies)
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


def _dying(computed: Computed, last_use: dict[int, int], kept: set[int]) -> list[list[int]]:
    """For each step, the values no later step reads: freed once it has run, unless an
    output (in ``kept``) needs them to the end."""
    dying: list[list[int]] = [[] for _ in computed]
    for position, (slot, _, _) in enumerate(computed):
        if slot not in kept:
            dying[last_use.get(slot, position)].append(slot)
    return dying


def _intermediate_bytes(step: PlanStep) -> int:
    """The bytes of a step's largest array besides its result, while the step runs.

    opt_einsum's largest intermediate of a one-contraction step is its result; a larger
    one belongs to a path of several contractions and is live beside the result.
    """
    return step.largest_bytes if step.largest_bytes > step.result_bytes else 0


def _plan(
    steps: tuple[PlanStep, ...],
    computed: Computed,
    dying: list[list[int]],
    copies: tuple[LiveArray, ...],
) -> Plan:
    """The plan's totals: FLOPs, the largest array, and the live and total memory.

    Walks the steps in order, each value freed at the step ``dying`` lists it (after its
    last reader, where the program frees values: see RELEASE_BYTES). The outputs' copies
    are made after the last step, when every output is live.
    """
    by_slot = {step.slot: step for step in steps}
    live = peak = total = 0
    peak_position = -1
    for position, (slot, _, _) in enumerate(computed):
        step = by_slot[slot]
        running = live + step.result_bytes + _intermediate_bytes(step)
        if running > peak:
            peak, peak_position = running, position
        live += step.result_bytes
        total += step.result_bytes
        live -= sum(by_slot[dead].result_bytes for dead in dying[position])
    handed = live + sum(copy.nbytes for copy in copies)
    if handed > peak:
        peak, peak_position = handed, len(computed)
    at_peak = _live_at(peak_position, by_slot, computed, dying, copies)
    flops = sum(step.flops for step in steps)
    largest = max((step.largest_bytes for step in steps), default=0)
    return Plan(steps, flops, largest, peak, total, at_peak)


def _live_at(
    position: int,
    by_slot: dict[int, PlanStep],
    computed: Computed,
    dying: list[list[int]],
    copies: tuple[LiveArray, ...],
) -> tuple[LiveArray, ...]:
    """The arrays live while step ``position`` runs (after the last step: with the
    outputs' copies), largest first. A second walk, so the first keeps no live set."""
    if position < 0:
        return ()
    live: dict[int, PlanStep] = {}
    for slot, _, _ in computed[:position]:
        live[slot] = by_slot[slot]
    for dead in (slot for before in dying[:position] for slot in before):
        del live[dead]
    arrays = [
        LiveArray(slot, step.shape, step.dtype, step.result_bytes, "result")
        for slot, step in live.items()
    ]
    if position == len(computed):
        arrays += copies
    else:
        step = by_slot[computed[position][0]]
        arrays.append(LiveArray(step.slot, step.shape, step.dtype, step.result_bytes, "result"))
        if _intermediate_bytes(step):
            length = (step.largest,)
            arrays.append(
                LiveArray(step.slot, length, step.dtype, step.largest_bytes, "intermediate")
            )
    return tuple(sorted(arrays, key=lambda array: -array.nbytes))


def _release(computed: Computed, last_use: dict[int, int], kept: set[int]) -> list[tuple[int, ...]]:
    """For each step, the values to free after it: those it reads for the last time."""
    release: list[list[int]] = [[] for _ in computed]
    for read, position in last_use.items():
        if read not in kept:
            release[position].append(read)
    return [tuple(freed) for freed in release]
