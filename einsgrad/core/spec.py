"""Einsum specification strings: parsing, validation and resolution against shapes.

Two dialects share one parser:

* **numpy einsum** (``generalized=False``): what ``numpy.einsum`` accepts. Output labels
  must occur in the inputs and may not repeat; the output may be implicit. An output
  ``...`` that no input has stands for no axes (``'ij->...ij'``). One deliberate
  extension: an explicit output without ``...`` sums the axes under the inputs' ``...``
  (``'...->'`` is the sum of all axes, ``'i...->i'`` of all but the first), as JAX,
  PyTorch and opt_einsum do, where numpy refuses any such axis. einsgrad's own sums over
  an array of unknown rank are such einsums.
* **generalized einsum** (``generalized=True``): what the rule engine produces. The output
  may repeat a label (the result lives on a diagonal, zero elsewhere) and may hold labels
  that no input has (the result is broadcast along them). The sizes of such labels, and
  of the output ``...``, come from a *shape reference*: the array the output has the
  shape of. The backward einsum of operand ``k`` is always of this kind, with operand
  ``k`` as its shape reference. This dialect is closed under the rule: the backward of a
  generalized einsum is again a generalized einsum.

:func:`resolve` turns a spec plus concrete shapes into a :class:`Resolved` contraction
over integer labels: ``...`` expanded, numpy's size-1 broadcasting made explicit by
giving each broadcast size-1 axis a label of its own (summed away, or broadcast in the
output), and the output's sizes fixed. Lowering (:mod:`einsgrad.backends`) only ever sees
resolved contractions.

The tokenizer is written here rather than taken from ``opt_einsum.parser`` because
opt_einsum raises bare ``ValueError``s without the position of the bad character and has
no generalized dialect; opt_einsum's implicit-output rule is reused.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from opt_einsum.parser import find_output_str

from einsgrad.core.errors import ShapeError, SpecError, caret_message

__all__ = ["ELLIPSIS", "MAX_SPEC_LENGTH", "Resolved", "Spec", "parse_spec", "resolve"]

ELLIPSIS = "..."
#: The longest einsum spec read, in characters. numpy takes at most 63 operands of at most
#: 64 axes, so no spec numpy accepts needs half of it (but for runs of spaces); the check
#: comes first, so an overlong string is refused before any other work.
MAX_SPEC_LENGTH = 10_000
Term = tuple[str, ...]
Shape = tuple[int, ...]


@dataclass(frozen=True)
class Spec:
    """A parsed einsum specification.

    ``inputs`` and ``output`` are terms: tuples of single-letter labels and ``"..."``.
    ``text`` is the normalized explicit form (``"ij,jk->ik"``), which is also what
    ``str()`` gives.
    """

    inputs: tuple[Term, ...]
    output: Term
    generalized: bool

    @property
    def text(self) -> str:
        return ",".join("".join(t) for t in self.inputs) + "->" + "".join(self.output)

    def __str__(self) -> str:
        return self.text

    @property
    def input_labels(self) -> frozenset[str]:
        return frozenset(label for term in self.inputs for label in term if label != ELLIPSIS)


def _tokenize(source: str, start: int, end: int) -> tuple[Term, list[int]]:
    """Split ``source[start:end]`` into labels and ``...``; return them with their columns."""
    tokens: list[str] = []
    columns: list[int] = []
    i = start
    while i < end:
        char = source[i]
        if char == " ":
            i += 1
            continue
        if char == ".":
            if source[i : i + 3] != ELLIPSIS or i + 3 > end:
                raise SpecError(
                    caret_message(f"einsum spec {source!r}: a '.' must be part of '...'", source, i)
                )
            if ELLIPSIS in tokens:
                raise SpecError(
                    caret_message(
                        f"einsum spec {source!r}: '...' may appear at most once per term",
                        source,
                        i,
                        width=3,
                    )
                )
            tokens.append(ELLIPSIS)
            columns.append(i)
            i += 3
            continue
        if not (char.isascii() and char.isalpha()):
            raise SpecError(
                caret_message(
                    f"einsum spec {source!r}: {char!r} is not a valid label "
                    "(labels are the letters a-z and A-Z)",
                    source,
                    i,
                )
            )
        tokens.append(char)
        columns.append(i)
        i += 1
    return tuple(tokens), columns


def parse_spec(source: str, *, generalized: bool = False) -> Spec:
    """Parse and validate an einsum specification string.

    Raises :class:`SpecError` with a caret under the offending character for anything
    ``numpy.einsum`` would reject (or, with ``generalized=True``, anything the
    generalized dialect rejects).
    """
    # Checked before the cache, which would fail on an unhashable list or array first.
    if not isinstance(source, str):
        raise SpecError(f"an einsum spec must be a string, got {type(source).__name__}")
    if len(source) > MAX_SPEC_LENGTH:
        raise SpecError(
            f"einsum spec {source[:20]!r}... is {len(source):,} characters long; "
            f"the limit is {MAX_SPEC_LENGTH:,}"
        )
    return _parse_spec(source, generalized)


@functools.lru_cache(maxsize=4096)
def _parse_spec(source: str, generalized: bool) -> Spec:
    """Parse ``source``; the cached core of :func:`parse_spec`.

    The checks run in this order, which fixes which error a spec with several gets: the
    arrow, then the input terms from left to right, then the output.
    """
    arrow = _find_arrow(source)
    lhs_end = len(source) if arrow < 0 else arrow
    inputs = _input_terms(source, lhs_end)
    if arrow < 0:
        output = _implicit_output(inputs)
    else:
        comma = source.find(",", arrow + 2)
        if comma >= 0:
            raise SpecError(
                caret_message(f"einsum spec {source!r}: the output is a single term", source, comma)
            )
        output, columns = _tokenize(source, arrow + 2, len(source))
        if not generalized:
            _check_numpy_output(source, inputs, output, columns)
    return Spec(inputs=inputs, output=output, generalized=generalized)


def _find_arrow(source: str) -> int:
    """The column of the one ``->``, or -1 when the output is implicit.

    Decides that ``->`` occurs at most once and that no ``-`` or ``>`` stands outside
    it, so the caret points at the stray character rather than at a label after it.
    """
    arrow = source.find("->")
    if arrow >= 0 and "->" in source[arrow + 2 :]:
        second = source.index("->", arrow + 2)
        raise SpecError(
            caret_message(
                f"einsum spec {source!r}: '->' may appear only once", source, second, width=2
            )
        )
    for i, char in enumerate(source):
        if char in "->" and not (arrow >= 0 and arrow <= i <= arrow + 1):
            raise SpecError(
                caret_message(
                    f"einsum spec {source!r}: stray {char!r} (the arrow is '->')", source, i
                )
            )
    return arrow


def _input_terms(source: str, lhs_end: int) -> tuple[Term, ...]:
    """The comma-separated input terms of ``source[:lhs_end]``, each tokenized."""
    inputs: list[Term] = []
    start = 0
    while True:
        comma = source.find(",", start, lhs_end)
        stop = lhs_end if comma < 0 else comma
        inputs.append(_tokenize(source, start, stop)[0])
        if comma < 0:
            break
        start = comma + 1
    return tuple(inputs)


def _implicit_output(inputs: tuple[Term, ...]) -> Term:
    """The output numpy gives a spec without ``->``.

    That is ``...`` when an input has one, then the labels occurring exactly once, in
    sorted order, capitals first (opt_einsum's rule, which is numpy's).
    """
    implicit = find_output_str("".join(t for term in inputs for t in term if t != ELLIPSIS))
    has_ellipsis = any(ELLIPSIS in t for t in inputs)
    return ((ELLIPSIS,) if has_ellipsis else ()) + tuple(implicit)


def _check_numpy_output(
    source: str, inputs: tuple[Term, ...], output: Term, columns: list[int]
) -> None:
    """Reject an explicit output numpy einsum cannot compute (the generalized dialect can).

    Every output label must occur in some input, and no label may repeat; the caret goes
    under the first output token that breaks a rule. The output's ``...`` needs no input
    ``...``: numpy reads ``'ij->...ij'`` as a ``...`` of no axes. Whether an input's
    ``...`` may be left out of the output depends on the shapes (see :func:`resolve`).
    """
    known = {label for term in inputs for label in term}
    seen: set[str] = set()
    for token, column in zip(output, columns, strict=True):
        if token == ELLIPSIS:
            continue
        if token not in known:
            raise SpecError(
                caret_message(
                    f"einsum spec {source!r}: output label {token!r} does not occur in any input",
                    source,
                    column,
                )
            )
        if token in seen:
            raise SpecError(
                caret_message(
                    f"einsum spec {source!r}: output label {token!r} is repeated "
                    "(numpy einsum cannot write a diagonal)",
                    source,
                    column,
                )
            )
        seen.add(token)


@dataclass(frozen=True)
class Resolved:
    """An einsum over integer labels with every size known.

    ``inputs[k]`` labels operand ``k``'s axes, ``output`` labels the result's axes, and
    ``sizes[label]`` is the size of ``label``. Labels absent from ``output`` are summed;
    output labels absent from every input are broadcast; an output label that repeats is
    a diagonal of the result (zero off it).
    """

    inputs: tuple[tuple[int, ...], ...]
    output: tuple[int, ...]
    sizes: tuple[int, ...]

    @property
    def shape(self) -> Shape:
        return tuple(self.sizes[label] for label in self.output)

    @property
    def core(self) -> tuple[int, ...]:
        """The output's distinct labels that some input has: what is actually contracted."""
        present = {label for term in self.inputs for label in term}
        return tuple(dict.fromkeys(label for label in self.output if label in present))

    @property
    def is_plain(self) -> bool:
        """True when the contraction alone gives the output (no broadcast, no diagonal)."""
        return self.core == self.output


def _describe(names: Sequence[str] | None, index: int) -> str:
    if names is not None and index < len(names):
        return f"operand {index} ({names[index]})"
    return f"operand {index}"


def resolve(
    spec: Spec,
    shapes: Sequence[Shape],
    like: Shape | None = None,
    names: Sequence[str] | Callable[[], Sequence[str]] | None = None,
) -> Resolved:
    """Resolve ``spec`` against operand ``shapes`` (and the output shape ``like``).

    Raises :class:`ShapeError` naming the operand, the label and both sizes when the
    shapes do not fit. ``names`` (or a function giving them, called only on an error)
    are only used for error messages.
    """
    try:
        return _resolve(
            spec, tuple(tuple(s) for s in shapes), None if like is None else tuple(like)
        )
    except _Mismatch as mismatch:
        shown = names() if callable(names) else names
        raise ShapeError(mismatch.render(spec, shown)) from None


class _Mismatch(Exception):
    def __init__(self, template: str, *operands: int) -> None:
        self.template = template
        self.operands = operands

    def render(self, spec: Spec, names: Sequence[str] | None) -> str:
        described = [_describe(names, k) for k in self.operands]
        return f"einsum {spec.text!r}: " + self.template.format(*described)


@functools.lru_cache(maxsize=8192)
def _resolve(spec: Spec, shapes: tuple[Shape, ...], like: Shape | None) -> Resolved:
    """Resolve one spec against concrete shapes; the cached core of :func:`resolve`.

    The steps run in this order, and the order is part of the behaviour: every operand's
    rank is checked before any size, and an operand's own repeated labels before its
    sizes are compared with other operands'. Integer labels are handed out inputs
    first, operand by operand, then the output.
    """
    ellipsis_ranks = _ellipsis_ranks(spec, shapes)
    broadcast_rank = max(ellipsis_ranks, default=0)
    keyed = [
        _expand(term, rank, broadcast_rank)
        for term, rank in zip(spec.inputs, ellipsis_ranks, strict=True)
    ]
    size_of = _label_sizes(keyed, shapes)
    labels = _Labels()
    inputs = _label_inputs(keyed, shapes, size_of, labels)
    if like is None:
        output = _label_output(spec.output, broadcast_rank, size_of, labels)
    else:
        out_keys = _output_keys(spec.output, like, broadcast_rank)
        output = _label_output_like(out_keys, like, size_of, labels)
    return Resolved(inputs, output, tuple(labels.sizes))


def _ellipsis_ranks(spec: Spec, shapes: tuple[Shape, ...]) -> list[int]:
    """How many axes each operand's ``...`` stands for (0 for a term without one).

    Decides that there is one shape per input term, and that each shape's rank fits its
    term: exactly the number of labels, or at least that many when the term has a
    ``...``, which takes up the rest. All ranks are checked before any size, so a rank
    error is reported as such rather than as a confusing size clash.
    """
    if len(shapes) != len(spec.inputs):
        raise _Mismatch(
            f"the spec has {len(spec.inputs)} input terms but {len(shapes)} operands were given"
        )
    ranks: list[int] = []
    for k, (term, shape) in enumerate(zip(spec.inputs, shapes, strict=True)):
        explicit = len(term) - term.count(ELLIPSIS)
        if ELLIPSIS in term:
            if len(shape) < explicit:
                raise _Mismatch(
                    f"{{0}} has shape {shape} (rank {len(shape)}) but its term "
                    f"{''.join(term)!r} needs at least {explicit} axes",
                    k,
                )
            ranks.append(len(shape) - explicit)
        else:
            if len(shape) != explicit:
                raise _Mismatch(
                    f"{{0}} has shape {shape} (rank {len(shape)}) but its term "
                    f"{''.join(term)!r} has {explicit} labels",
                    k,
                )
            ranks.append(0)
    return ranks


def _expand(term: Term, rank: int, broadcast_rank: int) -> list[str]:
    """The term's keys, one per axis, with its ``...`` spelled out as ``rank`` keys.

    The ``...`` axes of all operands are broadcast together aligned on the right, as
    numpy does, so axis ``p`` of the common ``broadcast_rank`` axes gets the key ``…p``
    and an operand whose ``...`` covers fewer axes takes the last ``rank`` of them. The
    ``…`` cannot clash with a label, which is a single ASCII letter.
    """
    if ELLIPSIS not in term:
        return list(term)
    out: list[str] = []
    for t in term:
        if t == ELLIPSIS:
            out.extend(f"…{p}" for p in range(broadcast_rank - rank, broadcast_rank))
        else:
            out.append(t)
    return out


def _label_sizes(keyed: list[list[str]], shapes: tuple[Shape, ...]) -> dict[str, int]:
    """The size of each key over all operands, with numpy's size-1 broadcasting.

    All axes of a key must agree in size, or be 1; the key's size is then the larger
    one. Each operand's own repeats are checked first: a clash there is a bad diagonal
    of that operand, not two operands disagreeing (which would name it twice). A clash
    between operands names the operand where it shows and the first operand that gave
    the key its current size.
    """
    size_of: dict[str, int] = {}
    first_seen: dict[str, tuple[int, int]] = {}
    for k, (keys, shape) in enumerate(zip(keyed, shapes, strict=True)):
        if len(set(keys)) != len(keys):
            _check_repeats(keys, shape, k)
        for key, size in zip(keys, shape, strict=True):
            if key in size_of and size_of[key] != size and 1 not in (size, size_of[key]):
                other, other_size = first_seen[key]
                raise _Mismatch(_size_clash(key, size, other_size), k, other)
            if key not in size_of or size_of[key] == 1:
                size_of[key] = size
                first_seen[key] = (k, size)
    return size_of


class _Labels:
    """Hands out the integer labels of a :class:`Resolved` and records their sizes.

    A key keeps one label however often it is asked for; :meth:`fresh` makes a label no
    key has, for an axis that must not be identified with any other.
    """

    __slots__ = ("ids", "sizes")

    def __init__(self) -> None:
        self.ids: dict[str, int] = {}
        self.sizes: list[int] = []

    def label(self, key: str, size: int) -> int:
        """The label of ``key``, made with ``size`` the first time it is asked for."""
        ids = self.ids
        if key not in ids:
            ids[key] = len(self.sizes)
            self.sizes.append(size)
        return ids[key]

    def fresh(self, size: int) -> int:
        """A new label of ``size`` that no key has."""
        self.sizes.append(size)
        return len(self.sizes) - 1


def _label_inputs(
    keyed: list[list[str]], shapes: tuple[Shape, ...], size_of: dict[str, int], labels: _Labels
) -> tuple[tuple[int, ...], ...]:
    """The integer labels of every operand's axes, operand by operand.

    An axis gets its key's label, except a size-1 axis broadcast against a larger one:
    that gets a label of its own, summed away (a squeeze), so the shared label can
    stand for the larger size everywhere.
    """
    label, fresh = labels.label, labels.fresh
    inputs: list[tuple[int, ...]] = []
    for keys, shape in zip(keyed, shapes, strict=True):
        term = [
            fresh(1) if size == 1 and size_of[key] != 1 else label(key, size_of[key])
            for key, size in zip(keys, shape, strict=True)
        ]
        inputs.append(tuple(term))
    return tuple(inputs)


def _label_output(
    output: Term, broadcast_rank: int, size_of: dict[str, int], labels: _Labels
) -> tuple[int, ...]:
    """The output's labels when no shape reference is given: sizes come from the inputs.

    The output's ``...`` stands for all ``broadcast_rank`` broadcast axes of the inputs.
    Every output label occurs in some input here (the numpy dialect checks so when
    parsing; a generalized spec needs ``like`` otherwise).
    """
    out: list[int] = []
    for t in output:
        if t == ELLIPSIS:
            out.extend(labels.label(f"…{p}", size_of[f"…{p}"]) for p in range(broadcast_rank))
        else:
            out.append(labels.label(t, size_of[t]))
    return tuple(out)


def _output_keys(output: Term, like: Shape, broadcast_rank: int) -> list[str | None]:
    """The output's keys, one per axis of the shape reference ``like``.

    Decides that ``like``'s rank fits the output term, as an operand's rank fits its
    term, and spells out the output's ``...`` as the last of the inputs' broadcast
    axes, aligned on the right. ``None`` keys an output ``...`` axis beyond all the
    inputs' ones: the result is broadcast along it.
    """
    explicit = len(output) - output.count(ELLIPSIS)
    if ELLIPSIS in output:
        out_rank = len(like) - explicit
        if out_rank < 0:
            raise _Mismatch(
                f"the result shape {like} has rank {len(like)} but the output term "
                f"{''.join(output)!r} needs at least {explicit} axes"
            )
    else:
        out_rank = 0
        if len(like) != explicit:
            raise _Mismatch(
                f"the result shape {like} has rank {len(like)} but the output term "
                f"{''.join(output)!r} has {explicit} labels"
            )
    out_keys: list[str | None] = []
    for t in output:
        if t == ELLIPSIS:
            for q in range(out_rank):
                p = broadcast_rank - out_rank + q
                out_keys.append(f"…{p}" if p >= 0 else None)
        else:
            out_keys.append(t)
    return out_keys


def _label_output_like(
    out_keys: list[str | None], like: Shape, size_of: dict[str, int], labels: _Labels
) -> tuple[int, ...]:
    """The output's labels against the shape reference ``like``, which fixes the sizes.

    A key kept at its inputs' size, or one no input has (broadcast), gets its label; a
    repeated key (a diagonal) must be on axes of one size. Between a size-1 axis and a
    larger one, on either side, the result gets a new label shared by the key's repeats:
    a size-1 result axis sums the input label, a larger one broadcasts a size-1 input.
    Any other size difference is an error.
    """
    output: list[int] = []
    diagonal_sizes: dict[str, int] = {}
    resized: dict[str, int] = {}
    for out_key, size in zip(out_keys, like, strict=True):
        if out_key is None:
            output.append(labels.fresh(size))
            continue
        if diagonal_sizes.setdefault(out_key, size) != size:
            raise _Mismatch(
                f"the result repeats label {_show(out_key)} on axes of different sizes "
                f"{sorted({diagonal_sizes[out_key], size})}"
            )
        in_size = size_of.get(out_key)
        if in_size is None or in_size == size:
            output.append(labels.label(out_key, size))
        elif in_size == 1 or size == 1:
            if out_key not in resized:
                resized[out_key] = labels.fresh(size)
            output.append(resized[out_key])
        else:
            raise _Mismatch(
                f"the result shape {like} gives label {_show(out_key)} size {size}, "
                f"but the operands give it size {in_size}"
            )
    return tuple(output)


def _check_repeats(keys: Sequence[str], shape: Shape, k: int) -> None:
    """A label operand ``k`` repeats must be on axes of one size (numpy does not broadcast)."""
    first_axis: dict[str, int] = {}
    for axis, key in enumerate(keys):
        first = first_axis.setdefault(key, axis)
        if shape[first] != shape[axis]:
            raise _Mismatch(
                f"{{0}} repeats label {_show(key)} on axes of different sizes: "
                f"{shape[first]} (axis {first}) and {shape[axis]} (axis {axis}) "
                "(a diagonal needs equal sizes)",
                k,
            )


def _show(key: str) -> str:
    if key.startswith("…"):
        return f"'...' axis {key[1:]}"
    return repr(key)


def _size_clash(key: str, size: int, other_size: int) -> str:
    return (
        f"label {_show(key)} has size {size} in {{0}} but size {other_size} in {{1}} "
        "(sizes must agree, or one of them be 1)"
    )
