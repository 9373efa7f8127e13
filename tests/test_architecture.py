"""The folder tree is the architecture: imports run down the layers, never up or in a circle.

Read with ``ast`` over the package's source, so an import hidden inside a function counts
as much as one at the top of a module.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "einsgrad"

#: Lowest first. A module may import from its own layer or any layer below it.
LAYERS = ["core", "graph", "backends", "rules", "frontends", "passes", "teach", "top"]

#: Imports allowed inside functions: each breaks a real optional dependency or is the
#: API layer's late binding, and says so here.
LATE_IMPORTS_ALLOWED: set[tuple[str, str]] = set()


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _layer(module: str) -> str:
    parts = module.split(".")
    if len(parts) >= 3 or (len(parts) == 2 and parts[1] in LAYERS):
        return parts[1]
    return "top"


def _imports(path: Path) -> list[tuple[str, bool]]:
    """(imported einsgrad module, inside a function) for every import in ``path``."""
    tree = ast.parse(path.read_text(), filename=str(path))
    found: list[tuple[str, bool]] = []
    nested: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            nested.update(id(inner) for inner in ast.walk(node) if inner is not node)
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            assert node.level == 0, f"{path.name}: relative import; use einsgrad.<layer>..."
            base = node.module or ""
            if base == "einsgrad" or base.startswith("einsgrad."):
                for alias in node.names:
                    candidate = f"{base}.{alias.name}"
                    module = candidate if _is_module(candidate) else base
                    found.append((module, id(node) in nested))
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.startswith("einsgrad"):
                    found.append((alias.name, id(node) in nested))
    return found


def _is_module(dotted: str) -> bool:
    relative = Path(*dotted.split(".")[1:])
    return (PACKAGE / relative).with_suffix(".py").exists() or (PACKAGE / relative).is_dir()


def _graph() -> dict[str, list[tuple[str, bool]]]:
    return {_module_name(p): _imports(p) for p in sorted(PACKAGE.rglob("*.py"))}


def test_every_module_sits_in_a_known_layer() -> None:
    for path in PACKAGE.rglob("*.py"):
        relative = path.relative_to(PACKAGE)
        if len(relative.parts) > 1:
            assert relative.parts[0] in LAYERS, f"{relative}: not in one of {LAYERS}"


@pytest.mark.parametrize("module", sorted(_graph()))
def test_imports_run_down_the_layers(module: str) -> None:
    own = LAYERS.index(_layer(module))
    for imported, _ in _graph()[module]:
        if imported == "einsgrad":
            assert _layer(module) == "top", f"{module} imports the package root"
            continue
        target = LAYERS.index(_layer(imported))
        assert target <= own, (
            f"{module} ({LAYERS[own]}) imports {imported} ({LAYERS[target]}), a layer above it"
        )


def test_the_ir_imports_no_einsgrad_module() -> None:
    imports = _graph()["einsgrad.core.ir"]
    assert imports == [], f"einsgrad.core.ir must be a leaf, but imports {imports}"


def test_no_import_cycle() -> None:
    graph = {m: sorted({i for i, _ in edges if i != m}) for m, edges in _graph().items()}
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    for start in graph:
        if state.get(start):
            continue
        stack: list[tuple[str, int]] = [(start, 0)]
        state[start] = 1
        while stack:
            module, position = stack.pop()
            edges = graph.get(module, [])
            if position < len(edges):
                stack.append((module, position + 1))
                nxt = edges[position]
                if state.get(nxt) == 1:
                    path = [m for m, _ in stack] + [nxt]
                    raise AssertionError(f"import cycle: {' -> '.join(path)}")
                if not state.get(nxt) and nxt in graph:
                    state[nxt] = 1
                    stack.append((nxt, 0))
            else:
                state[module] = 2


def test_imports_inside_functions_only_where_listed() -> None:
    late = [
        (module, imported)
        for module, edges in _graph().items()
        for imported, nested in edges
        if nested and (module, imported) not in LATE_IMPORTS_ALLOWED
    ]
    assert late == [], f"imports inside functions (move them to the top): {late}"


def test_no_function_is_over_80_lines() -> None:
    long = []
    for path in sorted(PACKAGE.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                length = (node.end_lineno or node.lineno) - node.lineno + 1
                if length > 80:
                    long.append(f"{path.relative_to(PACKAGE)}:{node.lineno} {node.name} ({length})")
    assert long == [], f"functions over 80 lines: {long}"


#: Functions that test several kinds on purpose, and why a new kind is safe there.
KIND_TESTS_ALLOWED = {
    # Shape witnesses claim "same shape" only for the kinds listed; any other kind is its
    # own witness, which claims nothing (the safe answer).
    "graph/ops.py:_direct_witness",
}


def test_passes_dispatch_through_the_rule_table() -> None:
    """No pass, graph or teaching module switches over node kinds: isinstance tests
    against three or more IR kinds in one function are a pass that would miss a new kind."""
    kinds = {"Var", "Const", "Einsum", "Map", "Reduce", "Size", "Seed"}
    switches = []
    for folder in ("passes", "graph", "teach"):
        for path in sorted((PACKAGE / folder).glob("*.py")):
            for function in ast.walk(ast.parse(path.read_text())):
                if not isinstance(function, ast.FunctionDef):
                    continue
                tested = {
                    name.id
                    for call in ast.walk(function)
                    if isinstance(call, ast.Call)
                    and isinstance(call.func, ast.Name)
                    and call.func.id == "isinstance"
                    and len(call.args) == 2
                    for name in ast.walk(call.args[1])
                    if isinstance(name, ast.Name) and name.id in kinds
                }
                where = f"{folder}/{path.name}:{function.name}"
                if len(tested) >= 3 and where not in KIND_TESTS_ALLOWED:
                    switches.append(f"{folder}/{path.name}:{function.name} tests {sorted(tested)}")
    assert switches == [], f"kind switches in passes: {switches}"
