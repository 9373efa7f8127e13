"""Notations for showing work: index sums, matrix formulas, and LaTeX.

Two small renderers, used by ``explain``, ``check`` and the command line:

* :class:`IndexTerm` is one term of an index-notation formula — a coefficient, summed
  labels and factors (tensors, Kronecker deltas, partial derivatives) — written as text
  (``Σ_b ∂L/∂Y_bj · X_bi``) or LaTeX (``\\sum_{b} \\frac{\\partial L}{\\partial Y_{bj}} X_{bi}``).
* :func:`matrix_form` writes an expression in matrix notation where it has one: ``Xᵀ·dY``
  (``style="math"``) or ``X.T @ dY`` (``style="numpy"``). Einsums of at most two matrices
  or vectors become products, transposes, row and column sums and Hadamard products;
  anything else gives ``None``.
"""

from __future__ import annotations

from collections.abc import Mapping

from einsgrad.core import kinds
from einsgrad.core.derivation import Factor, IndexTerm
from einsgrad.core.ir import Expr, toposort
from einsgrad.core.labels import index_label
from einsgrad.graph.matrix_text import ATOM, Form, Style, number_text

__all__ = [
    "factor_latex",
    "factor_text",
    "matrix_form",
    "number_text",
    "term_latex",
    "term_text",
]

# --- index terms: the writer of the derivation data in einsgrad.core.derivation ----------


def factor_text(factor: Factor) -> str:
    """``X_bi``, ``∂L/∂Y_bk``, ``δ_kj`` or ``∂Y_bk/∂W_ij``."""
    sub = index_label(factor.labels)
    if factor.kind == "grad":
        return f"∂L/∂{factor.name}{sub}"
    if factor.kind == "delta":
        return f"δ{sub}"
    if factor.kind == "partial":
        return f"∂{factor.of}{index_label(factor.of_labels)}/∂{factor.name}{sub}"
    return f"{factor.name}{sub}"


def factor_latex(factor: Factor) -> str:
    """The factor in LaTeX math."""
    sub = index_label(factor.labels, latex=True)
    name = _latex_name(factor.name)
    if factor.kind == "grad":
        return f"\\frac{{\\partial L}}{{\\partial {name}{sub}}}"
    if factor.kind == "delta":
        return f"\\delta{sub}"
    if factor.kind == "partial":
        of = _latex_name(factor.of) + index_label(factor.of_labels, latex=True)
        return f"\\frac{{\\partial {of}}}{{\\partial {name}{sub}}}"
    return f"{name}{sub}"


def _latex_name(name: str) -> str:
    if len(name) > 1 and "_" not in name:
        return f"\\mathrm{{{name}}}"
    return name.replace("_", "\\_")


def term_text(term: IndexTerm) -> str:
    """``c · Σ_k Σ_l X_ik · W_kl``."""
    body = " · ".join(factor_text(f) for f in term.factors) or "1"
    sums = "".join(f"Σ_{label} " for label in term.sums)
    coefficient = f"{term.coefficient} · " if term.coefficient else ""
    return f"{coefficient}{sums}{body}"


def term_latex(term: IndexTerm) -> str:
    """The term in LaTeX math, with explicit sums."""
    body = " ".join(factor_latex(f) for f in term.factors) or "1"
    sums = "".join(f"\\sum_{{{label}}} " for label in term.sums)
    coefficient = f"{term.coefficient} \\cdot " if term.coefficient else ""
    return f"{coefficient}{sums}{body}"


# --- matrix notation: each kind's ``matrix`` rule, bottom-up -------------------------------


def matrix_form(
    expr: Expr, names: Mapping[Expr, str] | None = None, style: Style = "math"
) -> str | None:
    """``expr`` in matrix notation, or ``None`` if some part has no matrix form.

    ``names`` overrides how given nodes are written (``{cotangent: "∂L/∂Y"}``). The walk is
    bottom-up over the DAG, each node written by its kind's ``matrix`` rule from its
    children's forms.
    """
    given = dict(names or {})
    forms: dict[Expr, Form] = {}
    for node in toposort([expr]):
        if node in given:
            forms[node] = (given[node], ATOM)
        else:
            forms[node] = kinds.rule(node, "matrix")(node, forms.__getitem__, style)
    return forms[expr][0]
