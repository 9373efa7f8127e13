"""The one alphabet of einsum labels, and the labels and names written for a reader.

Einsum strings have 52 letters; what einsgrad writes for a reader (index notation, the
steps of ``explain``, default operand names) must not run out, whatever the rank or the
number of operands. So each display sequence here starts with the letters hand
derivations use and then goes on with numbered names, without end.
"""

from __future__ import annotations

import itertools
from collections.abc import Collection, Iterator, Sequence

from einsgrad.core.errors import ShapeError, SpecError

__all__ = [
    "DISPLAY_LETTERS",
    "LETTERS",
    "default_operand_names",
    "display_label",
    "fresh_labels",
    "index_label",
    "letters",
    "output_name",
    "valid_names",
]

#: Every label einsgrad writes into an einsum string, in the order it hands them out.
LETTERS = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"


#: Letters a derivation shown to a reader hands out, in the order hand derivations use them.
DISPLAY_LETTERS = "ijklmnpqrstuvwxyzabcdefgh"

#: The names of a non-scalar output ``dY`` is the gradient of, in order of preference.
OUTPUT_NAMES = ("Y", "Z", "Out", "Result")


def letters(count: int, start: int = 0) -> str:
    """``count`` consecutive labels from position ``start`` of :data:`LETTERS`."""
    if start + count > len(LETTERS):
        raise ShapeError(
            f"this einsum needs {start + count} index labels, more than the {len(LETTERS)} "
            "letters einsum strings have"
        )
    return LETTERS[start : start + count]


def display_label(position: int, alphabet: str = DISPLAY_LETTERS) -> str:
    """The display label at ``position``: a letter of ``alphabet``, then ``i1, i2, ...``.

    Numbered labels have two or more characters, so they never equal a letter of an
    einsum string, and :func:`index_label` separates them with commas.
    """
    if position < len(alphabet):
        return alphabet[position]
    return f"i{position - len(alphabet) + 1}"


def fresh_labels(taken: Collection[str] = (), alphabet: str = DISPLAY_LETTERS) -> Iterator[str]:
    """Display labels not in ``taken``, in :func:`display_label` order, without end."""
    for position in itertools.count():
        label = display_label(position, alphabet)
        if label not in taken:
            yield label


def default_operand_names(count: int) -> tuple[str, ...]:
    """Default names of ``count`` einsum operands: ``A, B, ..., Z``, or ``A0, A1, ...``
    when there are more than 26, so that every name is a distinct Python identifier."""
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
    if count <= len(alphabet):
        return tuple(alphabet[:count])
    return tuple(f"A{k}" for k in range(count))


def valid_names(names: Sequence[object], count: int, what: str) -> tuple[str, ...]:
    """``names`` as ``count`` distinct Python identifiers naming the operands of ``what``."""
    if isinstance(names, str):
        raise SpecError(
            f"names must be a list of {count} names for {what}, got the string {names!r}"
        )
    given = list(names)
    if len(given) != count:
        raise SpecError(f"{what} has {count} operands but {len(given)} names were given")
    checked: dict[str, int] = {}
    for position, name in enumerate(given):
        if not isinstance(name, str) or not name.isidentifier():
            raise SpecError(
                f"operand name {position} of {what} must be a Python identifier, got {name!r}"
            )
        if name in checked:
            raise SpecError(
                f"operand name {name!r} of {what} is given twice (operands {checked[name]} "
                f"and {position})"
            )
        checked[name] = position
    return tuple(checked)


def output_name(preferred: str, operands: Collection[str]) -> str:
    """A name for the output that no operand has, so that ``dY`` cannot read as the gradient
    of an operand: ``preferred`` if free, else the first free one of Y, Z, Out, Result,
    Out1, Out2, ..."""
    candidates = itertools.chain(
        (preferred,), OUTPUT_NAMES, (f"Out{k}" for k in itertools.count(1))
    )
    return next(name for name in candidates if name not in operands)


def index_label(labels: Sequence[str], *, latex: bool = False) -> str:
    """Subscript for ``labels``: ``bj`` (or ``b,jj`` when a label has several letters)."""
    joined = ("," if any(len(label) > 1 for label in labels) else "").join(labels)
    if latex:
        return f"_{{{joined}}}" if joined else ""
    return f"_{joined}" if joined else ""
