"""Index notation in and out: ``parse("Y[b,j] = X[b,i] * W[i,j] + c[j]")`` and ``to_index``.

The language (Python syntax, read into ``ast`` nodes by :mod:`einsgrad.frontends.syntax`,
never evaluated; at most ``MAX_LENGTH`` characters, checked first, and any nesting
within them, walked without recursion):

* ``NAME[l1, l2, …]`` is a tensor with index labels (any identifiers: ``X[batch, i]``);
  a bare ``NAME`` is a scalar variable; numbers are constants;
* ``*`` and ``/`` multiply and divide elementwise, ``+`` and ``-`` add, ``**`` raises to a
  constant power, and ``relu exp log sqrt tanh sigmoid abs`` apply elementwise;
* **Einstein convention**: in each additive term, a label that is not on the left-hand
  side is summed over that term (``X[b,i] * W[i,j]`` sums ``i``);
* **Function scope**: a label that occurs only inside a function's argument is summed
  inside it, as a reader expects: ``Y[b,j] = relu(X[b,i] * W[i,j])`` is
  ``relu(Σ_i X_bi W_ij)``, and ``out[p] = tanh(M[p,q] * v[q])`` is ``tanh(M·v)``. A power
  keeps its base's labels (``X[i] ** 2`` summed over ``i`` is ``Σ_i x_i²``).

Errors point at the offending text: a label on the left that appears nowhere on the
right, or a label whose sizes disagree (reported by the einsum it builds). Numbers must
be finite floats, as in expression strings.

``to_index(expr)`` writes an expression back in this language; summations that the
language cannot scope (a sum over a function's result) are written with an explicit
``Σ_…`` for reading, which ``parse`` does not accept.
"""

from __future__ import annotations

import ast
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from einsgrad.core.errors import EinsgradError, ParseError, caret_message
from einsgrad.core.ir import Const, Expr, Var
from einsgrad.core.labels import LETTERS
from einsgrad.frontends.parse import check_number, check_shapes_used, checked_text, shown
from einsgrad.frontends.syntax import (
    Frame,
    line_of,
    parse_python,
    place_of,
    run_without_recursion,
    segment,
)
from einsgrad.graph import ops
from einsgrad.rules import elementwise as primitives

__all__ = ["parse"]

FUNCTIONS = set(primitives.__all__) - {"maximum", "minimum"}
LANGUAGE = "index notation"

Labels = frozenset[str]


@dataclass
class _Indexed:
    """A value whose axes carry index labels (distinct, in order)."""

    expr: Expr
    labels: tuple[str, ...]


class _Builder:
    """Builds the expression of an index equation's right side, top-down (each node is
    told the labels needed outside it) and bottom-up (it answers with its labels). Each
    step is a generator run by :func:`run_without_recursion`: no nesting is too deep."""

    def __init__(
        self, source: str, shapes: Mapping[str, Sequence[int]], variables: Mapping[str, Var]
    ):
        self.source = source
        self.shapes = shapes
        self.variables = dict(variables)
        self.letters: dict[str, str] = {}
        self.representatives: dict[str, tuple[Expr, tuple[str, ...]]] = {}
        self.written: dict[int, Labels] = {}
        self.outside_calls: dict[int, Labels] = {}

    def fail(self, node: ast.AST, message: str) -> ParseError:
        column = getattr(node, "col_offset", 0)
        end = getattr(node, "end_col_offset", column + 1)
        if getattr(node, "end_lineno", None) != getattr(node, "lineno", None):
            end = column + 1
        where = place_of(self.source, getattr(node, "lineno", 1), column)
        return ParseError(
            caret_message(
                f"{message} ({where})",
                line_of(self.source, node),
                column,
                width=end - column,
            )
        )

    def letter(self, label: str, node: ast.AST) -> str:
        if label not in self.letters:
            if len(label) == 1 and label in LETTERS and label not in self.letters.values():
                self.letters[label] = label
            else:
                free = [
                    c for c in LETTERS if c not in self.letters.values() and c not in self.letters
                ]
                if not free:
                    raise self.fail(node, f"more than {len(LETTERS)} index labels")
                self.letters[label] = free[0]
        return self.letters[label]

    def variable(self, name: str) -> Var:
        if name not in self.variables:
            self.variables[name] = ops.var(name, self.shapes.get(name))
        return self.variables[name]

    # -- labels mentioned syntactically ------------------------------------------------------
    def index_labels(self, tree: ast.AST) -> None:
        """Record, for every node of ``tree``, the labels written in it, and those written
        in it outside any call; one bottom-up pass, so asking is a look-up.

        Refuses more distinct labels than there are einsum letters first, so that every
        recorded set is small.
        """
        order = list(ast.walk(tree))  # parents before children
        tensors = [node for node in order if isinstance(node, ast.Subscript)]
        tensors.sort(key=lambda node: (node.lineno, node.col_offset))  # as written
        distinct: dict[str, None] = {}
        for tensor in tensors:
            for label, item in zip(self.term_labels(tensor), self._items(tensor), strict=True):
                distinct.setdefault(label)
                if len(distinct) > len(LETTERS):
                    raise self.fail(item, f"more than {len(LETTERS)} index labels")
        for node in reversed(order):  # children before parents
            own = frozenset(self.term_labels(node)) if isinstance(node, ast.Subscript) else Labels()
            children = list(ast.iter_child_nodes(node))
            self.written[id(node)] = own.union(*(self.written[id(c)] for c in children))
            self.outside_calls[id(node)] = (
                Labels()
                if isinstance(node, ast.Call)
                else own.union(*(self.outside_calls[id(c)] for c in children))
            )

    def mentioned(self, node: ast.AST, *, into_calls: bool = True) -> Labels:
        """Labels written in ``node``; with ``into_calls=False``, not those inside a call."""
        return (self.written if into_calls else self.outside_calls)[id(node)]

    def _items(self, node: ast.Subscript) -> list[ast.expr]:
        index = node.slice
        return list(index.elts) if isinstance(index, ast.Tuple) else [index]

    def term_labels(self, node: ast.Subscript) -> list[str]:
        labels = []
        for item in self._items(node):
            if not isinstance(item, ast.Name):
                raise self.fail(item, "an index label must be a name, like i or batch")
            labels.append(item.id)
        return labels

    # -- building ----------------------------------------------------------------------------
    def build(self, node: ast.AST, needed: Labels) -> Frame:
        if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add | ast.Sub):
            value = yield self.sum(node, needed)
        else:
            value = yield self.product(node, needed)
        return self.finite(node, value)

    def finite(self, node: ast.AST, value: _Indexed) -> _Indexed:
        """``value``, unless it is a plain number that arithmetic on numbers made inf or
        nan (``10 ** 400``, ``1 / 0``): then a ParseError under ``node``."""
        problem = check_number(value.expr, literal=False)
        if problem is not None:
            raise self.fail(node, f"{shown(segment(self.source, node))} {problem}")
        return value

    def sum(self, node: ast.BinOp, needed: Labels) -> Frame:
        terms: list[tuple[ast.AST, bool]] = []
        current: ast.AST = node
        while isinstance(current, ast.BinOp) and isinstance(current.op, ast.Add | ast.Sub):
            terms.append((current.right, isinstance(current.op, ast.Sub)))
            current = current.left
        terms.append((current, False))
        terms.reverse()
        built = []
        for term, negate in terms:
            built.append(((yield self.build(term, needed)), negate))
        labels = tuple(dict.fromkeys(label for value, _ in built for label in value.labels))
        total = self.align(built[0][0], labels)
        for value, negate in built[1:]:
            aligned = self.align(value, labels)
            total = total - aligned if negate else total + aligned
        return _Indexed(total, labels)

    def align(self, value: _Indexed, labels: tuple[str, ...]) -> Expr:
        """``value`` with axes ``labels``: transposed, and broadcast along missing labels."""
        if value.labels == labels:
            return value.expr
        inner = "".join(self.letters[label] for label in value.labels)
        outer = "".join(self.letters[label] for label in labels)
        if set(value.labels) == set(labels):
            return ops.einsum(f"{inner}->{outer}", value.expr)
        return ops._generalized(f"{inner}->{outer}", value.expr, self.reference(labels))

    def reference(self, labels: tuple[str, ...]) -> Expr:
        """An expression with axes ``labels`` (used for its shape only, never computed)."""
        chosen: dict[tuple[int, tuple[str, ...]], tuple[Expr, tuple[str, ...]]] = {}
        for label in labels:
            expr, term = self.representatives[label]
            chosen.setdefault((id(expr), term), (expr, term))
        terms = ",".join(
            "".join(self.letters[label] for label in term) for _, term in chosen.values()
        )
        out = "".join(self.letters[label] for label in labels)
        return ops.einsum(f"{terms}->{out}", *(expr for expr, _ in chosen.values()))

    def factors(self, node: ast.AST) -> list[tuple[ast.AST, bool]]:
        """The factors of a product ``a * b / c``, in order, each with whether it divides
        (parenthesized products are factors too); a loop over an explicit stack."""
        found: list[tuple[ast.AST, bool]] = []
        pending: list[tuple[ast.AST, bool]] = [(node, False)]
        while pending:
            current, inverted = pending.pop()
            if isinstance(current, ast.BinOp) and isinstance(current.op, ast.Mult | ast.Div):
                right_inverted = inverted != isinstance(current.op, ast.Div)
                pending.append((current.right, right_inverted))
                pending.append((current.left, inverted))
            else:
                found.append((current, inverted))
        return found

    def product(self, node: ast.AST, needed: Labels) -> Frame:
        factors = self.factors(node)
        mentions = [self.mentioned(f) for f, _ in factors]
        # The labels of every other factor: unions of the ones before and after each.
        before: list[Labels] = [Labels()]
        for m in mentions[:-1]:
            before.append(before[-1] | m)
        after: list[Labels] = [Labels()]
        for m in reversed(mentions[1:]):
            after.append(after[-1] | m)
        after.reverse()
        built: list[tuple[Expr, tuple[str, ...], bool]] = []
        for position, (factor, inverted) in enumerate(factors):
            outside = needed | before[position] | after[position]
            value = yield self.factor(factor, outside)
            built.append((value.expr, value.labels, inverted))
        operands, terms = _operands(built)
        numbers = [op.value for op in operands if isinstance(op, Const) and op.is_scalar]
        if len(numbers) == len(operands):
            # Numbers only: their einsum would make the inf or nan at evaluation.
            product = 1.0
            for number in numbers:
                product *= float(number)
            self.finite(node, _Indexed(Const(product), ()))
        everything = list(dict.fromkeys(label for term in terms for label in term))
        kept = tuple(label for label in everything if label in needed)
        if len(operands) == 1 and terms[0] == kept:
            return _Indexed(operands[0], kept)
        spec = ",".join("".join(self.letters[label] for label in term) for term in terms)
        spec += "->" + "".join(self.letters[label] for label in kept)
        try:
            return _Indexed(ops.einsum(spec, *operands), kept)
        except EinsgradError as error:
            raise type(error)(f"{error}\n  in: {segment(self.source, node)}") from None

    def number(self, node: ast.Constant) -> float:
        if isinstance(node.value, bool) or not isinstance(node.value, int | float):
            raise self.fail(node, f"only numbers are allowed here, not {node.value!r}")
        problem = check_number(node.value, literal=True)
        if problem is not None:
            raise self.fail(node, f"{shown(segment(self.source, node))} {problem}")
        return float(node.value)

    def factor(self, node: ast.AST, needed: Labels) -> Frame:
        if isinstance(node, ast.Constant):
            return _Indexed(ops.as_expr(self.number(node)), ())
        if isinstance(node, ast.Name):
            if node.id in FUNCTIONS:
                raise self.fail(node, f"{node.id!r} is a function: call it, e.g. {node.id}(X[i])")
            return _Indexed(self.variable(node.id), ())
        if isinstance(node, ast.Subscript):
            return self.tensor(node)
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub | ast.UAdd):
            return (yield self.signed(node, needed))
        if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add | ast.Sub):
            return (yield self.sum(node, needed))
        if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Pow):
            return (yield self.power(node, needed))
        if isinstance(node, ast.Call):
            return (yield self.call(node, needed))
        raise self.fail(node, f"{type(node).__name__} is not part of index notation")

    def signed(self, node: ast.UnaryOp, needed: Labels) -> Frame:
        """``-x`` and ``+x``; a run of signs is one loop, whatever its length, and each
        minus is a negation (as if each sign were built on its own)."""
        minuses = 0
        inner: ast.AST = node
        while isinstance(inner, ast.UnaryOp) and isinstance(inner.op, ast.USub | ast.UAdd):
            minuses += isinstance(inner.op, ast.USub)
            inner = inner.operand
        value = yield self.build(inner, needed)
        expr = value.expr
        for _ in range(minuses):
            expr = -expr
        return _Indexed(expr, value.labels)

    def power(self, node: ast.BinOp, needed: Labels) -> Frame:
        exponent = self.exponent(node.right)
        # A power keeps its base's own labels; a function inside the base still sums
        # the labels only its argument has.
        own = self.mentioned(node.left, into_calls=False)
        base = yield self.build(node.left, needed | own)
        return self.finite(node, _Indexed(ops.power(base.expr, exponent), base.labels))

    def exponent(self, node: ast.expr) -> float:
        """The number an exponent is: a literal with any signs (``X[i] ** -1.0``, which is
        how ``to_index`` writes a negative power)."""
        sign = 1.0
        literal: ast.expr = node
        while isinstance(literal, ast.UnaryOp) and isinstance(literal.op, ast.USub | ast.UAdd):
            sign = -sign if isinstance(literal.op, ast.USub) else sign
            literal = literal.operand
        if not (isinstance(literal, ast.Constant) and isinstance(literal.value, int | float)):
            raise self.fail(node, "an exponent must be a number")
        return sign * self.number(literal)

    def call(self, node: ast.Call, needed: Labels) -> Frame:
        if not isinstance(node.func, ast.Name) or node.func.id not in FUNCTIONS:
            raise self.fail(node.func, f"unknown function (known: {', '.join(sorted(FUNCTIONS))})")
        if len(node.args) != 1 or node.keywords:
            raise self.fail(node, f"{node.func.id}() takes one argument")
        inner = yield self.build(node.args[0], needed)
        return _Indexed(getattr(primitives, node.func.id)(inner.expr), inner.labels)

    def tensor(self, node: ast.Subscript) -> _Indexed:
        if not isinstance(node.value, ast.Name):
            raise self.fail(node.value, "a tensor is a name followed by [labels]")
        labels = self.term_labels(node)
        variable = self.variable(node.value.id)
        letters = [self.letter(label, node) for label in labels]
        for label in labels:
            self.representatives.setdefault(label, (variable, tuple(labels)))
        distinct = tuple(dict.fromkeys(labels))
        if len(distinct) == len(labels):
            return _Indexed(variable, distinct)
        spec = "".join(letters) + "->" + "".join(self.letters[label] for label in distinct)
        return _Indexed(ops.einsum(spec, variable), distinct)


def _operands(
    built: Sequence[tuple[Expr, tuple[str, ...], bool]],
) -> tuple[list[Expr], list[tuple[str, ...]]]:
    """The einsum operands and terms of a product's factors (each with whether it divides).

    A number factor is an einsum operand, unless it, its reciprocal or the product of the
    numbers is inf or nan (``X[i] / 0.0``): then the numbers apply elementwise to the first
    tensor, in order. An einsum may pull a number out of its sum (Σ_i x_i·c = c·Σ_i x_i,
    as numpy's einsum does), which is false for c = inf: Σ_i x_i/0 is nan for x = (0, 1),
    not inf.
    """
    numbers = [(value, inverted) for value, _, inverted in built if isinstance(value, Const)]
    tensors = [k for k, (value, _, _) in enumerate(built) if not isinstance(value, Const)]
    product = 1.0
    finite = True
    with np.errstate(all="ignore"):  # inf and nan are the answer here, not a warning
        for number, inverted in numbers:
            factor = float(np.divide(1.0, number.value)) if inverted else float(number.value)
            product = float(np.divide(product, number.value)) if inverted else product * factor
            finite = finite and math.isfinite(factor) and math.isfinite(product)
    elementwise = bool(numbers and tensors) and not finite
    operands: list[Expr] = []
    terms: list[tuple[str, ...]] = []
    for k, (value, labels, inverted) in enumerate(built):
        if elementwise and isinstance(value, Const):
            continue
        expr = ops.divide(1.0, value) if inverted else value
        if elementwise and k == tensors[0]:
            for number, number_inverted in numbers:
                expr = ops.divide(expr, number) if number_inverted else ops.multiply(expr, number)
        operands.append(expr)
        terms.append(labels)
    return operands, terms


def parse(
    source: str,
    *,
    shapes: Mapping[str, Sequence[int]] | None = None,
    variables: Mapping[str, Var] | Sequence[Var] | None = None,
) -> Expr:
    """The right-hand side of an index equation as an expression, axes in the left's order."""
    text = checked_text(source, "index equation")
    tree = parse_python(text, "assign", LANGUAGE)
    if (
        not isinstance(tree, ast.Module)
        or len(tree.body) != 1
        or not isinstance(tree.body[0], ast.Assign)
        or len(tree.body[0].targets) != 1
    ):
        raise ParseError(caret_message("expected one equation: NAME[labels] = expression", text, 0))
    assignment = tree.body[0]
    known: dict[str, Var]
    if variables is None:
        known = {}
    elif isinstance(variables, Mapping):
        known = dict(variables)
    else:
        known = {v.name: v for v in variables}
    builder = _Builder(text, shapes or {}, known)
    left, label_nodes = _left_side(builder, assignment.targets[0])
    builder.index_labels(assignment.value)
    mentioned = builder.mentioned(assignment.value)
    for label, label_node in zip(left, label_nodes, strict=True):
        if label not in mentioned:
            raise builder.fail(
                label_node, f"label {label!r} on the left appears nowhere on the right"
            )
    value = run_without_recursion(builder.build(assignment.value, frozenset(left)))
    check_shapes_used(shapes, builder.variables, text)
    return builder.align(value, tuple(left))


def _left_side(builder: _Builder, target: ast.expr) -> tuple[list[str], list[ast.expr]]:
    """The labels of the left side ``NAME[labels]`` (none for a bare ``NAME``), distinct,
    and their nodes."""
    if isinstance(target, ast.Subscript):
        left = builder.term_labels(target)
        label_nodes = target.slice.elts if isinstance(target.slice, ast.Tuple) else [target.slice]
    elif isinstance(target, ast.Name):
        left, label_nodes = [], []
    else:
        raise builder.fail(target, "the left side must be NAME[labels] or NAME")
    if len(set(left)) != len(left):
        raise builder.fail(target, "a label repeats on the left side")
    return left, label_nodes


# --- out -------------------------------------------------------------------------------------
