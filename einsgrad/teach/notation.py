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
from einsgrad.core.errors import NoFormError
from einsgrad.core.ir import Expr
from einsgrad.core.labels import index_label
from einsgrad.graph.matrix_text import ATOM, Form, Style, number_text
from einsgrad.graph.printing import TRUNCATED, Template, visible_order

__all__ = [
    "NOTATION_LIMIT",
    "factor_latex",
    "factor_text",
    "matrix_form",
    "number_text",
    "term_latex",
    "term_text",
]

#: The longest formula (matrix or index notation) einsgrad writes out, in characters.
NOTATION_LIMIT = 100_000

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
    expr: Expr,
    names: Mapping[Expr, str] | None = None,
    style: Style = "math",
    *,
    limit: int | None = None,
) -> str | None:
    """``expr`` in matrix notation, or ``None`` if some part has no matrix form.

    ``names`` overrides how given nodes are written (``{cotangent: "∂L/∂Y"}``), ``expr``
    itself too; the walk does not look below them. It is bottom-up over the DAG, each
    node written by its kind's ``matrix`` rule from its children's forms (held as
    placeholders, so the walk is linear in the DAG however long the formula).

    A formula has no shared subterms, so it can be exponentially longer than its DAG.
    With ``limit`` a longer formula is cut to ``limit`` characters ending in ``...``;
    without, one over :data:`NOTATION_LIMIT` characters raises :class:`NoFormError`.
    Only that much of it is ever assembled.
    """
    given: Mapping[Expr, str] = {} if names is None else names
    if expr in given:
        return given[expr]
    template = Template()
    forms: dict[Expr, Form] = {}
    for node in visible_order(expr, given):
        if node in given:
            forms[node] = (given[node], ATOM)
            continue
        text, precedence = kinds.rule(node, "matrix")(node, forms.__getitem__, style)
        forms[node] = (None if text is None else template.add(text), precedence)
    root = forms[expr][0]
    if root is None:
        return None
    return _bounded(template, root, limit)


def _bounded(template: Template, root: str, limit: int | None) -> str:
    """``root`` expanded: cut at ``limit`` with a marker, or at most NOTATION_LIMIT long."""
    cap = NOTATION_LIMIT if limit is None else limit
    text = template.expand(root, cap + 1)
    if len(text) <= cap:
        return text
    if limit is None:
        raise NoFormError(
            f"the matrix form of this expression is longer than {NOTATION_LIMIT:,} characters, "
            "einsgrad's limit for written notation (written out, a formula repeats every "
            "shared subexpression); print the expression instead, which names them"
        )
    return text[: max(0, limit - len(TRUNCATED))] + TRUNCATED
