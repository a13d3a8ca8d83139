"""The package's modules import each other without cycles: the hub knows nothing built on it.

Read from the source with ``ast``, so an import made inside a function counts
as much as one at the top of a module; only imports under ``if TYPE_CHECKING``
are left out (they never run).  A module looked up by name in ``sys.modules``
or through ``importlib.import_module`` counts too: that is an import in all
but name.
"""

from __future__ import annotations

import ast
from collections.abc import Iterable, Iterator
from pathlib import Path

import pytest

from .conftest import ROOT

# Each package of the distribution and the folder of its source.
PACKAGES = {
    "corun": ROOT / "corun",
    "corun.monitor": ROOT / "corun" / "monitor",
    "corun.monkey": ROOT / "corun" / "monkey",
    "corun.testing": ROOT / "corun" / "testing",
    "corun.patches": ROOT / "patches",
}


def package_modules() -> dict[str, Path]:
    """Every module of the distribution by its dotted name."""
    modules = {}
    for package, folder in PACKAGES.items():
        for path in folder.glob("*.py"):
            modules[package if path.stem == "__init__" else f"{package}.{path.stem}"] = path
    return modules


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _imports(nodes: Iterable[ast.AST]) -> Iterator[ast.AST]:
    """The import statements and module look-ups by name among ``nodes`` that can run, at any depth."""
    for node in nodes:
        if isinstance(node, ast.If) and _is_type_checking(node):
            yield from _imports(node.orelse)
            continue
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            yield node
        elif (
            isinstance(node, ast.Constant) and isinstance(node.value, str) and node.value.startswith("corun.")
        ):
            yield node
        yield from _imports(ast.iter_child_nodes(node))


def imported_modules(name: str, path: Path, modules: dict[str, Path]) -> set[str]:
    """The modules of the distribution that module ``name`` imports."""
    package = name if path.stem == "__init__" else name.rpartition(".")[0]
    found = set()
    for node in _imports([ast.parse(path.read_text(), str(path))]):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                base = ".".join([*parts, *([node.module] if node.module else [])])
            # ``from . import hub`` imports a module; ``from .hub import Hub`` a name of one.
            targets = [f"{base}.{a.name}" if f"{base}.{a.name}" in modules else base for a in node.names]
        else:
            assert isinstance(node, ast.Constant)
            targets = [node.value] if node.value in modules else []
        for target in targets:
            while target and target not in modules:
                target = target.rpartition(".")[0]
            if target and target != name:
                found.add(target)
    return found


def import_graph() -> dict[str, set[str]]:
    """Each module of the distribution with the modules of it that it imports."""
    modules = package_modules()
    return {name: imported_modules(name, path, modules) for name, path in modules.items()}


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import cycle as a path that ends where it began, or None."""
    done: set[str] = set()
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        if node in path:
            return [*path[path.index(node) :], node]
        if node in done:
            return None
        path.append(node)
        for child in sorted(graph.get(node, ())):
            cycle = visit(child)
            if cycle is not None:
                return cycle
        path.pop()
        done.add(node)
        return None

    for start in sorted(graph):
        cycle = visit(start)
        if cycle is not None:
            return cycle
    return None


def test_the_package_imports_form_no_cycle() -> None:
    graph = import_graph()
    assert {"corun.hub", "corun.threadpool", "corun.patches.dns"} <= graph.keys()
    cycle = find_cycle(graph)
    assert cycle is None, "import cycle: " + " -> ".join(cycle or ())


def test_the_hub_imports_only_private_helpers() -> None:
    # Everything public (primitives, the thread pool, patches) is built on the hub.
    imports = import_graph()["corun.hub"]
    assert "corun._waiter" in imports
    assert all(name.rpartition(".")[2].startswith("_") for name in imports), imports


@pytest.mark.parametrize(
    ("source", "imports"),
    [
        ("from . import hub\n", {"corun.hub"}),
        ("from .hub import Hub\n", {"corun.hub"}),
        ("import corun.threadpool\n", {"corun.threadpool"}),
        ("def f():\n    from .threadpool import ThreadPool\n", {"corun.threadpool"}),
        ("import sys\nsys.modules.get('corun.threadpool')\n", {"corun.threadpool"}),
        ("from corun.patches.dns import getaddrinfo\n", {"corun.patches.dns"}),
        (
            "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from .threadpool import ThreadPool\n",
            set(),
        ),
        ("if TYPE_CHECKING:\n    pass\nelse:\n    from . import event\n", {"corun.event"}),
    ],
)
def test_the_graph_sees_every_kind_of_import(tmp_path: Path, source: str, imports: set[str]) -> None:
    path = tmp_path / "probe.py"
    path.write_text(source)
    modules = {**package_modules(), "corun.probe": path}
    assert imported_modules("corun.probe", path, modules) == imports


def test_a_cycle_is_found_and_named() -> None:
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert find_cycle(graph) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set(), "c": {"a", "b"}}) is None
