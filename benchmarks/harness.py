"""Timing and checking: run one case, every implementation under the same conditions.

For each case: build the inputs; derive einsgrad's expression once (timed, outside the loop);
make each competitor's call (setup outside the loop: jit wrappers, device transfers); make
every first call (timed: JAX compiles there) and check each competitor's answer against
einsgrad's; only then warm up and time. Calls are batched so one sample lasts about
``target_sample`` seconds, and the samples of all implementations are taken round-robin so
slow drifts of the machine hit all of them alike. Garbage collection is off during a sample.
"""

from __future__ import annotations

import gc
import math
import os
import time
import traceback
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .cases import Arrays, Case, Impl, Thunk
from .competitors import as_numpy

EINSGRAD = "einsgrad"


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
    seed: int = 0


QUICK = Settings("quick", 1, 0.05, 0.005, 3, 7, 0.5)
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
    derive_seconds: float | None = None
    reference: str = EINSGRAD
    error: str | None = None
    background_cores: float | None = None  # CPUs other processes kept busy meanwhile

    def median(self, name: str) -> float | None:
        impl = self.impls.get(name)
        return impl.timing.median if impl and impl.timing else None

    def ratio(self, name: str) -> float | None:
        """``name``'s median over einsgrad's: above 1, einsgrad is faster."""
        ours, theirs = self.median(EINSGRAD), self.median(name)
        return theirs / ours if ours and theirs is not None else None

    def goals(self) -> list[tuple[str, float | None, bool | None]]:
        """Each goal's text, the measured ratio and whether it is met (None: not measured)."""
        rows = []
        for goal in self.case.goals:
            ratio = self.ratio(goal.competitor)
            rows.append((goal.text, ratio, None if ratio is None else ratio >= goal.ratio))
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


def plan(estimate: float, settings: Settings) -> tuple[int, int]:
    """Calls per sample and number of samples for a call estimated at ``estimate`` seconds."""
    number = max(1, math.ceil(settings.target_sample / max(estimate, 1e-9)))
    affordable = int(settings.budget / (number * max(estimate, 1e-9)))
    repeats = min(settings.max_repeats, max(settings.min_repeats, affordable))
    return number, repeats


def time_round_robin(
    thunks: dict[str, Thunk], first_calls: dict[str, float], settings: Settings
) -> dict[str, Timing]:
    """Warm each call up, then take the samples of all calls round-robin."""
    plans = {name: plan(warm_up(thunk, settings), settings) for name, thunk in thunks.items()}
    timings = {name: Timing(number, [], first_calls[name]) for name, (number, _) in plans.items()}
    for round_ in range(max(repeats for _, repeats in plans.values())):
        for name, thunk in thunks.items():
            number, repeats = plans[name]
            if round_ < repeats:
                timings[name].samples.append(sample(thunk, number))
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


def check(case: Case, name: str, value: Any, reference_name: str, reference: np.ndarray) -> None:
    """Raise MismatchError unless ``value`` equals the reference in shape, dtype and values."""
    got = as_numpy(value)
    where = f"{case.name} ({case.size}): {name} vs {reference_name}"
    if got.shape != reference.shape:
        raise MismatchError(f"{where}: shape {got.shape} != {reference.shape}")
    if got.dtype != reference.dtype:
        raise MismatchError(f"{where}: dtype {got.dtype} != {reference.dtype}")
    if not np.allclose(got, reference, rtol=case.rtol, atol=case.atol):
        worst = float(np.max(np.abs(got - reference)))
        raise MismatchError(
            f"{where}: values differ (max |Δ| = {worst:.3g}, rtol={case.rtol}, atol={case.atol})"
        )


# --- running a case -----------------------------------------------------------------------


def _einsgrad(case: Case, arrays: Arrays, result: CaseResult) -> Thunk | None:
    """Derive einsgrad's expression (timed once) and return its evaluation call."""
    try:
        start = time.perf_counter()
        expr = case.derive()
        result.derive_seconds = time.perf_counter() - start
    except Exception as error:  # reported, and the competitors still run against numpy
        result.impls[EINSGRAD] = ImplResult(EINSGRAD, "expr(**arrays)", skipped=_describe(error))
        return None
    result.impls[EINSGRAD] = ImplResult(EINSGRAD, "expr(**arrays)")
    return lambda: expr(**arrays)


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


def run_case(case: Case, settings: Settings) -> CaseResult:
    """Check every implementation against einsgrad, then time them all."""
    result = CaseResult(case)
    meter = BackgroundMeter()
    arrays = case.inputs(np.random.default_rng(settings.seed))
    thunks: dict[str, Thunk] = {}
    ours = _einsgrad(case, arrays, result)
    if ours is not None:
        thunks[EINSGRAD] = ours
    for impl in case.competitors:
        thunk = _competitor(impl, arrays, result)
        if thunk is not None:
            thunks[impl.name] = thunk
    try:
        first_calls = _check_all(case, thunks, result)
        for name, timing in time_round_robin(thunks, first_calls, settings).items():
            result.impls[name].timing = timing
    except Exception as error:  # a mismatch or a crash: the case reports an error, no timings
        result.error = _describe(error)
        if not isinstance(error, MismatchError):
            result.error += "\n" + traceback.format_exc(limit=-3)
    result.background_cores = meter.stop()
    return result


def _check_all(case: Case, thunks: dict[str, Thunk], result: CaseResult) -> dict[str, float]:
    """Make every first call and check it against the reference; return the first-call times.

    The reference is einsgrad's answer; without einsgrad, the first competitor's (numpy).
    """
    first_calls: dict[str, float] = {}
    reference_name, reference = "", np.empty(0)
    for name, thunk in thunks.items():
        value, first_calls[name] = timed_call(thunk)
        if not reference_name:
            reference_name, reference = name, as_numpy(value)
            result.reference = name
        else:
            check(case, name, value, reference_name, reference)
    return first_calls


def _describe(error: BaseException) -> str:
    return f"{type(error).__name__}: {error}"
