"""No package imports itself in a circle (issue 17): a cycle, even one through ``TYPE_CHECKING`` imports, means two
modules that cannot be understood, tested or moved apart. Packages join this list as their cycles are removed."""

from __future__ import annotations

import functools

import grimp
import pytest

#: Packages proven free of cycles (api: the graph IR and its front-ends; contract: aio <-> report is gone; engine).
ACYCLIC = ("wasmflow.api", "wasmflow.contract", "wasmflow.engine")


@functools.cache
def _graph() -> grimp.ImportGraph:
    return grimp.build_graph("wasmflow", cache_dir=None)  # TYPE_CHECKING imports count too


def _cycles(package: str) -> list[list[str]]:
    """The import cycles among ``package``'s modules."""
    graph = _graph()
    inside = graph.find_descendants(package) | {package}
    return strongly_connected({m: sorted(graph.find_modules_directly_imported_by(m) & inside) for m in inside})


def strongly_connected(edges: dict[str, list[str]]) -> list[list[str]]:
    """The strongly connected components of more than one node (Tarjan), each sorted."""
    modules = sorted(edges)
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(module: str) -> None:
        index[module] = low[module] = len(index)
        stack.append(module)
        on_stack.add(module)
        for target in edges[module]:
            if target not in index:
                visit(target)
                low[module] = min(low[module], low[target])
            elif target in on_stack:
                low[module] = min(low[module], index[target])
        if low[module] == index[module]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == module:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for module in modules:
        if module not in index:
            visit(module)
    return found


@pytest.mark.parametrize("package", ACYCLIC)
def test_no_module_of_the_package_imports_itself_through_others(package: str) -> None:
    assert _cycles(package) == []


def test_the_cycle_finder_finds_exactly_the_modules_in_a_circle() -> None:
    edges = {"a": ["b"], "b": ["c"], "c": ["a"], "d": ["a"], "e": ["e", "d"]}
    assert strongly_connected(edges) == [["a", "b", "c"]]
