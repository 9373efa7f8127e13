"""What a node kind's ``lower`` rule sees and returns: one step of a straight-line program.

:func:`einsgrad.passes.program.build` walks the nodes an output needs, children first,
and asks each kind's ``lower`` rule how to compute its node for one shape signature. The
rule answers with a :class:`Lowered`: either a value known already from the shapes (a
constant, a size), or a function of the values of the slots it reads, with its plan
entry (what it is, the contraction path, FLOPs, the largest array it makes).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from einsgrad.core.ir import Meta

__all__ = ["Lowered", "StepInput"]


@dataclass(frozen=True)
class StepInput:
    """Everything the lowering of one node may read.

    ``reads`` are the slots of the node's children, in order; ``known`` their values where
    these are known when the program is built (constants, sizes), else None.
    """

    meta: Meta
    children: Sequence[Meta]
    references: Sequence[Meta]
    reads: tuple[int, ...]
    known: Sequence[Any]
    backend: Any
    optimize: str


@dataclass(frozen=True)
class Lowered:
    """How a program computes one node: a :meth:`step`, a :meth:`known_value` or a
    :meth:`bound_input`."""

    function: Callable[..., Any] | None
    reads: tuple[int, ...]
    operation: str
    path: str = ""
    flops: int = 0
    largest: int = 0  # elements of the largest array the step makes besides its result
    value: Any = None
    listed: bool = True  # whether a value known at build time is listed in the plan
    is_input: bool = False  # an input: its array is bound by the caller

    @classmethod
    def step(
        cls,
        function: Callable[..., Any],
        reads: tuple[int, ...],
        operation: str,
        *,
        path: str = "",
        flops: int = 0,
        largest: int = 0,
    ) -> Lowered:
        """A step of the program: ``function(*values of reads)`` at every call."""
        return cls(function, reads, operation, path, flops, largest)

    @classmethod
    def bound_input(cls) -> Lowered:
        """An input of the program: an array the caller binds."""
        return cls(None, (), "input", is_input=True)

    @classmethod
    def known_value(cls, value: Any, operation: str, *, listed: bool = True) -> Lowered:
        """A value known from the shapes alone: computed once, when the program is built."""
        return cls(None, (), operation, value=value, listed=listed)
