"""Hypothesis strategies of the fuzz layer: every kind of input a user hands einsgrad.

Each family comes valid (built to be accepted, with an oracle for its result) and
near-valid or garbage (mutated by inserting, deleting and replacing characters, or
stretched to many thousands of characters), so the properties see both what must work
and what must be refused cleanly:

* einsum specs with operand shapes (:func:`einsum_cases`, :func:`spec_texts`,
  :func:`long_specs`): labels in both cases, repeated labels, ``...``, ``->``, spaces,
  scalar operands, sizes 0 and 1, size-1 and rank broadcasting; mutations add bad
  characters, unicode, stray dots and arrows;
* expression strings of ``parse_expr``'s grammar (:func:`expression_cases`), as trees
  (``fuzz/expressions.py``) whose numpy value is known, and mutated (:func:`mutated`);
* index notation (:func:`index_cases`, ``fuzz/index_notation.py``);
* formulas for ``check`` (:func:`check_cases`): numpy or paper notation, upstream-gradient
  aliases, a ``dL/dX =`` label;
* shape objects for ``var`` and array dtypes (:func:`shape_objects`, :data:`DTYPES`),
  with huge declared sizes (:func:`huge_shapes`);
* command-line argument lists (:func:`cli_argvs`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from hypothesis import strategies as st
from hypothesis.strategies import DrawFn, SearchStrategy, composite

from fuzz.expressions import (
    BINARY_CALLS,
    INFIX,
    REDUCTIONS,
    UNARY,
    Node,
    reference,
    render,
)
from fuzz.index_notation import INDEX_FUNCTIONS, Equation, Factor, Term, mentioned
from fuzz.index_notation import render as render_equation

Shape = tuple[int, ...]

#: Sizes of axes: mostly 2 and 3, sometimes 1 (broadcast) and 0 (empty).
SIZES = st.sampled_from([2, 3, 2, 3, 1, 1, 0])
LABELS = "abcdeAB"
#: Characters mutations insert: einsum syntax, near-syntax, unicode, controls, quotes.
SPEC_NOISE = "ij aZ.,->–…αéß0_[](){}'\"\\\t\n\x00 "
EXPR_NOISE = "XWbx(),.+-*/@=:[]{}'\"\\#0123456789eE_ TαΣ·ᵀ⊙−∂\t\n!<>&|~^%$`;"


# --- einsum specs ---------------------------------------------------------------------------


@dataclass(frozen=True)
class EinsumCase:
    spec: str
    shapes: tuple[Shape, ...]


def _numpy_accepts(spec: str, shapes: tuple[Shape, ...]) -> bool:
    try:
        np.einsum(spec, *(np.zeros(s) for s in shapes))
    except Exception:
        return False
    return True


@composite
def _einsum_term(
    draw: DrawFn, sizes: dict[str, int], batch: list[int], use_ellipsis: bool
) -> tuple[str, Shape]:
    """One operand's term and shape: labels (maybe repeated), maybe '...', size-1 axes."""
    count = draw(st.sampled_from([2, 1, 3, 0, 2]))
    labels = draw(st.lists(st.sampled_from(LABELS), min_size=count, max_size=count))
    # A repeated label is a diagonal: its axes share one size (maybe a broadcast 1).
    local = {label: draw(st.sampled_from([sizes[label]] * 3 + [1])) for label in labels}
    term, shape = "".join(labels), [local[label] for label in labels]
    if use_ellipsis and draw(st.booleans()):
        rank = draw(st.integers(0, len(batch)))
        dims = [draw(st.sampled_from([n, n, 1])) for n in batch[len(batch) - rank :]]
        at = draw(st.integers(0, len(labels)))
        term = term[:at] + "..." + term[at:]
        shape = shape[:at] + dims + shape[at:]
    return term, tuple(shape)


def _spaced(draw: DrawFn, spec: str) -> str:
    """``spec`` with a space inserted between some tokens (numpy ignores them)."""
    if draw(st.integers(0, 4)) != 0:
        return spec
    tokens = spec.replace("...", "\x01").replace("->", "\x02")
    pieces = [t + (" " if draw(st.integers(0, 2)) == 0 else "") for t in tokens]
    return "".join(pieces).replace("\x01", "...").replace("\x02", "->")


@composite
def einsum_candidates(draw: DrawFn, max_operands: int = 4) -> EinsumCase:
    sizes = {label: draw(SIZES) for label in LABELS}
    batch = draw(st.lists(SIZES, max_size=2))
    use_ellipsis = draw(st.booleans())
    pairs = [
        draw(_einsum_term(sizes, batch, use_ellipsis))
        for _ in range(draw(st.integers(1, max_operands)))
    ]
    terms = [term for term, _ in pairs]
    spec = ",".join(terms)
    if draw(st.sampled_from([True, True, False])):
        present = sorted({c for term in terms for c in term if c != "."})
        output = "".join(draw(st.permutations(present))[: draw(st.integers(0, len(present)))])
        if any("..." in term for term in terms) and draw(st.integers(0, 3)):
            at = draw(st.integers(0, len(output)))
            output = output[:at] + "..." + output[at:]
        spec += "->" + output
    return EinsumCase(_spaced(draw, spec), tuple(shape for _, shape in pairs))


def einsum_cases(max_operands: int = 4) -> SearchStrategy[EinsumCase]:
    """Einsum specs with operand shapes that numpy.einsum accepts."""
    return einsum_candidates(max_operands).filter(lambda c: _numpy_accepts(c.spec, c.shapes))


@composite
def mutated(draw: DrawFn, source: SearchStrategy[str], noise: str) -> str:
    """A string from ``source`` with 1-3 characters inserted, deleted, replaced or doubled."""
    text = draw(source)
    for _ in range(draw(st.integers(1, 3))):
        at = draw(st.integers(0, len(text)))
        how = draw(st.sampled_from(["insert", "delete", "replace", "double"]))
        char = draw(st.sampled_from(noise))
        if how == "insert" or not text:
            text = text[:at] + char + text[at:]
        elif how == "delete":
            text = text[: max(at - 1, 0)] + text[at:]
        elif how == "replace":
            text = text[: max(at - 1, 0)] + char + text[at:]
        else:
            end = draw(st.integers(at, len(text)))
            text = text[:end] + text[at:end] + text[end:]
    return text


@composite
def _random_shapes(draw: DrawFn, spec: str) -> tuple[Shape, ...]:
    count = min(max(spec.count(",") + 1, 1), 5)
    return tuple(tuple(draw(st.lists(SIZES, max_size=4))) for _ in range(count))


@composite
def spec_texts(draw: DrawFn) -> EinsumCase:
    """Near-valid and garbage specs with shapes: mutated valid cases, or random text."""
    if draw(st.integers(0, 3)):
        case = draw(einsum_candidates())
        spec = draw(mutated(st.just(case.spec), SPEC_NOISE))
        same_count = spec.count(",") == case.spec.count(",")
        shapes = case.shapes if same_count and draw(st.booleans()) else None
    else:
        spec = draw(st.text(alphabet=SPEC_NOISE + LABELS, max_size=16))
        shapes = None
    return EinsumCase(spec, shapes or draw(_random_shapes(spec)))


#: Lengths of long inputs: around the 10,000-character limit of the parsers, and the
#: lengths at which the issue's quadratic blow-ups took tens of seconds. Sampled, not
#: drawn from a range, since hypothesis favours a range's small end.
LONG_LENGTHS = st.sampled_from([300, 3_000, 6_000, 9_999, 10_001, 30_000, 40_000])

#: Fragments that, repeated, make the long inputs of the issue's blow-ups.
LONG_SPEC_FRAGMENTS = ["i", "ab", "i,", "ij,", "a", "...", "->", "iα"]


@composite
def long_specs(draw: DrawFn) -> str:
    """Specs of hundreds to tens of thousands of characters (repeated labels, operands)."""
    fragment = draw(st.sampled_from(LONG_SPEC_FRAGMENTS))
    text = fragment * (draw(LONG_LENGTHS) // len(fragment))
    return text + draw(st.sampled_from(["", "->", "->i", ",i->"]))


# --- expression strings ---------------------------------------------------------------------


@dataclass(frozen=True)
class ExpressionCase:
    """An expression tree, its variables' shapes, and whether numpy can compute it."""

    node: Node
    shapes: dict[str, Shape]
    valid: bool


VARIABLE_NAMES = ["X", "W", "b", "x", "s"]
EXPONENTS = [0, 1, 2, 3, 0.5, -1, -2, 1.5]
NUMBERS = [2, 0.5, -1, 3, 1e-3, 0, 1.5]


def numpy_shape(node: Node, shapes: dict[str, Shape]) -> Shape | None:
    """The shape numpy gives ``node`` on arrays of ``shapes`` (None if numpy refuses)."""
    arrays = {name: np.ones(shape) for name, shape in shapes.items()}
    try:
        with np.errstate(all="ignore"):
            return tuple(np.shape(reference(node, arrays)))
    except Exception:
        return None


@composite
def _variable_shapes(draw: DrawFn) -> dict[str, Shape]:
    """Shapes that mostly broadcast together: suffixes of one base shape, some axes 1."""
    base = draw(st.lists(SIZES, min_size=3, max_size=3))
    names = draw(st.lists(st.sampled_from(VARIABLE_NAMES), min_size=1, max_size=3, unique=True))
    shapes = {}
    for name in names:
        rank = draw(st.integers(0, 3))
        dims = [draw(st.sampled_from([n, n, n, 1])) for n in base[3 - rank :]]
        if draw(st.integers(0, 5)) == 0:
            dims = draw(st.lists(SIZES, max_size=3))  # unrelated: may not broadcast
        shapes[name] = tuple(dims)
    return shapes


@composite
def _axis(draw: DrawFn, rank: int) -> tuple[Any, bool]:
    """An ``axis=`` value (mostly valid for ``rank``) and whether to write it at all."""
    if draw(st.booleans()):
        return None, False
    choice = draw(st.integers(0, 5))
    if choice == 0:
        return None, True
    if choice == 1 and rank:
        axes = draw(st.lists(st.integers(0, rank - 1), min_size=1, max_size=rank, unique=True))
        return tuple(axes), True
    if choice == 2:
        return draw(st.integers(-rank - 1, rank)), True  # sometimes out of range
    return draw(st.integers(-rank, rank - 1)) if rank else 0, True


@composite
def _einsum_node(draw: DrawFn, operands: list[Node], shapes: list[Shape]) -> Node:
    """``einsum`` of ``operands``, labels agreeing with their sizes (numpy checks the rest)."""
    sizes: dict[str, int] = {}
    terms = []
    for shape in shapes:
        term = ""
        for size in shape:
            fitting = [c for c, n in sizes.items() if n == size or 1 in (n, size)]
            if fitting and draw(st.booleans()):
                term += draw(st.sampled_from(fitting))
            else:
                fresh = next(c for c in "ijklmnop" if c not in sizes)
                sizes[fresh] = size
                term += fresh
        terms.append(term)
    spec = ",".join(terms)
    if draw(st.booleans()):
        present = sorted({c for t in terms for c in t})
        spec += "->" + "".join(draw(st.permutations(present))[: draw(st.integers(0, 9))])
    return Node("einsum", tuple(operands), name=spec)


@composite
def _operation(draw: DrawFn, pool: list[tuple[Node, Shape]]) -> Node:
    """One new operation over nodes of ``pool`` (each with its numpy shape)."""
    pick = st.sampled_from(pool)
    kind = draw(st.sampled_from(["infix"] * 4 + ["unary"] * 3 + ["reduce"] * 2 + ["other"] * 3))
    (a, shape_a), (b, shape_b) = draw(pick), draw(pick)
    if kind == "infix":
        return Node(draw(st.sampled_from(sorted(INFIX))), (a, b))
    if kind == "unary":
        return Node(draw(st.sampled_from(UNARY)), (a,))
    if kind == "reduce":
        axis, has_axis = draw(_axis(len(shape_a)))
        return Node(draw(st.sampled_from(sorted(REDUCTIONS))), (a,), axis=axis, has_axis=has_axis)
    other = draw(st.sampled_from(["pow", "neg", "pos", "T", "transpose", "einsum", "binary"]))
    if other == "pow":
        return Node("pow", (a,), number=draw(st.sampled_from(EXPONENTS)))
    if other in ("neg", "pos"):
        return Node(other, (a,))
    if other in ("T", "transpose"):
        two_d = [(n, s) for n, s in pool if len(s) == 2]
        return Node(other, (draw(st.sampled_from(two_d))[0] if two_d else a,))
    if other == "einsum":
        count = draw(st.integers(1, 2))
        return draw(_einsum_node([a, b][:count], [shape_a, shape_b][:count]))
    return Node(draw(st.sampled_from(BINARY_CALLS)), (a, b))


@composite
def expression_cases(draw: DrawFn, max_steps: int = 6) -> ExpressionCase:
    """A random expression of parse_expr's language over variables with shapes.

    Built bottom up: each step applies one operation to earlier nodes. numpy decides
    whether the result exists; a refused node ends the expression a quarter of the time
    (an invalid case, which einsgrad must refuse too) and is dropped otherwise.
    """
    shapes = draw(_variable_shapes())
    pool: list[tuple[Node, Shape]] = [(Node("var", name=n), s) for n, s in shapes.items()]
    if draw(st.booleans()):
        pool.append((Node("number", number=draw(st.sampled_from(NUMBERS))), ()))
    final, valid = pool[0][0], True
    for _ in range(draw(st.integers(1, max_steps))):
        node = draw(_operation(pool))
        shape = numpy_shape(node, shapes)
        if shape is None:
            if draw(st.integers(0, 3)) == 0:
                final, valid = node, False
                break
            continue
        pool.append((node, shape))
        final = node
    used = {n.name for n in _leaves(final)}
    return ExpressionCase(final, {k: v for k, v in shapes.items() if k in used}, valid)


def _leaves(node: Node) -> list[Node]:
    found, stack = [], [node]
    while stack:
        current = stack.pop()
        if current.op == "var":
            found.append(current)
        stack.extend(current.args)
    return found


def expression_texts() -> SearchStrategy[str]:
    """Strings of the expression language (valid or not for their shapes)."""
    return expression_cases().map(lambda case: render(case.node))


@dataclass(frozen=True)
class LongText:
    """A long input, and whether einsgrad must accept it (it is within the documented
    limits: 10,000 characters, nesting 64 deep) or may refuse it."""

    text: str
    within_limits: bool


#: Fragments that, repeated, make long expression strings (flat sums and products,
#: nesting, huge literals, non-ASCII names), and whether the result is valid syntax.
LONG_EXPR_FRAGMENTS = {
    "x + ": True, "x+": True, "x * ": True, "α + ": True, "tanh(": True, "(": True,
    "1" * 10: False, "0x" + "F" * 8: False,
}  # fmt: skip
PARSE_LIMIT, DEPTH_LIMIT = 10_000, 64  # parse.py's MAX_LENGTH and MAX_DEPTH


@composite
def long_expressions(draw: DrawFn) -> LongText:
    """Expressions of hundreds to tens of thousands of characters."""
    fragment = draw(st.sampled_from(sorted(LONG_EXPR_FRAGMENTS)))
    length = draw(st.one_of(LONG_LENGTHS, st.sampled_from([5 * 60, 5 * 64, 5 * 65])))
    count = max(length // len(fragment), 1)
    nested = fragment.endswith("(")
    text = fragment * count + "x" + (")" * count if nested else "")
    depth = count if nested else 1
    valid = LONG_EXPR_FRAGMENTS[fragment]
    return LongText(text, valid and len(text) <= PARSE_LIMIT and depth < DEPTH_LIMIT)


#: Literals at the edges of Python's numbers (overflow, huge ints, hex, underscores).
EDGE_NUMBERS = ["10**400", "1e400", "0x" + "F" * 300, "9" * 400, "1_000", "0.0", "1e-400", "2**64"]


@composite
def edge_expressions(draw: DrawFn) -> str:
    """An expression with an extreme number literal put in."""
    text = draw(expression_texts())
    number = draw(st.sampled_from(EDGE_NUMBERS))
    return f"({text}) {draw(st.sampled_from(['*', '+', '**', '/']))} {number}"


# --- index notation -------------------------------------------------------------------------


@dataclass(frozen=True)
class IndexCase:
    equation: Equation
    sizes: dict[str, int]


INDEX_LABELS = ["i", "j", "k", "b", "batch", "p"]


@composite
def _tensor_factor(draw: DrawFn, names: list[str]) -> Factor:
    labels = tuple(draw(st.lists(st.sampled_from(INDEX_LABELS), min_size=1, max_size=3)))
    name = f"T{len(names)}"
    names.append(name)
    if draw(st.integers(0, 5)) == 0:
        return Factor("power", name, labels, number=draw(st.sampled_from([2.0, 3.0, 0.5])))
    return Factor("tensor", name, labels)


@composite
def _index_factor(draw: DrawFn, names: list[str], depth: int) -> Factor:
    choice = draw(st.integers(0, 9))
    if choice == 0:
        return Factor("number", number=draw(st.sampled_from([2.0, 0.5, 3.0, 1.5])))
    if choice == 1 and depth < 2:
        inner = draw(_index_product(names, depth + 1))
        return Factor(draw(st.sampled_from(INDEX_FUNCTIONS)), inner=inner)
    return draw(_tensor_factor(names))


@composite
def _index_product(draw: DrawFn, names: list[str], depth: int) -> tuple[Factor, ...]:
    factors = [draw(_index_factor(names, depth)) for _ in range(draw(st.integers(1, 3)))]
    for k in range(1, len(factors)):
        if draw(st.integers(0, 4)) == 0:
            factors[k] = Factor(**{**factors[k].__dict__, "inverted": True})
    return tuple(factors)


@composite
def index_cases(draw: DrawFn) -> IndexCase:
    """A valid index-notation equation over tensors with one size per label."""
    names: list[str] = []
    terms = tuple(
        Term(draw(_index_product(names, 0)), negated=k > 0 and draw(st.booleans()))
        for k in range(draw(st.integers(1, 3)))
    )
    present = sorted(set().union(*(mentioned(f) for t in terms for f in t.factors)))
    left = draw(st.permutations(present))[: draw(st.integers(0, len(present)))]
    sizes = {label: draw(st.sampled_from([1, 2, 3])) for label in INDEX_LABELS}
    return IndexCase(Equation(tuple(left), terms), sizes)


def index_texts() -> SearchStrategy[str]:
    return index_cases().map(lambda case: render_equation(case.equation))


# --- formulas for check ---------------------------------------------------------------------


def _var(name: str) -> Node:
    return Node("var", name=name)


#: Forward expressions a learner checks gradients of: (tree, variables' labels).
FORWARDS: list[tuple[Node, dict[str, str]]] = [
    (Node("@", (_var("X"), _var("W"))), {"X": "ni", "W": "io"}),
    (Node("+", (Node("@", (_var("X"), _var("W"))), _var("b"))), {"X": "ni", "W": "io", "b": "o"}),
    (Node("@", (_var("W"), _var("x"))), {"W": "oi", "x": "i"}),
    (Node("*", (_var("X"), _var("W"))), {"X": "ni", "W": "ni"}),
    (Node("tanh", (Node("@", (_var("X"), _var("W"))),)), {"X": "ni", "W": "io"}),
]


def _T(node: Node) -> Node:
    return Node("T", (node,))


#: Gradients worked out by hand for some of the forwards, by position in FORWARDS and
#: variable: dX = dY·Wᵀ and dW = Xᵀ·dY for X·W, the bias's column sum, dY ⊙ W for X ⊙ W.
RIGHT_FORMULAS: dict[tuple[int, str], Node] = {
    (0, "X"): Node("@", (_var("dY"), _T(_var("W")))),
    (0, "W"): Node("@", (_T(_var("X")), _var("dY"))),
    (1, "X"): Node("@", (_var("dY"), _T(_var("W")))),
    (1, "W"): Node("@", (_T(_var("X")), _var("dY"))),
    (1, "b"): Node("sum", (_var("dY"),), axis=0, has_axis=True),
    (3, "X"): Node("*", (_var("dY"), _var("W"))),
    (3, "W"): Node("*", (_var("X"), _var("dY"))),
}


def _perturbed(draw: DrawFn, node: Node) -> Node:
    """``node``, or a near miss: transposed, its factors swapped, scaled or summed wrongly."""
    how = draw(st.sampled_from(["none", "none", "transpose", "swap", "scale", "axis"]))
    if how == "transpose":
        return _T(node)
    if how == "swap" and len(node.args) == 2:
        return Node(node.op, node.args[::-1])
    if how == "scale":
        return Node("*", (Node("number", number=2), node))
    if how == "axis" and node.op == "sum":
        return Node("sum", node.args, axis=1 - int(node.axis or 0), has_axis=True)
    return node


@dataclass(frozen=True)
class CheckCase:
    forward: Node
    wrt: str
    shapes: dict[str, Shape]
    candidate: Node
    text: str


@composite
def _candidate(draw: DrawFn, shapes: dict[str, Shape]) -> Node:
    """A gradient formula over the variables and ``dY``; never ``@`` with a 0-d factor."""
    pool = [(_var(n), s) for n, s in shapes.items()]
    final = draw(st.sampled_from(pool))[0]
    for _ in range(draw(st.integers(1, 3))):
        (a, shape_a), (b, shape_b) = draw(st.sampled_from(pool)), draw(st.sampled_from(pool))
        kind = draw(st.sampled_from(["@", "@", "@", "T", "T", "*", "+", "-", "sum", "scale"]))
        if kind == "@" and () in (shape_a, shape_b):
            continue
        if kind == "T":
            node = Node("T", (a,))
        elif kind == "sum":
            node = Node("sum", (a,), axis=draw(st.sampled_from([0, 1])), has_axis=True)
        elif kind == "scale":
            node = Node("*", (Node("number", number=draw(st.sampled_from([2, 0.5]))), a))
        else:
            node = Node(kind, (a, b))
        shape = numpy_shape(node, shapes)
        if shape is None:
            return node  # cannot be formed: check must say so
        pool.append((node, shape))
        final = node
    return final


UPSTREAM_ALIASES = ["dY", "dY", "dL/dY", "∂L/∂Y", "grad(Y)"]
PAPER = {"@": "·", "*": "⊙", "-": "−", "+": "+"}


@composite
def _paper_text(draw: DrawFn, node: Node) -> str:
    """``node`` as on paper: ``·``, ``ᵀ``, ``⊙``, ``−``, ``1ᵀ·A`` and ``A·1`` for row sums."""
    args = [draw(_paper_text(a)) for a in node.args]
    if node.op == "var":
        return draw(st.sampled_from(UPSTREAM_ALIASES)) if node.name == "dY" else node.name
    if node.op == "number":
        return render(node)
    if node.op in PAPER:
        return f"({args[0]} {PAPER[node.op]} {args[1]})"
    if node.op == "T":
        return f"{args[0]}ᵀ"
    plain = node.args[0].op == "var" and node.args[0].name != "dY"
    if plain and node.axis == 0:
        return f"1ᵀ·{args[0]}"
    if plain and node.axis == 1:
        return f"{args[0]}·1"
    return f"sum({args[0]}, axis={node.axis})"


@composite
def _numpy_text(draw: DrawFn, node: Node) -> str:
    text = render(node)
    return text.replace("dY", draw(st.sampled_from(UPSTREAM_ALIASES)), 1)


@composite
def check_cases(draw: DrawFn) -> CheckCase:
    forward, labels = draw(st.sampled_from(FORWARDS))
    sizes = {label: draw(st.integers(1, 4)) for label in "nio"}
    shapes = {n: tuple(sizes[c] for c in term) for n, term in labels.items()}
    output = numpy_shape(forward, shapes)
    assert output is not None
    wrt = draw(st.sampled_from(sorted(labels)))
    right = RIGHT_FORMULAS.get((FORWARDS.index((forward, labels)), wrt))
    if right is not None and draw(st.booleans()):
        candidate = _perturbed(draw, right)
    else:
        candidate = draw(_candidate({**shapes, "dY": output}))
    paper = draw(st.booleans())
    text = draw(_paper_text(candidate) if paper else _numpy_text(candidate))
    label = draw(st.sampled_from(["", f"dL/d{wrt} = ", f"∂L/∂{wrt} = ", f"grad({wrt}) = "]))
    return CheckCase(forward, wrt, shapes, candidate, label + text)


# --- shapes, dtypes, huge sizes -------------------------------------------------------------


@dataclass(frozen=True)
class ShapeObject:
    """Something passed as ``var``'s shape, and the shape it means (None: must be refused)."""

    value: Any
    meaning: Shape | None


_GOOD_DIMS = st.one_of(SIZES, st.sampled_from([np.int64(2), np.int32(3), np.intp(0)]))
_BAD_DIMS = st.sampled_from([-1, 2.7, np.float64(2.5), True, False, "3", None, 1j, [2], 2**64])


@composite
def shape_objects(draw: DrawFn) -> ShapeObject:
    """Shapes for ``var``: sequences of whole sizes (any rank up to 70), or not quite."""
    rank = draw(st.sampled_from([0, 1, 2, 3, 4, 33, 40, 64, 65, 70]))
    dims = [draw(_GOOD_DIMS) if rank < 10 else 1 for _ in range(rank)]
    container = draw(st.sampled_from([tuple, list]))
    if draw(st.integers(0, 2)) == 0:
        if dims and draw(st.booleans()):
            dims[draw(st.integers(0, len(dims) - 1))] = draw(_BAD_DIMS)
        else:
            return ShapeObject(draw(st.sampled_from(["23", "2x3", 2.5, {2: 3}, b"23"])), None)
        return ShapeObject(container(dims), None)
    return ShapeObject(container(dims), tuple(int(d) for d in dims))


#: Array dtypes the fuzz layer feeds in; object arrays hold Python floats.
DTYPES = [np.float64, np.float32, np.float16, np.int64, np.int8, np.bool_, np.complex128, object]

#: Declared sizes: each array has over 10**12 bytes, so numpy could never allocate one,
#: and none lies in between, where a missed memory guard would really allocate GBs.
HUGE = 10**12


@composite
def huge_shapes(draw: DrawFn) -> Shape:
    rank = draw(st.integers(1, 3))
    dims = [draw(st.sampled_from([1, 2, 3, 10**6, HUGE])) for _ in range(rank)]
    if sum(d >= 10**6 for d in dims) < 2 and HUGE not in dims:
        dims[draw(st.integers(0, rank - 1))] = draw(st.sampled_from([HUGE, 2**62]))
    return tuple(dims)


# --- command lines --------------------------------------------------------------------------

SHAPE_TEXTS = [
    "X=2x3,W=3x4,b=4", "X=5x3,W=3x4", "X=2x3", "", "X=", "=3", "X=9999999999999999999999999x3",
    "X=-1x3", "X=3x", "X=axb", "X=0x3,W=3x4", "X=2x3,X=3x2", "X=1e3x2", "X=2x3,,W=3x4",
    "X=100000x100000,W=100000x100000", "α=2",
]  # fmt: skip
NAME_TEXTS = ["X,W", "Y,Z,Out,Result", "A", "X,X", "1,2", "", ",", "dY,W", "α,β", "X W"]
FORMAT_TEXTS = ["text", "markdown", "latex", "html"]
EXPR_TEXTS = ["X @ W", "X @ W + b", "tanh(X)", "X @", "X ** Y"]
WRT_TEXTS = ["0", "1", "-1", "2", "27", "x", "X", "W", "b", "", "99999999999999999999"]

CLI_OPTIONS = {
    "grad": {"--wrt": WRT_TEXTS, "--names": NAME_TEXTS},
    "explain": {"--wrt": WRT_TEXTS, "--shapes": SHAPE_TEXTS, "--format": FORMAT_TEXTS},
    "check": {"--wrt": WRT_TEXTS, "--shapes": SHAPE_TEXTS, "--expr": EXPR_TEXTS},
}


@composite
def _cli_positional(draw: DrawFn, command: str) -> str:
    if command == "grad":
        spec = draw(einsum_candidates()).spec
        return draw(st.one_of(st.just(spec), mutated(st.just(spec), SPEC_NOISE), long_specs()))
    source = draw(expression_texts())
    if command == "check":
        return draw(st.one_of(st.just(source), mutated(st.just(source), EXPR_NOISE)))
    long = long_expressions().map(lambda case: case.text)
    return draw(st.one_of(st.just(source), mutated(st.just(source), EXPR_NOISE), long))


@composite
def cli_argvs(draw: DrawFn) -> list[str]:
    """Argument lists for ``einsgrad``: mostly well-formed commands, with odd values."""
    command = draw(st.sampled_from(["grad", "grad", "explain", "explain", "check", "check",
                                    "demo", "--version", "--help", "gard", ""]))  # fmt: skip
    argv = [command] if command else []
    if command in ("grad", "explain", "check"):
        argv.append(draw(_cli_positional(command)))
    options = CLI_OPTIONS.get(command, {})
    for option, values in options.items():
        if draw(st.integers(0, 4)):
            argv += [option, draw(st.sampled_from(values))]
    if draw(st.integers(0, 6)) == 0:
        argv.insert(
            draw(st.integers(0, len(argv))),
            draw(st.sampled_from(["--bogus", "-h", "--wrt", "--", "-"])),
        )
    return argv
