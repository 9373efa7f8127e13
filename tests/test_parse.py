"""Expression strings: the same expressions and gradients as the Python API, and nothing else.

* Hand-written strings build the expression the Python calls build, whose gradients are
  checked against autograd and finite differences.
* Everything outside the whitelist raises ParseError with a caret under the offending
  text, and nothing in the string is ever executed.
* Hypothesis draws random expression trees over the whitelist and renders each one three
  ways: as a string, through einsgrad's Python API, and with ``autograd.numpy``. The
  parsed string must be the very node the Python API builds (nodes are hash-consed), and
  value and gradients must agree with autograd (and with finite differences where the
  tree is smooth).
"""

from __future__ import annotations

import builtins
import functools
import operator
import time
from collections.abc import Callable, Mapping
from typing import Any

import autograd.numpy as anp
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from oracles import assert_caret_under, autograd_gradients, caret, finite_difference

import einsgrad as eg
from einsgrad.frontends.parse import MAX_LENGTH

# --- hand-written strings against the Python API ---------------------------------------------

SHAPES = {"X": (3, 4), "W": (4, 3), "b": (3,)}


def _lse(x: Any, axis: Any = None) -> Any:
    return anp.log(anp.sum(anp.exp(x), axis=axis))


def _log_softmax(x: Any, axis: Any = -1) -> Any:
    return x - anp.log(anp.sum(anp.exp(x), axis=axis, keepdims=True))


EXAMPLES: list[tuple[str, Callable[..., Any], Callable[..., Any]]] = [
    (
        "mean(relu(einsum('bi,ij->bj', X, W) + b) ** 2)",
        lambda X, W, b: eg.mean(eg.relu(eg.einsum("bi,ij->bj", X, W) + b) ** 2),
        lambda X, W, b: anp.mean(anp.maximum(anp.einsum("bi,ij->bj", X, W) + b, 0.0) ** 2),
    ),
    (
        "sum(tanh(X @ W).T ** 3) / 3 - sum(b * b)",
        lambda X, W, b: eg.sum(eg.tanh(X @ W).T ** 3) / 3 - eg.sum(b * b),
        lambda X, W, b: anp.sum(anp.tanh(X @ W).T ** 3) / 3 - anp.sum(b * b),
    ),
    (
        "-sum(log_softmax(matmul(X, W) + b, axis=1) * softmax(W.T @ X.T, axis=0))",
        lambda X, W, b: (
            -eg.sum(eg.log_softmax(eg.matmul(X, W) + b, axis=1) * eg.softmax(W.T @ X.T, axis=0))
        ),
        lambda X, W, b: -anp.sum(_log_softmax(X @ W + b, 1) * anp.exp(_log_softmax(W.T @ X.T, 0))),
    ),
    (
        "logsumexp(X, axis=(0, 1)) + mean(logsumexp(W, axis=-1)) + logsumexp(b)",
        lambda X, W, b: (
            eg.logsumexp(X, axis=(0, 1)) + eg.mean(eg.logsumexp(W, axis=-1)) + eg.logsumexp(b)
        ),
        lambda X, W, b: _lse(X, (0, 1)) + anp.mean(_lse(W, -1)) + _lse(b),
    ),
    (
        "mean(sqrt(X ** 2 + 1) + abs(X) * 2e-1 - sigmoid(+X) / 2, axis=None)",
        lambda X, W, b: eg.mean(eg.sqrt(X**2 + 1) + eg.abs(X) * 2e-1 - eg.sigmoid(X) / 2),
        lambda X, W, b: anp.mean(
            anp.sqrt(X**2 + 1) + anp.abs(X) * 2e-1 - 1 / (1 + anp.exp(-X)) / 2
        ),
    ),
    (
        "sum(maximum(X, 0.25) * minimum(transpose(W), -0.5)) + sum(exp(-b) * log(1 + b ** 2))",
        lambda X, W, b: (
            eg.sum(eg.maximum(X, 0.25) * eg.minimum(eg.transpose(W), -0.5))
            + eg.sum(eg.exp(-b) * eg.log(1 + b**2))
        ),
        lambda X, W, b: (
            anp.sum(anp.maximum(X, 0.25) * anp.minimum(W.T, -0.5))
            + anp.sum(anp.exp(-b) * anp.log(1 + b**2))
        ),
    ),
]


@pytest.mark.parametrize("with_shapes", [True, False], ids=["shapes", "no-shapes"])
@pytest.mark.parametrize(("source", "build", "ref"), EXAMPLES, ids=[s for s, _, _ in EXAMPLES])
def test_string_builds_the_python_expression(
    source: str, build: Callable[..., Any], ref: Callable[..., Any], with_shapes: bool
) -> None:
    shapes = SHAPES if with_shapes else {}
    variables = {n: eg.var(n, shapes.get(n)) for n in SHAPES}
    parsed = eg.parse_expr(source, shapes=shapes)
    built = build(**variables)
    assert parsed is built  # hash-consed: the same structure is the same node
    names = sorted(v.name for v in parsed.variables)
    rng = np.random.default_rng(0)
    arrays = {n: rng.normal(size=s) for n, s in SHAPES.items() if n in names}
    # Keep X, W away from the kinks of relu, maximum and minimum within an FD step.
    arrays = {n: a + np.sign(a) * 0.05 for n, a in arrays.items()}
    np.testing.assert_allclose(
        parsed(**arrays), ref(**{**dict.fromkeys(SHAPES), **arrays}), rtol=1e-12
    )
    from_string = eg.grad(source, names, shapes=shapes)
    from_python = eg.grad(built, names)
    values = eg.evaluate([*from_string, *from_python], **arrays)
    expected = autograd_gradients(lambda **a: ref(**{**dict.fromkeys(SHAPES), **a}), arrays, names)
    for k, name in enumerate(names):
        np.testing.assert_array_equal(values[k], values[k + len(names)])
        np.testing.assert_allclose(values[k], expected[k], rtol=1e-10, atol=1e-13)
        numeric = finite_difference(parsed, arrays, name)
        np.testing.assert_allclose(values[k], numeric, rtol=1e-5, atol=1e-7)


def test_existing_variables_are_reused() -> None:
    W = eg.var("W", (4, 3))
    by_list = eg.parse_expr("sum(X @ W)", variables=[W])
    by_mapping = eg.parse_expr("sum(X @ W)", variables={"W": W})
    assert W in by_list.variables and W in by_mapping.variables
    assert by_list is by_mapping is eg.sum(eg.var("X") @ W)


def test_numbers_and_unary_plus() -> None:
    X = eg.var("X")
    assert eg.parse_expr("+X") is X
    assert eg.parse_expr("X * 1e-3") is X * 1e-3
    assert eg.parse_expr("X ** 2") is X**2
    np.testing.assert_allclose(eg.parse_expr("0.5 * X + -2")(X=np.ones(2)), [-1.5, -1.5])


@pytest.mark.parametrize(
    ("source", "python"),
    [
        ("X * 2 ** -1", lambda x: x * 2**-1),
        ("X * 3 ** 40", lambda x: x * 3**40),
        ("X * (7 - 10) ** 3", lambda x: x * (7 - 10) ** 3),
        ("X / 4 * 2 ** 0.5", lambda x: x / 4 * 2**0.5),
        ("X * 10 ** 20", lambda x: x * 10**20),
    ],
)
def test_arithmetic_on_numbers_means_what_python_means(
    source: str, python: Callable[..., Any]
) -> None:
    """Number literals follow Python arithmetic: exact integers, not wrapping int64."""
    x = np.array([1.0, -2.0])
    X = eg.var("X")
    np.testing.assert_allclose(eg.parse_expr(source)(X=x), python(x), rtol=1e-15)
    np.testing.assert_allclose(python(X)(X=x), python(x), rtol=1e-15)


# --- rejected input ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("source", "underlined", "needle"),
    [
        ("__import__('os').system('x')", "__import__('os').system", "only the functions"),
        ("X.shape", "X.shape", "attribute 'shape'"),
        ("X.__class__", "X.__class__", "attribute '__class__'"),
        ("lambda: 1", "lambda: 1", "Lambda"),
        ("X[0]", "X[0]", "Subscript"),
        ("f(X)", "f", "unknown function 'f'"),
        ("sum(X) + print(X)", "print", "unknown function 'print'"),
        ("einsum(s, X)", "s", "spec string literal"),
        ("X if Y else Z", "X if Y else Z", "IfExp"),
        ("'abc'", "'abc'", "only numbers"),
        ("X * True", "True", "only numbers"),
        ("X * 1j", "1j", "only numbers"),
        ("sum(X, keepdims=True)", "True", "keyword 'keepdims'"),
        ("exp(X, axis=0)", "0", "keyword 'axis'"),
        ("sum(X, axis=a)", "a", "axis must be"),
        ("sum(X, axis=0.5)", "0.5", "axis must be"),
        ("sum(*X)", "*X", "*args"),
        ("sum(X, **k)", "k", "**kwargs"),
        ("X == Y", "X == Y", "Compare"),
        ("[X, Y]", "[X, Y]", "List"),
        ("X // Y", "X // Y", "FloorDiv"),
        ("~X", "~X", "Invert"),
        ("exp + X", "exp", "is a function"),
        ("sum(X) + (X := Y)", "X := Y", "NamedExpr"),
    ],
)
def test_rejected_with_a_caret(source: str, underlined: str, needle: str) -> None:
    with pytest.raises(eg.ParseError) as info:
        eg.parse_expr(source)
    message = str(info.value)
    assert needle in message
    column = assert_caret_under(message, source, underlined)
    assert f"(column {column + 1})" in message


@pytest.mark.parametrize(
    ("source", "column"), [("x +", 3), ("sum(X", 3), ("X +* Y", 3), ("exp(X))", 6), ("", 0)]
)
def test_syntax_errors_have_a_caret(source: str, column: int | None) -> None:
    """The caret is where Python's parser reports the error (after "x +" at the end)."""
    with pytest.raises(eg.ParseError, match="invalid syntax") as info:
        eg.parse_expr(source)
    text, at, _ = caret(str(info.value))
    assert text == source
    assert 0 <= at <= len(source)
    if column is not None:
        assert at == column
        assert f"(column {column + 1})" in str(info.value)


def test_overly_long_input() -> None:
    source = "+".join(["X"] * (MAX_LENGTH // 2 + 1))
    assert len(source) > MAX_LENGTH
    with pytest.raises(eg.ParseError, match=f"limit is {MAX_LENGTH:,}"):
        eg.parse_expr(source)
    core = "sum(" + "+".join(["X"] * 40) + ")"
    accepted = core + " " * (MAX_LENGTH - len(core))
    assert len(accepted) == MAX_LENGTH
    assert eg.parse_expr(accepted)(X=np.ones(1)) == 40.0


# --- any length and any nesting under the limit ------------------------------------------------

X_VALUE = np.array([0.3, -0.7])

#: Strings up to the length limit, with what numpy makes of them. CPython's own parser
#: gives up on each (RecursionError, MemoryError or "too many nested parentheses").
LONG_AND_DEEP: list[tuple[str, str, Callable[[Any], Any]]] = [
    ("a flat sum of 3,000 terms", "+".join(["X"] * 3000), lambda x: 3000 * x),
    ("a flat sum of 4,999 terms", "-".join(["X"] * 4999), lambda x: -4997 * x),
    (
        "4,999 products",
        "*".join(["X"] * 4999),
        lambda x: functools.reduce(operator.mul, [x] * 4999),
    ),
    ("500 parentheses", "(" * 500 + "X" + ")" * 500, lambda x: x),
    ("4,999 parentheses", "(" * 4999 + "X" + ")" * 4999, lambda x: x),
    ("5,000 minus signs", "-" * 5000 + "X", lambda x: x),
    ("9,999 minus signs", "-" * 9999 + "X", lambda x: -x),
    ("3,000 powers", "X" + "**1" * 3000, lambda x: x),
    ("1,600 nested calls", "tanh(" * 1600 + "X" + ")" * 1600, None),
    (
        "a sum of 2,999 terms in a call",
        "sum(" + "+".join(["X"] * 2999) + ")",
        lambda x: 2999 * x.sum(),
    ),
    ("2,000 sums in parentheses", "(X+" * 2000 + "X" + ")" * 2000, lambda x: 2001 * x),
]


def _nested_tanh(x: Any) -> Any:
    for _ in range(1600):
        x = np.tanh(x)
    return x


@pytest.mark.parametrize(
    ("what", "source", "numpy"), LONG_AND_DEEP, ids=[w for w, _, _ in LONG_AND_DEEP]
)
def test_anything_under_the_length_limit_parses(
    what: str, source: str, numpy: Callable[[Any], Any] | None
) -> None:
    assert len(source) <= MAX_LENGTH, what
    expected = (numpy or _nested_tanh)(X_VALUE)
    np.testing.assert_allclose(eg.parse_expr(source)(X=X_VALUE), expected, rtol=1e-12)


def test_deep_input_outside_the_language_is_a_located_error() -> None:
    """Python's parser reads it no deeper than 200 brackets; the caret goes under the
    first token the language lacks."""
    source = "(" * 300 + "lambda: X" + ")" * 300
    with pytest.raises(eg.ParseError, match="'lambda' is not part of the expression language"):
        eg.parse_expr(source)
    with pytest.raises(eg.ParseError) as info:
        eg.parse_expr(source)
    assert_caret_under(str(info.value), source, "lambda")
    with pytest.raises(eg.ParseError, match="Lambda is not part"):
        eg.parse_expr("(" * 100 + "lambda: X" + ")" * 100)  # Python reads it: its node is named


def test_reading_is_near_linear_in_the_length() -> None:
    """A generous bound (the reader was quadratic in nothing, but CPython's limits made the
    long inputs errors): four times the text may take at most ten times as long."""

    def seconds(source: str) -> float:
        best = float("inf")
        for _ in range(3):
            start = time.perf_counter()
            eg.parse_expr(source)
            best = min(best, time.perf_counter() - start)
        return best

    for make in (lambda n: "+".join(["X"] * n), lambda n: "(" * n + "X" + ")" * n):
        assert seconds(make(2400)) < 10 * seconds(make(600)) + 0.05


def test_a_10_mb_string_is_refused_at_once() -> None:
    start = time.perf_counter()
    with pytest.raises(eg.ParseError, match="10,000,000 characters long; the limit is 10,000"):
        eg.parse_expr("X" * 10_000_000)
    assert time.perf_counter() - start < 1.0  # generous


def test_pathological_nesting_is_a_parse_error_not_a_crash() -> None:
    with pytest.raises(eg.ParseError, match="limit"):
        eg.parse_expr("(" * 5000 + "X" + ")" * 5000)


# --- carets after non-ASCII text ------------------------------------------------------------------


@pytest.mark.parametrize(
    "prefix", ["α + ", "中文 + ", "αβγ * 中 - ", "sum(ñ) + ", "é + "], ids=repr
)
def test_the_caret_counts_characters_not_bytes(prefix: str) -> None:
    source = prefix + "bogus(x)"
    with pytest.raises(eg.ParseError) as info:
        eg.parse_expr(source)
    column = assert_caret_under(str(info.value), source, "bogus")
    assert f"(column {column + 1})" in str(info.value)


@pytest.mark.parametrize(
    ("source", "underlined"),
    [
        ("'😀😀' + X $", "$"),  # Python's syntax error, after emoji in a string
        ("αβ中 + (X if Y else Z)", "X if Y else Z"),  # Python's tree, its columns converted
        ("中 + X[0]", "X[0]"),
        ("einsum('ij->ji', 中) + 😀", "😀"),
    ],
)
def test_carets_after_non_ascii_text_in_every_path(source: str, underlined: str) -> None:
    with pytest.raises(eg.ParseError) as info:
        eg.parse_expr(source)
    assert_caret_under(str(info.value), source, underlined)


def test_a_caret_on_a_later_line_names_the_line() -> None:
    with pytest.raises(eg.ParseError) as info:
        eg.parse_expr("sum(α\n + bogus(X))")
    assert "(line 2, column 4)" in str(info.value)
    assert_caret_under(str(info.value), " + bogus(X))", "bogus")


# --- numbers must be finite floats ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("source", "underlined", "needle"),
    [
        ("X * 10**400", "10**400", "is inf as a float"),
        ("X * 0x" + "F" * 300, "0x" + "F" * 300, "too large for a float"),
        ("X * " + "1" * 400, "1" * 400, "too large for a float"),
        ("X * " + "9" * 5000, "9" * 5000, "5,000 digits"),
        ("X * 1e400", "1e400", "too large for a float (it would be inf)"),
        ("X - -1e309", "1e309", "it would be inf"),
        ("X + 1e200 * 1e200", "1e200 * 1e200", "is inf as a float"),
        ("X * (1 / 0)", "1 / 0", "division by zero"),
        ("X * 2 ** 1024", "2 ** 1024", "is inf"),
        ("X * (-8) ** 0.5", "(-8) ** 0.5", "no real value"),
        ("sum(X, axis=" + "1" * 30 + ")", "1" * 30, "at most 64 axes"),
    ],
)
def test_numbers_beyond_a_float_are_located_errors(
    source: str, underlined: str, needle: str
) -> None:
    with pytest.raises(eg.ParseError) as info:
        eg.parse_expr(source)
    assert needle in str(info.value)
    assert_caret_under(str(info.value), source, underlined)


def test_numbers_a_float_holds_are_read() -> None:
    x = np.array([0.5, -0.25])
    for source, value in [
        ("X * 2 ** 1023", 2.0**1023),
        ("X * 1e308", 1e308),
        ("X * 0x" + "F" * 200, float(int("F" * 200, 16))),
    ]:
        np.testing.assert_allclose(eg.parse_expr(source)(X=x), x * value, rtol=1e-15)


def test_grad_of_a_bad_string_is_a_parse_error() -> None:
    with pytest.raises(eg.ParseError):
        eg.grad("sum(X) +", "X")


def test_spec_and_shape_errors_keep_their_class_and_say_where() -> None:
    with pytest.raises(eg.SpecError, match=r"in: einsum\('i->j', X\)"):
        eg.parse_expr("sum(X) + einsum('i->j', X)")
    with pytest.raises(eg.ShapeError, match=r"in: X @ W"):
        eg.parse_expr("sum(X @ W)", shapes={"X": (2, 3), "W": (4, 5)})


# --- nothing is executed ------------------------------------------------------------------------


def test_nothing_in_the_string_is_executed(tmp_path: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    target = tmp_path / "pwned"
    attempts = [
        f"__import__('pathlib').Path(r'{target}').write_text('x')",
        f"open(r'{target}', 'w').write('x')",
        f"sum(X) + [open(r'{target}', 'w') for _ in X]",
        f"(lambda: open(r'{target}', 'w'))()",
        f"X if open(r'{target}', 'w') else X",
        f"exp(X)[open(r'{target}', 'w')]",
        f"sum(X, axis=open(r'{target}', 'w'))",
        f"einsum(open(r'{target}', 'w'), X)",
    ]

    def forbidden(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("parse_expr evaluated Python code")

    monkeypatch.setattr(builtins, "eval", forbidden)
    monkeypatch.setattr(builtins, "exec", forbidden)
    monkeypatch.setattr(builtins, "open", forbidden)
    for source in attempts:
        with pytest.raises(eg.ParseError):
            eg.parse_expr(source)
    # Valid strings parse without eval/exec too.
    assert isinstance(eg.parse_expr("sum(exp(X) @ W.T, axis=0)"), eg.Expr)
    monkeypatch.undo()
    assert not target.exists()


def test_a_misspelled_shape_entry_is_a_variable_error_listing_the_variables() -> None:
    # W is given a shape, Q is used: Q would be silently shapeless and W ignored.
    with pytest.raises(eg.VariableError) as info:
        eg.grad("mean(relu(X @ Q))", wrt="X", shapes={"X": (2, 3), "W": (3, 4)})
    message = str(info.value)
    assert "'W'" in message and "leaves Q without a shape" in message
    assert "its variables: Q, X" in message
    with pytest.raises(eg.VariableError, match=r"'w'.*leaves W without a shape"):
        eg.parse_expr("sum(X @ W)", shapes={"X": (2, 3), "w": (3, 4)})
    with pytest.raises(eg.VariableError, match=r"'w'.*leaves W without a shape"):
        eg.explain("sum(X @ W)", "W", shapes={"X": (2, 3), "w": (3, 4)})


def test_one_dict_of_shapes_serves_every_expression_of_a_model() -> None:
    # An extra entry while every variable has its shape ignores nothing the user meant.
    model = {"X": (2, 3), "W": (3, 4), "b": (4,), "dY": (2, 4)}
    assert eg.parse_expr("X @ W", shapes=model).shape == (2, 4)
    assert eg.parse_expr("X @ W + b", shapes=model).shape == (2, 4)


def test_names_are_variables_never_python_objects() -> None:
    expr = eg.parse_expr("open + np * __builtins__")
    assert sorted(v.name for v in expr.variables) == ["__builtins__", "np", "open"]
    assert expr(open=np.ones(2), np=np.full(2, 2.0), __builtins__=np.full(2, 3.0)).tolist() == [
        7.0,
        7.0,
    ]


# --- random expression trees ------------------------------------------------------------------

N = 3  # every axis has this size, so broadcasting and matmul always fit
KINKED = {"relu", "abs", "maximum", "minimum"}
UNARY = ["tanh", "sigmoid", "relu", "abs", "neg", "gauss", "log1", "sqrt1"]
BINARY = ["+", "-", "*", "/", "maximum", "minimum"]
NUMBERS = [2, 0.5, -1.5, 3, 0.25]
REDUCE = ["sum", "mean", "logsumexp", "softmax", "log_softmax"]


@st.composite
def trees(draw: st.DrawFn, depth: int, vector_matmul: bool) -> tuple[Any, int]:
    """A random expression tree over the whitelist and its rank (every axis has size N)."""
    if depth == 0 or draw(st.integers(0, 4)) == 0:
        return ("var", draw(st.sampled_from(["X", "Y"]))), 2
    kind = draw(
        st.sampled_from(["unary", "binary", "number", "pow", "reduce", "T", "matmul", "einsum"])
    )
    child, rank = draw(trees(depth - 1, vector_matmul))
    if kind == "unary":
        return ("unary", draw(st.sampled_from(UNARY)), child), rank
    if kind == "binary":
        other, other_rank = draw(trees(depth - 1, vector_matmul))
        return ("binary", draw(st.sampled_from(BINARY)), child, other), max(rank, other_rank)
    if kind == "number":
        op = draw(st.sampled_from(["+", "-", "*", "maximum", "minimum"]))
        number = draw(st.sampled_from(NUMBERS))
        return ("number", op, child, number, draw(st.booleans())), rank
    if kind == "pow":
        return ("pow", child, draw(st.sampled_from([1, 2, 3]))), rank
    if kind == "reduce":
        name = draw(st.sampled_from(REDUCE))
        axes: list[Any] = [None] if rank == 0 else [None, 0, -1, tuple(range(rank))]
        axis = draw(st.sampled_from(axes))
        if name in ("softmax", "log_softmax"):
            return ("reduce", name, child, axis), rank
        kept = 0 if axis is None else rank - (len(axis) if isinstance(axis, tuple) else 1)
        return ("reduce", name, child, axis), kept
    if kind == "T" and rank == 2:
        return ("T", child, draw(st.booleans())), 2
    if kind == "matmul" and rank >= 1:
        other, other_rank = draw(trees(depth - 1, vector_matmul))
        if other_rank >= 1 and (vector_matmul or (rank == 2 and other_rank == 2)):
            out_rank = rank + other_rank - 2
            return ("matmul", child, other, draw(st.booleans())), out_rank
    if kind == "einsum" and rank >= 1:
        pairwise = draw(st.booleans())
        if rank == 1:
            return (("einsum", "i,i->", child, child) if pairwise else ("einsum", "i->", child)), 0
        return (
            ("einsum", "ij,jk->ik", child, child) if pairwise else ("einsum", "ij->ji", child)
        ), 2
    return ("unary", "tanh", child), rank


def render_string(t: Any) -> str:
    kind = t[0]
    if kind == "var":
        return t[1]
    if kind == "unary":
        c = render_string(t[2])
        return {
            "neg": f"-({c})",
            "gauss": f"exp(-({c}) ** 2)",
            "log1": f"log(1 + ({c}) ** 2)",
            "sqrt1": f"sqrt(1 + ({c}) ** 2)",
        }.get(t[1], f"{t[1]}({c})")
    if kind == "binary":
        a, b = render_string(t[2]), render_string(t[3])
        if t[1] in ("maximum", "minimum"):
            return f"{t[1]}({a}, {b})"
        if t[1] == "/":
            return f"({a}) / (1 + ({b}) ** 2)"
        return f"({a}) {t[1]} ({b})"
    if kind == "number":
        _, op, child, number, left = t
        a, n = render_string(child), f"({number})"
        if op in ("maximum", "minimum"):
            return f"{op}({n}, {a})" if left else f"{op}({a}, {n})"
        return f"{n} {op} ({a})" if left else f"({a}) {op} {n}"
    if kind == "pow":
        return f"({render_string(t[1])}) ** {t[2]}"
    if kind == "reduce":
        _, name, child, axis = t
        return f"{name}({render_string(child)}, axis={axis})"
    if kind == "T":
        c = render_string(t[1])
        return f"({c}).T" if t[2] else f"transpose({c})"
    if kind == "matmul":
        a, b = render_string(t[1]), render_string(t[2])
        return f"({a}) @ ({b})" if t[3] else f"matmul({a}, {b})"
    if kind == "einsum":
        return f"einsum('{t[1]}', {', '.join(render_string(c) for c in t[2:])})"
    raise AssertionError(t)


def _binary(op: str, a: Any, b: Any, maximum: Any, minimum: Any) -> Any:
    if op == "+":
        return a + b
    if op == "-":
        return a - b
    if op == "*":
        return a * b
    if op == "/":
        return a / (1 + b**2)
    return (maximum if op == "maximum" else minimum)(a, b)


def render(t: Any, env: Mapping[str, Any], lib: str) -> Any:
    """Build tree ``t`` with einsgrad's Python API (``lib="eg"``) or autograd (``"ag"``)."""
    kind = t[0]
    m = eg if lib == "eg" else anp
    if kind == "var":
        return env[t[1]]
    if kind == "unary":
        c = render(t[2], env, lib)
        name = t[1]
        if name == "neg":
            return -c
        if name == "gauss":
            return m.exp(-(c**2))
        if name == "log1":
            return m.log(1 + c**2)
        if name == "sqrt1":
            return m.sqrt(1 + c**2)
        if lib == "eg":
            return getattr(eg, name)(c)
        return {
            "tanh": anp.tanh,
            "sigmoid": lambda v: 1 / (1 + anp.exp(-v)),
            "relu": lambda v: anp.where(v > 0, v, 0.0),  # relu'(0) = 0, like einsgrad
            "abs": anp.abs,
        }[name](c)
    if kind == "binary":
        a, b = render(t[2], env, lib), render(t[3], env, lib)
        return _binary(t[1], a, b, m.maximum, m.minimum)
    if kind == "number":
        _, op, child, number, left = t
        a = render(child, env, lib)
        return (
            _binary(op, number, a, m.maximum, m.minimum)
            if left
            else _binary(op, a, number, m.maximum, m.minimum)
        )
    if kind == "pow":
        return render(t[1], env, lib) ** t[2]
    if kind == "reduce":
        _, name, child, axis = t
        c = render(child, env, lib)
        if lib == "eg":
            return getattr(eg, name)(c, axis=axis)
        if name == "sum":
            return anp.sum(c, axis=axis)
        if name == "mean":
            return anp.mean(c, axis=axis)
        if name == "logsumexp":
            return _lse(c, axis)
        if name == "log_softmax":
            return _log_softmax(c, axis)
        return anp.exp(_log_softmax(c, axis))
    if kind == "T":
        c = render(t[1], env, lib)
        return c.T if (t[2] or lib == "ag") else eg.transpose(c)
    if kind == "matmul":
        a, b = render(t[1], env, lib), render(t[2], env, lib)
        return a @ b if (t[3] or lib == "ag") else eg.matmul(a, b)
    if kind == "einsum":
        return m.einsum(t[1], *(render(c, env, lib) for c in t[2:]))
    raise AssertionError(t)


def kinked(t: Any) -> bool:
    if not isinstance(t, tuple):
        return False
    return any(isinstance(x, str) and x in KINKED for x in t) or any(kinked(x) for x in t)


@st.composite
def cases(draw: st.DrawFn) -> tuple[Any, bool]:
    declared = draw(st.booleans())
    tree, _ = draw(trees(3, vector_matmul=declared))
    return tree, declared


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(cases(), st.integers(0, 2**16))
def test_random_trees_parse_to_the_python_expression(case: tuple[Any, bool], seed: int) -> None:
    tree, declared = case
    shapes = {"X": (N, N), "Y": (N, N)} if declared else {}
    env = {n: eg.var(n, shapes.get(n)) for n in ("X", "Y")}
    source = render_string(tree)
    parsed = eg.parse_expr(source, shapes=shapes)
    built = render(tree, env, "eg")
    assert parsed is built, source

    rng = np.random.default_rng(seed)
    arrays = {n: rng.uniform(-1, 1, size=(N, N)) for n in ("X", "Y")}
    used = sorted(v.name for v in parsed.variables)
    arrays = {n: arrays[n] for n in used}
    value = parsed(**arrays)
    np.testing.assert_allclose(value, render(tree, arrays, "ag"), rtol=1e-10, atol=1e-12)

    loss = eg.sum(parsed)
    grads = eg.evaluate(list(eg.grad(loss, used)), **arrays)
    from_string = eg.evaluate(list(eg.grad(f"sum({source})", used, shapes=shapes)), **arrays)
    expected = autograd_gradients(lambda **a: anp.sum(render(tree, a, "ag")), arrays, used)
    for k, name in enumerate(used):
        np.testing.assert_array_equal(grads[k], from_string[k])
        np.testing.assert_allclose(grads[k], expected[k], rtol=1e-8, atol=1e-10, err_msg=source)
        if not kinked(tree):  # finite differences are meaningless across a kink
            numeric = finite_difference(loss, arrays, name)
            np.testing.assert_allclose(grads[k], numeric, rtol=1e-5, atol=1e-6, err_msg=source)
