"""What every fuzz property asserts about one einsgrad call, and the fuzz settings.

:func:`attempt` runs one call under the time bound and returns its :class:`Outcome`: the
value it returned, or the :class:`einsgrad.EinsgradError` it raised, whose message must
not be empty and whose caret, if it draws one, must lie inside the text it quotes and
underline what the message names. Any other exception fails the property, named as
such, with the original chained, and so does a call that runs over the bound.

:func:`fuzz_settings` is the one way a fuzz test picks its hypothesis settings: the
profile ``tests/conftest.py`` registers, with the test's own example count scaled by the
profile (1 in CI, 100 with ``--fuzz-long``).
"""

from __future__ import annotations

import ast
import contextlib
import gc
import re
import signal
import threading
import time
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
from hypothesis import settings

import einsgrad as eg

FUZZ_PROFILE = "einsgrad-fuzz"  # registered by tests/conftest.py

#: CPU seconds one einsgrad call may take on the inputs of the fuzz layer. Most take
#: milliseconds; the blow-ups the layer is after take tens of seconds, so a bound this
#: generous separates them. CPU time, not wall time, so that other processes on a
#: loaded machine do not make it flaky.
TIME_BOUND = 2.0

#: CPU seconds per node a pass over a graph built through the API may take on top of
#: :data:`TIME_BOUND`: a linear pass takes well under a millisecond per node, and a
#: quadratic one on the layer's 800-layer graphs seconds per node.
SECONDS_PER_NODE = 0.005


def fuzz_settings(examples: int) -> settings:
    """The fuzz profile with ``examples`` examples in CI (times its factor when long)."""
    profile = settings.get_profile(FUZZ_PROFILE)
    return settings(profile, max_examples=examples * profile.max_examples)


class OverTimeBound(Exception):
    """Raised inside a call by the alarm at the time bound, so a blow-up stops there."""


@contextlib.contextmanager
def time_bound(what: str, seconds: float = TIME_BOUND) -> Iterator[None]:
    """Fail if the block uses more than ``seconds`` CPU seconds, interrupting it
    at the bound (the profiling timer, which counts this process's CPU time).

    The timer's signal needs the main thread (where pytest runs tests); elsewhere only
    the time used is checked, after the block.
    """

    def interrupt(signum: int, frame: Any) -> None:
        raise OverTimeBound(f"{what} ran over the time bound of {seconds:.1f} CPU seconds")

    alarmed = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGPROF, interrupt) if alarmed else None
    # A collection of the garbage earlier examples left is not this call's time (a long
    # run's heap makes one take seconds); it runs after the block instead.
    collecting = gc.isenabled()
    gc.disable()
    if alarmed:
        signal.setitimer(signal.ITIMER_PROF, seconds)
    start = time.process_time()
    try:
        yield
    finally:
        if alarmed:
            signal.setitimer(signal.ITIMER_PROF, 0)
            signal.signal(signal.SIGPROF, previous)
        if collecting:
            gc.enable()
    used = time.process_time() - start
    if used > seconds:
        raise OverTimeBound(f"{what} took {used:.2f} CPU seconds, over {seconds:.1f}")


@dataclass(frozen=True)
class Outcome:
    """What one call did: returned ``value``, or raised ``error`` (an EinsgradError)."""

    value: Any = None
    error: eg.EinsgradError | None = None

    @property
    def ok(self) -> bool:
        return self.error is None


def attempt(
    what: str, action: Callable[[], Any], text: str | None = None, *, seconds: float = TIME_BOUND
) -> Outcome:
    """Run ``action`` within ``seconds`` of CPU: a value, or an EinsgradError with a message.

    ``text`` is the input string the call was given, if any: a caret in the message must
    then sit inside the line it quotes and under what the message names.
    """
    try:
        with warnings.catch_warnings(), np.errstate(all="ignore"):
            # ast warns about odd literals ("1e400if"); numpy about overflow in values.
            warnings.simplefilter("ignore", SyntaxWarning)
            warnings.simplefilter("ignore", RuntimeWarning)
            with time_bound(what, seconds):
                return Outcome(value=action())
    except eg.EinsgradError as error:
        message = str(error)
        assert message.strip(), f"{what}: {type(error).__name__} with an empty message"
        assert_caret_sane(message, what)
        return Outcome(error=error)
    except OverTimeBound as error:
        raise AssertionError(str(error)) from None
    except Exception as error:
        raise AssertionError(
            f"{what} raised {type(error).__name__}, not an EinsgradError: {error!s:.500}"
        ) from error


def expect_error(outcome: Outcome, what: str) -> eg.EinsgradError:
    """The error of an outcome that must be one."""
    assert outcome.error is not None, f"{what}: accepted, but should raise an EinsgradError"
    return outcome.error


def expect_value(outcome: Outcome, what: str) -> Any:
    """The value of an outcome that must be one."""
    assert outcome.error is None, f"{what}: raised {type(outcome.error).__name__}: {outcome.error}"
    return outcome.value


#: Printed output may be this many characters per character of input, plus a constant:
#: a derivation restates its input a few times, never once per pair of characters...
PRINTED_PER_INPUT_CHARACTER = 100
PRINTED_CONSTANT = 2_000
#: ``repr`` is a one-line summary, whatever the size of the expression.
REPR_LIMIT = 1_000


#: ... or this many per node of an expression's graph (explain restates each node's rule).
PRINTED_PER_NODE = 1_000


def printed(
    what: str, action: Callable[[], Any], size: int, per_unit: int = PRINTED_PER_INPUT_CHARACTER
) -> str:
    """Run a printing call (``str``, ``index_form``, ...): a string of length linear in
    ``size``, the size of what it prints, or an EinsgradError's message."""
    outcome = attempt(what, action)
    text = str(outcome.error) if outcome.error is not None else outcome.value
    assert isinstance(text, str), f"{what} gave {type(text).__name__}, not a string"
    bound = PRINTED_CONSTANT + per_unit * size
    assert len(text) <= bound, f"{what}: {len(text):,} characters for an input of {size:,}"
    return text


def graph_size(expr: eg.Expr) -> int:
    """The number of distinct nodes of ``expr``'s graph (children only), iteratively."""
    seen: set[int] = set()
    stack = [expr]
    while stack:
        node = stack.pop()
        if id(node) not in seen:
            seen.add(id(node))
            stack.extend(node.children)
    return len(seen)


# --- carets ---------------------------------------------------------------------------------

#: Messages that name the bad token, and so say what the caret must underline.
_NAMED_TOKEN = re.compile(
    r"(?P<token>'(?:[^'\\]|\\.)*'|\"(?:[^\"\\]|\\.)*\")"
    r" (?:is not a valid label|does not occur in any input)"
    r"|(?:stray|unknown function) (?P<token2>'(?:[^'\\]|\\.)*'|\"(?:[^\"\\]|\\.)*\")"
)


def caret_line(message: str) -> tuple[str, int, int] | None:
    """(quoted text, caret column, caret width) of a message's caret, or None."""
    lines = message.splitlines()
    for k in range(1, len(lines)):
        stripped = lines[k].strip()
        if stripped and set(stripped) == {"^"} and lines[k - 1].startswith("    "):
            return lines[k - 1][4:], lines[k].index("^") - 4, len(stripped)
    return None


def assert_caret_sane(message: str, what: str) -> None:
    """A caret lies within the quoted text (or one past its end) and under the named token.

    Texts with control characters are left alone: a newline or tab in the input splits
    or shifts the quote, so its columns cannot be read back from the message.
    """
    found = caret_line(message)
    if found is None:
        return
    quoted, column, width = found
    if any(ord(c) < 32 or ord(c) == 127 for c in quoted):
        return
    assert 0 <= column <= len(quoted), f"{what}: caret column {column} outside:\n{message}"
    assert column + width <= len(quoted) + 1, f"{what}: caret runs past the text:\n{message}"
    named = _NAMED_TOKEN.search(message.splitlines()[0])
    if named is not None:
        token = ast.literal_eval(named.group("token") or named.group("token2"))
        underlined = quoted[column : column + width]
        assert underlined == token, (
            f"{what}: the message names {token!r} but the caret underlines {underlined!r}:\n"
            f"{message}"
        )
