"""Index notation out: an expression as ``Y[i,j] = Σ_k X[i,k] * W[k,j]``, in text or LaTeX.

The reverse of :func:`einsgrad.parse` (in :mod:`einsgrad.frontends.index`): every einsum
becomes a product of indexed tensors with its summed labels written out.
"""

from __future__ import annotations

import cmath
from collections.abc import Sequence
from dataclasses import dataclass

from einsgrad.core import kinds
from einsgrad.core.errors import EinsgradError, NoFormError
from einsgrad.core.ir import Const, Einsum, Expr, Map, Var, toposort
from einsgrad.core.labels import DISPLAY_LETTERS, display_label, index_label
from einsgrad.frontends.index import FUNCTIONS
from einsgrad.graph.printing import Template, literal_length, short_name
from einsgrad.passes.simplify import simplify
from einsgrad.teach.notation import NOTATION_LIMIT

__all__ = ["to_einsum", "to_index", "to_latex"]


#: Fresh labels are these letters (i to z but o), then i1, i2, ... without end.
_ALPHABET = DISPLAY_LETTERS[:17]


@dataclass(frozen=True)
class _Probe:
    """What writing one node does, whatever labels it gets: the precedence of its text,
    the number of fresh labels its whole subtree hands out, or the error it raises."""

    precedence: int = 0
    labels_used: int = 0
    error: EinsgradError | None = None


class _Writer:
    """Writes an expression in index notation through each kind's ``index`` rule, without
    recursion.

    A rule asks the writer for its children's texts (``write``) while it writes its own.
    Instead of writing a child there and then (a recursion as deep as the expression), the
    writer hands back a placeholder and the child's precedence, and writes the child
    later. Two things make that give the same text as writing it there and then: a
    bottom-up pass first runs every node's rule once to learn its precedence and how many
    fresh labels its subtree hands out (a rule's precedence and label count depend on its
    node, not on the labels it is given); and each deferred child starts at the position
    in the fresh-label sequence its subtree would have started at.
    """

    def __init__(self, latex: bool) -> None:
        self.latex = latex
        self.position = 0
        self.probes: dict[Expr, _Probe] = {}
        self.probing = False
        self.deferred: list[tuple[Expr, list[str], int, str]] = []
        self.template = Template()

    def fresh(self) -> str:
        label = display_label(self.position, _ALPHABET)
        self.position += 1
        return label

    def tensor(self, name: str, labels: Sequence[str]) -> str:
        if self.latex:
            return f"{name}{index_label(labels, latex=True)}"
        return f"{name}[{','.join(labels)}]" if labels else name

    def write(self, node: Expr, labels: Sequence[str]) -> tuple[str, int]:
        """A placeholder for the text of ``node`` with its axes labelled ``labels``, and its
        precedence; the text itself is written by :meth:`write_all`."""
        probe = self.probes[node]
        if probe.error is not None:
            raise probe.error
        start = self.position
        self.position += probe.labels_used
        if self.probing:
            return "", probe.precedence
        placeholder = self.template.reserve()
        self.deferred.append((node, list(labels), start, placeholder))
        return placeholder, probe.precedence

    def is_function(self, name: str) -> bool:
        """Whether the elementwise primitive ``name`` is written as a function, f(x)."""
        return name in FUNCTIONS

    def scopes_sums(self, node: Expr) -> bool:
        """Whether ``parse`` sums a label inside ``node`` (a function's argument) when only
        that argument carries it: a sum over the function's result needs an explicit Σ."""
        return isinstance(node, Map) and node.op.name in FUNCTIONS

    def probe_all(self, root: Expr) -> _Probe:
        """Run each node's rule once, children first, with placeholder labels."""
        self.probing = True
        for node in toposort([root], references=False):
            self.position = 0
            rank = 0 if node.shape is None else len(node.shape)
            try:
                _refuse_a_number_parse_cannot_read(node)
                _, precedence = self._rule(node, [f"p{k}" for k in range(rank)])
            except EinsgradError as error:
                self.probes[node] = _Probe(error=error)
            else:
                self.probes[node] = _Probe(precedence, self.position)
        self.probing = False
        return self.probes[root]

    def write_all(self, root: Expr, labels: Sequence[str]) -> str:
        """The text of ``root``: each node written when its parent's text is done, each
        with the labels and the fresh-label position its parent gave it."""
        top = self.template.reserve()
        stack = [(root, list(labels), self.position, top)]
        written = 0
        while stack:
            node, given, start, placeholder = stack.pop()
            self.position, self.deferred = start, []
            text, _ = self._rule(node, given)
            self.template.fill(placeholder, text)
            written += literal_length(text)
            if written > NOTATION_LIMIT:
                raise NoFormError(
                    f"its index form is longer than {NOTATION_LIMIT:,} characters, einsgrad's "
                    "limit for written notation (written out, a formula repeats every shared "
                    "subexpression)"
                )
            stack.extend(reversed(self.deferred))
        return self.template.expand(top)

    def _rule(self, node: Expr, labels: Sequence[str]) -> tuple[str, int]:
        written: tuple[str, int] = kinds.rule(node, "index")(node, labels, self)
        return written


def _refuse_a_number_parse_cannot_read(node: Expr) -> None:
    """Raise NoFormError for an inf or nan constant: ``parse`` reads numbers as finite
    floats and ``nan`` as a variable's name, so no spelling of it reads back."""
    if isinstance(node, Const) and node.is_scalar and not cmath.isfinite(node.value):
        raise NoFormError(
            f"index notation has no spelling for the number {node.value!r} (numbers in "
            "it are finite; parse would read it as a variable)"
        )


def _equation(expr: Expr, name: str, latex: bool) -> str:
    if expr.shape is None:
        raise EinsgradError("index notation needs static shapes: declare them in var()")
    writer = _Writer(latex=latex)
    labels = [writer.fresh() for _ in expr.shape]
    try:
        probe = writer.probe_all(expr)
        if probe.error is not None:
            raise probe.error
        writer.position = len(labels)
        body = writer.write_all(expr, labels)
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
