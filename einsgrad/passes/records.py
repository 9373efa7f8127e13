"""Derivation records: what is known about how a derived expression was made.

A derived expression is an ordinary, hash-consed node: the gradient of one loss can be
the very node another derivation returns. What belongs to the *derivation* rather than
to the node lives here, in one typed record per node, written by the passes that derive
(``grad``, ``vjp``, ``jvp``, ``jacobian``, ``simplify``) and read through the two
questions asked of it:

* :func:`accepted_variables`: the variables of the expression a result was derived
  from. Evaluating ``grad(L, W)`` accepts all of ``L``'s arrays, also those the gradient
  no longer needs (``b`` for ``∂L/∂W`` of a linear layer), so one mapping of arrays
  serves the loss and all its gradients. A name no derivation knows is still an error.
* :func:`sweep_choice`: for a Jacobian or Hessian, the sweep chosen (forward, reverse,
  or symbolic when both give the same node) and the estimates of the others.

Records are kept weakly: a node no one holds any more takes its record with it.
"""

from __future__ import annotations

import weakref
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from einsgrad.core.ir import Expr

__all__ = [
    "Record",
    "SweepChoice",
    "accepted_variables",
    "note_origin",
    "note_sweep",
    "sweep_choice",
]


@dataclass(frozen=True)
class SweepChoice:
    """The sweep a Jacobian was derived with, and the cost estimates of the others."""

    mode: str
    alternatives: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Record:
    """What derivations have said of one node."""

    origin: frozenset[str] = frozenset()
    sweep: SweepChoice | None = None


_RECORDS: weakref.WeakKeyDictionary[Expr, Record] = weakref.WeakKeyDictionary()


def _record(node: Expr) -> Record:
    return _RECORDS.get(node, Record())


def note_origin(result: Expr, variables: Iterable[str], *, like: Expr | None = None) -> Expr:
    """Record that ``result`` was derived from an expression with ``variables`` (and, with
    ``like``, from whatever ``like`` was derived from). Returns ``result``."""
    origin = frozenset(variables) | (_record(like).origin if like is not None else frozenset())
    if origin:
        old = _record(result)
        _RECORDS[result] = replace(old, origin=old.origin | origin)
    return result


def accepted_variables(outputs: Iterable[Expr]) -> frozenset[str]:
    """Names that evaluating ``outputs`` accepts beyond their own variables."""
    return frozenset().union(*(_record(out).origin for out in outputs))


def note_sweep(result: Expr, choice: SweepChoice, *, keep_existing: bool) -> None:
    """Record the sweep ``result`` was derived with; with ``keep_existing``, an earlier
    record (an automatic choice that landed on the same node) is kept."""
    old = _record(result)
    if keep_existing and old.sweep is not None:
        return
    _RECORDS[result] = replace(old, sweep=choice)


def sweep_choice(expr: Expr) -> SweepChoice | None:
    """The sweep recorded for ``expr``, if it is a Jacobian or Hessian einsgrad derived."""
    return _record(expr).sweep
