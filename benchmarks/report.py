"""Reporting: the Markdown tables printed on stdout and the JSON written to results/."""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from .cases import Goal
from .harness import EINSGRAD, CaseResult, ImplResult, Settings
from .machine import usable_cpus

RESULTS = Path(__file__).resolve().parent / "results"
# Above this many CPUs kept busy by other processes during a case (beyond the CPUs this
# process may not run on), its timings are flagged.
NOISY = 0.1


def fmt_time(seconds: float | None) -> str:
    """Seconds with three significant digits in µs, ms or s."""
    if seconds is None:
        return "—"
    unit, scale = next(
        ((unit, scale) for unit, scale in (("s", 1.0), ("ms", 1e-3)) if seconds >= scale),
        ("µs", 1e-6),
    )
    value = seconds / scale
    return f"{value:.3g} {unit}" if value < 100 else f"{value:.0f} {unit}"


def fmt_ratio(ratio: float | None) -> str:
    if ratio is None:
        return "—"
    return f"{ratio:.3g}×" if ratio < 100 else f"{ratio:.0f}×"


def competitor_names(results: Sequence[CaseResult]) -> list[str]:
    """Every competitor that appears in the results, in first-seen order."""
    names: dict[str, None] = {}
    for result in results:
        for impl in result.case.competitors:
            names.setdefault(impl.name, None)
    return list(names)


def _cell(result: CaseResult, name: str) -> str:
    impl = result.impls.get(name)
    if impl is not None and impl.skipped is not None and name != EINSGRAD:
        return "skipped"
    if impl is not None and impl.skipped is not None:
        return "unavailable"
    return fmt_time(result.median(name))


def groups(results: Sequence[CaseResult]) -> dict[str, list[CaseResult]]:
    """The results by group, groups and results in run order."""
    found: dict[str, list[CaseResult]] = {}
    for result in results:
        found.setdefault(result.case.group, []).append(result)
    return found


def summary_table(results: Sequence[CaseResult]) -> str:
    """One row per case and size: medians, and each competitor's ratio to einsgrad."""
    names = competitor_names(results)
    header = ["case", "size", "einsgrad", "derive + compile"]
    for name in names:
        header += [name, f"{name}/einsgrad"]
    lines = [_row(header), _row(["---"] * 2 + ["---:"] * (len(header) - 2))]
    for result in results:
        if result.error is not None:
            first_line = result.error.splitlines()[0]
            cells = [result.case.name, result.case.size, f"**ERROR** {first_line}"]
            lines.append(_row(cells + [""] * (len(header) - 3)))
            continue
        cells = [
            result.case.name,
            result.case.size,
            _cell(result, EINSGRAD),
            fmt_time(result.setup_seconds),
        ]
        for name in names:
            cells += [_cell(result, name), fmt_ratio(result.ratio(name))]
        lines.append(_row(cells))
    return "\n".join(lines)


DETAIL_HEADER = (
    *("case", "size", "implementation"),
    *("median", "IQR", "min – max", "samples", "first call"),
)


def detail_table(results: Sequence[CaseResult]) -> str:
    """One row per implementation: what runs, median, IQR, range, samples, first call."""
    lines = [_row(DETAIL_HEADER), _row(["---"] * 3 + ["---:"] * 5)]
    for result in results:
        for name, impl in result.impls.items():
            lines.append(_row([result.case.name, result.case.size, *_detail(result, name, impl)]))
    return "\n".join(lines)


def _detail(result: CaseResult, name: str, impl: ImplResult) -> list[str]:
    what = f"{name}: `{impl.label}`"
    timing = impl.timing
    if timing is None:
        reason = impl.skipped or ("not timed: the case failed" if result.error else "not timed")
        return [what, reason.splitlines()[0], "", "", "", ""]
    q1, q3 = timing.iqr
    return [
        what,
        fmt_time(timing.median),
        f"{fmt_time(q1)} – {fmt_time(q3)}",
        f"{fmt_time(min(timing.samples))} – {fmt_time(max(timing.samples))}",
        f"{len(timing.samples)} × {timing.number}",
        fmt_time(timing.first_call),
    ]


def family_of(result: CaseResult, results: Sequence[CaseResult]) -> list[CaseResult]:
    """The results of ``result``'s family (the same case at every size run)."""
    return [other for other in results if other.case.name == result.case.name]


def fmt_goal(goal: Goal, value: float | None) -> str:
    """The measured value of a goal, saying what it is: a ratio of medians, a time, or an
    exponent of growth."""
    if goal.kind == "derivation":
        return fmt_time(value)
    if goal.kind == "growth":
        return "—" if value is None else f"exponent {value:.2f}"
    if goal.kind == "at-most":
        return f"einsgrad/{goal.competitor} = {fmt_ratio(value)}"
    return f"{goal.competitor}/einsgrad = {fmt_ratio(value)}"


def goals_table(results: Sequence[CaseResult]) -> str | None:
    """The performance goals of the cases run, with the measured value; None if there are none."""
    lines = [_row(["case", "size", "goal", "measured", "met"]), _row(["---"] * 3 + ["---:"] * 2)]
    for result in results:
        for goal, value, met in result.goals(family_of(result, results)):
            verdict = "—" if met is None else ("yes" if met else "**no**")
            lines.append(
                _row(
                    [result.case.name, result.case.size, goal.text, fmt_goal(goal, value), verdict]
                )
            )
    return "\n".join(lines) if len(lines) > 2 else None


def markdown(results: Sequence[CaseResult], settings: Settings, machine_line: str) -> str:
    """The full report: summary, goals, details, notes and the machine."""
    parts = [
        f"## einsgrad benchmarks ({settings.mode} mode)",
        "",
        "Medians of seconds per call (steady state). `X/einsgrad` is X's median over "
        "einsgrad's, measured in the same run: above 1, einsgrad is faster. `derive + compile` "
        "is einsgrad deriving the expression (`eg.grad`, `eg.hessian`, ...) and compiling it "
        "(`eg.compile` and its plan for the inputs' shapes), once, outside the timed loop. In "
        "the details, `samples` is repeats × calls per sample and `first call` the cold call "
        "(JAX compiles there).",
    ]
    for group, members in groups(results).items():
        parts += ["", f"### {group}", "", summary_table(members)]
        per_unit = units_table(members)
        if per_unit:
            parts += ["", per_unit]
    goals = goals_table(results)
    if goals:
        parts += ["", "### Goals", "", goals]
    elif settings.mode == "quick":
        parts += ["", "The performance goals hold at the full sizes: run without `--quick`."]
    parts += ["", "### Details", "", detail_table(results)]
    notes = _notes(results)
    if notes:
        parts += ["", "### Notes", "", *notes]
    parts += ["", f"Machine: {machine_line}"]
    return "\n".join(parts)


def units_table(results: Sequence[CaseResult]) -> str | None:
    """einsgrad's median per unit of size (per node of the expression) and its growth, for
    the cases that count their size in units; None if there are none."""
    lines = [
        _row(["case", "size", "units", "einsgrad", "per unit", "growth exponent"]),
        _row(["---"] * 2 + ["---:"] * 4),
    ]
    for result in results:
        if result.case.units is None:
            continue
        unit, count = result.case.units
        median = result.median(EINSGRAD)
        growth = result.growth(family_of(result, results))
        lines.append(
            _row(
                [
                    result.case.name,
                    result.case.size,
                    f"{count:,} {unit}s",
                    fmt_time(median),
                    "—" if median is None else f"{fmt_time(median / count)} per {unit}",
                    "—" if growth is None else f"{growth:.2f}",
                ]
            )
        )
    return "\n".join(lines) if len(lines) > 2 else None


def noisy_threshold() -> float:
    """CPUs other processes may keep busy before a case counts as noisy: NOISY, plus the
    CPUs this process may not run on (taskset), which others may use freely."""
    return NOISY + (os.cpu_count() or 1) - usable_cpus()


def is_noisy(result: CaseResult) -> bool:
    return result.background_cores is not None and result.background_cores > noisy_threshold()


def _notes(results: Sequence[CaseResult]) -> list[str]:
    noisy = noisy_threshold()
    notes = []
    for result in results:
        where = f"{result.case.name} ({result.case.size})"
        if result.error is not None:
            notes.append(f"- {where}: **ERROR** {result.error.splitlines()[0]}")
        for name, impl in result.impls.items():
            if impl.skipped is not None:
                notes.append(f"- {where}: {name} not run: {impl.skipped}")
        if result.background_cores is not None and result.background_cores > noisy:
            notes.append(
                f"- {where}: other processes kept {result.background_cores:.2f} CPUs busy on "
                "average meanwhile; its timings are noisy (multi-threaded ones most)"
            )
        if result.attempts > 1:
            notes.append(
                f"- {where}: run {result.attempts} times because other processes were busy; "
                "the quietest run is reported"
            )
        if result.reference != EINSGRAD and result.error is None:
            notes.append(f"- {where}: answers checked against {result.reference}, not einsgrad")
    return notes


def _row(cells: Sequence[str]) -> str:
    return "| " + " | ".join(cell.replace("|", "\\|") for cell in cells) + " |"


# --- JSON -----------------------------------------------------------------------------------


def as_json(
    results: Sequence[CaseResult], settings: Settings, machine: dict[str, Any], argv: list[str]
) -> dict[str, Any]:
    """Everything measured, with the settings and the machine description."""
    return {
        "command": " ".join(["python -m benchmarks", *argv]),
        "settings": vars(settings),
        "machine": machine,
        "cases": [_case_json(result, family_of(result, results)) for result in results],
    }


def _case_json(result: CaseResult, family: Sequence[CaseResult]) -> dict[str, Any]:
    case = result.case
    units = None
    if case.units is not None:
        median = result.median(EINSGRAD)
        unit, count = case.units
        units = {
            "unit": unit,
            "count": count,
            "per_unit_s": None if median is None else median / count,
            "growth_exponent": result.growth(family),
        }
    return {
        "case": case.name,
        "size": case.size,
        "params": case.params,
        "description": case.description,
        "derivation_s": result.derive_seconds,
        "compile_s": result.compile_seconds,
        "reference": result.reference,
        "background_cpus": result.background_cores,
        "attempts": result.attempts,
        "elapsed_s": result.elapsed,
        "error": result.error,
        "timed": case.timed,
        "units": units,
        "implementations": {
            name: {
                "label": impl.label,
                "skipped": impl.skipped,
                "ratio_to_einsgrad": result.ratio(name) if name != EINSGRAD else None,
                **(impl.timing.as_json() if impl.timing else {}),
            }
            for name, impl in result.impls.items()
        },
        "goals": [
            {
                "goal": goal.text,
                "kind": goal.kind,
                "competitor": goal.competitor,
                "limit": goal.ratio,
                "measured": value,
                "met": met,
            }
            for goal, value, met in result.goals(family)
        ],
    }


def default_path(group: str, settings: Settings, selected: bool) -> Path:
    """``results/<group>-<mode>.json``; a run of selected cases gets a ``-selected`` suffix."""
    return RESULTS / f"{group}-{settings.mode}{'-selected' if selected else ''}.json"


def outputs(
    results: Sequence[CaseResult], settings: Settings, out: Path | None, selected: bool
) -> dict[Path, list[CaseResult]]:
    """Where the JSON goes: every result to ``out`` if given, else one file per group."""
    if out is not None:
        return {out: list(results)}
    return {
        default_path(group, settings, selected): members
        for group, members in groups(results).items()
    }


def write_json(data: dict[str, Any], path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=2, ensure_ascii=False) + "\n")
