"""The command line's error contract, run in-process through ``main(argv)`` (fast).

Every bad invocation exits 2 with exactly one non-empty stderr line and nothing on stdout;
an error inside einsgrad exits 70 with one line that says it is a bug. The subprocess
tests (signals, pipes, encodings) are in ``tests/test_cli.py``.
"""

from __future__ import annotations

import re
import string
import warnings
from typing import Any

import autograd
import autograd.numpy as anp
import numpy as np
import pytest
from oracles import finite_difference

import einsgrad.cli as cli
from einsgrad.cli import MAX_OPERANDS, MAX_RANK, main
from einsgrad.core.errors import EinsgradError
from einsgrad.frontends.parse import MAX_LENGTH


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    status = main(list(argv))
    captured = capsys.readouterr()
    return status, captured.out, captured.err


def one_error_line(status: int, out: str, err: str, expected_status: int = 2) -> str:
    """The single stderr line of a failed run (and nothing on stdout)."""
    assert status == expected_status, (status, out, err)
    assert "Traceback" not in err
    assert out == ""
    lines = err.splitlines()
    assert len(lines) == 1, err
    assert err.endswith("\n")
    assert lines[0].startswith("einsgrad: ") and len(lines[0]) > len("einsgrad: "), err
    return lines[0]


def spec_of(count: int, term: str = "i") -> str:
    return ",".join([term] * count) + "->"


SHAPES = ("--shapes", "X=2x3,W=3x5")
CHECK = ("check", "dY @ W.T", "--expr", "X @ W", "--wrt", "X")
TOO_LONG = "x" * (MAX_LENGTH + 1)
HUGE_HEX = "x * 0x" + "F" * 300
WIDE_TERM = string.ascii_letters + string.ascii_letters[: MAX_RANK + 1 - 52]

# (argv, a phrase the one line must contain): every subcommand, and the command line itself.
BAD_ARGUMENTS: list[tuple[tuple[str, ...], str]] = [
    ((), "the following arguments are required"),
    (("no-such-command",), "invalid choice: 'no-such-command'"),
    (("--bogus",), "the following arguments are required: command"),
    (("grad", "bi,ij->bj", "--bogus"), "unrecognized arguments: --bogus"),
    (("demo", "extra"), "unrecognized arguments: extra"),
    (("demo", "--wrt", "0"), "unrecognized arguments"),
    # grad
    (("grad",), "the following arguments are required: spec"),
    (("grad", "bi,ij->b("), "'(' is not a valid label"),
    (("grad", "bi,ij->bj", "--wrt", "x"), "invalid int value: 'x'"),
    (("grad", "bi,ij->bj", "--wrt", "5"), "out of range"),
    (("grad", "bi,ij->bj", "--wrt", "9" * 40), "out of range"),
    (("grad", "bi,ij->bj", "--names", "X"), "--names gives 1 names for 2 operands"),
    (("grad", "bi,ij->bj", "--names", "X,X"), "--names: 'X' is given twice"),
    (("grad", "bi,ij->bj", "--names", "X,1W"), "--names: '1W' is not a name"),
    (("grad", "bi,ij->bj", "--names", "X,"), "--names: '' is not a name"),
    (("grad", "bi,ij->bj", "--names", "X,dX"), "'dX' would read as the gradient of 'X'"),
    (("grad", "i->ij"), "output label 'j' does not occur in any input"),
    (("grad", spec_of(MAX_OPERANDS + 1)), f"has {MAX_OPERANDS + 1} operands"),
    (("grad", WIDE_TERM + "->"), f"operand 0 has {MAX_RANK + 1} labels"),
    (("grad", "i" * (MAX_LENGTH + 1)), "over the limit of 10,000"),
    (("grad", spec_of(50_000)), "the einsum spec is 100,001 characters long"),
    (("grad", "bi,ij->bj", "--names", TOO_LONG), "--names is 10,001 characters long"),
    # explain
    (("explain", "X @ W", *SHAPES), "required: --wrt"),
    (("explain", "X @ W", "--wrt", "W", "--format", "html", *SHAPES), "invalid choice: 'html'"),
    (("explain", "X @ W", "--wrt", "W"), "explain needs shapes"),
    (("explain", "X @ W", "--wrt", "Q", *SHAPES), "wrt='Q' is not a variable"),
    (("explain", "X @ (W", "--wrt", "W", *SHAPES), "'(' was never closed"),
    (("explain", "X @ W", "--wrt", "W", "--shapes", "X=2x3,W=4x5"), "inner sizes 3 and 4"),
    (("explain", TOO_LONG, "--wrt", "x", "--shapes", "x="), "the expression is 10,001 characters"),
    (("explain", "x", "--wrt", TOO_LONG, "--shapes", "x="), "--wrt is 10,001 characters"),
    (("explain", HUGE_HEX, "--wrt", "x", "--shapes", "x="), "too large"),
    # --shapes, through explain and check
    (("explain", "X", "--wrt", "X", "--shapes", "X=9999999999999999999999999x3"), "size over"),
    (("explain", "X", "--wrt", "X", "--shapes", "X=" + "9" * 5000), "size over"),
    (("explain", "X", "--wrt", "X", "--shapes", "X=4294967296x4294967296"), "elements, more"),
    (("explain", "X", "--wrt", "X", "--shapes", "X=0x3"), "'X=0x3' has a size 0"),
    (("explain", "X", "--wrt", "X", "--shapes", "X=-1x3"), "'X=-1x3' has a negative size"),
    (("explain", "X", "--wrt", "X", "--shapes", "X=3x"), "'X=3x' has an empty size"),
    (("explain", "X", "--wrt", "X", "--shapes", "X=x3"), "'X=x3' has an empty size"),
    (("explain", "X", "--wrt", "X", "--shapes", "X=axb"), "'X=axb' has a size that is not"),
    (("explain", "X", "--wrt", "X", "--shapes", "X=3.0"), "size that is not a whole number"),
    (("explain", "X", "--wrt", "X", "--shapes", "X=٣"), "size that is not a whole number"),
    (("explain", "X", "--wrt", "X", "--shapes", "X=2,X=3"), "--shapes: X is given twice"),
    (("explain", "X", "--wrt", "X", "--shapes", "X=2,,W=3"), "expected NAME=AxB, got ''"),
    (("explain", "X", "--wrt", "X", "--shapes", "X=2,"), "expected NAME=AxB, got ''"),
    (("explain", "X", "--wrt", "X", "--shapes", "=2"), "expected NAME=AxB, got '=2'"),
    (("explain", "X", "--wrt", "X", "--shapes", "X=" + "x".join("1" * 65)), "65 sizes"),
    (
        ("explain", "X", "--wrt", "X", "--shapes", "X=" + "1x" * 5001),
        "--shapes is 10,004 characters",
    ),
    # check
    (CHECK, "required: --shapes"),
    (("check", "dY @ W.T", "--wrt", "X", *SHAPES), "required: --expr"),
    (("check", "dY @ V.T", "--expr", "X @ W", "--wrt", "X", *SHAPES), "the formula uses 'V'"),
    (("check", "dY @ (W", "--expr", "X @ W", "--wrt", "X", *SHAPES), "never closed"),
    (("check", "dY", "--expr", "X @ W", "--wrt", "Q", *SHAPES), "wrt='Q' is not a variable"),
    (("check", "dY", "--expr", "X @ W", "--wrt", "X", "--shapes", "X=5x3"), "needs shapes"),
    ((*CHECK, "--shapes", "X=5x3,W=3xq"), "'W=3xq' has a size that is not a whole number"),
    (
        ("check", "dY" + " + dY" * 7000, "--expr", "X", "--wrt", "X", "--shapes", "X=3"),
        "the formula is 35,002",
    ),
    (("check", "dY", "--expr", TOO_LONG, "--wrt", "x", "--shapes", "x="), "--expr is 10,001"),
    # random test inputs of 8 TB: refused, or failing to allocate; one line either way
    (
        (*CHECK[:1], "2 * dY @ W.T", *CHECK[2:], "--shapes", "X=1000000x1000000,W=1000000x1000000"),
        "",
    ),
]


@pytest.mark.parametrize(
    ("argv", "phrase"), BAD_ARGUMENTS, ids=[" ".join(a)[:60] for a, _ in BAD_ARGUMENTS]
)
def test_a_bad_invocation_exits_2_with_one_line(
    capsys: pytest.CaptureFixture[str], argv: tuple[str, ...], phrase: str
) -> None:
    line = one_error_line(*run(capsys, *argv))
    assert phrase in line, line


def test_every_subcommand_is_in_the_table() -> None:
    commands = {argv[0] for argv, _ in BAD_ARGUMENTS if argv and not argv[0].startswith("-")}
    assert {"grad", "explain", "check", "demo"} <= commands


def test_a_caret_becomes_the_column_on_the_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    # 'b(' : the '(' is the 9th character of the spec.
    line = one_error_line(*run(capsys, "grad", "bi,ij->b("))
    assert line.endswith("at column 9"), line
    # The expression's own message names the column; the line quotes the text around it.
    line = one_error_line(*run(capsys, "explain", "X @ (W", "--wrt", "W", *SHAPES))
    assert "(column 5)" in line and line.endswith("in: X @ (W"), line


def test_a_long_input_is_quoted_around_its_bad_character() -> None:
    text = "a" * 100 + "(" + "b" * 100
    message = f"bad character\n    {text}\n    {' ' * 100}^"
    line = cli.one_line(message)
    excerpt = line.split(" in: ", 1)[1]
    assert line.startswith("bad character; at column 101 in: ")
    assert excerpt == "…" + "a" * 30 + "(" + "b" * 30 + "…"


# --- grad: any names, any count of operands up to numpy's limit ----------------------------


def _printed_einsums(out: str) -> list[str]:
    return re.findall(r"einsum:\s+'([^']*)'", out)


def _check_backward_einsum(spec: str, printed: str, k: int, shapes: list[tuple[int, ...]]) -> None:
    """The printed backward einsum of operand ``k``, run by numpy, against autograd and
    central differences of ``sum(dY * einsum(spec, ...))``."""
    rng = np.random.default_rng(k)
    operands = [rng.standard_normal(s) for s in shapes]
    dy = np.asarray(rng.standard_normal(np.einsum(spec, *operands).shape))

    def loss(x: Any) -> Any:
        return anp.sum(dy * anp.einsum(spec, *operands[:k], x, *operands[k + 1 :]))

    others = operands[:k] + operands[k + 1 :]
    derived = np.einsum(printed, *others, dy)
    np.testing.assert_allclose(derived, autograd.grad(loss)(operands[k]), rtol=1e-10)
    numeric = finite_difference(lambda x: loss(x), {"x": operands[k]}, "x")
    np.testing.assert_allclose(derived, numeric, rtol=1e-5, atol=1e-8)


def test_grad_with_the_names_the_output_would_take(capsys: pytest.CaptureFixture[str]) -> None:
    # Y, Z, Out and Result are every name the output could be given: it needs another.
    status, out, err = run(capsys, "grad", "i,i,i,i->", "--wrt", "0", "--names", "Y,Z,Out,Result")
    assert (status, err) == (0, "")
    index_form = next(line for line in out.splitlines() if "index form" in line)
    left, right = index_form.split(":", 1)[1].split(" = ")
    assert left.strip() == "dY[i]"
    factors = right.split(" · ")
    assert sorted(factors[:3]) == ["Out[i]", "Result[i]", "Z[i]"]
    cotangent = factors[3]
    assert cotangent.startswith("d") and cotangent[1:] not in {"Y", "Z", "Out", "Result"}
    [printed] = _printed_einsums(out)
    _check_backward_einsum("i,i,i,i->", printed, 0, [(3,)] * 4)


def test_grad_of_many_operands_names_each_distinctly(capsys: pytest.CaptureFixture[str]) -> None:
    # Past 26 operands the default names used to run past Z into '[', '\\', ...
    count = 30
    spec = spec_of(count)
    status, out, err = run(capsys, "grad", spec)
    assert (status, err) == (0, "")
    headers = [line[:-1] for line in out.splitlines() if not line.startswith(" ")]
    assert len(headers) == count and len(set(headers)) == count
    assert all(h.startswith("d") and h[1:].isidentifier() for h in headers), headers
    printed = _printed_einsums(out)
    assert len(printed) == count
    for k in (0, 26, 29):
        _check_backward_einsum(spec, printed[k], k, [(2,)] * count)


def test_grad_takes_as_many_operands_as_numpy_einsum(capsys: pytest.CaptureFixture[str]) -> None:
    # The limit is numpy's: each printed backward einsum at the limit still runs in numpy.
    spec = spec_of(MAX_OPERANDS)
    status, out, err = run(capsys, "grad", spec, "--wrt", str(MAX_OPERANDS - 1))
    assert (status, err) == (0, "")
    [printed] = _printed_einsums(out)
    _check_backward_einsum(spec, printed, MAX_OPERANDS - 1, [(2,)] * MAX_OPERANDS)
    with pytest.raises(ValueError, match="too many operands"):
        np.einsum(spec_of(MAX_OPERANDS + 1), *[np.ones(2)] * (MAX_OPERANDS + 1))


def test_grad_prints_nothing_when_it_fails(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # The rules of the operands before a failing one are not printed first: every rule is
    # derived, then shown, so a failed run leaves stdout empty.
    real = cli.backward

    def fails_for_the_second(spec: str, wrt: int, **kwargs: Any) -> Any:
        if wrt == 1:
            raise EinsgradError("no rule for operand 1")
        return real(spec, wrt, **kwargs)

    monkeypatch.setattr(cli, "backward", fails_for_the_second)
    line = one_error_line(*run(capsys, "grad", "bi,ij->bj"))
    assert line == "einsgrad: no rule for operand 1"


@pytest.mark.parametrize("shapes", ["X=", "X=1", "X=+2x3", "X = 2 X 3"])
def test_shapes_that_are_accepted(shapes: str) -> None:
    expected = {"X=": (), "X=1": (1,), "X=+2x3": (2, 3), "X = 2 X 3": (2, 3)}[shapes]
    assert cli.parse_shapes(shapes) == {"X": expected}


# --- the boundary: what the library lets escape still comes out as one line ---------------


def _raise(error: BaseException) -> Any:
    def fail(*args: Any, **kwargs: Any) -> Any:
        raise error

    return fail


def _numpy_refuses(*args: Any, **kwargs: Any) -> Any:
    return np.einsum("ij,jk->ik", np.ones((2, 3)), np.ones((4, 5)))


ESCAPES: list[tuple[Any, int, str]] = [
    (_raise(RecursionError("maximum recursion depth exceeded")), 2, "nested too deeply"),
    (_raise(MemoryError("Unable to allocate 8 TiB")), 2, "out of memory (Unable to allocate"),
    (_raise(OverflowError("int too large to convert to float")), 2, "a number in the input"),
    (_raise(np.exceptions.AxisError(3, 2)), 2, "numpy refused the input (AxisError"),
    (_numpy_refuses, 2, "numpy refused the input (ValueError: operands could not"),
    (_raise(StopIteration()), 70, "a bug in einsgrad and not in your input (StopIteration)"),
    (_raise(KeyError("Y")), 70, "a bug in einsgrad and not in your input (KeyError: 'Y')"),
    (_raise(ValueError("a\nb")), 70, "(ValueError: a; b); please report it"),
]


@pytest.mark.parametrize(("fail", "status", "phrase"), ESCAPES, ids=[p for *_, p in ESCAPES])
def test_an_escaping_exception_is_one_line(
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    fail: Any,
    status: int,
    phrase: str,
) -> None:
    monkeypatch.delenv(cli.DEBUG_VARIABLE, raising=False)
    monkeypatch.setattr(cli, "explain", fail)
    line = one_error_line(*run(capsys, "explain", "X @ W", "--wrt", "W", *SHAPES), status)
    assert phrase in line, line
    if status == 70:
        assert f"{cli.DEBUG_VARIABLE}=1 shows the traceback" in line


def test_the_debug_variable_adds_the_traceback(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv(cli.DEBUG_VARIABLE, "1")
    monkeypatch.setattr(cli, "explain", _raise(StopIteration()))
    status, out, err = run(capsys, "explain", "X @ W", "--wrt", "W", *SHAPES)
    assert status == 70 and out == ""
    first, *rest = err.splitlines()
    assert first.startswith("einsgrad: internal error")
    assert rest[0] == "Traceback (most recent call last):" and rest[-1] == "StopIteration"


def test_a_warning_is_one_line_after_the_result(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    real = cli.explain

    def warns(*args: Any, **kwargs: Any) -> Any:
        for _ in range(3):  # the same warning thrice is said once
            np.sqrt(np.array(-1.0))
        warnings.warn("two\nlines", UserWarning, stacklevel=1)
        return real(*args, **kwargs)

    monkeypatch.setattr(cli, "explain", warns)
    status, out, err = run(capsys, "explain", "X @ W", "--wrt", "W", *SHAPES)
    assert status == 0 and out
    assert err.splitlines() == [
        "einsgrad: warning: invalid value encountered in sqrt (RuntimeWarning)",
        "einsgrad: warning: two; lines (UserWarning)",
    ]


def test_help_and_version_return_0_in_process(capsys: pytest.CaptureFixture[str]) -> None:
    status, out, err = run(capsys, "grad", "--help")
    assert (status, err) == (0, "") and "--names" in out
    status, out, err = run(capsys, "--version")
    assert (status, err) == (0, "") and out.startswith("einsgrad ")


# --- inputs that broke the library: right, refused, or a reported bug, never a traceback ----

SUM_350 = "+".join(["x"] * 350)
SUM_2000 = "+".join(["x"] * 2000)
LABELS_30 = ",".join(string.ascii_letters[:30]) + "->"
EINSUM_30 = f"einsum('{LABELS_30}', {', '.join(f'A{k}' for k in range(30))})"

LIBRARY_LIMITS: list[tuple[tuple[str, ...], str]] = [
    (("explain", SUM_350, "--wrt", "x", "--shapes", "x="), "Result: ∂L/∂x = 350"),
    (("explain", SUM_2000, "--wrt", "x", "--shapes", "x="), "Result: ∂L/∂x = 2000"),
    (
        ("explain", EINSUM_30, "--wrt", "A0", "--shapes", ",".join(f"A{k}=2" for k in range(30))),
        "Result: ∂L/∂A0 = ",
    ),
]


@pytest.mark.parametrize(
    ("argv", "result"), LIBRARY_LIMITS, ids=["350-term sum", "2000-term sum", "30-operand einsum"]
)
def test_what_broke_the_library_is_answered_or_one_line(
    capsys: pytest.CaptureFixture[str], argv: tuple[str, ...], result: str
) -> None:
    status, out, err = run(capsys, *argv)
    if status == 0:
        assert err == ""
        last = out.rstrip().splitlines()[-1]
        assert last.startswith(result), last
    else:
        one_error_line(status, out, err, expected_status=status)
        assert status in (2, 70), status
