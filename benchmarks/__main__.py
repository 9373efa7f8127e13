"""``python -m benchmarks [--quick] [--only NAME ...] [--list] [--out PATH]``.

Prints a Markdown report on stdout and writes the JSON results under benchmarks/results/.
Exits with status 1 if any case failed (a mismatch, a crash, or einsgrad unable to derive).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from . import cases, machine, report
from .harness import EINSGRAD, FULL, QUICK, CaseResult, Settings, run_case, wait_for_quiet


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
        "--out", type=Path, help="the JSON file (default: benchmarks/results/<group>-<mode>.json)"
    )
    parser.add_argument("--no-json", action="store_true", help="do not write the JSON file")
    parser.add_argument("--seed", type=int, default=0, help="seed of the random inputs")
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


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    args = parse_args(argv)
    if args.list:
        print(list_cases())
        return 0
    base = QUICK if args.quick else FULL
    settings = Settings(**{**vars(base), "seed": args.seed})
    only = [name.strip() for value in args.only for name in value.split(",") if name.strip()]
    try:
        selected = cases.select(settings.mode, only)
    except KeyError as error:
        print(error.args[0], file=sys.stderr)
        return 2
    results = []
    start = time.perf_counter()
    for case in selected:
        if args.wait_quiet > 0:
            waited = wait_for_quiet(args.wait_quiet)
            print(f"waited {waited:.1f} s for a quiet machine", file=sys.stderr, flush=True)
        print(f"running {case.name} ({case.size}) ...", file=sys.stderr, flush=True)
        results.append(run_case(case, settings))
    elapsed = time.perf_counter() - start
    description = machine.describe()
    print(report.markdown(results, settings, machine.summary(description)))
    print(f"\n({len(results)} cases in {elapsed:.1f} s)")
    if not args.no_json:
        path = args.out or report.default_path(results, settings, selected=bool(only))
        report.write_json(report.as_json(results, settings, description, argv), path)
        print(f"results written to {path}", file=sys.stderr)
    failures = [result for result in results if failed(result)]
    for result in failures:
        reason = result.error or result.impls[EINSGRAD].skipped
        print(f"FAILED {result.case.name} ({result.case.size}): {reason}", file=sys.stderr)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
