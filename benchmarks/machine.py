"""A description of the machine and software a run measured, stored with its results."""

from __future__ import annotations

import datetime
import importlib
import importlib.metadata
import importlib.util
import os
import platform
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np

import einsgrad

THREAD_VARIABLES = (
    "OMP_NUM_THREADS",
    "OPENBLAS_NUM_THREADS",
    "MKL_NUM_THREADS",
    "BLIS_NUM_THREADS",
    "VECLIB_MAXIMUM_THREADS",
    "NUMEXPR_NUM_THREADS",
    "XLA_FLAGS",
)
SIMD_FLAGS = ("sse4_2", "avx", "avx2", "fma", "avx512f")
ROOT = Path(__file__).resolve().parent.parent


def usable_cpus() -> int:
    """The CPUs this process may run on (its affinity mask, e.g. under ``taskset``)."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def cpu() -> dict[str, Any]:
    """CPU model, logical CPUs (total and usable by this process), SIMD flags, memory."""
    info: dict[str, Any] = {
        "model": platform.processor() or platform.machine(),
        "logical_cpus": os.cpu_count(),
        "usable_cpus": usable_cpus(),
    }
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return info
    fields = dict(
        (key.strip(), value.strip())
        for key, _, value in (line.partition(":") for line in text.splitlines())
        if value
    )
    info["model"] = fields.get("model name", info["model"])
    flags = set(fields.get("flags", "").split())
    info["simd"] = [flag for flag in SIMD_FLAGS if flag in flags]
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                info["memory_gib"] = round(int(line.split()[1]) / 2**20, 1)
    except OSError:
        pass
    return info


def blas() -> dict[str, Any]:
    """numpy's BLAS (name, version, configuration) and, if threadpoolctl is there, its threads."""
    found: dict[str, Any] = {}
    try:
        config = np.show_config(mode="dicts")
        found = {
            key: value
            for key, value in config["Build Dependencies"]["blas"].items()
            if key in ("name", "version", "openblas configuration")
        }
    except Exception:  # older numpy or a build without the dict: leave it out
        pass
    try:
        import threadpoolctl

        found["threadpools"] = [
            {key: pool.get(key) for key in ("internal_api", "num_threads", "version")}
            for pool in threadpoolctl.threadpool_info()
        ]
    except ImportError:
        pass
    return found


def version(distribution: str) -> str | None:
    """An installed distribution's version, or None."""
    try:
        return importlib.metadata.version(distribution)
    except importlib.metadata.PackageNotFoundError:
        return None


def libraries() -> dict[str, Any]:
    """Versions of einsgrad and the competitors, with their thread settings."""
    found: dict[str, Any] = {
        "numpy": np.__version__,
        "blas": blas(),
        "opt_einsum": version("opt_einsum"),
        "einsgrad": {"version": einsgrad.__version__, "git": git_revision()},
        "autograd": version("autograd"),
    }
    if "jax" in sys.modules or importlib.util.find_spec("jax"):
        from . import competitors

        jax = competitors.jax()
        found["jax"] = {
            "version": jax.__version__,
            "jaxlib": version("jaxlib"),
            "backend": jax.default_backend(),
            "devices": [str(device) for device in jax.devices()],
            "x64": bool(jax.config.jax_enable_x64),
        }
    if importlib.util.find_spec("torch"):
        torch = importlib.import_module("torch")
        found["torch"] = {
            "version": torch.__version__,
            "num_threads": torch.get_num_threads(),
            "num_interop_threads": torch.get_num_interop_threads(),
        }
    return found


def git_revision() -> str | None:
    """The checkout's commit, with ``+dirty`` when einsgrad's own files have changes (edits
    to the benchmarks or the tests do not change what is measured)."""
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--", "einsgrad", "pyproject.toml"],
            cwd=ROOT,
            capture_output=True,
            text=True,
        ).stdout.strip()
    except OSError:
        return None
    return f"{commit}+dirty" if commit and dirty else commit or None


def describe() -> dict[str, Any]:
    """Everything about the machine and software that a reader of the results needs."""
    return {
        "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "platform": platform.platform(),
        "python": f"{platform.python_implementation()} {platform.python_version()}",
        "cpu": cpu(),
        "thread_environment": {name: os.environ.get(name) for name in THREAD_VARIABLES},
        "libraries": libraries(),
    }


def summary(machine: dict[str, Any]) -> str:
    """One paragraph of the description, for the Markdown report."""
    cpu_info, libs = machine["cpu"], machine["libraries"]
    blas_info = libs["blas"]
    threads = ", ".join(
        f"{name}={value}" for name, value in machine["thread_environment"].items() if value
    )
    parts = [
        f"{cpu_info['model']}, {cpu_info['logical_cpus']} logical CPUs "
        f"({cpu_info.get('usable_cpus')} usable), {cpu_info.get('memory_gib', '?')} GiB",
        machine["platform"],
        machine["python"],
        f"numpy {libs['numpy']} ({blas_info.get('name', '?')} {blas_info.get('version', '')})",
        f"opt_einsum {libs['opt_einsum']}",
        f"einsgrad {libs['einsgrad']['version']} @ {libs['einsgrad']['git']}",
    ]
    if "jax" in libs:
        parts.append(f"jax {libs['jax']['version']} ({libs['jax']['backend']}, x64)")
    if "torch" in libs:
        torch = libs["torch"]
        parts.append(f"torch {torch['version']} ({torch['num_threads']} threads)")
    parts.append(f"autograd {libs['autograd']}")
    parts.append(f"thread variables: {threads or 'none set'}")
    return "; ".join(parts) + "."


def short_summary(machine: dict[str, Any], mode: str) -> str:
    """One line for a plot: mode, date, CPU, einsgrad's commit and the libraries' versions."""
    cpu_info, libs = machine["cpu"], machine["libraries"]
    parts = [
        f"{mode} mode, {machine['date'][:10]}",
        f"{cpu_info['model']} ({cpu_info.get('usable_cpus')} CPUs)",
        f"einsgrad @ {libs['einsgrad']['git']}",
        f"numpy {libs['numpy']}",
    ]
    if "jax" in libs:
        parts.append(f"jax {libs['jax']['version']}")
    if "torch" in libs:
        parts.append(f"torch {libs['torch']['version']}")
    parts.append(f"autograd {libs['autograd']}; float64")
    return ", ".join(parts)
