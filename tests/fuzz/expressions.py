"""Expression trees of the fuzz layer: their text for ``eg.parse_expr``, and their oracles.

A :class:`Node` is one operation of einsgrad's expression language (``parse.py``'s
whitelist). :func:`render` writes it as the string a user would type, every operation
parenthesized, so the string means the tree whatever the precedences. :func:`reference`
computes the same tree with numpy or with ``jax.numpy``: the value a correct parser and
evaluator must give, and, through :func:`jax_gradients`, the gradient a correct reverse
mode must give. Nothing here calls einsgrad.

The functions einsgrad defines and numpy does not are written from their definitions:
``relu(x) = max(x, 0)``, ``sigmoid(x) = 1/(1 + exp(-x))``, softmax and friends with the
maximum subtracted first (as every stable implementation does), ``greater``/``equal`` as
0/1 masks. Under JAX the kinked ones follow the conventions einsgrad documents: relu'(0) =
0 (``jax.nn.relu``), ties of maximum/minimum split evenly (``jnp.maximum``), and
``|x|'(0) = 0``, torch's convention and the README's (JAX's own ``abs`` gives 1 there).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import jax
import jax.numpy as jnp
import jax.scipy.special as jsp
import numpy as np

Axis = int | tuple[int, ...] | None

#: Functions of one argument; the value is the numpy definition, ``xp`` numpy or jax.numpy.
UNARY = ("exp", "log", "sqrt", "tanh", "abs", "sigmoid", "relu", "sign")
#: Reductions that take ``axis=``, with einsgrad's default axis.
REDUCTIONS = {"sum": None, "mean": None, "softmax": -1, "log_softmax": -1, "logsumexp": None}
#: Functions of two arguments with numpy broadcasting.
BINARY_CALLS = ("maximum", "minimum", "greater", "equal")
#: The infix operators and their numpy functions.
INFIX = {"+": "add", "-": "subtract", "*": "multiply", "/": "divide", "@": "matmul"}
#: Operations with a kink or a step, where finite differences mean nothing at the kink.
KINKED = {"abs", "relu", "sign", "maximum", "minimum", "greater", "equal"}
#: Operations numpy itself defines, so numpy's result dtype is the one to expect.
NUMPY_NATIVE = {
    "var", "number", "+", "-", "*", "/", "@", "neg", "pos", "pow", "T", "transpose",
    "einsum", "exp", "log", "sqrt", "tanh", "abs", "sign", "sum", "mean", "maximum",
    "minimum",
}  # fmt: skip


@dataclass(frozen=True)
class Node:
    """One operation: ``op`` is an infix symbol, a function name or a leaf kind.

    ``name`` is a variable's name or an einsum's spec; ``number`` a constant or an
    exponent; ``axis`` the ``axis=`` argument, written only if ``has_axis``.
    """

    op: str
    args: tuple[Node, ...] = ()
    name: str = ""
    number: float = 0.0
    axis: Axis = None
    has_axis: bool = False


def walk(node: Node) -> list[Node]:
    """Every node of the tree, iteratively (a tree can be deep)."""
    found, stack = [], [node]
    while stack:
        current = stack.pop()
        found.append(current)
        stack.extend(current.args)
    return found


def variables(node: Node) -> list[str]:
    return sorted({n.name for n in walk(node) if n.op == "var"})


def operations(node: Node) -> set[str]:
    return {n.op for n in walk(node)}


def _number_text(value: float) -> str:
    text = repr(int(value)) if float(value).is_integer() and abs(value) < 1e15 else repr(value)
    return f"({text})" if value < 0 else text


def _axis_text(axis: Axis) -> str:
    if isinstance(axis, tuple):
        return "(" + "".join(f"{a}, " for a in axis).rstrip(" ") + ")"
    return repr(axis)


def render(node: Node) -> str:
    """The expression string of ``node``, as ``eg.parse_expr`` reads it."""
    args = [render(a) for a in node.args]
    if node.op == "var":
        return node.name
    if node.op == "number":
        return _number_text(node.number)
    if node.op in INFIX:
        return f"({args[0]} {node.op} {args[1]})"
    if node.op == "neg":
        return f"(-{args[0]})"
    if node.op == "pos":
        return f"(+{args[0]})"
    if node.op == "pow":
        return f"({args[0]} ** {_number_text(node.number)})"
    if node.op == "T":
        return f"{args[0]}.T"
    if node.op == "einsum":
        return f"einsum({node.name!r}, {', '.join(args)})"
    if node.has_axis:
        args.append(f"axis={_axis_text(node.axis)}")
    return f"{node.op}({', '.join(args)})"


# --- the oracle -----------------------------------------------------------------------------


def _max_shifted(x: Any, axis: Axis) -> tuple[Any, Any]:
    """``x - max(x)`` along ``axis`` and that maximum (dims kept; 0 where it is not finite)."""
    top = np.max(x, axis=axis, keepdims=True, initial=-np.inf)
    top = np.where(np.isfinite(top), top, 0)
    return x - top, top


def _checked_axis(axis: Axis, rank: int) -> Axis:
    """``axis`` if every axis is in range for ``rank`` and none repeats (numpy lets a 0-d
    array reduce over axis 0 or -1; einsgrad, like numpy for every other rank, does not)."""
    axes = () if axis is None else axis if isinstance(axis, tuple) else (axis,)
    normal = [a % rank if -rank <= a < rank else None for a in axes]
    if None in normal or len(set(normal)) != len(normal):
        raise ValueError(f"axis {axis} out of range for rank {rank}")
    return axis


def _reduction(xp: Any, op: str, x: Any, axis: Axis) -> Any:
    axis = _checked_axis(axis, xp.ndim(x))
    if op == "sum":
        return xp.sum(x, axis=axis)
    if op == "mean":
        return xp.mean(x, axis=axis)
    if xp is jnp:
        if op == "softmax":
            return jax.nn.softmax(x, axis=axis)
        if op == "log_softmax":
            return jax.nn.log_softmax(x, axis=axis)
        return jsp.logsumexp(x, axis=axis)
    shifted, top = _max_shifted(x, axis)
    exps = np.exp(shifted)
    total = np.sum(exps, axis=axis, keepdims=True)
    if op == "softmax":
        return exps / total
    if op == "log_softmax":
        return shifted - np.log(total)
    return np.squeeze(top + np.log(total), axis=axis)


def apply_unary(xp: Any, op: str, x: Any) -> Any:
    if op == "sigmoid":
        return 1 / (1 + xp.exp(-x))
    if op == "relu":
        return jax.nn.relu(x) if xp is jnp else np.maximum(x, 0)
    if op == "abs" and xp is jnp:
        return x * jnp.sign(x)  # d|x|/dx = sign(x), 0 at 0
    return getattr(xp, "absolute" if op == "abs" else op)(x)


def _binary_call(xp: Any, op: str, a: Any, b: Any) -> Any:
    if op in ("greater", "equal"):
        mask = xp.greater(a, b) if op == "greater" else xp.equal(a, b)
        return xp.where(mask, 1.0, 0.0)
    return getattr(xp, op)(a, b)


def reference(node: Node, arrays: Mapping[str, Any], xp: Any = np) -> Any:
    """The value of ``node`` with variables bound to ``arrays``, computed with ``xp``.

    An operation on plain numbers gives a plain number, weakly typed as einsgrad's
    folded constants are (numpy would give a float64 scalar, which makes a float32
    array float64).
    """
    args = [reference(a, arrays, xp) for a in node.args]
    if node.args and all(isinstance(a, int | float) for a in args):
        with np.errstate(all="ignore"):
            folded = _operation(node, [np.float64(a) for a in args], np)
        return float(folded)
    if node.op == "var":
        return arrays[node.name]
    return _operation(node, args, xp)


def _operation(node: Node, args: list[Any], xp: Any) -> Any:
    """``node``'s own operation applied to the values of its arguments."""
    op = node.op
    if op == "number":
        return node.number
    if op in INFIX:
        return getattr(xp, INFIX[op])(*args)
    if op in ("neg", "pos"):
        return -args[0] if op == "neg" else args[0]
    if op == "pow":
        return xp.power(args[0], node.number)
    if op in ("T", "transpose"):
        if xp.ndim(args[0]) != 2:  # einsgrad's .T is the 2-D transpose only
            raise ValueError(".T of a non-2-D array")
        return args[0].T
    if op == "einsum":
        return xp.einsum(node.name, *args)
    if op in REDUCTIONS:
        return _reduction(xp, op, args[0], node.axis if node.has_axis else REDUCTIONS[op])
    if op in BINARY_CALLS:
        return _binary_call(xp, op, *args)
    return apply_unary(xp, op, args[0])


def jax_gradients(
    node: Node, arrays: Mapping[str, np.ndarray], names: Sequence[str], cotangent: np.ndarray
) -> list[np.ndarray]:
    """JAX's gradient of ``sum(cotangent * node)`` with respect to each of ``names``, in float64."""
    with jax.enable_x64(True):
        constants = {k: jnp.asarray(v) for k, v in arrays.items() if k not in names}

        def forward(*values: Any) -> Any:
            bound = {**constants, **dict(zip(names, values, strict=True))}
            return jnp.asarray(reference(node, bound, jnp), dtype=jnp.float64)

        _, pullback = jax.vjp(forward, *(jnp.asarray(arrays[n]) for n in names))
        grads = pullback(jnp.asarray(cotangent, dtype=jnp.float64))
        return [np.asarray(g) for g in grads]
