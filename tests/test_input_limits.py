"""Einsum specs: the length is checked first, and a spec over the limit is refused at once.

``eg.einsum``, ``eg.backward`` and the internal dialect all refuse a spec over
``MAX_SPEC_LENGTH`` characters with a SpecError naming the limit, before reading it: a
10 MB spec is refused in well under a second. The other string entry points have the
same tests beside their others: expression strings in ``tests/test_parse.py``, index
equations in ``tests/test_index.py``, ``eg.check`` formulas in ``tests/test_check.py``.
"""

from __future__ import annotations

import time

import numpy as np
import pytest

import einsgrad as eg
from einsgrad.core.spec import MAX_SPEC_LENGTH, parse_spec

TEN_MB = 10_000_000


@pytest.mark.parametrize(
    "spec",
    ["i" * 100_000, "i," * 50_000 + "->", "a" * TEN_MB, " " * (MAX_SPEC_LENGTH + 1) + "i->i"],
    ids=["100,000 labels", "50,000 terms", "10 MB", "spaces"],
)
def test_an_overlong_einsum_spec_is_refused_at_once(spec: str) -> None:
    start = time.perf_counter()
    for entry in (
        lambda: eg.einsum(spec, np.ones(2)),
        lambda: eg.backward(spec, 0),
        lambda: parse_spec(spec, generalized=True),
    ):
        with pytest.raises(eg.SpecError) as info:
            entry()
        message = str(info.value)
        assert f"{len(spec):,} characters long; the limit is {MAX_SPEC_LENGTH:,}" in message
        assert len(message) < 200  # the spec is quoted only in part
    assert time.perf_counter() - start < 1.0  # generous


def test_a_spec_at_the_limit_is_read() -> None:
    spec = "ij,jk->ik".center(MAX_SPEC_LENGTH)
    a, b = np.arange(6.0).reshape(2, 3), np.arange(12.0).reshape(3, 4)
    np.testing.assert_allclose(eg.einsum(spec, a, b)(), np.einsum(spec, a, b))
    assert eg.backward(spec, 1).spec == "ij,ik->jk"
