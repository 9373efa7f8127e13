"""einsgrad's benchmark suite: ``python -m benchmarks [--quick] [--only NAME]``.

Each case times einsgrad's evaluation of a derived expression side by side with hand-written
numpy, ``jax.jit``, torch and HIPS autograd, after checking every competitor's answer against
einsgrad's. Performance goals live here, never in timed unit tests.
"""
