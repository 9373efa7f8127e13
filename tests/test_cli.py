"""The command line, run as a user runs it: a subprocess, checked by exit code and output."""

from __future__ import annotations

import subprocess
import sys
from typing import Any

import pytest


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "einsgrad", *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_demo_derives_the_seed_rules_and_passes_its_numeric_checks() -> None:
    result = run("demo")
    assert result.returncode == 0, result.stderr
    out = result.stdout
    # The backward einsums of Y = X W, derived by hand in seed 000/001: dW = Xᵀ dY, dX = dY Wᵀ.
    assert "einsum 'bi,bj->ij'" in out
    assert "einsum 'ij,bj->bi'" in out
    assert "dW[i,j] = Σ_b X[b,i] · dY[b,j]" in out
    assert "dX[b,i] = Σ_j W[i,j] · dY[b,j]" in out
    # The bias gradient sums over the batch; every gradient is checked numerically.
    assert "einsum('ab->b'" in out
    assert out.count(" OK") == 3
    assert "FAILED" not in out
    assert out.rstrip().endswith("all checks passed")


def test_unknown_command_is_a_usage_error() -> None:
    result = run("no-such-command")
    assert result.returncode == 2
    assert "invalid choice" in result.stderr
    assert "Traceback" not in result.stderr


def test_demo_reports_a_failed_check(monkeypatch: pytest.MonkeyPatch) -> None:
    # The demo's check must be able to fail: corrupt the derived gradients, run it in-process.
    import einsgrad.demo as demo

    original = demo.evaluate

    def corrupted(exprs: Any, mapping: Any = None, /, **arrays: Any) -> Any:
        result = original(exprs, mapping, **arrays)
        if isinstance(exprs, list):  # the gradients, not the loss used by finite differences
            return tuple(value + 1e-3 for value in result)
        return result

    monkeypatch.setattr(demo, "evaluate", corrupted)
    lines: list[str] = []
    failures = demo.run(lines.append)
    assert failures == 3
    assert "3 check(s) FAILED" in lines[-1]
