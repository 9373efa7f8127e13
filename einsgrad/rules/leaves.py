"""The rows of the node kinds with no children to differentiate: Var, Const, Size, Seed.

A derivative never flows *through* them (a Size or a Seed only reads a shape), so their
derivative entries hand out nothing; what they do have is a shape, a printed form, a
structural key and a way to be rebuilt.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from einsgrad.core import kinds
from einsgrad.core.derivation import RuleSteps
from einsgrad.core.errors import GradError, NoFormError, ShapeError
from einsgrad.core.ir import Const, Expr, Meta, Seed, Shape, Size, Var
from einsgrad.core.lowering import Lowered, StepInput
from einsgrad.graph import ops
from einsgrad.graph.matrix_text import no_matrix_form, number_text
from einsgrad.graph.printing import ATOM, axis_text, const_text, short_name
from einsgrad.rules.algebra import keep

__all__ = ["size_count"]


def size_count(node: Size, shape: Shape) -> int:
    """The number of elements of an array of ``shape`` along ``node``'s axes."""
    axes = ops.normalize_axes(node.axes, len(shape), node.arg)
    return int(np.prod([shape[a] for a in axes], dtype=np.int64))


def _no_cotangents(node: Expr, cotangent: Expr, wanted: Sequence[bool], *batch: str) -> list[None]:
    return [None for _ in node.children]


def _no_tangent(node: Expr, tangents: Sequence[Expr | None], extra: Shape | None) -> None:
    return None


def _no_explanation(node: Expr, position: int, names: Sequence[str], output_name: str) -> RuleSteps:
    return RuleSteps(f"{output_name} has no arguments to differentiate")


def _same(node: Expr, children: Sequence[Expr], references: Sequence[Expr]) -> Expr:
    return node


# --- Var ----------------------------------------------------------------------------------


def _var_infer(node: Var, children: Sequence[Meta], references: Sequence[Meta]) -> Meta:
    if node.shape is None:
        raise ShapeError(f"variable {node.name!r} has no declared shape: it comes with its array")
    return Meta(node.shape, node.dtype)


def _var_key(node: Var, child_keys: Sequence[str], reference_keys: Sequence[str]) -> list[Any]:
    return ["var", node.name, node.shape, str(node.dtype)]


def _var_lower(node: Var, step: StepInput) -> Lowered:
    return Lowered.bound_input()


# --- Const --------------------------------------------------------------------------------


def _const_infer(node: Const, children: Sequence[Meta], references: Sequence[Meta]) -> Meta:
    if node.is_scalar:
        return Meta((), None)
    return Meta(node.value.shape, node.value.dtype)


def _const_text(node: Const, text_of: Any, wrap: Any) -> tuple[str, int]:
    negative = node.is_scalar and isinstance(node.value, int | float) and node.value < 0
    return const_text(node), (30 if negative else ATOM)


def _const_key(node: Const, child_keys: Sequence[str], reference_keys: Sequence[str]) -> list[Any]:
    if node.is_scalar:
        return ["const", repr(node.value)]
    raw = np.ascontiguousarray(node.value).tobytes()
    return ["array", node.value.shape, node.value.dtype.str, hashlib.sha1(raw).hexdigest()]


def _const_lower(node: Const, step: StepInput) -> Lowered:
    # A Python int computes as a float, as integer arrays do (Const makes them float64).
    value = float(node.value) if isinstance(node.value, int) else node.value
    value = value if node.is_scalar else step.backend.asarray(value)
    return Lowered.known_value(value, "const", listed=False)


# --- Size ---------------------------------------------------------------------------------


def _size_infer(node: Size, children: Sequence[Meta], references: Sequence[Meta]) -> Meta:
    size_count(node, references[0].shape)  # validates the axes
    return Meta((), None)


def _size_text(node: Size, text_of: Any, wrap: Any) -> tuple[str, int]:
    return f"size({text_of(node.arg)[0]}{axis_text(node.axes)})", ATOM


def _size_rebuild(node: Size, children: Sequence[Expr], references: Sequence[Expr]) -> Expr:
    return ops.size(references[0], node.axes)


def _size_key(node: Size, child_keys: Sequence[str], reference_keys: Sequence[str]) -> list[Any]:
    return ["size", node.axes, *reference_keys]


def _size_lower(node: Size, step: StepInput) -> Lowered:
    return Lowered.known_value(size_count(node, step.references[0].shape), "size")


# --- Seed ---------------------------------------------------------------------------------


def _seed_infer(node: Seed, children: Sequence[Meta], references: Sequence[Meta]) -> Meta:
    shape = references[0].shape
    if shape != ():
        raise GradError(
            f"grad needs a scalar loss, but {short_name(node.loss)} has shape {shape}; "
            "use vjp (with a cotangent of that shape) or jacobian for non-scalar outputs"
        )
    return Meta((), references[0].dtype)


def _seed_text(node: Seed, text_of: Any, wrap: Any) -> tuple[str, int]:
    return f"ones_like({text_of(node.loss)[0]})", ATOM


def _seed_rebuild(node: Seed, children: Sequence[Expr], references: Sequence[Expr]) -> Expr:
    return ops.seed(references[0])


def _seed_key(node: Seed, child_keys: Sequence[str], reference_keys: Sequence[str]) -> list[Any]:
    return ["seed", *reference_keys]


def _seed_lower(node: Seed, step: StepInput) -> Lowered:
    return Lowered.known_value(1.0, "seed")  # ∂L/∂L


def _var_index(node: Var, labels: Sequence[str], writer: Any) -> tuple[str, int]:
    text: str = writer.tensor(node.name, labels)
    return text, ATOM


def _const_matrix(node: Const, form_of: Any, style: Any) -> tuple[str | None, int]:
    return (number_text(node.value), ATOM) if node.is_scalar else (None, 0)


def _const_index(node: Const, labels: Sequence[str], writer: Any) -> tuple[str, int]:
    if not node.is_scalar:
        raise NoFormError("index notation has no form for a constant array")
    value = node.value
    text = repr(float(value)) if isinstance(value, int | float) else repr(value)
    return text, (ATOM if isinstance(value, complex) or float(value) >= 0 else 30)


def _no_index(node: Expr, labels: Sequence[str], writer: Any) -> tuple[str, int]:
    raise NoFormError(f"index notation has no form for {type(node).__name__} nodes")


_NOTHING_TO_DIFFERENTIATE: dict[str, Callable[..., Any]] = {
    "vjp": _no_cotangents,
    "jvp": _no_tangent,
    "batched_vjp": _no_cotangents,
    "simplify": keep,
    "explain": _no_explanation,
}

kinds.register(
    Var,
    infer=_var_infer,
    lower=_var_lower,
    matrix=lambda node, form_of, style: (node.name, ATOM),
    index=_var_index,
    text=lambda node, text_of, wrap: (node.name, ATOM),
    rebuild=_same,
    key=_var_key,
    **_NOTHING_TO_DIFFERENTIATE,
)
kinds.register(
    Const,
    infer=_const_infer,
    lower=_const_lower,
    matrix=_const_matrix,
    index=_const_index,
    text=_const_text,
    rebuild=_same,
    key=_const_key,
    **_NOTHING_TO_DIFFERENTIATE,
)
kinds.register(
    Size,
    infer=_size_infer,
    lower=_size_lower,
    matrix=no_matrix_form,
    index=_no_index,
    text=_size_text,
    rebuild=_size_rebuild,
    key=_size_key,
    **_NOTHING_TO_DIFFERENTIATE,
)
kinds.register(
    Seed,
    infer=_seed_infer,
    lower=_seed_lower,
    matrix=no_matrix_form,
    index=_no_index,
    text=_seed_text,
    rebuild=_seed_rebuild,
    key=_seed_key,
    **_NOTHING_TO_DIFFERENTIATE,
)
