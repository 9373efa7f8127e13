"""``explain(L, wrt)``: the derivation of a gradient, step by step, as a learner writes it.

The steps are generated from the rules einsgrad actually applies, node by node on the
path from ``L`` down to the variable, never from templates keyed on an example. For an
einsum node ``Y = einsum(s_1,…,s_n -> o)`` consumed on the way to ``W`` they follow the
hand derivations of the seed notes:

1. the chain rule as an index sum over the output's labels;
2. the forward contraction written out;
3. the partial derivative as Kronecker deltas, one per label of ``W``;
4. the deltas collapsing sums, and which labels stay summed (the contracting ones);
5. the result in index form, as an einsum string and, where there is one, in matrix
   notation;
6. the shapes of the factors.

Elementwise nodes show their rule (``∂L/∂Y = ∂L/∂Z ⊙ [Y > 0]`` for a ReLU), broadcast
arguments the sum over the broadcast axes (``1ᵀ·∂L/∂Z`` for a bias), and the division of
a mean what it divides by: ``1/B`` over the batch axis, ``1/(B·M)`` over all entries.
"""

from __future__ import annotations

import itertools
from collections import ChainMap, Counter
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, overload

import numpy as np

from einsgrad.core import kinds
from einsgrad.core.derivation import (
    EinsumSteps,
    ElementwiseSteps,
    Factor,
    ReductionSteps,
    RuleSteps,
)
from einsgrad.core.errors import GradError, MissingRuleError, ShapeError
from einsgrad.core.ir import Const, Einsum, Expr, Map, Reduce, Var, reaching, toposort
from einsgrad.core.labels import display_label, index_label
from einsgrad.core.spec import ELLIPSIS, parse_spec
from einsgrad.frontends.parse import parse_expr
from einsgrad.graph import ops
from einsgrad.graph.printing import to_text
from einsgrad.graph.rewrite import rebuild
from einsgrad.passes.autodiff import grad, variable_of, variables_by_name
from einsgrad.passes.calculus import vjp
from einsgrad.passes.simplify import simplify
from einsgrad.rules.einsum import einsum_vjp
from einsgrad.teach.notation import (
    factor_latex,
    factor_text,
    matrix_form,
    number_text,
    term_latex,
    term_text,
)

__all__ = ["Derivation", "Step", "explain"]

_NAMES = ["Y", "Z", "H", "U", "V", "P", "Q", "R", "S", "T"]

#: A formula in a step is cut after this many characters (it could be exponentially long).
_FORMULA_LIMIT = 2000


@dataclass(frozen=True)
class Step:
    """One step: a title and its lines, as Unicode text and as LaTeX math."""

    title: str
    text: tuple[str, ...]
    latex: tuple[str, ...] = ()


@dataclass(frozen=True)
class Derivation:
    """A derivation: ``steps`` in order, and the gradient ``result`` as an expression."""

    steps: tuple[Step, ...]
    result: Expr
    wrt: str
    summary: str

    @property
    def text(self) -> str:
        """Plain Unicode text."""
        lines: list[str] = []
        for number, step in enumerate(self.steps, 1):
            lines.append(f"{number}. {step.title}")
            lines.extend(f"   {line}" for line in step.text)
        lines.append(f"Result: {self.summary}")
        return "\n".join(lines)

    @property
    def markdown(self) -> str:
        """Markdown with LaTeX math (``$$ … $$``) where a step has it."""
        lines: list[str] = [f"### Derivation of ∂L/∂{self.wrt}", ""]
        for number, step in enumerate(self.steps, 1):
            lines.append(f"{number}. **{step.title}**")
            if step.latex:
                lines.extend(f"   $$ {math} $$" for math in step.latex)
            else:
                lines.extend(f"   `{line}`" for line in step.text)
            lines.append("")
        lines.append(f"**Result:** `{self.summary}`")
        return "\n".join(lines)

    @property
    def latex(self) -> str:
        """A LaTeX ``enumerate`` with one display per formula."""
        lines = ["\\begin{enumerate}"]
        for step in self.steps:
            lines.append(f"  \\item {_latex_text(step.title)}")
            for math in step.latex or tuple(f"\\text{{{_latex_text(t)}}}" for t in step.text):
                lines.append(f"  \\[ {math} \\]")
        lines.append("\\end{enumerate}")
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.text

    def _repr_markdown_(self) -> str:
        return self.markdown

    def _repr_latex_(self) -> str:
        return self.latex


_LATEX_TEXT = {
    "\\": "\\textbackslash{}",
    "_": "\\_",
    "#": "\\#",
    "%": "\\%",
    "&": "\\&",
    "{": "\\{",
    "}": "\\}",
    "$": "\\$",
    "∂": "$\\partial$",
    "Σ": "$\\Sigma$",
    "δ": "$\\delta$",
    "ᵀ": "$^\\top$",
    "×": "$\\times$",
    "·": "$\\cdot$",
    "⊙": "$\\odot$",
    "−": "-",
    "′": "$'$",
    "…": "\\ldots{}",
}


def _latex_text(text: str) -> str:
    """Plain text for LaTeX's text mode: specials escaped, Unicode math as math."""
    return "".join(_LATEX_TEXT.get(char, char) for char in text)


def _shape_text(shape: Sequence[int] | None) -> str:
    if shape is None:
        return "?"
    return "×".join(str(n) for n in shape) if shape else "scalar"


class _Namer:
    """Display names for the nodes of the derivation."""

    def __init__(self, variables: Sequence[str]) -> None:
        self.names: dict[Expr, str] = {}
        self.taken = set(variables)
        self.pool = itertools.chain(_NAMES, (f"T{k}" for k in itertools.count(1)))
        self.definitions: list[tuple[str, Expr]] = []
        # Written expressions by node, own name and number of names: names only grow, so
        # an equal count means the same names, and the text a block repeats is reused.
        self.texts: dict[tuple[Expr, str, int], str] = {}

    def __call__(self, node: Expr) -> str:
        if isinstance(node, Var):
            return node.name
        if isinstance(node, Const) and node.is_scalar:
            return repr(node.value)
        if node not in self.names:
            name = next(n for n in self.pool if n not in self.taken)
            self.taken.add(name)
            self.names[node] = name
            self.definitions.append((name, node))
        return self.names[node]


def explain(
    loss: Expr | str,
    wrt: Any,
    *,
    shapes: Mapping[str, Sequence[int]] | None = None,
    upstream: str = "Y",
) -> Derivation:
    """Derive ``∂L/∂wrt`` step by step (see the module documentation).

    ``loss`` is a scalar expression (the derivation runs all the way down) or a
    non-scalar one, whose upstream gradient ``∂L/∂Y`` is then taken as given (``upstream``
    names it). Strings are parsed with ``shapes``. Shapes must be known.
    """
    if isinstance(loss, str):
        loss = parse_expr(loss, shapes=shapes)
    by_name = variables_by_name(toposort([loss]))
    variable = variable_of(loss, wrt)
    if loss.shape is None:
        raise ShapeError("explain needs shapes: declare them in var() or pass shapes={...}")
    loss = _fold_transposes(loss)
    scalar = loss.shape == ()
    namer = _Namer(list(by_name))
    top = "L" if scalar else upstream
    namer.names[loss] = top
    namer.taken.add(top)

    order = toposort([loss], references=False)
    depends = reaching(order, [variable])
    if loss not in depends:
        raise GradError(f"{variable.name} does not occur in the expression: its gradient is zero")

    # Name the path from the variable upward, so the node next to W is Y, as in the notes.
    for node in order:
        if node in depends and node is not loss and not isinstance(node, Var):
            namer(node)

    steps: list[Step] = []
    if not scalar:
        steps.append(
            Step(
                f"{top} = {_expression_text(loss, namer, top)} is not a scalar",
                (
                    f"the upstream gradient ∂L/∂{top} (shape {_shape_text(loss.shape)}) is given,",
                    f"as in the notes: L = f({top}) for some scalar loss f.",
                ),
            )
        )
    steps.extend(_blocks(order, depends, namer))
    result = _gradient(loss, variable, top, namer)
    # Name the intermediate values up front, so the blocks read top-down.
    steps[1 if not scalar else 0 : 1 if not scalar else 0] = _definitions(namer)
    summary = _summary(result, variable, namer)
    final = [summary]
    if isinstance(result, Einsum) and summary != f"∂L/∂{variable.name} = {to_text(result)}":
        final.append(f"as one einsum: {to_text(result, inline=True, limit=200, given=namer.names)}")
    steps.append(
        Step(f"So ∂L/∂{variable.name} (shape {_shape_text(variable.shape)})", tuple(final))
    )
    return Derivation(tuple(steps), result, variable.name, summary)


def _blocks(order: Sequence[Expr], depends: set[Expr], namer: _Namer) -> list[Step]:
    """The blocks from the loss down to the variable: one per node and argument on a path,
    and a note where a value is used more than once (its gradient is the sum)."""
    incoming = Counter(child for node in order for child in node.children if child in depends)
    steps: list[Step] = []
    for node in reversed(order):
        if node not in depends or isinstance(node, Var):
            continue
        if incoming[node] > 1:
            steps.append(
                Step(
                    f"{namer(node)} is used {incoming[node]} times",
                    (
                        f"∂L/∂{namer(node)} is the sum of the contributions from each use,"
                        " derived above.",
                    ),
                )
            )
        for position, child in enumerate(node.children):
            if child in depends:
                steps.extend(_block(node, position, child, namer))
    return steps


def _gradient(loss: Expr, variable: Var, top: str, namer: _Namer) -> Expr:
    """∂L/∂variable, simplified: the gradient of a scalar loss, or the vjp of the upstream
    gradient ∂L/∂top of a non-scalar one."""
    result: Expr | tuple[Expr, ...]
    if loss.shape == ():
        result = grad(loss, variable)
    else:
        cotangent = ops.var("d" + top, loss.shape)
        namer.names[cotangent] = f"∂L/∂{top}"
        result = vjp(loss, variable, cotangent)
    assert isinstance(result, Expr)
    return simplify(result)


def _fold_transposes(loss: Expr) -> Expr:
    """``loss`` with each transpose that only feeds an einsum written into its term.

    ``X @ W.T`` is ``einsum('ij,jk->ik', X, einsum('ij->ji', W))``. Explained as built, the
    transpose takes a name of its own (``Y = Wᵀ``), and ∂L/∂Y would be the gradient with
    respect to Wᵀ, not to the layer's output. Folded, it is ``einsum('ij,kj->ik', X, W)``:
    the layer output ``Y = X·Wᵀ``, as on paper.
    """
    uses = Counter(dep for node in toposort([loss]) for dep in node.children + node.references)

    def fold(original: Expr, rebuilt: Expr) -> Expr:
        if not isinstance(original, Einsum) or not isinstance(rebuilt, Einsum):
            return rebuilt
        if rebuilt.like is not None or len(rebuilt.operands) != len(original.operands):
            return rebuilt
        terms = list(rebuilt.spec.inputs)
        operands = list(rebuilt.operands)
        for k, (before, after) in enumerate(zip(original.operands, operands, strict=True)):
            if uses[before] == 1 and ELLIPSIS not in terms[k] and _is_permutation(after):
                assert isinstance(after, Einsum)
                inner, permuted = after.spec.inputs[0], after.spec.output
                # Axis q of the inner operand is the transposed axis carrying its label.
                terms[k] = tuple(terms[k][permuted.index(label)] for label in inner)
                operands[k] = after.operands[0]
        if operands == list(rebuilt.operands):
            return rebuilt
        text = ",".join("".join(term) for term in terms) + "->" + "".join(rebuilt.spec.output)
        spec = parse_spec(text, generalized=rebuilt.spec.generalized)
        return ops._einsum_node(spec, operands, None)

    (folded,) = rebuild([loss], hook=fold)
    return folded


def _is_permutation(node: Expr) -> bool:
    """True for a one-operand einsum that only reorders axes (a transpose), not identity."""
    if not isinstance(node, Einsum) or len(node.operands) != 1 or node.like is not None:
        return False
    (term,), output = node.spec.inputs, node.spec.output
    return (
        ELLIPSIS not in term
        and len(set(term)) == len(term) == len(output)
        and set(term) == set(output)
        and term != output
    )


class _NamesExcept(Mapping[Expr, str]):
    """The namer's names but those of one node (and of ``own``), without copying them: a
    definition then costs its own size, not the number of names."""

    def __init__(self, names: Mapping[Expr, str], node: Expr, own: str) -> None:
        self.names, self.node, self.own = names, node, own

    def __getitem__(self, key: Expr) -> str:
        if key not in self:
            raise KeyError(key)
        return self.names[key]

    def __contains__(self, key: object) -> bool:
        return key is not self.node and key in self.names and self.names[key] != self.own  # type: ignore[index]

    def __iter__(self) -> Iterator[Expr]:
        return (key for key in self.names if key in self)

    def __len__(self) -> int:
        return sum(1 for _ in self)

    def __bool__(self) -> bool:
        # A walk asks whether there are names at all before each look-up; counting them
        # (``__len__``) for that would make every definition cost the number of names.
        # Only the node and its own name are left out, so the first few keys decide.
        return next(iter(self), None) is not None


def _expression_text(node: Expr, namer: _Namer, own: str) -> str:
    key = (node, own, len(namer.names))
    if key not in namer.texts:
        names = _NamesExcept(namer.names, node, own)
        form = matrix_form(node, names, style="math", limit=_FORMULA_LIMIT)
        namer.texts[key] = form if form is not None else to_text(node, inline=True, limit=120)
    return namer.texts[key]


def _definitions(namer: _Namer) -> list[Step]:
    """A step naming the intermediate values the blocks referred to."""
    lines = []
    for name, node in namer.definitions:
        lines.append(f"{name} = {_expression_text(node, namer, name)}")
    return [Step("where", tuple(lines))] if lines else []


def _summary(result: Expr, variable: Var, namer: _Namer) -> str:
    names = namer.names
    form = matrix_form(result, names, style="math", limit=_FORMULA_LIMIT)
    text = form if form is not None else to_text(result, inline=True, limit=200)
    return f"∂L/∂{variable.name} = {text}"


# --- one block per node: the rule's derivation data, rendered -------------------------------


def _block(node: Expr, position: int, child: Expr, namer: _Namer) -> list[Step]:
    """The steps through ``node`` to its argument ``child``, from its kind's explain rule."""
    names = _NamesOnRead(node.children, namer)
    data = kinds.rule(node, "explain")(node, position, names, namer(node))
    render = _RENDERERS.get(type(data))
    if render is None:
        raise MissingRuleError(
            f"explain has no rendering for {type(data).__name__}, which the explain rule of "
            f"{type(node).__name__} returned"
        )
    steps: list[Step] = render(data, node, child, namer)
    return steps


class _NamesOnRead(Sequence[str]):
    """The display names of some nodes, each given out when a rule first reads it: an
    elementwise rule that never names its other argument leaves it unnamed (inline)."""

    def __init__(self, nodes: Sequence[Expr], namer: _Namer) -> None:
        self.nodes, self.namer = nodes, namer

    def __len__(self) -> int:
        return len(self.nodes)

    @overload
    def __getitem__(self, index: int) -> str: ...

    @overload
    def __getitem__(self, index: slice) -> Sequence[str]: ...

    def __getitem__(self, index: int | slice) -> str | Sequence[str]:
        if isinstance(index, slice):
            return [self.namer(node) for node in self.nodes[index]]
        return self.namer(self.nodes[index])


def _einsum_steps(data: EinsumSteps, node: Expr, child: Expr, namer: _Namer) -> list[Step]:
    assert isinstance(node, Einsum)
    out_name, target = namer(node), namer(child)
    names = [namer(op) for op in node.operands]
    steps = [_chain_step(data, node, names, out_name, target)]
    forward_lhs, forward = data.forward
    steps.append(
        Step(
            "The forward contraction, written out",
            (f"{factor_text(forward_lhs)} = {term_text(forward)}",),
            (f"{factor_latex(forward_lhs)} = {term_latex(forward)}",),
        )
    )
    steps.append(_partial_step(data, out_name, target))
    steps.append(_substitute_step(data))
    cotangent = ops.var("d" + out_name, node.shape)
    stand_ins = _stand_ins(node, namer)
    (backward,) = rebuild([einsum_vjp(node, cotangent, data.wrt)], replace=stand_ins)
    derived = simplify(backward)
    shown = {stand_in: namer(op) for op, stand_in in stand_ins.items()}
    # An overlay, not a copy: a copy of every name per block is quadratic in the graph.
    matrix_names: ChainMap[Expr, str] = ChainMap(
        {cotangent: f"∂L/∂{out_name}", **shown}, namer.names
    )
    matrix = matrix_form(derived, matrix_names, style="math", limit=_FORMULA_LIMIT)
    steps.append(_result_step(data, target, matrix))
    shape_lines = [f"∂L/∂{target} has the shape of {target}: {_shape_text(child.shape)}"]
    factors = [
        f"{name} is {_shape_text(op.shape)}" for name, op in zip(names, node.operands, strict=True)
    ]
    factors.append(f"∂L/∂{out_name} is {_shape_text(node.shape)} (the shape of {out_name})")
    shape_lines.append("; ".join(factors))
    if matrix is not None:
        shape_lines.append(_matrix_shapes(derived, matrix_names, child.shape))
    steps.append(Step("Shapes", tuple(line for line in shape_lines if line)))
    return steps


def _stand_ins(node: Einsum, namer: _Namer) -> dict[Expr, Expr]:
    """A variable for each computed operand of ``node``, to write its backward einsum with.

    Simplified as they are, the operands would be rebuilt into new nodes the namer has
    no name for (``W·h`` turned into ``h·Wᵀ``), and written out in full: a formula as
    long as the layers below it. A stand-in is written as the operand's name.
    """
    stand_ins: dict[Expr, Expr] = {}
    for op in node.operands:
        if op in stand_ins or isinstance(op, Var) or (isinstance(op, Const) and op.is_scalar):
            continue
        name = next(
            f"operand{k}"
            for k in itertools.count(len(stand_ins))
            if f"operand{k}" not in namer.taken
        )
        stand_ins[op] = ops.var(name, op.shape)
    return stand_ins


def _chain_step(
    data: EinsumSteps, node: Einsum, names: Sequence[str], out_name: str, target: str
) -> Step:
    """The chain rule over the output's labels (at the loss itself there is none yet)."""
    call = f"einsum('{node.spec.text}', {', '.join(names)})"
    if out_name == "L":
        # ∂L/∂L = 1: writing the chain rule out would only say ∂L/∂Z_ab = ∂L/∂Z_ab.
        return Step(
            f"The loss L = {call}",
            (f"∂L/∂L = 1: the chain rule starts here, at the loss, with ∂L/∂{target}",),
        )
    return Step(
        f"Chain rule through {out_name} = {call}",
        (f"{factor_text(data.target)} = {term_text(data.chain)}",),
        (f"{factor_latex(data.target)} = {term_latex(data.chain)}",),
    )


def _partial_step(data: EinsumSteps, out_name: str, target: str) -> Step:
    """The partial derivative as Kronecker deltas, and the sums they collapse."""
    lhs = Factor(target, data.target.labels, "partial", out_name, data.forward[0].labels)
    if data.collapsed:
        summed = ", ".join(d for d, _ in data.collapsed)
        onto = ", ".join(t for _, t in data.collapsed)
        note = f"the sum over {summed} collapses onto {onto}"
    else:
        note = "no forward sum involves it"
    return Step(
        f"The partial derivative: ∂{target}/∂{target} is a Kronecker delta per index",
        (
            f"{factor_text(lhs)} = {term_text(data.raw_partial)}",
            f"   = {term_text(data.partial)}   ({note})",
        ),
        (f"{factor_latex(lhs)} = {term_latex(data.raw_partial)} = {term_latex(data.partial)}",),
    )


def _substitute_step(data: EinsumSteps) -> Step:
    """The partial substituted into the chain rule: which labels the deltas tie."""
    lines = [f"{factor_text(data.target)} = {term_text(data.result)}"]
    if data.tied:
        tied = ", ".join(f"{d} = {t}" for d, t in data.tied)
        lines.insert(0, f"the deltas set {tied}: only those terms of the sum survive")
    contracting = ", ".join(data.contracting) if data.contracting else "none"
    lines.append(f"summed (contracting) labels: {contracting}")
    return Step(
        "Substitute: the deltas collapse the sum",
        tuple(lines),
        (f"{factor_latex(data.target)} = {term_latex(data.result)}",),
    )


def _result_step(data: EinsumSteps, target: str, matrix: str | None) -> Step:
    """The rule engine's backward einsum, in index form, as a string and as a matrix formula."""
    rule = data.rule
    lines = [f"index form: {rule.index_form()}", f"einsum: '{rule.spec}'"]
    if rule.broadcast:
        lines.append(f"broadcast along {', '.join(rule.broadcast)} (labels only {target} has)")
    if rule.diagonal:
        lines.append(f"on the diagonal of {', '.join(rule.diagonal)} (labels {target} repeats)")
    if matrix is not None:
        lines.append(f"matrix form: ∂L/∂{target} = {matrix}")
    return Step(f"Result for ∂L/∂{target}", tuple(lines))


def _matrix_shapes(expr: Expr, names: Mapping[Expr, str], shape: Sequence[int] | None) -> str:
    """``3×5 = (3×2)·(2×5)`` for a matrix product, from the factors of the simplified result."""
    if not isinstance(expr, Einsum) or len(expr.operands) != 2 or shape is None:
        return ""
    spec = expr.spec
    sizes: dict[str, int] = {}
    for term, operand in zip(spec.inputs, expr.operands, strict=True):
        if operand.shape is not None:
            sizes.update(zip(term, operand.shape, strict=False))
    contracted = [
        label for label in spec.inputs[0] if label in spec.inputs[1] and label not in spec.output
    ]
    if len(contracted) != 1 or len(spec.output) != 2:
        return ""
    c = contracted[0]
    e, f = spec.output
    return f"{sizes[e]}×{sizes[f]} = ({sizes[e]}×{sizes[c]}) · ({sizes[c]}×{sizes[f]})"


def _rule_steps(data: RuleSteps, node: Expr, child: Expr, namer: _Namer) -> list[Step]:
    """A rule stated by the rule engine, or its result in terms of the upstream gradient."""
    if data.rule is not None:
        return [Step(data.title, (str(data.rule),))]
    names: ChainMap[Expr, str] = ChainMap({data.cotangent: f"∂L/∂{namer(node)}"}, namer.names)
    result = simplify(data.result)
    text = matrix_form(result, names, style="math", limit=_FORMULA_LIMIT) or to_text(
        result, inline=True, limit=120, given=names
    )
    return [Step(data.title, (f"∂L/∂{namer(child)} = {text}",))]


def _elementwise_steps(
    data: ElementwiseSteps, node: Expr, child: Expr, namer: _Namer
) -> list[Step]:
    assert isinstance(node, Map)
    out_name, target = namer(node), namer(child)
    lines = [f"{out_name} = {_expression_text(node, namer, out_name)}", f"rule: {data.rule}"]
    partial = data.partial
    if partial is None:
        lines.append(f"{node.op.name} is piecewise constant: no gradient flows to {target}")
        return [Step(f"Through {out_name} = {node.op.name}(…)", tuple(lines))]
    upstream = f"∂L/∂{out_name}"
    applied = _applied(partial, upstream, namer)
    broadcast = child.shape is not None and node.shape is not None and child.shape != node.shape
    if broadcast:
        lines.append(_summed_gradient(child, node, target, applied, upstream))
    else:
        lines.append(f"∂L/∂{target} = {applied}")
    divisor = node.args[1] if node.op.name == "divide" and data.position == 0 else None
    count = None if divisor is None else _count_of(divisor)
    mean = None if count is None else _mean_line(node.args[0], count, out_name)
    if mean is not None:
        lines.append(mean)
    if broadcast:
        lines.append(_broadcast_line(child, node, target, out_name))
    return [Step(f"Through {out_name} = {_op_title(node)}", tuple(lines))]


def _applied(partial: Expr, upstream: str, namer: _Namer) -> str:
    """``∂L/∂Y ⊙ ∂Y/∂X``: the upstream gradient times the rule's partial derivative."""
    value = _scalar_value(partial)
    if value == 1.0:
        return upstream
    if value is not None:
        return f"{number_text(value)} · {upstream}"
    names = namer.names
    factor = matrix_form(partial, names, style="math", limit=_FORMULA_LIMIT) or to_text(
        partial, inline=True, limit=80, given=names
    )
    product = "⊙" if partial.shape not in ((), None) else "·"
    return f"{upstream} {product} {_bracketed(factor)}"


def _bracketed(formula: str) -> str:
    """``formula`` in brackets if a sum or difference shows at its top level, so that it
    reads as one factor of a product (``∂L/∂Y ⊙ (1 - Y ⊙ Y)``, not ``∂L/∂Y ⊙ 1 - Y ⊙ Y``)."""
    depth = 0
    for position, character in enumerate(formula):
        if character in "([{":
            depth += 1
        elif character in ")]}":
            depth -= 1
        elif (
            depth == 0
            and character in "+-−"
            and formula[position - 1 : position + 2] == (f" {character} ")
        ):
            return f"({formula})"
    return formula


def _reduction_steps(data: ReductionSteps, node: Expr, child: Expr, namer: _Namer) -> list[Step]:
    assert isinstance(node, Reduce)
    out_name, target = namer(node), namer(child)
    names = namer.names
    partial = data.partial  # not simplified: its parts keep the names of the derivation
    factor = matrix_form(partial, names, style="math", limit=_FORMULA_LIMIT) or to_text(
        partial, inline=True, limit=120, given=names
    )
    lines = [
        f"{out_name} = {node.op.name}({target}, axis={data.axes})",
        f"rule: {data.rule}",
        f"∂L/∂{target} = (∂L/∂{out_name} broadcast back over axis {data.axes})"
        f" ⊙ {_bracketed(factor)}",
    ]
    return [Step(f"Through {out_name} = {node.op.name}(…)", tuple(lines))]


_RENDERERS: dict[type, Callable[..., list[Step]]] = {
    EinsumSteps: _einsum_steps,
    ElementwiseSteps: _elementwise_steps,
    ReductionSteps: _reduction_steps,
    RuleSteps: _rule_steps,
}


def _summed_gradient(child: Expr, node: Expr, target: str, applied: str, upstream: str) -> str:
    """``∂L/∂b_j = Σ_i ∂L/∂Y_ij (= 1ᵀ·∂L/∂Y)``: a broadcast argument's gradient is a sum.

    Written as ``∂L/∂b = ∂L/∂Y`` the right side would be 2×5 for a 5-vector.
    """
    assert child.shape is not None and node.shape is not None
    lead = len(node.shape) - len(child.shape)
    labels = [display_label(i) for i in range(len(node.shape))]
    summed = [i for i in range(len(node.shape)) if i < lead or child.shape[i - lead] == 1]
    # A kept axis of size 1 has the one index 0.
    kept = ["0" if i in summed else labels[i] for i in range(lead, len(node.shape))]
    gradient = upstream if applied == upstream else f"({applied})"
    body = f"{gradient}{index_label(labels)}"
    sums = "".join(f"Σ_{labels[i]} " for i in summed)
    text = f"∂L/∂{target}{index_label(kept)} = {sums}{body}"
    if lead == 1 and len(node.shape) == 2 and summed == [0]:
        operand = upstream if applied == upstream else f"({applied})"
        text += f", so ∂L/∂{target} = 1ᵀ·{operand}"
    return text


def _op_title(node: Map) -> str:
    return {
        "add": "a sum",
        "subtract": "a difference",
        "multiply": "a product",
        "divide": "a quotient",
    }.get(node.op.name, f"{node.op.name}(…)")


def _mean_line(total: Expr, count: int, out_name: str) -> str | None:
    """What the ``1/count`` of ``total / count`` is, if ``total`` sums ``count`` entries.

    Only a mean over the batch axis (axis 0) divides by the batch size B; a mean over all
    entries of a B×M array divides by B·M, and is named so.
    """
    summed = _summed_axes(total)
    if summed is None:
        return None
    axes, sizes, rank = summed
    if int(np.prod(sizes)) != count:
        return None  # a division by some other number, not a mean
    share = f"each entry gets 1/{count} of ∂L/∂{out_name}"
    if axes == (0,):
        return f"1/{count} is the 1/B of a mean: {share}"
    if len(axes) == 1:
        return f"1/{count} is the 1/N of a mean over axis {axes[0]} (N = {count}): {share}"
    product = "·".join(str(n) for n in sizes)
    along = "" if len(axes) == rank else " along axes " + " and ".join(map(str, axes))
    entries = f"all {count} entries" if not along else f"the {count} entries{along}"
    batch = f" (not 1/B: B = {sizes[0]})" if axes[0] == 0 else ""
    return f"1/{count} = 1/({product}), the mean over {entries}{batch}: {share}"


def _summed_axes(node: Expr) -> tuple[tuple[int, ...], tuple[int, ...], int] | None:
    """The axes a one-operand einsum sums over, their sizes and the operand's rank."""
    if not isinstance(node, Einsum) or len(node.operands) != 1 or node.like is not None:
        return None
    (term,), shape = node.spec.inputs, node.operands[0].shape
    if shape is None or ELLIPSIS in term or len(set(term)) != len(term):
        return None
    axes = tuple(i for i, label in enumerate(term) if label not in node.spec.output)
    return (axes, tuple(shape[i] for i in axes), len(term)) if axes else None


def _count_of(node: Expr) -> int | None:
    """The whole-number divisor of a mean, if ``node`` is one."""
    value = _scalar_value(node)
    return int(value) if value is not None and value.is_integer() else None


def _scalar_value(node: Expr) -> float | None:
    if isinstance(node, Const) and node.is_scalar and not isinstance(node.value, complex):
        return float(node.value)
    return None


def _broadcast_line(child: Expr, node: Expr, target: str, out_name: str) -> str:
    assert child.shape is not None and node.shape is not None
    lead = len(node.shape) - len(child.shape)
    axes = [i for i in range(len(node.shape)) if i < lead or child.shape[i - lead] == 1]
    labels = [display_label(i) for i in range(len(node.shape))]
    summed = [labels[i] for i in axes]
    kept = labels[lead:]
    text = (
        f"{target} ({_shape_text(child.shape)}) was broadcast to {_shape_text(node.shape)}: "
        f"sum over {', '.join(summed)}: ∂L/∂{target}{index_label(kept)} = "
        + "".join(f"Σ_{s} " for s in summed)
        + f"(∂L/∂{target} as above){index_label(labels)}"
    )
    if len(node.shape) == 2 and len(child.shape) == 1:
        text += "  — in matrix form 1ᵀ·(…), a sum of the rows, as for a bias"
    return text
