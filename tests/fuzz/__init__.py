"""The fuzz layer: every entry point fed generated input, valid and not.

Each property asserts one of two things about every call: a correct result (against
numpy, JAX or central finite differences, whichever is cheap for the input) or an
``EinsgradError`` with a non-empty message; any other exception fails, and so does a
call over the time bound (``harness.TIME_BOUND``). The strategies are in
``strategies.py``; the oracles of generated expressions and index equations in
``expressions.py`` and ``index_notation.py``.

The example counts are fixed and derandomized so CI runs the same examples every time
in well under a minute; ``pytest --fuzz-long`` (or ``EINSGRAD_FUZZ_LONG=1``) runs 100
times as many from a random seed (``tests/conftest.py``).
"""
