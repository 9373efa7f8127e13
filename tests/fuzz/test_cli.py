"""Fuzzed command lines: ``einsgrad.cli.main(argv)`` in process, any argument list.

Every run ends with exit status 0 (done), 1 (``check`` found the formula wrong, its
verdict on stdout) or 2 (bad input: exactly one line on stderr, naming the problem),
in time, and never shows a traceback or lets an exception other than ``SystemExit``
(argparse's ``--help`` and ``--version``) escape.
"""

from __future__ import annotations

import contextlib
import io

from hypothesis import event, given, note

from einsgrad import cli
from fuzz.harness import OverTimeBound, fuzz_settings, time_bound
from fuzz.strategies import cli_argvs


def run(argv: list[str]) -> tuple[int, str, str]:
    """Exit status, stdout and stderr of one in-process run."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            with time_bound(f"einsgrad {argv!r:.200}"):
                status = cli.main(argv)
        except SystemExit as exit_:
            status = exit_.code if isinstance(exit_.code, int) else 2
        except OverTimeBound as error:
            raise AssertionError(str(error)) from None
        except Exception as error:
            raise AssertionError(f"main raised {type(error).__name__}: {error!s:.300}") from error
    return status, out.getvalue(), err.getvalue()


@fuzz_settings(120)
@given(argv=cli_argvs())
def test_every_command_line_exits_0_1_or_2_with_one_line_of_error(argv: list[str]) -> None:
    note(f"einsgrad {' '.join(repr(a[:200]) for a in argv)}")
    status, out, err = run(argv)
    note(f"exit {status}; stderr: {err[:1000]!r}")
    event(f"exit {status}")
    assert "Traceback" not in err and "Traceback" not in out
    assert status in (0, 1, 2), f"exit status {status}"
    if status == 1:
        assert argv[:1] == ["check"], "exit 1 is check's verdict 'wrong formula' only"
        assert out.strip() and not err, "check's verdict goes to stdout"
    if status == 2:
        lines = err.splitlines()
        assert len(lines) == 1 and lines[0].strip(), f"{len(lines)} lines on stderr:\n{err[:2000]}"
