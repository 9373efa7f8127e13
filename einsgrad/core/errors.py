"""The exceptions einsgrad raises for bad input.

Every error a user can provoke with bad input is a subclass of :class:`EinsgradError`,
which is itself a :class:`ValueError`, so ``except ValueError`` keeps working for code
that does not know about einsgrad.
"""

from __future__ import annotations

__all__ = [
    "BackendError",
    "EinsgradError",
    "GradError",
    "MemoryLimitError",
    "MissingRuleError",
    "NoFormError",
    "NumberError",
    "OptionError",
    "ParseError",
    "ShapeError",
    "SpecError",
    "VariableError",
    "caret_message",
]


class EinsgradError(ValueError):
    """Base class of every error einsgrad raises for bad input."""


class SpecError(EinsgradError):
    """A malformed einsum specification string."""


class ShapeError(EinsgradError):
    """Shapes that do not fit: wrong rank, label-size mismatch, a size that is no whole number."""


class VariableError(EinsgradError):
    """A variable that is missing, unknown, or given twice."""


class OptionError(EinsgradError):
    """An option (keyword argument) with a value einsgrad does not accept."""


class ParseError(EinsgradError):
    """An expression string that is not in einsgrad's expression language."""


class NumberError(EinsgradError, OverflowError):
    """A number einsgrad cannot hold as a float (an int beyond ±1.8e308); also an
    OverflowError, which is what Python and numpy raise for it."""


class MemoryLimitError(EinsgradError):
    """A result or intermediate that would exceed the memory limit; nothing was allocated."""


class MissingRuleError(EinsgradError, NotImplementedError):
    """A node kind met by a pass that has no rule for it (its row in the rule table lacks
    that pass's entry); raised instead of a silent zero or a stale subtree."""


class NoFormError(EinsgradError):
    """An expression that a notation (index notation, say) has no way to write."""


class BackendError(EinsgradError):
    """An array backend that is not known, or whose array library is not installed."""


class GradError(EinsgradError):
    """A derivative that cannot be taken as asked (non-scalar loss, unknown or unused variable)."""


def caret_message(headline: str, text: str, column: int, *, width: int = 1) -> str:
    """Return ``headline`` followed by ``text`` with a caret line under ``text[column]``.

    ``width`` carets are drawn, so a bad token of several characters is underlined whole.
    """
    column = max(0, min(column, len(text)))
    return f"{headline}\n    {text}\n    {' ' * column}{'^' * max(1, width)}"
