"""Expression strings: Python syntax, parsed with ``ast`` against a whitelist.

``parse_expr("mean(relu(einsum('bi,ij->bj', X, W) + b) ** 2)")`` builds the same
expression as the Python calls would. Nothing is ever evaluated by Python: the syntax
tree is walked, and only these forms are accepted:

* numbers (``2``, ``0.5``, ``1e-3``) and names; a name that is not a function below is a
  variable (shapes from the ``shapes`` mapping, or left to the arrays);
* ``+ - * / ** @``, unary ``-`` and ``+``, and ``.T``;
* calls of the functions in :data:`FUNCTIONS`, with ``axis=`` (an int or a tuple of
  ints) where the function takes an axis; ``einsum`` takes a string literal first.

Anything else raises :class:`ParseError` quoting the text with a caret under the
offending part. Input length and nesting depth are bounded.
"""

from __future__ import annotations

import ast
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from einsgrad.core.errors import EinsgradError, ParseError, VariableError, caret_message
from einsgrad.core.ir import Expr, Var
from einsgrad.graph import ops
from einsgrad.rules import elementwise as primitives
from einsgrad.rules import reductions

__all__ = ["FUNCTIONS", "MAX_DEPTH", "MAX_LENGTH", "check_shapes_used", "parse_expr"]

MAX_LENGTH = 10_000
MAX_DEPTH = 64

# name -> (function, takes an axis keyword). Every elementwise primitive einsgrad exports
# is callable from strings without being listed here.
FUNCTIONS: dict[str, tuple[Callable[..., Expr], bool]] = {
    **{name: (getattr(primitives, name), False) for name in primitives.__all__},
    **{name: (getattr(primitives, name), False) for name in ("greater", "equal", "sign")},
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


def _paper_product(a: Any, b: Any) -> Expr:
    """``·`` as on paper: a product with a scalar, else a matrix product."""
    left, right = ops.as_expr(a), ops.as_expr(b)
    if left.shape == () or right.shape == ():
        return ops.multiply(left, right)
    return ops.matmul(left, right)


class _Builder:
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
        text = self.source.splitlines()[line - 1] if self.source else ""
        width = (
            (end - column) if end is not None and getattr(node, "end_lineno", line) == line else 1
        )
        return ParseError(
            caret_message(f"{message} (column {column + 1})", text, column, width=width)
        )

    def build(self, node: ast.AST, depth: int = 0) -> Any:
        if depth > MAX_DEPTH:
            raise self.fail(node, f"expression nested deeper than {MAX_DEPTH} levels")
        return self._located(node, lambda: self._build(node, depth + 1))

    def _located(self, node: ast.AST, action: Callable[[], Any]) -> Any:
        """Run ``action``; errors it raises say where in the string they arose, once."""
        try:
            return action()
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

    def _snippet(self, node: ast.AST) -> str:
        return ast.get_source_segment(self.source, node) or self.source

    def _build(self, node: ast.AST, depth: int) -> Any:
        if isinstance(node, ast.Constant):
            value = node.value
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise self.fail(node, f"only numbers are allowed here, not {value!r}")
            return value
        if isinstance(node, ast.Name):
            if node.id in FUNCTIONS:
                raise self.fail(node, f"{node.id!r} is a function: call it, e.g. {node.id}(x)")
            return self._variable(node.id)
        if isinstance(node, ast.BinOp):
            # A chain a + b + c + ... nests to the left; fold it in a loop, so a long sum
            # does not count as deep nesting.
            chain: list[ast.BinOp] = [node]
            while isinstance(chain[-1].left, ast.BinOp):
                chain.append(chain[-1].left)
            result = self.build(chain[-1].left, depth)
            for link in reversed(chain):
                combine = _BINARY.get(type(link.op))
                if self.paper_product and isinstance(link.op, ast.MatMult):
                    combine = _paper_product
                if combine is None:
                    raise self.fail(link, f"the operator {type(link.op).__name__} is not supported")
                right = self.build(link.right, depth)
                result = self._located(link, lambda: combine(result, right))  # noqa: B023
            return result
        if isinstance(node, ast.UnaryOp):
            operand = self.build(node.operand, depth)
            if isinstance(node.op, ast.USub):
                return -operand
            if isinstance(node.op, ast.UAdd):
                return operand
            raise self.fail(node, f"the operator {type(node.op).__name__} is not supported")
        if isinstance(node, ast.Attribute):
            if node.attr != "T":
                raise self.fail(node, f"attribute {node.attr!r} is not supported (only .T is)")
            return ops.transpose(self.build(node.value, depth))
        if isinstance(node, ast.Call):
            return self._call(node, depth)
        raise self.fail(node, f"{type(node).__name__} is not part of the expression language")

    def _variable(self, name: str) -> Var:
        if name not in self.variables:
            self.variables[name] = ops.var(name, self.shapes.get(name))
        return self.variables[name]

    def _call(self, node: ast.Call, depth: int) -> Expr:
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
            args.append(self.build(arg, depth))
        kwargs: dict[str, Any] = {}
        for keyword in node.keywords:
            if keyword.arg != "axis" or not takes_axis:
                what = "**kwargs" if keyword.arg is None else f"keyword {keyword.arg!r}"
                raise self.fail(keyword.value, f"{name}() does not take {what}")
            kwargs["axis"] = self._axis(keyword.value)
        if name == "einsum" and not args:
            raise self.fail(node, "einsum needs a spec string and operands")
        return function(*args, **kwargs)

    def _axis(self, node: ast.AST) -> int | tuple[int, ...] | None:
        def integer(item: ast.AST) -> int:
            if isinstance(item, ast.UnaryOp) and isinstance(item.op, ast.USub):
                return -integer(item.operand)
            if (
                isinstance(item, ast.Constant)
                and isinstance(item.value, int)
                and not isinstance(item.value, bool)
            ):
                return item.value
            raise self.fail(item, "axis must be an int, a tuple of ints or None")

        if isinstance(node, ast.Constant) and node.value is None:
            return None
        if isinstance(node, ast.Tuple | ast.List):
            return tuple(integer(item) for item in node.elts)
        return integer(node)


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
    if not isinstance(source, str):
        raise ParseError(f"an expression string is needed, got {type(source).__name__}")
    if len(source) > MAX_LENGTH:
        raise ParseError(f"expression is {len(source)} characters long; the limit is {MAX_LENGTH}")
    if variables is None:
        known: dict[str, Var] = {}
    elif isinstance(variables, Mapping):
        known = dict(variables)
    else:
        known = {v.name: v for v in variables}
    try:
        tree = ast.parse(source.strip(), mode="eval")
    except SyntaxError as error:
        column = (error.offset or 1) - 1
        line = (error.text or source).rstrip("\n")
        raise ParseError(
            caret_message(f"invalid syntax: {error.msg} (column {column + 1})", line, column)
        ) from None
    except (RecursionError, MemoryError, ValueError):
        raise ParseError("expression is too deeply nested or malformed") from None
    builder = _Builder(source.strip(), shapes or {}, known, paper_product)
    try:
        result = builder.build(tree.body)
    except RecursionError:
        raise ParseError(f"expression nested deeper than {MAX_DEPTH} levels") from None
    check_shapes_used(shapes, builder.variables, source.strip())
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
