"""Elementwise primitives: each forward kernel with its derivative rule.

One registration per primitive, forward and backward side by side. A rule receives the
node ``y = op(x_1, ..., x_n)``, the cotangent ``ȳ = ∂L/∂y`` (of ``y``'s broadcast shape)
and which arguments need a cotangent; it returns ``x̄_k = ∂L/∂x_k`` written in IR nodes,
so that derivatives can be differentiated again. The Map row's vjp sums each result back
over the axes its argument was broadcast along; the rules never deal with broadcasting.

Conventions at kinks: ``relu'(0) = 0`` (as JAX and torch), ``|x|'(0) = sign(0) = 0`` (as
torch and autograd; JAX gives 1), and ``maximum``/``minimum`` split the cotangent half and
half on ties (as JAX and torch). ``tests/test_stability.py`` checks each claim.
Their cotangents pass through the masks by a select (``masked``), not a product, so an
infinite cotangent where a mask is 0 gives 0, as JAX's relu does (not 0 · ∞ = NaN).

The module ends with the row of the ``Map`` node kind in the rule table: how any
elementwise node is differentiated (forward, reverse, batched), printed and rebuilt.
The einsum rule is not here: it is one general function, in :mod:`einsgrad.rules.einsum`.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

from einsgrad.core import kinds
from einsgrad.core.derivation import ElementwiseSteps, rule_statement
from einsgrad.core.errors import NoFormError, ShapeError
from einsgrad.core.ir import Expr, Map, Meta
from einsgrad.core.labels import letters
from einsgrad.core.lowering import Lowered, StepInput
from einsgrad.core.primitive import ELEMENTWISE, ElementwiseOp, ElementwiseRule
from einsgrad.graph import ops
from einsgrad.graph.matrix_text import map_form
from einsgrad.graph.printing import ATOM, short_name
from einsgrad.graph.static import (
    ONE,
    add_all,
    right_aligned,
    static_einsum,
    static_shape,
)
from einsgrad.rules.algebra import COMMUTATIVE, simplify_map

# The user-facing functions this module defines (einsgrad exports them all).
__all__ = ["abs", "exp", "log", "maximum", "minimum", "relu", "sigmoid", "sqrt", "tanh"]


def elementwise(
    name: str, forward: Callable[..., Any], arity: int = 1, **display: Any
) -> Callable[[ElementwiseRule], Callable[..., Expr]]:
    """Register the elementwise primitive ``name``: its forward and the decorated rule.

    ``forward(xp, *args)`` computes the value with the array namespace ``xp`` of the
    backend (numpy, or another array-API library). The decorator returns the
    user-facing function ``name(*args) -> Expr``, documented by the rule's docstring.
    """

    def register(rule: ElementwiseRule) -> Callable[..., Expr]:
        ELEMENTWISE[name] = ElementwiseOp(name, arity, forward, rule, **display)

        def build(*args: Any) -> Expr:
            if len(args) != arity:
                raise TypeError(
                    f"{name}() takes {arity} argument{'s' * (arity > 1)}, got {len(args)}"
                )
            return ops._map(name, *args)

        build.__name__ = build.__qualname__ = name
        build.__doc__ = rule.__doc__
        return build

    return register


# --- arithmetic (exposed as operators by einsgrad.graph.ops, which also folds x + 0 etc.) ---


@elementwise("add", lambda xp, a, b: xp.add(a, b), 2, infix="+", precedence=10)
def _add(y: Map, g: Expr, wanted: tuple[bool, ...]) -> tuple[Expr | None, ...]:
    """y_i = a_i + b_i;  ā_i = ȳ_i,  b̄_i = ȳ_i."""
    return g, g


@elementwise("subtract", lambda xp, a, b: xp.subtract(a, b), 2, infix="-", precedence=10)
def _subtract(y: Map, g: Expr, wanted: tuple[bool, ...]) -> tuple[Expr | None, ...]:
    """y_i = a_i − b_i;  ā_i = ȳ_i,  b̄_i = −ȳ_i."""
    return g, (-g if wanted[1] else None)


@elementwise("multiply", lambda xp, a, b: xp.multiply(a, b), 2, infix="*", precedence=20)
def _multiply(y: Map, g: Expr, wanted: tuple[bool, ...]) -> tuple[Expr | None, ...]:
    """y_i = a_i · b_i;  ā_i = ȳ_i · b_i,  b̄_i = ȳ_i · a_i."""
    a, b = y.args
    return (g * b if wanted[0] else None), (g * a if wanted[1] else None)


@elementwise("divide", lambda xp, a, b: xp.divide(a, b), 2, infix="/", precedence=20)
def _divide(y: Map, g: Expr, wanted: tuple[bool, ...]) -> tuple[Expr | None, ...]:
    """y_i = a_i / b_i;  ā_i = ȳ_i / b_i,  b̄_i = −ȳ_i · y_i / b_i."""
    b = y.args[1]
    return (g / b if wanted[0] else None), (-(g * y) / b if wanted[1] else None)


@elementwise("negative", lambda xp, x: xp.negative(x), 1, infix="-", precedence=30)
def _negative(y: Map, g: Expr, wanted: tuple[bool, ...]) -> tuple[Expr | None, ...]:
    """y_i = −x_i;  x̄_i = −ȳ_i."""
    return (-g,)


@elementwise("power", lambda xp, x, p: xp.power(x, p), 2, infix="**", precedence=40)
def _power(y: Map, g: Expr, wanted: tuple[bool, ...]) -> tuple[Expr | None, ...]:
    """y_i = x_i ** p for a constant scalar p;  x̄_i = ȳ_i · p · x_i ** (p − 1), and x̄_i = 0
    for p = 0.

    x ** 0 is 1 everywhere, so its derivative is 0 everywhere; p · x ** (p − 1) would be
    0 · ∞ = NaN at x = 0 (torch and autograd give 0, JAX for an int p). The exponent is a
    constant (``ops.power`` enforces it), so it gets no cotangent.
    """
    x, p = y.args
    exponent = p.value  # type: ignore[attr-defined]
    if exponent == 0:
        return None, None
    if exponent == 2:
        return g * (2 * x), None
    return g * (exponent * x ** (exponent - 1)), None


# --- transcendental -------------------------------------------------------------------------


@elementwise("exp", lambda xp, x: xp.exp(x))
def exp(y: Map, g: Expr, wanted: tuple[bool, ...]) -> tuple[Expr | None, ...]:
    """Elementwise exponential.

    y_i = exp(x_i);  x̄_i = ȳ_i · y_i.
    """
    return (g * y,)


@elementwise("log", lambda xp, x: xp.log(x))
def log(y: Map, g: Expr, wanted: tuple[bool, ...]) -> tuple[Expr | None, ...]:
    """Elementwise natural logarithm.

    y_i = log(x_i);  x̄_i = ȳ_i / x_i.
    """
    return (g / y.args[0],)


@elementwise("sqrt", lambda xp, x: xp.sqrt(x))
def sqrt(y: Map, g: Expr, wanted: tuple[bool, ...]) -> tuple[Expr | None, ...]:
    """Elementwise square root.

    y_i = √x_i;  x̄_i = ȳ_i / (2 y_i).
    """
    return (g / (2 * y),)


@elementwise("tanh", lambda xp, x: xp.tanh(x))
def tanh(y: Map, g: Expr, wanted: tuple[bool, ...]) -> tuple[Expr | None, ...]:
    """Elementwise hyperbolic tangent.

    y_i = tanh(x_i);  x̄_i = ȳ_i · (1 − y_i²).
    """
    return (g * (1 - y * y),)


def _sigmoid_forward(xp: Any, x: Any) -> Any:
    """1 / (1 + e^−x) from e^−|x| ≤ 1: no overflow, and full precision for x ≪ 0.

    The split at x ≥ 0 orders the argument and |x| drops its phase, so a complex x takes
    the formula itself, as numpy's 1 / (1 + exp(−z)) does.
    """
    if xp.asarray(x).dtype.kind == "c":
        return 1 / (1 + xp.exp(-x))
    small = xp.exp(-xp.abs(x))
    return xp.where(x >= 0, 1 / (1 + small), small / (1 + small))


@elementwise("sigmoid", _sigmoid_forward)
def sigmoid(y: Map, g: Expr, wanted: tuple[bool, ...]) -> tuple[Expr | None, ...]:
    """Elementwise logistic function, computed without overflow.

    y_i = 1 / (1 + exp(−x_i));  x̄_i = ȳ_i · y_i · (1 − y_i).
    """
    return (g * (y * (1 - y)),)


# --- piecewise ------------------------------------------------------------------------------


@elementwise("relu", lambda xp, x: xp.maximum(x, 0))
def relu(y: Map, g: Expr, wanted: tuple[bool, ...]) -> tuple[Expr | None, ...]:
    """Elementwise max(x, 0).

    y_i = max(x_i, 0);  x̄_i = ȳ_i · [x_i > 0], so relu'(0) = 0 as in JAX and torch.
    The product is a select (``masked``): x̄_i = 0 where x_i ≤ 0 even if ȳ_i is ∞.
    """
    return (select(g, greater(y.args[0], 0)),)


@elementwise("abs", lambda xp, x: xp.abs(x))
def abs(y: Map, g: Expr, wanted: tuple[bool, ...]) -> tuple[Expr | None, ...]:
    """Elementwise absolute value.

    y_i = |x_i|;  x̄_i = ȳ_i · sign(x_i), so |x|'(0) = 0 as in torch and autograd (JAX
    gives 1): the symmetric difference quotient, and the smallest subgradient.
    """
    return (select(g, sign(y.args[0])),)


@elementwise("maximum", lambda xp, a, b: xp.maximum(a, b), 2)
def maximum(y: Map, g: Expr, wanted: tuple[bool, ...]) -> tuple[Expr | None, ...]:
    """Elementwise maximum, with numpy broadcasting.

    y_i = max(a_i, b_i);  ā_i = ȳ_i · ([a_i > b_i] + ½[a_i = b_i]),
    b̄_i = ȳ_i · ([b_i > a_i] + ½[a_i = b_i]).
    Ties split the cotangent evenly, as JAX, torch and autograd do; where a_i or b_i is
    NaN every comparison is false and neither gets any, as in JAX and autograd.
    """
    a, b = y.args
    tie = 0.5 * equal(a, b)
    return (
        select(g, greater(a, b) + tie) if wanted[0] else None,
        select(g, greater(b, a) + tie) if wanted[1] else None,
    )


@elementwise("minimum", lambda xp, a, b: xp.minimum(a, b), 2)
def minimum(y: Map, g: Expr, wanted: tuple[bool, ...]) -> tuple[Expr | None, ...]:
    """Elementwise minimum, with numpy broadcasting.

    y_i = min(a_i, b_i);  ā_i = ȳ_i · ([a_i < b_i] + ½[a_i = b_i]),
    b̄_i = ȳ_i · ([b_i < a_i] + ½[a_i = b_i]).
    Ties split the cotangent evenly, as JAX, torch and autograd do; where a_i or b_i is
    NaN neither gets any, as in JAX and autograd.
    """
    a, b = y.args
    tie = 0.5 * equal(a, b)
    return (
        select(g, greater(b, a) + tie) if wanted[0] else None,
        select(g, greater(a, b) + tie) if wanted[1] else None,
    )


# einsgrad.graph.ops.where checks that the condition is a constant before building this.
@elementwise("where", lambda xp, c, a, b: xp.where(c, a, b), 3)
def _where(y: Map, g: Expr, wanted: tuple[bool, ...]) -> tuple[Expr | None, ...]:
    """y_i = a_i if c_i else b_i (c constant);  ā_i = ȳ_i · [c_i],  b̄_i = ȳ_i · [¬c_i]."""
    condition = y.args[0]
    return (
        None,
        ops.where(condition, g, 0.0) if wanted[1] else None,
        ops.where(condition, 0.0, g) if wanted[2] else None,
    )


# --- masks: piecewise constant, so their derivative is zero -----------------------------


def _masked_forward(xp: Any, g: Any, m: Any) -> Any:
    return xp.where(m != 0, g, 0) * m  # selected first: no 0 · ∞ is formed


@elementwise("masked", _masked_forward, 2)
def masked(y: Map, g: Expr, wanted: tuple[bool, ...]) -> tuple[Expr | None, ...]:
    """y_i = c_i · m_i where m_i ≠ 0, and exactly 0 where m_i = 0 (m a mask);
    c̄_i = ȳ_i · m_i where m_i ≠ 0, else 0;  m̄_i = 0.

    The cotangent of a piecewise function through its mask: a select, not a product, so
    an infinite or NaN cotangent where the mask is 0 gives 0, not 0 · ∞ = NaN (JAX's
    relu vjp is the select where(x > 0, ȳ, 0)). m is a mask (``greater``, ``equal``,
    ``sign`` and their sums), piecewise constant, so it gets no cotangent.
    """
    return (select(g, y.args[1]) if wanted[0] else None), None


def select(cotangent: Expr, mask: Expr) -> Expr:
    """``cotangent · mask`` where the mask is nonzero, 0 elsewhere (see ``masked``).

    A finite constant cotangent (the 1 of forward mode, explain and a full sum's seed)
    cannot be infinite, so there the product is exact and simplifies like any other.
    """
    fill = ops.filled_value(cotangent)
    if fill is not None and math.isfinite(fill):
        return cotangent * mask
    return masked(cotangent, mask)


def _mask(xp: Any, test: Any, a: Any, b: Any) -> Any:
    return xp.asarray(test(a, b), dtype=xp.result_type(a, b))


@elementwise("greater", lambda xp, a, b: _mask(xp, xp.greater, a, b), 2, differentiable=False)
def greater(y: Map, g: Expr, wanted: tuple[bool, ...]) -> tuple[Expr | None, ...]:
    """The mask [a_i > b_i] as 0.0 or 1.0; piecewise constant, so its derivative is zero."""
    return None, None


@elementwise("equal", lambda xp, a, b: _mask(xp, xp.equal, a, b), 2, differentiable=False)
def equal(y: Map, g: Expr, wanted: tuple[bool, ...]) -> tuple[Expr | None, ...]:
    """The mask [a_i = b_i] as 0.0 or 1.0; piecewise constant, so its derivative is zero."""
    return None, None


@elementwise("sign", lambda xp, x: xp.sign(x), differentiable=False)
def sign(y: Map, g: Expr, wanted: tuple[bool, ...]) -> tuple[Expr | None, ...]:
    """Elementwise sign (−1, 0 or 1); piecewise constant, so its derivative is zero."""
    return (None,)


# --- the Map node kind's row in the rule table ---------------------------------------------


# Primitives defined by the order of the reals: numpy orders complex numbers
# lexicographically and JAX refuses them, so a complex argument is refused, not reordered.
ORDERING = frozenset({"relu", "maximum", "minimum", "greater"})


def _infer(node: Map, children: Sequence[Meta], references: Sequence[Meta]) -> Meta:
    shape = ops.broadcast_shapes([m.shape for m in children], node.args, node.op.name)
    dtype = node.op.result_dtype(children)
    if node.op.name in ORDERING and dtype is not None and dtype.kind == "c":
        _refuse_complex(node, children)
    return Meta(shape, dtype)


def _refuse_complex(node: Map, children: Sequence[Meta]) -> None:
    described = ", ".join(
        f"{short_name(arg)} {meta.dtype or 'number'}"
        for arg, meta in zip(node.args, children, strict=True)
    )
    raise ShapeError(
        f"{node.op.name} orders its arguments, and complex numbers have no order: {described}; "
        "pass it real numbers (the real part, or the absolute value)"
    )


def _vjp(node: Map, cotangent: Expr, wanted: Sequence[bool]) -> tuple[Expr | None, ...]:
    """x̄_k = the primitive's rule, summed back over the axes x_k was broadcast along."""
    cotangents = node.op.vjp(node, cotangent, tuple(wanted))
    return tuple(
        None if c is None or not want else ops.unbroadcast(c, arg)
        for c, arg, want in zip(cotangents, node.args, wanted, strict=True)
    )


def _partials(node: Map, wanted: Sequence[bool]) -> tuple[Expr | None, ...]:
    """∂y/∂x_k as arrays: the rule's cotangent for ȳ = 1.

    An elementwise node's Jacobian is diagonal (each input element reaches only its own
    output elements), so the rule applied to ones *is* its diagonal: ẏ = ∂y/∂x ⊙ ẋ.
    """
    op: ElementwiseOp = node.op
    return op.vjp(node, ONE, tuple(wanted))


def _jvp(node: Map, tangents: Sequence[Expr | None], extra: tuple[int, ...] | None) -> Expr | None:
    """ẏ_i = Σ_k ∂y_i/∂x_k · ẋ_k (with ``extra`` trailing axes e: ẏ_ie = Σ_k ∂_k y_i · ẋ_k,ie)."""
    partials = _partials(node, [t is not None for t in tangents])
    terms = [
        _tangent_term(node, arg, partial, tangent, extra)
        for arg, partial, tangent in zip(node.args, partials, tangents, strict=True)
        if tangent is not None and partial is not None
    ]
    return add_all(terms) if terms else None


def _tangent_term(
    node: Map, arg: Expr, partial: Expr, tangent: Expr, extra: tuple[int, ...] | None
) -> Expr:
    if extra is None:
        product = partial * tangent
        if product.shape is not None and product.shape == node.shape:
            return product
        return ops._generalized("...->...", product, node)
    out = letters(len(static_shape(node)))
    extra_labels = letters(len(extra), len(out))
    partial_labels = right_aligned(out, len(static_shape(partial)))
    arg_labels = right_aligned(out, len(static_shape(arg)))
    text = f"{partial_labels},{arg_labels}{extra_labels}->{out}{extra_labels}"
    return static_einsum(text, [partial, tangent], static_shape(node) + extra)


def _batched_vjp(
    node: Map, cotangent: Expr, wanted: Sequence[bool], batch: str
) -> list[Expr | None]:
    """x̄_{b,i} = ȳ_{b,i} · ∂y_i/∂x_i, summed over x's broadcast axes (b: batch labels)."""
    extra = static_shape(cotangent)[: len(batch)]
    out = letters(len(static_shape(node)), len(batch))
    results: list[Expr | None] = []
    for arg, partial, want in zip(node.args, _partials(node, wanted), wanted, strict=True):
        if not want or partial is None:
            results.append(None)
            continue
        partial_labels = right_aligned(out, len(static_shape(partial)))
        arg_labels = right_aligned(out, len(static_shape(arg)))
        text = f"{batch}{out},{partial_labels}->{batch}{arg_labels}"
        results.append(static_einsum(text, [cotangent, partial], extra + static_shape(arg)))
    return results


def _lower(node: Map, step: StepInput) -> Lowered:
    function = step.backend.elementwise(node.op.forward)
    return Lowered.step(function, step.reads, node.op.name, flops=math.prod(step.meta.shape))


def _explain(node: Map, position: int, names: Sequence[str], output_name: str) -> ElementwiseSteps:
    """The primitive's rule as its docstring states it, and ∂y/∂x for the argument."""
    wanted = [k == position for k in range(len(node.args))]
    op: ElementwiseOp = node.op
    return ElementwiseSteps(position, rule_statement(op.doc), _partials(node, wanted)[position])


def _index(node: Map, labels: Sequence[str], writer: Any) -> tuple[str, int]:
    """An operator or a function of the arguments, each with the labels it broadcasts to."""
    name = node.op.name
    args = []
    for arg in node.args:
        if arg.shape is None:
            raise NoFormError("index notation needs static shapes")
        lead = len(labels) - len(arg.shape)
        arg_labels = [
            labels[lead + i] if size != 1 or node.shape[lead + i] == 1 else writer.fresh()  # type: ignore[index]
            for i, size in enumerate(arg.shape)
        ]
        args.append(writer.write(arg, arg_labels))
    if name in ("add", "subtract"):
        operator = " + " if name == "add" else " - "
        right = args[1][0] if args[1][1] > 10 else f"({args[1][0]})"
        return f"{args[0][0]}{operator}{right}", 10
    if name in ("multiply", "divide"):
        operator = (" " if writer.latex else " * ") if name == "multiply" else " / "
        left = args[0][0] if args[0][1] >= 20 else f"({args[0][0]})"
        right = args[1][0] if args[1][1] > 20 else f"({args[1][0]})"
        return f"{left}{operator}{right}", 20
    if name == "negative":
        inner = args[0][0] if args[0][1] > 30 else f"({args[0][0]})"
        return f"-{inner}", 30
    if name == "power":
        base = args[0][0] if args[0][1] > 40 else f"({args[0][0]})"
        return (f"{base}^{{{args[1][0]}}}" if writer.latex else f"{base} ** {args[1][0]}"), 40
    if writer.is_function(name) and len(args) == 1:
        if writer.latex:
            return f"\\operatorname{{{name}}}\\left({args[0][0]}\\right)", 100
        return f"{name}({args[0][0]})", 100
    raise NoFormError(f"index notation has no form for {name}")


def _text(node: Map, text_of: Any, wrap: Any) -> tuple[str, int]:
    op = node.op
    if op.infix is not None and len(node.args) == 2:
        if op.infix == "**":
            left = wrap(node.args[0], op.precedence + 1)
            return f"{left} ** {wrap(node.args[1], op.precedence + 1)}", op.precedence
        left = wrap(node.args[0], op.precedence)
        right = wrap(node.args[1], op.precedence, right=True)
        return f"{left} {op.infix} {right}", op.precedence
    if op.infix is not None and len(node.args) == 1:
        return f"{op.infix}{wrap(node.args[0], op.precedence)}", op.precedence
    args = ", ".join(text_of(arg)[0] for arg in node.args)
    return f"{op.name}({args})", ATOM


def _rebuild(node: Map, children: Sequence[Expr], references: Sequence[Expr]) -> Expr:
    return ops._map(node.op.name, *children)


def _key(node: Map, child_keys: Sequence[str], reference_keys: Sequence[str]) -> list[Any]:
    keys = list(child_keys)
    if node.op.name in COMMUTATIVE:
        keys.sort()
    return ["map", node.op.name, *keys]


kinds.register(
    Map,
    infer=_infer,
    vjp=_vjp,
    jvp=_jvp,
    batched_vjp=_batched_vjp,
    lower=_lower,
    text=_text,
    rebuild=_rebuild,
    key=_key,
    simplify=simplify_map,
    explain=_explain,
    matrix=map_form,
    index=_index,
)
