"""Evaluation: bind arrays to variables, infer shapes, run the nodes on a backend.

The graph walk is planned once per set of outputs and cached; shapes and dtypes are
inferred once per shape signature and cached; each einsum's opt_einsum contraction path
is planned once per shape signature and cached (in :mod:`einsgrad.backend`).
"""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np

from einsgrad.backends.base import get_backend
from einsgrad.core.errors import ShapeError, VariableError
from einsgrad.core.ir import Expr, Meta, Var, toposort
from einsgrad.core.limits import get_memory_limit, guard
from einsgrad.passes.autodiff import ORIGIN_VARIABLES, variables_by_name
from einsgrad.passes.program import Plan, Program, array_operands, build

__all__ = ["evaluate"]

# Each variable's name, shape and dtype (as dtype.str), in sorted name order.
Signature = tuple[tuple[str, tuple[int, ...], str], ...]


@dataclass(frozen=True, eq=False)
class _Walk:
    """The nodes to visit for some outputs, in order, and which need values."""

    outputs: tuple[Expr, ...]  # the requested outputs, n-ary einsums split into trees
    names: tuple[str, ...]  # the variables' names, sorted: the order of a shape signature
    order: tuple[Expr, ...]
    index: dict[Expr, int]
    needs_value: frozenset[Expr]
    variables: dict[str, Var]
    # Arrays bind as they are (no declared dtype to convert to, no structure to check).
    binds_as_given: bool
    # The program of the last call, for the next call with the same shapes and dtypes.
    recent: list[Prepared] = field(default_factory=list)


@functools.lru_cache(maxsize=256)
def _walk(requested: tuple[Expr, ...]) -> _Walk:
    from einsgrad.rules.contraction_tree import split_einsums

    # n-ary einsums run as their contraction trees, whose intermediates gradients share.
    outputs = split_einsums(requested)
    order = tuple(toposort(outputs))
    variables = variables_by_name(order)
    needs_value = frozenset(toposort(outputs, references=False))
    index = {node: i for i, node in enumerate(order)}
    binds_as_given = all(v.dtype is None and v.structure is None for v in variables.values())
    return _Walk(
        outputs, tuple(sorted(variables)), order, index, needs_value, variables, binds_as_given
    )


def _check_names(walk: _Walk, outputs: Sequence[Expr], arrays: Mapping[str, Any]) -> None:
    """Missing and unknown variable names, as VariableErrors listing the expected ones."""
    # A gradient accepts every variable of the loss it came from, used or not. Looked up
    # per call: the origin of a hash-consed node can grow after the walk was cached.
    accepted = set(walk.variables).union(*(ORIGIN_VARIABLES.get(out, ()) for out in outputs))
    known = ", ".join(sorted(accepted)) or "none"
    extra = sorted(set(arrays) - accepted)
    if extra:
        raise VariableError(
            f"unknown variable{'s' if len(extra) > 1 else ''} {', '.join(map(repr, extra))}: "
            f"the expression's variables are {known}"
        )
    missing = sorted(set(walk.variables) - set(arrays))
    if missing:
        described = ", ".join(
            f"{name!r}"
            + (
                f" (shape {walk.variables[name].shape})"
                if walk.variables[name].shape is not None
                else ""
            )
            for name in missing
        )
        raise VariableError(
            f"missing value for variable{'s' if len(missing) > 1 else ''} {described}: "
            f"the expression's variables are {known}"
        )


def _bind(
    walk: _Walk, outputs: Sequence[Expr], arrays: Mapping[str, Any], backend: Any
) -> dict[str, Any]:
    if arrays.keys() != walk.variables.keys():
        _check_names(walk, outputs, arrays)
    bound: dict[str, Any] = {}
    for name, variable in walk.variables.items():
        given = arrays[name]
        if (
            type(given) is np.ndarray
            and given.dtype.kind == "f"
            and variable.dtype is None
            and variable.structure is None
            and (variable.shape is None or given.shape == variable.shape)
        ):
            bound[name] = given  # the common case: a float array, nothing to convert or check
            continue
        try:
            array = backend.asarray(given)
            if variable.dtype is not None and array.dtype != variable.dtype:
                array = array.astype(variable.dtype)
        except (TypeError, ValueError) as error:
            kind = type(arrays[name]).__name__
            raise ShapeError(
                f"variable {name!r}: cannot use a {kind} as an array ({error})"
            ) from None
        if variable.shape is not None and tuple(array.shape) != variable.shape:
            raise ShapeError(
                f"variable {name!r} was declared with shape {variable.shape} "
                f"(rank {len(variable.shape)}) but got an array of shape {tuple(array.shape)}"
            )
        if variable.structure is not None:
            _check_structure(variable, array)
        bound[name] = array
    return bound


def _check_structure(variable: Var, array: Any) -> None:
    """Refuse an array that lacks the structure its variable declares."""
    name = variable.name
    if array.ndim != 2 or array.shape[0] != array.shape[1]:
        raise ShapeError(
            f"variable {name!r} is a {variable.structure} matrix, but got shape {array.shape}"
        )
    if variable.structure == "symmetric":
        gap = float(np.max(np.abs(array - array.T), initial=0.0))
        scale = float(np.max(np.abs(array), initial=0.0))
        if gap > 1e-12 * max(scale, 1.0):
            raise ShapeError(
                f"variable {name!r} is declared symmetric, but max |{name} - {name}ᵀ| = {gap:.3g}"
            )
    elif variable.structure == "diagonal":
        off = array - np.diag(np.diag(array))
        if np.any(off != 0):
            raise ShapeError(
                f"variable {name!r} is declared diagonal, but has off-diagonal entries "
                f"(largest {float(np.max(np.abs(off))):.3g})"
            )


@functools.lru_cache(maxsize=1024)
def _infer(walk: _Walk, signature: Signature) -> tuple[Meta, ...]:
    by_name = {name: Meta(shape, np.dtype(dtype)) for name, shape, dtype in signature}
    # Arrays built from plain numbers alone (a broadcast 1.0) take the inputs' dtype, as
    # JAX does with weakly typed values: float32 inputs keep the whole program float32.
    default = np.result_type(*(m.dtype for m in by_name.values())) if by_name else np.float64
    metas: list[Meta] = []
    for node in walk.order:
        if isinstance(node, Var):
            metas.append(by_name[node.name])
            continue
        children = [metas[walk.index[c]] for c in node.children]
        references = [metas[walk.index[r]] for r in node.references]
        meta = node.infer(children, references)
        if meta.dtype is None and meta.shape != ():
            meta = Meta(meta.shape, np.dtype(default))
        metas.append(meta)
    return tuple(metas)


def evaluate(
    exprs: Expr | Sequence[Expr], mapping: Mapping[str, Any] | None = None, /, **arrays: Any
) -> Any:
    """Evaluate one expression (returns an array) or several (returns a tuple).

    Variables are bound by name, ``evaluate([dW, db], X=x, W=w, b=b)``, or from a
    mapping, ``evaluate(dW, {"X": x, "W": w})``; keywords win over the mapping. Raises ShapeError
    for a missing or unknown variable, an array whose shape contradicts its variable's
    declared shape, and shapes the expression's operations do not accept. Runs the same
    cached program as :func:`einsgrad.compile`.
    """
    outputs: tuple[Expr, ...] = (exprs,) if isinstance(exprs, Expr) else tuple(exprs)
    if mapping is not None:
        arrays = {**mapping, **arrays}
    for out in outputs:
        if not isinstance(out, Expr):
            raise TypeError(f"evaluate takes einsgrad expressions, got {type(out).__name__}")
    results = run(outputs, arrays)
    return results[0] if isinstance(exprs, Expr) else results


@dataclass(frozen=True, eq=False)
class Prepared:
    """Everything a call with one shape/dtype signature needs, built once.

    ``key`` lists each variable's shape and dtype in the walk's name order: a call whose
    arrays match it (plain numpy arrays) is bound, checked and planned already.
    ``outputs`` gives, for each output, its shape and dtype and whether a step computes
    it in the call (rather than it being an input, a constant, or a repeat of another).
    """

    optimize: str
    signature: Signature
    key: tuple[Any, ...]
    metas: tuple[Meta, ...]
    program: Program
    peak: int
    outputs: tuple[tuple[Meta, bool], ...]


def run(
    outputs: tuple[Expr, ...],
    arrays: Mapping[str, Any],
    optimize: str = "auto",
    walk: _Walk | None = None,
    memory_limit: int | Literal["default"] | None = "default",
) -> tuple[Any, ...]:
    """Bind ``arrays``, fetch (or build) the program for their shapes, and run it.

    ``walk`` is ``_walk(outputs)``, for a caller that keeps it. ``memory_limit`` is in
    bytes; ``"default"`` is the limit in force (:func:`einsgrad.get_memory_limit`), None
    is no limit.
    """
    if walk is None:
        walk = _walk(outputs)
    limit = get_memory_limit() if memory_limit == "default" else memory_limit
    if walk.recent and walk.binds_as_given:
        recent = _run_recent(walk, walk.recent[0], arrays, optimize, limit)
        if recent is not None:
            return recent
    runner = get_backend("numpy")
    bound = _bind(walk, outputs, arrays, runner)
    signature = tuple((name, bound[name].shape, bound[name].dtype.str) for name in walk.names)
    prepared = _prepared(walk, signature, optimize)
    _check_memory(walk, prepared, limit)
    walk.recent[:] = [prepared]
    inputs = [bound[name] for name in walk.names]
    return _hand_out(prepared, prepared.program.run(inputs), inputs)


def _run_recent(
    walk: _Walk, prepared: Prepared, arrays: Mapping[str, Any], optimize: str, limit: int | None
) -> tuple[Any, ...] | None:
    """Run the last call's program if ``arrays`` match its signature; else None.

    The per-call path of a compiled gradient on small arrays, where Python overhead is
    most of the time: no binding, hashing or cache lookup, only a comparison of shapes
    and dtypes with the last call's, the memory limit against the known peak, the
    program's steps, and an ownership test of each result.
    """
    if optimize != prepared.optimize or arrays.keys() != walk.variables.keys():
        return None
    inputs = [arrays[name] for name in walk.names]
    key = prepared.key
    position = 0
    for value in inputs:
        if (
            type(value) is not np.ndarray
            or value.shape != key[position]
            or value.dtype != key[position + 1]
        ):
            return None
        position += 2
    if limit is not None and limit < prepared.peak:
        return None  # the full path raises MemoryLimitError
    return _hand_out(prepared, prepared.program.run(inputs), inputs)


def _hand_out(prepared: Prepared, values: Sequence[Any], inputs: list[Any]) -> tuple[Any, ...]:
    """The outputs' values as the caller's own arrays: never an input, a view of one, a
    constant, or one array twice."""
    results: list[Any] = []
    for (meta, computed), value in zip(prepared.outputs, values, strict=True):
        # A step's fresh result is the caller's to keep as it is (checked inline: this
        # runs on every call); anything else goes through _finish.
        fresh = (
            computed
            and type(value) is np.ndarray
            and value.base is None
            and value.dtype == meta.dtype
            and value.flags.writeable
        )
        for given in inputs:
            if value is given:
                fresh = False
        results.append(value if fresh else _finish(value, meta, inputs + results))
    return tuple(results)


@functools.lru_cache(maxsize=1024)
def _prepared(walk: _Walk, signature: Signature, optimize: str) -> Prepared:
    """Shapes, the program and its peak memory for one signature."""
    metas = _infer(walk, signature)
    program = _program(walk, signature, optimize)
    key: list[Any] = []
    for _, shape, dtype in signature:
        key += [shape, np.dtype(dtype)]
    outputs: list[tuple[Meta, bool]] = []
    computed = {slot for slot, _, _, _ in program.steps}
    seen: set[int] = set()
    for slot in program.outputs:
        outputs.append((metas[slot], slot in computed and slot not in seen))
        seen.add(slot)
    peak = _peak(walk, signature)[0]
    return Prepared(optimize, signature, tuple(key), metas, program, peak, tuple(outputs))


@functools.lru_cache(maxsize=1024)
def _program(walk: _Walk, signature: Signature, optimize: str) -> Program:
    metas = _infer(walk, signature)
    return build(
        walk.order,
        walk.index,
        walk.needs_value,
        metas,
        walk.names,
        walk.outputs,
        get_backend("numpy"),
        optimize,
    )


def plan(
    outputs: tuple[Expr, ...], shapes: Mapping[str, Sequence[int]], dtype: Any, optimize: str
) -> Plan:
    """The plan of the program for ``outputs`` with the given (or declared) shapes."""
    walk = _walk(outputs)
    signature = _static_signature(walk, shapes, dtype)
    return _program(walk, signature, optimize).plan


def _finish(value: Any, meta: Meta, taken: Sequence[Any]) -> Any:
    """A fresh, writable array of the inferred dtype (scalars become 0-d arrays).

    ``taken`` are arrays the result must not share memory with.
    """
    array = np.asarray(value)
    if meta.dtype is not None and array.dtype != meta.dtype and array.dtype.kind == meta.dtype.kind:
        array = array.astype(meta.dtype)
    # An array that owns its memory can only alias another by being it; only views need
    # the (slower) overlap test.
    if (
        not array.flags.writeable
        or any(array is other for other in taken)
        or (array.base is not None and any(np.may_share_memory(array, o) for o in taken))
    ):
        array = array.copy()
    return array


@functools.lru_cache(maxsize=1024)
def _peak(walk: _Walk, signature: Signature) -> tuple[int, Expr | None, tuple[int, ...]]:
    """The largest array evaluation would allocate: bytes, the node, and its shape."""
    from einsgrad.backends.base import plan_info
    from einsgrad.core.ir import Const, Einsum

    metas = _infer(walk, signature)
    best: tuple[int, Expr | None, tuple[int, ...]] = (0, None, ())
    for i, node in enumerate(walk.order):
        if node not in walk.needs_value or isinstance(node, Var | Const):
            continue
        meta = metas[i]
        itemsize = (meta.dtype or np.dtype(np.float64)).itemsize
        size = int(np.prod(meta.shape, dtype=np.float64)) if meta.shape else 1
        if size * itemsize > best[0]:
            best = (size * itemsize, node, meta.shape)
        if isinstance(node, Einsum):
            children = [metas[walk.index[c]] for c in node.children]
            refs = [metas[walk.index[r]] for r in node.references]
            resolved = node.resolved(children, refs)
            arrays = array_operands(node, children)
            _, largest = plan_info(resolved, tuple(children[k].shape for k in arrays), arrays)
            if largest * itemsize > best[0]:
                best = (largest * itemsize, node, (largest,))
    return best


def _check_memory(walk: _Walk, prepared: Prepared, limit: int | None) -> None:
    """MemoryLimitError, before anything is allocated, if the program's peak exceeds ``limit``."""
    if limit is None or limit >= prepared.peak:
        return
    needed, node, shape = _peak(walk, prepared.signature)
    if node is not None and needed > limit:
        from einsgrad.graph.printing import short_name

        itemsize = max(1, needed // max(1, int(np.prod(shape, dtype=np.float64)) if shape else 1))
        guard(
            f"evaluating {short_name(node)}",
            shape,
            np.dtype(f"f{itemsize}") if itemsize in (2, 4, 8) else np.float64,
            limit,
            "Nothing was allocated. Raise the limit with einsgrad.memory_limit(...), "
            "set_memory_limit(...) or compile(..., memory_limit=...), or use vjp/jvp/hvp "
            "instead of a full Jacobian or Hessian.",
        )


def static_metas(
    expr: Expr, shapes: Mapping[str, Sequence[int]], dtype: Any
) -> dict[Expr, tuple[Meta, list[Meta], list[Meta]]]:
    """Shapes and dtypes of every node ``expr`` computes, from declared or given shapes."""
    walk = _walk((expr,))
    signature = _static_signature(walk, shapes, dtype)
    metas = _infer(walk, signature)
    result: dict[Expr, tuple[Meta, list[Meta], list[Meta]]] = {}
    for i, node in enumerate(walk.order):
        if node in walk.needs_value:
            children = [metas[walk.index[c]] for c in node.children]
            refs = [metas[walk.index[r]] for r in node.references]
            result[node] = (metas[i], children, refs)
    return result


def _static_signature(walk: _Walk, shapes: Mapping[str, Sequence[int]], dtype: Any) -> Signature:
    items = []
    for name, variable in sorted(walk.variables.items()):
        shape = variable.shape if variable.shape is not None else shapes.get(name)
        if shape is None:
            raise ShapeError(f"variable {name!r} has no declared shape; pass {name}=(...) for it")
        kind = variable.dtype if variable.dtype is not None else np.dtype(dtype)
        items.append((name, tuple(int(n) for n in shape), kind.str))
    return tuple(items)
