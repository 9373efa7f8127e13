"""The backend seam: everything that touches an array library lives here.

Derive once, run anywhere: the IR and the rules never call numpy. A :class:`Backend`
lowers resolved einsums (via opt_einsum, which dispatches to numpy, torch, JAX, CuPy, Dask
...) and provides the array namespace ``xp`` that the primitives' forward functions are
written against (array-API names: ``xp.exp``, ``xp.maximum``, ``xp.where`` ...).
:class:`Backend` itself is written against opt_einsum and a handful of array functions;
:class:`NumpyBackend` adds numpy-only shortcuts (a writable diagonal view instead of a
Kronecker-delta contraction).
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import opt_einsum

from einsgrad.core.spec import Resolved

__all__ = ["Backend", "NumpyBackend", "contraction", "get_backend", "plan_info"]

Array = Any


def _symbols(labels: Sequence[int]) -> str:
    return "".join(opt_einsum.get_symbol(label) for label in labels)


@functools.lru_cache(maxsize=4096)
def _planned(
    resolved: Resolved,
    shapes: tuple[tuple[int, ...], ...],
    array_operands: tuple[int, ...],
    optimize: str = "auto",
) -> tuple[Callable[..., Array], int, int]:
    """A planned opt_einsum contraction of ``resolved``'s array operands onto its core.

    Planned once per (contraction, shapes) and cached: opt_einsum's path search is the
    expensive part and does not depend on the values. Also returns opt_einsum's FLOP
    count and its largest intermediate (in elements).
    """
    terms = ",".join(_symbols(resolved.inputs[k]) for k in array_operands)
    spec = f"{terms}->{_symbols(resolved.core)}"
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
    _, flops, largest = _planned(resolved, shapes, array_operands, optimize)
    return flops, largest


def contraction(
    resolved: Resolved,
    shapes: tuple[tuple[int, ...], ...],
    array_operands: tuple[int, ...],
    optimize: str = "auto",
    backend: str = "numpy",
) -> Callable[..., Array]:
    """The planned (and cached) contraction of a resolved einsum's arrays.

    On numpy, opt_einsum's per-call dispatch (tens of microseconds) is skipped where a
    direct call does the same work: a sum over axes of one array becomes one
    ``numpy.add.reduce``, a two-array contraction without diagonals one ``numpy.matmul``
    (``numpy.dot`` for plain matrices) of transposed and reshaped operands (the GEMM
    opt_einsum would call), and a small one-or-two-array contraction one ``numpy.einsum``
    call. Everything else goes through the planned opt_einsum expression.
    """
    planned, flops, _ = _planned(resolved, shapes, array_operands, optimize)
    if backend != "numpy":
        return functools.partial(planned, backend=backend)
    terms = [resolved.inputs[k] for k in array_operands]
    if len(terms) == 1:
        direct = _sum_plan(terms[0], resolved.core)
        if direct is not None:
            return direct
    if len(terms) == 2:
        direct = _matmul_plan(terms[0], terms[1], resolved.core, resolved.sizes)
        if direct is not None:
            return direct
    if len(terms) <= 2 and flops <= SMALL_FLOPS:
        spec = ",".join(_symbols(t) for t in terms) + "->" + _symbols(resolved.core)
        if spec.isascii():

            def small(*arrays: Array) -> Array:
                return np.einsum(spec, *arrays)

            return small
    return functools.partial(planned, backend=backend)


def _sum_plan(term: tuple[int, ...], out: tuple[int, ...]) -> Callable[..., Array] | None:
    """``einsum(term->out)`` as ``numpy.add.reduce`` over the dropped axes, if it is one.

    It is when the labels are distinct and ``out`` keeps the others in their order;
    numpy's reduction sums pairwise, and its call costs half of ``numpy.einsum``'s.
    """
    if len(set(term)) != len(term) or len(out) == len(term):
        return None
    kept = [label for label in term if label in out]
    if kept != list(out):
        return None
    axes = tuple(axis for axis, label in enumerate(term) if label not in out)

    def summed(x: Array) -> Array:
        return np.add.reduce(x, axis=axes)

    return summed


#: Below this many FLOPs a small numpy contraction is one numpy.einsum call.
SMALL_FLOPS = 1 << 15


def _matmul_plan(
    left: tuple[int, ...], right: tuple[int, ...], out: tuple[int, ...], sizes: tuple[int, ...]
) -> Callable[..., Array] | None:
    """``einsum(left,right->out)`` as a batched matrix product, or None if it is not one.

    Labels split into batch (both operands and the output), contracted (both, not the
    output), and kept labels of one operand; each operand is transposed to
    (batch, kept, contracted) order and reshaped to 3-D, and the product is reshaped and
    transposed to the output's order. Diagonals and labels summed within one operand
    are left to einsum.
    """
    if len(set(left)) != len(left) or len(set(right)) != len(right):
        return None
    outs = set(out)
    batch = [label for label in left if label in right and label in outs]
    contracted = [label for label in left if label in right and label not in outs]
    kept_left = [label for label in left if label not in right]
    kept_right = [label for label in right if label not in left]
    if any(label not in outs for label in kept_left + kept_right):
        return None

    def size(labels: list[int]) -> int:
        return int(np.prod([sizes[label] for label in labels], dtype=np.int64))

    perm_left = tuple(left.index(label) for label in batch + kept_left + contracted)
    perm_right = tuple(right.index(label) for label in batch + contracted + kept_right)
    b, m, k, n = size(batch), size(kept_left), size(contracted), size(kept_right)
    middle = batch + kept_left + kept_right
    middle_shape = tuple(sizes[label] for label in middle)
    final = tuple(middle.index(label) for label in out)
    identity = final == tuple(range(len(final)))
    left_shape, right_shape = ((m, k), (k, n)) if b == 1 else ((b, m, k), (b, k, n))

    if not batch and len(kept_left) == 1 and len(kept_right) == 1 and len(contracted) == 1:
        # A plain matrix product: transposes are views BLAS reads directly.
        flip_left, flip_right = perm_left != (0, 1), perm_right != (0, 1)

        # numpy.dot is numpy.matmul on 2-D arrays (the same GEMM) with less call overhead.
        if identity:

            def matrix_product(x: Array, y: Array) -> Array:
                return np.dot(x.T if flip_left else x, y.T if flip_right else y)

        else:
            # (x y)ᵀ = yᵀ xᵀ: the result comes out in the output's order, a fresh array.

            def matrix_product(x: Array, y: Array) -> Array:
                return np.dot(y if flip_right else y.T, x if flip_left else x.T)

        return matrix_product

    def product(x: Array, y: Array) -> Array:
        z = np.matmul(
            x.transpose(perm_left).reshape(left_shape), y.transpose(perm_right).reshape(right_shape)
        ).reshape(middle_shape)
        return z if identity else z.transpose(final)

    return product


class Backend:
    """Array operations einsgrad's programs are lowered to.

    Subclasses name an opt_einsum backend and provide the elementwise kernels; the
    einsum lowering below is generic.
    """

    name = "generic"
    #: The array namespace the primitives' forward functions call (``xp.exp``, ...).
    xp: Any = None

    # -- arrays -------------------------------------------------------------------------
    def asarray(self, value: Any) -> Array:
        raise NotImplementedError

    def zeros(self, shape: tuple[int, ...], dtype: Any) -> Array:
        raise NotImplementedError

    def ones(self, shape: tuple[int, ...], dtype: Any) -> Array:
        raise NotImplementedError

    def eye(self, n: int, dtype: Any) -> Array:
        raise NotImplementedError

    def broadcast_to(self, x: Array, shape: tuple[int, ...]) -> Array:
        raise NotImplementedError

    def shape(self, x: Array) -> tuple[int, ...]:
        return tuple(int(n) for n in x.shape)

    # -- einsum ---------------------------------------------------------------------------
    def einsum(self, resolved: Resolved, operands: Sequence[Array | float], dtype: Any) -> Array:
        """Evaluate a resolved (possibly generalized) einsum.

        Python scalars among the operands are factored out and multiplied in at the end,
        as numpy would treat them (weakly typed: a float32 result stays float32). The
        contraction of the array operands onto the output's distinct input labels goes
        through a cached opt_einsum plan; broadcasting and diagonal embedding follow.
        """
        scale: float = 1.0
        arrays: list[Array] = []
        positions: list[int] = []
        for k, operand in enumerate(operands):
            if isinstance(operand, int | float):
                scale = scale * operand
            else:
                arrays.append(operand)
                positions.append(k)
        core_sizes = tuple(resolved.sizes[label] for label in resolved.core)
        if arrays:
            shapes = tuple(self.shape(a) for a in arrays)
            plan = _planned(resolved, shapes, tuple(positions))[0]
            core = plan(*arrays, backend=self.name)
        else:
            core = self.ones(core_sizes, dtype)
        if scale != 1.0:
            core = core * scale
        if resolved.is_plain:
            return core
        return self.expand(core, resolved.core, resolved.output, resolved.sizes, dtype)

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
        broadcast = self._broadcast(core, core_labels, distinct, sizes)
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
        spec = ",".join([_symbols(distinct)] + [_symbols(pair) for pair in deltas])
        return opt_einsum.contract(
            f"{spec}->{_symbols(renamed)}", broadcast, *eyes, backend=self.name
        )

    def _broadcast(
        self,
        core: Array,
        core_labels: tuple[int, ...],
        distinct: tuple[int, ...],
        sizes: tuple[int, ...],
    ) -> Array:
        order = [core_labels.index(label) for label in distinct if label in core_labels]
        if order != list(range(len(order))):
            core = core.transpose(order) if hasattr(core, "transpose") else core
        with_axes = tuple(sizes[label] if label in core_labels else 1 for label in distinct)
        core = core.reshape(with_axes)
        full = tuple(sizes[label] for label in distinct)
        return core if with_axes == full else self.broadcast_to(core, full)


class NumpyBackend(Backend):
    """numpy arrays, contracted by opt_einsum with BLAS where it pays."""

    name = "numpy"
    xp = np

    def asarray(self, value: Any) -> Array:
        array = np.asarray(value)
        if array.dtype.kind not in "fcbiu":
            raise TypeError(
                f"expected numbers, got an array of {array.dtype} ({type(value).__name__})"
            )
        if array.dtype.kind not in "fc":
            array = array.astype(np.float64)
        return array

    def zeros(self, shape: tuple[int, ...], dtype: Any) -> Array:
        return np.zeros(shape, dtype=dtype)

    def ones(self, shape: tuple[int, ...], dtype: Any) -> Array:
        return np.ones(shape, dtype=dtype)

    def eye(self, n: int, dtype: Any) -> Array:
        return np.eye(n, dtype=dtype)

    def broadcast_to(self, x: Array, shape: tuple[int, ...]) -> Array:
        return np.broadcast_to(x, shape)

    def expand(
        self,
        core: Array,
        core_labels: tuple[int, ...],
        output: tuple[int, ...],
        sizes: tuple[int, ...],
        dtype: Any,
    ) -> Array:
        """As :meth:`Backend.expand`, writing through a strided diagonal view of zeros.

        numpy, opt_einsum and torch all reject ``"i->ii"``; a view whose stride along a
        repeated label is the sum of that label's axis strides addresses exactly the
        diagonal, so the embedding costs one write of ``core`` and no multiplications.
        """
        distinct = tuple(dict.fromkeys(output))
        core = np.asarray(core)
        if len(distinct) == len(output):
            return self._broadcast(core, core_labels, distinct, sizes)
        result = np.zeros(
            tuple(sizes[label] for label in output), dtype=np.result_type(core, dtype)
        )
        strides = [
            sum(stride for label, stride in zip(output, result.strides, strict=True) if label == d)
            for d in distinct
        ]
        diagonal = np.lib.stride_tricks.as_strided(
            result, shape=tuple(sizes[d] for d in distinct), strides=strides, writeable=True
        )
        diagonal[...] = self._broadcast(core, core_labels, distinct, sizes)
        return result


_BACKENDS: dict[str, Backend] = {"numpy": NumpyBackend()}


def get_backend(name: str = "numpy") -> Backend:
    """The backend registered under ``name``."""
    try:
        return _BACKENDS[name]
    except KeyError:
        raise ValueError(f"unknown backend {name!r}; known: {sorted(_BACKENDS)}") from None
