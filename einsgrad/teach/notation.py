"""Notations for showing work: index sums, matrix formulas, and LaTeX.

Two small renderers, used by ``explain``, ``check`` and the command line:

* :class:`IndexTerm` is one term of an index-notation formula — a coefficient, summed
  labels and factors (tensors, Kronecker deltas, partial derivatives) — written as text
  (``Σ_b ∂L/∂Y_bj · X_bi``) or LaTeX (``\\sum_{b} \\frac{\\partial L}{\\partial Y_{bj}} X_{bi}``).
* :func:`matrix_form` writes an expression in matrix notation where it has one: ``Xᵀ·dY``
  (``style="math"``) or ``X.T @ dY`` (``style="numpy"``). Einsums of at most two matrices
  or vectors become products, transposes, row and column sums and Hadamard products;
  anything else gives ``None``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Literal

from einsgrad.core.derivation import Factor, IndexTerm
from einsgrad.core.ir import Const, Einsum, Expr, Map, Size, Var
from einsgrad.core.labels import index_label

__all__ = [
    "factor_latex",
    "factor_text",
    "matrix_form",
    "number_text",
    "term_latex",
    "term_text",
]

Style = Literal["math", "numpy"]


# --- index terms: the writer of the derivation data in einsgrad.core.derivation ----------


def factor_text(factor: Factor) -> str:
    """``X_bi``, ``∂L/∂Y_bk``, ``δ_kj`` or ``∂Y_bk/∂W_ij``."""
    sub = index_label(factor.labels)
    if factor.kind == "grad":
        return f"∂L/∂{factor.name}{sub}"
    if factor.kind == "delta":
        return f"δ{sub}"
    if factor.kind == "partial":
        return f"∂{factor.of}{index_label(factor.of_labels)}/∂{factor.name}{sub}"
    return f"{factor.name}{sub}"


def factor_latex(factor: Factor) -> str:
    """The factor in LaTeX math."""
    sub = index_label(factor.labels, latex=True)
    name = _latex_name(factor.name)
    if factor.kind == "grad":
        return f"\\frac{{\\partial L}}{{\\partial {name}{sub}}}"
    if factor.kind == "delta":
        return f"\\delta{sub}"
    if factor.kind == "partial":
        of = _latex_name(factor.of) + index_label(factor.of_labels, latex=True)
        return f"\\frac{{\\partial {of}}}{{\\partial {name}{sub}}}"
    return f"{name}{sub}"


def _latex_name(name: str) -> str:
    if len(name) > 1 and "_" not in name:
        return f"\\mathrm{{{name}}}"
    return name.replace("_", "\\_")


def term_text(term: IndexTerm) -> str:
    """``c · Σ_k Σ_l X_ik · W_kl``."""
    body = " · ".join(factor_text(f) for f in term.factors) or "1"
    sums = "".join(f"Σ_{label} " for label in term.sums)
    coefficient = f"{term.coefficient} · " if term.coefficient else ""
    return f"{coefficient}{sums}{body}"


def term_latex(term: IndexTerm) -> str:
    """The term in LaTeX math, with explicit sums."""
    body = " ".join(factor_latex(f) for f in term.factors) or "1"
    sums = "".join(f"\\sum_{{{label}}} " for label in term.sums)
    coefficient = f"{term.coefficient} \\cdot " if term.coefficient else ""
    return f"{coefficient}{sums}{body}"


# --- matrix notation -----------------------------------------------------------------------

_SYMBOLS: Mapping[Style, Mapping[str, str]] = {
    "math": {"matmul": "·", "T": "ᵀ", "mul": " ⊙ ", "ones_left": "1ᵀ·", "ones_right": "·1"},
    "numpy": {"matmul": " @ ", "T": ".T", "mul": " * ", "ones_left": "", "ones_right": ""},
}


def matrix_form(
    expr: Expr, names: Mapping[Expr, str] | None = None, style: Style = "math"
) -> str | None:
    """``expr`` in matrix notation, or ``None`` if some part has no matrix form.

    ``names`` overrides how given nodes are written (``{cotangent: "∂L/∂Y"}``).
    """
    text, _ = _matrix(expr, dict(names or {}), style)
    return text


_ATOM = 100


def _matrix(expr: Expr, names: dict[Expr, str], style: Style) -> tuple[str | None, int]:
    sym = _SYMBOLS[style]
    if expr in names:
        return names[expr], _ATOM
    if isinstance(expr, Var):
        return expr.name, _ATOM
    if isinstance(expr, Const):
        if expr.is_scalar:
            return number_text(expr.value), _ATOM
        return None, 0
    if isinstance(expr, Size):
        return None, 0
    if isinstance(expr, Map):
        return _matrix_map(expr, names, style)
    if isinstance(expr, Einsum):
        return _matrix_einsum(expr, names, style, sym)
    return None, 0


def number_text(value: complex) -> str:
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, float):
        inverse = 1 / value if value else 0
        if inverse and abs(inverse - round(inverse)) < 1e-9 and abs(inverse) < 1e6:
            return f"1/{round(inverse)}"
        return f"{value:.6g}"
    return repr(value)


def _wrap(text: str, own: int, needed: int) -> str:
    return f"({text})" if own < needed else text


def _matrix_map(expr: Map, names: dict[Expr, str], style: Style) -> tuple[str | None, int]:
    sym = _SYMBOLS[style]
    parts = [_matrix(arg, names, style) for arg in expr.args]
    if any(text is None for text, _ in parts):
        return None, 0
    texts = [(text or "", own) for text, own in parts]
    name = expr.op.name
    if name in ("add", "subtract"):
        operator = " + " if name == "add" else " - "
        return f"{texts[0][0]}{operator}{_wrap(texts[1][0], texts[1][1], 11)}", 10
    if name == "multiply":
        scalar = [isinstance(arg, Const) and arg.is_scalar for arg in expr.args]
        joiner = " · " if style == "math" and any(scalar) else sym["mul"]
        return joiner.join(_wrap(t, own, 20) for t, own in texts), 20
    if name == "divide":
        return f"{_wrap(texts[0][0], texts[0][1], 20)} / {_wrap(texts[1][0], texts[1][1], 21)}", 20
    if name == "negative":
        return (
            f"−{_wrap(texts[0][0], texts[0][1], 30)}" if style == "math" else f"-{texts[0][0]}",
            30,
        )
    if name == "power":
        return f"{_wrap(texts[0][0], texts[0][1], 41)}**{texts[1][0]}", 40
    if name == "greater" and style == "math":
        return f"[{texts[0][0]} > {texts[1][0]}]", _ATOM
    if name == "negative" and style == "math":
        return f"-{_wrap(texts[0][0], texts[0][1], 30)}", 30
    return f"{name}({', '.join(t for t, _ in texts)})", _ATOM


def _matrix_einsum(
    expr: Einsum, names: dict[Expr, str], style: Style, sym: Mapping[str, str]
) -> tuple[str | None, int]:
    spec = expr.spec
    if (
        "..." in spec.text
        or isinstance(expr.like, Expr)
        or len(set(spec.output)) != len(spec.output)
    ):
        return None, 0
    scalars: list[str] = []
    pairs: list[tuple[tuple[str, ...], Expr]] = []
    for term, operand in zip(spec.inputs, expr.operands, strict=True):
        if not term and isinstance(operand, Const) and operand.is_scalar:
            scalars.append(number_text(operand.value))
        else:
            pairs.append((term, operand))
    output = spec.output
    if len(pairs) not in (1, 2) or any(len(t) > 2 or len(set(t)) != len(t) for t, _ in pairs):
        return None, 0
    rendered = [_matrix(op, names, style) for _, op in pairs]
    if any(text is None for text, _ in rendered):
        return None, 0
    texts = [(text or "", own) for text, own in rendered]
    body: str | None
    carried = {label for term, _ in pairs for label in term}
    if any(label not in carried for label in output):
        body = _broadcast(pairs, texts, output, sym) if len(pairs) == 1 else None
    elif len(pairs) == 1:
        body = _single(pairs[0][0], texts[0], output, sym)
    else:
        body = _pair(pairs, texts, output, sym)
    if body is None:
        return None, 0
    if scalars:
        joiner = " · " if style == "math" else " * "
        return joiner.join([*scalars, body]), 20
    return body, 20


def _transposed(text: tuple[str, int], sym: Mapping[str, str]) -> str:
    return f"{_wrap(text[0], text[1], _ATOM)}{sym['T']}"


def _single(
    term: tuple[str, ...], text: tuple[str, int], output: tuple[str, ...], sym: Mapping[str, str]
) -> str | None:
    if term == output:
        return text[0]
    if len(term) == 2 and output == term[::-1]:
        return _transposed(text, sym)
    operand = _wrap(text[0], text[1], _ATOM)
    if sym["ones_left"]:  # math style: sums as products with a ones vector
        if len(term) == 2 and output == term[1:]:
            return f"{sym['ones_left']}{operand}"
        if len(term) == 2 and output == term[:1]:
            return f"{operand}{sym['ones_right']}"
        if not output and len(term) == 1:
            return f"{sym['ones_left']}{operand}"
        if not output:
            return f"{sym['ones_left']}{operand}{sym['ones_right']}"
        return None
    if len(term) == 2 and output == term[1:]:
        return f"sum({text[0]}, axis=0)"
    if len(term) == 2 and output == term[:1]:
        return f"sum({text[0]}, axis=1)"
    if not output:
        return f"sum({text[0]})"
    return None


def _broadcast(
    pairs: list[tuple[tuple[str, ...], Expr]],
    texts: list[tuple[str, int]],
    output: tuple[str, ...],
    sym: Mapping[str, str],
) -> str | None:
    """A one-operand einsum whose output has labels the operand lacks: the operand's part
    (summed where the output drops its labels) times vectors of ones for the new labels.

    ``einsum('cb->ab', X)`` is ``1·1ᵀ·X`` (every row the column sums of X); vectors are
    columns, so a sum ``1ᵀ·X`` is a row and ``X·1`` a column. Math style only: numpy
    would say ``np.broadcast_to``, which is no matrix formula.
    """
    if not sym["ones_left"] or len(output) > 2:
        return None
    ((term, _),) = pairs
    core = tuple(label for label in output if label in term)
    if len(term) > 2 or len(core) > 1:
        return None
    if not core:  # a number (the operand summed whole) spread over the output
        summed = _single(term, texts[0], (), sym)
        ones = {0: "", 1: "·1", 2: "·1·1ᵀ"}[len(output)]
        return None if summed is None else f"({summed}){ones}" if len(term) else None
    (label,) = core
    row = output.index(label) == len(output) - 1  # the part varies along the last axis
    part = _oriented(term, texts[0], label, row, sym)
    return f"1·{part}" if row else f"{part}·1ᵀ"


def _oriented(
    term: tuple[str, ...], text: tuple[str, int], label: str, row: bool, sym: Mapping[str, str]
) -> str:
    """The operand summed onto ``label``, as a row (``1ᵀ·M``) or a column (``M·1``)."""
    operand = _wrap(text[0], text[1], _ATOM)
    if len(term) == 1:  # a vector as it is: a column, or its transpose for a row
        return f"{operand}ᵀ" if row else operand
    along_rows = term[1] == label  # label indexes M's columns
    matrix = operand if along_rows == row else _transposed(text, sym)
    return f"1ᵀ·{matrix}" if row else f"{matrix}·1"


def _pair(
    pairs: list[tuple[tuple[str, ...], Expr]],
    texts: list[tuple[str, int]],
    output: tuple[str, ...],
    sym: Mapping[str, str],
) -> str | None:
    (t1, _), (t2, _) = pairs
    contracted = [label for label in t1 if label in t2 and label not in output]
    if not contracted:
        if t1 == output and t2 == output:
            return sym["mul"].join(_wrap(t, own, 20) for t, own in texts)
        if len(t1) == 1 and len(t2) == 1 and output in (t1 + t2, t2 + t1):
            first, second = (texts[0], texts[1]) if output == t1 + t2 else (texts[1], texts[0])
            # An outer product: numpy's 1-D arrays are neither rows nor columns, so say it
            # with an einsum that numpy (and einsgrad's parser) reads the same way.
            return f"einsum('i,j->ij', {first[0]}, {second[0]})"
        return None
    if len(contracted) != 1:
        return None
    c = contracted[0]
    for (left, left_text), (right, right_text) in (
        ((t1, texts[0]), (t2, texts[1])),
        ((t2, texts[1]), (t1, texts[0])),
    ):
        e = [label for label in left if label != c]
        f = [label for label in right if label != c]
        if tuple(e + f) != output:
            continue
        # The left factor must be (e, c), the right one (c, f): transpose where stored otherwise.
        left_form = _wrap(left_text[0], left_text[1], 20)
        if len(left) == 2 and left[0] == c:
            left_form = _transposed(left_text, sym)
        right_form = _wrap(right_text[0], right_text[1], 21)
        if len(right) == 2 and right[1] == c:
            right_form = _transposed(right_text, sym)
        return f"{left_form}{sym['matmul']}{right_form}"
    return None
