"""Array backends by name: numpy built in, every other one a module loaded on first use.

A backend is one module here, ``einsgrad/backends/<name>.py``, that subclasses
:class:`~einsgrad.backends.base.Backend` and names its instance ``BACKEND``.
:func:`get_backend` imports it the first time it is asked for, so a backend whose array
library is not installed costs nothing until it is used, and then fails with a
:class:`~einsgrad.core.errors.BackendError` that names the missing library.
"""

from __future__ import annotations

import importlib
import pkgutil

from einsgrad.backends import numpy as _numpy
from einsgrad.backends.base import Backend
from einsgrad.core.errors import BackendError

__all__ = ["Backend", "available_backends", "get_backend", "register_backend"]

_REGISTRY: dict[str, Backend] = {}


def register_backend(backend: Backend) -> Backend:
    """Make ``backend`` the one :func:`get_backend` returns for ``backend.name``."""
    if not isinstance(backend, Backend):
        raise TypeError(f"expected an einsgrad Backend, got {type(backend).__name__}")
    _REGISTRY[backend.name] = backend
    return backend


def get_backend(name: str = "numpy") -> Backend:
    """The backend registered under ``name``, loading its module on first use.

    BackendError for a name no module provides, or whose array library is missing.
    """
    found = _REGISTRY.get(name) if isinstance(name, str) else None
    if found is not None:
        return found
    return register_backend(_load(name))


def _modules() -> list[str]:
    """The backend modules of this package, by name."""
    return sorted(m.name for m in pkgutil.iter_modules(__path__) if m.name != "base")


def _load(name: str) -> Backend:
    known = sorted(set(_REGISTRY) | set(_modules()))
    if not isinstance(name, str) or name not in _modules():
        raise BackendError(f"unknown backend {name!r}; the backends are {', '.join(known)}")
    try:
        module = importlib.import_module(f"{__name__}.{name}")
    except ImportError as error:
        missing = error.name or "a library"
        raise BackendError(
            f"backend {name!r} needs {missing}, which is not installed ({error})"
        ) from None
    backend = getattr(module, "BACKEND", None)
    if not isinstance(backend, Backend):
        raise BackendError(f"{module.__name__} defines no BACKEND instance")
    return backend


def available_backends() -> list[str]:
    """The names of the backends whose array libraries are installed."""
    names = []
    for name in sorted(set(_REGISTRY) | set(_modules())):
        try:
            get_backend(name)
        except BackendError:
            continue
        names.append(name)
    return names


register_backend(_numpy.BACKEND)
