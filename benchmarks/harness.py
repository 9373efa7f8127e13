"""Timing and checking: run one case, every implementation under the same conditions.

For each case: build the inputs; derive einsgrad's expression and compile it once (timed,
outside the loop: ``eg.grad``/``eg.hessian``, ``eg.compile`` and the plan for the inputs'
shapes); make each competitor's call (setup outside the loop: jit wrappers, device
transfers); make every first call (timed: JAX compiles there) and check each competitor's
answer against einsgrad's (a tuple of gradients element by element); only then warm up and
time. Calls are batched so one sample lasts about ``target_sample`` seconds, and the samples
of all implementations are taken round-robin so slow drifts of the machine hit all of them
alike. Each round visits the implementations in a
new (seeded) random order, and each sample follows an untimed re-warm of its implementation
(``settle`` seconds of calls): a library's worker threads keep spinning for several
milliseconds after its call (torch's OpenMP pool, OpenBLAS, XLA's Eigen pool), which on a
2-core machine slows whichever call comes next, and threads that went to sleep are slow to
wake. Garbage collection is off during a sample.
"""

from __future__ import annotations

import gc
import math
import os
import random
import time
import traceback
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

import einsgrad as eg

from .cases import Arrays, Case, Goal, Impl, Thunk
from .competitors import as_arrays

EINSGRAD = "einsgrad"

# Reports how far a case has got: (fraction of the case done, 0 to 1; what runs now).
Progress = Callable[[float, str], None]


def _no_progress(fraction: float, what: str) -> None:
    pass


class MismatchError(AssertionError):
    """A competitor's answer differs from einsgrad's (or the case's reference)."""


@dataclass(frozen=True)
class Settings:
    """How long and how often to run each implementation."""

    mode: str
    warmup_calls: int  # at least this many calls after the first ...
    warmup_seconds: float  # ... and at least this long
    target_sample: float  # seconds per sample; fast calls are batched up to it
    min_repeats: int
    max_repeats: int
    budget: float  # seconds of samples per implementation and case, within the repeat bounds
    seed: int = 0  # of the inputs, and of the order of the implementations in each round
    settle: float = 0.02  # seconds of untimed calls before each sample (see rewarm)


QUICK = Settings("quick", 1, 0.05, 0.005, 3, 7, 0.5, settle=0.01)
FULL = Settings("full", 3, 0.5, 0.05, 7, 31, 8.0)


@dataclass
class Timing:
    """Seconds per call: one sample per repeat, each the mean over ``number`` calls."""

    number: int
    samples: list[float]
    first_call: float

    @property
    def median(self) -> float:
        return float(np.median(self.samples))

    @property
    def iqr(self) -> tuple[float, float]:
        q1, q3 = np.percentile(self.samples, [25, 75])
        return float(q1), float(q3)

    def as_json(self) -> dict[str, Any]:
        q1, q3 = self.iqr
        return {
            "median_s": self.median,
            "q1_s": q1,
            "q3_s": q3,
            "min_s": min(self.samples),
            "max_s": max(self.samples),
            "number": self.number,
            "repeats": len(self.samples),
            "first_call_s": self.first_call,
            "samples_s": self.samples,
        }


@dataclass
class ImplResult:
    """One implementation's outcome in one case: a timing, or why it did not run."""

    name: str
    label: str
    timing: Timing | None = None
    skipped: str | None = None


@dataclass
class CaseResult:
    """A case's outcome: einsgrad's derivation, each implementation, and any error."""

    case: Case
    impls: dict[str, ImplResult] = field(default_factory=dict)
    derive_seconds: float | None = None  # building the expression (eg.grad, eg.hessian, ...)
    compile_seconds: float | None = None  # eg.compile and planning for the inputs' shapes
    reference: str = EINSGRAD
    error: str | None = None
    background_cores: float | None = None  # CPUs other processes kept busy meanwhile
    attempts: int = 1  # runs of the case (``--retry-noisy``); the quietest is kept
    elapsed: float | None = None  # wall-clock seconds the case took (its last attempt)

    def median(self, name: str) -> float | None:
        impl = self.impls.get(name)
        return impl.timing.median if impl and impl.timing else None

    def ratio(self, name: str) -> float | None:
        """``name``'s median over einsgrad's: above 1, einsgrad is faster."""
        ours, theirs = self.median(EINSGRAD), self.median(name)
        return theirs / ours if ours and theirs is not None else None

    @property
    def setup_seconds(self) -> float | None:
        """einsgrad's one-time cost: derivation plus compilation."""
        if self.derive_seconds is None or self.compile_seconds is None:
            return None
        return self.derive_seconds + self.compile_seconds

    def measure(self, goal: Goal, family: Sequence[CaseResult] = ()) -> float | None:
        """The value a goal is judged on (see Goal); None if it was not measured.

        ``family`` holds the run's results of this case's family (for a growth goal).
        """
        if goal.kind == "derivation":
            return self.setup_seconds
        if goal.kind == "growth":
            return self.growth(family)
        ratio = self.ratio(goal.competitor)
        if goal.kind == "at-most":
            return None if not ratio else 1.0 / ratio
        return ratio

    def growth(self, family: Sequence[CaseResult]) -> float | None:
        """The exponent k of einsgrad's median ∝ scale^k, from the family's smallest size
        measured to this one; None at the smallest size or without two measurements."""
        measured = [
            (r.case.scale[1], median)
            for r in family
            if r.case.scale is not None and (median := r.median(EINSGRAD)) is not None
        ]
        ours = self.median(EINSGRAD)
        if not measured or ours is None or self.case.scale is None:
            return None
        base_scale, base_time = min(measured)
        scale = self.case.scale[1]
        if scale <= base_scale or base_time <= 0:
            return None
        return math.log(ours / base_time) / math.log(scale / base_scale)

    def goals(
        self, family: Sequence[CaseResult] = ()
    ) -> list[tuple[Goal, float | None, bool | None]]:
        """Each goal, the measured value and whether it is met (None: not measured).

        ``family`` holds the run's results of this case's family (for a growth goal).
        """
        rows = []
        for goal in self.case.goals:
            value = self.measure(goal, family)
            if value is None:
                met = None
            elif goal.kind == "faster":
                met = value >= goal.ratio
            else:
                met = value <= goal.ratio
            rows.append((goal, value, met))
        return rows


# --- timing -------------------------------------------------------------------------------


def timed_call(thunk: Thunk) -> tuple[Any, float]:
    """Call once; return the result and the seconds it took."""
    start = time.perf_counter()
    value = thunk()
    return value, time.perf_counter() - start


def sample(thunk: Thunk, number: int) -> float:
    """Mean seconds per call over ``number`` back-to-back calls, garbage collection off."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        start = time.perf_counter()
        for _ in range(number):
            thunk()
        return (time.perf_counter() - start) / number
    finally:
        if enabled:
            gc.enable()


def warm_up(thunk: Thunk, settings: Settings) -> float:
    """Run the warm-up calls; return the fastest, the estimate of one call's cost."""
    fastest = math.inf
    start = time.perf_counter()
    calls = 0
    while calls < settings.warmup_calls or time.perf_counter() - start < settings.warmup_seconds:
        fastest = min(fastest, sample(thunk, 1))
        calls += 1
    return fastest


def rewarm(thunk: Thunk, estimate: float, settle: float) -> None:
    """Call ``thunk`` untimed for at least ``settle`` seconds (at least once), so the next
    sample starts with this library's threads awake and the previous library's spinning
    threads (busy-waiting for more work after their call) gone quiet. A call longer than
    ten times ``settle`` is not repeated: the disturbance is small beside it.
    """
    if settle <= 0 or estimate > 10 * settle:
        return
    start = time.perf_counter()
    thunk()
    while time.perf_counter() - start < settle:
        thunk()


def plan(estimate: float, settings: Settings) -> tuple[int, int]:
    """Calls per sample and number of samples for a call estimated at ``estimate`` seconds."""
    number = max(1, math.ceil(settings.target_sample / max(estimate, 1e-9)))
    affordable = int(settings.budget / (number * max(estimate, 1e-9)))
    repeats = min(settings.max_repeats, max(settings.min_repeats, affordable))
    return number, repeats


def time_round_robin(
    thunks: dict[str, Thunk],
    first_calls: dict[str, float],
    settings: Settings,
    progress: Progress = _no_progress,
) -> dict[str, Timing]:
    """Warm each call up, then take the samples of all calls round-robin.

    Each round takes one sample of every implementation, in a shuffled order, each after a
    re-warm (see rewarm). ``progress`` hears of it: warming up is the first fifth of the
    work, the rounds the rest.
    """
    plans = {}
    estimates = {}
    for done, (name, thunk) in enumerate(thunks.items()):
        progress(0.2 * done / len(thunks), f"warming up {name}")
        estimates[name] = warm_up(thunk, settings)
        plans[name] = plan(estimates[name], settings)
    timings = {name: Timing(number, [], first_calls[name]) for name, (number, _) in plans.items()}
    rounds = max(repeats for _, repeats in plans.values())
    order = list(thunks)
    shuffler = random.Random(settings.seed)
    for round_ in range(rounds):
        progress(0.2 + 0.8 * round_ / rounds, f"round {round_ + 1}/{rounds}")
        shuffler.shuffle(order)
        for name in order:
            number, repeats = plans[name]
            if round_ < repeats:
                rewarm(thunks[name], estimates[name], settings.settle)
                timings[name].samples.append(sample(thunks[name], number))
    progress(1.0, "done")
    return timings


class BackgroundMeter:
    """Measures how many CPUs other processes kept busy, on average, between start and stop.

    Machine-wide busy time from /proc/stat minus this process's CPU time (all threads), per
    second of wall time. Other work on the machine slows multi-threaded code the most (an
    OpenMP barrier waits on a descheduled thread), so this is reported with every case.
    """

    def __init__(self) -> None:
        self._start = self._now()

    @staticmethod
    def _now() -> tuple[float, float, float] | None:
        try:
            with open("/proc/stat") as stat:
                ticks = [int(n) for n in stat.readline().split()[1:]]
        except (OSError, ValueError):
            return None
        busy = (sum(ticks) - ticks[3] - ticks[4]) / os.sysconf("SC_CLK_TCK")  # minus idle, iowait
        return busy, time.process_time(), time.perf_counter()

    def stop(self) -> float | None:
        end = self._now()
        if self._start is None or end is None or end[2] <= self._start[2]:
            return None
        busy, own, wall = (b - a for a, b in zip(self._start, end, strict=True))
        return max(0.0, (busy - own) / wall)


def wait_for_quiet(timeout: float, threshold: float = 0.15, window: float = 0.5) -> float:
    """Wait until other processes use under ``threshold`` CPUs over a ``window``, at most
    ``timeout`` seconds; return the seconds waited. Without /proc/stat, do not wait.
    """
    start = time.perf_counter()
    while time.perf_counter() - start < timeout:
        meter = BackgroundMeter()
        time.sleep(window)
        load = meter.stop()
        if load is None or load < threshold:
            break
    return time.perf_counter() - start


# --- checking -----------------------------------------------------------------------------


def check(
    case: Case, name: str, value: Any, reference_name: str, reference: list[np.ndarray]
) -> None:
    """Raise MismatchError unless ``value`` equals the reference in shape, dtype and values.

    A tuple of results (gradients) is compared element by element, in order.
    """
    got_all = as_arrays(value)
    where = f"{case.name} ({case.size}): {name} vs {reference_name}"
    if len(got_all) != len(reference):
        raise MismatchError(f"{where}: {len(got_all)} results != {len(reference)}")
    for k, (got, expected) in enumerate(zip(got_all, reference, strict=True)):
        at = f"{where}, result {k}" if len(reference) > 1 else where
        if got.shape != expected.shape:
            raise MismatchError(f"{at}: shape {got.shape} != {expected.shape}")
        if got.dtype != expected.dtype:
            raise MismatchError(f"{at}: dtype {got.dtype} != {expected.dtype}")
        if not np.allclose(got, expected, rtol=case.rtol, atol=case.atol):
            worst = float(np.max(np.abs(got - expected)))
            raise MismatchError(
                f"{at}: values differ (max |Δ| = {worst:.3g}, rtol={case.rtol}, atol={case.atol})"
            )


# --- running a case -----------------------------------------------------------------------


def _einsgrad(case: Case, arrays: Arrays, result: CaseResult) -> Thunk | None:
    """Derive and compile einsgrad's expression (each timed, once); return the call to time.

    Compiling is ``eg.compile`` plus building the program for the inputs' shapes and dtypes
    (``f.plan``), which a first call would otherwise do. For a case that times the
    derivation itself, ``derive`` is the call.
    """
    if case.timed == "derivation":
        result.impls[EINSGRAD] = ImplResult(EINSGRAD, case.label or "derive()")
        return case.derive
    label = "f(**arrays), f = eg.compile(...)"
    try:
        start = time.perf_counter()
        derived = case.derive()
        result.derive_seconds = time.perf_counter() - start
        start = time.perf_counter()
        if isinstance(derived, eg.Compiled):
            compiled = derived
        else:
            compiled = eg.compile(list(derived) if isinstance(derived, list | tuple) else derived)
        shapes = {name: array.shape for name, array in arrays.items()}
        dtypes = {array.dtype for array in arrays.values()}
        compiled.plan(dtypes.pop() if len(dtypes) == 1 else np.float64, **shapes)
        result.compile_seconds = time.perf_counter() - start
    except Exception as error:  # reported, and the competitors still run against numpy
        result.impls[EINSGRAD] = ImplResult(EINSGRAD, label, skipped=_describe(error))
        return None
    result.impls[EINSGRAD] = ImplResult(EINSGRAD, label)
    return lambda: compiled(**arrays)


def _competitor(impl: Impl, arrays: Arrays, result: CaseResult) -> Thunk | None:
    """The competitor's timed call, or None (recorded as skipped) if it cannot run here."""
    result.impls[impl.name] = ImplResult(impl.name, impl.label, skipped=impl.skip)
    if impl.skip is not None:
        return None
    try:
        return impl.prepare(arrays)
    except ImportError as error:
        result.impls[impl.name].skipped = f"not installed: {error}"
        return None


def run_case(case: Case, settings: Settings, progress: Progress = _no_progress) -> CaseResult:
    """Check every implementation against einsgrad, then time them all.

    ``progress`` hears how far the case has got: the setup and the checked first calls are
    its first tenth, the timing the rest.
    """
    result = CaseResult(case)
    started = time.perf_counter()
    meter = BackgroundMeter()
    progress(0.0, "deriving")
    arrays = case.inputs(np.random.default_rng(settings.seed))
    thunks: dict[str, Thunk] = {}
    ours = _einsgrad(case, arrays, result)
    if ours is not None:
        thunks[EINSGRAD] = ours
    for impl in case.competitors:
        progress(0.02, f"setting up {impl.name}")
        thunk = _competitor(impl, arrays, result)
        if thunk is not None:
            thunks[impl.name] = thunk
    try:
        first_calls = _check_all(case, thunks, result, lambda f, what: progress(0.05 * f, what))
        timed = time_round_robin(
            thunks, first_calls, settings, lambda f, what: progress(0.1 + 0.9 * f, what)
        )
        for name, timing in timed.items():
            result.impls[name].timing = timing
    except Exception as error:  # a mismatch or a crash: the case reports an error, no timings
        result.error = _describe(error)
        if not isinstance(error, MismatchError):
            result.error += "\n" + traceback.format_exc(limit=-3)
    result.background_cores = meter.stop()
    result.elapsed = time.perf_counter() - started
    return result


def _check_all(
    case: Case, thunks: dict[str, Thunk], result: CaseResult, progress: Progress = _no_progress
) -> dict[str, float]:
    """Make every first call and check it against the reference; return the first-call times.

    The reference is einsgrad's answer; without einsgrad, the first competitor's (numpy).
    """
    first_calls: dict[str, float] = {}
    reference_name, reference = "", []
    for done, (name, thunk) in enumerate(thunks.items()):
        progress(done / len(thunks), f"first call of {name}")
        value, first_calls[name] = timed_call(thunk)
        if not reference_name:
            reference_name, reference = name, as_arrays(value)
            result.reference = name
        else:
            check(case, name, value, reference_name, reference)
    return first_calls


def _describe(error: BaseException) -> str:
    return f"{type(error).__name__}: {error}"
