"""Evaluation: bind arrays to variables, infer shapes, run the nodes on a backend.

The graph walk is planned once per set of outputs and cached; shapes and dtypes are
inferred once per shape signature and cached; each einsum's opt_einsum contraction path
is planned once per shape signature and cached (in :mod:`einsgrad.backends.base`). The
arrays themselves are only touched through a :class:`~einsgrad.backends.base.Backend`.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np

from einsgrad.backends import get_backend
from einsgrad.backends.base import Backend
from einsgrad.core import kinds
from einsgrad.core.errors import MemoryLimitError, ShapeError, VariableError
from einsgrad.core.ir import Expr, Meta, Var, toposort
from einsgrad.core.limits import format_bytes, get_memory_limit
from einsgrad.graph.printing import short_name
from einsgrad.passes.autodiff import variables_by_name
from einsgrad.passes.program import LiveArray, Plan, Program, build
from einsgrad.passes.records import accepted_variables
from einsgrad.rules.contraction_tree import split_einsums

__all__ = ["evaluate"]

# Each variable's name, shape and dtype (as dtype.str), in sorted name order.
Signature = tuple[tuple[str, tuple[int, ...], str], ...]

#: The backend of evaluate() and of compile() unless it names another.
NUMPY = get_backend("numpy")


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
    accepted = set(walk.variables) | accepted_variables(outputs)
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
    walk: _Walk, outputs: Sequence[Expr], arrays: Mapping[str, Any], backend: Backend
) -> dict[str, Any]:
    if arrays.keys() != walk.variables.keys():
        _check_names(walk, outputs, arrays)
    bound: dict[str, Any] = {}
    for name, variable in walk.variables.items():
        array = _as_array(variable, arrays[name], backend)
        shape = backend.shape(array)
        if variable.shape is not None and shape != variable.shape:
            raise ShapeError(
                f"variable {name!r} was declared with shape {variable.shape} "
                f"(rank {len(variable.shape)}) but got an array of shape {shape}"
            )
        if variable.structure is not None:
            _check_structure(variable, array, backend)
        bound[name] = array
    return bound


def _as_array(variable: Var, value: Any, backend: Backend) -> Any:
    """``value`` as the array ``variable`` binds, in its declared dtype if it has one.

    A VariableError naming the variable for a value that is no array of numbers, and for
    one whose conversion would silently lose something: a masked array's mask, a complex
    array's imaginary part.
    """
    name = variable.name
    if isinstance(value, np.ma.MaskedArray):
        raise VariableError(
            f"variable {name!r}: got a masked array, whose mask einsgrad would ignore; pass "
            f"{name}=x.filled(value) to choose what the masked entries are, or {name}=x.data "
            "to use them as they are"
        )
    try:
        array = backend.asarray(value)
    except (TypeError, ValueError) as error:
        raise VariableError(
            f"variable {name!r}: cannot bind {_a(type(value).__name__)} as an array of "
            f"numbers: {error}"
        ) from None
    declared, given = variable.dtype, backend.dtype(array)
    if declared is None or given == declared:
        return array
    if given.kind == "c" and declared.kind != "c":
        raise VariableError(
            f"variable {name!r} is declared {declared}, but got an array of {given}: "
            "converting it would drop the imaginary part"
        )
    return backend.astype(array, declared)


def _a(noun: str) -> str:
    """``noun`` with its indefinite article: ``a list``, ``an ndarray``."""
    return f"{'an' if noun[:1] in 'aeiou' else 'a'} {noun}"


def _check_structure(variable: Var, array: Any, backend: Backend) -> None:
    """Refuse an array that lacks the structure its variable declares."""
    name = variable.name
    shape = backend.shape(array)
    if len(shape) != 2 or shape[0] != shape[1]:
        raise ShapeError(
            f"variable {name!r} is a {variable.structure} matrix, but got shape {shape}"
        )
    if variable.structure == "symmetric":
        gap = backend.max_abs(array - array.T)
        scale = backend.max_abs(array)
        if gap > 1e-12 * max(scale, 1.0):
            raise ShapeError(
                f"variable {name!r} is declared symmetric, but max |{name} - {name}ᵀ| = {gap:.3g}"
            )
    elif variable.structure == "diagonal":
        diagonal = backend.diagonal(array, (0, 0))
        dtype = backend.dtype(array)
        off = array - backend.expand(diagonal, (0,), (0, 0), (shape[0],), dtype)
        largest = backend.max_abs(off)
        if largest != 0:
            raise ShapeError(
                f"variable {name!r} is declared diagonal, but has off-diagonal entries "
                f"(largest {largest:.3g})"
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
        meta = kinds.rule(node, "infer")(node, children, references)
        if meta.dtype is None and meta.shape != ():
            meta = Meta(meta.shape, np.dtype(default))
        metas.append(meta)
    return tuple(metas)


def evaluate(
    exprs: Expr | Sequence[Expr], mapping: Mapping[str, Any] | None = None, /, **arrays: Any
) -> Any:
    """Evaluate one expression (returns an array) or several (returns a tuple).

    Variables are bound by name, ``evaluate([dW, db], X=x, W=w, b=b)``, or from a
    mapping, ``evaluate(dW, {"X": x, "W": w})``; keywords win over the mapping. Raises
    VariableError for a missing or unknown variable and for a value that is no array of
    numbers (or a masked array, whose mask would be lost), ShapeError for an array whose
    shape contradicts its variable's declared shape and for shapes the expression's
    operations do not accept, and MemoryLimitError, before allocating anything, when the
    program's peak of live memory would exceed the memory limit. The results are fresh
    arrays: none shares memory with an input or another result. Runs the same cached
    program as :func:`einsgrad.compile`.
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
    """Everything a call with one shape/dtype signature on one backend needs, built once.

    ``key`` lists each variable's shape and (backend-native) dtype in the walk's name
    order: a call whose arrays match it (of the backend's own array type) is bound,
    checked and planned already. ``outputs`` gives, for each output, its shape and dtype,
    whether a step computes it in the call (rather than it being an input, a constant,
    or a repeat of another), and its dtype as the backend names it. ``constants`` are
    the arrays the program holds from build time on, which every call's steps may view.
    """

    optimize: str
    backend: Backend
    signature: Signature
    key: tuple[Any, ...]
    metas: tuple[Meta, ...]
    program: Program
    # What the memory guard compares with the limit: the plan's peak of live memory.
    peak: int
    outputs: tuple[tuple[Meta, bool, Any], ...]
    constants: tuple[Any, ...]


def run(
    outputs: tuple[Expr, ...],
    arrays: Mapping[str, Any],
    optimize: str = "auto",
    walk: _Walk | None = None,
    memory_limit: int | Literal["default"] | None = "default",
    backend: Backend = NUMPY,
) -> tuple[Any, ...]:
    """Bind ``arrays``, fetch (or build) the program for their shapes, and run it.

    ``walk`` is ``_walk(outputs)``, for a caller that keeps it. ``memory_limit`` bounds
    the program's peak of live memory, in bytes; ``"default"`` is the limit in force
    (:func:`einsgrad.get_memory_limit`), None is no limit.
    """
    if walk is None:
        walk = _walk(outputs)
    limit = get_memory_limit() if memory_limit == "default" else memory_limit
    if walk.recent and walk.binds_as_given:
        recent = _run_recent(walk, walk.recent[0], arrays, optimize, limit, backend)
        if recent is not None:
            return recent
    bound = _bind(walk, outputs, arrays, backend)
    signature = tuple(
        (name, backend.shape(bound[name]), backend.dtype(bound[name]).str) for name in walk.names
    ) + _unused_dtypes(walk, arrays, backend)
    prepared = _prepared(walk, signature, optimize, backend)
    _check_memory(walk, prepared, limit)
    walk.recent[:] = [prepared]
    inputs = [bound[name] for name in walk.names]
    return _hand_out(prepared, prepared.program.run(inputs), inputs)


def _unused_dtypes(walk: _Walk, arrays: Mapping[str, Any], backend: Backend) -> Signature:
    """The dtypes of the arrays a gradient accepts but does not use, as signature entries.

    ``grad(sum(X), X)`` is a broadcast 1.0 that uses no variable: its dtype comes from
    these (float32 ``X`` gives float32 ones, as in JAX and torch), not float64.
    """
    unused = sorted(name for name in arrays if name not in walk.variables)
    return tuple((name, (), backend.dtype(backend.asarray(arrays[name])).str) for name in unused)


def _run_recent(
    walk: _Walk,
    prepared: Prepared,
    arrays: Mapping[str, Any],
    optimize: str,
    limit: int | None,
    backend: Backend,
) -> tuple[Any, ...] | None:
    """Run the last call's program if ``arrays`` match its signature; else None.

    The per-call path of a compiled gradient on small arrays, where Python overhead is
    most of the time: no binding, hashing or cache lookup, only a comparison of shapes
    and dtypes with the last call's, the memory limit against the known peak of memory,
    the program's steps, and an ownership test of each result.
    """
    if (
        optimize != prepared.optimize
        or backend is not prepared.backend
        or arrays.keys() != walk.variables.keys()
    ):
        return None
    inputs = [arrays[name] for name in walk.names]
    key = prepared.key
    array_type = backend.array_type
    position = 0
    for value in inputs:
        if (
            type(value) is not array_type
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
    constant, one array twice, or two arrays sharing memory, in whatever order they come."""
    backend = prepared.backend
    owns = backend.owns
    results: list[Any] = []
    for position, ((meta, computed, native), value) in enumerate(
        zip(prepared.outputs, values, strict=True)
    ):
        # A step's fresh result is the caller's to keep as it is (tested first: this runs
        # on every call), unless it is an input or an earlier result itself.
        fresh = computed and owns(value, native)
        if fresh:
            for given in inputs:
                if value is given:
                    fresh = False
            for given in results:
                if value is given:
                    fresh = False
        if fresh:
            results.append(value)
        elif not computed:
            # An input, a constant or a repeat: shared by every call or by another output.
            results.append(backend.finish(value, meta.dtype, [value]))
        else:
            # Compared with the outputs still to come as well: a view handed out first
            # would otherwise share memory with the fresh array it views, handed out later.
            taken = [*inputs, *prepared.constants, *results, *values[position + 1 :]]
            results.append(backend.finish(value, meta.dtype, taken))
    return tuple(results)


@functools.lru_cache(maxsize=1024)
def _prepared(walk: _Walk, signature: Signature, optimize: str, backend: Backend) -> Prepared:
    """Shapes and the program for one signature on one backend."""
    metas = _infer(walk, signature)
    program = _program(walk, signature, optimize, backend)
    key: list[Any] = []
    for _, shape, dtype in signature:
        key += [shape, backend.native_dtype(np.dtype(dtype))]
    outputs: list[tuple[Meta, bool, Any]] = []
    computed = {slot for slot, _, _, _ in program.steps}
    seen: set[int] = set()
    for slot in program.outputs:
        meta = metas[slot]
        fresh = slot in computed and slot not in seen
        outputs.append((meta, fresh, backend.native_dtype(meta.dtype)))
        seen.add(slot)
    constants = tuple(
        value for value in program.template if not isinstance(value, int | float | complex | None)
    )
    return Prepared(
        optimize,
        backend,
        signature,
        tuple(key),
        metas,
        program,
        program.plan.peak_bytes,
        tuple(outputs),
        constants,
    )


@functools.lru_cache(maxsize=1024)
def _program(walk: _Walk, signature: Signature, optimize: str, backend: Backend) -> Program:
    metas = _infer(walk, signature)
    return build(
        walk.order,
        walk.index,
        walk.needs_value,
        metas,
        [walk.variables[name] for name in walk.names],
        walk.outputs,
        backend,
        optimize,
    )


def plan(
    outputs: tuple[Expr, ...],
    shapes: Mapping[str, Sequence[int]],
    dtype: Any,
    optimize: str,
    backend: Backend = NUMPY,
) -> Plan:
    """The plan of the program for ``outputs`` with the given (or declared) shapes.

    Its FLOPs, largest array and memory are what :func:`einsgrad.cost` reports and what
    the memory guard checks.
    """
    walk = _walk(outputs)
    signature = _static_signature(walk, shapes, dtype)
    return _program(walk, signature, optimize, backend).plan


def _check_memory(walk: _Walk, prepared: Prepared, limit: int | None) -> None:
    """MemoryLimitError, before anything is allocated, if the program's peak of live
    memory exceeds ``limit``.

    The peak, not the largest single array: three outputs of 1.5 GB each are 4.5 GB held
    at once. The inputs are the caller's and are not counted.
    """
    if limit is None or limit >= prepared.peak:
        return
    plan = prepared.program.plan
    shown = [_live_text(walk, array) for array in plan.at_peak[:3]]
    rest = plan.at_peak[3:]
    if rest:
        others = format_bytes(sum(array.nbytes for array in rest))
        shown.append(f"{len(rest)} more array{'s' if len(rest) > 1 else ''} ({others})")
    raise MemoryLimitError(
        f"evaluating {_outputs_text(walk)} would hold {format_bytes(plan.peak_bytes)} "
        f"({plan.peak_bytes:,} bytes) of arrays live at its peak, over the memory limit of "
        f"{format_bytes(limit)} ({limit:,} bytes); the inputs are not counted. Live then: "
        f"{'; '.join(shown)}. Nothing was allocated. Raise the limit with "
        "einsgrad.memory_limit(...), set_memory_limit(...) or compile(..., memory_limit=...), "
        "or use vjp/jvp/hvp instead of a full Jacobian or Hessian."
    )


def _outputs_text(walk: _Walk) -> str:
    first = short_name(walk.outputs[0])
    count = len(walk.outputs)
    return first if count == 1 else f"{count} outputs ({first}, ...)"


#: How the memory guard's message introduces each kind of live array.
_ROLES = {"result": "", "intermediate": "an intermediate of ", "copy": "the copy handed out of "}


def _live_text(walk: _Walk, array: LiveArray) -> str:
    """``v3 = tanh(X): shape (3000, 1000), float64, 22.9 MiB`` (v3 as the plan names it)."""
    name = short_name(walk.order[array.slot])
    return (
        f"{_ROLES[array.role]}v{array.slot} = {name}: shape {array.shape}, {array.dtype}, "
        f"{format_bytes(array.nbytes)}"
    )


def _static_signature(walk: _Walk, shapes: Mapping[str, Sequence[int]], dtype: Any) -> Signature:
    items = []
    for name, variable in sorted(walk.variables.items()):
        shape = variable.shape if variable.shape is not None else shapes.get(name)
        if shape is None:
            raise ShapeError(f"variable {name!r} has no declared shape; pass {name}=(...) for it")
        kind = variable.dtype if variable.dtype is not None else np.dtype(dtype)
        items.append((name, tuple(int(n) for n in shape), kind.str))
    return tuple(items)
