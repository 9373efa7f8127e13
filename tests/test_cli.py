"""The command line, run as a user runs it: a subprocess, checked by exit code and output."""

from __future__ import annotations

import os
import shlex
import signal
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any

import pytest


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "einsgrad", *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_demo_derives_the_seed_rules_and_passes_its_numeric_checks() -> None:
    result = run("demo")
    assert result.returncode == 0, result.stderr
    out = result.stdout
    # The backward einsums of Y = X W, derived by hand in seed 000/001: dW = Xᵀ dY, dX = dY Wᵀ.
    assert "einsum 'bi,bj->ij'" in out
    assert "einsum 'ij,bj->bi'" in out
    assert "dW[i,j] = Σ_b X[b,i] · dY[b,j]" in out
    assert "dX[b,i] = Σ_j W[i,j] · dY[b,j]" in out
    # The bias gradient sums over the batch; every gradient is checked numerically.
    assert "einsum('ab->b'" in out
    assert out.count(" OK") == 3
    assert "FAILED" not in out
    assert out.rstrip().endswith("all checks passed")


def test_unknown_command_is_a_usage_error() -> None:
    result = run("no-such-command")
    assert result.returncode == 2
    assert "invalid choice" in result.stderr
    assert "Traceback" not in result.stderr


def test_demo_reports_a_failed_check(monkeypatch: pytest.MonkeyPatch) -> None:
    # The demo's check must be able to fail: corrupt the derived gradients, run it in-process.
    import einsgrad.demo as demo

    original = demo.evaluate

    def corrupted(exprs: Any, mapping: Any = None, /, **arrays: Any) -> Any:
        result = original(exprs, mapping, **arrays)
        if isinstance(exprs, list):  # the gradients, not the loss used by finite differences
            return tuple(value + 1e-3 for value in result)
        return result

    monkeypatch.setattr(demo, "evaluate", corrupted)
    lines: list[str] = []
    failures = demo.run(lines.append)
    assert failures == 3
    assert "3 check(s) FAILED" in lines[-1]


def test_version_is_the_packages_version() -> None:
    result = run("--version")
    assert result.returncode == 0, result.stderr
    pyproject = tomllib.loads((Path(__file__).parent.parent / "pyproject.toml").read_text())
    assert result.stdout == f"einsgrad {pyproject['project']['version']}\n"


@pytest.mark.parametrize(
    "args",
    [("demo",), ("explain", "mean(relu(X @ W + b))", "--wrt", "W", "--shapes", "X=2x3,W=3x5,b=5")],
    ids=["demo", "explain"],
)
def test_a_closed_pipe_exits_quietly(args: tuple[str, ...]) -> None:
    # `einsgrad demo | head -c 20` with the reader gone before anything is written: the
    # write fails for certain, where a real `head` may close only after the output fits.
    reader, writer = os.pipe()
    os.close(reader)
    try:
        process = subprocess.run(
            [sys.executable, "-m", "einsgrad", *args],
            stdout=writer,
            stderr=subprocess.PIPE,
            text=True,
            timeout=120,
            check=False,
        )
    finally:
        os.close(writer)
    assert process.stderr == ""  # no traceback, no "Exception ignored ... BrokenPipeError"
    assert process.returncode == 141  # 128 + SIGPIPE, as a shell reports a closed pipe


def test_a_pipe_closed_after_some_output_exits_quietly() -> None:
    process = subprocess.Popen(
        [sys.executable, "-m", "einsgrad", "demo"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert process.stdout is not None and process.stderr is not None
    head = process.stdout.read(20)
    process.stdout.close()
    errors = process.stderr.read().decode()
    process.wait(timeout=120)
    assert head.startswith(b"einsgrad demo")
    assert errors == ""
    # 141 if einsgrad was still writing when the pipe closed, 0 if it had written it all.
    assert process.returncode in (0, 141)


def test_demo_piped_into_head_exits_quietly(tmp_path: Path) -> None:
    # The shell pipeline itself, `einsgrad demo | head -c 20`, with einsgrad's stderr kept.
    errors = tmp_path / "stderr"
    command = (
        f"{shlex.quote(sys.executable)} -m einsgrad demo 2>{shlex.quote(str(errors))} | head -c 20"
    )
    result = subprocess.run(
        ["sh", "-c", command], capture_output=True, text=True, timeout=120, check=False
    )
    assert result.stdout == "einsgrad demo: the l"
    assert (result.returncode, result.stderr) == (0, "")  # head's status and the shell's
    assert errors.read_text() == ""  # einsgrad's: no BrokenPipeError, no traceback


# A command that is still running when Ctrl-C comes: the demo, made to wait once it has started.
SLOW_DEMO = """
import sys, time
import einsgrad.demo
from einsgrad.cli import main

def slow():
    print("started", flush=True)
    time.sleep(120)
    return 0

einsgrad.demo.main = slow
sys.exit(main(["demo"]))
"""


def test_ctrl_c_in_a_running_command_exits_130_quietly() -> None:
    process = subprocess.Popen(
        [sys.executable, "-c", SLOW_DEMO],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert process.stdout is not None
    assert process.stdout.readline() == "started\n"
    process.send_signal(signal.SIGINT)
    out, errors = process.communicate(timeout=120)
    assert errors == ""  # no KeyboardInterrupt traceback
    assert process.returncode == 130  # 128 + SIGINT, as a shell reports an interrupted command
    assert out == ""


#: Ctrl-C while the command imports einsgrad (numpy takes a few tenths of a second),
#: made deterministic: an import hook raises KeyboardInterrupt when numpy is imported.
CTRL_C_WHILE_IMPORTING = """
import sys

class InterruptNumpy:
    @staticmethod
    def find_spec(name, path=None, target=None):
        if name == "numpy":
            raise KeyboardInterrupt
        return None

sys.meta_path.insert(0, InterruptNumpy)
from importlib.metadata import entry_points
(script,) = entry_points(group="console_scripts", name="einsgrad")
sys.exit(script.load()(["demo"]))
"""


def test_ctrl_c_while_the_command_imports_exits_130_quietly() -> None:
    # The installed console script's own entry point, as the shell runs it.
    result = subprocess.run(
        [sys.executable, "-c", CTRL_C_WHILE_IMPORTING],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert (result.returncode, result.stderr, result.stdout) == (130, "", "")


def test_output_the_terminal_cannot_encode_is_escaped() -> None:
    # Under an ASCII-only stdout, Σ and ᵀ are written as escapes rather than failing half-way.
    result = subprocess.run(
        [sys.executable, "-m", "einsgrad", "grad", "bi,ij->bj", "--wrt", "1", "--names", "X,W"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env={**os.environ, "PYTHONIOENCODING": "ascii"},
    )
    assert (result.returncode, result.stderr) == (0, "")
    assert "dW[i,j] = \\u03a3_b X[b,i]" in result.stdout
    assert "matrix form: dW = X\\u1d40\\xb7dY" in result.stdout


def test_ctrl_c_exits_130_without_a_traceback(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import einsgrad.demo
    from einsgrad.cli import main

    def interrupted() -> int:
        raise KeyboardInterrupt

    monkeypatch.setattr(einsgrad.demo, "main", interrupted)
    try:
        status = main(["demo"])
    except KeyboardInterrupt:
        pytest.fail("Ctrl-C escaped the command line's main()")
    assert status == 130  # 128 + SIGINT, as a shell reports an interrupted command
    assert capsys.readouterr().err == ""


# --- every subcommand, as a user runs it ---------------------------------------------------------
#
# Each command below runs once, all of them concurrently (a subprocess spends most of its time
# importing numpy), before the tests that read their results.

LINEAR = ("--expr", "X @ W", "--wrt", "X", "--shapes", "X=5x3,W=3x4")
EXPLAIN = ("explain", "X @ W + b", "--wrt", "W", "--shapes", "X=2x3,W=3x5,b=5")

GRAD_ONE = ("grad", "bi,ij->bj", "--wrt", "1", "--names", "X,W")
GRAD_ALL = ("grad", "bi,ij->bj")
GRAD_CHAIN = ("grad", "ij,jk,kl->il", "--names", "A,B,C")
GRAD_DIAGONAL = ("grad", "ii->i", "--names", "M")
GRAD_OUTER = ("grad", "i,j->ij", "--names", "a,b")
GRAD_NAMED_Y = ("grad", "ij,jk->ik", "--names", "Y,W")
EXPLAIN_FORMATS = {fmt: (*EXPLAIN, "--format", fmt) for fmt in ("text", "markdown", "latex")}
EXPLAIN_MEAN = (
    "explain",
    "mean(sum((X @ W) ** 2, axis=1))",
    "--wrt",
    "W",
    "--shapes",
    "X=4x3,W=3x5",
)
CHECK_RIGHT = ("check", "dY @ W.T", *LINEAR)
CHECK_RIGHT_PAPER = ("check", "dL/dX = dL/dY · Wᵀ", *LINEAR)
CHECK_WRONG_SHAPE = ("check", "Wᵀ·dL/dY", *LINEAR)
CHECK_WRONG_VALUE = ("check", "2 * dY @ W.T", *LINEAR)
MALFORMED_SPEC = ("grad", "bi,ij->b(")
MALFORMED_EXPRESSION = ("explain", "X @ (W", "--wrt", "W", "--shapes", "X=2x3,W=3x5")

BAD_INPUT: list[tuple[tuple[str, ...], str]] = [
    (("check", "dY @ V.T", *LINEAR), "the formula uses 'V'"),
    (
        ("check", "dY @ W.T", "--expr", "X @ W", "--wrt", "Q", "--shapes", "X=5x3,W=3x4"),
        "wrt='Q' is not a variable",
    ),
    (("check", "dY @ W.T", "--expr", "X @ W", "--wrt", "X", "--shapes", "X=5x3"), "needs shapes"),
    (("explain", "X @ W", "--wrt", "W"), "explain needs shapes"),
    (("explain", "X @ W", "--wrt", "W", "--shapes", "X=2x3,W=4x5"), "inner sizes 3 and 4"),
    (("explain", "X @ W", "--wrt", "Q", "--shapes", "X=2x3,W=3x5"), "wrt='Q' is not a variable"),
    (("grad", "bi,ij->bj", "--names", "X"), "--names gives 1 names for 2 operands"),
    (("grad", "bi,ij->bj", "--wrt", "5"), "out of range"),
    (("grad", "i->ij"), "output label 'j' does not occur in any input"),
    (("explain", "X @ W", "--shapes", "X=2x3,W=3x5"), "required: --wrt"),
    (("explain", "X @ W", "--wrt", "W", "--format", "html"), "invalid choice: 'html'"),
    (("check", "dY @ W.T", "--expr", "X @ W", "--wrt", "X"), "required: --shapes"),
]
BAD_SHAPES: list[tuple[tuple[str, ...], str]] = [
    (
        ("check", "dY @ W.T", "--expr", "X @ W", "--wrt", "X", "--shapes", "X=5x3,W=3xq"),
        "--shapes: 'W=3xq' has a size that is not a whole number",
    ),
    (
        ("explain", "X @ W", "--wrt", "W", "--shapes", "X5x3,W=3x4"),
        "--shapes: expected NAME=AxB, got 'X5x3'",
    ),
    (
        ("check", "dY @ W.T", "--expr", "X @ W", "--wrt", "X", "--shapes", "X=5x3,W=-3x4"),
        "--shapes: 'W=-3x4' has a negative size",
    ),
    (
        ("explain", "X @ W", "--wrt", "W", "--shapes", "X=5x3,3W=3x4"),
        "--shapes: expected NAME=AxB, got '3W=3x4'",
    ),
]

COMMANDS = [
    GRAD_ONE,
    GRAD_ALL,
    GRAD_CHAIN,
    GRAD_DIAGONAL,
    GRAD_OUTER,
    GRAD_NAMED_Y,
    *EXPLAIN_FORMATS.values(),
    EXPLAIN_MEAN,
    CHECK_RIGHT,
    CHECK_RIGHT_PAPER,
    CHECK_WRONG_SHAPE,
    CHECK_WRONG_VALUE,
    MALFORMED_SPEC,
    MALFORMED_EXPRESSION,
    *(args for args, _ in BAD_INPUT + BAD_SHAPES),
]


@pytest.fixture(scope="module")
def ran() -> dict[tuple[str, ...], subprocess.CompletedProcess[str]]:
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(max_workers=4) as pool:
        results = list(pool.map(lambda args: run(*args), COMMANDS))
    return dict(zip(COMMANDS, results, strict=True))


Ran = dict[tuple[str, ...], subprocess.CompletedProcess[str]]


def ok(ran: Ran, args: tuple[str, ...], status: int = 0) -> str:
    result = ran[args]
    assert result.returncode == status, (result.returncode, result.stderr)
    assert result.stderr == ""
    return result.stdout


def assert_bad_input(result: subprocess.CompletedProcess[str]) -> str:
    """Exit 2, nothing on stdout, and on stderr exactly one ``einsgrad:`` line (no traceback)."""
    assert result.returncode == 2, (result.returncode, result.stdout, result.stderr)
    assert "Traceback" not in result.stderr
    assert result.stdout == ""
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("einsgrad: "), result.stderr
    return lines[0]


def test_grad_one_operand(ran: Ran) -> None:
    assert ok(ran, GRAD_ONE).splitlines() == [
        "dW:",
        "  index form:  dW[i,j] = Σ_b X[b,i] · dY[b,j]",
        "  einsum:      'bi,bj->ij'  (the other operands in order, then dY)",
        "  matrix form: dW = Xᵀ·dY",
    ]


def test_grad_every_operand_with_default_names(ran: Ran) -> None:
    out = ok(ran, GRAD_ALL)
    assert out.startswith("dA:\n")
    assert "  index form:  dA[b,i] = Σ_j B[i,j] · dY[b,j]" in out
    assert "  einsum:      'ij,bj->bi'" in out
    assert "  matrix form: dA = dY·Bᵀ" in out
    assert "\ndB:\n" in out
    assert "  index form:  dB[i,j] = Σ_b A[b,i] · dY[b,j]" in out
    assert "  einsum:      'bi,bj->ij'" in out
    assert "  matrix form: dB = Aᵀ·dY" in out


def test_grad_backward_einsums_are_right(ran: Ran) -> None:
    # The printed backward einsums, run by numpy, against autograd on a three-operand chain.
    import re

    import autograd
    import autograd.numpy as anp
    import numpy as np

    out = ok(ran, GRAD_CHAIN)
    assert [line for line in out.splitlines() if not line.startswith(" ")] == ["dA:", "dB:", "dC:"]
    assert "  index form:  dB[j,k] = Σ_il A[i,j] · C[k,l] · dY[i,l]" in out
    assert "matrix form" not in out  # three factors have no two-matrix form
    specs = re.findall(r"einsum:\s+'([^']+)'", out)
    assert len(specs) == 3
    rng = np.random.default_rng(0)
    operands = [rng.standard_normal(s) for s in ((2, 3), (3, 4), (4, 5))]
    dy = rng.standard_normal((2, 5))
    for k, spec in enumerate(specs):
        others = [op for j, op in enumerate(operands) if j != k]

        def loss(x: Any, k: int = k) -> Any:
            args = [*operands[:k], x, *operands[k + 1 :]]
            return anp.sum(dy * anp.einsum("ij,jk,kl->il", *args))

        expected = autograd.grad(loss)(operands[k])
        np.testing.assert_allclose(np.einsum(spec, *others, dy), expected, rtol=1e-10)


def test_grad_diagonal_and_outer_product(ran: Ran) -> None:
    assert "  diagonal:    of i" in ok(ran, GRAD_DIAGONAL)
    out = ok(ran, GRAD_OUTER)
    assert "  einsum:      'j,ij->i'" in out
    assert "  einsum:      'i,ij->j'" in out
    assert "  matrix form: db = a·dY" in out
    # da_i = Σ_j dY_ij b_j: dY·b as a column, or its transpose bᵀ·dYᵀ as a row
    # Either arrangement of Σ_j b_j dY_ij (numpy's 1-D b @ dY.T is dY @ b).
    assert ("  matrix form: da = dY·b" in out) or ("  matrix form: da = b·dYᵀ" in out), out


def test_grad_an_operand_named_Y_renames_the_cotangent_everywhere(ran: Ran) -> None:
    # With an operand called Y, the upstream gradient becomes dZ; the matrix form must
    # not keep calling it dY, which is now the gradient being derived.
    out = ok(ran, GRAD_NAMED_Y)
    assert "  index form:  dY[i,j] = Σ_k W[j,k] · dZ[i,k]" in out
    assert "  index form:  dW[j,k] = Σ_i Y[i,j] · dZ[i,k]" in out
    assert "  matrix form: dY = dZ·Wᵀ" in out, out
    assert "  matrix form: dW = Yᵀ·dZ" in out, out


@pytest.mark.parametrize("fmt", sorted(EXPLAIN_FORMATS))
def test_explain_in_every_format(ran: Ran, fmt: str) -> None:
    import einsgrad as eg

    out = ok(ran, EXPLAIN_FORMATS[fmt])
    d = eg.explain("X @ W + b", "W", shapes={"X": (2, 3), "W": (3, 5), "b": (5,)})
    assert out == getattr(d, fmt) + "\n"
    if fmt == "text":
        assert "   3×5 = (3×2) · (2×5)" in out
        assert out.rstrip().endswith("Result: ∂L/∂W = Xᵀ·∂L/∂Y")
    elif fmt == "markdown":
        assert out.startswith("### Derivation of ∂L/∂W")
        assert "$$" in out
    else:
        assert out.startswith("\\begin{enumerate}")
        assert "\\frac{\\partial L}" in out
        assert out.rstrip().endswith("\\end{enumerate}")


def test_explain_default_format_is_text_and_a_scalar_loss_works(ran: Ran) -> None:
    out = ok(ran, EXPLAIN_MEAN)
    assert out.startswith("1. ")
    assert "   1/4 is the 1/B of a mean: each entry gets 1/4 of ∂L/∂L" in out


def test_check_a_right_formula_exits_0(ran: Ran) -> None:
    assert ok(ran, CHECK_RIGHT) == "correct (symbolically): ∂L/∂X = dY @ W.T\n"
    assert ok(ran, CHECK_RIGHT_PAPER) == "correct (symbolically): ∂L/∂X = dY·Wᵀ\n"


def test_check_a_wrong_formula_exits_1(ran: Ran) -> None:
    # Seed 003: Wᵀ·dL/dY cannot be formed.
    out = ok(ran, CHECK_WRONG_SHAPE, status=1)
    assert out.startswith("wrong shape:")
    assert "so Wᵀ is (4, 3)" in out
    assert "The gradient is ∂L/∂X = dY·Wᵀ, of shape (5, 3)" in out
    out = ok(ran, CHECK_WRONG_VALUE, status=1)
    assert out.startswith("wrong value:")
    assert "The gradient is ∂L/∂X = dY @ W.T" in out


@pytest.mark.parametrize(("args", "needle"), BAD_INPUT, ids=[" ".join(a) for a, _ in BAD_INPUT])
def test_bad_input_exits_2_with_one_message(ran: Ran, args: tuple[str, ...], needle: str) -> None:
    assert needle in assert_bad_input(ran[args])


@pytest.mark.parametrize(("args", "needle"), BAD_SHAPES, ids=[a[-1] for a, _ in BAD_SHAPES])
def test_bad_shapes(ran: Ran, args: tuple[str, ...], needle: str) -> None:
    assert assert_bad_input(ran[args]) == f"einsgrad: {needle}"


def test_malformed_spec_names_the_column(ran: Ran) -> None:
    line = assert_bad_input(ran[MALFORMED_SPEC])
    assert "'(' is not a valid label" in line
    assert line.endswith("at column 9")  # 'bi,ij->b(': the '(' is its 9th character


def test_malformed_expression_names_the_column(ran: Ran) -> None:
    line = assert_bad_input(ran[MALFORMED_EXPRESSION])
    assert "invalid syntax" in line
    assert "(column 5)" in line and line.endswith("in: X @ (W")
