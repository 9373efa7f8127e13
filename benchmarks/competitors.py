"""Lazy, configured imports of the competing libraries, and conversion of their results.

JAX is switched to float64 on import (``jax_enable_x64``): every case compares float64.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from types import ModuleType
from typing import Any

import numpy as np


@functools.cache
def jax() -> ModuleType:
    """``jax`` with float64 enabled."""
    import jax as module

    module.config.update("jax_enable_x64", True)  # type: ignore[no-untyped-call]
    return module


def jnp() -> ModuleType:
    """``jax.numpy`` (float64 enabled)."""
    return jax().numpy  # type: ignore[no-any-return]


def jax_inputs(arrays: Mapping[str, np.ndarray], names: str) -> list[Any]:
    """The named arrays as JAX arrays, already on the device (outside the timed loop)."""
    jax_module = jax()
    return [jax_module.device_put(arrays[name]) for name in names.split()]


@functools.cache
def torch() -> ModuleType:
    """``torch`` with ``torch.func`` loaded."""
    import torch as module
    import torch.func  # makes module.func available

    return module


def torch_inputs(arrays: Mapping[str, np.ndarray], names: str) -> list[Any]:
    """The named arrays as CPU tensors sharing numpy's memory."""
    return [torch().from_numpy(arrays[name]) for name in names.split()]


@functools.cache
def autograd() -> Any:
    """HIPS ``autograd`` (untyped)."""
    import autograd as module

    return module


def anp() -> Any:
    """``autograd.numpy`` (untyped)."""
    import autograd.numpy as module

    return module


def block(value: Any) -> Any:
    """Wait for an asynchronously dispatched JAX result (an array, or a tuple or list of
    them: every element is waited for); other values pass through."""
    if isinstance(value, tuple | list):
        for element in value:
            block(element)
        return value
    ready = getattr(value, "block_until_ready", None)
    return ready() if ready is not None else value


def as_numpy(value: Any) -> np.ndarray:
    """Any library's result as a numpy array (torch tensors are detached first)."""
    if hasattr(value, "detach"):
        return value.detach().cpu().numpy()  # type: ignore[no-any-return]
    return np.asarray(value)


def as_arrays(value: Any) -> list[np.ndarray]:
    """A result as a list of numpy arrays: a tuple or list (of gradients) element by element,
    anything else as one array."""
    if isinstance(value, tuple | list):
        return [as_numpy(element) for element in value]
    return [as_numpy(value)]
