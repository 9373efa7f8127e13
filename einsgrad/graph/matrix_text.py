"""Matrix notation: the pieces each node kind's ``matrix`` rule writes its form with.

``Xᵀ·dY`` in ``"math"`` style, ``X.T @ dY`` in ``"numpy"`` style. A rule gets the forms of
its children (text and binding strength, or None where a child has no matrix form) and
returns its own; :func:`einsgrad.teach.notation.matrix_form` walks an expression bottom-up
through the rules. Einsums of at most two matrices or vectors become products,
transposes, row and column sums, broadcasts by vectors of ones and Hadamard products.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Literal

from einsgrad.core.ir import Const, Einsum, Expr, Map

__all__ = ["ATOM", "Form", "Style", "einsum_form", "map_form", "no_matrix_form", "number_text"]

Style = Literal["math", "numpy"]
#: A node's matrix form: its text (None: it has none) and how tightly it binds.
Form = tuple[str | None, int]
#: The binding strength of a name or a parenthesised form.
ATOM = 100

SYMBOLS: Mapping[Style, Mapping[str, str]] = {
    "math": {"matmul": "·", "T": "ᵀ", "mul": " ⊙ ", "ones_left": "1ᵀ·", "ones_right": "·1"},
    "numpy": {"matmul": " @ ", "T": ".T", "mul": " * ", "ones_left": "", "ones_right": ""},
}


def number_text(value: complex) -> str:
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, float):
        inverse = 1 / value if value else 0
        if inverse and abs(inverse - round(inverse)) < 1e-9 and abs(inverse) < 1e6:
            return f"1/{round(inverse)}"
        return f"{value:.6g}"
    return repr(value)


def no_matrix_form(node: Expr, form_of: Callable[[Expr], Form], style: Style) -> Form:
    """The ``matrix`` rule of a kind that matrix notation has no symbol for."""
    return None, 0


def _wrap(text: str, own: int, needed: int) -> str:
    return f"({text})" if own < needed else text


def map_form(expr: Map, form_of: Callable[[Expr], Form], style: Style) -> Form:
    """An elementwise node: an operator, a mask, or a function of its arguments' forms."""
    sym = SYMBOLS[style]
    parts = [form_of(arg) for arg in expr.args]
    if any(text is None for text, _ in parts):
        return None, 0
    texts = [(text or "", own) for text, own in parts]
    name = expr.op.name
    if name in ("add", "subtract"):
        operator = " + " if name == "add" else " - "
        return f"{texts[0][0]}{operator}{_wrap(texts[1][0], texts[1][1], 11)}", 10
    # A select through a mask reads, in math, as the product it equals where it is finite.
    if name == "multiply" or (name == "masked" and style == "math"):
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
        return f"[{texts[0][0]} > {texts[1][0]}]", ATOM
    if name == "negative" and style == "math":
        return f"-{_wrap(texts[0][0], texts[0][1], 30)}", 30
    return f"{name}({', '.join(t for t, _ in texts)})", ATOM


def einsum_form(expr: Einsum, form_of: Callable[[Expr], Form], style: Style) -> Form:
    """An einsum of at most two matrices or vectors (and numbers) as a matrix formula."""
    sym = SYMBOLS[style]
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
    rendered = [form_of(op) for _, op in pairs]
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
    return f"{_wrap(text[0], text[1], ATOM)}{sym['T']}"


def _single(
    term: tuple[str, ...], text: tuple[str, int], output: tuple[str, ...], sym: Mapping[str, str]
) -> str | None:
    if term == output:
        return text[0]
    if len(term) == 2 and output == term[::-1]:
        return _transposed(text, sym)
    operand = _wrap(text[0], text[1], ATOM)
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
    operand = _wrap(text[0], text[1], ATOM)
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
