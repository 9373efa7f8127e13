"""Index notation out: an expression as ``Y[i,j] = Σ_k X[i,k] * W[k,j]``, in text or LaTeX.

The reverse of :func:`einsgrad.parse` (in :mod:`einsgrad.frontends.index`): every einsum
becomes a product of indexed tensors with its summed labels written out.
"""

from __future__ import annotations

from collections.abc import Sequence

from einsgrad.core import kinds
from einsgrad.core.errors import EinsgradError, NoFormError
from einsgrad.core.ir import Einsum, Expr, Map, Var
from einsgrad.core.labels import DISPLAY_LETTERS, index_label
from einsgrad.frontends.index import FUNCTIONS
from einsgrad.graph.printing import short_name
from einsgrad.passes.simplify import simplify

__all__ = ["to_einsum", "to_index", "to_latex"]


class _Writer:
    def __init__(self, latex: bool) -> None:
        self.latex = latex
        self.pool = iter([*DISPLAY_LETTERS[:17], *(f"i{k}" for k in range(1, 1000))])

    def fresh(self) -> str:
        label: str = next(self.pool)
        return label

    def tensor(self, name: str, labels: Sequence[str]) -> str:
        if self.latex:
            return f"{name}{index_label(labels, latex=True)}"
        return f"{name}[{','.join(labels)}]" if labels else name

    def write(self, node: Expr, labels: Sequence[str]) -> tuple[str, int]:
        """Text of ``node`` with its axes labelled ``labels``, and its precedence: its
        kind's ``index`` rule, which writes its children through this writer."""
        written: tuple[str, int] = kinds.rule(node, "index")(node, labels, self)
        return written

    def is_function(self, name: str) -> bool:
        """Whether the elementwise primitive ``name`` is written as a function, f(x)."""
        return name in FUNCTIONS

    def scopes_sums(self, node: Expr) -> bool:
        """Whether ``parse`` sums a label inside ``node`` (a function's argument) when only
        that argument carries it: a sum over the function's result needs an explicit Σ."""
        return isinstance(node, Map) and node.op.name in FUNCTIONS


def _equation(expr: Expr, name: str, latex: bool) -> str:
    if expr.shape is None:
        raise EinsgradError("index notation needs static shapes: declare them in var()")
    writer = _Writer(latex=latex)
    labels = [writer.fresh() for _ in expr.shape]
    try:
        body, _ = writer.write(expr, labels)
    except NoFormError as error:
        raise EinsgradError(f"cannot write {expr!r} in index notation: {error}") from None
    return f"{writer.tensor(name, labels)} = {body}"


def to_index(expr: Expr, name: str = "Y") -> str:
    """``expr`` as an index equation ``name[labels] = …`` (see the module documentation)."""
    return _equation(expr, name, latex=False)


def to_latex(expr: Expr, name: str = "Y") -> str:
    """``expr`` as a LaTeX index equation with explicit sums."""
    return _equation(expr, name, latex=True)


def _is_leaf(node: Expr) -> bool:
    """A variable or a constant: a node computed from nothing, not even a shape."""
    return not node.children and not node.references


def to_einsum(expr: Expr) -> str:
    """``expr`` as one einsum call over its variables, after simplification."""
    direct = isinstance(expr, Einsum) and expr.like is None and all(map(_is_leaf, expr.operands))
    simple = expr if direct else simplify(expr)
    if isinstance(simple, Var):
        return simple.name
    if not isinstance(simple, Einsum) or not all(map(_is_leaf, simple.operands)):
        raise EinsgradError(f"{short_name(expr)} is not a single einsum of variables: {simple!r}")
    args = ", ".join(short_name(op) for op in simple.operands)
    if simple.like is not None:
        raise EinsgradError(
            f"{short_name(expr)} is a generalized einsum '{simple.spec.text}' (it writes a "
            "diagonal or broadcasts), which numpy's einsum cannot express"
        )
    return f"einsum('{simple.spec.text}', {args})"
