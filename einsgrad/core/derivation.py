"""A derivation as data: what a rule's ``explain`` entry returns and the teaching layer renders.

A rule says *what* its derivation is (index sums, Kronecker deltas, which sums collapse,
the partial derivative as an expression); :mod:`einsgrad.teach.explain` decides how it
reads, in Unicode text, Markdown or LaTeX. Nothing here computes a derivative.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

__all__ = [
    "EinsumSteps",
    "ElementwiseSteps",
    "Factor",
    "IndexTerm",
    "ReductionSteps",
    "RuleSteps",
    "rule_statement",
]


@dataclass(frozen=True)
class Factor:
    """A factor of an index term.

    ``kind`` is ``"tensor"`` (``X_bi``), ``"grad"`` (``∂L/∂Y_bk``), ``"delta"`` (``δ_kj``)
    or ``"partial"`` (``∂Y_bk/∂W_ij``, with ``of``/``of_labels`` the numerator).
    """

    name: str
    labels: tuple[str, ...] = ()
    kind: Literal["tensor", "grad", "delta", "partial"] = "tensor"
    of: str = ""
    of_labels: tuple[str, ...] = ()


@dataclass(frozen=True)
class IndexTerm:
    """``coefficient · Σ_sums Π factors`` in index notation."""

    factors: tuple[Factor, ...]
    sums: tuple[str, ...] = ()
    coefficient: str = ""


@dataclass(frozen=True)
class EinsumSteps:
    """The einsum rule for operand ``wrt`` of ``Y = einsum(…)``, step by step.

    ``target`` is ``∂L/∂X_wrt`` with its labels; ``chain`` the chain rule over the
    output's labels; ``forward`` the contraction written out; ``raw_partial`` the partial
    derivative with a Kronecker delta per label of the operand, and ``partial`` after the
    deltas on summed labels collapsed those sums (``collapsed`` pairs each such forward
    label with the operand's label it became); ``tied`` the output labels the remaining
    deltas set equal to the operand's; ``result`` the gradient after substitution, with
    ``contracting`` the labels still summed. ``rule`` is the rule engine's
    :class:`einsgrad.rules.einsum.BackwardRule` for the same operand.
    """

    wrt: int
    target: Factor
    chain: IndexTerm
    forward: tuple[Factor, IndexTerm]
    raw_partial: IndexTerm
    partial: IndexTerm
    collapsed: tuple[tuple[str, str], ...]
    tied: tuple[tuple[str, str], ...]
    result: IndexTerm
    contracting: tuple[str, ...]
    rule: Any


@dataclass(frozen=True)
class ElementwiseSteps:
    """An elementwise rule for argument ``position``: the rule as its docstring states it,
    and the partial derivative ``∂y/∂x`` as an expression (None for a piecewise-constant
    primitive). Its gradient is ``∂L/∂y ⊙ ∂y/∂x``, summed over the axes numpy broadcast
    the argument along."""

    position: int
    rule: str
    partial: Any


@dataclass(frozen=True)
class ReductionSteps:
    """A reduction's rule: as its docstring states it, and the partial derivative of the
    result with respect to each entry of the argument, as an expression."""

    rule: str
    partial: Any
    axes: tuple[int, ...] | None


@dataclass(frozen=True)
class RuleSteps:
    """Any other kind's rule: ``∂L/∂child`` written in terms of ``∂L/∂node`` (``result``,
    an expression in the cotangent variable ``cotangent``), or, where the rule engine
    has one, its description ``rule`` (an einsum with ``...``, say)."""

    title: str
    result: Any = None
    cotangent: Any = None
    rule: Any = None


def rule_statement(doc: str) -> str:
    """The line of a rule's docstring that states it (``y_i = …;  x̄_i = …``)."""
    for line in doc.splitlines():
        if ";" in line and "=" in line:
            return line.strip()
    return doc.strip().splitlines()[0] if doc.strip() else ""
