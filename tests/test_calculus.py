"""Higher-order calculus: jacobian, hessian, jvp, vjp, hvp, mode choice, the memory guard.

Every derivative einsgrad derives is evaluated and compared with two oracles that share
nothing with its rules (see ``tests/oracles.py``):

* HIPS autograd on the same function written with ``autograd.numpy``: ``autograd.jacobian``,
  ``autograd.hessian``, ``make_jvp``, ``make_vjp`` and nested ``autograd.grad``;
* central finite differences of einsgrad's own forward evaluation (for a Hessian: of the
  evaluated gradient; for a third derivative: of the evaluated Hessian).

Closed forms derived by hand (``A + Aᵀ`` for ``xᵀAx``, ``Xᵀ diag(p(1−p)) X / B`` for
logistic regression, ``X ⊗ I`` for a linear layer) are checked too, and so is the *shape*
of the simplified results: a Kronecker delta survives only where the answer has one.
"""

from __future__ import annotations

import functools
import time
import tracemalloc
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import autograd
import autograd.numpy as anp
import numpy as np
import pytest
from oracles import (
    assert_close,
    autograd_gradients,
    autograd_gradients_traced,
    finite_difference,
)

import einsgrad as eg
from einsgrad.core.ir import toposort

MODES = ("forward", "reverse", "auto")
FD_RTOL, FD_ATOL = 1e-5, 1e-7  # central differences with FD_STEP = 1e-6 in float64
AD_RTOL, AD_ATOL = 1e-9, 1e-12  # two exact derivatives, rounded differently


@pytest.fixture(autouse=True)
def _restore_memory_limit() -> Iterator[None]:
    """Every test leaves the process-wide memory limit as it found it."""
    before = eg.get_memory_limit()
    try:
        yield
    finally:
        eg.set_memory_limit(before)


# --- oracles: array-valued functions ---------------------------------------------------------


def _entry(f: Callable[..., Any], index: tuple[int, ...]) -> Callable[..., float]:
    """The scalar function ``f(**arrays)[index]``."""

    def component(**arrays: np.ndarray) -> float:
        return float(np.asarray(f(**arrays))[index])

    return component


def fd_jacobian(f: Callable[..., Any], arrays: Mapping[str, np.ndarray], name: str) -> np.ndarray:
    """Central differences of the array-valued ``f``: shape ``f(...).shape + arrays[name].shape``.

    One :func:`oracles.finite_difference` per output entry.
    """
    out_shape = np.shape(f(**arrays))
    result = np.empty(out_shape + np.shape(arrays[name]))
    for index in np.ndindex(out_shape):
        result[index] = finite_difference(_entry(f, index), arrays, name)
    return result


def fd_directional(
    f: Callable[..., Any], arrays: Mapping[str, np.ndarray], directions: Mapping[str, np.ndarray]
) -> np.ndarray:
    """Central differences of ``f`` along ``directions``: ``d/dt f(arrays + t·V)`` at 0."""

    def along(t: np.ndarray) -> Any:
        return f(**{k: v + t * directions[k] if k in directions else v for k, v in arrays.items()})

    return fd_jacobian(along, {"t": np.zeros(())}, "t")


def ag_jacobian(ref: Callable[..., Any], arrays: Mapping[str, np.ndarray], name: str) -> np.ndarray:
    """``autograd.jacobian`` of ``ref(**arrays)`` with respect to ``arrays[name]``."""

    def f(value: Any) -> Any:
        return ref(**{**arrays, name: value})

    return np.asarray(autograd.jacobian(f)(np.asarray(arrays[name], dtype=np.float64)))


def ag_hessian(ref: Callable[..., Any], arrays: Mapping[str, np.ndarray], name: str) -> np.ndarray:
    """``autograd.hessian`` of the scalar ``ref(**arrays)`` with respect to ``arrays[name]``."""

    def f(value: Any) -> Any:
        return ref(**{**arrays, name: value})

    return np.asarray(autograd.hessian(f)(np.asarray(arrays[name], dtype=np.float64)))


def check(got: Any, *, ad: np.ndarray, fd: np.ndarray, what: str) -> None:
    """``got`` matches autograd tightly and finite differences to FD accuracy."""
    assert_close(got, ad, f"{what} vs autograd", rtol=AD_RTOL, atol=AD_ATOL)
    assert_close(got, fd, f"{what} vs finite differences", rtol=FD_RTOL, atol=FD_ATOL)


def evaluator(expr: eg.Expr) -> Callable[..., np.ndarray]:
    """``expr`` evaluated from keyword arrays (for the finite-difference oracles)."""

    def run(**arrays: np.ndarray) -> np.ndarray:
        return np.asarray(expr(**arrays))

    return run


def normal(seed: int, **shapes: tuple[int, ...]) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    return {name: rng.normal(size=shape) for name, shape in shapes.items()}


def _softmax(z: Any, axis: int) -> Any:
    e = anp.exp(z)
    return e / anp.sum(e, axis=axis, keepdims=True)


def _logsumexp(z: Any, axis: int | None = None) -> Any:
    return anp.log(anp.sum(anp.exp(z), axis=axis))


def _sigmoid(z: Any) -> Any:
    return 1.0 / (1.0 + anp.exp(-z))


# --- problems: an einsgrad expression, its autograd twin, and a point ---------------------------


@dataclass
class Problem:
    y: eg.Expr
    wrt: eg.Var
    ref: Callable[..., Any]
    arrays: dict[str, np.ndarray]


def _linear(wrt: str) -> Problem:
    X, W = eg.var("X", (3, 4)), eg.var("W", (4, 2))
    arrays = normal(10, X=(3, 4), W=(4, 2))
    return Problem(X @ W, {"X": X, "W": W}[wrt], lambda X, W: anp.dot(X, W), arrays)


def _elementwise_chain() -> Problem:
    x = eg.var("x", (2, 3))
    t = eg.tanh(x)
    y = eg.exp(-t * t) * eg.sigmoid(2.0 * x) - eg.log(1.0 + x * x) / 3.0

    def ref(x: Any) -> Any:
        t = anp.tanh(x)
        return anp.exp(-t * t) * _sigmoid(2.0 * x) - anp.log(1.0 + x * x) / 3.0

    return Problem(y, x, ref, normal(11, x=(2, 3)))


def _softmax_problem(axis: int) -> Problem:
    Z = eg.var("Z", (2, 3))
    return Problem(
        eg.softmax(Z, axis=axis), Z, lambda Z: _softmax(Z, axis), normal(12 + axis, Z=(2, 3))
    )


def _logsumexp_axis() -> Problem:
    Z = eg.var("Z", (2, 3))
    return Problem(eg.logsumexp(Z, axis=1), Z, lambda Z: _logsumexp(Z, 1), normal(14, Z=(2, 3)))


def _logsumexp_all() -> Problem:
    Z = eg.var("Z", (2, 3))
    return Problem(eg.logsumexp(Z), Z, lambda Z: _logsumexp(Z), normal(15, Z=(2, 3)))


def _bias_broadcast() -> Problem:
    X, W, b = eg.var("X", (3, 4)), eg.var("W", (4, 2)), eg.var("b", (2,))
    arrays = normal(16, X=(3, 4), W=(4, 2), b=(2,))
    return Problem(eg.tanh(X @ W + b), b, lambda X, W, b: anp.tanh(anp.dot(X, W) + b), arrays)


def _diagonal() -> Problem:
    M = eg.var("M", (3, 3))
    return Problem(
        eg.einsum("ii->i", M),
        M,
        lambda M: anp.diagonal(M, axis1=-1, axis2=-2),
        normal(17, M=(3, 3)),
    )


def _batched_diagonal() -> Problem:
    T = eg.var("T", (2, 3, 3))
    return Problem(
        eg.exp(eg.einsum("bii->bi", T)),
        T,
        lambda T: anp.exp(anp.diagonal(T, axis1=-1, axis2=-2)),
        normal(18, T=(2, 3, 3)),
    )


def _scalar_output() -> Problem:
    X, W = eg.var("X", (3, 4)), eg.var("W", (4, 2))
    arrays = normal(19, X=(3, 4), W=(4, 2))
    return Problem(
        eg.sum(eg.tanh(X @ W) ** 2), W, lambda X, W: anp.sum(anp.tanh(anp.dot(X, W)) ** 2), arrays
    )


JACOBIAN_PROBLEMS = {
    "linear-wrt-W": lambda: _linear("W"),
    "linear-wrt-X": lambda: _linear("X"),
    "elementwise-chain": _elementwise_chain,
    "softmax-axis0": lambda: _softmax_problem(0),
    "softmax-axis1": lambda: _softmax_problem(1),
    "logsumexp-axis1": _logsumexp_axis,
    "logsumexp-all": _logsumexp_all,
    "bias-broadcast": _bias_broadcast,
    "einsum-ii->i": _diagonal,
    "einsum-bii->bi": _batched_diagonal,
    "scalar-output": _scalar_output,
}


@functools.cache
def _fd_jacobian_of(problem: str) -> np.ndarray:
    """Finite differences of a problem's forward evaluation (once per problem, not per mode)."""
    p = JACOBIAN_PROBLEMS[problem]()
    return fd_jacobian(evaluator(p.y), p.arrays, p.wrt.name)


# --- jacobian ------------------------------------------------------------------------------------


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("problem", list(JACOBIAN_PROBLEMS))
def test_jacobian_matches_autograd_and_finite_differences(problem: str, mode: str) -> None:
    p = JACOBIAN_PROBLEMS[problem]()
    assert_close(p.y(**p.arrays), np.asarray(p.ref(**p.arrays)), "forward value", rtol=1e-12)
    J = eg.jacobian(p.y, p.wrt, mode=mode)  # type: ignore[arg-type]
    assert p.y.shape is not None and p.wrt.shape is not None
    assert J.shape == p.y.shape + p.wrt.shape
    check(
        J(**p.arrays),
        ad=ag_jacobian(p.ref, p.arrays, p.wrt.name),
        fd=_fd_jacobian_of(problem),
        what=f"jacobian ({mode})",
    )


@pytest.mark.parametrize("problem", list(JACOBIAN_PROBLEMS))
def test_jacobian_modes_agree(problem: str) -> None:
    p = JACOBIAN_PROBLEMS[problem]()
    values = {mode: eg.jacobian(p.y, p.wrt, mode=mode)(**p.arrays) for mode in MODES}  # type: ignore[arg-type]
    for mode in ("reverse", "auto"):
        assert_close(values[mode], values["forward"], f"{mode} vs forward", rtol=1e-12, atol=1e-14)


def test_jacobian_by_name_equals_by_variable() -> None:
    p = _linear("W")
    assert eg.jacobian(p.y, "W") is eg.jacobian(p.y, p.wrt)


def test_linear_layer_jacobian_keeps_the_delta_only_where_the_answer_has_it() -> None:
    """∂(XW)[b,j]/∂W[i,k] = X[b,i] δ[j,k]: X alone, with the delta as a repeated label."""
    batch, n_in, n_out = 3, 4, 5
    X, W = eg.var("X", (batch, n_in)), eg.var("W", (n_in, n_out))
    arrays = normal(20, X=(batch, n_in), W=(n_in, n_out))
    Y = eg.einsum("bi,ij->bj", X, W)
    for mode in MODES:
        J = eg.simplify(eg.jacobian(Y, W, mode=mode))  # type: ignore[arg-type]
        assert isinstance(J, eg.Einsum), f"{mode}: {J!r}"
        assert J.operands == (X,), f"{mode}: {J!r}"
        assert J.shape == (batch, n_out, n_in, n_out)
        # One input term of two distinct labels (b, i) and the output b j i j: exactly one
        # label (j) repeated, i.e. one delta, where the true answer has it.
        ((b, i),) = J.spec.inputs
        assert b != i
        out = J.spec.output
        assert len(out) == 4 and out[0] == b and out[2] == i
        assert out[1] == out[3] and out[1] not in (b, i), J.spec.text
        value = J(**arrays)
        assert_close(value, np.einsum("bi,jk->bjik", arrays["X"], np.eye(n_out)), "X ⊗ I", atol=0)
        check(
            value,
            ad=ag_jacobian(lambda X, W: anp.einsum("bi,ij->bj", X, W), arrays, "W"),
            fd=fd_jacobian(evaluator(Y), arrays, "W"),
            what=f"linear-layer jacobian ({mode})",
        )


# --- hessians: closed forms and their structure -------------------------------------------------


def _einsums(expr: eg.Expr) -> list[eg.Einsum]:
    return [node for node in toposort([expr]) if isinstance(node, eg.Einsum)]


@pytest.mark.parametrize("mode", MODES)
def test_hessian_of_quadratic_form_is_a_plus_a_transpose(mode: str) -> None:
    n = 4
    x, A = eg.var("x", (n,)), eg.var("A", (n, n))
    arrays = normal(30, x=(n,), A=(n, n))
    L = eg.einsum("i,ij,j->", x, A, x)
    H = eg.hessian(L, x, mode=mode)  # type: ignore[arg-type]
    assert H.shape == (n, n)
    value = H(**arrays)
    a = arrays["A"]
    assert_close(value, a + a.T, "A + Aᵀ", rtol=1e-14, atol=1e-14)
    check(
        value,
        ad=ag_hessian(lambda x, A: anp.dot(x, anp.dot(A, x)), arrays, "x"),
        fd=fd_jacobian(evaluator(eg.grad(L, x)), arrays, "x"),
        what=f"hessian of xᵀAx ({mode})",
    )
    # Structurally exactly A + einsum('ba->ab', A).
    S = eg.simplify(H)
    assert isinstance(S, eg.Map) and S.op.name == "add", repr(S)
    assert len(S.args) == 2 and sum(arg is A for arg in S.args) == 1, repr(S)
    (transposed,) = (arg for arg in S.args if arg is not A)
    assert isinstance(transposed, eg.Einsum) and transposed.operands == (A,), repr(S)
    ((p, q),) = transposed.spec.inputs
    assert p != q and transposed.spec.output == (q, p), transposed.spec.text
    # No Kronecker delta anywhere: no einsum with a repeated output label.
    for node in _einsums(S):
        out = node.spec.output
        assert len(set(out)) == len(out), f"a delta is evaluated: {node.spec.text}"


@pytest.mark.parametrize("mode", MODES)
def test_logistic_regression_hessian_is_one_einsum(mode: str) -> None:
    batch, dim = 7, 3
    X, w, y = eg.var("X", (batch, dim)), eg.var("w", (dim,)), eg.var("y", (batch,))
    rng = np.random.default_rng(31)
    arrays = {
        "X": rng.normal(size=(batch, dim)),
        "w": rng.normal(size=dim),
        "y": (rng.random(batch) > 0.5).astype(float),
    }
    p = eg.sigmoid(X @ w)
    L = -eg.mean(y * eg.log(p) + (1 - y) * eg.log(1 - p))

    def ref(X: Any, w: Any, y: Any) -> Any:
        p = _sigmoid(anp.dot(X, w))
        return -anp.mean(y * anp.log(p) + (1 - y) * anp.log(1 - p))

    H = eg.hessian(L, w, mode=mode)  # type: ignore[arg-type]
    assert H.shape == (dim, dim)
    value = H(**arrays)
    prob = 1 / (1 + np.exp(-arrays["X"] @ arrays["w"]))
    closed = arrays["X"].T @ np.diag(prob * (1 - prob)) @ arrays["X"] / batch
    assert_close(value, closed, "Xᵀ diag(p(1−p)) X / B", rtol=1e-10, atol=1e-14)
    check(
        value,
        ad=ag_hessian(ref, arrays, "w"),
        fd=fd_jacobian(evaluator(eg.grad(L, w)), arrays, "w"),
        what=f"logistic-regression hessian ({mode})",
    )
    # One einsum 'ca,cb,c->ab' (up to label names and operand order): X twice, one weight.
    assert isinstance(H, eg.Einsum), repr(H)
    assert eg.simplify(H) is H
    assert len(H.operands) == 3 and sum(op is X for op in H.operands) == 2, repr(H)
    (k,) = (k for k, op in enumerate(H.operands) if op is not X)
    weight_term = H.spec.inputs[k]
    assert len(weight_term) == 1, H.spec.text
    (c,) = weight_term
    a, b = H.spec.output
    assert a != b and c not in (a, b), H.spec.text
    x_terms = sorted(H.spec.inputs[j] for j in range(3) if j != k)
    assert x_terms == sorted([(c, a), (c, b)]), H.spec.text
    weight = H.operands[k]
    names = {v.name for v in weight.variables}
    got = weight(**{n: arrays[n] for n in names})
    assert_close(got, prob * (1 - prob) / batch, "the weight p(1−p)/B", rtol=1e-10, atol=1e-14)


# --- second and third derivatives ----------------------------------------------------------------


def _tanh_loss() -> Problem:
    x, A = eg.var("x", (3,)), eg.var("A", (4, 3))
    return Problem(
        eg.sum(eg.tanh(A @ x) ** 3),
        x,
        lambda x, A: anp.sum(anp.tanh(anp.dot(A, x)) ** 3),
        normal(40, x=(3,), A=(4, 3)),
    )


def _exp_loss() -> Problem:
    x, A = eg.var("x", (3,)), eg.var("A", (4, 3))
    return Problem(
        eg.sum(eg.exp(0.5 * (A @ x))) * eg.mean(eg.exp(-x)),
        x,
        lambda x, A: anp.sum(anp.exp(0.5 * anp.dot(A, x))) * anp.mean(anp.exp(-x)),
        normal(41, x=(3,), A=(4, 3)),
    )


def _softmax_cross_entropy() -> Problem:
    batch, features, classes = 4, 2, 3
    X, W, T = (
        eg.var("X", (batch, features)),
        eg.var("W", (features, classes)),
        eg.var("T", (batch, classes)),
    )
    rng = np.random.default_rng(42)
    arrays = {
        "X": rng.normal(size=(batch, features)),
        "W": rng.normal(size=(features, classes)),
        "T": np.eye(classes)[rng.integers(0, classes, size=batch)],
    }
    loss = -eg.sum(T * eg.log(eg.softmax(X @ W, axis=1))) / batch

    def ref(X: Any, W: Any, T: Any) -> Any:
        return -anp.sum(T * anp.log(_softmax(anp.dot(X, W), 1))) / batch

    return Problem(loss, W, ref, arrays)


LOSSES = {"tanh": _tanh_loss, "exp": _exp_loss, "softmax-cross-entropy": _softmax_cross_entropy}
VECTOR_LOSSES = {"tanh": _tanh_loss, "exp": _exp_loss}


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("loss", list(LOSSES))
def test_hessian_matches_autograd_and_finite_differences(loss: str, mode: str) -> None:
    p = LOSSES[loss]()
    assert_close(p.y(**p.arrays), np.asarray(p.ref(**p.arrays)), "loss value", rtol=1e-12)
    H = eg.hessian(p.y, p.wrt, mode=mode)  # type: ignore[arg-type]
    assert p.wrt.shape is not None
    assert H.shape == p.wrt.shape + p.wrt.shape
    value = H(**p.arrays)
    check(
        value,
        ad=ag_hessian(p.ref, p.arrays, p.wrt.name),
        fd=fd_jacobian(evaluator(eg.grad(p.y, p.wrt)), p.arrays, p.wrt.name),
        what=f"hessian of the {loss} loss ({mode})",
    )
    n = int(np.prod(p.wrt.shape))
    flat = value.reshape(n, n)
    assert_close(flat, flat.T, "symmetry", rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("loss", list(LOSSES))
def test_grad_of_grad_matches_nested_autograd(loss: str) -> None:
    p = LOSSES[loss]()
    name = p.wrt.name
    assert p.wrt.shape is not None
    v = eg.var("v", p.wrt.shape)
    arrays = {**p.arrays, "v": np.random.default_rng(43).normal(size=p.wrt.shape)}
    directional = eg.sum(eg.grad(p.y, p.wrt) * v)  # <∇L, v>
    second = eg.grad(directional, p.wrt)  # ∇<∇L, v> = H v
    assert second.shape == p.wrt.shape

    def ref_directional(**point: Any) -> Any:
        direction = point.pop("v")
        (g,) = autograd_gradients_traced(p.ref, point, [name])
        return anp.sum(g * direction)

    (expected,) = autograd_gradients(ref_directional, arrays, [name])
    check(
        second(**arrays),
        ad=expected,
        fd=finite_difference(evaluator(directional), arrays, name),
        what=f"grad of grad ({loss})",
    )


def test_grad_of_grad_matmul_form_is_hessian_times_v() -> None:
    p = _tanh_loss()
    v = eg.var("v", (3,))
    arrays = {**p.arrays, "v": np.array([0.3, -1.2, 0.7])}
    second = eg.grad(eg.grad(p.y, p.wrt) @ v, p.wrt)
    hessian = ag_hessian(p.ref, p.arrays, "x")
    check(
        second(**arrays),
        ad=hessian @ arrays["v"],
        fd=finite_difference(evaluator(eg.grad(p.y, p.wrt) @ v), arrays, "x"),
        what="grad(grad(L) @ v)",
    )


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("loss", list(VECTOR_LOSSES))
def test_third_derivative_is_jacobian_of_hessian(loss: str, mode: str) -> None:
    p = VECTOR_LOSSES[loss]()
    H = eg.hessian(p.y, p.wrt)
    T = eg.jacobian(H, p.wrt, mode=mode)  # type: ignore[arg-type]
    assert T.shape == (3, 3, 3)

    def ref_hessian(**point: Any) -> Any:
        x = point.pop("x")
        return autograd.hessian(lambda x: p.ref(x=x, **point))(x)

    value = T(**p.arrays)
    check(
        value,
        ad=ag_jacobian(ref_hessian, p.arrays, "x"),
        fd=fd_jacobian(evaluator(H), p.arrays, "x"),
        what=f"third derivative of the {loss} loss ({mode})",
    )
    for axes in [(1, 0, 2), (0, 2, 1), (2, 1, 0)]:
        assert_close(value, value.transpose(axes), f"symmetry {axes}", rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("loss", list(VECTOR_LOSSES))
def test_third_derivative_as_grad_of_hvp(loss: str) -> None:
    p = VECTOR_LOSSES[loss]()
    u, v = eg.var("u", (3,)), eg.var("v", (3,))
    rng = np.random.default_rng(44)
    arrays = {**p.arrays, "u": rng.normal(size=3), "v": rng.normal(size=3)}
    contracted = eg.sum(eg.hvp(p.y, p.wrt, v) * u)  # uᵀ H(x) v
    third = eg.grad(contracted, p.wrt)  # T[i, j, k] u_i v_j

    def ref_contracted(x: Any, A: Any, u: Any, v: Any) -> Any:
        hvp = autograd.hessian_vector_product(lambda x: p.ref(x=x, A=A))
        return anp.dot(u, hvp(x, v))

    (expected,) = autograd_gradients(ref_contracted, arrays, ["x"])
    value = third(**arrays)
    check(
        value,
        ad=expected,
        fd=finite_difference(evaluator(contracted), arrays, "x"),
        what=f"grad of hvp ({loss})",
    )
    tensor = eg.jacobian(eg.hessian(p.y, p.wrt), p.wrt)(**p.arrays)
    assert_close(
        value, np.einsum("ijk,i,j->k", tensor, arrays["u"], arrays["v"]), "T·u·v", rtol=1e-10
    )


# --- jvp, vjp, hvp ---------------------------------------------------------------------------


def _tanh_layer(declared: bool) -> tuple[eg.Expr, dict[str, eg.Var], Callable[..., Any]]:
    shapes = {"X": (3, 4), "W": (4, 2), "b": (2,)}
    X, W, b = (eg.var(n, s if declared else None) for n, s in shapes.items())
    y = eg.tanh(X @ W + b) * eg.exp(-(X @ W))

    def ref(X: Any, W: Any, b: Any) -> Any:
        return anp.tanh(anp.dot(X, W) + b) * anp.exp(-anp.dot(X, W))

    return y, {"X": X, "W": W, "b": b}, ref


DECLARED = pytest.mark.parametrize("declared", [True, False], ids=["declared", "undeclared"])


def _ag_jvp(
    ref: Callable[..., Any], arrays: Mapping[str, np.ndarray], name: str, direction: np.ndarray
) -> np.ndarray:
    def f(value: Any) -> Any:
        return ref(**{**arrays, name: value})

    _, tangent = autograd.make_jvp(f)(arrays[name])(direction)
    return np.asarray(tangent)


@DECLARED
@pytest.mark.parametrize("tangent_kind", ["array", "variable"])
def test_jvp_matches_autograd(declared: bool, tangent_kind: str) -> None:
    y, variables, ref = _tanh_layer(declared)
    arrays = normal(50, X=(3, 4), W=(4, 2), b=(2,))
    direction = np.random.default_rng(51).normal(size=(3, 4))
    if tangent_kind == "array":
        tangent = eg.jvp(y, {variables["X"]: direction})
        bound = arrays
    else:
        tangent = eg.jvp(y, {"X": eg.var("V", (3, 4) if declared else None)})
        bound = {**arrays, "V": direction}
    if declared:
        assert tangent.shape == (3, 2)
    value = tangent(**bound)
    expected = _ag_jvp(ref, arrays, "X", direction)
    check(
        value,
        ad=expected,
        fd=fd_directional(evaluator(y), arrays, {"X": direction}),
        what=f"jvp ({tangent_kind})",
    )
    assert_close(
        value,
        np.einsum("ojab,ab->oj", ag_jacobian(ref, arrays, "X"), direction),
        "jacobian · v",
        rtol=AD_RTOL,
        atol=AD_ATOL,
    )


@DECLARED
def test_jvp_of_several_variables_sums_their_directions(declared: bool) -> None:
    y, variables, ref = _tanh_layer(declared)
    arrays = normal(52, X=(3, 4), W=(4, 2), b=(2,))
    directions = normal(53, X=(3, 4), W=(4, 2), b=(2,))
    tangent = eg.jvp(y, {variables[n]: d for n, d in directions.items()})
    expected = sum(_ag_jvp(ref, arrays, n, d) for n, d in directions.items())
    check(
        tangent(**arrays),
        ad=np.asarray(expected),
        fd=fd_directional(evaluator(y), arrays, directions),
        what="jvp of X, W and b",
    )


def test_jvp_through_softmax() -> None:
    p = _softmax_problem(1)
    direction = np.random.default_rng(54).normal(size=(2, 3))
    tangent = eg.jvp(p.y, {p.wrt: direction})
    check(
        tangent(**p.arrays),
        ad=_ag_jvp(p.ref, p.arrays, "Z", direction),
        fd=fd_directional(evaluator(p.y), p.arrays, {"Z": direction}),
        what="jvp of softmax",
    )


@DECLARED
def test_vjp_matches_autograd(declared: bool) -> None:
    y, variables, ref = _tanh_layer(declared)
    arrays = normal(55, X=(3, 4), W=(4, 2), b=(2,))
    cotangent = np.random.default_rng(56).normal(size=(3, 2))
    names = ["X", "W", "b"]
    results = eg.vjp(y, [variables[n] for n in names], cotangent)
    assert isinstance(results, tuple) and len(results) == 3
    single = eg.vjp(y, "W", cotangent)
    assert isinstance(single, eg.Expr)
    assert_close(single(**arrays), results[1](**arrays), "single wrt", rtol=1e-14, atol=0)

    def projected(**point: np.ndarray) -> float:
        return float(np.sum(cotangent * y(**point)))

    for name, result in zip(names, results, strict=True):
        if declared:
            assert result.shape == arrays[name].shape

        def f(value: Any, name: str = name) -> Any:
            return ref(**{**arrays, name: value})

        vjp_fn, _ = autograd.make_vjp(f)(arrays[name])
        check(
            result(**arrays),
            ad=np.asarray(vjp_fn(cotangent)),
            fd=finite_difference(projected, arrays, name),
            what=f"vjp wrt {name}",
        )


def test_vjp_with_a_variable_cotangent() -> None:
    y, variables, ref = _tanh_layer(declared=False)
    arrays = normal(57, X=(3, 4), W=(4, 2), b=(2,))
    u = np.random.default_rng(58).normal(size=(3, 2))
    result = eg.vjp(y, variables["W"], eg.var("U"))
    assert isinstance(result, eg.Expr)
    (expected,) = autograd_gradients(lambda X, W, b: anp.sum(u * ref(X, W, b)), arrays, ["W"])
    check(
        result(**arrays, U=u),
        ad=expected,
        fd=finite_difference(lambda **a: float(np.sum(u * y(**a))), arrays, "W"),
        what="vjp with U a variable",
    )


@pytest.mark.parametrize("loss", list(LOSSES))
def test_hvp_is_hessian_times_v(loss: str) -> None:
    p = LOSSES[loss]()
    assert p.wrt.shape is not None
    direction = np.random.default_rng(59).normal(size=p.wrt.shape)
    product = eg.hvp(p.y, p.wrt, direction)
    assert product.shape == p.wrt.shape
    value = product(**p.arrays)
    n = direction.size
    hessian = ag_hessian(p.ref, p.arrays, p.wrt.name).reshape(n, n)
    check(
        value,
        ad=(hessian @ direction.reshape(n)).reshape(direction.shape),
        fd=fd_directional(evaluator(eg.grad(p.y, p.wrt)), p.arrays, {p.wrt.name: direction}),
        what=f"hvp ({loss})",
    )
    ours = eg.hessian(p.y, p.wrt)(**p.arrays).reshape(n, n)
    assert_close(value, (ours @ direction.reshape(n)).reshape(direction.shape), "H @ v", rtol=1e-10)


def test_hvp_with_undeclared_shapes() -> None:
    x, A, v = eg.var("x"), eg.var("A"), eg.var("v")
    loss = eg.sum(eg.exp(eg.tanh(eg.einsum("ij,j->i", A, x))))  # @ would take x as 2-D
    arrays = normal(60, x=(3,), A=(4, 3), v=(3,))

    def ref(x: Any, A: Any) -> Any:
        return anp.sum(anp.exp(anp.tanh(anp.dot(A, x))))

    product = eg.hvp(loss, x, v)
    value = product(**arrays)
    point = {"x": arrays["x"], "A": arrays["A"]}
    check(
        value,
        ad=ag_hessian(ref, point, "x") @ arrays["v"],
        fd=fd_directional(evaluator(eg.grad(loss, x)), point, {"x": arrays["v"]}),
        what="hvp, undeclared shapes",
    )


# --- the choice of mode ------------------------------------------------------------------------


def _residual_from_few_inputs(n: int = 40) -> Problem:
    """Two inputs, n outputs, through two residual tanh layers: forward mode is cheaper."""
    x, A, B = eg.var("x", (2,)), eg.var("A", (n, 2)), eg.var("B", (n, n))
    h1 = eg.tanh(A @ x)
    h2 = eg.tanh(B @ h1) + h1
    h3 = eg.tanh(B @ h2) + h2

    def ref(x: Any, A: Any, B: Any) -> Any:
        h1 = anp.tanh(anp.dot(A, x))
        h2 = anp.tanh(anp.dot(B, h1)) + h1
        return anp.tanh(anp.dot(B, h2)) + h2

    arrays = normal(70, x=(2,), A=(n, 2), B=(n, n))
    arrays["B"] /= np.sqrt(n)
    return Problem(h3, x, ref, arrays)


def _residual_to_few_outputs(n: int = 40) -> Problem:
    """n inputs, two outputs, through two residual tanh layers: reverse mode is cheaper."""
    v, C, D = eg.var("v", (n,)), eg.var("C", (n, n)), eg.var("D", (2, n))
    k1 = eg.tanh(C @ v) + v
    k2 = eg.tanh(C @ k1) + k1
    y = eg.tanh(D @ k2)

    def ref(v: Any, C: Any, D: Any) -> Any:
        k1 = anp.tanh(anp.dot(C, v)) + v
        k2 = anp.tanh(anp.dot(C, k1)) + k1
        return anp.tanh(anp.dot(D, k2))

    arrays = normal(71, v=(n,), C=(n, n), D=(2, n))
    arrays["C"] /= np.sqrt(n)
    return Problem(y, v, ref, arrays)


def _assert_cheapest(J: eg.Expr) -> eg.Cost:
    """The chosen mode's FLOP estimate is no more than any alternative's."""
    report = eg.cost(J)
    assert report.mode in ("forward", "reverse", "symbolic")
    assert report.alternatives, "auto mode reports the mode it did not choose"
    for name, alternative in report.alternatives.items():
        assert name in ("forward", "reverse") and name != report.mode
        if report.mode == "symbolic":
            assert alternative.flops == report.flops
        else:
            assert report.flops <= alternative.flops, str(report)
    return report


@pytest.mark.parametrize("problem", list(JACOBIAN_PROBLEMS))
def test_auto_mode_reports_its_choice(problem: str) -> None:
    p = JACOBIAN_PROBLEMS[problem]()
    _assert_cheapest(eg.jacobian(p.y, p.wrt))


@pytest.mark.parametrize("mode", ["forward", "reverse"])
def test_forced_mode_is_reported(mode: str) -> None:
    for p in (_residual_from_few_inputs(), _residual_to_few_outputs(), _bias_broadcast()):
        forced = eg.jacobian(p.y, p.wrt, mode=mode)  # type: ignore[arg-type]
        report = eg.cost(forced)
        if report.mode == "symbolic":
            # An earlier automatic call found both sweeps give this very node; forcing one
            # cannot change that, and the record says so.
            other = "reverse" if mode == "forward" else "forward"
            assert eg.jacobian(p.y, p.wrt, mode=other) is forced  # type: ignore[arg-type]
        else:
            assert report.mode == mode
    with pytest.raises(eg.OptionError, match="mode"):
        eg.jacobian(p.y, p.wrt, mode="sideways")  # type: ignore[arg-type]


def test_cost_of_an_auto_jacobian_survives_a_forced_call() -> None:
    """Forcing the mode auto chose returns the same (hash-consed) node; the report of the
    auto result must still name the alternative it was chosen over."""
    p = _residual_from_few_inputs()
    J = eg.jacobian(p.y, p.wrt)
    before = eg.cost(J)
    assert before.mode == "forward" and set(before.alternatives) == {"reverse"}
    forced = eg.jacobian(p.y, p.wrt, mode="forward")
    assert eg.cost(forced).mode == "forward"
    after = eg.cost(J)
    assert after.mode == "forward"
    assert set(after.alternatives) == {"reverse"}, str(after)


@pytest.mark.parametrize(
    ("builder", "cheaper", "other"),
    [
        (_residual_from_few_inputs, "forward", "reverse"),
        (_residual_to_few_outputs, "reverse", "forward"),
    ],
    ids=["few-inputs-forward", "few-outputs-reverse"],
)
def test_auto_mode_picks_the_cheaper_sweep(
    builder: Callable[[], Problem], cheaper: str, other: str
) -> None:
    p = builder()
    J = eg.jacobian(p.y, p.wrt)
    report = _assert_cheapest(J)
    assert report.mode == cheaper, str(report)
    assert set(report.alternatives) == {other}
    assert report.flops * 3 < report.alternatives[other].flops, str(report)
    # The forced sweeps cost what auto reported for them.
    assert eg.cost(eg.jacobian(p.y, p.wrt, mode=other)).flops == report.alternatives[other].flops  # type: ignore[arg-type]
    assert eg.cost(eg.jacobian(p.y, p.wrt, mode=cheaper)).flops == report.flops  # type: ignore[arg-type]
    value = J(**p.arrays)
    assert J.shape == value.shape
    check(
        value,
        ad=ag_jacobian(p.ref, p.arrays, p.wrt.name),
        fd=fd_jacobian(evaluator(p.y), p.arrays, p.wrt.name),
        what=f"{cheaper}-mode jacobian",
    )
    forced = eg.jacobian(p.y, p.wrt, mode=other)(**p.arrays)  # type: ignore[arg-type]
    assert_close(forced, value, f"{other} vs {cheaper}", rtol=1e-12, atol=1e-14)


# --- the memory guard --------------------------------------------------------------------------


def test_seeds_example_jacobian_is_refused_at_once() -> None:
    X = eg.var("X", (64, 4096), dtype="float32")
    W = eg.var("W", (4096, 4096), dtype="float32")
    Y = X @ W
    start = time.perf_counter()
    with pytest.raises(eg.MemoryLimitError) as raised:
        eg.jacobian(Y, X)
    assert time.perf_counter() - start < 1.0
    assert isinstance(raised.value, eg.EinsgradError)
    message = str(raised.value)
    assert "(64, 4096, 64, 4096)" in message
    assert "256.0 GiB" in message
    assert "vjp" in message


def test_hessian_over_the_limit_names_hvp() -> None:
    X = eg.var("X", (64, 4096), dtype="float32")
    W = eg.var("W", (4096, 16), dtype="float32")
    loss = eg.sum(eg.tanh(X @ W))
    start = time.perf_counter()
    with pytest.raises(eg.MemoryLimitError) as raised:
        eg.hessian(loss, X)
    assert time.perf_counter() - start < 1.0
    message = str(raised.value)
    assert "(64, 4096, 64, 4096)" in message and "256.0 GiB" in message
    assert "hvp" in message


def _small_jacobian_problem() -> tuple[eg.Expr, eg.Var]:
    x = eg.var("x", (30,))
    return eg.tanh(x), x  # the Jacobian: 30·30 float64 = 7200 bytes


def test_per_call_memory_limit() -> None:
    y, x = _small_jacobian_problem()
    with pytest.raises(eg.MemoryLimitError, match=r"\(30, 30\)"):
        eg.jacobian(y, x, memory_limit=7199)
    assert eg.jacobian(y, x, memory_limit=7200).shape == (30, 30)
    with pytest.raises(eg.MemoryLimitError, match="hvp"):
        eg.hessian(eg.sum(y), x, memory_limit=7199)
    assert eg.hessian(eg.sum(y), x, memory_limit=7200).shape == (30, 30)
    # A per-call limit wins over the global one, and None means no limit at all.
    eg.set_memory_limit(100)
    assert eg.jacobian(y, x, memory_limit=None).shape == (30, 30)
    assert eg.jacobian(y, x, memory_limit=10_000).shape == (30, 30)
    with pytest.raises(eg.MemoryLimitError):
        eg.jacobian(y, x)


def test_set_memory_limit() -> None:
    y, x = _small_jacobian_problem()
    eg.set_memory_limit(1000)
    assert eg.get_memory_limit() == 1000
    with pytest.raises(eg.MemoryLimitError):
        eg.jacobian(y, x)
    with pytest.raises(eg.MemoryLimitError):
        eg.hessian(eg.sum(y), x)
    eg.set_memory_limit(None)
    assert eg.get_memory_limit() is None
    assert eg.jacobian(y, x).shape == (30, 30)


def test_memory_limit_context_manager() -> None:
    y, x = _small_jacobian_problem()
    outer = eg.get_memory_limit()
    with eg.memory_limit(1000):
        assert eg.get_memory_limit() == 1000
        with pytest.raises(eg.MemoryLimitError):
            eg.jacobian(y, x)
        with eg.memory_limit(None):
            assert eg.get_memory_limit() is None
            assert eg.jacobian(y, x).shape == (30, 30)
        assert eg.get_memory_limit() == 1000
    assert eg.get_memory_limit() == outer
    # The limit is restored when the block raises, too.
    with pytest.raises(RuntimeError), eg.memory_limit(5):
        raise RuntimeError
    assert eg.get_memory_limit() == outer


@pytest.mark.parametrize("bad", [0, -1, 1.5, True, "1GB"])
def test_memory_limit_rejects_nonsense(bad: Any) -> None:
    with pytest.raises(eg.EinsgradError):
        eg.set_memory_limit(bad)


def test_evaluation_is_refused_before_allocating() -> None:
    n = 2000  # the outer product: 2000·2000 float64 = 32 MB
    a, b = eg.var("a", (n,)), eg.var("b", (n,))
    outer = eg.einsum("i,j->ij", a, b)
    arrays = {"a": np.linspace(0, 1, n), "b": np.linspace(1, 2, n)}
    tracemalloc.start()
    try:
        with eg.memory_limit(2**20), pytest.raises(eg.MemoryLimitError) as raised:
            outer(**arrays)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 4 * 2**20, f"{peak:,} bytes were allocated before the refusal"
    assert f"({n}, {n})" in str(raised.value)
    # Under a large enough limit the same evaluation runs.
    with eg.memory_limit(2**26):
        value = outer(**arrays)
    np.testing.assert_array_equal(value, np.outer(arrays["a"], arrays["b"]))


def test_evaluating_a_jacobian_is_guarded() -> None:
    y, x = _small_jacobian_problem()
    J = eg.jacobian(y, x)
    point = {"x": np.linspace(-1, 1, 30)}
    # The program's peak: the 30×30 Jacobian (7200 bytes) and the four 30-vectors it is
    # built from (a program this small keeps every value to the end).
    with eg.memory_limit(8159), pytest.raises(eg.MemoryLimitError):
        J(**point)
    with eg.memory_limit(8160):
        value = J(**point)
    check(
        value,
        ad=ag_jacobian(lambda x: anp.tanh(x), point, "x"),
        fd=fd_jacobian(evaluator(y), point, "x"),
        what="jacobian of tanh",
    )


# --- no expression swell -------------------------------------------------------------------------


def _mlp(layers: int, width: int = 3, batch: int = 2) -> tuple[eg.Expr, list[eg.Var]]:
    h: eg.Expr = eg.var("x", (batch, width))
    params: list[eg.Var] = []
    for k in range(layers):
        W, b = eg.var(f"W{k}", (width, width)), eg.var(f"b{k}", (width,))
        h = eg.tanh(h @ W + b)
        params += [W, b]
    return eg.mean(h * h), params


def _mlp_ref(layers: int) -> Callable[..., Any]:
    def ref(**arrays: Any) -> Any:
        h = arrays["x"]
        for k in range(layers):
            h = anp.tanh(anp.dot(h, arrays[f"W{k}"]) + arrays[f"b{k}"])
        return anp.mean(h * h)

    return ref


def _mlp_arrays(layers: int, width: int = 3, batch: int = 2) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(80)
    arrays = {"x": rng.normal(size=(batch, width))}
    for k in range(layers):
        arrays[f"W{k}"] = rng.normal(size=(width, width)) * 1.5 / np.sqrt(width)
        arrays[f"b{k}"] = rng.normal(size=width) * 0.1
    return arrays


def test_mlp_gradient_grows_linearly_and_is_fast() -> None:
    counts: dict[int, int] = {}
    for layers in (10, 100):
        loss, params = _mlp(layers)
        start = time.perf_counter()
        grads = eg.grad(loss, params)
        elapsed = time.perf_counter() - start
        if layers == 100:
            assert elapsed < 1.0, f"deriving 100 layers took {elapsed:.2f} s"
        counts[layers] = len(toposort(list(grads)))
        # The gradients are right: autograd for every parameter, FD for the first and last.
        arrays = _mlp_arrays(layers)
        values = eg.evaluate(list(grads), **arrays)
        names = [p.name for p in params]
        expected = autograd_gradients(_mlp_ref(layers), arrays, names)
        for name, got, want in zip(names, values, expected, strict=True):
            assert_close(got, want, f"{layers} layers, d/d{name}", rtol=AD_RTOL, atol=AD_ATOL)
        for name in ("W0", f"b{layers - 1}"):
            got = values[names.index(name)]
            numeric = finite_difference(evaluator(loss), arrays, name)
            assert_close(got, numeric, f"FD d/d{name}", rtol=FD_RTOL, atol=FD_ATOL)
    assert 8 * counts[10] <= counts[100] <= 11 * counts[10], counts


def test_mlp_single_parameter_gradient_grows_linearly() -> None:
    counts = {}
    for layers in (10, 100):
        loss, params = _mlp(layers)
        counts[layers] = len(toposort([eg.grad(loss, params[0])]))
    assert 8 * counts[10] <= counts[100] <= 11 * counts[10], counts
