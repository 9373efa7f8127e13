"""Expression strings: Python syntax, read into ``ast`` nodes and checked against a whitelist.

``parse_expr("mean(relu(einsum('bi,ij->bj', X, W) + b) ** 2)")`` builds the same
expression as the Python calls would. Nothing is ever evaluated by Python: the syntax
tree is walked, and only these forms are accepted:

* numbers (``2``, ``0.5``, ``1e-3``) and names; a name that is not a function below is a
  variable (shapes from the ``shapes`` mapping, or left to the arrays);
* ``+ - * / ** @``, unary ``-`` and ``+``, and ``.T``;
* calls of the functions in :data:`FUNCTIONS`, with ``axis=`` (an int or a tuple of
  ints) where the function takes an axis; ``einsum`` takes a string literal first.

Numbers are finite floats: a literal too large for one (``1e400``, a 300-digit hex
integer) and arithmetic on numbers that overflows or has no real value (``10 ** 400``,
``1 / 0``, ``(-8) ** 0.5``) are errors, where numpy would give inf or nan, or raise.

Anything else raises :class:`ParseError` quoting the text with a caret under the
offending part. The input may be up to :data:`MAX_LENGTH` characters long, checked before
anything else; within it any nesting and any length of chain is read, in time linear in
the length (see :mod:`einsgrad.frontends.syntax`, which reads the text, and walks here
without recursion).
"""

from __future__ import annotations

import ast
import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from einsgrad.core.errors import EinsgradError, ParseError, VariableError, caret_message
from einsgrad.core.ir import Const, Expr, Var
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
from einsgrad.rules import reductions

__all__ = [
    "FUNCTIONS",
    "MAX_LENGTH",
    "check_number",
    "check_shapes_used",
    "checked_text",
    "parse_expr",
    "shown",
]

#: The longest string read, in characters: expression strings, index equations and
#: ``check`` formulas.
MAX_LENGTH = 10_000
LANGUAGE = "the expression language"
#: numpy's limit on the number of axes of an array, which bounds an ``axis=``.
MAX_AXES = 64

# name -> (function, takes an axis keyword). Every elementwise primitive einsgrad exports
# is callable from strings without being listed here.
FUNCTIONS: dict[str, tuple[Callable[..., Expr], bool]] = {
    **{name: (getattr(primitives, name), False) for name in primitives.__all__},
    **{name: (getattr(primitives, name), False) for name in ("greater", "equal", "sign", "masked")},
    "einsum": (ops.einsum, False),
    "sum": (ops.sum, True),
    "mean": (ops.mean, True),
    "softmax": (reductions.softmax, True),
    "log_softmax": (reductions.log_softmax, True),
    "logsumexp": (reductions.logsumexp, True),
    "matmul": (ops.matmul, False),
    "transpose": (ops.transpose, False),
}

_BINARY: dict[type[ast.operator], Callable[[Any, Any], Expr]] = {
    ast.Add: ops.add,
    ast.Sub: ops.subtract,
    ast.Mult: ops.multiply,
    ast.Div: ops.divide,
    ast.Pow: ops.power,
    ast.MatMult: ops.matmul,
}


def checked_text(source: Any, what: str) -> str:
    """``source`` as the text to read: a string of at most :data:`MAX_LENGTH` characters
    (checked first, before any other work), with line breaks as newlines, stripped."""
    if not isinstance(source, str):
        raise ParseError(f"an {what} is needed as a string, got {type(source).__name__}")
    if len(source) > MAX_LENGTH:
        raise ParseError(
            f"the {what} is {len(source):,} characters long; the limit is {MAX_LENGTH:,}"
        )
    return source.replace("\r\n", "\n").replace("\r", "\n").strip()


def check_number(value: Any, literal: bool) -> str | None:
    """Why the plain number ``value`` cannot stand in an expression, said of its text (a
    literal if ``literal``, else the result of arithmetic on numbers), or None if it can.

    Numbers become float64 next to arrays, so an integer must fit a float, and a float
    must be finite: numpy would give inf or nan for it, or raise.
    """
    if isinstance(value, Const):
        if not value.is_scalar:
            return None
        value = value.value
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    if isinstance(value, int):
        try:
            float(value)
        except OverflowError:
            return "is too large for a float (the largest is about 1.8e308)"
        return None
    if math.isinf(value):
        if literal:
            return "is too large for a float (it would be inf)"
        return "is inf as a float (an overflow, or a division by zero)"
    if math.isnan(value):
        return "has no real value (it is nan as a float)"
    return None


def shown(text: str) -> str:
    """``text`` for a message: as it is, or its start and end if it is long."""
    return text if len(text) <= 40 else f"{text[:30]}...{text[-6:]}"


def _paper_product(a: Any, b: Any) -> Expr:
    """``·`` as on paper: a product with a scalar, else a matrix product."""
    left, right = ops.as_expr(a), ops.as_expr(b)
    if left.shape == () or right.shape == ():
        return ops.multiply(left, right)
    return ops.matmul(left, right)


class _Builder:
    """Builds the expression of a syntax tree bottom-up; each node's step is a generator
    run by :func:`run_without_recursion`, so no depth of nesting is too deep."""

    def __init__(
        self,
        source: str,
        shapes: Mapping[str, Sequence[int]],
        variables: Mapping[str, Var],
        paper_product: bool = False,
    ):
        self.source = source
        self.shapes = shapes
        self.variables = dict(variables)
        self.paper_product = paper_product

    def fail(self, node: ast.AST, message: str) -> ParseError:
        line = getattr(node, "lineno", 1)
        column = getattr(node, "col_offset", 0)
        end = getattr(node, "end_col_offset", None)
        width = (
            (end - column) if end is not None and getattr(node, "end_lineno", line) == line else 1
        )
        where = place_of(self.source, line, column)
        return ParseError(
            caret_message(f"{message} ({where})", line_of(self.source, node), column, width=width)
        )

    def build(self, node: ast.AST) -> Any:
        return run_without_recursion(self._node(node))

    def _located(self, node: ast.AST, action: Callable[[], Any]) -> Any:
        """Run ``action``, this node's own step; its errors say where in the string they
        arose, and a number it makes must be one an expression can hold."""
        try:
            result = action()
        except ParseError:
            raise
        except EinsgradError as error:
            if getattr(error, "located", False):
                raise
            # Shape and spec errors keep their class, with the offending text appended.
            located = type(error)(f"{error}\n  in: {self._snippet(node)}")
            located.located = True  # type: ignore[attr-defined]
            raise located from None
        except TypeError as error:
            raise self.fail(node, str(error)) from None
        except OverflowError:
            too_large = f"{shown(self._snippet(node))} is too large for a float"
            raise self.fail(node, too_large) from None
        problem = check_number(result, isinstance(node, ast.Constant))
        if problem is not None:
            raise self.fail(node, f"{shown(self._snippet(node))} {problem}")
        return result

    def _snippet(self, node: ast.AST) -> str:
        return segment(self.source, node) or self.source

    def _node(self, node: ast.AST) -> Frame:
        """The value of ``node``: a generator that yields the frames of its children."""
        if isinstance(node, ast.Constant):
            value = node.value
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise self.fail(node, f"only numbers are allowed here, not {value!r}")
            return self._located(node, lambda: value)
        if isinstance(node, ast.Name):
            if node.id in FUNCTIONS:
                raise self.fail(node, f"{node.id!r} is a function: call it, e.g. {node.id}(x)")
            return self._variable(node.id)
        if isinstance(node, ast.BinOp):
            return (yield self._chain(node))
        if isinstance(node, ast.UnaryOp):
            operand = yield self._node(node.operand)
            if isinstance(node.op, ast.USub):
                return self._located(node, lambda: -operand)
            if isinstance(node.op, ast.UAdd):
                return operand
            raise self.fail(node, f"the operator {type(node.op).__name__} is not supported")
        if isinstance(node, ast.Attribute):
            if node.attr != "T":
                raise self.fail(node, f"attribute {node.attr!r} is not supported (only .T is)")
            value = yield self._node(node.value)
            return self._located(node, lambda: ops.transpose(value))
        if isinstance(node, ast.Call):
            return (yield self._call(node))
        raise self.fail(node, f"{type(node).__name__} is not part of the expression language")

    def _chain(self, node: ast.BinOp) -> Frame:
        """A chain ``a + b + c + ...``, which nests to the left, folded in a loop."""
        chain: list[ast.BinOp] = [node]
        while isinstance(chain[-1].left, ast.BinOp):
            chain.append(chain[-1].left)
        result = yield self._node(chain[-1].left)
        for link in reversed(chain):
            combine = _BINARY.get(type(link.op))
            if self.paper_product and isinstance(link.op, ast.MatMult):
                combine = _paper_product
            if combine is None:
                raise self.fail(link, f"the operator {type(link.op).__name__} is not supported")
            right = yield self._node(link.right)
            result = self._located(link, lambda: combine(result, right))  # noqa: B023
        return result

    def _variable(self, name: str) -> Var:
        if name not in self.variables:
            self.variables[name] = ops.var(name, self.shapes.get(name))
        return self.variables[name]

    def _call(self, node: ast.Call) -> Frame:
        if not isinstance(node.func, ast.Name):
            raise self.fail(node.func, "only the functions einsgrad knows can be called")
        name = node.func.id
        if name not in FUNCTIONS:
            known = ", ".join(sorted(FUNCTIONS))
            raise self.fail(node.func, f"unknown function {name!r} (known: {known})")
        function, takes_axis = FUNCTIONS[name]
        args: list[Any] = []
        for position, arg in enumerate(node.args):
            if isinstance(arg, ast.Starred):
                raise self.fail(arg, "*args is not supported")
            if name == "einsum" and position == 0:
                if not (isinstance(arg, ast.Constant) and isinstance(arg.value, str)):
                    raise self.fail(
                        arg,
                        "einsum needs a spec string literal first, e.g. einsum('ij,jk->ik', A, B)",
                    )
                args.append(arg.value)
                continue
            args.append((yield self._node(arg)))
        kwargs: dict[str, Any] = {}
        for keyword in node.keywords:
            if keyword.arg != "axis" or not takes_axis:
                what = "**kwargs" if keyword.arg is None else f"keyword {keyword.arg!r}"
                raise self.fail(keyword.value, f"{name}() does not take {what}")
            kwargs["axis"] = self._axis(keyword.value)
        if name == "einsum" and not args:
            raise self.fail(node, "einsum needs a spec string and operands")
        return self._located(node, lambda: function(*args, **kwargs))

    def _axis(self, node: ast.AST) -> int | tuple[int, ...] | None:
        if isinstance(node, ast.Constant) and node.value is None:
            return None
        if isinstance(node, ast.Tuple | ast.List):
            return tuple(self._integer(item) for item in node.elts)
        return self._integer(node)

    def _integer(self, item: ast.AST) -> int:
        """An axis: an int literal with any number of signs."""
        sign, inner = 1, item
        while isinstance(inner, ast.UnaryOp) and isinstance(inner.op, ast.USub | ast.UAdd):
            sign = -sign if isinstance(inner.op, ast.USub) else sign
            inner = inner.operand
        value = inner.value if isinstance(inner, ast.Constant) else None
        if isinstance(value, bool) or not isinstance(value, int):
            raise self.fail(item, "axis must be an int, a tuple of ints or None")
        if abs(value) >= MAX_AXES:
            raise self.fail(item, f"axis out of range: arrays have at most {MAX_AXES} axes")
        return sign * value


def parse_expr(
    source: str,
    *,
    shapes: Mapping[str, Sequence[int]] | None = None,
    variables: Mapping[str, Var] | Sequence[Var] | None = None,
    paper_product: bool = False,
) -> Expr:
    """Build an expression from a Python-syntax string, without evaluating any Python.

    Free names are variables: pass ``shapes={"X": (64, 128)}`` to give them shapes, or
    ``variables`` (existing :class:`Var` objects, by name or as a list) to reuse them.
    Raises ParseError, with a caret under the offending text, for anything outside the
    language (see the module documentation).
    """
    text = checked_text(source, "expression string")
    if variables is None:
        known: dict[str, Var] = {}
    elif isinstance(variables, Mapping):
        known = dict(variables)
    else:
        known = {v.name: v for v in variables}
    tree = parse_python(text, "eval", LANGUAGE)
    assert isinstance(tree, ast.Expression)
    builder = _Builder(text, shapes or {}, known, paper_product)
    result = builder.build(tree.body)
    check_shapes_used(shapes, builder.variables, text)
    if not isinstance(result, Expr):
        return ops.as_expr(result)
    return result


def check_shapes_used(
    shapes: Mapping[str, Sequence[int]] | None, variables: Mapping[str, Var], source: str
) -> None:
    """Refuse a ``shapes`` entry for a name the expression lacks while a variable has no shape.

    That is the mark of a misspelling (``W`` given, ``Q`` used): the entry is ignored and
    the variable it was meant for silently left to the arrays. An extra entry while every
    variable has its shape is harmless, so one dict of a model's shapes serves each of
    its expressions.
    """
    unused = sorted(set(shapes or {}) - set(variables))
    shapeless = sorted(name for name, v in variables.items() if v.shape is None)
    if unused and shapeless:
        known = ", ".join(sorted(variables))
        raise VariableError(
            f"shapes= names {', '.join(map(repr, unused))}, which "
            f"{'is' if len(unused) == 1 else 'are'} not a variable of {source!r}, and leaves "
            f"{', '.join(shapeless)} without a shape (its variables: {known}); a misspelling?"
        )
