"""Cases of the gradients issue: one reverse-mode gradient call per case, all parameters.

* ``linear-layer``: the seed notes' layer, ``L = mean_b Σ_j relu(XW + b)²``, wrt W, X, b; at
  the seed's X 2×3, W 3×5 and at X 512×1024, W 1024×1024.
* ``mlp``: a 3-layer perceptron with biases, ReLU and softmax cross-entropy (one-hot
  labels), wrt all six weights and biases: one training step's gradient.
* ``bilinear``: the bilinear form ``Σ_b x_bᵀ A y_b`` over a batch, wrt X, A and Y.
* ``attention``: single-head attention ``softmax(QKᵀ/√d) V`` with ``Q, K, V = XW_q, XW_k,
  XW_v``, pulled back from an upstream cotangent G (``L = Σ G ⊙ O``), wrt X, W_q, W_k, W_v.
* ``matrix-chain``: the 4-matrix chain ``"ab,bc,cd,de->ae"`` pulled back from G, wrt all four
  matrices; several sizes, plotted.
* ``mps-overlap``: the overlap ⟨φ|ψ⟩ of two open-boundary matrix-product states (tensor
  trains), one einsum over all 2N cores, wrt each of ψ's cores.
* ``trace-diagonal``: ``Σ tanh(einsum("bii,bij->bj", A, M)) + Σ_b (tr A_b)²``, wrt A and M
  (A's gradient lives on the diagonals).

einsgrad runs ``eg.compile(list(eg.grad(L, params)))``; JAX ``jax.jit(jax.grad(f,
argnums=...))``; torch ``torch.autograd.grad(f(...), params)`` on CPU tensors sharing the
numpy inputs' memory; HIPS autograd ``autograd.grad(f, argnum=...)``. Every competitor
writes the same formula (einsums as einsums), except where noted in its label.
"""

from __future__ import annotations

import math
import string
from collections.abc import Callable
from typing import Any

import numpy as np

import einsgrad as eg

from . import competitors as lib
from .cases import Arrays, Case, Goal, Impl, Thunk, at_most, derivation_within, register

MakeF = Callable[[], Callable[..., Any]]


# --- competitors built from one loss function of the inputs ``names`` ---------------------


def _argnums(names: str, wrt: str) -> tuple[int, ...]:
    order = names.split()
    return tuple(order.index(name) for name in wrt.split())


def jax_grad(make_f: MakeF, names: str, wrt: str) -> Impl:
    """``jax.jit(jax.grad(f, argnums=...))`` of ``f(*names)``, the ``wrt`` inputs differentiated."""
    argnums = _argnums(names, wrt)

    def prepare(arrays: Arrays) -> Thunk:
        jax = lib.jax()
        compiled = jax.jit(jax.grad(make_f(), argnums=argnums))
        args = lib.jax_inputs(arrays, names)
        return lambda: lib.block(compiled(*args))

    return Impl("jax", "jax.jit(jax.grad(f, argnums))", prepare)


def torch_grad(make_f: MakeF, names: str, wrt: str, label: str = "") -> Impl:
    """``torch.autograd.grad(f(*names), [wrt tensors])``: the graph is built in every call."""

    def prepare(arrays: Arrays) -> Thunk:
        torch = lib.torch()
        f = make_f()
        args = lib.torch_inputs(arrays, names)
        by_name = dict(zip(names.split(), args, strict=True))
        params = [by_name[name].requires_grad_(True) for name in wrt.split()]
        return lambda: torch.autograd.grad(f(*args), params)

    return Impl("torch", label or "torch.autograd.grad(f(...), params)", prepare)


def autograd_grad(
    make_f: MakeF, names: str, wrt: str, label: str = "", skip: str | None = None
) -> Impl:
    """HIPS ``autograd.grad(f, argnum=...)``."""
    argnums = _argnums(names, wrt)

    def prepare(arrays: Arrays) -> Thunk:
        gradient = lib.autograd().grad(make_f(), argnum=argnums)
        args = [arrays[name] for name in names.split()]
        return lambda: gradient(*args)

    return Impl("autograd", label or "autograd.grad(f, argnum)", prepare, skip)


def numpy_grad(label: str, prepare: Callable[[Arrays], Thunk]) -> Impl:
    """Hand-written numpy gradients."""
    return Impl("numpy", label, prepare)


def _normal(rng: np.random.Generator, shape: tuple[int, ...], scale: float = 1.0) -> np.ndarray:
    return rng.standard_normal(shape) * scale


# --- linear layer (the seed notes) --------------------------------------------------------

SEED_LAYER = (2, 3, 5)
LARGE_LAYER = (512, 1024, 1024)


def _linear_numpy(arrays: Arrays) -> Thunk:
    X, W, b = arrays["X"], arrays["W"], arrays["b"]
    scale = 2.0 / X.shape[0]

    def gradients() -> tuple[np.ndarray, ...]:
        dY = np.maximum(X @ W + b, 0.0)
        dY *= scale  # ∂/∂Y of mean_b Σ_j relu(Y)² = 2 relu(Y) / B (relu' is its mask)
        return X.T @ dY, dY @ W.T, dY.sum(axis=0)

    return gradients


def _linear_jax() -> Callable[..., Any]:
    jax, jnp = lib.jax(), lib.jnp()
    return lambda W, X, b: jnp.mean(jnp.sum(jax.nn.relu(X @ W + b) ** 2, axis=1))


def _linear_torch() -> Callable[..., Any]:
    torch = lib.torch()
    return lambda W, X, b: torch.mean(torch.sum(torch.relu(X @ W + b) ** 2, dim=1))


def _linear_autograd() -> Callable[..., Any]:
    anp = lib.anp()
    return lambda W, X, b: anp.mean(anp.sum(anp.maximum(anp.dot(X, W) + b, 0.0) ** 2, axis=1))


@register("linear-layer", quick=(SEED_LAYER, (128, 256, 256)), full=(SEED_LAYER, LARGE_LAYER))
def linear_layer(size: tuple[int, int, int]) -> Case:
    """Gradients of the seed notes' loss mean_b Σ_j relu(XW + b)² wrt W, X and b."""
    B, n_in, n_out = size

    def inputs(rng: np.random.Generator) -> dict[str, np.ndarray]:
        return {
            "X": _normal(rng, (B, n_in)),
            "W": _normal(rng, (n_in, n_out), 1 / math.sqrt(n_in)),
            "b": _normal(rng, (n_out,)),
        }

    def derive() -> Any:
        X, W, b = eg.var("X", (B, n_in)), eg.var("W", (n_in, n_out)), eg.var("b", (n_out,))
        loss = eg.mean(eg.sum(eg.relu(X @ W + b) ** 2, axis=1))
        return eg.grad(loss, [W, X, b])

    goals: tuple[Goal, ...] = ()
    if size == LARGE_LAYER:
        goals = (at_most("numpy", 1.10, "≤ 1.10× hand-written numpy"),)
    if size == SEED_LAYER:
        goals = (at_most("jax", 2.0, "per call ≤ 2× a jitted JAX call (small problem)"),)
    names = "W X b"
    return Case(
        name="linear-layer",
        group="gradients",
        size=f"X {B}×{n_in}, W {n_in}×{n_out}",
        description="∂/∂(W, X, b) of mean_b Σ_j relu(XW + b)² (the seed notes' layer)",
        inputs=inputs,
        derive=derive,
        competitors=(
            numpy_grad("dY = 2 relu(XW+b)/B; Xᵀ dY, dY Wᵀ, Σ_b dY", _linear_numpy),
            jax_grad(_linear_jax, names, names),
            torch_grad(_linear_torch, names, names),
            autograd_grad(_linear_autograd, names, names),
        ),
        goals=goals,
        params={"B": B, "n_in": n_in, "n_out": n_out},
    )


# --- 3-layer MLP, softmax cross-entropy ---------------------------------------------------

MLP_FULL = (128, 784, 512, 10)
MLP_PARAMS = "W1 b1 W2 b2 W3 b3"
MLP_INPUTS = "W1 b1 W2 b2 W3 b3 X Y"


def _mlp_numpy(arrays: Arrays) -> Thunk:
    X, Y = arrays["X"], arrays["Y"]
    W1, b1, W2, b2, W3, b3 = (arrays[name] for name in MLP_PARAMS.split())

    def gradients() -> tuple[np.ndarray, ...]:
        z1 = X @ W1 + b1
        h1 = np.maximum(z1, 0.0)
        z2 = h1 @ W2 + b2
        h2 = np.maximum(z2, 0.0)
        z3 = h2 @ W3 + b3
        p = np.exp(z3 - z3.max(axis=1, keepdims=True))
        p /= p.sum(axis=1, keepdims=True)
        d3 = (p - Y) / X.shape[0]  # one-hot labels: each row of Y sums to 1
        d2 = (d3 @ W3.T) * (z2 > 0)
        d1 = (d2 @ W2.T) * (z1 > 0)
        return X.T @ d1, d1.sum(0), h1.T @ d2, d2.sum(0), h2.T @ d3, d3.sum(0)

    return gradients


def _mlp_jax() -> Callable[..., Any]:
    jax, jnp = lib.jax(), lib.jnp()

    def loss(W1: Any, b1: Any, W2: Any, b2: Any, W3: Any, b3: Any, X: Any, Y: Any) -> Any:
        h1 = jax.nn.relu(X @ W1 + b1)
        h2 = jax.nn.relu(h1 @ W2 + b2)
        return -jnp.mean(jnp.sum(Y * jax.nn.log_softmax(h2 @ W3 + b3, axis=-1), axis=-1))

    return loss


def _mlp_torch() -> Callable[..., Any]:
    torch = lib.torch()

    def loss(W1: Any, b1: Any, W2: Any, b2: Any, W3: Any, b3: Any, X: Any, Y: Any) -> Any:
        h1 = torch.relu(X @ W1 + b1)
        h2 = torch.relu(h1 @ W2 + b2)
        return -torch.mean(torch.sum(Y * torch.log_softmax(h2 @ W3 + b3, dim=-1), dim=-1))

    return loss


def _mlp_autograd() -> Callable[..., Any]:
    anp = lib.anp()
    from autograd.scipy.special import logsumexp

    def loss(W1: Any, b1: Any, W2: Any, b2: Any, W3: Any, b3: Any, X: Any, Y: Any) -> Any:
        h1 = anp.maximum(anp.dot(X, W1) + b1, 0.0)
        h2 = anp.maximum(anp.dot(h1, W2) + b2, 0.0)
        z = anp.dot(h2, W3) + b3
        return -anp.mean(anp.sum(Y * (z - logsumexp(z, axis=-1, keepdims=True)), axis=-1))

    return loss


@register("mlp", quick=((32, 128, 128, 10),), full=(MLP_FULL,))
def mlp(size: tuple[int, int, int, int]) -> Case:
    """One training step's gradient of a 3-layer MLP with softmax cross-entropy."""
    B, D, H, C = size

    def inputs(rng: np.random.Generator) -> dict[str, np.ndarray]:
        return {
            "X": _normal(rng, (B, D)),
            "Y": np.eye(C)[rng.integers(0, C, B)],
            "W1": _normal(rng, (D, H), math.sqrt(2 / D)),
            "b1": _normal(rng, (H,), 0.1),
            "W2": _normal(rng, (H, H), math.sqrt(2 / H)),
            "b2": _normal(rng, (H,), 0.1),
            "W3": _normal(rng, (H, C), math.sqrt(1 / H)),
            "b3": _normal(rng, (C,), 0.1),
        }

    def derive() -> Any:
        X, Y = eg.var("X", (B, D)), eg.var("Y", (B, C))
        W1, b1 = eg.var("W1", (D, H)), eg.var("b1", (H,))
        W2, b2 = eg.var("W2", (H, H)), eg.var("b2", (H,))
        W3, b3 = eg.var("W3", (H, C)), eg.var("b3", (C,))
        h1 = eg.relu(X @ W1 + b1)
        h2 = eg.relu(h1 @ W2 + b2)
        loss = -eg.mean(eg.sum(Y * eg.log_softmax(h2 @ W3 + b3, axis=-1), axis=-1))
        return eg.grad(loss, [W1, b1, W2, b2, W3, b3])

    goals: tuple[Goal, ...] = ()
    if size == MLP_FULL:
        goals = (
            at_most("jax", 1.0, "training-step gradient ≤ 1.0× jax.jit(jax.grad)"),
            derivation_within(0.050, "derivation + compilation ≤ 50 ms"),
        )
    return Case(
        name="mlp",
        group="gradients",
        size=f"B {B}, {D}→{H}→{H}→{C}",
        description="∂/∂(W1, b1, W2, b2, W3, b3) of softmax cross-entropy of a 3-layer ReLU MLP",
        inputs=inputs,
        derive=derive,
        competitors=(
            numpy_grad("backprop by hand, softmax − Y", _mlp_numpy),
            jax_grad(_mlp_jax, MLP_INPUTS, MLP_PARAMS),
            torch_grad(_mlp_torch, MLP_INPUTS, MLP_PARAMS),
            autograd_grad(_mlp_autograd, MLP_INPUTS, MLP_PARAMS),
        ),
        goals=goals,
        params={"B": B, "D": D, "H": H, "C": C},
    )


# --- bilinear form ------------------------------------------------------------------------

BILINEAR = "bi,ij,bj->"


def _bilinear_numpy(arrays: Arrays) -> Thunk:
    X, A, Y = arrays["X"], arrays["A"], arrays["Y"]
    return lambda: (Y @ A.T, X.T @ Y, X @ A)


def _bilinear_jax() -> Callable[..., Any]:
    jnp = lib.jnp()
    return lambda X, A, Y: jnp.einsum(BILINEAR, X, A, Y)


def _bilinear_torch() -> Callable[..., Any]:
    torch = lib.torch()
    return lambda X, A, Y: torch.einsum(BILINEAR, X, A, Y)


def _bilinear_autograd() -> Callable[..., Any]:
    anp = lib.anp()
    return lambda X, A, Y: anp.einsum(BILINEAR, X, A, Y)


@register("bilinear", quick=((64, 256),), full=((256, 1024),))
def bilinear(size: tuple[int, int]) -> Case:
    """Gradients of the bilinear form Σ_b x_bᵀ A y_b wrt X, A and Y."""
    B, n = size

    def inputs(rng: np.random.Generator) -> dict[str, np.ndarray]:
        return {"X": _normal(rng, (B, n)), "A": _normal(rng, (n, n)), "Y": _normal(rng, (B, n))}

    def derive() -> Any:
        X, A, Y = eg.var("X", (B, n)), eg.var("A", (n, n)), eg.var("Y", (B, n))
        return eg.grad(eg.einsum(BILINEAR, X, A, Y), [X, A, Y])

    names = "X A Y"
    return Case(
        name="bilinear",
        group="gradients",
        size=f"B {B}, n {n}",
        description=f"∂/∂(X, A, Y) of einsum('{BILINEAR}', X, A, Y) = Σ_b x_bᵀ A y_b",
        inputs=inputs,
        derive=derive,
        competitors=(
            numpy_grad("Y Aᵀ, Xᵀ Y, X A", _bilinear_numpy),
            jax_grad(_bilinear_jax, names, names),
            torch_grad(_bilinear_torch, names, names),
            autograd_grad(_bilinear_autograd, names, names),
        ),
        params={"B": B, "n": n},
    )


# --- single-head attention ----------------------------------------------------------------

ATTENTION_INPUTS = "X Wq Wk Wv G"
ATTENTION_WRT = "X Wq Wk Wv"


def _attention_numpy(arrays: Arrays) -> Thunk:
    X, Wq, Wk, Wv, G = (arrays[name] for name in ATTENTION_INPUTS.split())
    B, T, D = X.shape
    d = Wq.shape[1]
    scale = 1 / math.sqrt(d)
    Xf = X.reshape(B * T, D)

    def gradients() -> tuple[np.ndarray, ...]:
        Q = (Xf @ Wq).reshape(B, T, d)
        K = (Xf @ Wk).reshape(B, T, d)
        V = (Xf @ Wv).reshape(B, T, d)
        S = (Q @ K.transpose(0, 2, 1)) * scale
        P = np.exp(S - S.max(axis=-1, keepdims=True))
        P /= P.sum(axis=-1, keepdims=True)
        dV = P.transpose(0, 2, 1) @ G
        dP = G @ V.transpose(0, 2, 1)
        dS = P * (dP - np.sum(dP * P, axis=-1, keepdims=True)) * scale
        dQ = (dS @ K).reshape(B * T, d)
        dK = (dS.transpose(0, 2, 1) @ Q).reshape(B * T, d)
        dVf = dV.reshape(B * T, d)
        dX = (dQ @ Wq.T + dK @ Wk.T + dVf @ Wv.T).reshape(B, T, D)
        return dX, Xf.T @ dQ, Xf.T @ dK, Xf.T @ dVf

    return gradients


def _attention_jax() -> Callable[..., Any]:
    jax, jnp = lib.jax(), lib.jnp()

    def loss(X: Any, Wq: Any, Wk: Any, Wv: Any, G: Any) -> Any:
        Q, K, V = (jnp.einsum("btd,de->bte", X, W) for W in (Wq, Wk, Wv))
        S = jnp.einsum("bte,bse->bts", Q, K) / math.sqrt(Q.shape[-1])
        return jnp.sum(G * jnp.einsum("bts,bse->bte", jax.nn.softmax(S, axis=-1), V))

    return loss


def _attention_torch() -> Callable[..., Any]:
    torch = lib.torch()

    def loss(X: Any, Wq: Any, Wk: Any, Wv: Any, G: Any) -> Any:
        Q, K, V = (torch.einsum("btd,de->bte", X, W) for W in (Wq, Wk, Wv))
        S = torch.einsum("bte,bse->bts", Q, K) / math.sqrt(Q.shape[-1])
        return torch.sum(G * torch.einsum("bts,bse->bte", torch.softmax(S, dim=-1), V))

    return loss


def _attention_autograd() -> Callable[..., Any]:
    anp = lib.anp()
    from autograd.scipy.special import logsumexp

    def loss(X: Any, Wq: Any, Wk: Any, Wv: Any, G: Any) -> Any:
        Q, K, V = (anp.einsum("btd,de->bte", X, W) for W in (Wq, Wk, Wv))
        S = anp.einsum("bte,bse->bts", Q, K) / math.sqrt(Q.shape[-1])
        P = anp.exp(S - logsumexp(S, axis=-1, keepdims=True))
        return anp.sum(G * anp.einsum("bts,bse->bte", P, V))

    return loss


@register("attention", quick=((4, 64, 64, 32),), full=((8, 256, 256, 64),))
def attention(size: tuple[int, int, int, int]) -> Case:
    """Single-head attention pulled back from a cotangent G: ∂/∂(X, Wq, Wk, Wv) of Σ G ⊙ O."""
    B, T, D, d = size

    def inputs(rng: np.random.Generator) -> dict[str, np.ndarray]:
        return {
            "X": _normal(rng, (B, T, D)),
            "Wq": _normal(rng, (D, d), 1 / math.sqrt(D)),
            "Wk": _normal(rng, (D, d), 1 / math.sqrt(D)),
            "Wv": _normal(rng, (D, d), 1 / math.sqrt(D)),
            "G": _normal(rng, (B, T, d)),
        }

    def derive() -> Any:
        X, G = eg.var("X", (B, T, D)), eg.var("G", (B, T, d))
        Wq, Wk, Wv = (eg.var(name, (D, d)) for name in ("Wq", "Wk", "Wv"))
        Q, K, V = (eg.einsum("btd,de->bte", X, W) for W in (Wq, Wk, Wv))
        S = eg.einsum("bte,bse->bts", Q, K) * (1 / math.sqrt(d))
        out = eg.einsum("bts,bse->bte", eg.softmax(S, axis=-1), V)
        return eg.grad(eg.sum(G * out), [X, Wq, Wk, Wv])

    return Case(
        name="attention",
        group="gradients",
        size=f"B {B}, T {T}, D {D}, d {d}",
        description="∂/∂(X, Wq, Wk, Wv) of Σ G ⊙ softmax(QKᵀ/√d) V, Q = XWq, K = XWk, V = XWv",
        inputs=inputs,
        derive=derive,
        competitors=(
            numpy_grad("backprop by hand, batched matmuls", _attention_numpy),
            jax_grad(_attention_jax, ATTENTION_INPUTS, ATTENTION_WRT),
            torch_grad(_attention_torch, ATTENTION_INPUTS, ATTENTION_WRT),
            autograd_grad(_attention_autograd, ATTENTION_INPUTS, ATTENTION_WRT),
        ),
        params={"B": B, "T": T, "D": D, "d": d},
    )


# --- the 4-matrix chain -------------------------------------------------------------------

CHAIN = "ab,bc,cd,de->ae"
CHAIN_GOAL_N = 256
# autograd's anp.einsum runs the 4-operand einsum, and each vjp einsum, unplanned: one loop
# over all five labels, n⁵ steps (0.8 s a call at n = 32, about 30 s at n = 64).
AUTOGRAD_CHAIN_MAX_N = 32


def _chain_numpy(arrays: Arrays) -> Thunk:
    A, B, C, D, G = (arrays[name] for name in "ABCDG")

    def gradients() -> tuple[np.ndarray, ...]:
        AB = A @ B
        GDt = G @ D.T
        GDtCt = GDt @ C.T
        return GDtCt @ B.T, A.T @ GDtCt, AB.T @ GDt, (AB @ C).T @ G

    return gradients


def _chain_jax() -> Callable[..., Any]:
    jnp = lib.jnp()
    return lambda A, B, C, D, G: jnp.sum(jnp.einsum(CHAIN, A, B, C, D) * G)


def _chain_torch() -> Callable[..., Any]:
    torch = lib.torch()
    return lambda A, B, C, D, G: torch.sum(torch.einsum(CHAIN, A, B, C, D) * G)


def _chain_autograd() -> Callable[..., Any]:
    anp = lib.anp()
    return lambda A, B, C, D, G: anp.sum(anp.einsum(CHAIN, A, B, C, D) * G)


@register("matrix-chain", quick=(64, CHAIN_GOAL_N), full=(32, 64, 128, CHAIN_GOAL_N, 512))
def matrix_chain(n: int) -> Case:
    """All four gradients of Σ G ⊙ einsum("ab,bc,cd,de->ae", A, B, C, D), all sizes n."""

    def inputs(rng: np.random.Generator) -> dict[str, np.ndarray]:
        return {name: _normal(rng, (n, n), 1 / math.sqrt(n)) for name in "ABCDG"}

    def derive() -> Any:
        A, B, C, D, G = (eg.var(name, (n, n)) for name in "ABCDG")
        return eg.grad(eg.sum(eg.einsum(CHAIN, A, B, C, D) * G), [A, B, C, D])

    goals: tuple[Goal, ...] = ()
    if n == CHAIN_GOAL_N:
        goals = (
            at_most("jax", 1.0, "all four gradients ≤ 1.0× jax.jit(jax.grad)"),
            at_most("numpy", 1.2, "all four gradients ≤ 1.2× numpy"),
        )
    skip = None
    if n > AUTOGRAD_CHAIN_MAX_N:
        skip = (
            "anp.einsum and its vjps run the 4-operand einsum unplanned, n⁵ steps "
            f"(~0.8 s at n = 32, ~30 s at n = 64); run up to n = {AUTOGRAD_CHAIN_MAX_N}"
        )
    names, wrt = "A B C D G", "A B C D"
    return Case(
        name="matrix-chain",
        group="gradients",
        size=f"n={n}",
        description=f"∂/∂(A, B, C, D) of Σ G ⊙ einsum('{CHAIN}', A, B, C, D), all n×n",
        inputs=inputs,
        derive=derive,
        competitors=(
            numpy_grad("8 matmuls, shared AB and G Dᵀ", _chain_numpy),
            jax_grad(_chain_jax, names, wrt),
            torch_grad(_chain_torch, names, wrt),
            autograd_grad(_chain_autograd, names, wrt, skip=skip),
        ),
        goals=goals,
        params={"n": n},
        scale=("n", n),
    )


# --- matrix-product state / tensor train --------------------------------------------------


def mps_spec(sites: int) -> str:
    """The einsum of ⟨φ|ψ⟩ for open-boundary MPS: ψ's cores, then φ's, to a scalar.

    Physical labels p_k are shared by ψ_k and φ_k; ψ's bonds and φ's bonds are distinct.
    """
    letters = iter(string.ascii_letters)
    phys = [next(letters) for _ in range(sites)]
    bra = [next(letters) for _ in range(sites - 1)]
    ket = [next(letters) for _ in range(sites - 1)]

    def cores(bonds: list[str]) -> list[str]:
        return [
            (bonds[k - 1] if k > 0 else "") + phys[k] + (bonds[k] if k < sites - 1 else "")
            for k in range(sites)
        ]

    return ",".join(cores(ket) + cores(bra)) + "->"


def _mps_shapes(sites: int, d: int, chi: int) -> list[tuple[int, ...]]:
    middle: list[tuple[int, ...]] = [(chi, d, chi)] * (sites - 2)
    return [(d, chi), *middle, (chi, d)]


def _mps_numpy(sites: int) -> Callable[[Arrays], Thunk]:
    def prepare(arrays: Arrays) -> Thunk:
        psi = [arrays[f"psi{k}"] for k in range(sites)]
        phi = [arrays[f"phi{k}"] for k in range(sites)]
        td = np.tensordot

        def gradients() -> tuple[np.ndarray, ...]:
            # Environments: left[k] contracts sites < k, right[k] sites ≥ k (ψ bond, φ bond).
            left: list[Any] = [None] * (sites + 1)
            right: list[Any] = [None] * (sites + 1)
            left[1] = psi[0].T @ phi[0]
            for k in range(1, sites - 1):
                left[k + 1] = td(td(left[k], psi[k], (0, 0)), phi[k], ([0, 1], [0, 1]))
            right[sites - 1] = psi[-1] @ phi[-1].T
            for k in range(sites - 2, 0, -1):
                right[k] = td(td(psi[k], right[k + 1], (2, 0)), phi[k], ([1, 2], [1, 2]))
            grads = [phi[0] @ right[1].T]
            for k in range(1, sites - 1):
                grads.append(td(td(left[k], phi[k], (1, 0)), right[k + 1], (2, 1)))
            grads.append(left[sites - 1] @ phi[-1])
            return tuple(grads)

        return gradients

    return prepare


def _mps_einsum(module: Callable[[], Any], sites: int) -> MakeF:
    spec = mps_spec(sites)

    def make() -> Callable[..., Any]:
        einsum = module().einsum
        return lambda *cores: einsum(spec, *cores)

    return make


def _mps_autograd(sites: int) -> MakeF:
    def make() -> Callable[..., Any]:
        anp = lib.anp()

        def overlap(*cores: Any) -> Any:
            psi, phi = cores[:sites], cores[sites:]
            env = anp.dot(psi[0].T, phi[0])
            for k in range(1, sites - 1):
                env = anp.tensordot(anp.tensordot(env, psi[k], (0, 0)), phi[k], ([0, 1], [0, 1]))
            return anp.sum(anp.dot(env, phi[-1]) * psi[-1])

        return overlap

    return make


@register("mps-overlap", quick=((6, 2, 32),), full=((8, 4, 128),))
def mps_overlap(size: tuple[int, int, int]) -> Case:
    """∂⟨φ|ψ⟩/∂ψ_k for every core of an N-site MPS (physical d, bond χ): one einsum."""
    sites, d, chi = size
    shapes = _mps_shapes(sites, d, chi)
    psi_names = [f"psi{k}" for k in range(sites)]
    phi_names = [f"phi{k}" for k in range(sites)]
    spec = mps_spec(sites)

    def inputs(rng: np.random.Generator) -> dict[str, np.ndarray]:
        # Scaled so each transfer step keeps the environments of order one.
        arrays = {}
        for names in (psi_names, phi_names):
            for name, shape in zip(names, shapes, strict=True):
                arrays[name] = _normal(rng, shape, 1 / math.sqrt(d * math.sqrt(chi)))
        return arrays

    def derive() -> Any:
        psi = [eg.var(name, shape) for name, shape in zip(psi_names, shapes, strict=True)]
        phi = [eg.var(name, shape) for name, shape in zip(phi_names, shapes, strict=True)]
        return eg.grad(eg.einsum(spec, *psi, *phi), tuple(psi))

    names, wrt = " ".join(psi_names + phi_names), " ".join(psi_names)
    return Case(
        name="mps-overlap",
        group="gradients",
        size=f"N {sites}, d {d}, χ {chi}",
        description=f"∂⟨φ|ψ⟩/∂ψ_k for all k: one einsum of 2N MPS cores ('{spec}')",
        inputs=inputs,
        derive=derive,
        competitors=(
            numpy_grad("left/right environments, np.tensordot", _mps_numpy(sites)),
            jax_grad(_mps_einsum(lib.jnp, sites), names, wrt),
            torch_grad(_mps_einsum(lib.torch, sites), names, wrt),
            autograd_grad(
                _mps_autograd(sites),
                names,
                wrt,
                label="autograd.grad of a sweep of anp.tensordot (one anp.einsum over 2N "
                "cores runs unplanned: all labels in one loop)",
            ),
        ),
        params={"sites": sites, "d": d, "chi": chi},
        atol=1e-12,
    )


# --- trace / diagonal ---------------------------------------------------------------------

TRACE_SPEC = "bii,bij->bj"


def _trace_numpy(arrays: Arrays) -> Thunk:
    A, M = arrays["A"], arrays["M"]
    B, n, _ = A.shape

    def gradients() -> tuple[np.ndarray, ...]:
        diag = np.einsum("bii->bi", A)  # a view
        out = (diag[:, None, :] @ M)[:, 0, :]
        dout = 1.0 - np.tanh(out) ** 2
        ddiag = (M @ dout[:, :, None])[:, :, 0] + 2.0 * diag.sum(axis=1, keepdims=True)
        dA = np.zeros_like(A)
        dA.reshape(B, n * n)[:, :: n + 1] = ddiag
        return dA, diag[:, :, None] * dout[:, None, :]

    return gradients


def _trace_jax() -> Callable[..., Any]:
    jnp = lib.jnp()
    return lambda A, M: (
        jnp.sum(jnp.tanh(jnp.einsum(TRACE_SPEC, A, M))) + jnp.sum(jnp.einsum("bii->b", A) ** 2)
    )


def _trace_torch() -> Callable[..., Any]:
    torch = lib.torch()
    return lambda A, M: (
        torch.sum(torch.tanh(torch.einsum(TRACE_SPEC, A, M)))
        + torch.sum(torch.einsum("bii->b", A) ** 2)
    )


def _trace_autograd() -> Callable[..., Any]:
    anp = lib.anp()

    def loss(A: Any, M: Any) -> Any:
        diag = anp.diagonal(A, axis1=-1, axis2=-2)  # the axes its vjp supports
        return anp.sum(anp.tanh(anp.einsum("bi,bij->bj", diag, M))) + anp.sum(
            anp.sum(diag, axis=1) ** 2
        )

    return loss


@register("trace-diagonal", quick=((16, 64),), full=((64, 256),))
def trace_diagonal(size: tuple[int, int]) -> Case:
    """Gradients of Σ tanh(einsum('bii,bij->bj', A, M)) + Σ_b (tr A_b)² wrt A and M."""
    B, n = size

    def inputs(rng: np.random.Generator) -> dict[str, np.ndarray]:
        return {"A": _normal(rng, (B, n, n)), "M": _normal(rng, (B, n, n), 1 / math.sqrt(n))}

    def derive() -> Any:
        A, M = eg.var("A", (B, n, n)), eg.var("M", (B, n, n))
        loss = eg.sum(eg.tanh(eg.einsum(TRACE_SPEC, A, M))) + eg.sum(eg.einsum("bii->b", A) ** 2)
        return eg.grad(loss, [A, M])

    names = "A M"
    return Case(
        name="trace-diagonal",
        group="gradients",
        size=f"B {B}, n {n}",
        description=f"∂/∂(A, M) of Σ tanh(einsum('{TRACE_SPEC}', A, M)) + Σ_b (tr A_b)²",
        inputs=inputs,
        derive=derive,
        competitors=(
            numpy_grad("diagonal view, batched matmuls, strided diagonal write", _trace_numpy),
            jax_grad(_trace_jax, names, names),
            torch_grad(_trace_torch, names, names),
            autograd_grad(
                _trace_autograd,
                names,
                names,
                label="autograd.grad with anp.diagonal, then anp.einsum('bi,bij->bj') (the "
                "vjp of einsum('bii,...') writes 'bj,bij->bii', which numpy rejects)",
            ),
        ),
        params={"B": B, "n": n},
    )
