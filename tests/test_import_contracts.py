"""The import-graph check of ``make lint``: the circle contract and the tree's walls."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import grimp
import pytest

from tests.import_contracts import AcyclicModulesContract

REPO = Path(__file__).resolve().parents[1]


def _graph(imports: list[tuple[str, str]]) -> grimp.ImportGraph:
    graph = grimp.ImportGraph()
    for importer, imported in imports:
        for module in (importer, imported):
            graph.add_module(module)
        graph.add_import(importer=importer, imported=imported)
    return graph


def _check(imports: list[tuple[str, str]]) -> list[list[str]]:
    contract = AcyclicModulesContract(
        name="circles", session_options={}, contract_options={"containers": ["pkg"]}
    )
    return contract.check(_graph(imports), verbose=False).metadata["circles"]


def test_a_circle_between_two_files_breaks_the_contract() -> None:
    circles = _check(
        [("pkg.a", "pkg.b"), ("pkg.b", "pkg.c"), ("pkg.c", "pkg.a"), ("pkg.d", "pkg.a")]
    )
    assert circles == [["pkg.a", "pkg.b", "pkg.c"]]


def test_a_module_importing_its_own_package_reexport_is_a_circle() -> None:
    # pkg/__init__.py re-exports pkg.sub, and pkg.sub imports a name from pkg.
    assert _check([("pkg", "pkg.sub"), ("pkg.sub", "pkg")]) == [["pkg", "pkg.sub"]]


def test_a_tree_without_circles_keeps_the_contract() -> None:
    assert (
        _check([("pkg.a", "pkg.b"), ("pkg.b", "pkg.c"), ("pkg.a", "pkg.c"), ("x.y", "pkg.a")]) == []
    )


def test_the_walls_hold_on_this_tree() -> None:
    lint = Path(sys.executable).parent / "lint-imports"
    if not lint.exists():
        pytest.skip("lint-imports is not installed in this environment (make test installs it)")
    run = subprocess.run(
        [str(lint), "--no-cache"], cwd=REPO, capture_output=True, text=True, timeout=300
    )
    assert run.returncode == 0, run.stdout[-4000:] + run.stderr[-2000:]
    assert "0 broken" in run.stdout
