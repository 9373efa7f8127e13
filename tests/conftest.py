"""Make ``tests/oracles.py`` importable as ``oracles`` and give its asserts pytest's detail;
register the fuzz layer's hypothesis profile and its ``--fuzz-long`` option.

pytest's default ("prepend") import mode already puts this folder on ``sys.path``; the
explicit insert keeps ``from oracles import ...`` (and ``from fuzz... import ...``)
working under other import modes too. pytest rewrites the ``assert`` statements of test
files and conftest files only, so the shared oracles and the fuzz layer's helpers are
registered for rewriting here, before any test file imports them.

The fuzz layer (``tests/fuzz/``) reads one hypothesis profile, :data:`FUZZ_PROFILE`,
registered here and nowhere else. By default it is reproducible and fits CI: every fuzz
test runs its own bounded number of examples from a fixed seed (``derandomize``). With
``pytest --fuzz-long`` (or ``EINSGRAD_FUZZ_LONG=1`` in the environment) every fuzz test
runs :data:`FUZZ_LONG_FACTOR` times as many examples from a fresh random seed, the
nightly-style run; hypothesis prints the seed and a ``@reproduce_failure`` blob for any
failure, since a random run cannot be repeated otherwise.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest
from hypothesis import HealthCheck, Phase, settings

TESTS = str(Path(__file__).resolve().parent)
if TESTS not in sys.path:
    sys.path.insert(0, TESTS)

pytest.register_assert_rewrite("oracles", "fuzz")

FUZZ_PROFILE = "einsgrad-fuzz"
FUZZ_LONG_FACTOR = 100
FUZZ_LONG_VARIABLE = "EINSGRAD_FUZZ_LONG"


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--fuzz-long",
        action="store_true",
        default=False,
        help=f"run the fuzz layer (tests/fuzz) with {FUZZ_LONG_FACTOR}x the examples from a "
        f"random seed (also {FUZZ_LONG_VARIABLE}=1)",
    )


def fuzz_long_requested(config: pytest.Config) -> bool:
    """``--fuzz-long`` on the command line, or ``EINSGRAD_FUZZ_LONG`` set to 1."""
    return bool(config.getoption("--fuzz-long")) or os.environ.get(FUZZ_LONG_VARIABLE) == "1"


def pytest_configure(config: pytest.Config) -> None:
    # Registered, never loaded: loading would change the defaults of the suite's other
    # hypothesis tests, which state their own settings. The fuzz tests start from it
    # (tests/fuzz/harness.py: fuzz_settings), and its max_examples is the factor each of
    # them multiplies its own example count by.
    long_run = fuzz_long_requested(config)
    settings.register_profile(
        FUZZ_PROFILE,
        max_examples=FUZZ_LONG_FACTOR if long_run else 1,
        derandomize=not long_run,
        database=None,
        # Each einsgrad call has its own time bound (harness.time_bound); hypothesis's
        # deadline would also count the oracles (a JAX trace can take 0.3 s).
        deadline=None,
        print_blob=True,
        # No "explain" phase: it reruns a failure under coverage to list the lines it
        # ran, slow on the fuzz layer's big inputs, and the minimal example says enough.
        phases=[Phase.explicit, Phase.reuse, Phase.generate, Phase.target, Phase.shrink],
        suppress_health_check=[
            HealthCheck.too_slow,
            HealthCheck.data_too_large,
            HealthCheck.filter_too_much,
            HealthCheck.large_base_example,
        ],
    )
