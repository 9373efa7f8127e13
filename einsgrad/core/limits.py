"""The limits einsgrad checks: the memory limit (what it refuses to allocate, and the
error it raises instead), and the largest rank and axis size an array may have."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from typing import Any, Literal

import numpy as np

from einsgrad.core.errors import MemoryLimitError, OptionError

__all__ = [
    "DEFAULT_MEMORY_LIMIT",
    "LARGEST_SIZE",
    "MAX_RANK",
    "check_limit",
    "format_bytes",
    "get_memory_limit",
    "guard",
    "limit_for",
    "memory_limit",
    "set_memory_limit",
]

DEFAULT_MEMORY_LIMIT = 2 * 1024**3

#: The most dimensions a numpy array has: 64 from numpy 2.0 on, 32 before.
MAX_RANK = 64 if np.lib.NumpyVersion(np.__version__) >= "2.0.0" else 32

#: The largest size of one axis numpy can index. A variable's shape may be symbolic
#: (10**10 × 10**10 has no array, but has a gradient); an axis beyond this has neither.
LARGEST_SIZE = int(np.iinfo(np.intp).max)


class _Blocks(threading.local):
    """Each thread's stack of ``memory_limit`` blocks (an attribute every thread has, so
    reading it never raises: get_memory_limit runs on every call of a compiled program)."""

    def __init__(self) -> None:
        self.stack: list[int | None] = []


_local = _Blocks()
_global_limit: list[int | None] = [DEFAULT_MEMORY_LIMIT]


def set_memory_limit(limit: int | None) -> None:
    """Set the default memory limit in bytes for every process-wide call (None: no limit)."""
    _global_limit[0] = check_limit(limit)


def get_memory_limit() -> int | None:
    """The memory limit in force here: the innermost :func:`memory_limit`, else the global one."""
    stack = _local.stack
    return stack[-1] if stack else _global_limit[0]


@contextlib.contextmanager
def memory_limit(limit: int | None) -> Iterator[None]:
    """Within the ``with`` block (this thread), use ``limit`` bytes as the memory limit."""
    stack = _local.stack
    stack.append(check_limit(limit))
    try:
        yield
    finally:
        stack.pop()


def limit_for(limit: int | Literal["default"] | None) -> int | None:
    """A per-call limit: ``"default"`` is the one in force."""
    return get_memory_limit() if limit == "default" else check_limit(limit)


def check_limit(limit: int | None) -> int | None:
    """``limit`` validated: a positive number of bytes, or None for no limit."""
    if limit is None:
        return None
    if isinstance(limit, bool) or not isinstance(limit, int | np.integer) or limit <= 0:
        raise OptionError(f"a memory limit is a positive number of bytes or None, got {limit!r}")
    return int(limit)


def format_bytes(count: float) -> str:
    """``268435456`` as ``256.0 MiB``."""
    for unit in ("bytes", "KiB", "MiB", "GiB"):
        if count < 1024:
            return f"{count:.0f} {unit}" if unit == "bytes" else f"{count:.1f} {unit}"
        count /= 1024
    return f"{count:.1f} TiB"


def guard(what: str, shape: tuple[int, ...], dtype: Any, limit: int | None, advice: str) -> None:
    """Raise MemoryLimitError if an array of ``shape`` and ``dtype`` exceeds ``limit``."""
    if limit is None:
        return
    size = int(np.prod(shape, dtype=np.float64)) if shape else 1
    needed = size * np.dtype(dtype).itemsize
    if needed > limit:
        raise MemoryLimitError(
            f"{what} would have shape {shape}: {size:,} elements, {format_bytes(needed)} "
            f"as {np.dtype(dtype)}, over the memory limit of {format_bytes(limit)}. {advice}"
        )
