"""``compile``: a callable that evaluates fixed outputs with their plans cached."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Literal

import numpy as np

from einsgrad.backends import get_backend
from einsgrad.backends.base import Backend
from einsgrad.core.errors import OptionError
from einsgrad.core.ir import Expr
from einsgrad.core.limits import check_limit
from einsgrad.passes.evaluate import _walk, run
from einsgrad.passes.evaluate import plan as _plan
from einsgrad.passes.program import Plan

__all__ = ["Compiled", "compile"]

_OPTIMIZE = ("auto", "greedy", "optimal", "dp", "branch-all", "branch-2", "random-greedy")


class Compiled:
    """``f(**arrays)`` evaluates the compiled outputs (one array, or a tuple for a list).

    Each distinct subexpression is computed once across all outputs; nodes no output
    needs are skipped; the program (steps, resolved einsums, opt_einsum paths) is built
    once per shape/dtype signature and cached. ``f.plan(**shapes)`` shows it. A call
    whose program would hold more than the memory limit at once (its plan's
    ``peak_bytes``) raises MemoryLimitError before allocating anything.
    """

    def __init__(
        self,
        outputs: Expr | Sequence[Expr],
        optimize: str,
        memory_limit: int | Literal["default"] | None = "default",
        backend: Backend | None = None,
    ) -> None:
        self.single = isinstance(outputs, Expr)
        self.outputs: tuple[Expr, ...] = (outputs,) if isinstance(outputs, Expr) else tuple(outputs)
        for out in self.outputs:
            if not isinstance(out, Expr):
                raise TypeError(f"compile takes einsgrad expressions, got {type(out).__name__}")
        self.optimize = optimize
        self.memory_limit = memory_limit
        self.backend = backend if backend is not None else get_backend("numpy")
        self._walk = _walk(self.outputs)

    def __call__(self, mapping: Mapping[str, Any] | None = None, /, **arrays: Any) -> Any:
        if mapping is not None:
            arrays = {**mapping, **arrays}
        results = run(
            self.outputs, arrays, self.optimize, self._walk, self.memory_limit, self.backend
        )
        return results[0] if self.single else results

    def plan(self, dtype: Any = np.float64, **shapes: Sequence[int]) -> Plan:
        """Each step with its einsum, path, FLOPs and largest array; and the totals."""
        return _plan(self.outputs, shapes, dtype, self.optimize, self.backend)


def compile(
    outputs: Expr | Sequence[Expr],
    *,
    backend: str = "numpy",
    optimize: str = "auto",
    memory_limit: int | Literal["default"] | None = "default",
) -> Compiled:
    """Compile ``outputs`` (an expression or a list) into a fast callable (see Compiled).

    ``optimize`` is opt_einsum's path strategy. ``memory_limit`` bounds, in bytes, what a
    call holds at once in arrays it allocates, the plan's ``peak_bytes`` (the inputs are
    not counted): ``"default"`` follows the limit in force at each call
    (:func:`einsgrad.get_memory_limit`, which ``with einsgrad.memory_limit(...)`` sets),
    None means no limit. ``backend`` names the array library the program runs on (see
    :mod:`einsgrad.backends`); BackendError if it is unknown or not installed.
    """
    runner = get_backend(backend)
    if optimize not in _OPTIMIZE:
        raise OptionError(
            f"compile: optimize must be one of {', '.join(_OPTIMIZE)}, got {optimize!r}"
        )
    if memory_limit != "default":
        memory_limit = check_limit(memory_limit)
    return Compiled(outputs, optimize, memory_limit, runner)
