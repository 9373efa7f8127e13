"""The numpy backend: numpy arrays, contracted by BLAS directly where opt_einsum would.

Everything numpy-specific lives here: the dtype rules of binding, the ownership and
aliasing tests of handing out results, the direct-call fast paths of contractions, and
the strided diagonal views of embedding and extraction.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from einsgrad.backends.base import Array, Backend, planned, symbols
from einsgrad.core.spec import Resolved

__all__ = ["BACKEND", "SMALL_FLOPS", "NumpyBackend"]

#: Below this many FLOPs a small contraction is one numpy.einsum call.
SMALL_FLOPS = 1 << 15


class NumpyBackend(Backend):
    """numpy arrays, contracted by opt_einsum, or by one numpy call where that pays."""

    name = "numpy"
    library = "numpy"
    xp = np
    array_type = np.ndarray

    def asarray(self, value: Any) -> Array:
        if type(value) is np.ndarray and value.dtype.kind == "f":
            return value  # the common case, nothing to convert
        array = np.asarray(value)
        if array.dtype.kind not in "fcbiu":
            raise TypeError(
                f"expected numbers, got an array of {array.dtype} ({type(value).__name__})"
            )
        if array.dtype.kind not in "fc":
            array = array.astype(np.float64)
        return array

    def owns(self, value: Any, dtype: Any) -> bool:
        # An array that owns its memory shares it with nothing, unless it is an input.
        return (
            type(value) is np.ndarray
            and value.base is None
            and value.dtype == dtype
            and value.flags.writeable
        )

    def finish(self, value: Any, dtype: np.dtype[Any] | None, taken: Sequence[Any]) -> Array:
        array = np.asarray(value)
        if dtype is not None and array.dtype != dtype and array.dtype.kind == dtype.kind:
            array = array.astype(dtype)
        # An array that owns its memory can only alias another by being it; only views need
        # the (slower) overlap test.
        if (
            not array.flags.writeable
            or any(array is other for other in taken)
            or (array.base is not None and any(np.may_share_memory(array, o) for o in taken))
        ):
            array = array.copy()
        return array

    def contraction(
        self,
        resolved: Resolved,
        shapes: tuple[tuple[int, ...], ...],
        array_operands: tuple[int, ...],
        optimize: str = "auto",
    ) -> Callable[..., Array]:
        return _contraction(resolved, shapes, array_operands, optimize)

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
            return self.broadcast(core, core_labels, distinct, sizes)
        result = np.zeros(
            tuple(sizes[label] for label in output), dtype=np.result_type(core, dtype)
        )
        _diagonal_view(result, output, writeable=True)[...] = self.broadcast(
            core, core_labels, distinct, sizes
        )
        return result

    def diagonal(self, x: Array, labels: tuple[int, ...]) -> Array:
        """As :meth:`Backend.diagonal`: a read-only strided view of ``x``, no copy."""
        return _diagonal_view(np.asarray(x), labels, writeable=False)


def _diagonal_view(array: np.ndarray, labels: tuple[int, ...], writeable: bool) -> np.ndarray:
    """The view of ``array`` (axes labelled ``labels``) along its distinct labels.

    Its stride along a label is the sum of the strides of the axes that label names.
    """
    distinct = tuple(dict.fromkeys(labels))
    strides = [
        sum(stride for label, stride in zip(labels, array.strides, strict=True) if label == d)
        for d in distinct
    ]
    shape = tuple(array.shape[labels.index(d)] for d in distinct)
    return np.lib.stride_tricks.as_strided(array, shape=shape, strides=strides, writeable=writeable)


@functools.lru_cache(maxsize=4096)
def _contraction(
    resolved: Resolved,
    shapes: tuple[tuple[int, ...], ...],
    array_operands: tuple[int, ...],
    optimize: str,
) -> Callable[..., Array]:
    """The planned (and cached) contraction of a resolved einsum's arrays.

    opt_einsum's per-call dispatch (tens of microseconds) is skipped where a direct call
    does the same work: a sum over axes of one array becomes one ``numpy.add.reduce``, a
    two-array contraction without diagonals one ``numpy.matmul`` (``numpy.dot`` for plain
    matrices) of transposed and reshaped operands (the GEMM opt_einsum would call), and a
    small one-or-two-array contraction one ``numpy.einsum`` call. Everything else goes
    through the planned opt_einsum expression.
    """
    expression, flops, _ = planned(resolved, shapes, array_operands, optimize)
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
        spec = ",".join(symbols(t) for t in terms) + "->" + symbols(resolved.core)
        if spec.isascii():

            def small(*arrays: Array) -> Array:
                return np.einsum(spec, *arrays)

            return small
    return functools.partial(expression, backend="numpy")


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


#: The instance the registry (:func:`einsgrad.backends.get_backend`) hands out.
BACKEND = NumpyBackend()
