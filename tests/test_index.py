"""Index notation in and out: ``eg.parse`` against numpy by hand, and ``to_index`` back.

* Semantics, each case against a numpy computation written out by hand: Einstein sums,
  a broadcast bias, function scope (``relu(Σ_i X W)``, not ``Σ_i relu(X W)``),
  ``tanh(M·v)``, multi-letter labels, repeated labels (diagonals), division, powers, unary
  minus, numbers and scalar variables.
* Errors point at the offending text with a caret (checked with ``tests/oracles.py``).
* ``to_index``, ``to_latex``, ``to_einsum`` and ``to_matrix`` on known cases; the numpy
  style of ``to_matrix`` is run by numpy itself.
* Hypothesis: random index equations over a few variables with consistent label sizes
  are parsed and compared with an interpreter of the documented rules written here in
  numpy (Einstein sums per additive term, function scope, powers keeping their base's
  labels); and parse → to_index → parse must give the same values.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, note, settings
from hypothesis import strategies as st
from hypothesis.strategies import DrawFn, composite
from oracles import assert_caret_under, assert_close, caret

import einsgrad as eg

REPRODUCIBLE = settings(
    derandomize=True,
    database=None,
    deadline=None,
    report_multiple_bugs=False,  # shrink one failure, not every distinct one
    suppress_health_check=[HealthCheck.too_slow],
)

SHAPES = {"X": (2, 3), "W": (3, 4), "c": (4,), "M": (3, 3), "v": (3,), "u": (4,), "s": ()}


def arrays(seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    return {name: rng.standard_normal(shape) for name, shape in SHAPES.items()}


def run(expr: eg.Expr, values: Mapping[str, np.ndarray]) -> np.ndarray:
    used = {v.name for v in expr.variables}
    return np.asarray(eg.evaluate(expr, {k: v for k, v in values.items() if k in used}))


def np_relu(x: np.ndarray) -> np.ndarray:
    return np.maximum(x, 0.0)


def np_sigmoid(x: np.ndarray) -> np.ndarray:
    return 1 / (1 + np.exp(-x))


# --- semantics against numpy by hand --------------------------------------------------------

A = arrays()
X, W, c, M, v, u, s = (A[k] for k in ("X", "W", "c", "M", "v", "u", "s"))
POSITIVE_V = np.abs(v) + 1.0

HAND: list[tuple[str, np.ndarray]] = [
    # Einstein sums: i occurs twice on the right and not on the left, so it is summed.
    ("Y[b,j] = X[b,i] * W[i,j]", X @ W),
    ("Y[j,b] = X[b,i] * W[i,j]", (X @ W).T),
    ("Y[b] = X[b,i] * W[i,j]", (X @ W).sum(axis=1)),
    ("Y = X[b,i] * W[i,j]", (X @ W).sum()),
    ("Y[b,i,j] = X[b,i] * W[i,j]", X[:, :, None] * W[None, :, :]),
    # a broadcast bias
    ("Y[b,j] = X[b,i] * W[i,j] + c[j]", X @ W + c),
    ("Y[b,j] = c[j] + X[b,i] * W[i,j]", X @ W + c),
    ("Y[i,j] = v[i] + u[j]", v[:, None] + u[None, :]),
    ("Y[i,j] = v[i] + v[j]", v[:, None] + v[None, :]),  # pairwise sums of one vector
    ("Y[i,j] = v[i] - v[j] + 1", v[:, None] - v[None, :] + 1),
    # Einstein per additive term: Σ_i X_bi + 1, not Σ_i (X_bi + 1)
    ("Y[b] = X[b,i] + 1", X.sum(axis=1) + 1),
    ("Y = v[i] * v[i] + u[j]", v @ v + u.sum()),
    # function scope: a label only inside the argument is summed inside it
    ("Y[b,j] = relu(X[b,i] * W[i,j])", np_relu(X @ W)),
    ("out[p] = tanh(M[p,q] * v[q])", np.tanh(M @ v)),
    ("Y[b] = sigmoid(X[b,i] * v[i]) * 2", 2 * np_sigmoid(X @ v)),
    # ... but a label shared with a factor outside the call is summed outside it
    ("Y[b,j] = relu(X[b,i]) * W[i,j]", np_relu(X) @ W),
    ("Y[p] = tanh(M[p,q]) * v[q]", np.tanh(M) @ v),
    ("Y[b,j] = exp(X[b,i] * W[i,j]) * c[j]", np.exp(X @ W) * c),
    # multi-letter labels
    ("Y[batch, out] = X[batch, feat] * W[feat, out]", X @ W),
    ("Y[out] = W[feat, out] * v[feat]", v @ W),
    # repeated labels: the diagonal
    ("Y[i] = M[i,i]", np.diag(M)),
    ("Y = M[i,i]", np.trace(M)),
    ("Y[i] = M[i,i] * v[i]", np.diag(M) * v),
    ("Y[i,j] = M[i,i] * M[j,j]", np.outer(np.diag(M), np.diag(M))),
    # division, powers, unary minus, numbers, scalar variables
    ("Y[b] = X[b,i] / p[i]", X @ (1 / POSITIVE_V)),
    ("Y[b,j] = X[b,i] * W[i,j] / 2", X @ W / 2),
    ("Y[b] = X[b,i] ** 2", (X**2).sum(axis=1)),
    ("Y[b] = (X[b,i] * v[i]) ** 2", ((X * v) ** 2).sum(axis=1)),
    # ... and a power of a call squares the call: i stays summed inside relu and tanh
    ("Y[b] = relu(X[b,i] * v[i]) ** 2", np_relu(X @ v) ** 2),
    ("Y[b] = tanh(X[b,i]) ** 2", np.tanh(X.sum(axis=1)) ** 2),
    ("Y[b,j] = -X[b,i] * W[i,j]", -(X @ W)),
    ("Y[i] = -(v[i] - 2.5)", 2.5 - v),
    ("Y[i] = 2 * v[i] + 0.5", 2 * v + 0.5),
    ("Y[i] = s * v[i]", s * v),
    ("Y[b,j] = (X[b,i] + v[i]) * W[i,j]", (X + v) @ W),
    ("Y[b] = X[b,i] * v[i] - X[b,i] * v[i]", np.zeros(2)),
    ("Y = 3", np.asarray(3.0)),
]


@pytest.mark.parametrize(("source", "expected"), HAND, ids=[h[0] for h in HAND])
def test_parse_against_numpy_by_hand(source: str, expected: np.ndarray) -> None:
    shapes = {**SHAPES, "p": (3,)}
    expr = eg.parse(source, shapes=shapes)
    assert expr.shape == np.shape(expected)
    assert_close(run(expr, {**A, "p": POSITIVE_V}), np.asarray(expected), source)


def test_function_scope_is_not_the_sum_of_the_function() -> None:
    # relu(Σ_i X_bi W_ij) and Σ_i relu(X_bi W_ij) differ, and parse gives the former.
    expr = eg.parse("Y[b,j] = relu(X[b,i] * W[i,j])", shapes=SHAPES)
    scoped = np_relu(X @ W)
    outside = np_relu(X[:, :, None] * W[None, :, :]).sum(axis=1)
    assert not np.allclose(scoped, outside)
    assert_close(run(expr, A), scoped, "relu(Σ_i X W)")


def test_the_axes_follow_the_left_side() -> None:
    for left, perm in (("Y[b,j,i]", (0, 2, 1)), ("Y[i,b,j]", (1, 0, 2)), ("Y[j,i,b]", (2, 1, 0))):
        expr = eg.parse(f"{left} = X[b,i] * W[i,j]", shapes=SHAPES)
        full = X[:, :, None] * W[None, :, :]  # axes b, i, j
        assert_close(run(expr, A), full.transpose(perm), left)


def test_existing_variables_are_used() -> None:
    x = eg.var("X", (2, 3))
    expr = eg.parse("Y[b] = X[b,i]", variables=[x])
    assert expr.variables == (x,)
    assert_close(run(expr, A), X.sum(axis=1), "Y[b] = X[b,i]")


def test_unknown_shapes_are_left_to_the_arrays() -> None:
    expr = eg.parse("Y[b,j] = X[b,i] * W[i,j]")
    assert_close(np.asarray(eg.evaluate(expr, {"X": X, "W": W})), X @ W, "no shapes")


# --- errors, with carets ------------------------------------------------------------------------


def test_left_label_missing_on_the_right_is_underlined() -> None:
    source = "Y[b,k] = X[b,i] * W[i,j]"
    with pytest.raises(eg.ParseError) as info:
        eg.parse(source, shapes=SHAPES)
    message = str(info.value)
    assert "label 'k' on the left appears nowhere on the right" in message
    assert assert_caret_under(message, source, "k") == 4


def test_multi_letter_left_label_missing_is_underlined_whole() -> None:
    source = "Y[batch, out] = X[batch, feat]"
    with pytest.raises(eg.ParseError) as info:
        eg.parse(source, shapes=SHAPES)
    assert "label 'out'" in str(info.value)
    assert_caret_under(str(info.value), source, "out")


def test_size_disagreement_names_the_label() -> None:
    with pytest.raises(eg.ShapeError) as info:
        eg.parse("Y[b,j] = X[b,i] * W[j,i]", shapes=SHAPES)
    message = str(info.value)
    assert "label 'i'" in message
    assert "size 4" in message and "size 3" in message
    assert "X[b,i] * W[j,i]" in message
    # In a broadcast sum too.
    with pytest.raises(eg.ShapeError, match="label 'i'"):
        eg.parse("Y[i] = X[b,i] * c[i]", shapes=SHAPES)


@pytest.mark.parametrize(
    ("source", "underlined", "needle"),
    [
        ("Y[b,j] = foo(X[b,i] * W[i,j])", "foo", "unknown function"),
        ("Y[b,j] = X[b,2]", "2", "an index label must be a name"),
        ("Y[b,j] = X[b,i] ** W[i,j]", "W[i,j]", "an exponent must be a number"),
        ("Y[b,b] = X[b,b]", "Y[b,b]", "a label repeats on the left side"),
        ("Y[b] = relu + X[b,i]", "relu", "'relu' is a function"),
        ("Y[b] = X[b,i] @ v[i]", "X[b,i] @ v[i]", "not part of index notation"),
        ("Y[b] = X[b,i] * 'a'", "'a'", "only numbers"),
        ("Y[b] = relu(X[b,i], v[i])", "relu(X[b,i], v[i])", "takes one argument"),
    ],
)
def test_errors_are_underlined(source: str, underlined: str, needle: str) -> None:
    with pytest.raises(eg.ParseError) as info:
        eg.parse(source, shapes=SHAPES)
    assert needle in str(info.value)
    assert_caret_under(str(info.value), source, underlined)


@pytest.mark.parametrize("source", ["X[b,i] * W[i,j]", "Y[b] == X[b,i]", "a = b = X[i]", "Y += 1"])
def test_not_an_equation(source: str) -> None:
    with pytest.raises(eg.ParseError, match="expected one equation"):
        eg.parse(source, shapes=SHAPES)


def test_syntax_error_caret_at_the_error() -> None:
    source = "Y[b,j] = X[b,i] * W[i,j] +"
    with pytest.raises(eg.ParseError, match="invalid syntax") as info:
        eg.parse(source, shapes=SHAPES)
    quoted, column, _ = caret(str(info.value))
    assert quoted == source
    assert column == len(source)  # just after the dangling "+"


def test_not_a_string() -> None:
    with pytest.raises(eg.ParseError, match="string"):
        eg.parse(3)  # type: ignore[arg-type]


# --- writing out: to_index, to_latex, to_einsum, to_matrix ---------------------------------------


def test_to_index_and_to_latex_known_cases() -> None:
    cases = [
        (
            "Y[b,j] = X[b,i] * W[i,j] + c[j]",
            "Y[i,j] = X[i,k] * W[k,j] + c[j]",
            "Y_{ij} = \\sum_{k} X_{ik} W_{kj} + c_{j}",
        ),
        (
            "Y[b,j] = relu(X[b,i] * W[i,j])",
            "Y[i,j] = relu(X[i,k] * W[k,j])",
            "Y_{ij} = \\operatorname{relu}\\left(\\sum_{k} X_{ik} W_{kj}\\right)",
        ),
        (
            "Y[j,b] = X[b,i] * W[i,j]",
            "Y[i,j] = X[j,k] * W[k,i]",
            "Y_{ij} = \\sum_{k} X_{jk} W_{ki}",
        ),
        ("Y = M[i,i]", "Y = M[i,i]", "Y = \\sum_{i} M_{ii}"),
        ("Y[b] = X[b,i]", "Y[i] = X[i,j]", "Y_{i} = \\sum_{j} X_{ij}"),
    ]
    for source, index, latex in cases:
        expr = eg.parse(source, shapes=SHAPES)
        assert expr.to_index() == index, source
        assert expr.to_latex() == latex, source
    assert eg.parse("Y[b] = X[b,i]", shapes=SHAPES).to_index("dW") == "dW[i] = X[i,j]"


def test_to_index_of_a_built_expression() -> None:
    x, w = eg.var("X", (2, 3)), eg.var("W", (3, 4))
    assert (x @ w).to_index("H") == "H[i,j] = X[i,k] * W[k,j]"
    assert eg.tanh(x @ w).to_latex() == (
        "Y_{ij} = \\operatorname{tanh}\\left(\\sum_{k} X_{ik} W_{kj}\\right)"
    )
    with pytest.raises(eg.EinsgradError, match="static shapes"):
        (eg.var("A") @ eg.var("B")).to_index()


def _run_einsum_call(text: str) -> np.ndarray:
    """Run "einsum('spec', A, B)" with numpy on the arrays named in it."""
    match = re.fullmatch(r"einsum\('([^']*)', (.*)\)", text)
    assert match, text
    names = match.group(2).split(", ")
    return np.einsum(match.group(1), *(A[n] for n in names))


def test_to_einsum_known_cases() -> None:
    x, w = eg.var("X", (2, 3)), eg.var("W", (3, 4))
    assert (x @ w).to_einsum() == "einsum('ij,jk->ik', X, W)"  # the spec as built
    for source, expected in [
        ("Y[b,j] = X[b,i] * W[i,j]", X @ W),
        ("Y[j,b] = X[b,i] * W[i,j]", (X @ W).T),
        ("Y[b] = X[b,i]", X.sum(axis=1)),
        ("Y[i] = M[i,i] * v[i]", np.diag(M) * v),
    ]:
        text = eg.parse(source, shapes=SHAPES).to_einsum()
        assert_close(_run_einsum_call(text), expected, f"{source} -> {text}")
    with pytest.raises(eg.EinsgradError, match="not a single einsum of variables"):
        eg.parse("Y[b,j] = relu(X[b,i] * W[i,j])", shapes=SHAPES).to_einsum()
    with pytest.raises(eg.EinsgradError, match="not a single einsum of variables"):
        eg.parse("Y[b,j] = X[b,i] * W[i,j] + c[j]", shapes=SHAPES).to_einsum()


def test_to_einsum_of_an_inner_product() -> None:
    # einsum('bi,bi->', X, V) is one einsum of variables; simplify rewrites it as
    # sum(X * V), and to_einsum then refuses it.
    x, x2 = eg.var("X", (2, 3)), eg.var("V", (2, 3))
    text = eg.einsum("bi,bi->", x, x2).to_einsum()
    assert re.fullmatch(r"einsum\('(\w\w,\w\w->)', (X, V|V, X)\)", text), text


MATRIX: list[tuple[str, Any, str, str]] = [
    # (name, build from (X, W, V, a, cv), math, numpy)
    ("X @ W", lambda X, W, V, a, cv: X @ W, "X·W", "X @ W"),
    ("X.T @ V", lambda X, W, V, a, cv: X.T @ V, "Xᵀ·V", "X.T @ V"),
    ("(X @ W).T", lambda X, W, V, a, cv: (X @ W).T, "(X·W)ᵀ", "(X @ W).T"),
    ("sum rows", lambda X, W, V, a, cv: eg.sum(X, axis=0), "1ᵀ·X", "sum(X, axis=0)"),
    ("sum columns", lambda X, W, V, a, cv: eg.sum(X, axis=1), "X·1", "sum(X, axis=1)"),
    ("sum all", lambda X, W, V, a, cv: eg.sum(X), "1ᵀ·X·1", "sum(X)"),
    ("hadamard", lambda X, W, V, a, cv: X * V, "X ⊙ V", "X * V"),
    ("matvec", lambda X, W, V, a, cv: X @ a, "X·a", "X @ a"),
    ("vecmat", lambda X, W, V, a, cv: a @ W, "a·W", "a @ W"),
    ("inner", lambda X, W, V, a, cv: eg.einsum("i,i->", a, a), "a·a", "a @ a"),
    ("scaled", lambda X, W, V, a, cv: 2 * X, "2 · X", "2 * X"),
    ("tanh", lambda X, W, V, a, cv: eg.tanh(X @ W), "tanh(X·W)", "tanh(X @ W)"),
]


@pytest.mark.parametrize(
    ("build", "math", "numpy_style"), [m[1:] for m in MATRIX], ids=[m[0] for m in MATRIX]
)
def test_to_matrix_known_cases(build: Any, math: str, numpy_style: str) -> None:
    expr = build(*_matrix_vars())
    assert expr.to_matrix() == math
    assert expr.to_matrix(style="math") == math
    assert expr.to_matrix(style="numpy") == numpy_style


def _matrix_vars() -> tuple[eg.Expr, ...]:
    return (
        eg.var("X", (2, 3)),
        eg.var("W", (3, 4)),
        eg.var("V", (2, 3)),
        eg.var("a", (3,)),
        eg.var("cv", (4,)),
    )


def _numpy_value(text: str, values: Mapping[str, np.ndarray]) -> np.ndarray:
    # The numpy style names np.sum and np.einsum as sum and einsum (einsgrad's spelling).
    namespace = {"tanh": np.tanh, "sum": np.sum, "einsum": np.einsum, **values}
    return np.asarray(eval(text, {"__builtins__": {}}, namespace))


MATRIX_VALUES = {
    "X": A["X"],
    "W": A["W"],
    "V": np.random.default_rng(1).standard_normal((2, 3)),
    "a": A["v"],
    "cv": A["u"],
}


@pytest.mark.parametrize(
    "build",
    [m[1] for m in MATRIX]
    + [
        lambda X, W, V, a, cv: X @ V.T,
        lambda X, W, V, a, cv: eg.einsum("i,j->ij", a, cv),
        lambda X, W, V, a, cv: eg.einsum("i,j->ji", a, cv),
    ],
    ids=[m[0] for m in MATRIX] + ["X @ V.T", "outer", "outer transposed"],
)
def test_numpy_style_matrix_form_runs_in_numpy(build: Any) -> None:
    # The numpy style is code: numpy must compute the expression's value from it.
    expr = build(*_matrix_vars())
    text = expr.to_matrix(style="numpy")
    assert text is not None
    try:
        got = _numpy_value(text, MATRIX_VALUES)
    except ValueError as error:
        pytest.fail(f"{text!r} does not run in numpy: {error}")
    assert_close(got, run(expr, MATRIX_VALUES), text)


def test_no_matrix_form() -> None:
    t = eg.var("T", (2, 2, 2))
    assert eg.einsum("ijk->", t).to_matrix() is None
    # The bias is broadcast over b: in matrix notation a column of ones times cᵀ; numpy
    # has no matrix formula for that (np.broadcast_to is no product).
    layer = eg.parse("Y[b,j] = X[b,i] * W[i,j] + c[j]", shapes=SHAPES)
    assert layer.to_matrix() == "X·W + 1·cᵀ"
    assert layer.to_matrix(style="numpy") is None


# --- hypothesis: random index equations ------------------------------------------------------

SIZE_OF = {"i": 2, "l": 2, "batch": 2, "j": 3, "k": 3, "feat": 3}
LABELS_OF_SIZE = {2: ["i", "l", "batch"], 3: ["j", "k", "feat"]}
VARIABLES = {"A": (2, 3), "B": (3, 3), "C": (3,), "D": (2,), "E": (2, 2), "s": ()}
FUNCTIONS = {"relu": np_relu, "tanh": np.tanh, "sigmoid": np_sigmoid, "abs": np.abs}

# A tree is a tuple: ("tensor", name, labels) | ("num", x) | ("scalar", name) |
# ("mul" | "div" | "add" | "sub", a, b) | ("neg", a) | ("pow", a, p) | ("call", f, a).


@composite
def tensors(draw: DrawFn) -> tuple[Any, ...]:
    name = draw(st.sampled_from(sorted(VARIABLES)))
    if name == "s":
        return ("scalar", "s")
    labels = tuple(draw(st.sampled_from(LABELS_OF_SIZE[n])) for n in VARIABLES[name])
    return ("tensor", name, labels)


@composite
def trees(draw: DrawFn, depth: int = 0) -> tuple[Any, ...]:
    if depth >= 3 or draw(st.integers(0, 3)) == 0:
        if draw(st.integers(0, 5)) == 0:
            return ("num", draw(st.sampled_from([0.5, 2.0, 3.0])))
        return draw(tensors())
    kind = draw(st.sampled_from(["mul", "mul", "add", "sub", "div", "neg", "pow", "call"]))
    a = draw(trees(depth + 1))
    if kind in ("mul", "add", "sub"):
        return (kind, a, draw(trees(depth + 1)))
    if kind == "div":
        # A denominator that is never near zero: a number, or 2 + (…)².
        if draw(st.booleans()):
            return ("div", a, ("num", draw(st.sampled_from([2.0, 4.0]))))
        return ("div", a, ("add", ("num", 2.0), ("pow", draw(trees(depth + 2)), 2)))
    if kind == "neg":
        return ("neg", a)
    if kind == "pow":
        return ("pow", a, draw(st.sampled_from([2, 3])))
    return ("call", draw(st.sampled_from(sorted(FUNCTIONS))), a)


ATOMS = ("tensor", "num", "scalar", "call")


def render(t: tuple[Any, ...]) -> str:
    kind = t[0]

    def wrap(child: tuple[Any, ...]) -> str:
        text = render(child)
        return text if child[0] in ATOMS else f"({text})"

    if kind == "tensor":
        return f"{t[1]}[{', '.join(t[2])}]"
    if kind == "num":
        return repr(t[1])
    if kind == "scalar":
        return t[1]
    if kind in ("mul", "div", "add", "sub"):
        op = {"mul": "*", "div": "/", "add": "+", "sub": "-"}[kind]
        return f"{wrap(t[1])} {op} {wrap(t[2])}"
    if kind == "neg":
        return f"-{wrap(t[1])}"
    if kind == "pow":
        return f"{wrap(t[1])} ** {t[2]}"
    return f"{t[1]}({render(t[2])})"


def mentioned(t: tuple[Any, ...], *, into_calls: bool = True) -> list[str]:
    """The labels written in ``t`` (not those inside function calls, if ``into_calls`` is off)."""
    if t[0] == "tensor":
        return list(dict.fromkeys(t[2]))
    if t[0] == "call" and not into_calls:
        return []
    found: list[str] = []
    for child in t[1:]:
        if isinstance(child, tuple):
            found.extend(mentioned(child, into_calls=into_calls))
    return list(dict.fromkeys(found))


# The documented semantics, interpreted with numpy. A value is (array, labels), the labels
# distinct and naming the array's axes in order.

Labelled = tuple[np.ndarray, tuple[str, ...]]


def _letters(labels: tuple[str, ...], table: dict[str, str]) -> str:
    return "".join(table.setdefault(label, chr(ord("a") + len(table))) for label in labels)


def _contract(values: list[Labelled], keep: tuple[str, ...]) -> np.ndarray:
    table: dict[str, str] = {}
    terms = [_letters(labels, table) for _, labels in values]
    return np.einsum(f"{','.join(terms)}->{_letters(keep, table)}", *(a for a, _ in values))


def _factors(t: tuple[Any, ...]) -> list[tuple[tuple[Any, ...], bool]]:
    """A product flattened into (factor, inverted) pairs, as Python's syntax tree nests it."""
    if t[0] in ("mul", "div"):
        right = _factors(t[2])
        if t[0] == "div":
            right = [(f, not inverted) for f, inverted in right]
        return _factors(t[1]) + right
    return [(t, False)]


def interpret(
    t: tuple[Any, ...], needed: frozenset[str], env: Mapping[str, np.ndarray]
) -> Labelled:
    """The value of ``t`` with the labels of ``needed`` kept and every other label summed."""
    if t[0] in ("add", "sub"):
        # Einstein per additive term; the terms broadcast along the labels they lack.
        left, right = interpret(t[1], needed, env), interpret(t[2], needed, env)
        labels = tuple(dict.fromkeys(left[1] + right[1]))
        sizes = {label: SIZE_OF[label] for label in labels}
        out = [_broadcast(value, labels, sizes) for value in (left, right)]
        return (out[0] + out[1] if t[0] == "add" else out[0] - out[1]), labels
    factors = _factors(t)
    values = []
    for position, (factor, inverted) in enumerate(factors):
        others = [mentioned(f) for k, (f, _) in enumerate(factors) if k != position]
        outside = needed.union(*others)
        array, labels = _factor(factor, frozenset(outside), env)
        values.append((1 / array if inverted else array, labels))
    every = tuple(dict.fromkeys(label for _, labels in values for label in labels))
    keep = tuple(label for label in every if label in needed)
    return _contract(values, keep), keep


def _broadcast(value: Labelled, labels: tuple[str, ...], sizes: Mapping[str, int]) -> np.ndarray:
    array, own = value
    table: dict[str, str] = {}
    moved = np.einsum(
        f"{_letters(own, table)}->{_letters(tuple(x for x in labels if x in own), table)}", array
    )
    shape = [sizes[label] if label in own else 1 for label in labels]
    return np.broadcast_to(moved.reshape(shape), [sizes[label] for label in labels])


def _factor(t: tuple[Any, ...], needed: frozenset[str], env: Mapping[str, np.ndarray]) -> Labelled:
    kind = t[0]
    if kind == "num":
        return np.asarray(t[1]), ()
    if kind == "scalar":
        return np.asarray(env[t[1]]), ()
    if kind == "tensor":
        table: dict[str, str] = {}
        distinct = tuple(dict.fromkeys(t[2]))
        return np.einsum(
            f"{_letters(t[2], table)}->{_letters(distinct, table)}", env[t[1]]
        ), distinct
    if kind == "neg":
        array, labels = interpret(t[1], needed, env)
        return -array, labels
    if kind in ("add", "sub"):
        return interpret(t, needed, env)
    if kind == "pow":
        # A power keeps its base's labels, and the enclosing product sums them. The labels
        # scoped inside a function call of the base are not the base's: they stay summed
        # inside the call, so relu(X[b,i] * v[i]) ** 2 is relu(Σ_i X_bi v_i)².
        own = mentioned(t[1], into_calls=False)
        array, labels = interpret(t[1], needed | frozenset(own), env)
        return array ** t[2], labels
    assert kind == "call"
    array, labels = interpret(t[2], needed, env)  # labels only inside are summed inside
    return FUNCTIONS[t[1]](array), labels


@composite
def equations(draw: DrawFn) -> tuple[str, tuple[Any, ...], tuple[str, ...]]:
    tree = draw(trees())
    labels = mentioned(tree)
    left = tuple(draw(st.permutations(labels))[: draw(st.integers(0, len(labels)))])
    target = f"Y[{', '.join(left)}]" if left else "Y"
    return f"{target} = {render(tree)}", tree, left


def random_env(seed: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    return {name: rng.standard_normal(shape) for name, shape in VARIABLES.items()}


def index_run(expr: eg.Expr, env: Mapping[str, np.ndarray]) -> np.ndarray:
    used = {v.name for v in expr.variables}
    return np.asarray(eg.evaluate(expr, {k: v for k, v in env.items() if k in used}))


@settings(REPRODUCIBLE, max_examples=150)
@given(equations(), st.integers(0, 2**16))
def test_random_equations_follow_the_documented_rules(
    case: tuple[str, tuple[Any, ...], tuple[str, ...]], seed: int
) -> None:
    source, tree, left = case
    note(source)
    expr = eg.parse(source, shapes=VARIABLES)
    env = random_env(seed)
    array, labels = interpret(tree, frozenset(left), env)
    table: dict[str, str] = {}
    expected = np.einsum(f"{_letters(labels, table)}->{_letters(left, table)}", array)
    assert expr.shape == expected.shape
    np.testing.assert_allclose(index_run(expr, env), expected, rtol=1e-9, atol=1e-9, err_msg=source)


@settings(REPRODUCIBLE, max_examples=150)
@given(equations(), st.integers(0, 2**16))
def test_parse_to_index_parse_round_trip(
    case: tuple[str, tuple[Any, ...], tuple[str, ...]], seed: int
) -> None:
    source, _, _ = case
    first = eg.parse(source, shapes=VARIABLES)
    written = first.to_index("Y")
    note(f"{source}  ->  {written}")
    assert first.to_latex("Y").startswith("Y")
    second = eg.parse(written, shapes=VARIABLES)
    assert second.shape == first.shape
    env = random_env(seed)
    np.testing.assert_allclose(
        index_run(second, env), index_run(first, env), rtol=1e-9, atol=1e-9, err_msg=written
    )


def test_round_trip_of_a_sum_over_a_function_result() -> None:
    # relu(X)·W, the second layer of an MLP: parse accepts "relu(X[b,i]) * W[i,j]", but
    # to_index writes it as "Σ_k (relu(X[i,k]) * W[k,j])", which parse rejects.
    first = eg.parse("Y[b,j] = relu(X[b,i]) * W[i,j]", shapes=SHAPES)
    written = first.to_index()
    second = eg.parse(written, shapes=SHAPES)
    assert_close(run(second, A), np_relu(X) @ W, written)


def test_a_misspelled_shape_entry_is_a_variable_error_listing_the_variables() -> None:
    with pytest.raises(eg.VariableError) as info:
        eg.parse("Y[b,j] = X[b,i] * W[i,j]", shapes={"X": (2, 3), "w": (3, 4)})
    message = str(info.value)
    assert "'w'" in message and "leaves W without a shape" in message
    assert "its variables: W, X" in message
    # Labels are not variables: a shape for 'i' is just as unused.
    with pytest.raises(eg.VariableError, match="'i'"):
        eg.parse("Y[b,j] = X[b,i] * W[i,j]", shapes={"X": (2, 3), "i": (3,)})


# --- any length and nesting under the limit; carets; numbers --------------------------------------

LONG_EQUATIONS: list[tuple[str, str, Any]] = [
    ("4,990 scalar terms", "Y = " + "+".join(["s"] * 4990), lambda: 4990 * s),
    ("1,990 vector terms", "Y[i] = " + "+".join(["v[i]"] * 1990), lambda: 1990 * v),
    ("1,990 vector factors", "Y[i] = " + "*".join(["v[i]"] * 1990), lambda: v**1990),
    ("4,990 parentheses", "Y[i] = " + "(" * 4990 + "v[i]" + ")" * 4990, lambda: v),
    ("9,000 minus signs", "Y[i] = " + "-" * 9000 + "v[i]", lambda: v),
    ("1,600 nested calls", "Y[p] = " + "tanh(" * 1600 + "M[p,q] * v[q]" + ")" * 1600, None),
]


@pytest.mark.parametrize(
    ("what", "source", "numpy"), LONG_EQUATIONS, ids=[w for w, _, _ in LONG_EQUATIONS]
)
def test_anything_under_the_length_limit_parses(what: str, source: str, numpy: Any) -> None:
    assert len(source) <= 10_000, what
    if numpy is None:
        expected = M @ v
        for _ in range(1600):
            expected = np.tanh(expected)
    else:
        expected = numpy()
    assert_close(run(eg.parse(source, shapes=SHAPES), A), np.asarray(expected), what)


def test_an_overlong_equation_is_refused_first() -> None:
    with pytest.raises(eg.ParseError, match="10,000,004 characters long; the limit is 10,000"):
        eg.parse("Y = " + "s" * 10_000_000)


def test_more_labels_than_letters_is_underlined_where_it_happens() -> None:
    source = "Y = " + "*".join(f"v[l{k}]" for k in range(60))
    with pytest.raises(eg.ParseError, match="more than 52 index labels") as info:
        eg.parse(source)
    assert_caret_under(str(info.value), source, "l52")


@pytest.mark.parametrize("prefix", ["Y[i] = α[i] * ", "Y[i] = 中文[i] + ", "Y[ñ] = v[ñ] * "])
def test_the_caret_counts_characters_not_bytes(prefix: str) -> None:
    source = prefix + "bogus(v[i])"
    with pytest.raises(eg.ParseError) as info:
        eg.parse(source)
    column = assert_caret_under(str(info.value), source, "bogus")
    assert f"(column {column + 1})" in str(info.value)


@pytest.mark.parametrize(
    ("source", "underlined", "needle"),
    [
        ("Y[i] = v[i] * 10**400", "10**400", "is inf as a float"),
        ("Y[i] = v[i] * 0x" + "F" * 300, "0x" + "F" * 300, "too large for a float"),
        ("Y[i] = v[i] * 1e400", "1e400", "it would be inf"),
        ("Y[i] = v[i] ** " + "1" * 400, "1" * 400, "too large for a float"),
        ("Y[i] = v[i] + (1e308 + 1e308)", "1e308 + 1e308", "is inf as a float"),
        ("Y = 1e200 * 1e200 + s", "1e200 * 1e200", "is inf as a float"),
        ("Y = 1 / 0 + s", "1 / 0", "division by zero"),
    ],
)
def test_numbers_beyond_a_float_are_located_errors(
    source: str, underlined: str, needle: str
) -> None:
    with pytest.raises(eg.ParseError) as info:
        eg.parse(source, shapes=SHAPES)
    assert needle in str(info.value)
    assert_caret_under(str(info.value), source, underlined)


# --- numbers that are not finite stay elementwise (issue 10) --------------------------------


@pytest.mark.parametrize(
    ("source", "x", "expected"),
    [
        # Σ_i x_i / 0 is Σ (nan, inf) = nan; pulled out of the sum it was (Σ_i x_i)·inf = inf
        ("Y = X[i] / 0.0", [0.0, 1.0], lambda x: np.sum(x / 0.0)),
        # an empty sum of x_i / 0 is 0; pulled out it was 0·inf = nan
        ("Y = X[i] / 0.0", [], lambda x: np.sum(x / 0.0)),
        # 1/1e-310 is inf although x·1e-310/1e-310·2 is finite
        ("Y = X[i] * 1e-310 / 1e-310 * 2", [1.0, 2.0], lambda x: np.sum(x * 1e-310 / 1e-310 * 2)),
        ("Y[j] = 2 / X[i,j] / 0.0", [[1.0, -2.0], [3.0, 4.0]], lambda x: np.sum(2 / x / 0.0, 0)),
    ],
)
def test_a_number_that_makes_inf_is_not_pulled_out_of_the_sum(
    source: str, x: list[Any], expected: Any
) -> None:
    array = np.array(x, dtype=float)
    with np.errstate(all="ignore"):
        want = expected(array)
        got = eg.parse(source)(X=array)
    np.testing.assert_array_equal(got, want, err_msg=source)


# --- what to_index writes, parse reads (issue 10) ------------------------------------------


@pytest.mark.parametrize("exponent", [-1.0, -2, -0.5])
def test_a_negative_power_written_by_to_index_reads_back(exponent: float) -> None:
    x = eg.var("X", (3,))
    written = eg.to_index(x**exponent)
    assert "** -" in written, written
    values = np.array([0.5, 2.0, 4.0])
    assert_close(eg.parse(written, shapes={"X": (3,)})(X=values), values**exponent, written)


def test_a_signed_exponent_is_read_as_a_number() -> None:
    values = np.array([0.5, 2.0, 4.0])
    assert_close(eg.parse("Y[i] = X[i] ** -1.5")(X=values), values**-1.5, "** -1.5")
    assert_close(eg.parse("Y[i] = X[i] ** (- -2)")(X=values), values**2, "** (- -2)")


def test_a_non_number_exponent_is_still_refused_with_a_caret() -> None:
    source = "Y[i] = X[i] ** -v[i]"
    with pytest.raises(eg.ParseError, match="an exponent must be a number") as error:
        eg.parse(source)
    assert_caret_under(str(error.value), source, "-v[i]")


@pytest.mark.parametrize("number", [float("nan"), float("inf"), float("-inf")])
def test_to_index_refuses_a_number_parse_cannot_read(number: float) -> None:
    # log(-1) folds to nan; parse would read the text "nan" as a variable named nan.
    x = eg.var("X", (2,))
    for expr in (x * number, eg.sum(x) + number):
        with pytest.raises(eg.EinsgradError, match=f"no spelling for the number {number!r}"):
            eg.to_index(expr)


def test_to_index_writes_the_gradient_of_a_50_layer_chain() -> None:
    # It raised StopIteration on an older main; a text (or a NoFormError) is the answer.
    x = eg.var("x", (4,))
    w = eg.var("W", (4, 4))
    y = x
    for _ in range(50):
        y = eg.tanh(w @ y)
    written = eg.to_index(eg.grad(eg.sum(y), x))
    assert written.startswith("Y[i] = "), written[:80]
    # every layer contributes its W, with fresh labels past z (i1, i2, ...)
    assert written.count("W[") >= 50
    assert re.search(r"W\[i\d+,", written), written[:200]
