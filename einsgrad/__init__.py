"""einsgrad: tensor calculus on einsum.

Build expressions from variables and einsums, take ``grad``, evaluate with numpy and
opt_einsum, and read the backward einsums the rule engine derived.
"""

from __future__ import annotations

from . import primitives
from .autodiff import grad
from .errors import EinsgradError, GradError, ParseError, ShapeError, SpecError
from .evaluate import evaluate
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

__version__ = "0.1.0"

__all__ = [
    "BackwardRule",
    "Const",
    "EinsgradError",
    "Einsum",
    "Expr",
    "GradError",
    "Map",
    "ParseError",
    "Reduce",
    "ShapeError",
    "Size",
    "SpecError",
    "Var",
    "__version__",
    "as_expr",
    "backward",
    "einsum",
    "evaluate",
    "grad",
    "log_softmax",
    "logsumexp",
    "matmul",
    "mean",
    "parse_expr",
    "softmax",
    "sum",
    "transpose",
    "var",
    "where",
]
__all__ += primitives.__all__
