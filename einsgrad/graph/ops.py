"""The operations users build expressions with.

Each function validates its input, checks shapes when they are known, and builds IR
nodes. ``sum``, ``mean``, ``transpose`` and ``matmul`` lower to einsum; elementwise
operations go through their primitive's name (:mod:`einsgrad.core.primitive`).
Derivative rules are not here: einsum's is in :mod:`einsgrad.rules.einsum`, the others
in the other modules of :mod:`einsgrad.rules`.
"""

from __future__ import annotations

import weakref
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from einsgrad.core.errors import NumberError, OptionError, ShapeError, SpecError
from einsgrad.core.ir import Const, Einsum, Expr, Map, Reduce, Seed, Shape, Size, Var
from einsgrad.core.labels import LETTERS
from einsgrad.core.limits import LARGEST_SIZE, MAX_RANK
from einsgrad.core.primitive import elementwise_op
from einsgrad.core.spec import ELLIPSIS, Spec, parse_spec, resolve
from einsgrad.graph.printing import short_name

__all__ = [
    "add",
    "as_expr",
    "divide",
    "einsum",
    "matmul",
    "mean",
    "multiply",
    "negative",
    "power",
    "subtract",
    "sum",
    "transpose",
    "var",
    "where",
]


def var(
    name: str,
    shape: Sequence[int] | None = None,
    dtype: Any = None,
    *,
    symmetric: bool = False,
    diagonal: bool = False,
) -> Var:
    """A named input variable.

    ``shape`` may be left out: it is then taken from the array at evaluation. A ``dtype``
    (a floating or complex numpy dtype) converts the bound array to it; without one the
    array's own dtype is used (integers become float64).

    ``symmetric=True`` or ``diagonal=True`` declares a structured square matrix. Arrays
    bound to it are checked to have the structure. Its gradient is the projection of the
    unstructured gradient G onto the structure, the one structured matrix whose inner
    product with every structured direction D is the directional derivative:
    ``(G + Gᵀ)/2`` for a symmetric matrix, ``diag(G)`` for a diagonal one. (This is the
    gradient of L(sym(M)) with respect to a free M; conventions that count each
    off-diagonal pair once give ``G + Gᵀ − diag(G)`` instead.) Jacobians, jvp and
    Hessians treat the entries as independent.
    """
    if not isinstance(name, str) or not name.isidentifier():
        raise SpecError(f"a variable name must be a Python identifier, got {name!r}")
    if dtype is not None:
        try:
            kind = np.dtype(dtype)
        except TypeError:
            raise ShapeError(f"variable {name!r}: {dtype!r} is not a dtype") from None
        if kind.kind not in "fc":
            raise ShapeError(f"variable {name!r}: dtype {kind} is not floating or complex")
    dims = None if shape is None else _shape_of(name, shape)
    if symmetric and diagonal:
        raise OptionError(f"variable {name!r}: choose symmetric or diagonal, not both")
    structure = "symmetric" if symmetric else "diagonal" if diagonal else None
    if structure is not None and dims is not None and (len(dims) != 2 or dims[0] != dims[1]):
        raise ShapeError(
            f"variable {name!r}: a {structure} matrix must be square, got shape {dims}"
        )
    return Var(name, dims, dtype, structure)


def _is_int(n: Any) -> bool:
    """An int or numpy integer, but not a bool (True is no size)."""
    return isinstance(n, int | np.integer) and not isinstance(n, bool | np.bool_)


def _shape_of(name: str, shape: Any) -> tuple[int, ...]:
    """``shape`` as a tuple of sizes; a ShapeError for anything that is not one.

    int() would turn 2.5 into 2, True into 1 and the string '23' into (2, 3): each is
    refused instead, as numpy refuses np.zeros((2.5, 3)). So are more axes than a numpy
    array has and an axis no numpy array could have (10**30); a product of sizes too
    large to allocate is fine, as the shape of a symbolic variable.
    """
    if isinstance(shape, np.ndarray) and shape.ndim == 0:
        shape = shape.item()
    if _is_int(shape):
        shape = (shape,)
    if (
        isinstance(shape, str | bytes)
        or not isinstance(shape, Sequence | np.ndarray)
        or (isinstance(shape, np.ndarray) and shape.ndim != 1)
    ):
        raise ShapeError(f"the shape of variable {name!r} must be a tuple of ints, got {shape!r}")
    if len(shape) > MAX_RANK:
        raise ShapeError(
            f"variable {name!r} has {len(shape)} dimensions; einsgrad supports up to "
            f"{MAX_RANK}, as many as a numpy array has"
        )
    for position, n in enumerate(shape):
        if not _is_int(n) or not 0 <= n <= LARGEST_SIZE:
            raise ShapeError(
                f"the shape of variable {name!r} must be a tuple of non-negative ints, got "
                f"{tuple(shape)!r}: at position {position}, {n!r} is {_not_a_size(n)}"
            )
    return tuple(int(n) for n in shape)


def _not_a_size(n: Any) -> str:
    if not _is_int(n):
        return f"a {type(n).__name__}, not an int"
    if n < 0:
        return "a negative size"
    return f"larger than any axis numpy can index ({LARGEST_SIZE:,})"


def project(cotangent: Expr, variable: Var) -> Expr:
    """``cotangent`` projected onto ``variable``'s structure (see :func:`var`)."""
    if variable.structure == "symmetric":
        return multiply(0.5, add(cotangent, transpose(cotangent)))
    if variable.structure == "diagonal":
        return _generalized("ii->ii", cotangent, variable)
    return cotangent


def as_expr(value: Any) -> Expr:
    """``value`` as an expression: expressions pass through, numbers and arrays become constants."""
    if isinstance(value, Expr):
        return value
    if isinstance(value, str):
        raise TypeError(
            f"got the string {value!r} where an expression belongs; "
            "use einsgrad.var(name) for a variable or einsgrad.parse_expr for an expression"
        )
    if isinstance(value, np.ma.MaskedArray):
        raise TypeError(
            "cannot use a masked array in an einsgrad expression: its mask would be ignored; "
            "pass x.filled(value) or x.data"
        )
    if isinstance(value, np.ndarray) and value.dtype.kind not in "fcbiu":
        raise TypeError(_not_numbers(value.dtype))
    if isinstance(value, int) and not _fits_a_float(value):
        raise NumberError(
            f"an integer constant of {_digits(value)} digits is too large for a float "
            "(at most ±1.8e308)"
        )
    try:
        constant = Const(value)
    except (TypeError, ValueError) as error:
        raise TypeError(f"cannot use a {type(value).__name__} in an einsgrad expression") from error
    if not constant.is_scalar and constant.value.dtype.kind not in "fcb":
        raise TypeError(_not_numbers(constant.value.dtype))
    return constant


def _fits_a_float(value: int) -> bool:
    try:
        float(value)
    except OverflowError:
        return False
    return True


def _digits(value: int) -> str:
    """About how many decimal digits ``value`` has (writing it out is quadratic in them)."""
    return f"about {value.bit_length() * 0.30103:.0f}"


def _not_numbers(dtype: np.dtype[Any]) -> str:
    return (
        f"cannot use an array of {dtype} in an einsgrad expression: constants are numbers "
        "(floating, complex, integer or boolean)"
    )


def seed(loss: Expr) -> Expr:
    """∂L/∂L: the number 1 for a loss that is provably a scalar, else a Seed.

    A shapeless loss gets a Seed, which checks at evaluation that the loss is a scalar; a
    full sum or mean always is one, and its seed is then the number 1, which folds away.
    """
    if loss.shape == () or shape_witness(loss) is SCALAR:
        return Const(1.0)
    return Seed(loss)


# --- einsum ---------------------------------------------------------------------------------


def einsum(spec: str, *operands: Any) -> Expr:
    """``numpy.einsum(spec, *operands)`` as an expression.

    Accepts everything numpy does: implicit output, ``...`` with broadcasting (including
    size-1 axes), repeated labels (diagonals, traces), scalars and any number of operands.
    """
    if not isinstance(spec, str):
        raise SpecError(_not_a_spec(spec, operands))
    parsed = parse_spec(spec)
    if len(parsed.inputs) != len(operands):
        raise SpecError(
            f"einsum {spec!r} has {len(parsed.inputs)} input terms but "
            f"{len(operands)} operands were given"
        )
    exprs = []
    for k, operand in enumerate(operands):
        if isinstance(operand, str):
            raise SpecError(
                f"einsum {spec!r}: operand {k} is the string {operand!r}; einsum takes one "
                "spec string, then the operands (arrays, numbers or einsgrad expressions)"
            )
        try:
            exprs.append(as_expr(operand))
        except TypeError:
            raise SpecError(
                f"einsum {spec!r}: operand {k} ({type(operand).__name__}) is not an array, "
                "a number or an einsgrad expression"
            ) from None
    return _einsum_node(parsed, exprs, None)


def _is_sublist(item: Any) -> bool:
    """A subscript list of numpy's interleaved einsum form: ints (and ``...``)."""
    return isinstance(item, list | tuple) and all(
        _is_int(label) or label is Ellipsis for label in item
    )


def _not_a_spec(spec: Any, operands: Sequence[Any]) -> str:
    """Why ``einsum(spec, *operands)`` is not a call einsgrad takes, and what would be."""
    shown = repr(spec) if len(repr(spec)) <= 40 else f"a {type(spec).__name__}"
    expected = f"the spec must be a string, e.g. einsum('ij,jk->ik', A, B); got {shown}"
    arguments = [spec, *operands]
    if len(arguments) < 2 or not all(_is_sublist(a) for a in arguments[1::2]):
        return f"einsum: {expected}"
    interleaved = (
        "numpy's interleaved form einsum(A, [0, 1], B, [1, 2], [0, 2]) is not supported yet"
    )
    # The output sublist, if any, is the odd one out at the end.
    sublists = arguments[1::2] + ([arguments[-1]] if len(arguments) % 2 else [])
    if not _is_sublist(sublists[-1]) or any(
        not 0 <= label < len(LETTERS) for sub in sublists for label in sub if _is_int(label)
    ):
        return f"einsum: {interleaved}; {expected}"
    terms = ["".join("..." if lab is Ellipsis else LETTERS[lab] for lab in sub) for sub in sublists]
    inputs = terms[: len(arguments) // 2]
    text = ",".join(inputs) + ("->" + terms[-1] if len(arguments) % 2 else "")
    names = [a.name if isinstance(a, Var) else f"op{k}" for k, a in enumerate(arguments[0::2])]
    return (
        f"einsum: {interleaved}: the spec must be a string, given first; write this call as "
        f"einsum({text!r}, {', '.join(names[: len(inputs)])})"
    )


def _einsum_node(parsed: Any, operands: Sequence[Expr], like: Expr | Shape | None) -> Expr:
    parsed, operands = _without_ones(parsed, operands)
    shapes = [op.shape for op in operands]
    shape: Shape | None = None
    if isinstance(like, Expr) and like.shape is not None:
        like = like.shape
    if all(s is not None for s in shapes) and not isinstance(like, Expr):

        def names() -> list[str]:
            return [short_name(op) for op in operands]

        resolved = resolve(parsed, shapes, like, names)  # type: ignore[arg-type]
        check_label_count(parsed, resolved, shapes, names)  # type: ignore[arg-type]
        shape = resolved.shape
        folded = _fold_constants(resolved, operands)
        if folded is not None:
            return folded
        if _is_identity(resolved):
            return operands[0]
    elif _same_shape_copy(parsed, operands, like):
        return operands[0]
    return Einsum(parsed, operands, like, shape)


def _is_one(operand: Expr) -> bool:
    """A plain-number 1 (weakly typed: dropping it changes no dtype; 1+0j would)."""
    return (
        isinstance(operand, Const)
        and operand.is_scalar
        and not isinstance(operand.value, complex)
        and operand.value == 1
    )


def _without_ones(parsed: Any, operands: Sequence[Expr]) -> tuple[Any, Sequence[Expr]]:
    """``parsed`` and ``operands`` without factors of 1 (the seed of a bilinear form's grad).

    Only operands with an empty term go: a factor that names no axis fixes no size. One
    operand always stays, as the einsum of ones ``einsum('->ab', 1.0)`` needs it.
    """
    keep = [k for k, op in enumerate(operands) if parsed.inputs[k] or not _is_one(op)]
    if len(keep) == len(operands):
        return parsed, operands
    keep = keep or [0]
    terms = ",".join("".join(parsed.inputs[k]) for k in keep)
    spec = parse_spec(f"{terms}->{''.join(parsed.output)}", generalized=parsed.generalized)
    return spec, [operands[k] for k in keep]


def _is_identity(resolved: Any) -> bool:
    """True when the einsum returns its one operand as it is (no reorder, sum or diagonal)."""
    output = resolved.output
    return resolved.inputs == (output,) and len(set(output)) == len(output)


def _same_shape_copy(parsed: Any, operands: Sequence[Expr], like: Expr | Shape | None) -> bool:
    """True for ``einsum('...->...', x, like=r)`` where x provably has r's shape.

    Then the einsum sums over nothing and broadcasts nothing: it is ``x``. Only the
    all-``...`` term qualifies, which accepts any rank, so no rank error is lost.
    """
    return (
        isinstance(like, Expr)
        and len(operands) == 1
        and parsed.inputs == ((ELLIPSIS,),)
        and parsed.output == (ELLIPSIS,)
        and shape_witness(operands[0]) is shape_witness(like)
    )


def _fold_constants(resolved: Any, operands: Sequence[Expr]) -> Expr | None:
    """An einsum of broadcast constants is itself one: ``einsum('->ab', c)`` with c folded.

    Summing a constant over a label multiplies it by the label's size. Returns None unless
    some operand is a broadcast einsum (plain numbers are left to the einsum) and the
    result writes no diagonal.
    """
    if not any(isinstance(op, Einsum) for op in operands):
        return None
    values = [filled_value(op) for op in operands]
    if any(v is None for v in values) or len(set(resolved.output)) != len(resolved.output):
        return None
    value = float(np.prod([v for v in values if v is not None]))
    present = {label for term in resolved.inputs for label in term}
    for label in present - set(resolved.output):
        value *= resolved.sizes[label]
    shape = resolved.shape
    spec = parse_spec("->" + LETTERS[: len(shape)], generalized=True)
    return Einsum(spec, [Const(value)], shape, shape)


def _generalized(spec: str, operand: Expr, like: Expr | Shape | None) -> Expr:
    return _einsum_node(parse_spec(spec, generalized=True), [operand], like)


# --- axes -----------------------------------------------------------------------------------


def _axis_tuple(axis: int | Sequence[int] | None) -> tuple[int, ...] | None:
    if axis is None:
        return None
    if isinstance(axis, bool):
        raise ShapeError(f"axis must be an int or a tuple of ints, got {axis!r}")
    if isinstance(axis, int | np.integer):
        return (int(axis),)
    if not isinstance(axis, tuple | list) or not all(
        isinstance(a, int | np.integer) and not isinstance(a, bool) for a in axis
    ):
        raise ShapeError(f"axis must be an int or a tuple of ints, got {axis!r}")
    try:
        axes = tuple(int(a) for a in axis)
    except TypeError:
        raise ShapeError(f"axis must be an int or a tuple of ints, got {axis!r}") from None
    return axes


def normalize_axes(axes: tuple[int, ...] | None, ndim: int, of: Expr) -> tuple[int, ...]:
    """``axes`` as sorted non-negative axes of a rank-``ndim`` array; ``None`` means all."""
    if axes is None:
        return tuple(range(ndim))
    result = []
    for a in axes:
        if not -ndim <= a < ndim:
            raise ShapeError(f"axis {a} is out of bounds for {short_name(of)} of rank {ndim}")
        result.append(a % ndim)
    if len(set(result)) != len(result):
        raise ShapeError(f"axis {axes} repeats an axis of {short_name(of)} (rank {ndim})")
    return tuple(sorted(result))


def check_einsum_rank(of: Expr, ndim: int) -> None:
    """A ShapeError if ``of`` has more axes than an einsum can name."""
    if ndim > len(LETTERS):
        raise ShapeError(
            f"{short_name(of)} has {ndim} dimensions; an einsum names each axis with one of "
            f"the {len(LETTERS)} letters a-z and A-Z, so sum, mean, matmul, transpose, einsum "
            f"and the derivatives built from them take at most {len(LETTERS)} (elementwise "
            f"operations take up to {MAX_RANK})"
        )


def check_label_count(
    spec: Any, resolved: Any, shapes: Sequence[Shape], names: Callable[[], Sequence[str]]
) -> None:
    """A ShapeError if the resolved einsum has more labels than einsum has letters
    (``names`` gives the operands' names, and is only called for the error)."""
    count = len(resolved.sizes)
    if count <= len(LETTERS):
        return
    ranks = ", ".join(
        f"{name} has {len(shape)} dimensions" for name, shape in zip(names(), shapes, strict=True)
    )
    raise ShapeError(
        f"einsum {spec.text!r} needs {count} index labels, more than the {len(LETTERS)} "
        f"letters a-z and A-Z an einsum names its axes with ({ranks})"
    )


def axis_terms(axes: tuple[int, ...] | None, ndim: int | None, of: Expr) -> tuple[str, str]:
    """Einsum terms (full, reduced) for reducing ``axes`` of an array of rank ``ndim``.

    With the rank unknown, axes counted from the front take labels before a ``...`` and
    axes counted from the back after it, so the terms hold for any rank.
    """
    if ndim is not None:
        chosen = normalize_axes(axes, ndim, of)
        check_einsum_rank(of, ndim)
        full = LETTERS[:ndim]
        return full, "".join(c for i, c in enumerate(full) if i not in chosen)
    if axes is None:
        return ELLIPSIS, ""
    front = sorted(a for a in axes if a >= 0)
    back = sorted(a for a in axes if a < 0)
    if len(set(axes)) != len(axes):
        raise ShapeError(f"axis {axes} repeats an axis")
    n_front = (max(front) + 1) if front else 0
    n_back = -min(back) if back else 0
    front_labels = LETTERS[:n_front]
    back_labels = LETTERS[n_front : n_front + n_back]
    full = front_labels + ELLIPSIS + back_labels
    kept_front = "".join(c for i, c in enumerate(front_labels) if i not in front)
    kept_back = "".join(c for i, c in enumerate(back_labels) if i - n_back not in back)
    return full, kept_front + ELLIPSIS + kept_back


def sum(x: Any, axis: int | Sequence[int] | None = None) -> Expr:
    """Sum over ``axis`` (all axes by default), as an einsum."""
    x = as_expr(x)
    full, reduced = axis_terms(_axis_tuple(axis), x.ndim, x)
    return _einsum_node(parse_spec(f"{full}->{reduced}"), [x], None)


def size(x: Expr, axis: int | Sequence[int] | None = None) -> Expr:
    """The number of elements of ``x`` along ``axis``: a constant once the shape is known."""
    axes = _axis_tuple(axis)
    if x.shape is not None:
        chosen = normalize_axes(axes, len(x.shape), x)
        return Const(int(np.prod([x.shape[a] for a in chosen], dtype=np.int64)))
    return Size(x, axes)


def mean(x: Any, axis: int | Sequence[int] | None = None) -> Expr:
    """Mean over ``axis`` (all axes by default): the einsum sum divided by the count."""
    x = as_expr(x)
    return divide(sum(x, axis), size(x, axis))


def transpose(x: Any) -> Expr:
    """The transpose of a 2-D expression, as the einsum ``"ij->ji"``."""
    x = as_expr(x)
    if x.ndim is not None and x.ndim != 2:
        raise ShapeError(f".T needs a 2-D operand; {short_name(x)} has shape {x.shape}")
    return _einsum_node(parse_spec("ij->ji"), [x], None)


def matmul(a: Any, b: Any) -> Expr:
    """``a @ b`` with numpy's matmul rules, as an einsum.

    1-D operands are vectors (``"j,j->"``, ``"j,jk->k"``, ``"ij,j->i"``), higher ranks batch
    over leading axes with broadcasting (``"...ij,...jk->...ik"``). When a rank is unknown
    the operand is taken to be at least 2-D; a 1-D array then fails with a ShapeError at
    evaluation (give the variable a shape to use the 1-D rules).
    """
    a, b = as_expr(a), as_expr(b)
    for operand in (a, b):
        if operand.ndim == 0:
            raise ShapeError(
                f"matmul needs operands of rank >= 1; {short_name(operand)} is a scalar"
            )
    batched = not (a.ndim in (1, 2) and b.ndim in (1, 2))
    prefix = ELLIPSIS if batched else ""
    if a.ndim == 1 and b.ndim == 1:
        spec = "j,j->"
    elif a.ndim == 1:
        spec = f"j,{prefix}jk->{prefix}k"
    elif b.ndim == 1:
        spec = f"{prefix}ij,j->{prefix}i"
    else:
        spec = f"{prefix}ij,{prefix}jk->{prefix}ik"
    if a.shape is not None and b.shape is not None:
        check_matmul_inner(a, b, a.shape, b.shape)
        return _einsum_node(parse_spec(spec), [a, b], None)
    return _einsum_node(MatmulSpec.of(parse_spec(spec)), [a, b], None)


@dataclass(frozen=True)
class MatmulSpec(Spec):
    """The spec of ``a @ b`` built before the operands' shapes were known.

    einsum broadcasts a size-1 label against a larger one; matmul does not (numpy refuses
    (3,1) @ (2,4)), so the einsum row's inference checks the inner sizes of an einsum with
    this spec once shapes are bound. Being its own class, it is never equal to the same
    spec from ``einsum``: hash-consing keeps ``eg.einsum("...ij,...jk->...ik", A, B)`` a
    separate node that still broadcasts.
    """

    @classmethod
    def of(cls, spec: Spec) -> MatmulSpec:
        return cls(spec.inputs, spec.output, spec.generalized)


def is_matmul(node: Einsum) -> bool:
    """Whether ``node`` is a matmul whose inner sizes are checked at evaluation."""
    return isinstance(node.spec, MatmulSpec)


def check_matmul_inner(a: Expr, b: Expr, a_shape: Shape, b_shape: Shape) -> None:
    """numpy's matmul rule: a's last axis and b's first (1-D) or second-to-last must be
    equal; batch axes broadcast. A ShapeError names both operands and the sizes."""
    if not a_shape or not b_shape:
        return  # a scalar: the spec's rank check reports it
    inner_a = a_shape[-1]
    inner_b = b_shape[0] if len(b_shape) == 1 else b_shape[-2]
    if inner_a != inner_b:
        raise ShapeError(
            f"matmul: {short_name(a)} has shape {tuple(a_shape)} and {short_name(b)} has shape "
            f"{tuple(b_shape)}; the inner sizes {inner_a} and {inner_b} differ"
        )


# --- elementwise --------------------------------------------------------------------------


def broadcast_shapes(shapes: Sequence[Shape], args: Sequence[Expr], what: str) -> Shape:
    """numpy's broadcast of ``shapes``; a ShapeError naming the arguments if they clash.

    Computed here, not by numpy.broadcast_shapes, which takes at most 32 dimensions and
    refuses shapes too large to allocate: a symbolic 10**10 × 10**10 variable is fine.
    """
    broadcast, clash = _broadcast(shapes)
    if broadcast is not None:
        return broadcast
    axis, sizes = clash
    described = ", ".join(f"{short_name(a)} {tuple(s)}" for a, s in zip(args, shapes, strict=True))
    raise ShapeError(
        f"{what}: shapes do not broadcast together: {described} (axis {axis} from the end "
        f"has sizes {sizes[0]} and {sizes[1]})"
    )


def _broadcast(shapes: Sequence[Shape]) -> tuple[Shape | None, tuple[int, tuple[int, int]]]:
    """The broadcast shape, or None and the first clash: the axis (counted from the end)
    and the two sizes."""
    rank = max((len(shape) for shape in shapes), default=0)
    result = [1] * rank
    for shape in shapes:
        for axis in range(1, len(shape) + 1):
            size, current = shape[-axis], result[-axis]
            if size == current or size == 1:
                continue
            if current != 1:
                return None, (axis, (current, size))
            result[-axis] = size
    return tuple(result), (0, (0, 0))


def _map(name: str, *args: Any) -> Expr:
    op = elementwise_op(name)
    exprs = [as_expr(a) for a in args]
    if all(isinstance(e, Const) and e.is_scalar for e in exprs):
        # Fold arithmetic on plain numbers (1.0 / 640) so derived programs stay readable.
        # Number literals fold in float64 (or complex128), as numpy treats them next to a
        # float array; integer arithmetic would overflow at int64 (3 ** 40).
        literals = [np.float64(v) if isinstance(v, int) else v for v in (e.value for e in exprs)]  # type: ignore[attr-defined]
        with np.errstate(all="ignore"):
            folded = op.forward(np, *literals)
        return Const(folded.item() if hasattr(folded, "item") else folded)
    shapes = [e.shape for e in exprs]
    shape = None
    if all(s is not None for s in shapes):
        shape = broadcast_shapes(shapes, exprs, name)  # type: ignore[arg-type]
    return Map(op, exprs, shape)


def _is_scalar(e: Expr, value: float) -> bool:
    return isinstance(e, Const) and e.is_scalar and e.value == value


def _is_number(e: Expr) -> bool:
    """True for a plain-number constant (weakly typed, so it folds with another)."""
    return isinstance(e, Const) and bool(e.is_scalar)


def add(a: Any, b: Any) -> Expr:
    """``a + b`` with numpy broadcasting."""
    left, right = as_expr(a), as_expr(b)
    if _is_scalar(right, 0) and left.shape is not None:
        return left
    if _is_scalar(left, 0) and right.shape is not None:
        return right
    return _map("add", left, right)


def subtract(a: Any, b: Any) -> Expr:
    """``a - b`` with numpy broadcasting."""
    left, right = as_expr(a), as_expr(b)
    if _is_scalar(right, 0) and left.shape is not None:
        return left
    return _map("subtract", left, right)


def filled_value(node: Expr) -> float | None:
    """The number a broadcast constant holds everywhere (``einsum('->ab', 1.0)``), else None."""
    if isinstance(node, Const) and node.is_scalar and not isinstance(node.value, complex):
        return float(node.value)
    if not isinstance(node, Einsum) or node.shape is None:
        return None
    output = node.spec.output
    if any(node.spec.inputs) or len(set(output)) != len(output) or "..." in output:
        return None
    value = 1.0
    for operand in node.operands:
        if not (isinstance(operand, Const) and operand.is_scalar) or isinstance(
            operand.value, complex
        ):
            return None
        value *= float(operand.value)
    return value


def _covers(big: Expr, small: Expr) -> bool:
    """True when ``small`` broadcast against ``big`` leaves ``big``'s (static) shape."""
    if big.shape is None or small.shape is None:
        return False
    return _broadcast([big.shape, small.shape])[0] == big.shape


def multiply(a: Any, b: Any) -> Expr:
    """``a * b`` with numpy broadcasting."""
    left, right = as_expr(a), as_expr(b)
    for x, y in ((left, right), (right, left)):
        # A broadcast constant times an array of the full shape is a scalar product: the
        # cotangent of a sum (ones) times G is G, with no array of ones made.
        value = filled_value(x) if isinstance(x, Einsum) else None
        if value is not None and _covers(y, x):
            return y if value == 1.0 else multiply(Const(value), y)
        # c · (d · y) is (cd) · y: a mean's 1/B times a square's 2 becomes one factor (often
        # 1, and gone) instead of two passes over y.
        if _is_number(x) and isinstance(y, Map) and y.op.name == "multiply":
            for inner, rest in ((y.args[0], y.args[1]), (y.args[1], y.args[0])):
                if _is_number(inner):
                    return multiply(_map("multiply", x, inner), rest)
    if _is_scalar(right, 1) and left.shape is not None:
        return left
    if _is_scalar(left, 1) and right.shape is not None:
        return right
    return _map("multiply", left, right)


def divide(a: Any, b: Any) -> Expr:
    """``a / b`` with numpy broadcasting."""
    left, right = as_expr(a), as_expr(b)
    if _is_scalar(right, 1) and left.shape is not None:
        return left
    return _map("divide", left, right)


def negative(x: Any) -> Expr:
    """``-x``."""
    return _map("negative", x)


def power(x: Any, exponent: Any) -> Expr:
    """``x ** exponent`` for a constant scalar exponent."""
    p = as_expr(exponent)
    if not (isinstance(p, Const) and p.is_scalar and not isinstance(p.value, complex)):
        raise ShapeError(
            f"** needs a constant real scalar exponent, got {p!r}; "
            "write exp(y * log(x)) for a variable exponent"
        )
    base = as_expr(x)
    if p.value == 1 and base.shape is not None:
        return base
    return _map("power", base, p)


def where(condition: Any, a: Any, b: Any) -> Expr:
    """``a`` where the constant ``condition`` holds, else ``b`` (numpy broadcasting)."""
    if isinstance(condition, Expr) and not isinstance(condition, Const):
        raise ShapeError(
            "where(condition, a, b) needs a constant condition (a boolean array); "
            f"got the expression {condition!r}"
        )
    cond = condition if isinstance(condition, Const) else Const(np.asarray(condition, dtype=bool))
    return _map("where", cond, a, b)


# --- reductions -----------------------------------------------------------------------------


def reduction(op: Any, x: Expr, axes: tuple[int, ...] | None) -> Expr:
    """The reduction primitive ``op`` of ``x`` over ``axes`` (normalized once the rank is known)."""
    shape = None
    if x.shape is not None:
        axes = normalize_axes(axes, len(x.shape), x)
        shape = tuple(n for i, n in enumerate(x.shape) if i not in axes)
    elif axes is not None:
        axis_terms(axes, None, x)  # validates repeats
    return Reduce(op, x, axes, shape)


def unreduce(e: Expr, reduced: Reduce) -> Expr:
    """Broadcast ``e`` (of ``reduced``'s shape) back to the shape of ``reduced.arg``."""
    x = reduced.arg
    full, kept = axis_terms(reduced.axes, x.ndim, x)
    return _generalized(f"{kept}->{full}", e, x)


# The witnesses of elementwise and shape-referenced nodes, None for a node that is its own:
# a node stored as its own value would never leave the weak dictionary.
_WITNESSES: weakref.WeakKeyDictionary[Expr, Expr | None] = weakref.WeakKeyDictionary()

#: The witness of every node that is provably a scalar (any node of shape () would do).
SCALAR = Const(0.0)


def _direct_witness(node: Expr) -> Expr | None:
    """``node``'s witness when its kind alone decides it, or None when its sources do."""
    full_einsum = isinstance(node, Einsum) and not node.spec.output
    full_reduce = isinstance(node, Reduce) and node.axes is None
    if node.shape == () or full_einsum or full_reduce:
        return SCALAR
    if isinstance(node, Map) or (isinstance(node, Einsum) and isinstance(node.like, Expr)):
        return None
    return node


def _witness_sources(node: Expr) -> tuple[Expr, ...]:
    """The nodes whose common witness, if they have one, is ``node``'s."""
    if isinstance(node, Einsum) and isinstance(node.like, Expr):
        return (node.like,)  # resolved against its reference, it takes that shape
    if isinstance(node, Map):
        # Broadcasting equal shapes, or against a scalar, gives that shape back.
        return node.args
    return ()


def shape_witness(node: Expr) -> Expr:
    """A node that provably has ``node``'s shape for every binding of the variables.

    Two nodes with one witness have equal shapes even when neither shape is known before
    evaluation: ``g * greater(t, 0)`` has the shape of ``t`` when ``g`` does, and a full
    sum ``einsum('...->', x)`` is a scalar (:data:`SCALAR`) whatever ``x`` is. A node with
    no such reason is its own witness. Iterative and memoized, as the chains of a deep
    network's backward pass are long.
    """
    if _direct_witness(node) is not None:
        return _known_witness(node)
    stack = [node]
    while stack:
        top = stack[-1]
        if top in _WITNESSES:
            stack.pop()
            continue
        sources = _witness_sources(top)
        missing = [s for s in sources if _direct_witness(s) is None and s not in _WITNESSES]
        if missing:
            stack.extend(missing)
            continue
        stack.pop()
        found = {_known_witness(s) for s in sources} - {SCALAR}
        _WITNESSES[top] = found.pop() if len(found) == 1 else SCALAR if not found else None
    return _known_witness(node)


def _known_witness(node: Expr) -> Expr:
    direct = _direct_witness(node)
    if direct is not None:
        return direct
    witness = _WITNESSES[node]
    return node if witness is None else witness


def unbroadcast(cotangent: Expr, arg: Expr) -> Expr:
    """``cotangent`` summed back over the axes numpy broadcast ``arg`` along.

    With both shapes known this is a plain einsum (``"ab->b"`` for a bias); otherwise a
    generalized ``"...->..."`` resolved against ``arg``'s shape at evaluation, or nothing
    when ``cotangent`` provably has that shape (see :func:`shape_witness`).
    """
    if cotangent.shape is not None and cotangent.shape == arg.shape:
        return cotangent
    if cotangent.shape is None or arg.shape is None or len(arg.shape) > len(cotangent.shape):
        return _generalized(f"{ELLIPSIS}->{ELLIPSIS}", cotangent, arg)
    check_einsum_rank(cotangent, len(cotangent.shape))
    labels = LETTERS[: len(cotangent.shape)]
    kept = labels[len(cotangent.shape) - len(arg.shape) :]
    trailing = cotangent.shape[len(cotangent.shape) - len(arg.shape) :]
    if all(a == g for a, g in zip(arg.shape, trailing, strict=True)):
        return _einsum_node(parse_spec(f"{labels}->{kept}"), [cotangent], None)
    return _generalized(f"{labels}->{kept}", cotangent, arg)
