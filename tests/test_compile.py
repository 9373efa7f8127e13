"""eg.compile: the straight-line programs evaluation runs, their plans, caching and sharing."""

from __future__ import annotations

import sys
import threading
from typing import Any

import numpy as np
import pytest

import einsgrad as eg
from einsgrad.passes.evaluate import NUMPY, _prepared, _walk
from einsgrad.passes.program import RELEASE_BYTES


def linear_layer() -> tuple[eg.Expr, eg.Expr, eg.Expr, dict[str, np.ndarray]]:
    rng = np.random.default_rng(0)
    X, W, G = eg.var("X", (6, 4)), eg.var("W", (4, 3)), eg.var("G", (6, 3))
    loss = eg.sum((X @ W) * G)
    dX, dW = eg.grad(loss, [X, W])
    arrays = {
        "X": rng.normal(size=(6, 4)),
        "W": rng.normal(size=(4, 3)),
        "G": rng.normal(size=(6, 3)),
    }
    return loss, dX, dW, arrays


def test_compiled_outputs_equal_hand_written_gradients() -> None:
    _, dX, dW, a = linear_layer()
    f = eg.compile([dX, dW])
    got_x, got_w = f(**a)
    np.testing.assert_allclose(got_x, a["G"] @ a["W"].T, rtol=1e-12)
    np.testing.assert_allclose(got_w, a["X"].T @ a["G"], rtol=1e-12)
    single = eg.compile(dW)
    np.testing.assert_allclose(single(a), a["X"].T @ a["G"], rtol=1e-12)


def test_work_no_output_needs_is_skipped() -> None:
    # The gradient of sum(Y * G) wrt W is Xᵀ G: Y = X @ W itself is never computed.
    _, _, dW, _ = linear_layer()
    plan = eg.compile(dW).plan()
    operations = [step.operation for step in plan.steps]
    assert not any("multiply" in op for op in operations), operations
    assert sum("einsum" in op for op in operations) == 1, operations
    assert plan.flops == 6 * 4 * 3 * 2 or plan.flops > 0


def test_the_plan_lists_steps_paths_flops_and_totals() -> None:
    n = 8
    A, B, C = (eg.var(name, (n, n)) for name in "ABC")
    f = eg.compile(eg.einsum("ab,bc,cd->ad", A, B, C))
    plan = f.plan()
    assert len(plan.steps) == 2  # the contraction tree: two pairwise products
    assert plan.flops == sum(step.flops for step in plan.steps) > 0
    assert plan.largest_bytes == n * n * 8
    text = str(plan)
    assert "einsum" in text and "total:" in text and "FLOPs" in text
    # Shape-less variables take their shapes from plan(**shapes).
    X = eg.var("X")
    g = eg.compile(eg.exp(X) * 2)
    assert g.plan(X=(3, 5)).steps[-1].shape == (3, 5)
    with pytest.raises(eg.ShapeError, match="no declared shape"):
        g.plan()


def test_programs_are_built_once_per_signature() -> None:
    X = eg.var("X")
    expr = eg.sum(eg.tanh(X) ** 2)
    f = eg.compile(expr)
    f(X=np.ones((2, 3)))
    walk = _walk((expr,))
    before = _prepared.cache_info()
    first = walk.recent[0]
    f(X=np.zeros((2, 3)))  # the same signature: the last call's program, no lookup
    assert _prepared.cache_info().misses == before.misses
    assert walk.recent[0] is first
    f(X=np.ones((4,)))  # a new signature: a new program
    assert _prepared.cache_info().misses == before.misses + 1
    signature = (("X", (4,), "<f8"),)
    assert _prepared(walk, signature, "auto", NUMPY) is walk.recent[0] is not first
    # Alternating signatures go back to the cached programs, and compute each correctly.
    for x in (np.ones((2, 3)), np.full((4,), 0.5), np.ones((2, 3), np.float32)):
        np.testing.assert_allclose(f(X=x), np.sum(np.tanh(x) ** 2), rtol=1e-6)
    assert _prepared.cache_info().misses == before.misses + 2  # only float32 was new


def test_the_last_calls_program_is_left_for_anything_else() -> None:
    """The per-call fast path runs only plain numpy arrays of the last call's signature."""
    X, W = eg.var("X"), eg.var("W")
    f = eg.compile(eg.grad(eg.sum(eg.tanh(X @ W)), W))
    x, w = np.ones((2, 3)), np.full((3, 4), 0.1)
    expected = x.T @ (1 - np.tanh(x @ w) ** 2)
    np.testing.assert_allclose(f(X=x, W=w), expected)
    np.testing.assert_allclose(f(X=x.tolist(), W=w), expected)  # a list: converted
    np.testing.assert_allclose(f(X=x.astype(np.float32), W=w), expected, rtol=1e-6)
    with pytest.raises(eg.VariableError, match="unknown variable 'Y'"):
        f(X=x, W=w, Y=x)
    with pytest.raises(eg.VariableError, match="missing value for variable 'W'"):
        f(X=x)
    with pytest.raises(eg.MemoryLimitError), eg.memory_limit(8):
        f(X=x, W=w)
    # The result is the caller's: a fresh array, whether or not the fast path ran.
    first, second = f(X=x, W=w), f(X=x, W=w)
    assert first is not second and first.flags.owndata and first.flags.writeable
    np.testing.assert_allclose(first, second)


def test_shared_subexpressions_are_computed_once() -> None:
    X = eg.var("X", (5, 5))
    shared = eg.tanh(X @ X)
    f = eg.compile([shared + 1, shared * 2, eg.sum(shared)])
    plan = f.plan()
    assert sum(step.operation == "tanh" for step in plan.steps) == 1
    x = np.random.default_rng(1).normal(size=(5, 5))
    a, b, c = f(X=x)
    np.testing.assert_allclose(a, np.tanh(x @ x) + 1)
    np.testing.assert_allclose(b, np.tanh(x @ x) * 2)
    np.testing.assert_allclose(c, np.tanh(x @ x).sum())


def test_compiled_functions_are_thread_safe() -> None:
    _, dX, dW, a = linear_layer()
    f = eg.compile([dX, dW])
    expected = f(**a)
    errors: list[BaseException] = []

    def work() -> None:
        try:
            for _ in range(50):
                got = f(**a)
                for g, e in zip(got, expected, strict=True):
                    np.testing.assert_array_equal(g, e)
        except BaseException as error:  # pragma: no cover - reported below
            errors.append(error)

    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors


def test_threads_with_different_shapes_share_one_compiled_function() -> None:
    """Each thread's shapes differ, so the last call's program keeps changing under them."""
    X, W = eg.var("X"), eg.var("W")
    f = eg.compile(list(eg.grad(eg.sum(eg.tanh(X @ W) ** 2), [X, W])))
    rng = np.random.default_rng(3)
    w = rng.normal(size=(4, 3))
    errors: list[BaseException] = []

    inputs = {batch: rng.normal(size=(batch, 4)) for batch in (1, 2, 3, 5)}

    def work(batch: int) -> None:
        x = inputs[batch]
        y = np.tanh(x @ w)
        dY = 2 * y * (1 - y**2)
        expected = (dY @ w.T, x.T @ dY)
        try:
            for _ in range(200):
                for got, want in zip(f(X=x, W=w), expected, strict=True):
                    np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-14)
        except BaseException as error:  # pragma: no cover - reported below
            errors.append(error)

    switch = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)  # switch threads as often as possible
    try:
        threads = [threading.Thread(target=work, args=(batch,)) for batch in inputs]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    finally:
        sys.setswitchinterval(switch)
    assert not errors, errors[0]


def test_bad_compile_options_are_option_errors() -> None:
    X = eg.var("X", (2,))
    with pytest.raises(eg.BackendError, match="backend 'cupy'") as raised:
        eg.compile(X, backend="cupy")
    assert isinstance(raised.value, eg.EinsgradError)
    with pytest.raises(eg.OptionError, match=r"optimize must be one of auto, .*got 'fastest'"):
        eg.compile(X, optimize="fastest")
    assert issubclass(eg.OptionError, eg.EinsgradError) and not issubclass(
        eg.OptionError, eg.ShapeError
    )
    with pytest.raises(TypeError, match="expressions"):
        eg.compile([X, "Y"])  # type: ignore[list-item]


def test_optimize_strategies_give_the_same_values() -> None:
    n = 6
    names = "ABCDE"
    variables = [eg.var(name, (n, n)) for name in names]
    expr = eg.einsum("ab,bc,cd,de,ef->af", *variables)
    arrays = {name: np.random.default_rng(k).normal(size=(n, n)) for k, name in enumerate(names)}
    reference = np.linalg.multi_dot([arrays[name] for name in names])
    for strategy in ("auto", "greedy", "optimal", "dp"):
        np.testing.assert_allclose(
            eg.compile(expr, optimize=strategy)(**arrays), reference, rtol=1e-10
        )


LOWERED: list[tuple[Any, ...]] = [
    # one operand, summed: numpy.add.reduce
    ("ab->b", (2, 3)),
    ("ab->a", (2, 3)),
    ("abc->ac", (2, 3, 4)),
    ("abc->b", (2, 3, 4)),
    ("ab->", (2, 3)),
    ("abc->ca", (2, 3, 4)),  # reordered: not a plain reduction
    # two operands: numpy.dot / numpy.matmul on transposed views
    ("ij,jk->ik", (2, 3), (3, 4)),
    ("ij,jk->ki", (2, 3), (3, 4)),
    ("ji,jk->ik", (3, 2), (3, 4)),
    ("ij,kj->ik", (2, 3), (4, 3)),
    ("ji,kj->ki", (3, 2), (4, 3)),
    ("bij,bjk->bik", (2, 3, 4), (2, 4, 5)),
    ("bij,bjk->kbi", (2, 3, 4), (2, 4, 5)),
    ("ij,j->i", (2, 3), (3,)),
    ("i,j->ij", (2,), (3,)),
]


@pytest.mark.parametrize(("spec", "shapes"), [(s, shapes) for s, *shapes in LOWERED], ids=str)
def test_direct_numpy_lowerings(spec: str, shapes: list[tuple[int, ...]]) -> None:
    """The numpy fast paths equal numpy.einsum, on the first and the repeated call."""
    rng = np.random.default_rng(len(spec))
    arrays = {f"A{k}": rng.normal(size=shape) for k, shape in enumerate(shapes)}
    expr = eg.einsum(spec, *(eg.var(name) for name in arrays))
    f = eg.compile(expr)
    expected = np.einsum(spec, *arrays.values())
    for _ in range(2):
        result = f(**arrays)
        np.testing.assert_allclose(result, expected, rtol=1e-12, atol=1e-12)
        assert all(not np.shares_memory(result, given) for given in arrays.values())


def test_memory_limit_per_compiled_function() -> None:
    X, W = eg.var("X"), eg.var("W")
    gradient = eg.grad(eg.sum(eg.tanh(X @ W)), W)
    # Arrays this small are kept to the end: the program holds the six 64×16 steps
    # (8 KiB each) and the 32×16 gradient (4 KiB), 52 KiB, at its peak.
    x, w = np.ones((64, 32)), np.full((32, 16), 0.01)
    peak = 6 * 64 * 16 * 8 + 32 * 16 * 8
    unlimited = eg.compile(gradient, memory_limit=None)
    tight = eg.compile(gradient, memory_limit=peak - 1)
    following = eg.compile(gradient)  # "default": the limit in force at each call
    expected = x.T @ (1 - np.tanh(x @ w) ** 2)
    np.testing.assert_allclose(unlimited(X=x, W=w), expected)  # leaves its program as the last
    with pytest.raises(eg.MemoryLimitError, match=r"52\.0 KiB \(53,248 bytes\).*\(64, 16\)"):
        tight(X=x, W=w)
    small = x[:8]  # peak: six 8×16 steps and the 32×16 gradient, 10 KiB, within the limit
    np.testing.assert_allclose(tight(X=small, W=w), small.T @ (1 - np.tanh(small @ w) ** 2))
    with eg.memory_limit(peak - 1):
        np.testing.assert_allclose(unlimited(X=x, W=w), expected)
        with pytest.raises(eg.MemoryLimitError):
            following(X=x, W=w)
    np.testing.assert_allclose(following(X=x, W=w), expected)
    for bad in (0, -1, 1.5, "a lot"):
        with pytest.raises(eg.OptionError, match="memory limit"):
            eg.compile(gradient, memory_limit=bad)  # type: ignore[arg-type]


@pytest.mark.parametrize("n", [8, 128], ids=["small arrays", "large arrays"])
def test_values_are_freed_after_their_last_use_when_arrays_are_large(n: int) -> None:
    X, W = eg.var("X", (n, n)), eg.var("W", (n, n))
    outputs = list(eg.grad(eg.sum(eg.tanh(eg.tanh(X @ W) @ W)), [X, W]))
    f = eg.compile(outputs)
    f(X=np.ones((n, n)), W=np.eye(n))
    program = _walk(tuple(outputs)).recent[0].program
    kept = set(program.outputs)
    read_by: dict[int, list[int]] = {}
    for position, (_, _, reads, _) in enumerate(program.steps):
        for read in reads:
            read_by.setdefault(read, []).append(position)
    freed = {slot: position for position, step in enumerate(program.steps) for slot in step[3]}
    if n * n * 8 < RELEASE_BYTES:
        assert not freed  # 512-byte arrays: kept to the end, no bookkeeping
        return
    # Every value some step reads and no output needs is freed right after its last reader.
    assert freed == {slot: max(uses) for slot, uses in read_by.items() if slot not in kept}
    assert len(freed) >= 4


@pytest.mark.parametrize("n", [4, 100], ids=["kept to the end", "freed as it runs"])
def test_the_plan_counts_peak_live_memory_and_all_results(n: int) -> None:
    """Three chained steps of n×n float64. A program of small arrays keeps all three to
    the end; one of large arrays frees each after its reader, so at most two results are
    live at once (the one being read and the one being made)."""
    X = eg.var("X", (n, n))
    f = eg.compile(eg.tanh(eg.exp(eg.tanh(X))))
    plan = f.plan()
    size = n * n * 8
    live = 3 * size if size < RELEASE_BYTES else 2 * size
    assert len(plan.steps) == 3
    assert plan.largest_bytes == size
    assert plan.peak_bytes == live
    assert plan.total_bytes == 3 * size
    assert f"peak {live:,} bytes live" in str(plan)


def test_an_output_stays_live_to_the_end_of_the_plan() -> None:
    n = 50
    X = eg.var("X", (n, n))
    first = eg.tanh(X)
    plan = eg.compile([first, eg.exp(eg.exp(first))]).plan()
    assert plan.peak_bytes == 3 * n * n * 8  # first, kept, beside the two exps


def test_cost_and_the_memory_guard_read_the_plan() -> None:
    n = 100
    X = eg.var("X", (n, n))
    expr = eg.tanh(eg.exp(eg.tanh(X)))
    plan = eg.compile(expr).plan()
    report = eg.cost(expr)
    assert (report.flops, report.largest_bytes, report.total_bytes) == (
        plan.flops,
        plan.largest_bytes,
        plan.total_bytes,
    )
    # The guard bounds the peak of live memory (two n×n arrays), not the largest array.
    x = np.zeros((n, n))
    within = eg.compile(expr, memory_limit=plan.peak_bytes)
    assert plan.largest_bytes < plan.peak_bytes == 2 * n * n * 8
    np.testing.assert_allclose(within(X=x), np.tanh(np.exp(np.tanh(x))))
    over = eg.compile(expr, memory_limit=plan.peak_bytes - 1)
    with pytest.raises(eg.MemoryLimitError, match=rf"\({n}, {n}\), float64"):
        over(X=x)


def test_the_memory_guard_names_an_intermediate_by_its_length() -> None:
    """Without declared shapes a three-operand einsum is one step, whose opt_einsum
    intermediate (2×100) is larger than its result (2×2) and live beside it."""
    A, B, C = eg.var("A"), eg.var("B"), eg.var("C")
    expr = eg.einsum("ij,jk,kl->il", A, B, C)
    shapes = {"A": (2, 100), "B": (100, 100), "C": (100, 2)}
    plan = eg.compile(expr).plan(**shapes)
    step = plan.largest_step()
    assert step is not None and step.largest_shape == (200,)
    assert plan.largest_bytes == 200 * 8
    assert plan.peak_bytes == 200 * 8 + 2 * 2 * 8
    assert plan.total_bytes == 2 * 2 * 8
    assert eg.cost(expr, **shapes).largest_bytes == plan.largest_bytes
    arrays = {name: np.ones(shape) for name, shape in shapes.items()}
    with pytest.raises(eg.MemoryLimitError, match=r"intermediate of v\d+ = .*\(200,\).*1\.6 KiB"):
        eg.compile(expr, memory_limit=1631)(**arrays)
    np.testing.assert_allclose(eg.compile(expr, memory_limit=1632)(**arrays), np.full((2, 2), 1e4))
