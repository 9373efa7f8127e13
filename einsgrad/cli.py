"""The ``einsgrad`` command line (also ``python -m einsgrad``)."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from .errors import EinsgradError


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit status (0 ok, 1 failed check, 2 bad input)."""
    parser = argparse.ArgumentParser(prog="einsgrad", description="Tensor calculus on einsum.")
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser(
        "demo", help="derive and check the linear-layer gradients of the seed notes"
    )
    args = parser.parse_args(argv)
    try:
        if args.command == "demo":
            from .demo import main as demo

            return demo()
    except EinsgradError as error:
        print(f"einsgrad: {error}", file=sys.stderr)
        return 2
    return 2  # pragma: no cover - argparse rejects unknown commands


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
