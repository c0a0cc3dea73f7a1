"""The package's import graph has no cycle: a module and everything it imports can be read, and loaded, bottom-up.

Type-only imports count too (they are how a cycle hides). The cycles other work still owns are listed by name;
each has a strict xfail that fails the day its cycle is gone, so the list only shrinks.
"""

from __future__ import annotations

import grimp
import pytest

#: Cycles being removed elsewhere (issue 17): the modules on each, and who removes it.
STILL_EXPECTED = {
    frozenset({"wasmflow.contract.aio", "wasmflow.contract.report"}): "the world adapters (helper worlds)",
}


def import_cycles() -> set[frozenset[str]]:
    """The strongly connected components of more than one module (Tarjan's algorithm, iterative)."""
    graph = grimp.build_graph("wasmflow", exclude_type_checking_imports=False)
    imports = {m: sorted(graph.find_modules_directly_imported_by(m)) for m in graph.modules}
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    cycles: set[frozenset[str]] = set()
    for root in sorted(imports):
        if root in index:
            continue
        work = [(root, 0)]
        while work:
            module, i = work.pop()
            if i == 0:
                index[module] = low[module] = len(index)
                stack.append(module)
                on_stack.add(module)
            if i < len(imports[module]):
                work.append((module, i + 1))
                target = imports[module][i]
                if target not in index:
                    work.append((target, 0))
                elif target in on_stack:
                    low[module] = min(low[module], index[target])
                continue
            if low[module] == index[module]:
                component = set()
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.add(member)
                    if member == module:
                        break
                if len(component) > 1:
                    cycles.add(frozenset(component))
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[module])
    return cycles


def test_no_import_cycle_but_those_still_expected() -> None:
    unexpected = import_cycles() - set(STILL_EXPECTED)
    assert not unexpected, [sorted(c) for c in unexpected]


def test_the_graph_ir_and_its_front_ends_are_on_no_cycle() -> None:
    on_cycles = set().union(*import_cycles())
    assert not {m for m in on_cycles if m.startswith(("wasmflow.api.graph", "wasmflow.api.frontends"))}


@pytest.mark.parametrize(
    "cycle",
    [
        pytest.param(c, id="<->".join(sorted(c)), marks=pytest.mark.xfail(strict=True, reason=o))
        for c, o in STILL_EXPECTED.items()
    ],
)
def test_an_expected_cycle_is_gone(cycle: frozenset[str]) -> None:
    assert cycle not in import_cycles()
