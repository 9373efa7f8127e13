"""The expression IR: one immutable, hash-consed node type per kind of operation.

=========  ==============================================================================
node       meaning
=========  ==============================================================================
Var        a named input array (shape optional: taken from the array at evaluation)
Const      a number or a constant array
Einsum     an n-ary (generalized) einsum; sum, mean, transpose and matmul lower to it
Map        an elementwise primitive over numpy-broadcast arguments (``+``, ``exp``, ...)
Reduce     a reduction primitive over axes that is not an einsum (``logsumexp``)
Size       the number of elements along some axes of an expression (a shape query)
Seed       the cotangent 1 of a loss whose shape is checked to be scalar at evaluation
=========  ==============================================================================

Nodes are *hash-consed*: constructing a node equal to a live one returns that very object,
so structurally equal subexpressions are one node, ``is`` is structural equality and
dictionaries keyed on nodes do common-subexpression elimination for free.

A node has *children* (values it is computed from; derivatives flow through them) and
*references* (nodes it needs only the shape of: an Einsum's shape reference, a Size's
argument). Derivative rules never differentiate through a reference.

This module is the leaf of the package: it imports no other einsgrad module. What a
node kind *does* (its derivatives, lowering, printing, rewriting) is its row in the rule
table, :mod:`einsgrad.core.kinds`, filled in by its module in :mod:`einsgrad.rules`; the
arithmetic operators and methods of :class:`Expr` are installed by the API layer.
"""

from __future__ import annotations

import hashlib
import threading
import weakref
from collections.abc import Callable, Container, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

__all__ = [
    "Const",
    "Einsum",
    "Expr",
    "Map",
    "Meta",
    "Reduce",
    "Seed",
    "Shape",
    "Size",
    "Var",
    "install_operators",
    "reaching",
    "toposort",
]

Shape = tuple[int, ...]
Scalar = int | float | complex


@dataclass(frozen=True)
class Meta:
    """What evaluation knows of a node before computing it: shape and dtype.

    ``dtype`` is ``None`` for a weakly typed Python scalar, which (as in numpy >= 2)
    adopts the dtype of the arrays it meets: float32 in stays float32.
    """

    shape: Shape
    dtype: np.dtype[Any] | None


_INTERN: weakref.WeakValueDictionary[tuple[Any, ...], Expr] = weakref.WeakValueDictionary()
_INTERN_LOCK = threading.Lock()


class Expr:
    """Base class of every IR node. Arithmetic operators build new nodes."""

    __slots__ = ("__weakref__", "shape")
    __array_ufunc__ = None  # numpy arrays on the left defer to our reflected operators

    shape: Shape | None
    kind: ClassVar[str] = "expr"

    @classmethod
    def _interned(cls, key: tuple[Any, ...], build: Callable[[Any], None]) -> Any:
        full_key = (cls, *key)
        with _INTERN_LOCK:
            node = _INTERN.get(full_key)
            if node is None:
                node = object.__new__(cls)
                build(node)
                _INTERN[full_key] = node
        return node

    # -- graph structure ---------------------------------------------------------------
    @property
    def children(self) -> tuple[Expr, ...]:
        """Nodes this one is computed from."""
        return ()

    @property
    def references(self) -> tuple[Expr, ...]:
        """Nodes this one needs only the shape of."""
        return ()

    @property
    def ndim(self) -> int | None:
        """The rank, or ``None`` while the shape is unknown."""
        return None if self.shape is None else len(self.shape)

    @property
    def variables(self) -> tuple[Var, ...]:
        """The variables the expression depends on (values or shapes), in first-use order."""
        return tuple(node for node in toposort([self]) if isinstance(node, Var))

    # -- operators: installed by the API layer (einsgrad/__init__.py), so the IR imports
    # none of the modules that build, evaluate or print expressions ------------------------
    def __add__(self, other: Any) -> Expr:
        result: Expr = _operator("add")(self, other)
        return result

    def __radd__(self, other: Any) -> Expr:
        result: Expr = _operator("add")(other, self)
        return result

    def __sub__(self, other: Any) -> Expr:
        result: Expr = _operator("subtract")(self, other)
        return result

    def __rsub__(self, other: Any) -> Expr:
        result: Expr = _operator("subtract")(other, self)
        return result

    def __mul__(self, other: Any) -> Expr:
        result: Expr = _operator("multiply")(self, other)
        return result

    def __rmul__(self, other: Any) -> Expr:
        result: Expr = _operator("multiply")(other, self)
        return result

    def __truediv__(self, other: Any) -> Expr:
        result: Expr = _operator("divide")(self, other)
        return result

    def __rtruediv__(self, other: Any) -> Expr:
        result: Expr = _operator("divide")(other, self)
        return result

    def __pow__(self, other: Any) -> Expr:
        result: Expr = _operator("power")(self, other)
        return result

    def __neg__(self) -> Expr:
        result: Expr = _operator("negative")(self)
        return result

    def __pos__(self) -> Expr:
        return self

    def __matmul__(self, other: Any) -> Expr:
        result: Expr = _operator("matmul")(self, other)
        return result

    def __rmatmul__(self, other: Any) -> Expr:
        result: Expr = _operator("matmul")(other, self)
        return result

    @property
    def T(self) -> Expr:
        """The transpose of a 2-D expression (numpy's ``.T`` for matrices)."""
        result: Expr = _operator("transpose")(self)
        return result

    def sum(self, axis: int | Sequence[int] | None = None) -> Expr:
        """Sum over ``axis`` (all axes by default)."""
        result: Expr = _operator("sum")(self, axis)
        return result

    def mean(self, axis: int | Sequence[int] | None = None) -> Expr:
        """Mean over ``axis`` (all axes by default)."""
        result: Expr = _operator("mean")(self, axis)
        return result

    def to_einsum(self) -> str:
        """This expression as one numpy einsum call, if it simplifies to one."""
        text: str = _operator("to_einsum")(self)
        return text

    def to_index(self, name: str = "Y") -> str:
        """This expression in index notation, ``Y[i,j] = X[i,k] * W[k,j]`` (static shapes)."""
        text: str = _operator("to_index")(self, name)
        return text

    def to_latex(self, name: str = "Y") -> str:
        """This expression as a LaTeX index equation with explicit sums."""
        text: str = _operator("to_latex")(self, name)
        return text

    def to_matrix(self, style: str = "math") -> str | None:
        """Matrix notation (``Xᵀ·dY``, or ``X.T @ dY`` with ``style="numpy"``), if there is one."""
        text: str | None = _operator("to_matrix")(self, "numpy" if style == "numpy" else "math")
        return text

    def __bool__(self) -> bool:
        raise TypeError("an einsgrad expression has no truth value; evaluate it first")

    # -- evaluation and display ------------------------------------------------------------
    def __call__(self, **arrays: Any) -> Any:
        """Evaluate with numpy: ``expr(X=x, W=w)``."""
        return _operator("evaluate")(self, None, **arrays)

    def eval(self, mapping: Mapping[str, Any] | None = None, **arrays: Any) -> Any:
        """Evaluate with numpy from a mapping of variable names to arrays."""
        return _operator("evaluate")(self, mapping, **arrays)

    def __str__(self) -> str:
        text: str = _operator("str")(self)
        return text

    def __repr__(self) -> str:
        text: str = _operator("repr")(self)
        return text


_OPERATORS: dict[str, Callable[..., Any]] = {}


def install_operators(**functions: Callable[..., Any]) -> None:
    """Give ``Expr`` its operators and methods (``add=``, ``evaluate=``, ``str=``, ...)."""
    _OPERATORS.update(functions)


def _operator(name: str) -> Callable[..., Any]:
    try:
        return _OPERATORS[name]
    except KeyError:
        raise LookupError(
            f"the expression operator {name!r} is not installed; import einsgrad first"
        ) from None


def _as_shape(shape: Iterable[int] | None) -> Shape | None:
    if shape is None:
        return None
    return tuple(int(n) for n in shape)


class Var(Expr):
    """A named input. Shape and dtype may be left out; then the array's are used.

    A declared dtype converts the bound array to it (``var("X", dtype="float32")``).
    ``structure`` is ``"symmetric"`` or ``"diagonal"`` for a structured matrix: its
    gradient is projected onto that structure (see :func:`einsgrad.var`).
    """

    __slots__ = ("dtype", "name", "structure")
    kind = "var"
    name: str
    dtype: np.dtype[Any] | None
    structure: str | None

    def __new__(
        cls,
        name: str,
        shape: Iterable[int] | None = None,
        dtype: Any = None,
        structure: str | None = None,
    ) -> Var:
        fixed = _as_shape(shape)
        kind = None if dtype is None else np.dtype(dtype)

        def build(node: Any) -> None:
            node.name = name
            node.shape = fixed
            node.dtype = kind
            node.structure = structure

        key = (name, fixed, None if kind is None else kind.str, structure)
        return cls._interned(key, build)  # type: ignore[no-any-return]


class Const(Expr):
    """A constant: a Python number (weakly typed, as in numpy) or an array."""

    __slots__ = ("value",)
    kind = "const"
    value: Any

    def __new__(cls, value: Any) -> Const:
        if isinstance(value, bool):
            value = float(value)
        # numpy scalars (np.float64(2)) are strongly typed, as in numpy: kept as 0-d arrays.
        if isinstance(value, int | float | complex) and not isinstance(value, np.generic):
            scalar: Scalar = value
            key: tuple[Any, ...] = (type(value).__name__, repr(value))

            def build_scalar(node: Any) -> None:
                node.value = scalar
                node.shape = ()

            return cls._interned(key, build_scalar)  # type: ignore[no-any-return]
        array = np.array(value, copy=True)
        if array.dtype.kind not in "fcb":
            array = array.astype(np.float64) if array.dtype.kind in "iu" else array
        if array.dtype == object:
            raise TypeError(f"cannot make a constant of {type(value).__name__}")
        array.setflags(write=False)
        digest = hashlib.blake2b(np.ascontiguousarray(array).tobytes(), digest_size=16).digest()

        def build_array(node: Any) -> None:
            node.value = array
            node.shape = array.shape

        return cls._interned((array.dtype.str, array.shape, digest), build_array)  # type: ignore[no-any-return]

    @property
    def is_scalar(self) -> bool:
        return not isinstance(self.value, np.ndarray)


class Einsum(Expr):
    """A generalized einsum over ``operands``; see :mod:`einsgrad.core.spec`.

    ``like`` is the shape reference of a generalized einsum: the output labels name its
    axes, which fixes the sizes of broadcast labels and of the output ``...``. It is an
    expression whose shape is used (when that shape is only known at evaluation) or the
    shape itself, as a tuple.
    """

    __slots__ = ("like", "operands", "spec")
    kind = "einsum"
    spec: Any  # an einsgrad.core.spec.Spec (the IR imports no other einsgrad module)
    operands: tuple[Expr, ...]
    like: Expr | Shape | None

    def __new__(
        cls,
        spec: Any,
        operands: Sequence[Expr],
        like: Expr | Shape | None,
        shape: Shape | None,
    ) -> Einsum:
        ops_tuple = tuple(operands)
        if isinstance(like, Expr) and like.shape is not None:
            like = like.shape
        if isinstance(like, tuple):
            shape = like

        def build(node: Any) -> None:
            node.spec = spec
            node.operands = ops_tuple
            node.like = like
            node.shape = shape

        return cls._interned((spec, ops_tuple, like), build)  # type: ignore[no-any-return]

    @property
    def children(self) -> tuple[Expr, ...]:
        return self.operands

    @property
    def references(self) -> tuple[Expr, ...]:
        return (self.like,) if isinstance(self.like, Expr) else ()


class Map(Expr):
    """An elementwise primitive applied to numpy-broadcast arguments."""

    __slots__ = ("args", "op")
    kind = "map"
    op: Any  # an einsgrad.core.primitive.ElementwiseOp
    args: tuple[Expr, ...]

    def __new__(cls, op: Any, args: Sequence[Expr], shape: Shape | None) -> Map:
        args_tuple = tuple(args)

        def build(node: Any) -> None:
            node.op = op
            node.args = args_tuple
            node.shape = shape

        return cls._interned((op, args_tuple), build)  # type: ignore[no-any-return]

    @property
    def children(self) -> tuple[Expr, ...]:
        return self.args


class Reduce(Expr):
    """A reduction primitive over ``axes`` that is not an einsum (e.g. ``logsumexp``).

    ``axes`` holds non-negative axes when the argument's rank is known; otherwise as
    given (negative axes count from the end).
    """

    __slots__ = ("arg", "axes", "op")
    kind = "reduce"
    op: Any  # an einsgrad.core.primitive.ReductionOp
    arg: Expr
    axes: tuple[int, ...] | None

    def __new__(
        cls, op: Any, arg: Expr, axes: tuple[int, ...] | None, shape: Shape | None
    ) -> Reduce:
        def build(node: Any) -> None:
            node.op = op
            node.arg = arg
            node.axes = axes
            node.shape = shape

        return cls._interned((op, arg, axes), build)  # type: ignore[no-any-return]

    @property
    def children(self) -> tuple[Expr, ...]:
        return (self.arg,)


class Size(Expr):
    """The number of elements of ``arg`` along ``axes`` (all axes if ``None``).

    A shape query: its value is a Python integer and its derivative is zero. ``mean``
    uses it when the shape is only known at evaluation.
    """

    __slots__ = ("arg", "axes")
    kind = "size"
    arg: Expr
    axes: tuple[int, ...] | None

    def __new__(cls, arg: Expr, axes: tuple[int, ...] | None) -> Size:
        def build(node: Any) -> None:
            node.arg = arg
            node.axes = axes
            node.shape = ()

        return cls._interned((arg, axes), build)  # type: ignore[no-any-return]

    @property
    def references(self) -> tuple[Expr, ...]:
        return (self.arg,)


def toposort(
    roots: Iterable[Expr], *, references: bool = True, stop: Container[Expr] = ()
) -> list[Expr]:
    """Every node reachable from ``roots``, each once, children before parents.

    Iterative, so deep graphs (hundreds of layers) do not hit Python's recursion limit.
    With ``references=False`` shape-only references are not followed. The nodes of
    ``stop`` (other than a root) are listed but not looked below.
    """
    roots = list(roots)  # read twice when ``stop`` is given
    rooted = {id(root) for root in roots} if stop else set()
    order: list[Expr] = []
    seen: set[int] = set()
    for root in roots:
        if id(root) in seen:
            continue
        stack: list[tuple[Expr, bool]] = [(root, False)]
        while stack:
            node, expanded = stack.pop()
            if expanded:
                order.append(node)
                continue
            if id(node) in seen:
                continue
            seen.add(id(node))
            if stop and node in stop and id(node) not in rooted:
                order.append(node)
                continue
            stack.append((node, True))
            deps = node.children + (node.references if references else ())
            for dep in reversed(deps):
                if id(dep) not in seen:
                    stack.append((dep, False))
    return order


class Seed(Expr):
    """The cotangent ∂L/∂L = 1 of a loss whose shape is only known at evaluation.

    Evaluation checks that the loss is a scalar and raises GradError otherwise, so a
    non-scalar loss can never silently be read as ``sum(L)``.
    """

    __slots__ = ("loss",)
    kind = "seed"
    loss: Expr

    def __new__(cls, loss: Expr) -> Seed:
        def build(node: Any) -> None:
            node.loss = loss
            node.shape = ()

        return cls._interned((loss,), build)  # type: ignore[no-any-return]

    @property
    def references(self) -> tuple[Expr, ...]:
        return (self.loss,)


def reaching(order: Sequence[Expr], targets: Iterable[Expr]) -> set[Expr]:
    """The nodes of ``order`` (children first) from which some target is reachable.

    Reverse-mode sweeps visit only these: a branch that reaches no target is never built.
    """
    wanted = set(targets)
    found: set[Expr] = set()
    for node in order:
        if node in wanted or any(child in found for child in node.children):
            found.add(node)
    return found
