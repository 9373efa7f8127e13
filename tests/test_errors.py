"""Bad input: every error class, its message, and where its caret points.

Every error einsgrad raises for bad input must be an :class:`einsgrad.EinsgradError`
(hence a ``ValueError``) of the right subclass, whose message names what is wrong; spec
and parse errors quote the text with a caret under the offending part. The fuzz tests
at the end feed junk and accept only two outcomes: a result, or an EinsgradError (no raw
IndexError, KeyError or numpy error, and no silent garbage).
"""

from __future__ import annotations

import contextlib
import re
import string
import warnings
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from oracles import assert_caret_under, caret

import einsgrad as eg
from einsgrad.core.spec import parse_spec

# --- the hierarchy --------------------------------------------------------------------------


@pytest.mark.parametrize("cls", [eg.SpecError, eg.ShapeError, eg.ParseError, eg.GradError])
def test_every_error_class_is_an_einsgrad_error_and_a_value_error(cls: type) -> None:
    assert issubclass(cls, eg.EinsgradError)
    assert issubclass(cls, ValueError)
    assert issubclass(eg.EinsgradError, ValueError)


# --- SpecError: malformed einsum specifications ------------------------------------------------


@pytest.mark.parametrize(
    ("spec", "shapes", "needle", "under"),
    [
        ("bi,ij->b$", [(2, 3), (3, 4)], "'$' is not a valid label", "$"),
        ("i->ii", [(3,)], "repeated", "i"),
        ("i->j", [(3,)], "'j' does not occur in any input", "j"),
        ("a..b", [(2, 2)], "'.' must be part of '...'", "."),
        ("ij->ij->i", [(2, 2)], "'->' may appear only once", "->"),
        ("i,j->i,j", [(2,), (2,)], "single term", ","),
        ("i...j...->", [(2, 2, 2)], "at most once", "..."),
        ("i-j", [(2, 2)], "stray '-'", "-"),
        ("ié->i", [(2, 2)], "'é' is not a valid label", "é"),
    ],
)
def test_malformed_spec(spec: str, shapes: list[tuple[int, ...]], needle: str, under: str) -> None:
    operands = [eg.var(f"A{k}", shape) for k, shape in enumerate(shapes)]
    with pytest.raises(eg.SpecError) as info:
        eg.einsum(spec, *operands)
    message = str(info.value)
    assert needle in message
    assert spec in message
    column = assert_caret_under(message, spec, under)
    if spec == "i->ii":
        assert column == 4  # the repeat, not the first output i


def test_the_caret_of_a_repeated_arrow_points_at_the_second_arrow() -> None:
    with pytest.raises(eg.SpecError) as info:
        eg.einsum("ij->ij->i", np.ones((2, 2)))
    _, column, width = caret(str(info.value))
    assert (column, width) == (6, 2)


@pytest.mark.parametrize(("spec", "count"), [("ij,jk->ik", 1), ("ij->ji", 2), ("i,i,i->", 2)])
def test_wrong_operand_count(spec: str, count: int) -> None:
    terms = spec.split("->")[0].count(",") + 1
    with pytest.raises(eg.SpecError, match=rf"{terms} input terms but {count} operands"):
        eg.einsum(spec, *[np.ones((2, 2))] * count)


def test_spec_must_be_a_string() -> None:
    with pytest.raises(eg.SpecError, match="must be a string"):
        eg.einsum(3, np.ones(2))


@pytest.mark.parametrize(
    "call",
    [
        lambda: eg.einsum(np.ones((2, 3)), [0, 1]),  # type: ignore[arg-type]
        lambda: eg.einsum(["ij"], np.ones((2, 3))),  # type: ignore[arg-type]
        lambda: eg.einsum({"ij": 1}, np.ones((2, 3))),  # type: ignore[arg-type]
        lambda: eg.einsum(np.ones(3)),  # type: ignore[arg-type]
        lambda: parse_spec(["ij"]),  # type: ignore[arg-type]
    ],
    ids=["interleaved", "list", "dict", "array alone", "parse_spec list"],
)
def test_an_unhashable_spec_is_a_spec_error_not_a_type_error(call: Callable[[], Any]) -> None:
    # The spec cache used to raise a bare "TypeError: unhashable type" first.
    with pytest.raises(eg.SpecError, match="must be a string"):
        call()


def test_numpys_interleaved_form_is_named_and_translated() -> None:
    A, B = eg.var("A", (2, 3)), eg.var("B", (3, 4))
    with pytest.raises(eg.SpecError) as info:
        eg.einsum(A, [0, 1], B, [1, 2], [0, 2])  # type: ignore[arg-type]
    message = str(info.value)
    assert "interleaved form" in message and "not supported yet" in message
    # The spec string the call stands for, which does work:
    suggested = re.search(r"einsum\('([a-z,>-]+)', A, B\)", message)
    assert suggested is not None
    np.testing.assert_allclose(
        eg.einsum(suggested.group(1), A, B)(A=np.ones((2, 3)), B=np.ones((3, 4))),
        np.ones((2, 3)) @ np.ones((3, 4)),
    )


@pytest.mark.parametrize(
    ("operand", "what"),
    [("X", r"operand 0 is the string 'X'"), (object(), r"operand 0 \(object\)")],
)
def test_an_operand_einsum_cannot_use_is_a_spec_error(operand: Any, what: str) -> None:
    with pytest.raises(eg.SpecError, match=rf"einsum 'ij'.*{what}"):
        eg.einsum("ij", operand)


def test_bad_variable_name() -> None:
    with pytest.raises(eg.EinsgradError, match="identifier"):
        eg.var("1x")
    with pytest.raises(eg.EinsgradError, match="identifier"):
        eg.var("a b")


# --- ShapeError -------------------------------------------------------------------------------


def _assert_label_mismatch(message: str) -> None:
    assert "'i'" in message
    assert re.search(r"\b3\b", message) and re.search(r"\b4\b", message)
    assert re.search(r"\bX\b", message) and re.search(r"\bW\b", message)
    assert "bi,ij->bj" in message


def test_label_size_mismatch_names_operands_label_and_sizes() -> None:
    X, W = eg.var("X", (2, 3)), eg.var("W", (4, 5))
    with pytest.raises(eg.ShapeError) as info:
        eg.einsum("bi,ij->bj", X, W)
    _assert_label_mismatch(str(info.value))


def test_label_size_mismatch_at_evaluation_when_shapes_are_undeclared() -> None:
    Y = eg.einsum("bi,ij->bj", eg.var("X"), eg.var("W"))
    with pytest.raises(eg.ShapeError) as info:
        Y(X=np.ones((2, 3)), W=np.ones((4, 5)))
    _assert_label_mismatch(str(info.value))


def test_rank_mismatch_names_the_operand() -> None:
    with pytest.raises(eg.ShapeError, match=r"X.*\(2, 3\).*ijk"):
        eg.einsum("ijk->i", eg.var("X", (2, 3)))


@pytest.mark.parametrize("declared", [True, False], ids=["declared", "undeclared"])
def test_a_label_repeated_on_axes_of_different_sizes_names_both_axes(declared: bool) -> None:
    A = eg.var("A", (2, 3) if declared else None)
    with pytest.raises(eg.ShapeError) as info:
        eg.einsum("ii", A)(A=np.ones((2, 3)))
    message = str(info.value)
    assert "operand 0 (A) repeats label 'i' on axes of different sizes" in message
    assert "2 (axis 0) and 3 (axis 1)" in message
    assert message.count("operand 0") == 1  # not "operand 0 … but … operand 0"


def test_a_repeated_label_clash_is_reported_on_the_operand_that_repeats_it() -> None:
    # B gives j size 3, A repeats j on axes of sizes 3 and 4: A's diagonal is the problem.
    with pytest.raises(
        eg.ShapeError, match=r"operand 1 \(A\) repeats label 'j'.*3 \(axis 0\) and 4"
    ):
        eg.einsum("ij,jj->i", eg.var("B", (2, 3)), eg.var("A", (3, 4)))


def test_missing_variable() -> None:
    L = eg.sum(eg.var("X") * eg.var("W"))
    with pytest.raises(eg.VariableError, match="missing value for variable 'W'"):
        L(X=np.ones(3))


def test_missing_variable_reports_its_declared_shape() -> None:
    L = eg.sum(eg.var("X", (3,)) * eg.var("W", (3,)))
    with pytest.raises(eg.VariableError, match=r"'W' \(shape \(3,\)\)"):
        L(X=np.ones(3))


def test_unknown_variable() -> None:
    L = eg.sum(eg.var("X"))
    with pytest.raises(eg.VariableError, match="unknown variable 'Z'") as info:
        L(X=np.ones(3), Z=np.ones(3))
    assert "X" in str(info.value)  # lists what the expression does take


def test_an_extra_array_is_a_variable_error_listing_the_expected_variables() -> None:
    Q, K, V = eg.var("Q", (2, 3)), eg.var("K", (4, 3)), eg.var("V", (4, 5))
    attention = eg.softmax(Q @ K.T) @ V
    q, k, v = np.ones((2, 3)), np.ones((4, 3)), np.ones((4, 5))
    with pytest.raises(eg.VariableError) as info:
        eg.jacobian(attention, Q)(Q=q, K=k, V=v, Tg=np.ones((2, 5)))
    assert not isinstance(info.value, eg.ShapeError)  # a name, not a shape, is wrong
    assert isinstance(info.value, eg.EinsgradError) and isinstance(info.value, ValueError)
    assert "unknown variable 'Tg'" in str(info.value)
    assert re.search(r"variables are K, Q, V\b", str(info.value))


def test_a_missing_array_is_a_variable_error_listing_the_expected_variables() -> None:
    L = eg.sum(eg.var("X") * eg.var("W"))
    with pytest.raises(eg.VariableError, match=r"missing value for variable 'W'.*W, X"):
        L(X=np.ones(3))


def test_wrong_array_shape_for_a_declared_variable() -> None:
    L = eg.sum(eg.var("X", (2, 3)))
    with pytest.raises(eg.ShapeError, match=r"'X'.*\(2, 3\).*\(3, 2\)"):
        L(X=np.ones((3, 2)))
    with pytest.raises(eg.ShapeError, match=r"\(2, 3\).*\(6,\)"):
        L(X=np.ones(6))


@pytest.mark.parametrize(
    ("shape", "why"),
    [
        ((2.5, 3), r"position 0, 2\.5 is a float"),
        ((3.0,), r"position 0, 3\.0 is a float"),
        ((True, 3), r"position 0, True is a bool"),
        ((2, np.bool_(True)), r"position 1, (np\.)?True_? is a bool"),
        ((2, -3), r"position 1, -3 is a negative size"),
        ((np.int64(-1),), r"position 0, (np\.int64\()?-1\)? is a negative size"),
        ((2, np.float64(3.0)), r"position 1, (np\.float64\()?3\.0\)? is a float64"),
        (np.array([2.5, 3.0]), r"position 0, (np\.float64\()?2\.5\)? is a float64"),
        ((10**30, 2), r"position 0, 10{30} is larger than any axis numpy can index"),
        ((3, 2**63), r"position 1, 9223372036854775808 is larger than any axis"),
        ("23", r"tuple of ints, got '23'"),
        ((2, "3"), r"position 1, '3' is a str"),
        (2.0, r"tuple of ints, got 2\.0"),
        (np.ones((2, 2), dtype=int), r"tuple of ints, got array"),
    ],
    ids=repr,
)
def test_a_size_that_is_not_a_whole_number_is_a_shape_error(shape: Any, why: str) -> None:
    # int() would silently turn 2.5 into 2, True into 1 and '23' into (2, 3); a size past
    # numpy's largest axis would overflow wherever it met numpy.
    with pytest.raises(eg.ShapeError, match=rf"variable 'N'.*{why}"):
        eg.var("N", shape)


def test_numpy_integers_are_sizes() -> None:
    assert eg.var("N", (np.int64(2), np.int32(3))).shape == (2, 3)
    assert eg.var("N", np.array([4, 5])).shape == (4, 5)
    assert eg.var("N", np.uint8(7)).shape == (7,)
    assert eg.var("N", [0, 1]).shape == (0, 1)


# --- values bound to variables: arrays of numbers, or a VariableError -------------------------

U = eg.var("U")


@pytest.mark.parametrize(
    ("value", "what"),
    [
        ("abc", r"a str"),
        (np.array(["a", "b"]), r"a ndarray.*<U1"),
        (np.array([1.0, 2.0], dtype=object), r"a ndarray.*object"),
        (np.array(["2020-01-01"], dtype="datetime64[D]"), r"a ndarray.*datetime64"),
        ([1.0, "a"], r"a list"),
        ([[1.0], [1.0, 2.0]], r"a list.*inhomogeneous"),
        (None, r"a NoneType"),
        ({"a": 1}, r"a dict"),
        (object(), r"an object"),
        (10**400, r"an int.*object"),
    ],
    ids=[
        "str",
        "strings",
        "objects",
        "dates",
        "mixed list",
        "ragged list",
        "None",
        "dict",
        "object",
        "huge int",
    ],
)
def test_a_value_that_is_no_array_of_numbers_is_a_variable_error(value: Any, what: str) -> None:
    with pytest.raises(eg.VariableError, match=rf"variable 'U': cannot bind {what}"):
        eg.tanh(U)(U=value)
    with pytest.raises(eg.VariableError, match=r"variable 'U'"):
        eg.compile(eg.tanh(U))(U=value)


def test_a_masked_array_is_refused_rather_than_stripped_of_its_mask() -> None:
    masked = np.ma.masked_array([1.0, 2.0, 3.0], mask=[False, True, False])
    with pytest.raises(eg.VariableError, match=r"'U': got a masked array.*filled.*\.data"):
        eg.evaluate(eg.sum(U), U=masked)
    f = eg.compile(eg.sum(U))
    assert f(U=masked.data) == 6.0  # leaves its program for the per-call path
    with pytest.raises(eg.VariableError, match=r"masked array"):
        f(U=masked)
    with pytest.raises(TypeError, match=r"masked array.*mask would be ignored"):
        U + masked


def test_a_complex_array_for_a_real_variable_is_refused() -> None:
    X = eg.var("X", (2,), dtype=np.float64)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # numpy's ComplexWarning was all there was
        with pytest.raises(eg.VariableError, match=r"'X' is declared float64.*complex128.*imag"):
            eg.tanh(X)(X=np.array([1 + 1j, 2]))


@pytest.mark.parametrize(
    ("value", "dtype"),
    [
        ([[1, 2], [3, 4]], np.float64),  # numpy users pass lists
        (np.array(0.5), np.float64),  # 0-d arrays
        (np.float32(0.5), np.float32),  # numpy scalars keep their dtype
        (2, np.float64),  # Python numbers
        (np.array([True, False]), np.float64),  # booleans are numbers, as integers are
        (np.arange(3, dtype=np.int32), np.float64),
        (np.array([0.5, 1.5], dtype=np.float16), np.float16),
        (np.array([1 + 2j, 0.5j]), np.complex128),  # complex arrays evaluate as in numpy
    ],
    ids=["list of lists", "0-d", "numpy scalar", "int", "bool", "int32", "float16", "complex"],
)
def test_what_numpy_users_pass_is_accepted(value: Any, dtype: Any) -> None:
    result = eg.exp(U)(U=value)
    assert result.dtype == dtype
    np.testing.assert_allclose(result, np.exp(np.asarray(value).astype(dtype)), rtol=1e-6)


@pytest.mark.parametrize(
    ("value", "what"),
    [
        (np.array(["a", "b"]), r"<U1"),
        (np.array(["2020-01-01", "2020-01-02"], dtype="datetime64[D]"), r"datetime64"),
        (np.array([1.0, 2.0], dtype=object), r"object"),
        (["a", "b"], r"<U1"),
    ],
    ids=["strings", "dates", "objects", "list of strings"],
)
def test_a_constant_of_no_numbers_is_refused_when_built(value: Any, what: str) -> None:
    with pytest.raises(TypeError, match=rf"array of {what}.* in an einsgrad expression"):
        eg.var("X", (2,)) + value


def test_non_constant_exponent() -> None:
    X, Y = eg.var("X"), eg.var("Y")
    with pytest.raises(eg.EinsgradError, match="constant real scalar exponent"):
        X**Y
    with pytest.raises(eg.EinsgradError, match="constant real scalar exponent"):
        X ** np.array([1.0, 2.0])


def test_where_needs_a_constant_condition() -> None:
    X = eg.var("X")
    with pytest.raises(eg.ShapeError, match="constant condition"):
        eg.where(X, X, 0.0)
    with pytest.raises(eg.ShapeError, match="constant condition"):
        eg.where(eg.relu(X), 1.0, X)


def test_matmul_inner_size_mismatch() -> None:
    with pytest.raises(eg.ShapeError) as info:
        eg.var("A", (2, 3)) @ eg.var("B", (4, 5))
    message = str(info.value)
    assert "(2, 3)" in message and "(4, 5)" in message
    assert "A" in message and "B" in message
    assert "3 and 4" in message


def test_matmul_inner_mismatch_at_evaluation() -> None:
    product = eg.var("A") @ eg.var("B")
    with pytest.raises(eg.ShapeError, match=r"\b3\b.*\b4\b|\b4\b.*\b3\b"):
        product(A=np.ones((2, 3)), B=np.ones((4, 5)))


# Size-1 inner axes: einsum would broadcast them, numpy's matmul refuses them. Each pair
# is refused by numpy (checked below), so einsgrad must refuse it too, shapes bound late.
SIZE_ONE_INNER = [
    ((3, 1), (2, 4)),
    ((2, 1), (2, 1)),
    ((2, 1), (3,)),
    ((5, 2, 1), (3, 4)),
    ((5, 2, 1), (1, 3, 4)),
]


@pytest.mark.parametrize(("sa", "sb"), SIZE_ONE_INNER, ids=str)
def test_matmul_refuses_a_size_one_inner_axis_at_evaluation(
    sa: tuple[int, ...], sb: tuple[int, ...]
) -> None:
    a, b = np.ones(sa), np.ones(sb)
    with pytest.raises(ValueError):
        np.matmul(a, b)
    A, B = eg.var("A"), eg.var("B")
    inner_b = sb[0] if len(sb) == 1 else sb[-2]
    for product in (A @ B, eg.matmul(A, B), eg.simplify(A @ B)):
        with pytest.raises(eg.ShapeError) as info:
            product(A=a, B=b)
        message = str(info.value)
        assert f"A has shape {sa}" in message and f"B has shape {sb}" in message
        assert f"inner sizes {sa[-1]} and {inner_b} differ" in message
    # The gradient's program reads the product's shape, so it refuses as well.
    with pytest.raises(eg.ShapeError, match="inner sizes"):
        eg.grad(eg.sum(A @ B), A)(A=a, B=b)


def test_matmul_with_one_declared_operand_checks_the_other_at_evaluation() -> None:
    A = eg.var("A", (3,))
    with pytest.raises(eg.ShapeError, match=r"inner sizes 3 and 1 differ"):
        (A @ eg.var("B"))(A=np.ones(3), B=np.ones((1, 4)))
    with pytest.raises(eg.ShapeError, match=r"inner sizes 1 and 3 differ"):
        (eg.var("B") @ A)(A=np.ones(3), B=np.ones((4, 1)))


def test_the_same_einsum_written_out_still_broadcasts_a_size_one_label() -> None:
    """Only matmul is strict: einsum broadcasts size-1 labels, as numpy.einsum does."""
    a, b = np.arange(3.0).reshape(3, 1), np.arange(8.0).reshape(2, 4)
    product = eg.einsum("...ij,...jk->...ik", eg.var("A"), eg.var("B"))
    np.testing.assert_array_equal(product(A=a, B=b), np.einsum("...ij,...jk->...ik", a, b))


def test_matmul_of_a_scalar() -> None:
    with pytest.raises(eg.ShapeError, match="rank >= 1"):
        eg.var("A", (2, 2)) @ 2.0


def test_transpose_of_a_three_dimensional_variable() -> None:
    with pytest.raises(eg.ShapeError, match=r"\.T needs a 2-D operand.*\(2, 3, 4\)"):
        _ = eg.var("T", (2, 3, 4)).T
    with pytest.raises(eg.ShapeError, match=r"\(2, 3, 4\)"):
        eg.var("T").T(T=np.ones((2, 3, 4)))


def test_broadcast_mismatch() -> None:
    with pytest.raises(eg.ShapeError, match=r"do not broadcast.*\(2, 3\).*\(4,\)"):
        eg.var("X", (2, 3)) + eg.var("Z", (4,))
    with pytest.raises(eg.ShapeError, match=r"do not broadcast"):
        (eg.var("X") * eg.var("Z"))(X=np.ones((2, 3)), Z=np.ones(4))


@pytest.mark.parametrize(
    "build",
    [
        lambda X: eg.sum(X, 2),
        lambda X: eg.mean(X, -3),
        lambda X: eg.logsumexp(X, 5),
        lambda X: eg.softmax(X, 2),
        lambda X: eg.sum(X, (0, 0)),
        lambda X: eg.log_softmax(X, (1, -1)),
    ],
)
@pytest.mark.parametrize("declared", [True, False], ids=["declared", "undeclared"])
def test_bad_axes(build: Callable[[eg.Expr], eg.Expr], declared: bool) -> None:
    X = eg.var("X", (2, 3) if declared else None)
    with pytest.raises(eg.ShapeError):
        build(X)(X=np.ones((2, 3)))


def test_a_variable_declared_twice_with_different_shapes() -> None:
    expr = eg.var("A", (2,)) + eg.var("A")
    with pytest.raises(eg.VariableError, match="declared twice"):
        expr(A=np.ones(2))


# --- GradError ----------------------------------------------------------------------------------


def test_non_scalar_loss() -> None:
    X = eg.var("X", (2, 3))
    with pytest.raises(eg.GradError) as info:
        eg.grad(eg.tanh(X), X)
    assert "(2, 3)" in str(info.value)
    assert "vjp" in str(info.value)


def test_non_scalar_loss_of_unknown_shape_fails_at_evaluation() -> None:
    X = eg.var("X")
    dX = eg.grad(eg.tanh(X) * 2.0, X)  # the shape is unknown: cannot tell yet
    with pytest.raises(eg.GradError) as info:
        dX(X=np.ones((2, 3)))
    assert "(2, 3)" in str(info.value)
    assert "vjp" in str(info.value)
    # A scalar array is a scalar loss: the same gradient evaluates.
    np.testing.assert_allclose(dX(X=np.array(0.5)), 2.0 * (1 - np.tanh(0.5) ** 2))


def test_unknown_wrt_name() -> None:
    L = eg.sum(eg.var("X") * eg.var("W"))
    with pytest.raises(eg.GradError, match=r"wrt='Q' is not a variable.*W, X"):
        eg.grad(L, "Q")
    with pytest.raises(eg.GradError, match="'Q'"):
        eg.grad(L, ["X", "Q"])


def test_unused_variable_without_allow_unused() -> None:
    L = eg.sum(eg.var("X"))
    with pytest.raises(eg.GradError, match=r"'Q' does not occur.*allow_unused"):
        eg.grad(L, eg.var("Q", (3,)))


def test_allow_unused_gives_zeros_of_the_right_shape() -> None:
    X = eg.var("X", (2, 3))
    Q, R = eg.var("Q", (4,)), eg.var("R")
    dX, dQ, dR = eg.grad(eg.sum(eg.exp(X)), [X, Q, R], allow_unused=True)
    x = np.random.default_rng(0).normal(size=(2, 3))
    values = eg.evaluate([dX, dQ, dR], X=x, R=np.ones((5, 2)))
    np.testing.assert_allclose(values[0], np.exp(x))
    assert values[1].shape == (4,) and not values[1].any()
    assert values[2].shape == (5, 2) and not values[2].any()
    # And just the unused one, on its own.
    (only,) = eg.grad(eg.sum(eg.exp(X)), [Q], allow_unused=True)
    assert only(X=x).shape == (4,)


@pytest.mark.parametrize("wrt", [3, None, 1.5, np.ones(2)], ids=["int", "None", "float", "array"])
def test_wrt_of_the_wrong_kind(wrt: Any) -> None:
    with pytest.raises(eg.GradError, match="wrt"):
        eg.grad(eg.sum(eg.var("X")), wrt)


def test_empty_wrt() -> None:
    with pytest.raises(eg.GradError, match="empty"):
        eg.grad(eg.sum(eg.var("X")), [])


def test_grad_of_something_that_is_not_an_expression() -> None:
    with pytest.raises(eg.GradError, match="expression"):
        eg.grad(3.0, "X")


# --- ParseError (more in test_parse.py) --------------------------------------------------------


def test_parse_error_caret_points_at_the_offending_text() -> None:
    source = "sum(X) + X.shape"
    with pytest.raises(eg.ParseError) as info:
        eg.parse_expr(source)
    column = assert_caret_under(str(info.value), source, "X.shape")
    assert f"column {column + 1}" in str(info.value)


# --- wrong Python types: TypeError with a pointer to the right spelling ---------------------


@pytest.mark.parametrize(
    "junk", ["X", object(), None, [object()]], ids=["str", "object", "None", "list"]
)
def test_wrong_python_types_raise_type_error(junk: Any) -> None:
    with pytest.raises(TypeError, match=r"string|cannot use"):
        eg.var("X", (2,)) + junk


def test_an_expression_has_no_truth_value() -> None:
    with pytest.raises(TypeError, match="truth value"):
        bool(eg.var("X"))


# --- fuzz: junk in, EinsgradError out ---------------------------------------------------------


X2 = eg.var("X2", (2, 3))
XU = eg.var("XU")
JUNK: list[tuple[str, Callable[[], Any]]] = [
    ("negative shape", lambda: eg.var("a", (-1, 2))),
    ("shape of strings", lambda: eg.var("a", "ab")),
    ("shape with None", lambda: eg.var("a", (None, 2))),
    ("axis float", lambda: eg.sum(X2, 1.5)),
    ("axis string", lambda: eg.sum(X2, "a")),
    ("axis tuple of floats", lambda: eg.sum(X2, (1.5,))),
    ("axis bool", lambda: eg.mean(X2, True)),
    ("axis out of range", lambda: eg.logsumexp(X2, 9)),
    ("spec empty", lambda: eg.einsum("", X2)),
    ("spec only arrow", lambda: eg.einsum("->", X2)),
    ("spec digits", lambda: eg.einsum("12->", X2)),
    ("spec too many labels", lambda: eg.einsum("ijk->k", X2)),
    ("spec unknown rank at evaluation", lambda: eg.einsum("ijk->k", XU)(XU=np.ones((2, 3)))),
    ("array of strings", lambda: eg.exp(XU)(XU=np.array(["a", "b"]))),
    ("string value", lambda: eg.exp(XU)(XU="abc")),
    ("ragged list", lambda: eg.exp(XU)(XU=[[1.0], [1.0, 2.0]])),
    ("object value", lambda: eg.exp(XU)(XU=object())),
    ("None value", lambda: eg.exp(XU)(XU=None)),
    ("dict value", lambda: eg.exp(XU)(XU={"a": 1})),
    ("parse junk", lambda: eg.parse_expr("X +* Y")),
    ("parse unbalanced", lambda: eg.parse_expr("sum(X")),
    ("parse bytes", lambda: eg.parse_expr(b"X")),
    ("grad of string junk", lambda: eg.grad("X ** Y", "X")),
]


@pytest.mark.parametrize(("what", "attempt"), JUNK, ids=[w for w, _ in JUNK])
def test_junk_raises_an_einsgrad_error(what: str, attempt: Callable[[], Any]) -> None:
    with pytest.raises(eg.EinsgradError):
        attempt()


SPEC_ALPHABET = "ijk.,->$ A1"


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    spec=st.text(alphabet=SPEC_ALPHABET, max_size=10),
    shapes=st.lists(st.lists(st.integers(1, 3), max_size=3).map(tuple), min_size=1, max_size=3),
    declared=st.booleans(),
)
def test_fuzzed_einsum_specs(spec: str, shapes: list[tuple[int, ...]], declared: bool) -> None:
    """A result equal to numpy's, or an EinsgradError; nothing else."""
    arrays = {f"A{k}": np.arange(1.0, 1.0 + np.prod(s)).reshape(s) for k, s in enumerate(shapes)}
    try:
        expr = eg.einsum(
            spec, *(eg.var(n, a.shape if declared else None) for n, a in arrays.items())
        )
        value = expr(**arrays)
    except eg.EinsgradError:
        return
    try:
        expected = np.einsum(spec, *arrays.values())
    except ValueError:
        return  # einsgrad is allowed to accept more (size-1 broadcasting of labels)
    np.testing.assert_allclose(value, expected)


# fmt: off
TOKENS = [
    "X", "Y", "(", ")", "+", "-", "*", "/", "**", "@", ".T", ",", "sum(", "exp(", "log(",
    "einsum(", "'ij->ji'", "'i,i->'", "axis=", "0", "1", "-1", "2", "0.5", "1e400", "[", "]",
    "lambda", ":", "if", "else", "__import__", ".", "'s'", "=", "softmax(", "maximum(", "None",
    "(0, 1)", " ",
]
# fmt: on


@settings(max_examples=300, deadline=None)
@given(st.lists(st.sampled_from(TOKENS), min_size=1, max_size=12))
def test_fuzzed_expression_strings(tokens: list[str]) -> None:
    """parse_expr and evaluation give a value or an EinsgradError; nothing else."""
    source = "".join(tokens)
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore", SyntaxWarning)  # from ast.parse, e.g. "1e400if"
        try:
            expr = eg.parse_expr(source)
        except eg.EinsgradError:
            return
        names = sorted({v.name for v in expr.variables})
        arrays = {n: np.full((2, 2), 0.75) for n in names}
        try:
            expr(**arrays)
        except eg.EinsgradError:
            return


@settings(max_examples=200, deadline=None)
@given(st.text(alphabet=string.printable, max_size=30))
def test_fuzzed_arbitrary_text(source: str) -> None:
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore", SyntaxWarning)
        with contextlib.suppress(eg.EinsgradError):
            eg.parse_expr(source)


@pytest.mark.parametrize(
    "build",
    [
        lambda x: x * 10**400,
        lambda x: x ** (10**400),
        lambda x: -(10**400) + x,
        lambda x: eg.maximum(x, 10**309),
    ],
    ids=["times", "power", "plus", "maximum"],
)
def test_an_integer_beyond_a_float_is_refused_when_built(build: Any) -> None:
    with pytest.raises(OverflowError):  # numpy refuses it too
        build(np.ones(2))
    with pytest.raises(eg.NumberError, match=r"about (400|309) digits is too large for a float"):
        build(eg.var("X"))


def test_an_integer_a_float_holds_is_a_constant() -> None:
    value = (eg.var("X") * 10**300)(X=np.ones(2))
    np.testing.assert_array_equal(value, np.ones(2) * 1e300)
