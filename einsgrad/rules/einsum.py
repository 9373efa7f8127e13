"""The einsum rule: the backward of any einsum is an einsum with its labels permuted.

For ``Y = einsum("s_1,...,s_n->o", X_1, ..., X_n)`` and a loss ``L``,

    ∂L/∂(X_k)[s_k] = Σ_{labels not in s_k} ∂L/∂Y[o] · Π_{j≠k} X_j[s_j]

because ``Y`` is linear in ``X_k``: ∂Y[o]/∂X_k[s_k'] is the product of the other operands
times a Kronecker delta δ(s_k, s_k') for every label of ``s_k``, and the deltas collapse
the sum over ``o`` onto ``s_k``. So the backward is the einsum

    "s_1,...,s_{k-1},s_{k+1},...,s_n,o -> s_k"

over the other operands and the cotangent, with ``X_k``'s shape as its shape reference.
Read as a *generalized* einsum (:mod:`einsgrad.spec`) this one line is right for every
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

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from einsgrad.backends import get_backend
from einsgrad.core.errors import ShapeError, SpecError
from einsgrad.core.ir import Einsum, Expr
from einsgrad.core.spec import ELLIPSIS, Spec, parse_spec, resolve

__all__ = ["BackwardRule", "backward", "backward_spec", "einsum_vjp"]


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
    from einsgrad.graph.ops import _einsum_node

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
        """The rule in index notation, e.g. ``dW[i,j] = Σ_b X[b,i] · dY[b,j]``."""
        forward = parse_spec(self.forward)
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
                primed = label + "′" * seen[label]
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


def _default_names(count: int) -> tuple[str, ...]:
    letters = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
    if count <= len(letters):
        return tuple(letters[:count])
    return tuple(f"A{k}" for k in range(count))


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
    output's cotangent (see :mod:`einsgrad.rule` for the derivation), broadcast along
    labels only ``s_k`` has and placed on the diagonal of labels ``s_k`` repeats.
    """
    parsed = parse_spec(spec)
    count = len(parsed.inputs)
    if isinstance(wrt, bool) or not isinstance(wrt, int | np.integer):
        raise SpecError(f"wrt must be an operand index, got {wrt!r}")
    wrt = int(wrt)
    if not -count <= wrt < count:
        raise SpecError(f"einsum {parsed.text!r} has {count} operands; wrt={wrt} is out of range")
    wrt %= count
    operand_names = tuple(names) if names is not None else _default_names(count)
    if len(operand_names) != count:
        raise SpecError(
            f"einsum {parsed.text!r} has {count} operands but {len(operand_names)} names"
        )
    if output in operand_names:  # dY must not read as the gradient of an operand named Y
        output = next(n for n in ("Y", "Z", "Out", "Result") if n not in operand_names)
    full = backward_spec(parsed, wrt)
    target = parsed.inputs[wrt]
    carried = {label for term in full.inputs for label in term}
    core = "".join(dict.fromkeys(t for t in target if t in carried))
    if ELLIPSIS in carried and ELLIPSIS not in target:
        # numpy cannot sum '...' away in an explicit output: keep it, and sum it after.
        core = ELLIPSIS + core
    contraction = ",".join("".join(term) for term in full.inputs) + "->" + core
    counts = {label: target.count(label) for label in target if label != ELLIPSIS}
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
