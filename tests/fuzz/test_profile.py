"""The fuzz profile: bounded and reproducible by default, 100 times longer on request.

Each run is a fresh pytest process on a one-test file that records the examples it is
given, so the option and the environment variable are read exactly as in a real run.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

TESTS = Path(__file__).resolve().parent.parent
RECORDER = """
import os
from hypothesis import given, strategies as st
from fuzz.harness import fuzz_settings

@fuzz_settings(3)
@given(st.integers())
def test_records_its_examples(n):
    with open(os.environ["FUZZ_RECORD"], "a") as out:
        out.write(f"{n}\\n")
"""


def examples_of_a_run(
    tmp_path: Path, name: str, *options: str, long_env: bool = False
) -> list[str]:
    """The examples a 3-example fuzz test was given in one pytest run."""
    test_file = tmp_path / f"test_{name}.py"
    test_file.write_text(RECORDER)
    record = tmp_path / f"{name}.txt"
    env = {
        **os.environ,
        "FUZZ_RECORD": str(record),
        "PYTHONPATH": f"{TESTS}{os.pathsep}{TESTS.parent}",
    }
    env.pop("EINSGRAD_FUZZ_LONG", None)
    if long_env:
        env["EINSGRAD_FUZZ_LONG"] = "1"
    command = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "conftest"]
    result = subprocess.run(
        [*command, str(test_file), *options],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return record.read_text().split()


def test_ci_runs_are_bounded_and_repeat_the_same_examples(tmp_path: Path) -> None:
    first = examples_of_a_run(tmp_path, "first")
    second = examples_of_a_run(tmp_path, "second")
    assert len(first) == 3
    assert first == second


def test_long_runs_take_a_hundred_times_the_examples_from_a_random_seed(tmp_path: Path) -> None:
    by_option = examples_of_a_run(tmp_path, "option", "--fuzz-long")
    by_environment = examples_of_a_run(tmp_path, "environment", long_env=True)
    assert len(by_option) == len(by_environment) == 300
    assert by_option != by_environment
