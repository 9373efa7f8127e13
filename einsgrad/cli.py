"""The ``einsgrad`` command line (also ``python -m einsgrad``).

Exit status: 0 on success; 1 when ``check`` finds the formula wrong; 2 for bad input,
with exactly one line on stderr (``einsgrad: …``, never a traceback; where the input has
a bad character, the line names its column); 70 (``EX_SOFTWARE``) when einsgrad itself
fails, with one line saying it is a bug (``EINSGRAD_DEBUG=1`` adds the traceback);
130 on Ctrl-C and 141 when the reader of the output goes away
(``einsgrad explain … | head``), both without a message.

Every argument is checked before any work starts: strings are at most
:data:`~einsgrad.frontends.parse.MAX_LENGTH` characters, ``grad`` takes at most
:data:`MAX_OPERANDS` operands of at most :data:`MAX_RANK` labels each, and ``--shapes``
sizes are whole numbers from 1 with at most :data:`MAX_RANK` of them per variable.
"""

from __future__ import annotations

import argparse
import contextlib
import math
import os
import re
import sys
import traceback
import warnings
from collections.abc import Sequence

import numpy as np

from einsgrad import __version__, demo
from einsgrad.core.errors import EinsgradError
from einsgrad.core.labels import default_operand_names
from einsgrad.core.spec import ELLIPSIS, Spec, parse_spec
from einsgrad.frontends.parse import MAX_LENGTH
from einsgrad.graph.ops import einsum, var
from einsgrad.passes.calculus import vjp
from einsgrad.passes.simplify import simplify
from einsgrad.rules.einsum import BackwardRule, backward
from einsgrad.teach.check import check
from einsgrad.teach.explain import explain
from einsgrad.teach.notation import matrix_form

__all__ = [
    "MAX_OPERANDS",
    "MAX_RANK",
    "BadArgument",
    "build_parser",
    "main",
    "one_line",
    "parse_shapes",
]

BAD_INPUT = 2
# sysexits.h's EX_SOFTWARE: not 1, which ``check`` gives for a wrong formula.
INTERNAL_ERROR = 70
# What a shell reports for a command stopped by SIGINT or SIGPIPE (128 + the signal).
INTERRUPTED = 130
PIPE_CLOSED = 141

DEBUG_VARIABLE = "EINSGRAD_DEBUG"

#: The most operands numpy.einsum takes; each backward einsum ``grad`` prints has as many
#: (the other operands and the output's cotangent), so every one of them runs in numpy.
MAX_OPERANDS = 63
#: The most dimensions a numpy (2.x) array has, so the most labels an operand can carry.
MAX_RANK = 64
#: The most elements an array can have: numpy indexes them with a signed 64-bit integer.
MAX_ELEMENTS = int(np.iinfo(np.intp).max)

# How many characters of a long input an error line quotes on each side of the bad one.
_EXCERPT_CONTEXT = 30


class BadArgument(EinsgradError):
    """A command-line argument einsgrad does not accept (exit status 2)."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # type: ignore[override]
        # One line, as for every other bad input: no usage block above it.
        raise BadArgument(f"{message} (see '{self.prog} --help')")


# --- checking arguments --------------------------------------------------------------------


def check_length(what: str, text: str | None) -> None:
    """Refuse ``text`` longer than the library's input limit, before anything reads it."""
    if text is not None and len(text) > MAX_LENGTH:
        raise BadArgument(
            f"{what} is {len(text):,} characters long, over the limit of {MAX_LENGTH:,}"
        )


def parse_shapes(text: str | None) -> dict[str, tuple[int, ...]]:
    """``"X=64x128,W=128x10,b=10,s="`` as ``{"X": (64, 128), ...}`` (empty: a scalar).

    Each size is a whole number from 1 written in the digits 0-9; a variable has at most
    :data:`MAX_RANK` sizes and at most :data:`MAX_ELEMENTS` elements, and is named once.
    """
    check_length("--shapes", text)
    shapes: dict[str, tuple[int, ...]] = {}
    if not text:
        return shapes
    for raw in text.split(","):
        item = raw.strip()
        name, sep, dims = item.partition("=")
        name = name.strip()
        if not sep or not name.isidentifier():
            raise BadArgument(f"--shapes: expected NAME=AxB, got {item!r}")
        if name in shapes:
            raise BadArgument(f"--shapes: {name} is given twice")
        shapes[name] = _parse_sizes(item, dims.strip())
    return shapes


def _parse_sizes(item: str, dims: str) -> tuple[int, ...]:
    """The sizes ``"3x4"`` of the ``--shapes`` entry ``item`` (``""``: a scalar)."""
    if not dims:
        return ()
    parts = [part.strip() for part in dims.lower().split("x")]
    if len(parts) > MAX_RANK:
        raise BadArgument(
            f"--shapes: {item!r} has {len(parts)} sizes; an array has at most {MAX_RANK}"
        )
    sizes = []
    for part in parts:
        if not part:
            raise BadArgument(
                f"--shapes: {item!r} has an empty size (write X=3x4, or X= for a scalar)"
            )
        unsigned = part[1:] if part[0] in "+-" else part
        if not (unsigned.isascii() and unsigned.isdigit()):
            raise BadArgument(f"--shapes: {item!r} has a size that is not a whole number")
        if part[0] == "-":
            raise BadArgument(f"--shapes: {item!r} has a negative size")
        # Measured before int() reads it: a size too long for 64 bits is too large anyway.
        if len(unsigned.lstrip("0")) > len(str(MAX_ELEMENTS)) or int(unsigned) > MAX_ELEMENTS:
            raise BadArgument(
                f"--shapes: {item!r} has a size over {MAX_ELEMENTS:,}, the most elements "
                "an array can have"
            )
        if int(unsigned) == 0:
            raise BadArgument(
                f"--shapes: {item!r} has a size 0: an empty array has no entries to "
                "differentiate, and check could not test a formula on it"
            )
        sizes.append(int(unsigned))
    if math.prod(sizes) > MAX_ELEMENTS:
        raise BadArgument(
            f"--shapes: {item!r} has {math.prod(sizes):,} elements, more than the "
            f"{MAX_ELEMENTS:,} an array can have"
        )
    return tuple(sizes)


def check_spec_size(spec: Spec) -> None:
    """Refuse more operands than numpy's einsum takes, or an operand of more dimensions
    than a numpy array has."""
    if len(spec.inputs) > MAX_OPERANDS:
        raise BadArgument(
            f"einsum spec has {len(spec.inputs)} operands; grad takes at most {MAX_OPERANDS}, "
            "the most numpy.einsum accepts (every backward einsum has as many)"
        )
    for position, term in enumerate(spec.inputs):
        rank = sum(label != ELLIPSIS for label in term)
        if rank > MAX_RANK:
            raise BadArgument(
                f"einsum spec: operand {position} has {rank} labels; a numpy array has at "
                f"most {MAX_RANK} dimensions"
            )


def operand_names(text: str | None, count: int) -> tuple[str, ...]:
    """The operand names of ``--names`` (default: ``default_operand_names``), checked.

    Each is an identifier, none repeats, and none reads as another's gradient (``X`` and
    ``dX``): the output prints ``dX`` for the gradient of ``X``.
    """
    if text is None:
        return default_operand_names(count)
    names = tuple(name.strip() for name in text.split(","))
    if len(names) != count:
        raise BadArgument(f"--names gives {len(names)} names for {count} operands")
    seen: set[str] = set()
    for name in names:
        if not name.isidentifier():
            raise BadArgument(
                f"--names: {name!r} is not a name (a name is an identifier such as X or W1)"
            )
        if name in seen:
            raise BadArgument(f"--names: {name!r} is given twice")
        seen.add(name)
    for name in names:
        if name.startswith("d") and name[1:] in seen:
            raise BadArgument(f"--names: {name!r} would read as the gradient of {name[1:]!r}")
    return names


def output_name(names: Sequence[str]) -> str:
    """A name for the einsum's output whose cotangent ``d<name>`` is no operand's name,
    nor the gradient of one (an operand named like the output)."""
    taken = set(names)
    candidates = ["Y", "Z", "Out", "Result"]
    candidates += [f"Out{k}" for k in range(1, len(taken) + 2)]
    return next(c for c in candidates if c not in taken and "d" + c not in taken)


# --- the subcommands -----------------------------------------------------------------------


def _grad(args: argparse.Namespace) -> int:
    check_length("the einsum spec", args.spec)
    check_length("--names", args.names)
    spec = parse_spec(args.spec)
    check_spec_size(spec)
    count = len(spec.inputs)
    names = operand_names(args.names, count)
    output = output_name(names)
    operands = range(count) if args.wrt is None else [args.wrt]
    # Every rule is derived, and every error raised, before the first line is printed.
    rules = [backward(args.spec, k, names=names, output=output) for k in operands]
    lines = [line for rule in rules for line in _grad_lines(spec, rule)]
    print("\n".join(lines))
    return 0


def _grad_lines(spec: Spec, rule: BackwardRule) -> list[str]:
    """The printed block of one operand's backward rule."""
    k = rule.wrt
    names = rule.operand_names
    lines = [
        f"d{names[k]}:",
        f"  index form:  {rule.index_form()}",
        f"  einsum:      {rule.spec!r}  (the other operands in order, then d{rule.output_name})",
    ]
    if rule.broadcast:
        lines.append(f"  broadcast:   along {', '.join(rule.broadcast)}")
    if rule.diagonal:
        lines.append(f"  diagonal:    of {', '.join(rule.diagonal)}")
    form = _matrix_form(spec, rule)
    if form is not None:
        lines.append(f"  matrix form: d{names[k]} = {form}")
    return lines


def _matrix_form(spec: Spec, rule: BackwardRule) -> str | None:
    """The backward in matrix notation, when the operands are matrices or vectors (their
    ranks read from the spec, their sizes made up and distinct per label)."""
    if any(len(term) > 2 for term in spec.inputs) or ELLIPSIS in spec.text:
        return None
    sizes = {label: 2 + i for i, label in enumerate(sorted(spec.input_labels))}
    variables = [
        var(name, tuple(sizes[label] for label in term))
        for name, term in zip(rule.operand_names, spec.inputs, strict=True)
    ]
    try:
        forward = einsum(spec.text, *variables)
        cotangent = var("d" + rule.output_name, forward.shape)
        derived = vjp(forward, variables[rule.wrt], cotangent)
        return matrix_form(simplify(derived), {cotangent: cotangent.name})  # type: ignore[arg-type]
    except EinsgradError:
        return None


def _explain(args: argparse.Namespace) -> int:
    check_length("the expression", args.expr)
    check_length("--wrt", args.wrt)
    derivation = explain(args.expr, args.wrt, shapes=parse_shapes(args.shapes))
    print(getattr(derivation, args.format))
    return 0


def _check(args: argparse.Namespace) -> int:
    check_length("the formula", args.formula)
    check_length("--expr", args.expr)
    check_length("--wrt", args.wrt)
    verdict = check(args.formula, args.expr, args.wrt, shapes=parse_shapes(args.shapes))
    print(verdict)
    return 0 if verdict.ok else 1


def _demo(args: argparse.Namespace) -> int:
    return demo.main()


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="einsgrad", description="Tensor calculus on einsum, with the work shown.")
    parser.add_argument("--version", action="version", version=f"einsgrad {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    grad = commands.add_parser("grad", help="the backward einsum of an einsum, per operand")
    grad.add_argument("spec", help="an einsum spec, e.g. 'bi,ij->bj'")
    grad.add_argument("--wrt", type=int, help="operand index (default: every operand)")
    grad.add_argument("--names", help="operand names, comma-separated, e.g. X,W")
    grad.set_defaults(run=_grad)
    explain = commands.add_parser("explain", help="derive a gradient step by step")
    explain.add_argument("expr", help="an expression, e.g. 'mean(relu(X @ W + b) ** 2)'")
    explain.add_argument("--wrt", required=True, help="the variable to differentiate by")
    explain.add_argument("--format", choices=["text", "markdown", "latex"], default="text")
    explain.add_argument("--shapes", help="variable shapes, e.g. X=64x128,W=128x10,b=10")
    explain.set_defaults(run=_explain)
    check = commands.add_parser("check", help="check a hand-derived gradient formula")
    check.add_argument("formula", help="your formula, e.g. 'dY @ W.T' (dY: the upstream gradient)")
    check.add_argument("--expr", required=True, help="the forward expression, e.g. 'X @ W'")
    check.add_argument("--wrt", required=True, help="the variable the formula is the gradient for")
    check.add_argument("--shapes", required=True, help="variable shapes, e.g. X=5x3,W=3x4")
    check.set_defaults(run=_check)
    demo_parser = commands.add_parser(
        "demo", help="derive and check the linear-layer gradients of the seed notes"
    )
    demo_parser.set_defaults(run=_demo)
    return parser


# --- the boundary: every failure becomes one line and an exit status -----------------------


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit status."""
    _replace_unencodable_output()
    try:
        status = _run(argv)
        # A closed pipe shows up when buffered output is written: flush while it can
        # still be handled here, not at interpreter exit.
        sys.stdout.flush()
        return status
    except BrokenPipeError:
        _discard_stdout()
        return PIPE_CLOSED
    except KeyboardInterrupt:
        return INTERRUPTED


def _run(argv: Sequence[str] | None) -> int:
    """Parse and run; every exception but the two main() handles becomes an exit status."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            args = build_parser().parse_args(argv)
            status = int(args.run(args))
        except SystemExit as done:  # --help and --version: argparse has printed them
            return done.code if isinstance(done.code, int) else 0
        except BrokenPipeError:
            raise
        except Exception as error:  # the boundary: no exception leaves as a traceback
            return _report(error)
    # numpy's warnings (an invalid value in check's random inputs, say), one line each;
    # after an error they are left out, so that error stays the one line.
    for message in dict.fromkeys(one_line(f"{w.message} ({w.category.__name__})") for w in caught):
        _print_error(f"warning: {message}")
    return status


def _report(error: Exception) -> int:
    status, message = classify(error)
    _print_error(message)
    if os.environ.get(DEBUG_VARIABLE, "") not in ("", "0"):
        traceback.print_exception(error, file=sys.stderr)
    return status


def classify(error: Exception) -> tuple[int, str]:
    """The exit status and the one-line message for an exception that reached main().

    einsgrad's own errors are bad input. So are the ways Python and numpy give up on an
    input too large or too deep (recursion, memory, overflow, numpy refusing it), until
    the library catches each of them itself. Anything else is a bug in einsgrad.
    """
    text = one_line(str(error))
    if isinstance(error, EinsgradError):
        return BAD_INPUT, text or type(error).__name__
    if isinstance(error, RecursionError):
        return BAD_INPUT, (
            "the input is nested too deeply to work through (Python's recursion limit was "
            "reached); write it in smaller parts"
        )
    if isinstance(error, MemoryError):
        return BAD_INPUT, f"out of memory ({text or 'MemoryError'}); declare smaller shapes"
    if isinstance(error, OverflowError):
        return BAD_INPUT, f"a number in the input is too large ({text or 'OverflowError'})"
    if isinstance(error, FloatingPointError | np.exceptions.AxisError) or _raised_in_numpy(error):
        return BAD_INPUT, f"numpy refused the input ({_described(error, text)})"
    return INTERNAL_ERROR, (
        f"internal error, a bug in einsgrad and not in your input ({_described(error, text)}); "
        f"please report it with the command line that caused it ({DEBUG_VARIABLE}=1 shows "
        "the traceback)"
    )


def _described(error: Exception, text: str) -> str:
    return f"{type(error).__name__}: {text}" if text else type(error).__name__


def _raised_in_numpy(error: Exception) -> bool:
    """Whether numpy or opt_einsum refused what it was handed: ``error`` is of a type
    numpy defines, or the innermost Python frame it passed through is theirs.

    (A plain ValueError from numpy's C code called straight from einsgrad looks like
    einsgrad's own, and is reported as a bug: einsgrad should have checked first.)
    """
    if type(error).__module__.split(".")[0] == "numpy":
        return True
    frame = None
    trace = error.__traceback__
    while trace is not None:
        frame, trace = trace.tb_frame, trace.tb_next
    module = frame.f_globals.get("__name__", "") if frame is not None else ""
    return module.split(".")[0] in ("numpy", "opt_einsum")


# The two lines caret_message puts under a headline: the text, then carets under it.
_CARET_LINE = re.compile(r" {4}( *)(\^+)")


def one_line(message: str) -> str:
    """``message`` on one line: lines joined by ``; ``, a caret under a text as its column.

    ``caret_message``'s layout (headline, the text indented by four spaces, carets under
    the bad characters) becomes the headline, ``at column N`` unless the headline says
    the column already, and the text around that column unless the headline quotes it.
    """
    lines = message.splitlines()
    pieces: list[str] = []
    for index, line in enumerate(lines):
        caret = _CARET_LINE.fullmatch(line)
        above = lines[index - 1] if index else ""
        if caret and pieces and above.startswith("    "):
            column, width = len(caret.group(1)), len(caret.group(2))
            pieces[-1] = _located(above[4:], column, width, " ".join(pieces[:-1]))
        elif line.strip():
            pieces.append(line.strip())
    return "; ".join(piece for piece in pieces if piece)


def _located(text: str, column: int, width: int, headline: str) -> str:
    """Where in ``text`` the bad characters are, for a line after ``headline``."""
    where = "" if "column" in headline else f"at column {column + 1}"
    if text in headline:
        return where
    start = max(0, column - _EXCERPT_CONTEXT)
    stop = min(len(text), column + width + _EXCERPT_CONTEXT)
    excerpt = ("…" if start else "") + text[start:stop] + ("…" if stop < len(text) else "")
    return f"{where} in: {excerpt}".strip()


def _print_error(message: str) -> None:
    # With stderr closed too, the exit status is all that is left to say it.
    with contextlib.suppress(OSError):
        print(f"einsgrad: {message}", file=sys.stderr, flush=True)


def _replace_unencodable_output() -> None:
    """Write a character stdout's encoding lacks (``Σ`` under ``PYTHONIOENCODING=ascii``)
    as an escape such as ``\\u03a3``, instead of failing half-way with
    UnicodeEncodeError. stderr does this by default."""
    reconfigure = getattr(sys.stdout, "reconfigure", None)
    if reconfigure is not None:
        reconfigure(errors="backslashreplace")


def _discard_stdout() -> None:
    """Point stdout at devnull, so the flush at exit does not fail on the closed pipe again.

    Python's documentation recommends this (the signal module's note on SIGPIPE).
    """
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):  # no file descriptor (stdout replaced in-process)
        pass


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
