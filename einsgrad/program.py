"""Straight-line programs: what evaluation runs, planned once per shape signature.

For a set of outputs and the shapes and dtypes of their inputs, :func:`build` turns the
expression DAG into a list of steps, one per node whose value some output needs (nodes
only referenced for their shape are never computed). Each einsum step holds its
resolved contraction and the opt_einsum expression planned for it; each step knows which
earlier values it reads, and values are released after their last use. Running a program
is then a loop of calls, with no graph walking, hashing or planning per call.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from .backend import Backend, contraction, plan_info
from .ir import Const, Einsum, Expr, Map, Meta, Reduce, Seed, Size, Var

__all__ = ["Plan", "PlanStep", "Program", "array_operands", "build"]


@dataclass(frozen=True)
class PlanStep:
    """One step of a plan, for display: what it computes, how, and what it costs."""

    name: str
    operation: str
    path: str
    flops: int
    largest: int  # elements of the largest array the step makes (result or intermediate)
    shape: tuple[int, ...]


@dataclass(frozen=True)
class Plan:
    """The steps of a compiled program for one shape signature, and the totals."""

    steps: tuple[PlanStep, ...]
    flops: int
    largest_bytes: int

    def __str__(self) -> str:
        lines = [f"{'step':<6} {'operation':<44} {'shape':<16} {'FLOPs':>14}  path"]
        for step in self.steps:
            lines.append(
                f"{step.name:<6} {step.operation[:44]:<44} {step.shape!s:<16} "
                f"{step.flops:>14,}  {step.path}"
            )
        lines.append(f"total: {self.flops:,} FLOPs, largest array {self.largest_bytes:,} bytes")
        return "\n".join(lines)


Step = tuple[int, Callable[[list[Any]], Any], tuple[int, ...]]


@dataclass(frozen=True)
class Program:
    """Steps ``(slot, function of the value list, slots it reads)`` and what to free when."""

    steps: tuple[Step, ...]
    variables: tuple[tuple[int, str], ...]
    outputs: tuple[int, ...]
    release: tuple[tuple[int, ...], ...]
    plan: Plan
    size: int

    def run(self, bound: dict[str, Any]) -> list[Any]:
        values: list[Any] = [None] * self.size
        for slot, name in self.variables:
            values[slot] = bound[name]
        for (slot, function, _), freed in zip(self.steps, self.release, strict=True):
            values[slot] = function(values)
            for old in freed:
                values[old] = None
        return [values[slot] for slot in self.outputs]


def array_operands(node: Einsum, metas: Sequence[Meta]) -> tuple[int, ...]:
    """Positions of ``node``'s operands that are arrays (the rest are plain numbers)."""
    return tuple(k for k, op in enumerate(node.operands) if not _is_number(op, metas[k]))


def _is_number(node: Expr, meta: Meta) -> bool:
    """True for an operand whose value is a plain Python number (weakly typed)."""
    if isinstance(node, Const):
        return bool(node.is_scalar)
    return isinstance(node, Size | Seed) or (meta.shape == () and meta.dtype is None)


def build(
    order: Sequence[Expr],
    index: dict[Expr, int],
    needs_value: frozenset[Expr],
    metas: Sequence[Meta],
    outputs: Sequence[Expr],
    backend: Backend,
    optimize: str = "auto",
) -> Program:
    """The program computing ``outputs`` for the shapes in ``metas`` (see module doc)."""
    steps: list[Step] = []
    plan_steps: list[PlanStep] = []
    variables: list[tuple[int, str]] = []
    flops_total = 0
    largest_bytes = 0
    for slot, node in enumerate(order):
        if node not in needs_value:
            continue
        if isinstance(node, Var):
            variables.append((slot, node.name))
            continue
        meta = metas[slot]
        reads = tuple(index[c] for c in node.children)
        function, operation, path, flops, largest = _step(
            node, reads, metas, index, backend, optimize
        )
        steps.append((slot, function, reads))
        size = int(np.prod(meta.shape, dtype=np.int64)) if meta.shape else 1
        largest = max(largest, size)
        itemsize = (meta.dtype or np.dtype(np.float64)).itemsize
        largest_bytes = max(largest_bytes, largest * itemsize)
        flops_total += flops
        if not isinstance(node, Const):
            plan_steps.append(PlanStep(f"v{slot}", operation, path, flops, largest, meta.shape))
    # Release each value after the last step that reads it.
    last_use: dict[int, int] = {}
    for position, (_, _, reads) in enumerate(steps):
        for read in reads:
            last_use[read] = position
    release: list[list[int]] = [[] for _ in steps]
    kept = {index[out] for out in outputs}
    for read, position in last_use.items():
        if read not in kept:
            release[position].append(read)
    plan = Plan(tuple(plan_steps), flops_total, largest_bytes)
    return Program(
        tuple(steps),
        tuple(variables),
        tuple(index[out] for out in outputs),
        tuple(tuple(r) for r in release),
        plan,
        len(order),
    )


def _step(
    node: Expr,
    reads: tuple[int, ...],
    metas: Sequence[Meta],
    index: dict[Expr, int],
    backend: Backend,
    optimize: str,
) -> tuple[Callable[[list[Any]], Any], str, str, int, int]:
    """The function computing ``node`` from the value list, and its plan entry."""
    meta = metas[index[node]]
    if isinstance(node, Const):
        value = node.compute(backend, [], meta, [])
        return (lambda values: value), "constant", "", 0, 0
    if isinstance(node, Size | Seed):
        refs = [metas[index[r]] for r in node.references]
        value = node.compute(backend, [], meta, refs)
        return (lambda values: value), node.kind, "", 0, 0
    if isinstance(node, Map):
        forward, xp = node.op.forward, backend.xp
        size = int(np.prod(meta.shape, dtype=np.int64)) if meta.shape else 1
        if len(reads) == 1:
            (a,) = reads
            return (lambda values: forward(xp, values[a])), node.op.name, "", size, 0
        if len(reads) == 2:
            a, b = reads
            return (lambda values: forward(xp, values[a], values[b])), node.op.name, "", size, 0
        return (lambda values: forward(xp, *(values[r] for r in reads))), node.op.name, "", size, 0
    if isinstance(node, Reduce):
        (a,) = reads
        axes = node.concrete_axes(len(metas[a].shape))
        forward, xp = node.op.forward, backend.xp
        size = int(np.prod(metas[a].shape, dtype=np.int64)) if metas[a].shape else 1
        return (
            (lambda values: forward(xp, values[a], axes)),
            f"{node.op.name} axis={axes}",
            "",
            3 * size,
            0,
        )
    if isinstance(node, Einsum):
        return _einsum_step(node, reads, metas, index, backend, optimize)
    raise TypeError(f"no program step for {type(node).__name__}")  # pragma: no cover


def _einsum_step(
    node: Einsum,
    reads: tuple[int, ...],
    metas: Sequence[Meta],
    index: dict[Expr, int],
    backend: Backend,
    optimize: str,
) -> tuple[Callable[[list[Any]], Any], str, str, int, int]:
    children = [metas[r] for r in reads]
    refs = [metas[index[r]] for r in node.references]
    resolved = node.resolved(children, refs)
    meta = metas[index[node]]
    arrays = array_operands(node, children)
    numbers = tuple(reads[k] for k in range(len(node.operands)) if k not in arrays)
    array_reads = tuple(reads[k] for k in arrays)
    dtype = meta.dtype or np.dtype(np.float64)
    expand = None if resolved.is_plain else backend.expand
    if arrays:
        shapes = tuple(children[k].shape for k in arrays)
        contract = contraction(resolved, shapes, arrays, optimize, backend.name)
        flops, largest = plan_info(resolved, shapes, arrays, optimize)
        steps_list: Any = getattr(contract, "contraction_list", [])
        path = " ".join(str(step[0]) for step in steps_list)
    else:
        core_shape = tuple(resolved.sizes[label] for label in resolved.core)
        flops, largest, path = 0, 0, ""

    def run(values: list[Any]) -> Any:
        if arrays:
            result = contract(*(values[r] for r in array_reads), backend=backend.name)
        else:
            result = backend.ones(core_shape, dtype)
        for r in numbers:
            result = result * values[r]
        if expand is not None:
            result = expand(result, resolved.core, resolved.output, resolved.sizes, dtype)
        return result

    return run, f"einsum '{node.spec.text}'", path, flops, largest
