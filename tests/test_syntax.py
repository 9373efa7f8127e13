"""The reader of Python-syntax strings (``einsgrad.frontends.syntax``) against ``ast.parse``.

* Hypothesis draws random expressions over the grammar the reader covers (every binary
  and unary operator, powers, brackets, tuples, lists, calls with every kind of argument,
  attributes, subscripts, numbers and strings, spaces and line breaks inside brackets)
  and random assignments; the reader must build the very tree ``ast.parse`` builds,
  positions included (ASCII text, where Python's byte columns are character columns).
* With non-ASCII text the columns count characters: checked against ``str.index``.
* Input outside the grammar gets Python's verdict; deep input, the reader's own.
* The driver of generator frames runs a descent deeper than Python's recursion limit.
"""

from __future__ import annotations

import ast
import sys
from typing import Any

import pytest
from hypothesis import HealthCheck, event, given, note, settings
from hypothesis import strategies as st

from einsgrad.core.errors import ParseError
from einsgrad.frontends.syntax import parse_python, run_without_recursion

REPRODUCIBLE = settings(
    derandomize=True,
    database=None,
    deadline=None,
    max_examples=400,
    suppress_health_check=[HealthCheck.too_slow],
)

NAMES = st.sampled_from(["x", "Y", "ab", "sum", "T", "_z", "match", "x1"])
NUMBERS = st.sampled_from(
    ["0", "7", "10_000", "0x1F", "0o17", "0b101", "1.5", "2e-3", "1e400", "3j", ".5"]
)
STRINGS = st.sampled_from(["'a'", '"ij->ji"', "'a' 'b'", "r'x'", "b'y'", "u'z'", "'''t'''"])
BINARY = st.sampled_from(["+", "-", "*", "/", "//", "%", "@", "**", "|", "^", "&", "<<", ">>"])
UNARY = st.sampled_from(["-", "+", "~"])
SPACE = st.sampled_from(["", "", " ", "  "])
INNER_SPACE = st.sampled_from(["", " ", "\n ", " # note\n"])  # inside brackets only


@st.composite
def _binary(draw: st.DrawFn, children: Any) -> str:
    return f"{draw(children)}{draw(SPACE)}{draw(BINARY)}{draw(SPACE)}{draw(children)}"


@st.composite
def _unary(draw: st.DrawFn, children: Any) -> str:
    return f"{draw(UNARY)}{draw(SPACE)}{draw(children)}"


@st.composite
def _group(draw: st.DrawFn, children: Any) -> str:
    inner = draw(INNER_SPACE)
    items = draw(st.lists(children, max_size=3))
    kind = draw(st.sampled_from(["paren", "tuple", "list"]))
    if kind == "paren" or (kind == "tuple" and not items):
        body = draw(children) if kind == "paren" else ""
        return f"({inner}{body}{inner})"
    trailing = "," if kind == "tuple" and len(items) == 1 else draw(st.sampled_from(["", ","]))
    body = f",{inner}".join(items) + (trailing if items else "")
    return f"({inner}{body})" if kind == "tuple" else f"[{inner}{body}{inner}]"


@st.composite
def _trailer(draw: st.DrawFn, children: Any) -> str:
    """A call (positional, *, keyword and ** arguments, in an order Python accepts), a
    subscript (one index or a tuple of them) or an attribute, on a name or a group."""
    base = draw(st.one_of(NAMES, _group(children)))
    kind = draw(st.sampled_from(["call", "subscript", "attribute"]))
    if kind == "attribute":
        return f"{base}.{draw(NAMES)}"
    if kind == "subscript":
        items = draw(st.lists(children, min_size=1, max_size=3))
        trailing = draw(st.sampled_from(["", ","])) if len(items) > 1 else ""
        return f"{base}[{', '.join(items)}{trailing}]"
    positional = draw(st.lists(children, max_size=2))
    starred = [f"*{item}" for item in draw(st.lists(children, max_size=1))]
    keywords = [f"{draw(NAMES)}={item}" for item in draw(st.lists(children, max_size=2))]
    double = [f"**{item}" for item in draw(st.lists(children, max_size=1))]
    arguments = positional + starred + keywords + double
    return f"{base}({draw(INNER_SPACE)}{', '.join(arguments)})"


EXPRESSIONS = st.recursive(
    st.one_of(NAMES, NUMBERS, STRINGS),
    lambda children: st.one_of(
        _binary(children), _unary(children), _group(children), _trailer(children)
    ),
    max_leaves=12,
)


def _dump(tree: ast.AST) -> str:
    return ast.dump(tree, include_attributes=True)


@REPRODUCIBLE
@given(EXPRESSIONS)
def test_the_reader_builds_the_tree_python_builds(source: str) -> None:
    note(repr(source))
    try:
        expected = ast.parse(source, mode="eval")
    except SyntaxError:
        event("Python refuses it")
        with pytest.raises(ParseError):
            parse_python(source, "eval", "the test language")
        return
    assert _dump(parse_python(source, "eval", "the test language")) == _dump(expected)


@REPRODUCIBLE
@given(
    st.one_of(NAMES, NAMES.map(lambda n: f"{n}[i, j]"), NAMES.map(lambda n: f"{n}[k]")), EXPRESSIONS
)
def test_the_reader_builds_the_assignment_python_builds(target: str, value: str) -> None:
    source = f"{target} = {value}"
    note(repr(source))
    try:
        expected = ast.parse(source, mode="exec")
    except SyntaxError:
        event("Python refuses it")
        with pytest.raises(ParseError):
            parse_python(source, "assign", "the test language")
        return
    assert _dump(parse_python(source, "assign", "the test language")) == _dump(expected)


@pytest.mark.parametrize(
    "source",
    [
        "α + βγ * bogus",
        "中文 - (bogus)",
        "f(ñ, k=bogus)",
        "x[é] + bogus",
        "'😀' + bogus",
        "ab + (x if y else bogus)",
    ],
)
def test_columns_count_characters(source: str) -> None:
    """Both the reader's tree and, outside its grammar, Python's tree with its byte columns
    converted: the node named ``bogus`` starts where ``str.index`` finds it."""
    tree = parse_python(source, "eval", "the test language")
    (found,) = [n for n in ast.walk(tree) if isinstance(n, ast.Name) and n.id == "bogus"]
    assert found.col_offset == source.index("bogus")
    assert found.end_col_offset == source.index("bogus") + len("bogus")


def test_names_are_read_as_python_reads_them() -> None:
    """NFKC-normalized: the ligature ﬁ is the name fi, as for Python."""
    tree = parse_python("ﬁ + x", "eval", "the test language")
    assert ast.dump(tree) == ast.dump(ast.parse("fi + x", mode="eval"))


@pytest.mark.parametrize(
    ("source", "needle"),
    [
        ("x +", "invalid syntax"),
        ("f(a=1, b)", "positional argument follows keyword argument"),
        ("(x", "never closed"),
        ("x $ y", "invalid syntax"),
        ("(" * 300 + "x if y else z" + ")" * 300, "'if' is not part of the test language"),
    ],
)
def test_input_outside_the_grammar_gets_a_located_verdict(source: str, needle: str) -> None:
    with pytest.raises(ParseError, match=needle) as info:
        parse_python(source, "eval", "the test language")
    assert "^" in str(info.value)


def test_frames_run_deeper_than_the_recursion_limit() -> None:
    depth = 10 * sys.getrecursionlimit()

    def count(n: int) -> Any:
        if n == 0:
            return 0
        return (yield count(n - 1)) + 1

    assert run_without_recursion(count(depth)) == depth


OPERATORS = ["+", "-", "*", "/", "//", "%", "@", "**", "|", "^", "&", "<<", ">>"]


@pytest.mark.parametrize("first", OPERATORS)
def test_precedence_and_associativity_of_every_pair_of_operators(first: str) -> None:
    for second in OPERATORS:
        for source in (
            f"a {first} b {second} c",
            f"-a {first} ~b {second} +c",
            f"a {first} -b ** -c {second} d",
        ):
            expected = _dump(ast.parse(source, mode="eval"))
            assert _dump(parse_python(source, "eval", "the test language")) == expected, source
