"""Every array backend against numpy, and the seam that keeps array code in einsgrad.backends.

Parametrized over the registry (as opt_einsum's tests are over its backends): each
backend whose library is installed runs the same table of contractions, embeddings,
dtype rules and ownership tests, compared with ``numpy.einsum``. A backend made of the
generic :class:`~einsgrad.backends.base.Backend` methods alone, on numpy arrays, runs
too: it is what a new backend inherits before it overrides anything.
"""

from __future__ import annotations

import ast
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import einsgrad as eg
from einsgrad import backends
from einsgrad.backends import available_backends, get_backend, register_backend
from einsgrad.backends.base import Backend
from einsgrad.core.spec import parse_spec, resolve

PACKAGE = Path(__file__).resolve().parent.parent / "einsgrad"


class GenericNumpy(Backend):
    """numpy arrays through the generic methods only: opt_einsum for every contraction,
    Kronecker deltas for every embedding. Implements just the abstract methods."""

    name = "generic-numpy"
    xp = np
    array_type = np.ndarray

    def asarray(self, value: Any) -> Any:
        array = np.asarray(value)
        if array.dtype.kind not in "fcbiu":
            raise TypeError(f"expected numbers, got {array.dtype}")
        return array if array.dtype.kind in "fc" else array.astype(np.float64)

    def owns(self, value: Any, dtype: Any) -> bool:
        return False  # always hand out a copy: correct, if not fast

    def finish(self, value: Any, dtype: np.dtype[Any] | None, taken: Sequence[Any]) -> Any:
        array = np.array(value, copy=True)
        return array.astype(dtype) if dtype is not None and array.dtype != dtype else array


BACKENDS = [*available_backends(), "generic-numpy"]


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Backend:
    name = request.param
    if name == "generic-numpy":
        monkeypatch.setitem(backends._REGISTRY, name, GenericNumpy())
    return get_backend(name)


def _inputs(shapes: Sequence[tuple[int, ...]], seed: int = 0) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [rng.standard_normal(shape) for shape in shapes]


def _contract(
    backend: Backend, spec: str, arrays: Sequence[np.ndarray], like: tuple[int, ...] | None = None
) -> np.ndarray:
    """``spec`` on ``arrays`` the way a program step runs it: contraction, then embedding."""
    shapes = tuple(a.shape for a in arrays)
    resolved = resolve(parse_spec(spec, generalized=True), shapes, like)
    operands = [backend.asarray(a) for a in arrays]
    result = backend.contraction(resolved, shapes, tuple(range(len(arrays))))(*operands)
    if not resolved.is_plain:
        result = backend.expand(
            result, resolved.core, resolved.output, resolved.sizes, np.dtype(np.float64)
        )
    return backend.to_numpy(backend.finish(result, np.dtype(np.float64), operands))


CONTRACTIONS = [
    ("ij,jk->ik", [(2, 3), (3, 4)], "plain matmul"),
    ("ij,jk->ki", [(2, 3), (3, 4)], "transposed output"),
    ("ji,jk->ik", [(3, 2), (3, 4)], "transposed operand"),
    ("bij,bjk->bik", [(2, 3, 4), (2, 4, 5)], "batch matmul"),
    ("bij,bjk->kbi", [(2, 3, 4), (2, 4, 5)], "batch matmul, permuted"),
    ("ij,j->i", [(2, 3), (3,)], "matvec"),
    ("i,j->ij", [(2,), (3,)], "outer"),
    ("ij,j->ij", [(2, 3), (3,)], "broadcast product"),
    ("ijk->j", [(2, 3, 4)], "sum"),
    ("ijk->kj", [(2, 3, 4)], "sum and transpose"),
    ("ij->ji", [(2, 3)], "transpose"),
    ("ii->", [(3, 3)], "trace"),
    ("ii->i", [(3, 3)], "diagonal extraction"),
    ("bii->bi", [(2, 3, 3)], "batched diagonal"),
    ("ij,jk,kl->il", [(2, 3), (3, 4), (4, 2)], "three operands"),
    ("ab,bc->ac", [(64, 48), (48, 40)], "large matmul"),
    ("abc,cd->abd", [(8, 16, 32), (32, 24)], "large batched"),
    ("aab,bc->ac", [(30, 30, 40), (40, 50)], "diagonal times matrix, past the small size"),
]


@pytest.mark.parametrize(
    ("spec", "shapes"), [(s, sh) for s, sh, _ in CONTRACTIONS], ids=[n for *_, n in CONTRACTIONS]
)
def test_contraction_matches_numpy_einsum(
    backend: Backend, spec: str, shapes: list[tuple[int, ...]]
) -> None:
    arrays = _inputs(shapes)
    np.testing.assert_allclose(
        _contract(backend, spec, arrays), np.einsum(spec, *arrays), rtol=1e-12, atol=1e-12
    )


EMBEDDINGS = [
    ("i->ii", [(3,)], (3, 3), lambda x: np.diag(x)),
    ("i->ij", [(3,)], (3, 4), lambda x: np.broadcast_to(x[:, None], (3, 4))),
    ("j->ij", [(4,)], (3, 4), lambda x: np.broadcast_to(x, (3, 4))),
    ("ij->iji", [(2, 3)], (2, 3, 2), lambda x: np.einsum("ij,ik->ijk", x, np.eye(2))),
    (
        "ij,jk->iki",
        [(2, 3), (3, 4)],
        (2, 4, 2),
        lambda x, y: np.einsum("ik,il->ikl", x @ y, np.eye(2)),
    ),
]


@pytest.mark.parametrize(
    ("spec", "shapes", "like", "expected"), EMBEDDINGS, ids=[e[0] for e in EMBEDDINGS]
)
def test_diagonal_embedding_and_broadcast(
    backend: Backend, spec: str, shapes: list[tuple[int, ...]], like: tuple[int, ...], expected: Any
) -> None:
    arrays = _inputs(shapes, seed=1)
    result = _contract(backend, spec, arrays, like)
    np.testing.assert_allclose(result, expected(*arrays), rtol=1e-14, atol=1e-15)


def test_expand_writes_the_diagonal_and_zeros_elsewhere(backend: Backend) -> None:
    core = backend.asarray(np.arange(1.0, 4.0))
    result = backend.to_numpy(backend.expand(core, (0,), (0, 0, 0), (3,), np.dtype(np.float64)))
    expected = np.zeros((3, 3, 3))
    for i in range(3):
        expected[i, i, i] = i + 1
    np.testing.assert_array_equal(result, expected)


def test_diagonal_extraction(backend: Backend) -> None:
    x = _inputs([(2, 3, 2)])[0]
    diagonal = backend.to_numpy(backend.diagonal(backend.asarray(x), (0, 1, 0)))
    np.testing.assert_array_equal(diagonal, np.einsum("iji->ij", x))


def test_broadcast_transposes_and_stretches(backend: Backend) -> None:
    x = _inputs([(2, 3)])[0]
    out = backend.broadcast(backend.asarray(x), (0, 1), (1, 2, 0), (2, 3, 4))
    np.testing.assert_array_equal(
        backend.to_numpy(out), np.broadcast_to(x.T[:, None, :], (3, 4, 2))
    )


@pytest.mark.parametrize(
    ("value", "dtype"),
    [
        (np.ones(3, np.float32), np.float32),
        (np.ones(3), np.float64),
        (np.ones(3, np.complex128), np.complex128),
        (np.arange(3), np.float64),
        (np.ones(3, bool), np.float64),
        ([1, 2, 3], np.float64),
        (2.5, np.float64),
    ],
    ids=["float32", "float64", "complex128", "int", "bool", "list", "scalar"],
)
def test_asarray_dtype_rules(backend: Backend, value: Any, dtype: Any) -> None:
    array = backend.asarray(value)
    assert backend.dtype(array) == np.dtype(dtype)
    np.testing.assert_array_equal(backend.to_numpy(array), np.asarray(value))


@pytest.mark.parametrize("value", [np.array(["a", "b"]), np.array([object()])], ids=str)
def test_asarray_refuses_what_is_not_numbers(backend: Backend, value: Any) -> None:
    with pytest.raises(TypeError, match="expected numbers"):
        backend.asarray(value)


def test_shape_and_dtype_queries(backend: Backend) -> None:
    x = backend.asarray(np.ones((2, 3), np.float32))
    assert backend.shape(x) == (2, 3) and isinstance(backend.shape(x)[0], int)
    assert backend.dtype(backend.astype(x, np.dtype(np.float64))) == np.float64
    assert backend.max_abs(backend.asarray(np.array([[1.0, -4.0]]))) == 4.0
    assert backend.max_abs(backend.asarray(np.ones((0, 3)))) == 0.0


def test_finished_results_are_fresh(backend: Backend) -> None:
    """What finish hands out shares memory with no input and is writable, whether the
    contraction made a view (a transpose, a diagonal) or a new array."""
    for spec, shapes in [
        ("ij->ji", [(2, 3)]),
        ("ii->i", [(3, 3)]),
        ("ij,jk->ik", [(2, 3), (3, 4)]),
    ]:
        arrays = [backend.asarray(a) for a in _inputs(shapes)]
        resolved = resolve(parse_spec(spec), [backend.shape(a) for a in arrays])
        shapes_ = tuple(backend.shape(a) for a in arrays)
        raw = backend.contraction(resolved, shapes_, tuple(range(len(arrays))))(*arrays)
        result = backend.finish(raw, np.dtype(np.float64), arrays)
        as_numpy = backend.to_numpy(result)
        assert as_numpy.flags.writeable, spec
        assert all(not np.shares_memory(as_numpy, backend.to_numpy(a)) for a in arrays), spec


def test_views_and_inputs_are_not_owned(backend: Backend) -> None:
    """owns() lets nothing through that _hand_out would have to copy."""
    square = backend.asarray(_inputs([(3, 3)])[0])
    assert not backend.owns(backend.diagonal(square, (0, 0)), backend.native_dtype(np.float64))
    assert not backend.owns(backend.transpose(square, (1, 0)), backend.native_dtype(np.float64))
    float32 = backend.astype(square, np.dtype(np.float32))
    assert not backend.owns(float32, backend.native_dtype(np.float64))


def test_compiled_programs_run_on_every_backend(backend: Backend) -> None:
    X, W, b = eg.var("X", (4, 3)), eg.var("W", (3, 5)), eg.var("b", (5,))
    D = eg.var("D", (3, 3), diagonal=True)
    loss = eg.mean(eg.sum(eg.relu(X @ D @ W + b) ** 2, axis=1)) + eg.sum(eg.einsum("ii->i", D))
    outputs = [*eg.grad(loss, [W, X, b, D]), eg.transpose(X), X]
    rng = np.random.default_rng(3)
    given = {
        "X": rng.standard_normal((4, 3)),
        "W": rng.standard_normal((3, 5)),
        "b": rng.standard_normal(5),
        "D": np.diag(rng.standard_normal(3)),
    }
    expected = eg.compile(outputs)(**given)
    f = eg.compile(outputs, backend=backend.name)
    inputs = {name: backend.asarray(value) for name, value in given.items()}
    for _ in range(2):  # the first call binds and plans, the second takes the fast path
        results = f(**inputs)
        for got, want in zip(results, expected, strict=True):
            np.testing.assert_allclose(backend.to_numpy(got), want, rtol=1e-12, atol=1e-14)
        for got in results:
            for value in inputs.values():
                assert not np.shares_memory(backend.to_numpy(got), backend.to_numpy(value))
    with pytest.raises(eg.ShapeError, match="declared diagonal"):
        f(**{**inputs, "D": backend.asarray(np.ones((3, 3)))})


def test_an_unknown_backend_is_a_backend_error() -> None:
    with pytest.raises(eg.BackendError, match=r"unknown backend 'tpu'.*numpy") as raised:
        get_backend("tpu")
    assert isinstance(raised.value, eg.EinsgradError)
    for bad in ("base", "", "../numpy"):
        with pytest.raises(eg.BackendError, match="unknown backend"):
            get_backend(bad)
    with pytest.raises(eg.BackendError, match="unknown backend 'tpu'"):
        eg.compile(eg.var("X", (2,)), backend="tpu")


def test_a_backend_whose_library_is_missing_says_so(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    module = tmp_path / "needs_missing.py"
    module.write_text("import a_library_that_is_not_installed\n")
    monkeypatch.setattr(backends, "__path__", [*backends.__path__, str(tmp_path)])
    with pytest.raises(eg.BackendError, match="needs a_library_that_is_not_installed"):
        get_backend("needs_missing")
    assert "needs_missing" not in available_backends()


def test_register_backend_names_the_instance(monkeypatch: pytest.MonkeyPatch) -> None:
    generic = GenericNumpy()
    monkeypatch.setattr(backends, "_REGISTRY", dict(backends._REGISTRY))
    assert register_backend(generic) is generic
    assert get_backend("generic-numpy") is generic
    with pytest.raises(TypeError, match="Backend"):
        register_backend(np)  # type: ignore[arg-type]


# --- the seam: no array calls outside einsgrad.backends --------------------------------------

#: numpy functions that act on arrays and so belong to a backend.
BACKEND_FUNCTIONS = {
    "asarray",
    "ndarray",
    "dot",
    "matmul",
    "einsum",
    "add.reduce",
    "may_share_memory",
    "broadcast_to",
    "zeros",
    "ones",
    "eye",
}

#: What remains outside the backends, and why it may.
ALLOWED: set[tuple[str, str]] = set()


def _dotted(node: ast.expr) -> str | None:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        inner = _dotted(node.value)
        return None if inner is None else f"{inner}.{node.attr}"
    return None


def _numpy_uses(path: Path) -> set[str]:
    """The numpy attributes ``path`` reads (``np.dot`` → ``dot``), and names it imports
    from numpy."""
    tree = ast.parse(path.read_text(), filename=str(path))
    aliases = {"numpy"}
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            aliases |= {a.asname or a.name for a in node.names if a.name == "numpy"}
        elif isinstance(node, ast.ImportFrom) and node.module == "numpy":
            found |= {a.name for a in node.names}
    for node in ast.walk(tree):
        name = _dotted(node) if isinstance(node, ast.Attribute) else None
        if name is not None:
            root, _, rest = name.partition(".")
            if root in aliases and rest:
                found.add(rest)
    return found


def test_no_module_outside_the_backends_calls_array_functions() -> None:
    offending = []
    for folder in ("passes", "rules"):
        for path in sorted((PACKAGE / folder).glob("*.py")):
            relative = f"{folder}/{path.name}"
            for use in sorted(_numpy_uses(path)):
                if use in BACKEND_FUNCTIONS and (relative, use) not in ALLOWED:
                    offending.append(f"{relative}: np.{use}")
    assert not offending, f"array calls outside einsgrad.backends: {offending}"


def test_the_allowlist_has_no_stale_entries() -> None:
    for relative, use in ALLOWED:
        assert use in _numpy_uses(PACKAGE / relative), f"{relative} no longer uses np.{use}"
