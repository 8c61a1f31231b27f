"""An import-linter contract that import-linter lacks: no import circle between modules.

``acyclic_siblings`` (import-linter's own) compares siblings, each taken whole with
what lies below it; a circle between a package's ``__init__`` and one of its own
modules (a module that imports a name its package re-exports) is no circle between
siblings and slips through it. This contract takes every module alone and reports
each strongly connected group of direct imports with the imports inside it, so the
reader sees where to cut.
"""

from __future__ import annotations

import grimp
from importlinter.application import output
from importlinter.domain import fields
from importlinter.domain.contract import Contract, ContractCheck


class AcyclicModulesContract(Contract):
    """Fails when any module under ``containers`` can reach itself through direct imports."""

    type_name = "acyclic_modules"
    containers = fields.ListField(subfield=fields.StringField())

    def check(self, graph: grimp.ImportGraph, verbose: bool) -> ContractCheck:
        prefixes = tuple(self.containers)  # type: ignore[arg-type]
        modules = sorted(
            m
            for m in graph.modules
            if m in prefixes or m.startswith(tuple(p + "." for p in prefixes))
        )
        inside = set(modules)
        edges = {
            m: sorted(
                n for n in graph.find_modules_directly_imported_by(m) if n in inside and n != m
            )
            for m in modules
        }
        groups = _strongly_connected(modules, edges)
        circles = [sorted(g) for g in groups if len(g) > 1]
        return ContractCheck(kept=not circles, metadata={"circles": circles, "edges": edges})

    def render_broken_contract(self, check: ContractCheck) -> None:
        edges = check.metadata["edges"]
        for circle in check.metadata["circles"]:
            members = set(circle)
            output.print_error(f"Import circle among {len(circle)} modules:")
            for module in circle:
                for target in edges[module]:
                    if target in members:
                        output.print(f"  {module} -> {target}")
            output.new_line()


def _strongly_connected(nodes: list[str], edges: dict[str, list[str]]) -> list[list[str]]:
    """Tarjan's algorithm, iterative (no recursion limit on deep graphs)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    on_stack: set[str] = set()
    stack: list[str] = []
    groups: list[list[str]] = []
    counter = 0
    for start in nodes:
        if start in index:
            continue
        work = [(start, iter(edges[start]))]
        index[start] = low[start] = counter
        counter += 1
        stack.append(start)
        on_stack.add(start)
        while work:
            node, targets = work[-1]
            advanced = False
            for target in targets:
                if target not in index:
                    index[target] = low[target] = counter
                    counter += 1
                    stack.append(target)
                    on_stack.add(target)
                    work.append((target, iter(edges[target])))
                    advanced = True
                    break
                if target in on_stack:
                    low[node] = min(low[node], index[target])
            if advanced:
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                group = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    group.append(member)
                    if member == node:
                        break
                groups.append(group)
    return groups
