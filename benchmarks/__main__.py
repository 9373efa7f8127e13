"""``python -m benchmarks [--quick] [--only NAME ...] [--list] [--out PATH]``.

Prints a Markdown report on stdout and writes the JSON results (one file per group) and the
time-against-size plots under benchmarks/results/. Full mode shows a progress bar on stderr.
Exits with status 1 if any case failed (a mismatch, a crash, or einsgrad unable to derive).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from . import cases, machine, report
from .harness import EINSGRAD, FULL, QUICK, CaseResult, Settings, run_case, wait_for_quiet
from .progress import ProgressBar


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks",
        description="Time einsgrad against numpy, jax.jit, torch and autograd, side by side.",
    )
    parser.add_argument(
        "--quick", action="store_true", help="smaller sizes and fewer repeats (under a minute)"
    )
    parser.add_argument(
        "--only",
        action="append",
        default=[],
        metavar="NAME",
        help="run only these cases (names or shell patterns; repeat or separate with commas)",
    )
    parser.add_argument("--list", action="store_true", help="list the cases and their sizes")
    parser.add_argument(
        "--out",
        type=Path,
        help="one JSON file for all results (default: benchmarks/results/<group>-<mode>.json); "
        "plots go next to it",
    )
    parser.add_argument("--no-json", action="store_true", help="do not write the JSON files")
    parser.add_argument("--no-plot", action="store_true", help="do not draw the plots")
    parser.add_argument("--seed", type=int, default=0, help="seed of the random inputs")
    parser.add_argument(
        "--retry-noisy",
        type=int,
        default=0,
        metavar="N",
        help="rerun a case up to N times while other processes kept the CPUs busy during it "
        "(waiting for a quiet machine first); the quietest run is reported",
    )
    parser.add_argument(
        "--wait-quiet",
        type=float,
        default=0.0,
        metavar="SECONDS",
        help="before each case, wait up to SECONDS for other processes to leave the CPUs idle",
    )
    return parser.parse_args(argv)


def list_cases() -> str:
    """One line per case: its name, description and the sizes of each mode."""
    lines = []
    for name, family in cases.families().items():
        lines.append(f"{name}: {family.build(family.full[0]).description}")
        for mode in ("quick", "full"):
            sizes = "; ".join(family.build(size).size for size in getattr(family, mode))
            lines.append(f"    {mode}: {sizes}")
    return "\n".join(lines)


def failed(result: CaseResult) -> bool:
    """A case fails on an error, or when einsgrad could not be derived or evaluated."""
    ours = result.impls.get(EINSGRAD)
    return result.error is not None or ours is None or ours.timing is None


def run_all(
    selected: list[cases.Case], settings: Settings, wait_quiet: float, retries: int = 0
) -> list[CaseResult]:
    """Run the cases in order; in full mode with a progress bar, in quick mode a line each.

    Before each case, wait up to ``wait_quiet`` seconds for a quiet machine. A case during
    which other processes kept the CPUs busy is rerun up to ``retries`` times (after waiting
    for quiet, at least a minute); the quietest run is kept.
    """
    bar = ProgressBar(len(selected)) if settings.mode == "full" else None

    def say(message: str) -> None:
        if bar is not None:
            bar.write(message)
        else:
            print(message, file=sys.stderr, flush=True)

    def wait(seconds: float, index: int, name: str) -> None:
        if bar is not None and bar.live:
            bar.start(index, name)
            bar.update(0.0, "waiting for a quiet machine", force=True)
        waited = wait_for_quiet(seconds)
        if waited >= 1.0:
            say(f"waited {waited:.1f} s for a quiet machine")

    results = []
    for index, case in enumerate(selected):
        name = f"{case.name} ({case.size})"
        best: CaseResult | None = None
        for attempt in range(1, retries + 2):
            if wait_quiet > 0 or attempt > 1:
                wait(max(wait_quiet, 60.0) if attempt > 1 else wait_quiet, index, name)
            if bar is None:
                print(f"running {name} ...", file=sys.stderr, flush=True)
                result = run_case(case, settings)
            else:
                bar.start(index, name)
                result = run_case(case, settings, bar.update)
            if best is None or (result.background_cores or 0.0) < (best.background_cores or 0.0):
                best = result
            best.attempts = attempt
            if not report.is_noisy(best) or attempt > retries:
                break
            say(
                f"{name}: other processes kept {result.background_cores:.2f} CPUs busy; "
                f"running it again ({attempt}/{retries})"
            )
        assert best is not None
        results.append(best)
    if bar is not None:
        bar.finish()
    return results


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    args = parse_args(argv)
    if args.list:
        print(list_cases())
        return 0
    base = QUICK if args.quick else FULL
    settings = Settings(**{**vars(base), "seed": args.seed})
    only = [name.strip() for value in args.only for name in value.split(",") if name.strip()]
    start = time.perf_counter()
    try:
        selected = cases.select(settings.mode, only)
    except KeyError as error:
        print(error.args[0], file=sys.stderr)
        return 2
    # Described before running: einsgrad's commit is the one imported, even if the checkout
    # moves on while the cases run.
    description = machine.describe()
    results = run_all(selected, settings, args.wait_quiet, args.retry_noisy)
    elapsed = time.perf_counter() - start
    print(report.markdown(results, settings, machine.summary(description)))
    print(f"\n({len(results)} cases in {elapsed:.1f} s)")
    written = report.outputs(results, settings, args.out, selected=bool(only))
    if not args.no_json:
        for path, members in written.items():
            report.write_json(report.as_json(members, settings, description, argv), path)
            print(f"results written to {path}", file=sys.stderr)
    if not args.no_plot:
        from .plot import plot_all

        subtitle = machine.short_summary(description, settings.mode)
        for path, members in written.items():
            for image in plot_all(members, path, subtitle):
                print(f"plot written to {image}", file=sys.stderr)
    failures = [result for result in results if failed(result)]
    for result in failures:
        reason = result.error or result.impls[EINSGRAD].skipped
        print(f"FAILED {result.case.name} ({result.case.size}): {reason}", file=sys.stderr)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
