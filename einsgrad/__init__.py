"""einsgrad: tensor calculus on einsum.

Build expressions from variables and einsums, take ``grad``, evaluate with numpy and
opt_einsum, and read the backward einsums the rule engine derived.
"""

from __future__ import annotations

from . import primitives
from .autodiff import grad
from .calculus import (
    Cost,
    cost,
    get_memory_limit,
    hessian,
    hvp,
    jacobian,
    jvp,
    memory_limit,
    set_memory_limit,
    vjp,
)
from .check import Verdict, check
from .compile import Compiled, compile
from .equivalence import Equivalence, equivalent
from .errors import EinsgradError, GradError, MemoryLimitError, ParseError, ShapeError, SpecError
from .evaluate import evaluate
from .explain import Derivation, Step, explain
from .index import parse
from .ir import Const, Einsum, Expr, Map, Reduce, Size, Var
from .ops import (
    as_expr,
    einsum,
    log_softmax,
    logsumexp,
    matmul,
    mean,
    softmax,
    sum,
    transpose,
    var,
    where,
)
from .parse import parse_expr
from .primitives import *  # noqa: F403 - the elementwise functions: exp, log, relu, ...
from .rule import BackwardRule, backward
from .simplify import simplify

__version__ = "0.1.0"

__all__ = [
    "BackwardRule",
    "Compiled",
    "Const",
    "Cost",
    "Derivation",
    "EinsgradError",
    "Einsum",
    "Equivalence",
    "Expr",
    "GradError",
    "Map",
    "MemoryLimitError",
    "ParseError",
    "Reduce",
    "ShapeError",
    "Size",
    "SpecError",
    "Step",
    "Var",
    "Verdict",
    "__version__",
    "as_expr",
    "backward",
    "check",
    "compile",
    "cost",
    "einsum",
    "equivalent",
    "evaluate",
    "explain",
    "get_memory_limit",
    "grad",
    "hessian",
    "hvp",
    "jacobian",
    "jvp",
    "log_softmax",
    "logsumexp",
    "matmul",
    "mean",
    "memory_limit",
    "parse",
    "parse_expr",
    "set_memory_limit",
    "simplify",
    "softmax",
    "sum",
    "transpose",
    "var",
    "vjp",
    "where",
]
__all__ += primitives.__all__
