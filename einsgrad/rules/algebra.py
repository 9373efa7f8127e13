"""The algebra simplify applies: einsum fusion, delta elimination, elementwise folding.

Each function here is one node kind's ``simplify`` entry (or a helper of one); the walk
that applies them bottom-up is :func:`einsgrad.passes.simplify.simplify`.
"""

from __future__ import annotations

import math
import weakref
from collections import Counter
from collections.abc import Sequence
from typing import Any

from einsgrad.core.ir import Const, Einsum, Expr, Map, Shape
from einsgrad.core.labels import LETTERS
from einsgrad.core.spec import parse_spec, resolve
from einsgrad.graph import ops
from einsgrad.graph.keys import structural_key

__all__ = [
    "COMMUTATIVE",
    "MAX_FACTORS",
    "MAX_FUSED_LABELS",
    "MAX_FUSED_OPERANDS",
    "fuse_einsum",
    "keep",
    "simplify_map",
]

#: Elementwise primitives whose arguments simplify sorts into a canonical order.
COMMUTATIVE = {"add", "multiply", "maximum", "minimum", "equal"}

#: The most factors a product is flattened into. Simplify works bottom-up, so without a
#: bound every link of a chain (the tangent of an n-layer elementwise chain is a product
#: of n factors) would flatten and rebuild all the factors below it: n²/2 nodes. A longer
#: product is *sealed*: its consumers keep it whole, as one factor.
MAX_FACTORS = 8

#: The most operands, and distinct labels, of an einsum that consumers still inline. For
#: the same reason as :data:`MAX_FACTORS`: fusing a chain of n contractions link by link
#: would re-inline every earlier link. (A fused einsum has at most 52 labels anyway.)
MAX_FUSED_OPERANDS = 8
MAX_FUSED_LABELS = 26


def keep(node: Expr, shared: set[Expr]) -> Expr:
    """The ``simplify`` entry of a kind with nothing to rewrite: the node as it is."""
    return node


def simplify_map(node: Map, shared: set[Expr]) -> Expr:
    """The ``simplify`` entry of elementwise nodes: fold, cancel and sort arguments.

    Einsums in ``shared`` are used elsewhere too: folding a factor into an einsum does not
    inline them (their contraction would be computed twice).
    """
    return _rebuild_map(node, list(node.args), shared)


# --- einsum fusion -------------------------------------------------------------------------


def _static(node: Expr) -> bool:
    return node.shape is not None


def _shape(node: Expr) -> Shape:
    if node.shape is None:  # pragma: no cover - callers check _static first
        raise ValueError("a static shape is needed")
    return node.shape


def _constant_only(node: Einsum) -> bool:
    """True for an einsum of plain numbers only: a broadcast constant or a delta."""
    return all(isinstance(op, Const) and op.is_scalar for op in node.operands)


def _cheap_to_repeat(node: Einsum) -> bool:
    """True when inlining ``node`` into several consumers repeats no contraction.

    That is a constant (a broadcast number, a delta) or an einsum that sums over nothing
    (a transpose, an elementwise product, a broadcast): its cost is its output's size.
    """
    if _constant_only(node):
        return True
    output = set(node.spec.output)
    return all(label in output for term in node.spec.inputs for label in term)


def _too_big_to_inline(node: Einsum) -> bool:
    """True for an einsum with more operands or labels than consumers inline."""
    if len(node.operands) > MAX_FUSED_OPERANDS:
        return True
    labels = {label for term in node.spec.inputs for label in term}
    return len(labels | set(node.spec.output)) > MAX_FUSED_LABELS


def _scalar(node: Expr) -> float | None:
    if isinstance(node, Const) and node.is_scalar and not isinstance(node.value, complex):
        return float(node.value)
    return None


class _Labels:
    """Label sizes with a union-find, for identifying labels tied by a delta."""

    def __init__(self, sizes: Sequence[int]) -> None:
        self.sizes = list(sizes)
        self.parent = list(range(len(sizes)))

    def fresh(self, size: int) -> int:
        self.sizes.append(size)
        self.parent.append(len(self.parent))
        return len(self.parent) - 1

    def find(self, label: int) -> int:
        while self.parent[label] != label:
            self.parent[label] = self.parent[self.parent[label]]
            label = self.parent[label]
        return label

    def union(self, a: int, b: int) -> None:
        ra, rb = self.find(a), self.find(b)
        if ra != rb:
            self.parent[max(ra, rb)] = min(ra, rb)


def _like_shape(node: Einsum) -> Shape | None:
    if isinstance(node.like, tuple):
        return node.like
    if isinstance(node.like, Expr):
        return node.like.shape
    return None


def fuse_einsum(node: Einsum, shared: set[Expr]) -> Expr:
    """``node`` with einsum operands inlined, deltas collapsed and constants folded.

    Operands in ``shared`` are used elsewhere too and are inlined only if they hold no
    arrays. Returns ``node`` unchanged when a shape is unknown.
    """
    if not all(_static(op) for op in node.operands) or node.shape is None:
        return node
    if isinstance(node.like, Expr) and node.like.shape is None:
        return node
    outer = resolve(node.spec, [op.shape for op in node.operands], _like_shape(node))  # type: ignore[misc]
    labels = _Labels(outer.sizes)
    mentioned: set[int] = set(outer.output)
    terms: list[list[int]] = []
    operands: list[Expr] = []
    scale = 1.0
    pending: list[tuple[list[int], Expr]] = [
        (list(t), op) for t, op in zip(outer.inputs, node.operands, strict=True)
    ]
    while pending:
        term, operand = pending.pop(0)
        mentioned.update(term)
        value = _scalar(operand)
        if value is not None:
            scale *= value
            continue
        if (
            isinstance(operand, Einsum)
            and all(_static(op) for op in operand.operands)
            and (operand not in shared or _cheap_to_repeat(operand))
            and not _too_big_to_inline(operand)
        ):
            inner_shapes = [_shape(op) for op in operand.operands]
            inner = resolve(operand.spec, inner_shapes, _like_shape(operand))
            mapping: dict[int, int] = {}
            for inner_label, outer_label in zip(inner.output, term, strict=True):
                if inner_label in mapping:
                    labels.union(mapping[inner_label], outer_label)  # a delta ties them
                else:
                    mapping[inner_label] = outer_label
            for inner_label, size in enumerate(inner.sizes):
                if inner_label not in mapping:
                    mapping[inner_label] = labels.fresh(size)
            for inner_term, inner_operand in zip(inner.inputs, operand.operands, strict=True):
                pending.append(([mapping[label] for label in inner_term], inner_operand))
            continue
        terms.append(term)
        operands.append(operand)
    terms = [[labels.find(label) for label in term] for term in terms]
    output = [labels.find(label) for label in outer.output]
    carried = {label for term in terms for label in term}
    for root in {labels.find(label) for label in mentioned}:
        if root not in output and root not in carried:
            scale *= labels.sizes[root]  # a sum over an axis nothing varies along
    return _build_einsum(terms, operands, output, labels.sizes, scale, node)


def _hadamard_fold(
    terms: list[list[int]], operands: list[Expr]
) -> tuple[list[list[int]], list[Expr]]:
    """Multiply elementwise the non-einsum operands that carry the same index string."""
    groups: dict[tuple[int, ...], list[Expr]] = {}
    order: list[tuple[int, ...]] = []
    kept_terms: list[list[int]] = []
    kept: list[Expr] = []
    for term, operand in zip(terms, operands, strict=True):
        key = tuple(term)
        if len(set(key)) == len(key) and not isinstance(operand, Einsum):
            if key not in groups:
                groups[key] = []
                order.append(key)
            groups[key].append(operand)
        else:
            kept_terms.append(term)
            kept.append(operand)
    for key in order:
        kept_terms.append(list(key))
        kept.append(_product(groups[key]))
    return kept_terms, kept


def _is_product(node: Expr) -> bool:
    return isinstance(node, Map) and node.op.name == "multiply"


# How many factors each product flattens into (a sealed product counts as one factor of
# its consumers). Memoized: a product's count is its arguments' counts added.
_FACTOR_COUNTS: weakref.WeakKeyDictionary[Expr, int] = weakref.WeakKeyDictionary()


def _factor_count(product: Expr) -> int:
    """The number of factors ``product`` flattens into (more than MAX_FACTORS: sealed)."""
    stack: list[Expr] = [product]
    while stack:  # an explicit stack: product chains are as deep as the network
        top = stack[-1]
        if top in _FACTOR_COUNTS:
            stack.pop()
            continue
        args = top.children
        unknown = [arg for arg in args if _is_product(arg) and arg not in _FACTOR_COUNTS]
        if unknown:
            stack.extend(unknown)
            continue
        stack.pop()
        _FACTOR_COUNTS[top] = sum(_own_count(arg) for arg in args)
    return _FACTOR_COUNTS[product]


def _own_count(factor: Expr) -> int:
    """How many factors ``factor`` contributes to a product it is an argument of."""
    if not _is_product(factor):
        return 1
    count = _FACTOR_COUNTS[factor]
    return 1 if count > MAX_FACTORS else count


def _sealed(node: Expr) -> bool:
    return _is_product(node) and _factor_count(node) > MAX_FACTORS


def _factors(node: Expr) -> list[Expr]:
    """The factors of a product chain ``a * b * c`` (a non-product or a sealed product is
    its own factor)."""
    if not _is_product(node) or _sealed(node):
        return [node]
    found: list[Expr] = []
    stack = [node]
    while stack:
        item = stack.pop()
        if _is_product(item) and not _sealed(item):
            stack.extend(reversed(item.children))
        else:
            found.append(item)
    return found


def _product(factors: Sequence[Expr]) -> Expr:
    """The canonical product: number factors multiplied into one, first; the rest sorted.

    Sealed products (see :data:`MAX_FACTORS`) come before the other factors, so that
    simplifying the result again rebuilds each link of the chain as it is: a link with a
    sealed product below it flattens to that product and the factors after it.
    """
    flat = [f for factor in factors for f in _factors(factor)]
    number = 1.0
    sealed: list[Expr] = []
    others: list[Expr] = []
    for factor in flat:
        value = _scalar(factor)
        if value is not None:
            number *= value
        elif _sealed(factor):
            sealed.append(factor)
        else:
            others.append(factor)
    sealed.sort(key=structural_key)
    others.sort(key=structural_key)
    others = sealed + others
    if number == 0.0 or not others:
        chain: list[Expr] = [Const(number), *others]
    else:
        chain = others if number == 1.0 else [Const(number), *others]
    result = chain[0]
    for factor in chain[1:]:
        result = ops.multiply(result, factor)
    return result


def _build_einsum(
    terms: list[list[int]],
    operands: list[Expr],
    output: list[int],
    sizes: list[int],
    scale: float,
    original: Einsum,
) -> Expr:
    out_shape = tuple(sizes[label] for label in output)
    if scale == 0.0 or not operands:
        spec = "->" + _letters_for(output)
        return ops._einsum_node(parse_spec(spec, generalized=True), [Const(scale)], out_shape)
    terms, operands = _hadamard_fold(terms, operands)
    # Canonical operand order: by structure, then by a name-free view of the index string.
    in_output = {label: i for i, label in enumerate(output)}
    counts: dict[int, int] = {}
    for term in terms:
        for label in set(term):
            counts[label] = counts.get(label, 0) + 1

    def shape_of_term(term: list[int]) -> tuple[Any, ...]:
        return tuple((in_output.get(label, -1), term.count(label), counts[label]) for label in term)

    ranked = sorted(
        range(len(operands)), key=lambda k: (structural_key(operands[k]), shape_of_term(terms[k]))
    )
    terms = [terms[k] for k in ranked]
    operands = [operands[k] for k in ranked]
    if scale != 1.0:
        terms.append([])
        operands.append(Const(scale))
    # Canonical label names: output labels first, then in order of appearance.
    names: dict[int, str] = {}
    for label in [*output, *(label for term in terms for label in term)]:
        if label not in names:
            if len(names) >= len(LETTERS):
                return original  # more labels than einsum letters: leave it unfused
            names[label] = LETTERS[len(names)]
    text = ",".join("".join(names[label] for label in term) for term in terms)
    text += "->" + "".join(names[label] for label in output)
    carried = {label for term in terms for label in term}
    plain = len(set(output)) == len(output) and all(label in carried for label in output)
    if plain and len(operands) == 1 and terms[0] == output:
        return operands[0]  # an identity contraction
    return ops._einsum_node(
        parse_spec(text, generalized=not plain), operands, None if plain else out_shape
    )


def _letters_for(labels: list[int]) -> str:
    names: dict[int, str] = {}
    for label in labels:
        names.setdefault(label, LETTERS[len(names)])
    return "".join(names[label] for label in labels)


# --- elementwise rewrites ------------------------------------------------------------------


def _filled(node: Expr) -> float | None:
    """The value of a broadcast constant (an einsum of plain numbers, no diagonal)."""
    return ops.filled_value(node)


def _scaled(node: Expr, factor: float, shared: set[Expr]) -> Expr:
    """``factor · node``, folded into an einsum when ``node`` is one."""
    if factor == 1.0:
        return node
    if (
        isinstance(node, Einsum)
        and node.shape is not None
        and all(_static(o) for o in node.operands)
        and not _too_big_to_inline(node)
    ):
        spec = node.spec
        text = ",".join([*("".join(t) for t in spec.inputs), ""]) + "->" + "".join(spec.output)
        scaled = ops._einsum_node(
            parse_spec(text, generalized=spec.generalized),
            [*node.operands, Const(factor)],
            node.like,
        )
        if isinstance(scaled, Einsum):
            return fuse_einsum(scaled, shared)
    return _product([Const(factor), node])


def _factored(node: Einsum) -> tuple[float, list[tuple[str, Expr]]]:
    """``node`` as a plain-number factor and its other (term, operand) pairs."""
    factor = 1.0
    rest: list[tuple[str, Expr]] = []
    for term, operand in zip(node.spec.inputs, node.operands, strict=True):
        value = _scalar(operand)
        if value is not None and not term:
            factor *= value
        else:
            rest.append(("".join(term), operand))
    return factor, rest


def _canonical_text(pairs: Sequence[tuple[str, Expr]], output: str) -> str:
    """The spec of ``pairs -> output`` with labels renamed by first appearance."""
    names: dict[str, str] = {}
    for label in output + "".join(term for term, _ in pairs):
        if label not in names and label != ".":
            names[label] = LETTERS[len(names) % len(LETTERS)]
    rename = str.maketrans(names)
    return ",".join(term.translate(rename) for term, _ in pairs) + "->" + output.translate(rename)


def _merge_site(a: Expr, b: Expr) -> tuple[int, list[tuple[str, Expr]], Expr] | None:
    """Where ``c·einsum(…, u, …)`` and ``d·einsum(…, v, …)`` differ, if in one operand only.

    Returns the position ``k`` of ``u`` among ``a``'s operands other than plain numbers
    (``_factored``), those (term, operand) pairs, and ``v``. Exact when the two einsums
    agree in everything but that operand (up to operand order and label names); ``u`` and
    ``v`` must then have the same shape.
    """
    if not (isinstance(a, Einsum) and isinstance(b, Einsum)) or a.like != b.like:
        return None
    if a.shape is None or a.shape != b.shape or "..." in a.spec.text + b.spec.text:
        return None
    _, rest_a = _factored(a)
    _, rest_b = _factored(b)
    if len(rest_a) != len(rest_b) or not rest_a:
        return None
    # Only an operand ``a`` has more often than ``b`` can be ``u`` (any, if none is).
    only_a = Counter(op for _, op in rest_a) - Counter(op for _, op in rest_b)
    if sum(only_a.values()) > 1:
        return None
    only_b = Counter(op for _, op in rest_b) - Counter(op for _, op in rest_a)
    out_a, out_b = "".join(a.spec.output), "".join(b.spec.output)
    for k in range(len(rest_a)):
        if only_a and rest_a[k][1] not in only_a:
            continue
        for m in range(len(rest_b)):
            if only_b and rest_b[m][1] not in only_b:
                continue
            others_a = [op for i, (_, op) in enumerate(rest_a) if i != k]
            order = _match(others_a, rest_b, skip=m)
            if order is None:
                continue
            aligned_b = [rest_b[i] for i in order]
            aligned_b.insert(k, rest_b[m])
            if _canonical_text(rest_a, out_a) != _canonical_text(aligned_b, out_b):
                continue
            u, v = rest_a[k][1], rest_b[m][1]
            if u.shape is None or u.shape != v.shape:
                continue
            return k, rest_a, v
    return None


def _match(left: Sequence[Expr], right: Sequence[tuple[str, Expr]], skip: int) -> list[int] | None:
    """Indices into ``right`` (never ``skip``) holding the operands of ``left``, in order."""
    used: set[int] = {skip}
    order: list[int] = []
    for operand in left:
        found = next(
            (i for i, (_, other) in enumerate(right) if other is operand and i not in used), None
        )
        if found is None:
            return None
        used.add(found)
        order.append(found)
    return order


def _broadcasts_into(x: Expr, y: Expr) -> bool:
    """True when ``x`` broadcast against ``y`` leaves ``y``'s shape unchanged."""
    return ops._covers(y, x)


def _add(a: Expr, b: Expr, shared: set[Expr]) -> Expr:
    """``a + b`` simplified: a zero dropped, common einsum factors collected, else sorted.

    ``c·einsum(…, u, …) + d·einsum(…, v, …)`` becomes ``einsum(…, c·u + d·v, …)``, and
    ``c·u + d·v`` is collected in turn. That nesting is a loop, not recursion: the einsums
    of a chain of shared contractions nest as deep as the chain.
    """
    enclosing: list[tuple[Einsum, int, list[tuple[str, Expr]]]] = []
    while True:
        zero = _without_zero(a, b)
        if zero is not None:
            result = zero
            break
        site = _merge_site(a, b)
        if site is None:
            first, second = sorted((a, b), key=structural_key)
            result = ops.add(first, second)
            break
        k, rest_a, v = site
        assert isinstance(a, Einsum) and isinstance(b, Einsum)  # _merge_site checks it
        enclosing.append((a, k, rest_a))
        a, b = _scaled(rest_a[k][1], _factored(a)[0], shared), _scaled(v, _factored(b)[0], shared)
    for outer, k, rest in reversed(enclosing):
        operands = [op for _, op in rest]
        operands[k] = result
        text = ",".join(term for term, _ in rest) + "->" + "".join(outer.spec.output)
        spec = parse_spec(text, generalized=outer.spec.generalized)
        result = ops._einsum_node(spec, operands, outer.like)
        if isinstance(result, Einsum):
            result = fuse_einsum(result, shared)
    return result


def _without_zero(a: Expr, b: Expr) -> Expr | None:
    """The other term of ``a + b`` when one is a broadcast zero that widens nothing."""
    for x, y in ((a, b), (b, a)):
        if _filled(x) == 0.0 and _broadcasts_into(x, y):
            return y
    return None


def _multiply(a: Expr, b: Expr, shared: set[Expr]) -> Expr:
    for x, y in ((a, b), (b, a)):
        value = _filled(x)
        if value is not None and _broadcasts_into(x, y):
            return _scaled(y, value, shared)
    return _product([a, b])


def _negative(x: Expr, shared: set[Expr]) -> Expr:
    if isinstance(x, Map) and x.op.name == "negative":
        return x.args[0]
    if isinstance(x, Einsum) and x.shape is not None:
        return _scaled(x, -1.0, shared)
    return ops.negative(x)


def _rebuild_map(node: Map, args: list[Expr], shared: set[Expr]) -> Expr:
    name = node.op.name
    if name == "add":
        return _add(args[0], args[1], shared)
    if name == "subtract":
        return _add(args[0], _negative(args[1], shared), shared)
    if name == "multiply":
        return _multiply(args[0], args[1], shared)
    if name == "negative":
        return _negative(args[0], shared)
    if name == "divide":
        value = _scalar(args[1])
        # x / c = x · (1/c) only while 1/c is finite: for c = 1e-310, 1/c is inf and
        # 0 · inf is nan where 0 / c is 0.
        if value is not None and value != 0 and math.isfinite(1.0 / value):
            return _multiply(args[0], Const(1.0 / value), shared)
    if name in COMMUTATIVE:
        args = sorted(args, key=structural_key)
    return ops._map(name, *args)
