"""Make ``tests/oracles.py`` importable as ``oracles`` and give its asserts pytest's detail.

pytest's default ("prepend") import mode already puts this folder on ``sys.path``; the
explicit insert keeps ``from oracles import ...`` working under other import modes too.
pytest rewrites the ``assert`` statements of test files and conftest files only, so the
shared oracles are registered for rewriting here, before any test file imports them.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

TESTS = str(Path(__file__).resolve().parent)
if TESTS not in sys.path:
    sys.path.insert(0, TESTS)

pytest.register_assert_rewrite("oracles")
