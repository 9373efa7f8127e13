"""A tiny progress bar on stderr (no dependency).

On a terminal, one line is redrawn in place (at most ten times a second, cut to the
terminal's width)::

    [##########------------------]  36%  5/14 mlp (B 128, 784→512→512→10): round 3/31  1:02 ETA 1:49

Elsewhere (output captured to a file), one line is printed per case instead.
"""

from __future__ import annotations

import shutil
import sys
import time
from typing import TextIO


def fmt_duration(seconds: float) -> str:
    """``m:ss``, or ``h:mm:ss`` past an hour."""
    seconds = max(0, round(seconds))
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


class ProgressBar:
    """Progress over ``total`` cases: ``start(k, name)``, then ``update(fraction, what)``.

    The bar counts finished cases plus the fraction of the current one; the estimate of the
    time left assumes the remaining work proceeds at the average rate so far.
    """

    def __init__(
        self,
        total: int,
        stream: TextIO | None = None,
        width: int = 28,
        live: bool | None = None,
    ) -> None:
        self.total = max(1, total)
        self.stream = stream if stream is not None else sys.stderr
        self.width = width
        self.live = self.stream.isatty() if live is None else live
        self.started = time.perf_counter()
        self.index = 0
        self.name = ""
        self._last_draw = 0.0
        self._drawn = 0  # characters of the line on screen

    def start(self, index: int, name: str) -> None:
        """Case ``index`` (0-based) called ``name`` begins."""
        self.index, self.name = index, name
        if self.live:
            self.update(0.0, "starting", force=True)
        else:
            self._print(self._line(0.0, "starting"))

    def update(self, fraction: float, what: str, force: bool = False) -> None:
        """The current case is ``fraction`` done and doing ``what``."""
        if not self.live:
            return
        now = time.perf_counter()
        if not force and now - self._last_draw < 0.1:
            return
        self._last_draw = now
        line = self._line(fraction, what)[: shutil.get_terminal_size().columns - 1]
        padding = " " * max(0, self._drawn - len(line))
        self.stream.write("\r" + line + padding)
        self.stream.flush()
        self._drawn = len(line)

    def write(self, message: str) -> None:
        """Print a message line without garbling the bar (it is redrawn on the next update)."""
        self.clear()
        self._print(message)

    def clear(self) -> None:
        if self.live and self._drawn:
            self.stream.write("\r" + " " * self._drawn + "\r")
            self.stream.flush()
            self._drawn = 0

    def finish(self) -> None:
        """All cases done: leave a final line with the elapsed time."""
        self.clear()
        elapsed = time.perf_counter() - self.started
        bar = "#" * self.width
        self._print(f"[{bar}] 100%  {self.total}/{self.total} cases in {fmt_duration(elapsed)}")

    def _line(self, fraction: float, what: str) -> str:
        done = (self.index + min(max(fraction, 0.0), 1.0)) / self.total
        filled = int(done * self.width)
        bar = "#" * filled + "-" * (self.width - filled)
        elapsed = time.perf_counter() - self.started
        eta = f" ETA {fmt_duration(elapsed * (1 - done) / done)}" if done > 0.02 else ""
        return (
            f"[{bar}] {done:4.0%}  {self.index + 1}/{self.total} {self.name}: {what}"
            f"  {fmt_duration(elapsed)}{eta}"
        )

    def _print(self, text: str) -> None:
        self.stream.write(text + "\n")
        self.stream.flush()
