"""The one alphabet of einsum labels, and how label subscripts are written for display."""

from __future__ import annotations

from collections.abc import Sequence

from einsgrad.core.errors import ShapeError

__all__ = ["DISPLAY_LETTERS", "LETTERS", "index_label", "letters"]

#: Every label einsgrad writes into an einsum string, in the order it hands them out.
LETTERS = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"


#: Letters a derivation shown to a reader hands out, in the order hand derivations use them.
DISPLAY_LETTERS = "ijklmnpqrstuvwxyzabcdefgh"


def letters(count: int, start: int = 0) -> str:
    """``count`` consecutive labels from position ``start`` of :data:`LETTERS`."""
    if start + count > len(LETTERS):
        raise ShapeError(
            f"this einsum needs {start + count} index labels, more than the {len(LETTERS)} "
            "letters einsum strings have"
        )
    return LETTERS[start : start + count]


def index_label(labels: Sequence[str], *, latex: bool = False) -> str:
    """Subscript for ``labels``: ``bj`` (or ``b,jj`` when a label has several letters)."""
    joined = ("," if any(len(label) > 1 for label in labels) else "").join(labels)
    if latex:
        return f"_{{{joined}}}" if joined else ""
    return f"_{joined}" if joined else ""
