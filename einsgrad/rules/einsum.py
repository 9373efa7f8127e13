"""The einsum rule: the backward of any einsum is an einsum with its labels permuted.

For ``Y = einsum("s_1,...,s_n->o", X_1, ..., X_n)`` and a loss ``L``,

    ∂L/∂(X_k)[s_k] = Σ_{labels not in s_k} ∂L/∂Y[o] · Π_{j≠k} X_j[s_j]

because ``Y`` is linear in ``X_k``: ∂Y[o]/∂X_k[s_k'] is the product of the other operands
times a Kronecker delta δ(s_k, s_k') for every label of ``s_k``, and the deltas collapse
the sum over ``o`` onto ``s_k``. So the backward is the einsum

    "s_1,...,s_{k-1},s_{k+1},...,s_n,o -> s_k"

over the other operands and the cotangent, with ``X_k``'s shape as its shape reference.
Read as a *generalized* einsum (:mod:`einsgrad.core.spec`) this one line is right for every
einsum numpy accepts:

* a label only ``s_k`` has (``"ij->i"`` wrt 0) is an output label no input has: the
  result is broadcast along it, at no arithmetic cost;
* a label repeated in ``s_k`` (``"ii->"``, ``"bii->bi"``) is a repeated output label:
  the result lives on that diagonal and is zero elsewhere;
* ``...`` and size-1 axes that numpy broadcast in the forward are summed back to the
  shape of ``X_k`` by resolving the output against the shape reference;
* an operand used twice gets one cotangent per use, which reverse mode adds up.

The rule is closed: a generalized einsum is again linear in each operand, so the same
function differentiates its own output (Hessians, higher orders).
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from einsgrad.backends import get_backend
from einsgrad.backends.base import plan_info, plan_path
from einsgrad.core import kinds
from einsgrad.core.derivation import EinsumSteps, Factor, IndexTerm, RuleSteps
from einsgrad.core.errors import NoFormError, ShapeError, SpecError
from einsgrad.core.ir import Const, Einsum, Expr, Meta, Seed, Shape, Size
from einsgrad.core.labels import (
    LETTERS,
    default_operand_names,
    fresh_labels,
    letters,
    output_name,
    valid_names,
)
from einsgrad.core.lowering import Lowered, StepInput
from einsgrad.core.spec import ELLIPSIS, Resolved, Spec, parse_spec, resolve
from einsgrad.graph.matrix_text import einsum_form
from einsgrad.graph.ops import (
    _einsum_node,
    check_label_count,
    check_matmul_inner,
    is_matmul,
)
from einsgrad.graph.printing import ATOM, short_name
from einsgrad.graph.static import add_all, static_einsum, static_shape, static_spec
from einsgrad.rules.algebra import fuse_einsum
from einsgrad.rules.contraction_tree import Tree, contraction_tree

__all__ = [
    "BackwardRule",
    "array_operands",
    "backward",
    "backward_spec",
    "einsum_steps",
    "einsum_vjp",
    "resolved",
]


def backward_spec(spec: Spec, wrt: int) -> Spec:
    """The generalized einsum spec of the cotangent of operand ``wrt`` (see module doc).

    Its inputs are the forward operands other than ``wrt``, in order, then the output's
    cotangent; its output is the term of operand ``wrt``.
    """
    inputs = spec.inputs[:wrt] + spec.inputs[wrt + 1 :] + (spec.output,)
    text = ",".join("".join(term) for term in inputs) + "->" + "".join(spec.inputs[wrt])
    return parse_spec(text, generalized=True)


def einsum_vjp(node: Einsum, cotangent: Expr, wrt: int) -> Expr:
    """The cotangent of ``node.operands[wrt]`` given the cotangent of ``node``."""
    target = node.operands[wrt]
    spec = backward_spec(node.spec, wrt)
    operands = (*node.operands[:wrt], *node.operands[wrt + 1 :], cotangent)
    shapes = [op.shape for op in operands]
    like: Expr | tuple[int, ...] | None = target
    if target.shape is not None and all(s is not None for s in shapes):
        plain = _numpy_form(spec)
        if plain is not None:
            try:
                inferred = resolve(plain, shapes).shape  # type: ignore[arg-type]
            except ShapeError:
                inferred = None
            if inferred == target.shape:
                # The contraction alone has the right shape: no reference needed.
                spec, like = plain, None
    return _einsum_node(spec, operands, like)


def _numpy_form(spec: Spec) -> Spec | None:
    """``spec`` in the numpy dialect, if it is also a plain numpy einsum."""
    try:
        return parse_spec(spec.text)
    except SpecError:
        return None


@dataclass(frozen=True)
class BackwardRule:
    """The backward of one operand of an einsum, as :func:`backward` derives it.

    Attributes:
        forward: the forward spec, explicit (``"bi,ij->bj"``).
        wrt: the operand differentiated.
        spec: the backward contraction as a valid numpy einsum string: the other operands
            in order, then the output's cotangent, contracted onto the labels of operand
            ``wrt`` that they carry (``"bi,bj->ij"``), keeping ``...`` where they have it.
        full: the whole backward as a generalized einsum (output = operand ``wrt``'s term).
        broadcast: labels of operand ``wrt`` no other operand or the output has: the
            result is constant (broadcast) along them.
        diagonal: labels repeated in operand ``wrt``: the result is zero off that diagonal.
        operand_names: display names of the forward operands; ``output_name`` of the output.
    """

    forward: str
    wrt: int
    spec: str
    full: str
    broadcast: tuple[str, ...]
    diagonal: tuple[str, ...]
    operand_names: tuple[str, ...]
    output_name: str

    @property
    def sums_ellipsis(self) -> bool:
        """True when axes under ``...`` may have to be summed after :attr:`spec`.

        That is when numpy broadcasting stretched operand ``wrt`` along them, or when
        operand ``wrt`` has no ``...`` at all but the other terms do.
        """
        return ELLIPSIS in self.full

    def apply(self, operands: Sequence[Any], cotangent: Any) -> Any:
        """The numeric cotangent of operand ``wrt``.

        ``operands`` is the full forward operand list; operand ``wrt`` contributes only
        its shape. ``cotangent`` has the forward output's shape.
        """
        backend = get_backend("numpy")
        forward = parse_spec(self.forward)
        arrays = [backend.asarray(op) for op in operands]
        if len(arrays) != len(forward.inputs):
            raise ShapeError(
                f"einsum {self.forward!r} has {len(forward.inputs)} operands, "
                f"but {len(arrays)} were given"
            )
        g = backend.asarray(cotangent)
        out_shape = resolve(forward, [a.shape for a in arrays], None, self.operand_names).shape
        if g.shape != out_shape:
            raise ShapeError(
                f"the cotangent of einsum {self.forward!r} must have the output's shape "
                f"{out_shape}, got {g.shape}"
            )
        inputs = [*arrays[: self.wrt], *arrays[self.wrt + 1 :], g]
        names = [
            *self.operand_names[: self.wrt],
            *self.operand_names[self.wrt + 1 :],
            "d" + self.output_name,
        ]
        full = parse_spec(self.full, generalized=True)
        resolved = resolve(full, [a.shape for a in inputs], arrays[self.wrt].shape, names)
        dtype = np.result_type(*inputs)
        shapes = tuple(backend.shape(a) for a in inputs)
        result = backend.contraction(resolved, shapes, tuple(range(len(inputs))))(*inputs)
        if not resolved.is_plain:
            result = backend.expand(result, resolved.core, resolved.output, resolved.sizes, dtype)
        return backend.finish(result, dtype, inputs)

    def index_form(self) -> str:
        """The rule in index notation, e.g. ``dW[i,j] = Σ_b X[b,i] · dY[b,j]``.

        Its length is linear in the spec's: each copy of a repeated label is written
        with at most three primes (``i′``, ``i′′``, ``i′′′``), then numbered (``i′4``).
        """
        forward = parse_spec(self.forward, generalized=True)  # an internal node may be generalized
        target = list(forward.inputs[self.wrt])
        others = [
            (self.operand_names[j], term) for j, term in enumerate(forward.inputs) if j != self.wrt
        ]
        others.append(("d" + self.output_name, forward.output))
        # A repeated label on the left becomes i, i′, ... tied by Kronecker deltas.
        left: list[str] = []
        deltas: list[str] = []
        seen: dict[str, int] = {}
        for label in target:
            if label != ELLIPSIS and label in seen:
                seen[label] += 1
                primed = _primed(label, seen[label])
                deltas.append(f"δ[{label},{primed}]")
                left.append(primed)
            else:
                seen.setdefault(label, 0)
                left.append(label)
        summed = sorted(
            {
                label
                for _, term in others
                for label in term
                if label != ELLIPSIS and label not in target
            }
        )
        factors = [f"{name}[{','.join(term)}]" if term else name for name, term in others]
        rhs = " · ".join(deltas + factors)
        summed_text = "".join(summed)
        if ELLIPSIS not in target and any(ELLIPSIS in term for _, term in others):
            summed_text += "…"  # the '...' axes are summed too
        if summed_text:
            rhs = f"Σ_{summed_text} {rhs}"
        lhs = (
            f"d{self.operand_names[self.wrt]}[{','.join(left)}]"
            if left
            else f"d{self.operand_names[self.wrt]}"
        )
        return f"{lhs} = {rhs}"

    def __str__(self) -> str:
        notes = []
        if self.broadcast:
            notes.append(f"broadcast along {', '.join(self.broadcast)}")
        if self.diagonal:
            notes.append(f"on the diagonal of {', '.join(self.diagonal)}")
        if self.sums_ellipsis:
            notes.append("'...' summed back over broadcast axes")
        suffix = f"  ({'; '.join(notes)})" if notes else ""
        return f"{self.index_form()}    einsum {self.spec!r}{suffix}"


def _primed(label: str, copy: int) -> str:
    """The ``copy``-th copy of a repeated label: ``i′``, ``i′′``, ``i′′′``, then ``i′4``, ``i′5``,
    so that a label repeated n times costs O(n) characters, not O(n²)."""
    return label + "′" * copy if copy <= 3 else f"{label}′{copy}"


def backward(
    spec: str,
    wrt: int,
    *,
    names: Sequence[str] | None = None,
    output: str = "Y",
) -> BackwardRule:
    """Derive the backward einsum of operand ``wrt`` of the einsum ``spec``.

    >>> r = backward("bi,ij->bj", wrt=1, names=["X", "W"])
    >>> r.spec
    'bi,bj->ij'
    >>> r.index_form()
    'dW[i,j] = Σ_b X[b,i] · dY[b,j]'

    The cotangent of operand ``k`` of ``einsum(s_1,…,s_n -> o)`` is
    ``einsum(s_1,…,s_{k-1},s_{k+1},…,s_n,o -> s_k)`` over the other operands and the
    output's cotangent (see the module documentation for the derivation), broadcast along
    labels only ``s_k`` has and placed on the diagonal of labels ``s_k`` repeats.

    ``names`` are the operands' display names: one distinct Python identifier each
    (default ``A, B, ...``; ``A0, A1, ...`` past 26 operands). ``output`` names the output
    (``dY`` its cotangent); if an operand has that name, the first free one of
    ``Y, Z, Out, Result, Out1, ...`` is used.
    """
    parsed = parse_spec(spec)
    count = len(parsed.inputs)
    if isinstance(wrt, bool) or not isinstance(wrt, int | np.integer):
        raise SpecError(f"wrt must be an operand index, got {wrt!r}")
    wrt = int(wrt)
    if not -count <= wrt < count:
        raise SpecError(f"einsum {parsed.text!r} has {count} operands; wrt={wrt} is out of range")
    wrt %= count
    what = f"einsum {parsed.text!r}"
    if not isinstance(output, str) or not output.isidentifier():
        raise SpecError(f"the output name of {what} must be a Python identifier, got {output!r}")
    operand_names = (
        default_operand_names(count) if names is None else valid_names(names, count, what)
    )
    return _backward_rule(parsed, wrt, operand_names, output)


def _backward_rule(
    parsed: Spec, wrt: int, operand_names: Sequence[str], output: str
) -> BackwardRule:
    """:func:`backward` of a parsed spec, with the display names as given: explain names
    operands by what they are (a number ``2.0``, one variable twice), not by identifiers."""
    operand_names = tuple(operand_names)
    # dY must not read as the gradient of an operand named Y
    output = output_name(output, operand_names)
    full = backward_spec(parsed, wrt)
    target = parsed.inputs[wrt]
    carried = {label for term in full.inputs for label in term}
    core = "".join(dict.fromkeys(t for t in target if t in carried))
    if ELLIPSIS in carried and ELLIPSIS not in target:
        # numpy cannot sum '...' away in an explicit output: keep it, and sum it after.
        core = ELLIPSIS + core
    contraction = ",".join("".join(term) for term in full.inputs) + "->" + core
    counts = Counter(label for label in target if label != ELLIPSIS)  # linear in the term
    return BackwardRule(
        forward=parsed.text,
        wrt=wrt,
        spec=contraction,
        full=full.text,
        broadcast=tuple(dict.fromkeys(t for t in target if t != ELLIPSIS and t not in carried)),
        diagonal=tuple(label for label, n in counts.items() if n > 1),
        operand_names=operand_names,
        output_name=output,
    )


def tree_vjp(
    node: Einsum, cotangent: Expr, wanted: Sequence[bool]
) -> tuple[Expr | None, ...] | None:
    """Cotangents of ``node``'s operands by reverse mode through its contraction tree.

    Returns None when ``node`` is not split (then the plain einsum rule applies).
    """
    tree = contraction_tree(node)
    if tree is None:
        return None
    results: list[list[Expr]] = [[] for _ in node.operands]

    def needs(subtree: Tree) -> bool:
        if subtree.position is not None:
            return bool(wanted[subtree.position])
        return any(needs(child) for child in (subtree.left, subtree.right) if child is not None)

    stack: list[tuple[Tree, Expr]] = [(tree, cotangent)]
    while stack:
        current, g = stack.pop()
        if current.position is not None:
            results[current.position].append(g)
            continue
        assert isinstance(current.node, Einsum)
        children = [child for child in (current.left, current.right) if child is not None]
        scalars = len(current.node.operands) - len(children)
        assert scalars >= 0
        for index, child in enumerate(children):
            if needs(child):
                stack.append((child, einsum_vjp(current.node, g, index)))
    return tuple(add_all(contributions) if contributions else None for contributions in results)


# --- the Einsum node kind's row in the rule table -----------------------------------------


def _like_shape(node: Einsum, references: Sequence[Meta]) -> Shape | None:
    if isinstance(node.like, tuple):
        return node.like
    return references[0].shape if references else None


def resolved(node: Einsum, children: Sequence[Meta], references: Sequence[Meta]) -> Resolved:
    """``node``'s einsum resolved against the shapes of its operands and shape reference."""

    def names() -> list[str]:
        return [short_name(op) for op in node.operands]

    like = _like_shape(node, references)
    return resolve(node.spec, [m.shape for m in children], like, names)


def _operand_names(node: Einsum) -> list[str]:
    """The operands' short names, then ``like=`` the shape reference's, if it is a node."""
    names = [short_name(op) for op in node.operands]
    return names + [f"like={short_name(r)}" for r in node.references]


def _infer(node: Einsum, children: Sequence[Meta], references: Sequence[Meta]) -> Meta:
    if is_matmul(node):
        a, b = node.operands
        check_matmul_inner(a, b, children[0].shape, children[1].shape)
    found = resolved(node, children, references)
    # Undeclared shapes are first known here: '...' may stand for more axes than letters.
    shapes = [m.shape for m in children] + [m.shape for m in references]
    check_label_count(node.spec, found, shapes, lambda: _operand_names(node))
    shape = found.shape
    dtypes = [m.dtype for m in children if m.dtype is not None]
    dtype = np.result_type(*dtypes) if dtypes else None
    if dtype is None and references:
        dtype = references[0].dtype
    return Meta(shape, dtype)


def _vjp(node: Einsum, cotangent: Expr, wanted: Sequence[bool]) -> tuple[Expr | None, ...]:
    """X̄_k = einsum(s_1,…(not k)…,s_n,o -> s_k) over the other operands and Ȳ.

    Three or more arrays with static shapes go through the contraction tree instead, so
    every operand's cotangent reuses the forward intermediates.
    """
    through_tree = tree_vjp(node, cotangent, wanted)
    if through_tree is not None:
        return through_tree
    return tuple(einsum_vjp(node, cotangent, k) if want else None for k, want in enumerate(wanted))


def _jvp(
    node: Einsum, tangents: Sequence[Expr | None], extra: tuple[int, ...] | None
) -> Expr | None:
    """Ẏ = Σ_k einsum(s_1,…,s_n->o) with operand k replaced by its tangent Ẋ_k.

    An einsum is linear in each operand. With ``extra`` trailing axes e, each tangent
    term is s_k + e and the output o + e.
    """
    terms: list[Expr] = []
    for k, tangent in enumerate(tangents):
        if tangent is None:
            continue
        operands = list(node.operands)
        operands[k] = tangent
        if extra is None:
            terms.append(_einsum_node(node.spec, operands, node.like))
            continue
        inputs, out, used = static_spec(node)
        extra_labels = letters(len(extra), used)
        inputs[k] += extra_labels
        text = ",".join(inputs) + "->" + out + extra_labels
        terms.append(static_einsum(text, operands, static_shape(node) + extra))
    return add_all(terms) if terms else None


def _batched_vjp(
    node: Einsum, cotangent: Expr, wanted: Sequence[bool], batch: str
) -> list[Expr | None]:
    """The einsum rule with leading batch labels b on the cotangent and the result:
    X̄_{b,s_k} = einsum(…(not k)…, b+o -> b+s_k)."""
    extra = static_shape(cotangent)[: len(batch)]
    terms, out, used = static_spec(node)
    rename = str.maketrans(LETTERS[:used], letters(used, len(batch)))
    terms = [t.translate(rename) for t in terms]
    out = out.translate(rename)
    results: list[Expr | None] = []
    for k, operand in enumerate(node.operands):
        if not wanted[k]:
            results.append(None)
            continue
        inputs = [*terms[:k], *terms[k + 1 :], batch + out]
        text = ",".join(inputs) + "->" + batch + terms[k]
        others = [*node.operands[:k], *node.operands[k + 1 :], cotangent]
        results.append(static_einsum(text, others, extra + static_shape(operand)))
    return results


def _is_number(node: Expr, meta: Meta) -> bool:
    """True for an operand whose value is a plain Python number (weakly typed)."""
    if isinstance(node, Const):
        return bool(node.is_scalar)
    return isinstance(node, Size | Seed) or (meta.shape == () and meta.dtype is None)


def array_operands(node: Einsum, metas: Sequence[Meta]) -> tuple[int, ...]:
    """Positions of ``node``'s operands that are arrays (the rest are plain numbers)."""
    return tuple(k for k, op in enumerate(node.operands) if not _is_number(op, metas[k]))


def _lower(node: Einsum, step: StepInput) -> Lowered:
    """The planned contraction of the einsum's arrays, scaled by its numbers.

    Numbers known before the call (constants, sizes) are multiplied together here, once;
    a plain contraction of arrays alone is the planned contraction function itself. A
    generalized einsum then places the contraction into its output (broadcast, diagonal).
    """
    backend, children = step.backend, step.children
    found = resolved(node, children, step.references)
    arrays = array_operands(node, children)
    numbers = [k for k in range(len(node.operands)) if k not in arrays]
    scale = math.prod((step.known[k] for k in numbers if step.known[k] is not None), start=1.0)
    # A complex 1 still makes the result complex, as numpy does: only a real 1 is no factor.
    unscaled = scale == 1.0 and not isinstance(scale, complex)
    array_reads = tuple(step.reads[k] for k in arrays)
    number_reads = tuple(step.reads[k] for k in numbers if step.known[k] is None)
    dtype = step.meta.dtype or np.dtype(np.float64)
    expand = None if found.is_plain else backend.expand
    operation = f"einsum '{node.spec.text}'"
    contract: Callable[..., Any]
    if arrays:
        shapes = tuple(children[k].shape for k in arrays)
        contract = backend.contraction(found, shapes, arrays, step.optimize)
        flops, largest = plan_info(found, shapes, arrays, step.optimize)
        path = plan_path(found, shapes, arrays, step.optimize)
        if expand is None and not number_reads and unscaled:
            return Lowered.step(
                contract, array_reads, operation, path=path, flops=flops, largest=largest
            )
    else:  # numbers alone: an array of ones (of the core's shape) times them
        core_shape = tuple(found.sizes[label] for label in found.core)
        flops, largest, path = 0, 0, ""

        def contract() -> Any:
            return backend.ones(core_shape, dtype)

    if expand is not None:
        flops += math.prod(step.meta.shape)  # the writes that place the core into the output
    count = len(array_reads)

    def scaled(*values: Any) -> Any:
        result = contract(*values[:count])
        if not unscaled:
            result = result * scale
        for number in values[count:]:
            result = result * number
        if expand is not None:
            result = expand(result, found.core, found.output, found.sizes, dtype)
        return result

    reads = array_reads + number_reads
    return Lowered.step(scaled, reads, operation, path=path, flops=flops, largest=largest)


def _text(node: Einsum, text_of: Any, wrap: Any) -> tuple[str, int]:
    (term, *rest), output = node.spec.inputs, node.spec.output
    if not rest and node.like is None and len(term) == 2 and output == term[::-1] != term:
        return f"{wrap(node.operands[0], ATOM)}.T", ATOM  # a matrix transpose
    args = ", ".join(text_of(op)[0] for op in node.operands)
    if isinstance(node.like, Expr):
        like = f", like={text_of(node.like)[0]}"
    else:
        like = "" if node.like is None else f", shape={node.like}"
    return f"einsum('{node.spec.text}', {args}{like})", ATOM


def _rebuild(node: Einsum, children: Sequence[Expr], references: Sequence[Expr]) -> Expr:
    like = references[0] if isinstance(node.like, Expr) else node.like
    return _einsum_node(node.spec, children, like)


def _key(node: Einsum, child_keys: Sequence[str], reference_keys: Sequence[str]) -> list[Any]:
    like = reference_keys[0] if isinstance(node.like, Expr) else node.like
    return ["einsum", node.spec.text, like, *child_keys]


def _explain(
    node: Einsum, position: int, names: Sequence[str], output_name: str
) -> EinsumSteps | RuleSteps:
    """The rule step by step for a plain einsum; the rule engine's summary otherwise."""
    plain = node.like is None and ELLIPSIS not in node.spec.text
    if not plain or any(op.shape is None for op in node.operands):
        return RuleSteps(
            f"Through {output_name} = einsum('{node.spec.text}', …)",
            rule=_backward_rule(node.spec, position, names, output_name),
        )
    return einsum_steps(node.spec, position, names, output_name)


def _index(node: Einsum, labels: Sequence[str], writer: Any) -> tuple[str, int]:
    """Σ over the summed labels of the product of the operands, each written with its
    term's labels (a broadcast output label is one a term simply lacks)."""
    shapes = [op.shape for op in node.operands]
    if any(s is None for s in shapes) or node.shape is None:
        raise NoFormError("index notation needs static shapes")
    like = node.like if isinstance(node.like, tuple) else None
    resolved = resolve(node.spec, shapes, like)  # type: ignore[arg-type]
    if len(set(resolved.output)) != len(resolved.output):
        # (broadcast labels are fine: index notation broadcasts a term along labels it lacks)
        raise NoFormError("an einsum that writes onto a diagonal has no index form")
    names = {label: given for label, given in zip(resolved.output, labels, strict=True)}
    for term in resolved.inputs:
        for label in term:
            if label not in names:
                names[label] = writer.fresh()
    every = dict.fromkeys(label for term in resolved.inputs for label in term)
    summed = [names[label] for label in every if label not in resolved.output]
    parts = []
    for term, operand in zip(resolved.inputs, node.operands, strict=True):
        text, own = writer.write(operand, [names[label] for label in term])
        parts.append(f"({text})" if own < 20 else text)
    # parse sums a label inside a function when only function arguments carry it; such
    # a sum over the function's result needs an explicit Σ.
    plain_labels = {
        label
        for term, operand in zip(resolved.inputs, node.operands, strict=True)
        if not writer.scopes_sums(operand)
        for label in term
    }
    scoped = any(label not in plain_labels for label in every if label not in resolved.output)
    body = (" " if writer.latex else " * ").join(parts) if parts else "1.0"
    if summed and (scoped or writer.latex):
        sums = (
            "".join(f"\\sum_{{{s}}} " for s in summed) if writer.latex else f"Σ_{','.join(summed)} "
        )
        return f"{sums}({body})" if not writer.latex else f"{sums}{body}", 20
    return body, 20


def _simplify(node: Einsum, shared: set[Expr]) -> Expr:
    return fuse_einsum(node, shared)


kinds.register(
    Einsum,
    infer=_infer,
    vjp=_vjp,
    jvp=_jvp,
    batched_vjp=_batched_vjp,
    lower=_lower,
    text=_text,
    rebuild=_rebuild,
    key=_key,
    simplify=_simplify,
    explain=_explain,
    matrix=einsum_form,
    index=_index,
)


# --- the rule, step by step, for explain -----------------------------------------------------


def einsum_steps(spec: Spec, wrt: int, names: Sequence[str], output_name: str) -> EinsumSteps:
    """The einsum rule for operand ``wrt`` as a learner derives it (see EinsumSteps).

    ``spec`` is a plain, explicit einsum (no ``...``). The target keeps its own letters;
    forward labels that clash with them are renamed, so that the partial derivative
    ``∂Y_o/∂X_t`` has distinct numerator and denominator labels.
    """
    target_labels = tuple(spec.inputs[wrt])
    taken = set(target_labels) | {label for term in spec.inputs for label in term}
    fresh = fresh_labels(taken)
    rename: dict[str, str] = {}
    for label in dict.fromkeys([*spec.output, *(lab for term in spec.inputs for lab in term)]):
        if label in target_labels:
            rename[label] = next(fresh)
        else:
            rename[label] = label
    terms = [tuple(rename[label] for label in term) for term in spec.inputs]
    out = tuple(rename[label] for label in spec.output)
    forward_sums = tuple(
        label for label in dict.fromkeys(lab for term in terms for lab in term) if label not in out
    )
    target = names[wrt]
    chain = IndexTerm(
        (
            Factor(output_name, out, "grad"),
            Factor(target, target_labels, "partial", output_name, out),
        ),
        sums=out,
    )
    forward = IndexTerm(
        tuple(Factor(name, term) for name, term in zip(names, terms, strict=True)), forward_sums
    )
    others = [Factor(n, t) for j, (n, t) in enumerate(zip(names, terms, strict=True)) if j != wrt]
    pairs = list(zip(terms[wrt], target_labels, strict=True))
    raw = IndexTerm((*(Factor("", pair, "delta") for pair in pairs), *others), sums=forward_sums)
    # A delta over a label the forward sums collapses that sum onto the target's label.
    collapsed = {d: t for d, t in pairs if d in forward_sums}
    kept = [(d, t) for d, t in pairs if d not in forward_sums]
    substituted = [
        Factor(f.name, tuple(collapsed.get(label, label) for label in f.labels)) for f in others
    ]
    remaining = tuple(label for label in forward_sums if label not in collapsed)
    partial = IndexTerm((*(Factor("", pair, "delta") for pair in kept), *substituted), remaining)
    # In the chain rule, the deltas left over set output labels to the target's.
    tie = dict(kept)
    upstream = Factor(output_name, tuple(tie.get(label, label) for label in out), "grad")
    final = [
        Factor(f.name, tuple(tie.get(label, label) for label in f.labels)) for f in substituted
    ]
    contracting = tuple(
        dict.fromkeys(
            label for label in (*out, *remaining) if label not in tie and label not in target_labels
        )
    )
    return EinsumSteps(
        wrt=wrt,
        target=Factor(target, target_labels, "grad"),
        chain=chain,
        forward=(Factor(output_name, out), forward),
        raw_partial=raw,
        partial=partial,
        collapsed=tuple(collapsed.items()),
        tied=tuple(tie.items()),
        result=IndexTerm((*final, upstream), contracting),
        contracting=contracting,
        rule=_backward_rule(parse_spec(spec.text), wrt, names, output_name),
    )
