"""The package's import graph has no cycle: a module and everything it imports can be read, and loaded, bottom-up.

Type-only imports count too (they are how a cycle hides). Issue 17 removed the last ones (api/aio_graph <-> api/graph,
contract/aio <-> contract/report, worker/aio <-> worker/main); this keeps the whole package free of them.
"""

from __future__ import annotations

import grimp


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


def test_no_module_of_the_package_imports_itself_through_others() -> None:
    assert [sorted(c) for c in import_cycles()] == []


def test_the_graph_ir_and_its_front_ends_are_on_no_cycle() -> None:
    on_cycles = set().union(*import_cycles())
    assert not {m for m in on_cycles if m.startswith(("wasmflow.api.graph", "wasmflow.api.frontends"))}
