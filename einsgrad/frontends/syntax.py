"""Python-syntax strings read into ``ast`` trees at any length, without recursion.

einsgrad's string languages (expression strings, index equations) are written in Python
syntax, read into Python's own ``ast`` node classes and checked against a whitelist;
nothing is ever evaluated. ``ast.parse`` itself cannot be the reader: it gives up on input
that is long rather than deep (a flat sum of 3,000 terms is "too deeply nested" for it, a
chain of 3,000 powers a MemoryError, 200 nested brackets "too many"), and its columns
count UTF-8 bytes, which puts carets in the wrong place after any non-ASCII character.

:func:`parse_python` reads the part of Python's expression grammar the languages use
(numbers, strings, names, ``( )`` groups and tuples, ``[ ]`` lists, calls with positional,
``*``, keyword and ``**`` arguments, attributes, subscripts, the unary operators ``- + ~``
and the binary operators ``| ^ & << >> + - * @ / // % **`` with Python's precedence, and
one ``target = value`` assignment) from the token stream of :mod:`tokenize`, and builds
the very nodes ``ast.parse`` builds for it (``tests/test_syntax.py`` compares the two),
with columns counted in characters. Its grammar functions are generators driven by
:func:`run_without_recursion`, so the depth of the input costs list entries, not Python
stack frames.

Input outside that grammar (``lambda``, comparisons, slices, a syntax error) is handed to
``ast.parse``, whose verdict is then the one reported: its SyntaxError, with a caret, or
its tree (columns turned into characters) for the whitelist to reject by node name. Only
when ``ast.parse`` fails on the depth of such input is the error this module's own.
"""

from __future__ import annotations

import ast
import functools
import io
import keyword
import re
import tokenize
import unicodedata
from collections.abc import Callable, Generator
from dataclasses import dataclass
from typing import Any, Literal

from einsgrad.core.errors import ParseError, caret_message

__all__ = ["Frame", "line_of", "parse_python", "place_of", "run_without_recursion", "segment"]

#: A step of a computation run by :func:`run_without_recursion`: it yields the frames it
#: calls and returns its value.
Frame = Generator[Any, Any, Any]

Mode = Literal["eval", "assign"]

#: Binary operators by precedence, loosest first (Python's ``|`` to ``*``; ``**`` binds
#: tighter than the unary operators and is read with them).
_LEVELS: tuple[dict[str, type[ast.operator]], ...] = (
    {"|": ast.BitOr},
    {"^": ast.BitXor},
    {"&": ast.BitAnd},
    {"<<": ast.LShift, ">>": ast.RShift},
    {"+": ast.Add, "-": ast.Sub},
    {"*": ast.Mult, "@": ast.MatMult, "/": ast.Div, "//": ast.FloorDiv, "%": ast.Mod},
)
_LEVEL_OF = {symbol: level for level, ops in enumerate(_LEVELS) for symbol in ops}
_OPERATOR = {symbol: op for ops in _LEVELS for symbol, op in ops.items()}
_UNARY: dict[str, type[ast.unaryop]] = {"-": ast.USub, "+": ast.UAdd, "~": ast.Invert}
_NAMED_CONSTANTS = {"None": None, "True": True, "False": False}
_SKIPPED = {tokenize.NL, tokenize.COMMENT}
#: Python reads at most this many digits of a decimal integer (sys.get_int_max_str_digits).
_DECIMAL = re.compile(r"[0-9][0-9_]*")
_MAX_DIGITS = 4300

Position = tuple[int, int]  # (line, column), the line from 1 and the column in characters


def run_without_recursion(root: Frame) -> Any:
    """Run ``root``, a generator that yields a generator to call it and receives its value.

    The frames waiting for a value live on a list rather than on Python's stack, so a
    computation written as a recursive descent runs at any depth (memory permitting). An
    exception leaves every waiting frame and propagates to the caller.
    """
    stack: list[Frame] = [root]
    value: Any = None
    while stack:
        try:
            callee = stack[-1].send(value)
        except StopIteration as done:
            stack.pop()
            value = done.value
        else:
            stack.append(callee)
            value = None
    return value


def line_of(text: str, node: ast.AST) -> str:
    """The line of ``text`` that ``node`` starts on (lines are split at ``\\n`` only)."""
    lines = text.split("\n")
    number = getattr(node, "lineno", 1)
    return lines[number - 1] if 0 < number <= len(lines) else ""


def place_of(text: str, line: int, column: int) -> str:
    """``column 5``, or ``line 2, column 5`` in text of several lines (both from 1)."""
    if "\n" in text:
        return f"line {line}, column {column + 1}"
    return f"column {column + 1}"


def segment(text: str, node: ast.AST) -> str:
    """The text of ``node``, from columns counted in characters (``ast.get_source_segment``
    counts bytes)."""
    lines = text.split("\n")
    first, last = getattr(node, "lineno", 1) - 1, getattr(node, "end_lineno", None)
    start, end = getattr(node, "col_offset", 0), getattr(node, "end_col_offset", None)
    if last is None or end is None or not 0 <= first < last <= len(lines):
        return text
    if first == last - 1:
        return lines[first][start:end]
    return "\n".join([lines[first][start:], *lines[first + 1 : last - 1], lines[last - 1][:end]])


class _Unsupported(Exception):
    """Input the grammar here does not read; ``token`` is where reading stopped."""

    def __init__(self, token: tokenize.TokenInfo) -> None:
        super().__init__(token.string)
        self.token = token


@dataclass
class _Piece:
    """A parsed node and the positions of its first and last tokens, brackets included
    (a parenthesized operand's node keeps its own position, but the node it is part of
    starts or ends at the bracket, as in Python)."""

    node: ast.expr
    start: Position
    end: Position


def _place(node: ast.AST, start: Position, end: Position) -> Any:
    node.lineno, node.col_offset = start  # type: ignore[attr-defined]
    node.end_lineno, node.end_col_offset = end  # type: ignore[attr-defined]
    return node


def _piece(node: ast.expr, start: Position, end: Position) -> _Piece:
    return _Piece(_place(node, start, end), start, end)


class _Reader:
    """The significant tokens of the text and a cursor over them."""

    def __init__(self, tokens: list[tokenize.TokenInfo]) -> None:
        self.tokens = tokens
        self.at = 0

    def peek(self, ahead: int = 0) -> tokenize.TokenInfo:
        return self.tokens[min(self.at + ahead, len(self.tokens) - 1)]

    def symbol(self, ahead: int = 0) -> str | None:
        """The operator or bracket ``ahead`` tokens on, if it is one."""
        token = self.peek(ahead)
        return token.string if token.type == tokenize.OP else None

    def take(self) -> tokenize.TokenInfo:
        token = self.peek()
        self.at += 1
        return token

    def expect(self, symbol: str) -> tokenize.TokenInfo:
        if self.symbol() != symbol:
            raise _Unsupported(self.peek())
        return self.take()


def _tokens(text: str) -> list[tokenize.TokenInfo]:
    """The tokens that carry meaning (no comments or line breaks inside brackets)."""
    tokens = []
    for token in tokenize.generate_tokens(io.StringIO(text).readline):
        if token.type == tokenize.ERRORTOKEN:
            raise _Unsupported(token)
        if token.type not in _SKIPPED:
            tokens.append(token)
    return tokens


def _expression(reader: _Reader, lowest: int = 0) -> Frame:
    """Binary operators of precedence ``lowest`` or tighter, by precedence climbing: a
    chain of one operator is a loop here, not a nesting."""
    left = yield _unary(reader)
    while (symbol := reader.symbol()) in _LEVEL_OF and _LEVEL_OF[symbol] >= lowest:
        reader.take()
        right = yield _expression(reader, _LEVEL_OF[symbol] + 1)
        node = ast.BinOp(left.node, _OPERATOR[symbol](), right.node)
        left = _piece(node, left.start, right.end)
    return left


def _unary(reader: _Reader) -> Frame:
    """Unary ``- + ~`` (a run of them is a loop), then a power."""
    signs = []
    while (symbol := reader.symbol()) in _UNARY:
        signs.append((reader.take(), _UNARY[symbol]))
    operand = yield _power(reader)
    for token, op in reversed(signs):
        operand = _piece(ast.UnaryOp(op(), operand.node), token.start, operand.end)
    return operand


def _power(reader: _Reader) -> Frame:
    """``base ** exponent``: right-associative, and the exponent may carry a sign."""
    base = yield _primary(reader)
    if reader.symbol() != "**":
        return base
    reader.take()
    exponent = yield _unary(reader)
    return _piece(ast.BinOp(base.node, ast.Pow(), exponent.node), base.start, exponent.end)


def _primary(reader: _Reader) -> Frame:
    """An atom followed by calls, subscripts and attributes."""
    value = yield _atom(reader)
    while True:
        symbol = reader.symbol()
        if symbol == "(":
            value = yield _call(reader, value)
        elif symbol == "[":
            value = yield _subscript(reader, value)
        elif symbol == ".":
            reader.take()
            name = reader.peek()
            if name.type != tokenize.NAME or keyword.iskeyword(name.string):
                raise _Unsupported(name)
            reader.take()
            node = ast.Attribute(value.node, _identifier(name), ast.Load())
            value = _piece(node, value.start, name.end)
        else:
            return value


def _atom(reader: _Reader) -> Frame:
    """A name, a number, strings, a group or tuple in ``( )``, or a list in ``[ ]``."""
    token = reader.peek()
    if token.type == tokenize.NAME and token.string in _NAMED_CONSTANTS:
        reader.take()
        return _piece(ast.Constant(_NAMED_CONSTANTS[token.string]), token.start, token.end)
    if token.type == tokenize.NAME and not keyword.iskeyword(token.string):
        reader.take()
        return _piece(ast.Name(_identifier(token), ast.Load()), token.start, token.end)
    if token.type == tokenize.NUMBER:
        reader.take()
        return _piece(_number(token), token.start, token.end)
    if token.type == tokenize.STRING:
        return _strings(reader)
    if token.string == "(":
        return (yield _group(reader))
    if token.string == "[":
        opening = reader.take()
        items, closing = yield _items(reader, "]")
        return _piece(ast.List(items, ast.Load()), opening.start, closing.end)
    raise _Unsupported(token)


def _identifier(token: tokenize.TokenInfo) -> str:
    """The name as Python reads it: NFKC-normalized, and a valid identifier."""
    name = token.string if token.string.isascii() else unicodedata.normalize("NFKC", token.string)
    if not name.isidentifier():
        raise _Unsupported(token)
    return name


def _number(token: tokenize.TokenInfo) -> ast.Constant:
    """A number token as the constant Python makes of it."""
    text = token.string
    if _DECIMAL.fullmatch(text) and len(text.replace("_", "")) > _MAX_DIGITS:
        raise ParseError(
            caret_message(
                f"the integer {text[:12]}... has {len(text):,} digits, far too many for a "
                f"float (column {token.start[1] + 1})",
                token.line.rstrip("\n"),
                token.start[1],
                width=len(text),
            )
        )
    value = _literal(text)
    if value is None:
        raise _Unsupported(token)
    return ast.Constant(value[0])


@functools.lru_cache(maxsize=1024)
def _literal(text: str) -> tuple[int | float | complex] | None:
    """The value of a number literal, as Python reads it (cached: a number repeats)."""
    try:
        node = ast.parse(text, mode="eval").body
    except (SyntaxError, ValueError):
        return None
    if isinstance(node, ast.Constant) and isinstance(node.value, int | float | complex):
        return (node.value,)
    return None


def _strings(reader: _Reader) -> _Piece:
    """Adjacent string literals, joined as Python joins them, read by ``ast.parse``."""
    tokens = [reader.take()]
    while reader.peek().type == tokenize.STRING:
        tokens.append(reader.take())
    source = " ".join(token.string for token in tokens)
    try:
        node = ast.parse(f"({source})", mode="eval").body
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        raise _Unsupported(tokens[0]) from None
    return _piece(node, tokens[0].start, tokens[-1].end)


def _group(reader: _Reader) -> Frame:
    """``( )``: the empty tuple, a tuple, or a parenthesized expression."""
    opening = reader.take()
    if reader.symbol() == ")":
        closing = reader.take()
        return _piece(ast.Tuple([], ast.Load()), opening.start, closing.end)
    first = yield _expression(reader)
    if reader.symbol() == ")":
        closing = reader.take()
        return _Piece(first.node, opening.start, closing.end)
    reader.expect(",")
    rest, closing = yield _items(reader, ")")
    return _piece(ast.Tuple([first.node, *rest], ast.Load()), opening.start, closing.end)


def _items(reader: _Reader, closing: str) -> Frame:
    """Comma-separated expressions up to ``closing`` (a trailing comma allowed); returns
    their nodes and the closing token."""
    items: list[ast.expr] = []
    while reader.symbol() != closing:
        item = yield _expression(reader)
        items.append(item.node)
        if reader.symbol() != ",":
            break
        reader.take()
    return items, reader.expect(closing)


def _call(reader: _Reader, function: _Piece) -> Frame:
    """``function(arguments)``: positional, ``*`` and keyword arguments in Python's order."""
    reader.take()
    args: list[ast.expr] = []
    keywords: list[ast.keyword] = []
    while reader.symbol() != ")":
        token = reader.peek()
        if token.string in ("*", "**") and token.type == tokenize.OP:
            if token.string == "*" and any(k.arg is None for k in keywords):
                raise _Unsupported(token)
            reader.take()
            value = yield _expression(reader)
            if token.string == "*":
                args.append(_place(ast.Starred(value.node, ast.Load()), token.start, value.end))
            else:
                keywords.append(_place(ast.keyword(None, value.node), token.start, value.end))
        elif token.type == tokenize.NAME and reader.symbol(1) == "=":
            if keyword.iskeyword(token.string):
                raise _Unsupported(token)
            reader.take()
            reader.take()
            value = yield _expression(reader)
            keywords.append(
                _place(ast.keyword(_identifier(token), value.node), token.start, value.end)
            )
        else:
            if keywords:  # a positional argument after a keyword one is Python's error
                raise _Unsupported(token)
            value = yield _expression(reader)
            args.append(value.node)
        if reader.symbol() != ",":
            break
        reader.take()
    closing = reader.expect(")")
    return _piece(ast.Call(function.node, args, keywords), function.start, closing.end)


def _subscript(reader: _Reader, value: _Piece) -> Frame:
    """``value[index]``, the index one expression or a tuple of them without brackets."""
    reader.take()
    first = yield _expression(reader)
    index, last = first.node, first.end
    if reader.symbol() == ",":
        items = [first.node]
        last = reader.take().end
        while reader.symbol() != "]":
            item = yield _expression(reader)
            items.append(item.node)
            last = item.end
            if reader.symbol() != ",":
                break
            last = reader.take().end
        index = _place(ast.Tuple(items, ast.Load()), first.start, last)
    closing = reader.expect("]")
    return _piece(ast.Subscript(value.node, index, ast.Load()), value.start, closing.end)


def _end(reader: _Reader) -> None:
    """Nothing may follow but the end of the text."""
    if reader.peek().type == tokenize.NEWLINE:
        reader.take()
    if reader.peek().type != tokenize.ENDMARKER:
        raise _Unsupported(reader.peek())


def _document(reader: _Reader, mode: Mode) -> Frame:
    """The whole text: one expression, or one ``NAME = value`` / ``NAME[...] = value``."""
    first = yield _expression(reader)
    if mode == "eval":
        _end(reader)
        return ast.Expression(first.node)
    target = first.node
    if not isinstance(target, ast.Name | ast.Subscript) or reader.symbol() != "=":
        raise _Unsupported(reader.peek())
    reader.take()
    value = yield _expression(reader)
    _end(reader)
    target.ctx = ast.Store()
    assignment = _place(ast.Assign([target], value.node), first.start, value.end)
    assignment.type_comment = None
    return ast.Module([assignment], [])


def parse_python(text: str, mode: Mode, language: str) -> ast.Expression | ast.Module:
    """``text`` as ``ast.parse(text, mode)`` reads it (``"assign"`` is ``"exec"`` mode with
    one assignment), columns in characters; ParseError, with a caret, if Python cannot
    read it. ``language`` names what the text is written in, for error messages.

    The text must not be longer than its caller's limit: the work is linear in it.
    """
    try:
        reader = _Reader(_tokens(text))
        tree: ast.Expression | ast.Module = run_without_recursion(_document(reader, mode))
    except _Unsupported as unsupported:
        return _as_python_reads_it(text, mode, unsupported.token, language)
    except (tokenize.TokenError, SyntaxError):
        return _as_python_reads_it(text, mode, None, language)
    return tree


def _as_python_reads_it(
    text: str, mode: Mode, token: tokenize.TokenInfo | None, language: str
) -> ast.Expression | ast.Module:
    """Python's own reading of text outside the grammar here, with columns in characters."""
    try:
        tree = ast.parse(text, mode="eval" if mode == "eval" else "exec")
    except SyntaxError as error:
        if token is not None and error.msg.startswith("too many nested"):
            raise _beyond_python(text, token, language) from None  # Python's depth limit
        raise _syntax_error(error, text) from None
    except (RecursionError, MemoryError, ValueError):
        raise _beyond_python(text, token, language) from None
    _columns_in_characters(tree, text.split("\n"))
    return tree  # type: ignore[return-value]


def _syntax_error(error: SyntaxError, text: str) -> ParseError:
    """Python's SyntaxError with a caret. Its offset counts characters from 1; it is 0 at
    the end of the input (as for ``x +``), and the caret then goes after the last one."""
    lines = text.split("\n")
    number = min(max(error.lineno or 1, 1), len(lines))
    line = lines[number - 1]
    column = (error.offset - 1) if error.offset else len(line)
    where = place_of(text, number, column)
    return ParseError(caret_message(f"invalid syntax: {error.msg} ({where})", line, column))


def _beyond_python(text: str, token: tokenize.TokenInfo | None, language: str) -> ParseError:
    """The error for text that neither the grammar here nor ``ast.parse`` can read."""
    if token is None:
        return ParseError(f"the text is not part of {language}")
    number, column = token.start
    line = text.split("\n")[number - 1] if text else ""
    return ParseError(
        caret_message(
            f"{token.string!r} is not part of {language} ({place_of(text, number, column)})",
            line,
            column,
            width=max(1, len(token.string)),
        )
    )


def _columns_in_characters(tree: ast.AST, lines: list[str]) -> None:
    """Turn the UTF-8 byte columns of ``ast.parse``'s nodes into character columns."""
    convert: Callable[[int, int], int] = functools.lru_cache(maxsize=None)(
        lambda number, offset: _character_column(lines, number, offset)
    )
    for node in ast.walk(tree):  # a breadth-first walk with a queue: no recursion
        if isinstance(node, ast.expr | ast.stmt | ast.keyword):
            node.col_offset = convert(node.lineno, node.col_offset)
            if node.end_lineno is not None and node.end_col_offset is not None:
                node.end_col_offset = convert(node.end_lineno, node.end_col_offset)


def _character_column(lines: list[str], number: int, offset: int) -> int:
    line = lines[number - 1] if 0 < number <= len(lines) else ""
    if line.isascii():
        return offset
    return len(line.encode("utf-8")[:offset].decode("utf-8", errors="ignore"))
