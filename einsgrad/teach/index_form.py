"""Index notation out: an expression as ``Y[i,j] = Σ_k X[i,k] * W[k,j]``, in text or LaTeX.

The reverse of :func:`einsgrad.parse` (in :mod:`einsgrad.frontends.index`): every einsum
becomes a product of indexed tensors with its summed labels written out.
"""

from __future__ import annotations

from collections.abc import Sequence

from einsgrad.core.errors import EinsgradError
from einsgrad.core.ir import Const, Einsum, Expr, Map, Var
from einsgrad.core.labels import DISPLAY_LETTERS, index_label
from einsgrad.core.spec import resolve
from einsgrad.frontends.index import FUNCTIONS
from einsgrad.graph.printing import short_name
from einsgrad.passes.simplify import simplify

__all__ = ["to_einsum", "to_index", "to_latex"]


class _NotIndex(EinsgradError):
    """An expression that index notation cannot write."""


class _Writer:
    def __init__(self, latex: bool) -> None:
        self.latex = latex
        self.pool = iter([*DISPLAY_LETTERS[:17], *(f"i{k}" for k in range(1, 1000))])

    def fresh(self) -> str:
        label: str = next(self.pool)
        return label

    def tensor(self, name: str, labels: Sequence[str]) -> str:
        if self.latex:
            return f"{name}{index_label(labels, latex=True)}"
        return f"{name}[{','.join(labels)}]" if labels else name

    def write(self, node: Expr, labels: Sequence[str]) -> tuple[str, int]:
        """Text of ``node`` with its axes labelled ``labels``, and its precedence."""
        if isinstance(node, Var):
            return self.tensor(node.name, labels), 100
        if isinstance(node, Const) and node.is_scalar:
            value = node.value
            text = repr(float(value)) if isinstance(value, int | float) else repr(value)
            return text, (100 if float(value) >= 0 else 30)
        if isinstance(node, Einsum):
            return self.einsum(node, labels)
        if isinstance(node, Map):
            return self.map(node, labels)
        raise _NotIndex(f"index notation has no form for {type(node).__name__} nodes")

    def einsum(self, node: Einsum, labels: Sequence[str]) -> tuple[str, int]:
        shapes = [op.shape for op in node.operands]
        if any(s is None for s in shapes) or node.shape is None:
            raise _NotIndex("index notation needs static shapes")
        like = node.like if isinstance(node.like, tuple) else None
        resolved = resolve(node.spec, shapes, like)  # type: ignore[arg-type]
        if len(set(resolved.output)) != len(resolved.output):
            # (broadcast labels are fine: index notation broadcasts a term along labels it lacks)
            raise _NotIndex("an einsum that writes onto a diagonal has no index form")
        names = {label: given for label, given in zip(resolved.output, labels, strict=True)}
        for term in resolved.inputs:
            for label in term:
                if label not in names:
                    names[label] = self.fresh()
        every = dict.fromkeys(label for term in resolved.inputs for label in term)
        summed = [names[label] for label in every if label not in resolved.output]
        parts = []
        for term, operand in zip(resolved.inputs, node.operands, strict=True):
            text, own = self.write(operand, [names[label] for label in term])
            parts.append(f"({text})" if own < 20 else text)
        # parse sums a label inside a function when only function arguments carry it; such
        # a sum over the function's result needs an explicit Σ.
        plain_labels = {
            label
            for term, operand in zip(resolved.inputs, node.operands, strict=True)
            if not (isinstance(operand, Map) and operand.op.name in FUNCTIONS)
            for label in term
        }
        scoped = any(label not in plain_labels for label in every if label not in resolved.output)
        body = (" " if self.latex else " * ").join(parts) if parts else "1.0"
        if summed and (scoped or self.latex):
            sums = (
                "".join(f"\\sum_{{{s}}} " for s in summed)
                if self.latex
                else f"Σ_{','.join(summed)} "
            )
            return f"{sums}({body})" if not self.latex else f"{sums}{body}", 20
        return body, 20

    def map(self, node: Map, labels: Sequence[str]) -> tuple[str, int]:
        name = node.op.name
        args = []
        for arg in node.args:
            if arg.shape is None:
                raise _NotIndex("index notation needs static shapes")
            lead = len(labels) - len(arg.shape)
            arg_labels = [
                labels[lead + i] if size != 1 or node.shape[lead + i] == 1 else self.fresh()  # type: ignore[index]
                for i, size in enumerate(arg.shape)
            ]
            args.append(self.write(arg, arg_labels))
        if name in ("add", "subtract"):
            operator = " + " if name == "add" else " - "
            right = args[1][0] if args[1][1] > 10 else f"({args[1][0]})"
            return f"{args[0][0]}{operator}{right}", 10
        if name in ("multiply", "divide"):
            operator = (" " if self.latex else " * ") if name == "multiply" else " / "
            left = args[0][0] if args[0][1] >= 20 else f"({args[0][0]})"
            right = args[1][0] if args[1][1] > 20 else f"({args[1][0]})"
            return f"{left}{operator}{right}", 20
        if name == "negative":
            inner = args[0][0] if args[0][1] > 30 else f"({args[0][0]})"
            return f"-{inner}", 30
        if name == "power":
            base = args[0][0] if args[0][1] > 40 else f"({args[0][0]})"
            return (f"{base}^{{{args[1][0]}}}" if self.latex else f"{base} ** {args[1][0]}"), 40
        if name in FUNCTIONS and len(args) == 1:
            if self.latex:
                return f"\\operatorname{{{name}}}\\left({args[0][0]}\\right)", 100
            return f"{name}({args[0][0]})", 100
        raise _NotIndex(f"index notation has no form for {name}")


def _equation(expr: Expr, name: str, latex: bool) -> str:
    if expr.shape is None:
        raise EinsgradError("index notation needs static shapes: declare them in var()")
    writer = _Writer(latex=latex)
    labels = [writer.fresh() for _ in expr.shape]
    try:
        body, _ = writer.write(expr, labels)
    except _NotIndex as error:
        raise EinsgradError(f"cannot write {expr!r} in index notation: {error}") from None
    return f"{writer.tensor(name, labels)} = {body}"


def to_index(expr: Expr, name: str = "Y") -> str:
    """``expr`` as an index equation ``name[labels] = …`` (see the module documentation)."""
    return _equation(expr, name, latex=False)


def to_latex(expr: Expr, name: str = "Y") -> str:
    """``expr`` as a LaTeX index equation with explicit sums."""
    return _equation(expr, name, latex=True)


def to_einsum(expr: Expr) -> str:
    """``expr`` as one einsum call over its variables, after simplification."""
    direct = (
        isinstance(expr, Einsum)
        and expr.like is None
        and all(isinstance(op, Var | Const) for op in expr.operands)
    )
    simple = expr if direct else simplify(expr)
    if isinstance(simple, Var):
        return simple.name
    if not isinstance(simple, Einsum) or not all(
        isinstance(op, Var | Const) for op in simple.operands
    ):
        raise EinsgradError(f"{short_name(expr)} is not a single einsum of variables: {simple!r}")
    args = ", ".join(short_name(op) for op in simple.operands)
    if simple.like is not None:
        raise EinsgradError(
            f"{short_name(expr)} is a generalized einsum '{simple.spec.text}' (it writes a "
            "diagonal or broadcasts), which numpy's einsum cannot express"
        )
    return f"einsum('{simple.spec.text}', {args})"
