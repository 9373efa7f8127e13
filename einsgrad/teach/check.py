"""``check``: is a hand-derived gradient formula right? If not, why not.

A learner types the formula they derived for ``∂L/∂X`` of ``Y = f(X, …)`` in terms of the
upstream gradient ``dY``: ``check("W.T @ dY", expr=X @ W, wrt=X)``. The formula may be
written in numpy syntax (``@``, ``.T``, ``*``) or as on paper (``·``, ``ᵀ``, ``⊙``), may
start with ``dL/dX =``, and may call the upstream gradient ``dY``, ``dL/dY``, ``∂L/∂Y`` or
``grad(Y)``. The verdict is one of

* ``correct``: equal to the true gradient, symbolically or on random inputs (it says which);
* ``shape``: it cannot be formed, or has the wrong shape. The message gives each factor's
  shape, the right formula and its shape, and recognises the weight-layout confusion
  (a formula right for ``W`` stored in×out when it is out×in, or the other way round) and
  numpy's 1-D arrays (``(4,)`` is neither a row nor a column, and ``x.T`` is ``x``);
* ``value``: the right shape but the wrong values; the message gives the largest error on
  random inputs and the right formula in the user's notation.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from einsgrad.core.errors import EinsgradError, OptionError, ParseError, ShapeError
from einsgrad.core.ir import Einsum, Expr, Var, toposort
from einsgrad.core.spec import ELLIPSIS
from einsgrad.frontends.parse import MAX_LENGTH, parse_expr
from einsgrad.graph import ops
from einsgrad.graph.rewrite import rebuild
from einsgrad.passes.autodiff import variable_of, variables_by_name
from einsgrad.passes.calculus import vjp
from einsgrad.passes.equivalence import equivalent, guard_random_inputs
from einsgrad.passes.evaluate import evaluate
from einsgrad.passes.simplify import simplify
from einsgrad.teach.notation import matrix_form

__all__ = ["Verdict", "check"]

Kind = Literal["correct", "shape", "value"]

#: The longest ``output=`` name: it is matched in the formula with a regular expression.
MAX_NAME_LENGTH = 100


@dataclass(frozen=True)
class Verdict:
    """The result of :func:`check`: ``ok``, ``kind``, the ``expected`` formula, and why."""

    ok: bool
    kind: Kind
    expected: str
    message: str
    method: str | None = None
    max_error: float | None = None

    def __bool__(self) -> bool:
        return self.ok

    def __str__(self) -> str:
        return self.message


def _shape_text(shape: Sequence[int] | None) -> str:
    if shape is None:
        return "?"
    return "(" + ", ".join(str(n) for n in shape) + ("," if len(shape) == 1 else "") + ")"


def _normalize(formula: str, output: str, upstream: str) -> tuple[str, Literal["math", "numpy"]]:
    """The formula in einsgrad's expression syntax, and the notation the user wrote in."""
    style: Literal["math", "numpy"] = "math" if re.search("[·ᵀ⊙−]|\\^T|1ᵀ", formula) else "numpy"
    text = formula.strip()
    # Only a derivative on the left of '=' is a label (keyword arguments use '=' too).
    text = re.sub(r"^\s*(?:(?:d|∂)L\s*/\s*(?:d|∂)\w+|grad\(\s*\w+\s*\)|J_\w+)\s*=(?!=)", "", text)
    # ᵀ is a letter to the regex engine (\w), so a \b alone would not end Y before Yᵀ.
    for pattern in (
        rf"(?:d|∂)L\s*/\s*(?:d|∂){re.escape(output)}(?:\b|(?=ᵀ))",
        rf"grad\(\s*{re.escape(output)}\s*\)",
        rf"\bJ_{re.escape(output)}\b",
    ):
        text = re.sub(pattern, upstream, text)
    # Paper notation: 1ᵀ·A sums rows, A·1 sums columns, [a > b] is a mask, − is minus.
    text = re.sub(r"1ᵀ\s*·\s*(\w+|\([^()]*\))", r"sum(\1, axis=0)", text)
    # (?<!\w): a word is tried from its start only, which keeps the search linear.
    text = re.sub(r"((?<!\w)\w+|\([^()]*\))\s*·\s*1\b(?!\s*[./\w])", r"sum(\1, axis=1)", text)
    text = re.sub(r"\[([^\[\]]*)\]", _mask, text)
    text = text.replace("−", "-").replace("ᵀ", ".T").replace("^T", ".T")
    text = text.replace("·", "@").replace("⊙", "*")
    return text.strip(), style


def _mask(bracket: re.Match[str]) -> str:
    """``[a > b]`` as ``greater(a, b)``: split at the first ``>`` with text on both sides.

    A bracket without such a ``>`` is left as it is. Splitting here, rather than with a
    lazy pattern that tries every split, keeps the rewrite linear in the formula.
    """
    inside = bracket.group(1)
    left, sep, right = inside.partition(">")
    if sep and left.strip() and right.strip():
        return f"greater({left.strip()}, {right.strip()})"
    return bracket.group(0)


def _check_text(candidate: Any, output: Any) -> None:
    """The formula is a string within the length limit and ``output`` a name, checked
    before any other work on them."""
    if not isinstance(candidate, str):
        raise ParseError(f"check needs the formula as a string, got {type(candidate).__name__}")
    if len(candidate) > MAX_LENGTH:
        raise ParseError(
            f"the formula is {len(candidate):,} characters long; the limit is {MAX_LENGTH:,}"
        )
    if not isinstance(output, str) or len(output) > MAX_NAME_LENGTH or not output.isidentifier():
        shown = repr(output) if len(repr(output)) <= 40 else f"a {type(output).__name__}"
        raise OptionError(f"output= is the name of the expression's result, like 'Y', got {shown}")


def check(
    candidate: str,
    expr: Expr | str,
    wrt: Any,
    *,
    shapes: Mapping[str, Sequence[int]] | None = None,
    output: str = "Y",
    trials: int = 3,
) -> Verdict:
    """Check a hand-derived formula for ``∂L/∂wrt`` of ``output = expr`` (see module doc)."""
    _check_text(candidate, output)
    if isinstance(expr, str):
        expr = parse_expr(expr, shapes=shapes)
    by_name = variables_by_name(toposort([expr]))
    variable = variable_of(expr, wrt)
    if expr.shape is None or any(v.shape is None for v in by_name.values()):
        raise ShapeError("check needs shapes: declare them in var() or pass shapes={...}")
    upstream = "d" + output
    if upstream in by_name:
        raise ParseError(
            f"the expression already has a variable {upstream!r}; pick another output name"
        )
    cotangent = ops.var(upstream, expr.shape)
    truth = vjp(expr, variable, cotangent)
    assert isinstance(truth, Expr)
    text, style = _normalize(candidate, output, upstream)
    if len(text) > MAX_LENGTH:
        raise ParseError(
            f"the formula is {len(text):,} characters long once its paper notation is "
            f"written out; the limit is {MAX_LENGTH:,}"
        )
    right = matrix_form(truth, {cotangent: upstream}, style=style) or str(truth)
    expected = right
    shape = _shape_text(variable.shape)
    wanted = f"∂L/∂{variable.name} = {right}, of shape {shape} (the shape of {variable.name})"
    known_vars = {**by_name, upstream: cotangent}
    try:
        formula = parse_expr(text, variables=known_vars, paper_product=style == "math")
    except ShapeError as error:
        return _shape_verdict(
            text, known_vars, variable, expr, cotangent, str(error), wanted, expected
        )
    unknown = [v.name for v in formula.variables if v.name not in known_vars]
    if unknown:
        raise ParseError(
            f"the formula uses {', '.join(map(repr, unknown))}, which the expression does not have "
            f"(known: {', '.join(sorted(known_vars))}; the upstream gradient is {upstream})"
        )
    if formula.shape != variable.shape:
        notes = [
            f"your formula has shape {_shape_text(formula.shape)}, but ∂L/∂{variable.name} "
            f"has the shape of {variable.name}, {_shape_text(variable.shape)}."
        ]
        flipped = formula.shape is not None and formula.shape[::-1] == variable.shape
        if flipped and len(formula.shape or ()) == 2 and equivalent(ops.transpose(formula), truth):
            notes.append("It is the transpose of the right answer.")
        notes.extend(_diagnose(text, known_vars, variable, expr, cotangent))
        return Verdict(False, "shape", expected, " ".join(notes) + f" The gradient is {wanted}.")
    verdict = equivalent(formula, truth, trials=trials)
    if verdict.equal:
        how = "symbolically" if verdict.method == "symbolic" else "numerically, on random inputs"
        return Verdict(
            True,
            "correct",
            expected,
            f"correct ({how}): ∂L/∂{variable.name} = {right}",
            verdict.method,
        )
    largest = _largest_error(formula, truth, known_vars)
    message = (
        f"wrong value: your formula has the right shape {_shape_text(variable.shape)} but differs "
        f"from the gradient by up to {largest:.3g} on random inputs. The gradient is {wanted}."
    )
    notes = _diagnose(text, known_vars, variable, expr, cotangent)
    if notes:
        message += " " + " ".join(notes)
    return Verdict(False, "value", expected, message, verdict.method, largest)


def _largest_error(formula: Expr, truth: Expr, variables: Mapping[str, Var]) -> float:
    """The largest difference of ``formula`` and ``truth`` on standard-normal inputs."""
    used = {v.name for v in toposort([formula, truth]) if isinstance(v, Var)}
    tested = {
        name: (v, v.shape) for name, v in variables.items() if name in used and v.shape is not None
    }
    guard_random_inputs((formula, truth), tested)
    rng = np.random.default_rng(0)
    arrays = {name: rng.normal(size=shape) for name, (_, shape) in tested.items()}
    a, b = evaluate([formula, truth], arrays)
    return float(np.max(np.abs(a - b))) if a.size else 0.0


def _shape_verdict(
    text: str,
    variables: Mapping[str, Var],
    variable: Var,
    expr: Expr,
    upstream: Var,
    error: str,
    wanted: str,
    expected: str,
) -> Verdict:
    factors = []
    for name in sorted(variables):
        if re.search(rf"\b{re.escape(name)}\b", text):
            shape = variables[name].shape
            line = f"{name} is {_shape_text(shape)}"
            if (
                re.search(rf"\b{re.escape(name)}\.T\b", text)
                and shape is not None
                and len(shape) == 2
            ):
                line += f", so {name}ᵀ is {_shape_text(shape[::-1])}"
            factors.append(line)
    reason = error.split("\n", 1)[0]
    notes = _diagnose(text, variables, variable, expr, upstream)
    message = (
        f"wrong shape: your formula cannot be formed ({reason}). In it, {'; '.join(factors)}. "
        + (" ".join(notes) + " " if notes else "")
        + f"The gradient is {wanted}."
    )
    return Verdict(False, "shape", expected, message)


def _diagnose(
    text: str, variables: Mapping[str, Var], variable: Var, expr: Expr, upstream: Var
) -> list[str]:
    """Recognisable confusions: 1-D arrays as rows or columns, and weight layouts."""
    notes: list[str] = []
    for name, var in variables.items():
        if (
            var.shape is not None
            and len(var.shape) == 1
            and re.search(rf"\b{re.escape(name)}\b", text)
        ):
            notes.append(
                f"{name} is 1-D with shape {_shape_text(var.shape)}: numpy has no row or column "
                f"vectors, so {name} is neither (1, {var.shape[0]}) nor ({var.shape[0]}, 1) and "
                f"{name}.T is {name} itself; an outer product needs einsum('i,j->ij', …) or a "
                "reshape to 2-D."
            )
            break
    notes.extend(_layout_note(text, variables, variable, expr, upstream))
    return notes


def _layout_note(
    text: str, variables: Mapping[str, Var], variable: Var, expr: Expr, upstream: Var
) -> list[str]:
    """Whether the formula is right for a weight stored the other way round (transposed)."""
    for name, var in variables.items():
        if (
            var is variable
            or var.shape is None
            or len(var.shape) != 2
            or var.shape[0] == var.shape[1]
        ):
            continue
        if not re.search(rf"\b{re.escape(name)}\b", text):
            continue
        if var is upstream:
            continue  # the upstream gradient is given, not a weight with a layout
        flipped = ops.var(name, var.shape[::-1])
        swapped = {**variables, name: flipped}
        try:
            formula = parse_expr(text, variables=swapped, paper_product=True)
        except EinsgradError:
            continue
        if formula.shape != variable.shape:
            continue
        # The true gradient when the stored matrix is the transpose of the one in expr.
        replaced = _substitute(expr, var, ops.transpose(flipped))
        truth = vjp(replaced, variable, upstream)
        assert isinstance(truth, Expr)
        if equivalent(formula, truth):
            return [_layout_sentence(name, var.shape, _layout_of(expr, var))]
    return []


def _layout_sentence(name: str, shape: Sequence[int], layout: str | None) -> str:
    m, n = shape
    if layout is None:  # the expression does not say which axis is the input one
        return (
            f"Your formula would be right if {name} were stored transposed, as {n}×{m}; "
            f"here {name} is {m}×{n}, so transpose it in the formula."
        )
    # in×out: rows index the inputs (Y = X·W); out×in: rows index the outputs (Y = X·Wᵀ).
    other = "out×in" if layout == "in×out" else "in×out"
    return (
        f"Your formula would be right if {name} were stored as {n}×{m} ({other}, the other "
        f"weight layout); here {name} is {m}×{n} ({layout}), so transpose it in the formula."
    )


def _layout_of(expr: Expr, weight: Var) -> str | None:
    """``"in×out"`` if ``expr`` contracts the weight's first axis, ``"out×in"`` if its second.

    Read from the one einsum that takes the weight once transposes are folded in (X @ W.T
    is ``'ac,bc->ab'``): the summed axis is the input one, the kept axis the output one.
    """
    users = [
        node
        for node in toposort([simplify(expr)])
        if isinstance(node, Einsum) and weight in node.operands
    ]
    if len(users) != 1 or users[0].operands.count(weight) != 1:
        return None
    einsum = users[0]
    term = einsum.spec.inputs[einsum.operands.index(weight)]
    if len(term) != 2 or ELLIPSIS in term:
        return None
    kept = [label in einsum.spec.output for label in term]
    if kept == [False, True]:
        return "in×out"
    if kept == [True, False]:
        return "out×in"
    return None


def _substitute(expr: Expr, old: Var, new: Expr) -> Expr:
    """``expr`` with the variable ``old`` replaced by ``new``, simplified."""
    (result,) = rebuild([expr], replace={old: new})
    return simplify(result)
