"""The ``einsgrad`` command's entry point, outside the package on purpose.

The console script imports its entry point's module first; were that ``einsgrad.cli``,
importing the package (numpy, opt_einsum: a few tenths of a second) would run before
``main`` could catch anything, and Ctrl-C in that window would print a traceback. Here the
import itself is inside the handler.
"""

from __future__ import annotations

import sys


def main(argv: list[str] | None = None) -> int:
    """Import the command line and run it; Ctrl-C while importing exits 130 quietly."""
    try:
        from einsgrad.cli import main as run_command_line
    except KeyboardInterrupt:
        sys.stderr.flush()
        return 130
    return run_command_line(argv)


if __name__ == "__main__":
    sys.exit(main())
