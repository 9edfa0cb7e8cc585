"""The package's layers import only downward, and no module reaches itself again through
others (docs/architecture.md). Checked on the source of every module, imports inside
functions included (only ``if TYPE_CHECKING:`` blocks are exempt), so it cannot regress.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import picasso

ROOT = Path(picasso.__file__).parent

#: Bottom to top. A module may import its own layer and the ones below, never above.
LAYERS: list[tuple[str, tuple[str, ...]]] = [
    ("core", ("picasso._version", "picasso.core")),
    ("models", ("picasso.models",)),
    ("methods", ("picasso.visualizations", "picasso.plugins")),
    (
        "service",
        (
            "picasso.requests",
            "picasso.hiding",
            "picasso.audits",
            "picasso.service",
            "picasso.explanation",
            "picasso.render",
            "picasso.faithfulness",
            "picasso.sanity",
            "picasso.catalog",
            "picasso.demo",
        ),
    ),
    ("jobs", ("picasso.jobs",)),
    ("faces", ("picasso.web", "picasso.cli", "picasso.__main__")),
    ("api", ("picasso",)),  # the package itself: the public Python API
]


def module_name(path: Path) -> str:
    parts = ["picasso", *path.relative_to(ROOT).with_suffix("").parts]
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(p): p for p in sorted(ROOT.rglob("*.py"))}


def layer(module: str) -> int:
    best, found = -1, None
    for rank, (_, prefixes) in enumerate(LAYERS):
        for prefix in prefixes:
            exact = module == prefix
            inside = module.startswith(prefix + ".") and prefix != "picasso"
            if (exact or inside) and len(prefix) > best:
                best, found = len(prefix), rank
    if found is None:
        raise AssertionError(f"{module} belongs to no layer; add it to LAYERS and the docs")
    return found


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def imports_of(module: str) -> set[str]:
    """The package modules ``module`` imports (at any depth of its code)."""
    path = MODULES[module]
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found: set[str] = set()

    def visit(node: ast.AST) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.If) and _is_type_checking(child):
                for other in child.orelse:
                    visit(other)
                continue
            if isinstance(child, ast.Import):
                found.update(a.name for a in child.names if a.name.split(".")[0] == "picasso")
            elif isinstance(child, ast.ImportFrom):
                if child.level:
                    base_parts = package.split(".")
                    base_parts = base_parts[: len(base_parts) - (child.level - 1)]
                    base = ".".join(base_parts + ([child.module] if child.module else []))
                else:
                    base = child.module or ""
                if base.split(".")[0] != "picasso":
                    continue
                for alias in child.names:
                    candidate = f"{base}.{alias.name}"
                    found.add(candidate if candidate in MODULES else base)
            visit(child)

    visit(ast.parse(path.read_text(encoding="utf-8")))
    found.discard(module)
    return {m for m in found if m in MODULES}


GRAPH = {module: imports_of(module) for module in MODULES}


def upward_imports(graph: dict[str, set[str]], module: str) -> list[str]:
    return sorted(
        f"{target} ({LAYERS[layer(target)][0]})"
        for target in graph[module]
        if layer(target) > layer(module)
    )


def import_cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    cycles: list[list[str]] = []

    def connect(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in graph[node]:
            if target not in index:
                connect(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while True:
                item = stack.pop()
                on_stack.discard(item)
                component.append(item)
                if item == node:
                    break
            if len(component) > 1:
                cycles.append(sorted(component))

    for module in sorted(graph):
        if module not in index:
            connect(module)
    return cycles


@pytest.mark.parametrize("module", sorted(MODULES))
def test_imports_point_down(module):
    upward = upward_imports(GRAPH, module)
    assert not upward, f"{module} ({LAYERS[layer(module)][0]}) imports upward: {upward}"


def test_no_import_cycles():
    assert import_cycles(GRAPH) == []


def test_the_checks_can_fail():
    """A planted upward import and a planted cycle are seen; real edges, lazy imports
    included, are in the graph, and TYPE_CHECKING imports are not."""
    planted = {**GRAPH, "picasso.core.model": {*GRAPH["picasso.core.model"], "picasso.render"}}
    assert upward_imports(planted, "picasso.core.model") == ["picasso.render (service)"]
    planted["picasso.explanation"] = {*GRAPH["picasso.explanation"]}
    planted["picasso.render"] = {*GRAPH["picasso.render"], "picasso.explanation"}
    assert ["picasso.explanation", "picasso.render"] in import_cycles(planted)
    assert "picasso.core.errors" in GRAPH["picasso.core.model"]
    assert "picasso.render" in GRAPH["picasso.explanation"]  # an import inside a function
    assert "picasso.explanation" not in GRAPH["picasso.render"]  # only under TYPE_CHECKING
    with pytest.raises(AssertionError, match="belongs to no layer"):
        layer("picasso_elsewhere.module")
