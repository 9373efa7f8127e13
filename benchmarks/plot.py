"""Plots of time against problem size, one line per framework (matplotlib, Agg backend).

A family gets a plot when the run measured it at two or more sizes and its cases carry a
``scale`` (the x axis): the left panel is each implementation's median time per call, with
its interquartile range as a band, on log-log axes; the right panel is each competitor's
median over einsgrad's (above 1: einsgrad is faster).

``python -m benchmarks.plot results/gradients-full.json`` redraws the plots of a stored
run from its JSON, without measuring anything.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from . import cases, machine
from .harness import EINSGRAD, CaseResult, ImplResult, Timing
from .report import NOISY, competitor_names

STYLES = {
    EINSGRAD: ("black", "o"),
    "numpy": ("tab:blue", "s"),
    "jax": ("tab:orange", "^"),
    "torch": ("tab:red", "v"),
    "autograd": ("tab:green", "D"),
}


def families(results: Sequence[CaseResult]) -> dict[str, list[CaseResult]]:
    """The families measured at two or more sizes with a scale, results sorted by scale."""
    found: dict[str, list[CaseResult]] = {}
    for result in results:
        if result.case.scale is not None and result.error is None:
            found.setdefault(result.case.name, []).append(result)
    return {
        name: sorted(members, key=lambda r: r.case.scale[1] if r.case.scale else 0.0)
        for name, members in found.items()
        if len(members) >= 2
    }


def plot_family(results: Sequence[CaseResult], path: Path, title: str) -> Path:
    """Draw one family's time-against-size plot into ``path`` (PNG); return the path."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import FuncFormatter

    label = results[0].case.scale[0] if results[0].case.scale else "size"
    names = [EINSGRAD, *competitor_names(results)]
    figure, (times, ratios) = plt.subplots(1, 2, figsize=(12, 5.6))
    for name in names:
        color, marker = STYLES.get(name, (None, "o"))
        points = [
            (r.case.scale[1], r.impls[name].timing)
            for r in results
            if r.case.scale and name in r.impls and r.impls[name].timing is not None
        ]
        if not points:
            continue
        xs = [x for x, _ in points]
        medians = [timing.median for _, timing in points if timing]
        q1 = [timing.iqr[0] for _, timing in points if timing]
        q3 = [timing.iqr[1] for _, timing in points if timing]
        implementation = results[0].impls[name].label if name in results[0].impls else ""
        times.plot(xs, medians, marker=marker, color=color, label=f"{name}: {implementation}")
        times.fill_between(xs, q1, q3, color=color, alpha=0.2, linewidth=0)
        if name != EINSGRAD:
            pairs = [(r.case.scale[1], r.ratio(name)) for r in results if r.case.scale]
            pairs = [(x, ratio) for x, ratio in pairs if ratio is not None]
            if pairs:
                ratios.plot(*zip(*pairs, strict=True), marker=marker, color=color, label=name)
    for axis in (times, ratios):
        axis.set_xscale("log", base=2)
        axis.set_yscale("log")
        axis.set_xlabel(label)
        axis.grid(True, which="both", alpha=0.3)
        xs = sorted({r.case.scale[1] for r in results if r.case.scale})
        axis.set_xticks(xs, [f"{x:g}" for x in xs])
    times.set_ylabel("seconds per call (median; band: IQR)")
    times.set_title("time per call")
    times.legend(fontsize=7, loc="upper left", bbox_to_anchor=(0.0, -0.13), ncol=1)
    times_format = FuncFormatter(lambda y, _: _seconds(y))
    times.yaxis.set_major_formatter(times_format)
    if results[0].case.units is not None and len(names) == 1:
        _per_unit_panel(ratios, results, times_format)
    else:
        _ratio_panel(ratios)
    figure.suptitle(title, fontsize=10)
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=110)
    plt.close(figure)
    return path


def _per_unit_panel(axis: Any, results: Sequence[CaseResult], formatter: Any) -> None:
    """A family with no competitor but a size in units: einsgrad's median per unit (per
    node); flat is linear growth."""
    points = [
        (r.case.scale[1], median / r.case.units[1])
        for r in results
        if r.case.scale and r.case.units and (median := r.median(EINSGRAD)) is not None
    ]
    unit = results[0].case.units[0] if results[0].case.units else "unit"
    color, marker = STYLES[EINSGRAD]
    axis.plot(*zip(*points, strict=True), marker=marker, color=color, label=f"per {unit}")
    axis.yaxis.set_major_formatter(formatter)
    axis.yaxis.set_minor_formatter(formatter)
    axis.set_ylim(min(y for _, y in points) / 3, max(y for _, y in points) * 3)
    axis.set_ylabel(f"median seconds per {unit} of the expression")
    axis.set_title(f"time per {unit} (flat: linear in the size)")
    axis.legend(fontsize=8, loc="upper left", bbox_to_anchor=(0.0, -0.13), ncol=4)


def _ratio_panel(ratios: Any) -> None:
    """Each competitor's median over einsgrad's, with the line of equal speed."""
    from matplotlib.ticker import FuncFormatter

    ratios.axhline(1.0, color="black", linewidth=1)
    low, high = ratios.get_ylim()
    steps = (1, 1.5, 2, 3, 5, 7) if high / low < 30 else (1, 2, 5)
    nice = [m * 10.0**e for e in range(-3, 5) for m in steps if low <= m * 10.0**e <= high]
    ratios.set_yticks(nice, [f"{y:g}×" for y in nice])
    ratios.yaxis.set_minor_formatter(FuncFormatter(lambda y, _: ""))
    ratios.set_ylabel("competitor median / einsgrad median")
    ratios.set_title("ratio to einsgrad (above 1: einsgrad is faster)")
    ratios.legend(fontsize=8, loc="upper left", bbox_to_anchor=(0.0, -0.13), ncol=4)


def _seconds(value: float) -> str:
    for unit, scale in (("s", 1.0), ("ms", 1e-3), ("µs", 1e-6)):
        if value >= scale:
            return f"{value / scale:g} {unit}"
    return f"{value * 1e9:g} ns"


def plot_all(results: Sequence[CaseResult], json_path: Path, subtitle: str) -> list[Path]:
    """Plot every family with several sizes next to the JSON: ``<json stem>-<family>.png``."""
    written = []
    for name, members in families(results).items():
        path = json_path.with_name(f"{json_path.stem}-{name}.png")
        title = f"{name}: {members[0].case.description}\n{subtitle}"
        noisy = [r.case.size for r in members if (r.background_cores or 0.0) > NOISY]
        if noisy:
            title += f"\nnoisy: other processes kept CPUs busy during {', '.join(noisy)}"
        written.append(plot_family(members, path, title))
    return written


def results_from_json(data: dict[str, Any]) -> list[CaseResult]:
    """The results stored in a run's JSON, rebuilt (cases from the registry, by params)."""
    known = cases.families()
    results = []
    for stored in data["cases"]:
        family = known.get(stored["case"])
        if family is None:
            continue
        params = stored["params"]
        size = params["n"] if len(params) == 1 and "n" in params else tuple(params.values())
        result = CaseResult(family.build(size), background_cores=stored.get("background_cpus"))
        result.error = stored.get("error")
        for name, impl in stored["implementations"].items():
            timing = None
            if "samples_s" in impl:
                timing = Timing(impl["number"], impl["samples_s"], impl["first_call_s"])
            result.impls[name] = ImplResult(name, impl["label"], timing, impl.get("skipped"))
        results.append(result)
    return results


def main(argv: list[str]) -> int:
    """Redraw the plots of the JSON files named in ``argv``."""
    for name in argv:
        path = Path(name)
        data = json.loads(path.read_text())
        subtitle = machine.short_summary(data["machine"], data["settings"]["mode"])
        for image in plot_all(results_from_json(data), path, subtitle):
            print(f"plot written to {image}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
