"""Node kinds are rows of the rule table: one registered from this file works in every pass,
one with an entry missing makes each pass that needs it raise, and no built-in kind lacks
an entry.

The toy kind is ``Reshape`` (numpy's row-major reshape): it is not an einsum, so no other
rule can stand in for its own, and a pass that ignored it would give zeros or keep a stale
subtree, which these tests would see.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from typing import Any

import autograd
import autograd.numpy as anp
import numpy as np
import pytest
from oracles import finite_difference

import einsgrad as eg
from einsgrad.core import kinds
from einsgrad.core.derivation import RuleSteps
from einsgrad.core.errors import NoFormError, ShapeError
from einsgrad.core.ir import Expr, Meta
from einsgrad.core.lowering import Lowered, StepInput
from einsgrad.graph.keys import structural_key
from einsgrad.graph.printing import ATOM
from einsgrad.graph.rewrite import rebuild

# --- the toy kind, with every entry ----------------------------------------------------------


class Reshape(Expr):
    """``arg`` reshaped (row-major) to ``target``."""

    __slots__ = ("arg", "target")
    kind = "reshape"
    arg: Expr
    target: tuple[int, ...]

    def __new__(cls, arg: Expr, target: tuple[int, ...]) -> Reshape:
        def build(node: Any) -> None:
            node.arg, node.target, node.shape = arg, target, target

        return cls._interned((arg, target), build)  # type: ignore[no-any-return]

    @property
    def children(self) -> tuple[Expr, ...]:
        return (self.arg,)


def reshape(x: Any, target: Sequence[int], kind: type[Reshape] = Reshape) -> Expr:
    x = eg.as_expr(x)
    assert x.shape is None or np.prod(x.shape) == np.prod(target)
    return kind(x, tuple(target))


def _infer(node: Reshape, children: Sequence[Meta], references: Sequence[Meta]) -> Meta:
    if int(np.prod(children[0].shape)) != int(np.prod(node.target)):
        raise ShapeError(f"cannot reshape {children[0].shape} to {node.target}")
    return Meta(node.target, children[0].dtype)


def _vjp(node: Reshape, g: Expr, wanted: Sequence[bool]) -> list[Expr | None]:
    """y[r] = x[unravel(r)];  x̄ = reshape(ȳ, x.shape)."""
    return [reshape(g, node.arg.shape, type(node)) if wanted[0] else None]  # type: ignore[arg-type]


def _jvp(node: Reshape, tangents: Sequence[Expr | None], extra: tuple[int, ...] | None) -> Any:
    (t,) = tangents
    return None if t is None else reshape(t, node.target + (extra or ()), type(node))


def _batched_vjp(node: Reshape, g: Expr, wanted: Sequence[bool], batch: str) -> list[Any]:
    assert g.shape is not None and node.arg.shape is not None
    return [reshape(g, g.shape[: len(batch)] + node.arg.shape, type(node))]


def _lower(node: Reshape, step: StepInput) -> Lowered:
    xp, target = step.backend.xp, node.target
    return Lowered.step(lambda x: xp.reshape(x, target), step.reads, f"reshape {target}")


def _text(node: Reshape, text_of: Any, wrap: Any) -> tuple[str, int]:
    return f"reshape({text_of(node.arg)[0]}, {node.target})", ATOM


def _rebuild(node: Reshape, children: Sequence[Expr], references: Sequence[Expr]) -> Expr:
    return reshape(children[0], node.target, type(node))


def _key(node: Reshape, child_keys: Sequence[str], reference_keys: Sequence[str]) -> list[Any]:
    return ["reshape", node.target, *child_keys]


def _simplify(node: Reshape, shared: set[Expr]) -> Expr:
    return node


def _explain(node: Reshape, position: int, names: Sequence[str], output: str) -> RuleSteps:
    """x̄ = reshape(ȳ, x.shape), as data: the rule applied to a cotangent variable."""
    cotangent = eg.var("d" + output, node.shape)
    result = reshape(cotangent, node.arg.shape, type(node))  # type: ignore[arg-type]
    return RuleSteps(f"Through {output} = reshape({names[0]})", result, cotangent)


def _matrix(node: Reshape, form_of: Any, style: str) -> tuple[str | None, int]:
    return None, 0  # matrix notation has no symbol for a reshape


def _index(node: Reshape, labels: Sequence[str], writer: Any) -> tuple[str, int]:
    raise NoFormError("index notation has no form for a reshape")


ENTRIES: dict[str, Callable[..., Any]] = {
    "infer": _infer,
    "vjp": _vjp,
    "jvp": _jvp,
    "batched_vjp": _batched_vjp,
    "lower": _lower,
    "text": _text,
    "rebuild": _rebuild,
    "key": _key,
    "simplify": _simplify,
    "explain": _explain,
    "matrix": _matrix,
    "index": _index,
}


def test_the_toy_kind_covers_every_pass() -> None:
    assert set(ENTRIES) == set(kinds.PASSES)


@pytest.fixture
def registered() -> Iterator[None]:
    kinds.register(Reshape, **ENTRIES)
    yield
    kinds.unregister(Reshape)


# --- a model through the toy kind, and its independent references ---------------------------

RNG = np.random.default_rng(7)
ARRAYS = {
    "X": RNG.normal(size=(2, 3)),
    "W": RNG.normal(size=(3, 4)),
    "c": RNG.normal(size=(4, 2)),
}


def _model() -> tuple[Expr, Expr, Expr, Expr]:
    X, W, c = eg.var("X", (2, 3)), eg.var("W", (3, 4)), eg.var("c", (4, 2))
    Y = reshape(eg.tanh(X @ W), (4, 2))  # not a transpose: the entries move
    loss = eg.sum(Y * Y * c) + eg.sum(eg.exp(reshape(W, (12,)) * 0.1))
    return loss, Y, X, W


def _reference_loss(X: Any, W: Any, c: Any) -> Any:
    Y = anp.reshape(anp.tanh(anp.dot(X, W)), (4, 2))
    return anp.sum(Y * Y * c) + anp.sum(anp.exp(anp.reshape(W, (12,)) * 0.1))


def _reference_output(X: Any, W: Any) -> Any:
    return anp.reshape(anp.tanh(anp.dot(X, W)), (4, 2))


def test_grad_matches_finite_differences_and_autograd(registered: None) -> None:
    loss, _, X, W = _model()
    dX, dW = eg.grad(loss, [X, W])
    for name, derived, position in (("X", dX, 0), ("W", dW, 1)):
        got = derived(**ARRAYS)
        fd = finite_difference(lambda **a: _reference_loss(**a), ARRAYS, name)
        ag = autograd.grad(_reference_loss, position)(*ARRAYS.values())
        np.testing.assert_allclose(got, fd, rtol=1e-6, atol=1e-8)
        np.testing.assert_allclose(got, ag, rtol=1e-12, atol=1e-12)
        assert np.abs(got).max() > 0.1  # a pass that dropped the kind would give zeros


def test_jvp_and_vjp_match_autograd(registered: None) -> None:
    _, Y, _X, W = _model()
    V, U = RNG.normal(size=(3, 4)), RNG.normal(size=(4, 2))
    tangent = eg.jvp(Y, {W: eg.var("V", (3, 4))})(X=ARRAYS["X"], W=ARRAYS["W"], V=V)
    step = 1e-6
    x, w = ARRAYS["X"], ARRAYS["W"]
    fd = (_reference_output(x, w + step * V) - _reference_output(x, w - step * V)) / (2 * step)
    np.testing.assert_allclose(tangent, fd, rtol=1e-6, atol=1e-8)
    cotangent = eg.vjp(Y, W, eg.var("U", (4, 2)))(X=x, W=w, U=U)
    pullback, _ = autograd.make_vjp(lambda w_: _reference_output(x, w_))(w)
    np.testing.assert_allclose(cotangent, pullback(U), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("mode", ["forward", "reverse", "auto"])
def test_jacobian_matches_autograd_in_every_mode(registered: None, mode: str) -> None:
    _, Y, _X, W = _model()
    J = eg.jacobian(Y, W, mode=mode)  # type: ignore[arg-type]
    assert J.shape == (4, 2, 3, 4)
    got = J(X=ARRAYS["X"], W=ARRAYS["W"])
    want = autograd.jacobian(lambda w_: _reference_output(ARRAYS["X"], w_))(ARRAYS["W"])
    np.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-12)
    for index in np.ndindex(4, 2):  # each output entry's gradient, by central differences
        fd = finite_difference(
            lambda X, W, at=index: _reference_output(X, W)[at],
            {"X": ARRAYS["X"], "W": ARRAYS["W"]},
            "W",
        )
        np.testing.assert_allclose(got[index], fd, rtol=1e-6, atol=1e-8)


def test_hessian_matches_autograd(registered: None) -> None:
    loss, _, _X, W = _model()
    H = eg.hessian(loss, W)
    got = H(**ARRAYS)
    want = autograd.hessian(lambda w_: _reference_loss(ARRAYS["X"], w_, ARRAYS["c"]))(ARRAYS["W"])
    np.testing.assert_allclose(got, want, rtol=1e-9, atol=1e-10)
    assert np.abs(want).max() > 0.1
    # Central differences of the reference gradient (numpy's forward, autograd's reverse).
    gradient = autograd.grad(_reference_loss, 1)
    for index in np.ndindex(3, 4):
        fd = finite_difference(lambda X, W, c, at=index: gradient(X, W, c)[at], ARRAYS, "W")
        np.testing.assert_allclose(got[index], fd, rtol=1e-5, atol=1e-7)


def test_simplify_printing_explain_and_compile(registered: None) -> None:
    loss, _, _X, W = _model()
    dW = eg.grad(loss, W)
    simple = eg.simplify(dW)
    want = autograd.grad(_reference_loss, 1)(*ARRAYS.values())
    np.testing.assert_allclose(simple(**ARRAYS), want, rtol=1e-12, atol=1e-12)
    assert "reshape(" in str(simple) and "reshape(" in repr(dW)
    assert structural_key(simple) == structural_key(eg.simplify(dW))
    derivation = eg.explain(loss, W)
    assert any("= reshape(∂L/∂" in line for step in derivation.steps for line in step.text)
    compiled = eg.compile([dW, loss])
    got_dW, got_loss = compiled(**ARRAYS)
    np.testing.assert_allclose(got_dW, want, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(got_loss, _reference_loss(*ARRAYS.values()), rtol=1e-12)
    assert "reshape" in str(compiled.plan())
    assert dW.to_matrix() is None  # no matrix form, said as such
    with pytest.raises(eg.EinsgradError, match="no form for a reshape"):
        dW.to_index()


def test_rebuild_replaces_below_the_toy_kind(registered: None) -> None:
    _, Y, X, _W = _model()
    doubled = rebuild([Y], replace={X: 2 * X})[0]
    want = _reference_output(2 * ARRAYS["X"], ARRAYS["W"])
    np.testing.assert_allclose(doubled(X=ARRAYS["X"], W=ARRAYS["W"]), want, rtol=1e-12)


# --- a kind missing one entry: every pass that needs it says so -----------------------------


def _uses(pass_name: str, kind: type[Reshape]) -> Callable[[], Any]:
    """A call that needs ``pass_name``'s entry of ``kind`` (and that entry only, first)."""
    X, W = eg.var("X", (2, 3)), eg.var("W", (3, 4))
    Y = reshape(X @ W, (4, 2), kind)
    loss = eg.sum(eg.tanh(Y))
    shapeless = reshape(eg.var("Z"), (6,), kind) if pass_name == "infer" else Y
    calls: dict[str, Callable[[], Any]] = {
        "infer": lambda: shapeless(Z=np.ones((2, 3))),
        "vjp": lambda: eg.grad(loss, W),
        "jvp": lambda: eg.jvp(Y, {W: np.ones((3, 4))}),
        "batched_vjp": lambda: eg.jacobian(Y, W, mode="reverse"),
        "lower": lambda: Y(X=ARRAYS["X"], W=ARRAYS["W"]),
        "text": lambda: str(Y),
        "rebuild": lambda: rebuild([Y], replace={X: 2 * X}),
        "key": lambda: structural_key(Y),
        "simplify": lambda: eg.simplify(loss),
        "explain": lambda: eg.explain(loss, W),
        "matrix": lambda: Y.to_matrix(),
        "index": lambda: Y.to_index(),
    }
    return calls[pass_name]


@pytest.mark.parametrize("pass_name", kinds.PASSES)
def test_a_missing_entry_raises_naming_the_kind_and_the_pass(pass_name: str) -> None:
    incomplete = type(f"Gap_{pass_name}", (Reshape,), {"__slots__": ()})
    entries = {name: rule for name, rule in ENTRIES.items() if name != pass_name}
    kinds.register(incomplete, **entries)
    try:
        with pytest.raises(eg.MissingRuleError) as error:
            _uses(pass_name, incomplete)()
        message = str(error.value)
        assert incomplete.__name__ in message and repr(pass_name) in message
        assert isinstance(error.value, eg.EinsgradError)
        assert isinstance(error.value, NotImplementedError)
    finally:
        kinds.unregister(incomplete)


def test_an_unregistered_kind_fails_in_the_first_pass_it_meets() -> None:
    loss = eg.sum(eg.tanh(Reshape(eg.var("X", (2, 3)), (6,))))
    with pytest.raises(eg.MissingRuleError, match="Reshape has no 'vjp' rule"):
        eg.grad(loss, "X")


def test_registering_an_unknown_pass_is_refused() -> None:
    with pytest.raises(eg.MissingRuleError, match="unknown pass vjpp"):
        kinds.register(Reshape, vjpp=_vjp)


# --- the built-in rows ---------------------------------------------------------------------


def test_every_built_in_kind_has_every_entry() -> None:
    built_in = [kind for kind in kinds.kinds() if kind.__module__.startswith("einsgrad.")]
    assert {kind.__name__ for kind in built_in} >= {
        "Var",
        "Const",
        "Einsum",
        "Map",
        "Reduce",
        "Size",
        "Seed",
    }
    gaps = {kind.__name__: kinds.missing(kind) for kind in built_in if kinds.missing(kind)}
    assert gaps == {}, f"node kinds without an entry for some pass: {gaps}"
