"""The backend seam: the interface programs call, and what all array libraries share.

Derive once, run anywhere: the IR, the rules and the passes never call an array library.
A program's steps are built from the methods of a :class:`Backend`: contractions of
resolved einsums, the primitives' forward kernels (written against an array-API namespace
``xp``: ``xp.exp``, ``xp.maximum``, ``xp.where`` ...), diagonal embedding and extraction,
and the few array queries and conversions around a call (binding inputs, handing out
results). One module per array library subclasses it (:mod:`einsgrad.backends.numpy`);
what is generic is written here once: contractions planned and run by opt_einsum, which
itself dispatches to numpy, torch, JAX, CuPy, Dask ..., and Kronecker-delta embedding.

Planning is backend-neutral metadata: :func:`plan_info` and :func:`plan_path` give
opt_einsum's FLOP count, largest intermediate and path, cached per (contraction, shapes).
"""

from __future__ import annotations

import abc
import functools
import math
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import opt_einsum

from einsgrad.core.spec import Resolved

__all__ = ["Array", "Backend", "plan_info", "plan_path", "planned", "symbols"]

Array = Any


def symbols(labels: Sequence[int]) -> str:
    """opt_einsum's letters for integer labels (beyond a-zA-Z it uses other Unicode)."""
    return "".join(opt_einsum.get_symbol(label) for label in labels)


@functools.lru_cache(maxsize=4096)
def planned(
    resolved: Resolved,
    shapes: tuple[tuple[int, ...], ...],
    array_operands: tuple[int, ...],
    optimize: str = "auto",
) -> tuple[Any, int, int]:
    """A planned opt_einsum contraction of ``resolved``'s array operands onto its core.

    Planned once per (contraction, shapes) and cached: opt_einsum's path search is the
    expensive part and does not depend on the values or the array library. Also returns
    opt_einsum's FLOP count and its largest intermediate (in elements).
    """
    terms = ",".join(symbols(resolved.inputs[k]) for k in array_operands)
    spec = f"{terms}->{symbols(resolved.core)}"
    path, info = opt_einsum.contract_path(spec, *shapes, shapes=True, optimize=optimize)
    expression = opt_einsum.contract_expression(spec, *shapes, optimize=path)
    return expression, int(info.opt_cost), int(info.largest_intermediate)


def plan_info(
    resolved: Resolved,
    shapes: tuple[tuple[int, ...], ...],
    array_operands: tuple[int, ...],
    optimize: str = "auto",
) -> tuple[int, int]:
    """opt_einsum's FLOP count and largest intermediate (elements) for a resolved einsum."""
    if not array_operands:
        return 0, 0
    _, flops, largest = planned(resolved, shapes, array_operands, optimize)
    return flops, largest


def plan_path(
    resolved: Resolved,
    shapes: tuple[tuple[int, ...], ...],
    array_operands: tuple[int, ...],
    optimize: str = "auto",
) -> str:
    """opt_einsum's contraction path for a resolved einsum, as ``(0, 1) (0, 1)``."""
    if not array_operands:
        return ""
    expression = planned(resolved, shapes, array_operands, optimize)[0]
    return " ".join(str(step[0]) for step in expression.contraction_list)


class Backend(abc.ABC):
    """The array operations einsgrad's programs are lowered to.

    A subclass names itself (``name``, the key of :func:`einsgrad.backends.get_backend`),
    gives its array namespace ``xp`` and the exact type of its arrays, and implements the
    abstract methods: how a value becomes an array (and which dtypes are allowed), and
    when a result is the caller's to keep. Everything else has a generic version here,
    which a subclass overrides where its library has a faster way.

    Dtypes are numpy dtypes throughout the interface (the IR's metadata);
    :meth:`native_dtype` converts one to the library's own.
    """

    #: The registry's name for this backend (``compile(..., backend=name)``).
    name: str = "generic"
    #: The name opt_einsum dispatches on (``contract(..., backend=library)``).
    library: str = "numpy"
    #: The array namespace the primitives' forward functions call (``xp.exp``, ...).
    xp: Any = None
    #: The exact type of the library's arrays: a value of this type is bound as it is on
    #: the per-call path (subclasses and foreign arrays go through :meth:`asarray`).
    array_type: type[Any] = object

    # -- binding inputs and handing out results -------------------------------------------
    @abc.abstractmethod
    def asarray(self, value: Any) -> Array:
        """``value`` as an array of numbers: floats and complex numbers kept, integers and
        booleans as float64. TypeError or ValueError for anything else."""

    def native_dtype(self, dtype: Any) -> Any:
        """The library's dtype for a numpy dtype (None stays None)."""
        return None if dtype is None else np.dtype(dtype)

    def dtype(self, x: Array) -> np.dtype[Any]:
        """``x``'s dtype, as a numpy dtype."""
        dtype: np.dtype[Any] = np.dtype(x.dtype)
        return dtype

    def shape(self, x: Array) -> tuple[int, ...]:
        return tuple(int(n) for n in x.shape)

    def astype(self, x: Array, dtype: Any) -> Array:
        return x.astype(self.native_dtype(dtype))

    def to_numpy(self, x: Array) -> np.ndarray:
        """``x`` as a numpy array (a copy where the library's memory is not the host's)."""
        return np.asarray(x)

    @abc.abstractmethod
    def owns(self, value: Any, dtype: Any) -> bool:
        """True if ``value``, a step's result, can go to the caller as it is: an array of
        the library's own type and of ``dtype`` (a :meth:`native_dtype`), writable, and
        sharing memory with nothing else. Runs on every call, for every output."""

    @abc.abstractmethod
    def finish(self, value: Any, dtype: np.dtype[Any] | None, taken: Sequence[Any]) -> Array:
        """A fresh, writable array of ``value`` (a 0-d array for a number), of ``dtype``
        if that is of the same kind, that shares no memory with any array in ``taken``."""

    # -- array constructors ---------------------------------------------------------------
    def ones(self, shape: tuple[int, ...], dtype: Any) -> Array:
        return self.xp.ones(shape, dtype=self.native_dtype(dtype))

    def eye(self, n: int, dtype: Any) -> Array:
        return self.xp.eye(n, dtype=self.native_dtype(dtype))

    def broadcast_to(self, x: Array, shape: tuple[int, ...]) -> Array:
        return self.xp.broadcast_to(x, shape)

    def transpose(self, x: Array, order: Sequence[int]) -> Array:
        """``x`` with its axes in ``order`` (numpy's ``x.transpose(order)``)."""
        return x.transpose(tuple(order))

    # -- the steps of a program -----------------------------------------------------------
    def elementwise(self, forward: Callable[..., Any]) -> Callable[..., Array]:
        """The step of an elementwise primitive whose kernel is ``forward(xp, *args)``."""
        return functools.partial(forward, self.xp)

    def reduction(self, forward: Callable[..., Any], axes: tuple[int, ...]) -> Callable[..., Array]:
        """The step of a reduction primitive ``forward(xp, x, axes)`` over ``axes``."""
        xp = self.xp

        def reduce(x: Array) -> Array:
            return forward(xp, x, axes)

        return reduce

    def contraction(
        self,
        resolved: Resolved,
        shapes: tuple[tuple[int, ...], ...],
        array_operands: tuple[int, ...],
        optimize: str = "auto",
    ) -> Callable[..., Array]:
        """The contraction of ``resolved``'s array operands (at ``array_operands``, of
        ``shapes``) onto its core labels: a function of those arrays, planned once.

        Generic: the cached opt_einsum expression, run with this library's functions.
        """
        expression = planned(resolved, shapes, array_operands, optimize)[0]
        return functools.partial(expression, backend=self.library)

    def expand(
        self,
        core: Array,
        core_labels: tuple[int, ...],
        output: tuple[int, ...],
        sizes: tuple[int, ...],
        dtype: Any,
    ) -> Array:
        """Place ``core`` (labelled ``core_labels``) into an array labelled ``output``.

        Output labels that ``core`` lacks are broadcast; a repeated output label is a
        diagonal. This generic path multiplies by Kronecker-delta tensors (identity
        matrices chained across the repeats) with opt_einsum, so any backend works.
        """
        distinct = tuple(dict.fromkeys(output))
        broadcast = self.broadcast(core, core_labels, distinct, sizes)
        if len(distinct) == len(output):
            return broadcast
        # Rename each repeat of a label and tie it to the previous one with an identity.
        fresh = len(sizes)
        renamed: list[int] = []
        deltas: list[tuple[int, int]] = []
        size_of_delta: list[int] = []
        last: dict[int, int] = {}
        for label in output:
            if label in last:
                deltas.append((last[label], fresh))
                size_of_delta.append(sizes[label])
                last[label] = fresh
                renamed.append(fresh)
                fresh += 1
            else:
                last[label] = label
                renamed.append(label)
        eyes = [self.eye(n, dtype) for n in size_of_delta]
        spec = ",".join([symbols(distinct)] + [symbols(pair) for pair in deltas])
        return opt_einsum.contract(
            f"{spec}->{symbols(renamed)}", broadcast, *eyes, backend=self.library
        )

    def broadcast(
        self,
        core: Array,
        core_labels: tuple[int, ...],
        distinct: tuple[int, ...],
        sizes: tuple[int, ...],
    ) -> Array:
        """``core`` (labelled ``core_labels``) transposed and broadcast to ``distinct``."""
        order = [core_labels.index(label) for label in distinct if label in core_labels]
        if order != list(range(len(order))):
            core = self.transpose(core, order)
        with_axes = tuple(sizes[label] if label in core_labels else 1 for label in distinct)
        core = core.reshape(with_axes)
        full = tuple(sizes[label] for label in distinct)
        return core if with_axes == full else self.broadcast_to(core, full)

    def diagonal(self, x: Array, labels: tuple[int, ...]) -> Array:
        """The diagonal of ``x`` whose axes are labelled ``labels`` (repeats share an axis
        of the result), labelled by the distinct labels in order of first appearance.

        Not necessarily a fresh array: it may be a view of ``x``.
        """
        distinct = tuple(dict.fromkeys(labels))
        return opt_einsum.contract(
            f"{symbols(labels)}->{symbols(distinct)}", x, backend=self.library
        )

    def max_abs(self, x: Array) -> float:
        """The largest absolute value in ``x`` (0.0 for an empty array)."""
        if math.prod(self.shape(x)) == 0:
            return 0.0
        return float(self.xp.max(self.xp.abs(x)))
