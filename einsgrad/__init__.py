"""einsgrad: tensor calculus on einsum.

Build expressions from variables and einsums, take ``grad``, evaluate with numpy and
opt_einsum, and read the backward einsums the rule engine derived.
"""

from __future__ import annotations

from einsgrad.core.errors import (
    BackendError,
    EinsgradError,
    GradError,
    MemoryLimitError,
    MissingRuleError,
    NumberError,
    OptionError,
    ParseError,
    ShapeError,
    SpecError,
    VariableError,
)
from einsgrad.core.ir import Const, Einsum, Expr, Map, Reduce, Size, Var, install_operators
from einsgrad.frontends.index import parse
from einsgrad.frontends.parse import parse_expr
from einsgrad.graph import ops
from einsgrad.graph.ops import (
    as_expr,
    einsum,
    matmul,
    mean,
    sum,
    transpose,
    var,
    where,
)
from einsgrad.graph.printing import to_text
from einsgrad.passes.autodiff import grad
from einsgrad.passes.calculus import (
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
from einsgrad.passes.compile import Compiled, compile
from einsgrad.passes.equivalence import Equivalence, equivalent
from einsgrad.passes.evaluate import evaluate
from einsgrad.passes.simplify import simplify

# Importing the rules package registers every built-in node kind's row of the rule table.
from einsgrad.rules import elementwise as primitives
from einsgrad.rules.einsum import BackwardRule, backward
from einsgrad.rules.elementwise import *  # noqa: F403 - the elementwise functions: exp, log, relu, ...
from einsgrad.rules.reductions import log_softmax, logsumexp, softmax
from einsgrad.teach.check import Verdict, check
from einsgrad.teach.explain import Derivation, Step, explain
from einsgrad.teach.index_form import to_einsum, to_index, to_latex
from einsgrad.teach.notation import matrix_form


def _repr(expr: Expr) -> str:
    return f"<einsgrad.Expr {to_text(expr, inline=True, limit=200)}>"


install_operators(
    add=ops.add,
    subtract=ops.subtract,
    multiply=ops.multiply,
    divide=ops.divide,
    power=ops.power,
    negative=ops.negative,
    matmul=ops.matmul,
    transpose=ops.transpose,
    sum=ops.sum,
    mean=ops.mean,
    to_einsum=to_einsum,
    to_index=to_index,
    to_latex=to_latex,
    to_matrix=lambda expr, style: matrix_form(expr, style=style),
    evaluate=evaluate,
    str=to_text,
    repr=_repr,
)

__version__ = "0.1.0"

__all__ = [
    "BackendError",
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
    "MissingRuleError",
    "NumberError",
    "OptionError",
    "ParseError",
    "Reduce",
    "ShapeError",
    "Size",
    "SpecError",
    "Step",
    "Var",
    "VariableError",
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
