"""Index notation in and out: ``parse("Y[b,j] = X[b,i] * W[i,j] + c[j]")`` and ``to_index``.

The language (Python syntax, parsed with ``ast``, never evaluated):

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
right, or a label whose sizes disagree (reported by the einsum it builds).

``to_index(expr)`` writes an expression back in this language; summations that the
language cannot scope (a sum over a function's result) are written with an explicit
``Σ_…`` for reading, which ``parse`` does not accept.
"""

from __future__ import annotations

import ast
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from einsgrad.core.errors import EinsgradError, ParseError, caret_message
from einsgrad.core.ir import Expr, Var
from einsgrad.core.labels import LETTERS
from einsgrad.frontends.parse import MAX_DEPTH, MAX_LENGTH, check_shapes_used
from einsgrad.graph import ops
from einsgrad.rules import elementwise as primitives

__all__ = ["parse"]

FUNCTIONS = set(primitives.__all__) - {"maximum", "minimum"}


@dataclass
class _Indexed:
    """A value whose axes carry index labels (distinct, in order)."""

    expr: Expr
    labels: tuple[str, ...]


class _Builder:
    def __init__(
        self, source: str, shapes: Mapping[str, Sequence[int]], variables: Mapping[str, Var]
    ):
        self.source = source
        self.shapes = shapes
        self.variables = dict(variables)
        self.letters: dict[str, str] = {}
        self.representatives: dict[str, tuple[Expr, tuple[str, ...]]] = {}

    def fail(self, node: ast.AST, message: str) -> ParseError:
        column = getattr(node, "col_offset", 0)
        end = getattr(node, "end_col_offset", column + 1)
        return ParseError(
            caret_message(
                f"{message} (column {column + 1})", self.source, column, width=end - column
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
    def mentioned(self, node: ast.AST, *, into_calls: bool = True) -> list[str]:
        """Labels written in ``node``; with ``into_calls=False``, not those inside a call."""
        found: list[str] = []
        stack = [node]
        while stack:
            child = stack.pop()
            if isinstance(child, ast.Subscript):
                found.extend(self.term_labels(child))
            if isinstance(child, ast.Call) and not into_calls:
                continue
            stack.extend(ast.iter_child_nodes(child))
        return list(dict.fromkeys(found))

    def term_labels(self, node: ast.Subscript) -> list[str]:
        index = node.slice
        items = index.elts if isinstance(index, ast.Tuple) else [index]
        labels = []
        for item in items:
            if not isinstance(item, ast.Name):
                raise self.fail(item, "an index label must be a name, like i or batch")
            labels.append(item.id)
        return labels

    # -- building ----------------------------------------------------------------------------
    def build(self, node: ast.AST, needed: frozenset[str], depth: int = 0) -> _Indexed:
        if depth > MAX_DEPTH:
            raise self.fail(node, f"expression nested deeper than {MAX_DEPTH} levels")
        if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add | ast.Sub):
            return self.sum(node, needed, depth)
        return self.product(node, needed, depth)

    def sum(self, node: ast.BinOp, needed: frozenset[str], depth: int) -> _Indexed:
        terms: list[tuple[ast.AST, bool]] = []
        current: ast.AST = node
        while isinstance(current, ast.BinOp) and isinstance(current.op, ast.Add | ast.Sub):
            terms.append((current.right, isinstance(current.op, ast.Sub)))
            current = current.left
        terms.append((current, False))
        terms.reverse()
        built = [(self.build(term, needed, depth + 1), negate) for term, negate in terms]
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
        if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Mult | ast.Div):
            left = self.factors(node.left)
            right = self.factors(node.right)
            if isinstance(node.op, ast.Div):
                right = [(factor, not inverted) for factor, inverted in right]
            return left + right
        return [(node, False)]

    def product(self, node: ast.AST, needed: frozenset[str], depth: int) -> _Indexed:
        factors = self.factors(node)
        mentions = [set(self.mentioned(f)) for f, _ in factors]
        operands: list[Expr] = []
        terms: list[tuple[str, ...]] = []
        for position, (factor, inverted) in enumerate(factors):
            outside = set(needed).union(*(m for i, m in enumerate(mentions) if i != position))
            value = self.factor(factor, frozenset(outside), depth)
            expr = ops.divide(1.0, value.expr) if inverted else value.expr
            operands.append(expr)
            terms.append(value.labels)
        everything = list(dict.fromkeys(label for term in terms for label in term))
        kept = tuple(label for label in everything if label in needed)
        if len(operands) == 1 and terms[0] == kept:
            return _Indexed(operands[0], kept)
        spec = ",".join("".join(self.letters[label] for label in term) for term in terms)
        spec += "->" + "".join(self.letters[label] for label in kept)
        try:
            return _Indexed(ops.einsum(spec, *operands), kept)
        except EinsgradError as error:
            raise type(error)(
                f"{error}\n  in: {ast.get_source_segment(self.source, node)}"
            ) from None

    def factor(self, node: ast.AST, needed: frozenset[str], depth: int) -> _Indexed:
        if isinstance(node, ast.Constant):
            if isinstance(node.value, bool) or not isinstance(node.value, int | float):
                raise self.fail(node, f"only numbers are allowed here, not {node.value!r}")
            return _Indexed(ops.as_expr(float(node.value)), ())
        if isinstance(node, ast.Name):
            if node.id in FUNCTIONS:
                raise self.fail(node, f"{node.id!r} is a function: call it, e.g. {node.id}(X[i])")
            return _Indexed(self.variable(node.id), ())
        if isinstance(node, ast.Subscript):
            return self.tensor(node)
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub | ast.UAdd):
            inner = self.build(node.operand, needed, depth + 1)
            return _Indexed(
                -inner.expr if isinstance(node.op, ast.USub) else inner.expr, inner.labels
            )
        if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add | ast.Sub):
            return self.sum(node, needed, depth + 1)
        if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Pow):
            if not (
                isinstance(node.right, ast.Constant) and isinstance(node.right.value, int | float)
            ):
                raise self.fail(node.right, "an exponent must be a number")
            # A power keeps its base's own labels; a function inside the base still sums
            # the labels only its argument has.
            own = frozenset(self.mentioned(node.left, into_calls=False))
            base = self.build(node.left, needed | own, depth + 1)
            return _Indexed(ops.power(base.expr, float(node.right.value)), base.labels)
        if isinstance(node, ast.Call):
            if not isinstance(node.func, ast.Name) or node.func.id not in FUNCTIONS:
                raise self.fail(
                    node.func, f"unknown function (known: {', '.join(sorted(FUNCTIONS))})"
                )
            if len(node.args) != 1 or node.keywords:
                raise self.fail(node, f"{node.func.id}() takes one argument")
            inner = self.build(node.args[0], needed, depth + 1)
            return _Indexed(getattr(primitives, node.func.id)(inner.expr), inner.labels)
        raise self.fail(node, f"{type(node).__name__} is not part of index notation")

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


def parse(
    source: str,
    *,
    shapes: Mapping[str, Sequence[int]] | None = None,
    variables: Mapping[str, Var] | Sequence[Var] | None = None,
) -> Expr:
    """The right-hand side of an index equation as an expression, axes in the left's order."""
    if not isinstance(source, str):
        raise ParseError(f"an index equation string is needed, got {type(source).__name__}")
    if len(source) > MAX_LENGTH:
        raise ParseError(f"equation is {len(source)} characters long; the limit is {MAX_LENGTH}")
    text = source.strip()
    try:
        tree = ast.parse(text, mode="exec")
    except SyntaxError as error:
        column = (error.offset or 1) - 1
        raise ParseError(
            caret_message(f"invalid syntax: {error.msg} (column {column + 1})", text, column)
        ) from None
    except (RecursionError, MemoryError, ValueError):
        raise ParseError("equation is too deeply nested or malformed") from None
    if (
        len(tree.body) != 1
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
    target = assignment.targets[0]
    if isinstance(target, ast.Subscript):
        left = builder.term_labels(target)
        label_nodes = target.slice.elts if isinstance(target.slice, ast.Tuple) else [target.slice]
    elif isinstance(target, ast.Name):
        left, label_nodes = [], []
    else:
        raise builder.fail(target, "the left side must be NAME[labels] or NAME")
    if len(set(left)) != len(left):
        raise builder.fail(target, "a label repeats on the left side")
    mentioned = set(builder.mentioned(assignment.value))
    for label, label_node in zip(left, label_nodes, strict=True):
        if label not in mentioned:
            raise builder.fail(
                label_node, f"label {label!r} on the left appears nowhere on the right"
            )
    try:
        value = builder.build(assignment.value, frozenset(left))
    except RecursionError:
        raise ParseError(f"equation nested deeper than {MAX_DEPTH} levels") from None
    check_shapes_used(shapes, builder.variables, text)
    return builder.align(value, tuple(left))


# --- out -------------------------------------------------------------------------------------
