"""The ``einsgrad`` command line (also ``python -m einsgrad``).

Exit status: 0 on success, 1 when ``check`` finds the formula wrong, 2 for bad input
(one clear message on stderr, never a traceback), 130 on Ctrl-C and 141 when the
reader of the output goes away (``einsgrad explain … | head``), both without a message.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence

from einsgrad import __version__, demo
from einsgrad.core.errors import EinsgradError
from einsgrad.core.spec import parse_spec
from einsgrad.graph.ops import einsum, var
from einsgrad.passes.calculus import vjp
from einsgrad.passes.simplify import simplify
from einsgrad.rules.einsum import backward
from einsgrad.teach.check import check
from einsgrad.teach.explain import explain
from einsgrad.teach.notation import matrix_form

# What a shell reports for a command stopped by SIGINT or SIGPIPE (128 + the signal).
_INTERRUPTED = 130
_PIPE_CLOSED = 141


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # type: ignore[override]
        self.print_usage(sys.stderr)
        print(f"einsgrad: {message}", file=sys.stderr)
        raise SystemExit(2)


def parse_shapes(text: str | None) -> dict[str, tuple[int, ...]]:
    """``"X=64x128,W=128x10,b=10,s="`` as ``{"X": (64, 128), ...}`` (empty: a scalar)."""
    shapes: dict[str, tuple[int, ...]] = {}
    if not text:
        return shapes
    for item in text.split(","):
        name, sep, dims = item.partition("=")
        name = name.strip()
        if not sep or not name.isidentifier():
            raise EinsgradError(f"--shapes: expected NAME=AxB, got {item.strip()!r}")
        try:
            shapes[name] = tuple(int(d) for d in dims.strip().lower().split("x") if d.strip())
        except ValueError:
            raise EinsgradError(
                f"--shapes: {item.strip()!r} has a size that is not a whole number"
            ) from None
        if any(n < 0 for n in shapes[name]):
            raise EinsgradError(f"--shapes: {item.strip()!r} has a negative size")
    return shapes


def _grad(args: argparse.Namespace) -> int:

    spec = parse_spec(args.spec)
    count = len(spec.inputs)
    names = args.names.split(",") if args.names else [chr(ord("A") + k) for k in range(count)]
    if len(names) != count:
        raise EinsgradError(f"--names gives {len(names)} names for {count} operands")
    operands = range(count) if args.wrt is None else [args.wrt]
    for k in operands:
        rule = backward(args.spec, k, names=names)
        print(f"d{rule.operand_names[rule.wrt]}:")
        print(f"  index form:  {rule.index_form()}")
        print(
            f"  einsum:      {rule.spec!r}  (the other operands in order, then d{rule.output_name})"
        )
        if rule.broadcast:
            print(f"  broadcast:   along {', '.join(rule.broadcast)}")
        if rule.diagonal:
            print(f"  diagonal:    of {', '.join(rule.diagonal)}")
        # Matrix form, when the operands are matrices or vectors (ranks from the spec).
        ranks = [len(term) for term in spec.inputs]
        if all(r <= 2 for r in ranks) and "..." not in spec.text:
            sizes = {label: 2 + i for i, label in enumerate(sorted(spec.input_labels))}
            variables = [
                var(n, tuple(sizes[label] for label in term))
                for n, term in zip(names, spec.inputs, strict=True)
            ]
            try:
                forward = einsum(args.spec, *variables)
                cotangent = var("d" + rule.output_name, forward.shape)

                derived = vjp(forward, variables[k], cotangent)
                form = matrix_form(simplify(derived), {cotangent: cotangent.name})  # type: ignore[arg-type]
            except EinsgradError:
                form = None
            if form is not None:
                print(f"  matrix form: d{names[k]} = {form}")
    return 0


def _explain(args: argparse.Namespace) -> int:

    derivation = explain(args.expr, args.wrt, shapes=parse_shapes(args.shapes))
    print(getattr(derivation, args.format))
    return 0


def _check(args: argparse.Namespace) -> int:

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


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit status."""
    try:
        args = build_parser().parse_args(argv)
        try:
            status = int(args.run(args))
        except EinsgradError as error:
            print(f"einsgrad: {error}", file=sys.stderr)
            return 2
        # A closed pipe shows up when buffered output is written: flush while it can
        # still be handled here, not at interpreter exit.
        sys.stdout.flush()
        return status
    except BrokenPipeError:
        _discard_stdout()
        return _PIPE_CLOSED
    except KeyboardInterrupt:
        return _INTERRUPTED


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
