"""The package's layers point only down.

Every module of ``beam_ecommerce`` is parsed (not imported) and every import it makes,
including those inside functions, is checked against the layer map below: a module may
import its own unit and units of lower layers only. An import of a unit in the same layer
(sideways) or a higher one (upward), a module that belongs to no unit, and an import cycle
between modules are each reported by name, so a failure says what to move.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import beam_ecommerce

PACKAGE = "beam_ecommerce"
PACKAGE_DIR = Path(beam_ecommerce.__file__).parent

# Bottom to top. A unit is a top-level module or subpackage of beam_ecommerce; a unit may import
# units of lower layers only, never one of its own layer (transforms and io stand side by side).
LAYERS: tuple[frozenset[str], ...] = (
    frozenset({"records"}),
    frozenset({"schemas", "metrics", "flags", "local_defaults", "collector"}),
    frozenset({"transforms", "io", "generator"}),
    frozenset({"pipelines"}),
    frozenset({"dashboard", "metabase", "live_vs_batch", "dbt_project"}),
    # The demo runs the whole platform once: pipelines, dbt, the live-vs-batch check, a snapshot.
    frozenset({"demo"}),
    frozenset({"cli"}),
)
LAYER_OF = {unit: level for level, units in enumerate(LAYERS) for unit in units}


def module_name(path: Path) -> str:
    """The dotted name of the module in ``path``."""
    parts = path.relative_to(PACKAGE_DIR.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def is_module(name: str) -> bool:
    """Whether ``name`` is a module or package of beam_ecommerce."""
    relative = Path(*name.split("."))
    root = PACKAGE_DIR.parent
    return (root / relative).with_suffix(".py").is_file() or (root / relative / "__init__.py").is_file()


def imported_modules(source: str, package: str) -> Iterator[tuple[str, int]]:
    """Each beam_ecommerce module that ``source`` (a module of ``package``) imports, with the line, at any depth."""
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, *([base] if base else [])])
            # `from pkg import sub` imports the submodule sub; `from pkg import name` imports pkg.
            targets = [f"{base}.{alias.name}" if is_module(f"{base}.{alias.name}") else base for alias in node.names]
        else:
            continue
        for target in targets:
            if target == PACKAGE or target.startswith(PACKAGE + "."):
                yield target, node.lineno


def unit_of(module: str) -> str | None:
    """The unit (top-level module or subpackage) ``module`` belongs to; None for the package root."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else None


def import_graph() -> dict[str, dict[str, int]]:
    """Module -> {imported module: first line}, for every module of the package."""
    graph: dict[str, dict[str, int]] = {}
    for path in sorted(PACKAGE_DIR.rglob("*.py")):
        name = module_name(path)
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        edges = graph.setdefault(name, {})
        for target, line in imported_modules(path.read_text(), package):
            edges.setdefault(target, line)
    return graph


def layer_violations(graph: dict[str, dict[str, int]]) -> list[str]:
    """Every import that points sideways or up, and every unit missing from the map."""
    found = []
    for unit in sorted({unit_of(module) for module in graph} - {None} - set(LAYER_OF)):
        found.append(f"{PACKAGE}.{unit} is in no layer of the map")
    for module, edges in sorted(graph.items()):
        source = unit_of(module)
        for target, line in sorted(edges.items()):
            imported = unit_of(target)
            if imported is None or imported == source or source not in LAYER_OF or imported not in LAYER_OF:
                continue
            if LAYER_OF[imported] >= LAYER_OF[source]:
                direction = "sideways" if LAYER_OF[imported] == LAYER_OF[source] else "upward"
                found.append(f"{module}:{line} imports {target} ({direction}: {source} -> {imported})")
    return found


def import_cycles(graph: dict[str, dict[str, int]]) -> list[str]:
    """Each group of modules that import each other in a circle (Tarjan's strongly connected components)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    cycles = []

    def visit(root: str) -> None:
        # Iterative, so a deep import chain cannot hit the recursion limit.
        work = [(root, iter(sorted(graph.get(root, {}))))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            node, successors = work[-1]
            for successor in successors:
                if successor not in index:
                    index[successor] = low[successor] = len(index)
                    stack.append(successor)
                    on_stack.add(successor)
                    work.append((successor, iter(sorted(graph.get(successor, {})))))
                    break
                if successor in on_stack:
                    low[node] = min(low[node], index[successor])
            else:
                work.pop()
                if work:
                    low[work[-1][0]] = min(low[work[-1][0]], low[node])
                if low[node] == index[node]:
                    component = []
                    while True:
                        member = stack.pop()
                        on_stack.discard(member)
                        component.append(member)
                        if member == node:
                            break
                    if len(component) > 1:
                        cycles.append("import cycle: " + " <-> ".join(sorted(component)))

    for module in sorted(graph):
        if module not in index:
            visit(module)
    return cycles


def test_the_checker_names_each_kind_of_violation():
    """The checker itself, on a made-up graph: a unit without a layer, an upward and a sideways import, a cycle."""
    graph = {
        f"{PACKAGE}.io.sink": {f"{PACKAGE}.pipelines.options": 3, f"{PACKAGE}.records": 1},
        f"{PACKAGE}.transforms.a": {f"{PACKAGE}.transforms.b": 1},
        f"{PACKAGE}.transforms.b": {f"{PACKAGE}.transforms.a": 1, f"{PACKAGE}.io.sink": 2},
        f"{PACKAGE}.elsewhere": {},
    }
    assert layer_violations(graph) == [
        f"{PACKAGE}.elsewhere is in no layer of the map",
        f"{PACKAGE}.io.sink:3 imports {PACKAGE}.pipelines.options (upward: io -> pipelines)",
        f"{PACKAGE}.transforms.b:2 imports {PACKAGE}.io.sink (sideways: transforms -> io)",
    ]
    assert import_cycles(graph) == [f"import cycle: {PACKAGE}.transforms.a <-> {PACKAGE}.transforms.b"]


def test_imports_inside_functions_are_read():
    """Imports are found at any depth; relative ones and `from package import submodule` resolve to the module."""
    source = (
        "def later():\n"
        "    from beam_ecommerce import metrics, __version__\n"
        "    import beam_ecommerce.records\n"
        "from ..schemas import tables\n"
        "from .files import ReadFiles\n"
    )
    found = {target for target, _ in imported_modules(source, f"{PACKAGE}.io")}
    assert found == {
        f"{PACKAGE}.metrics",
        PACKAGE,
        f"{PACKAGE}.records",
        f"{PACKAGE}.schemas.tables",
        f"{PACKAGE}.io.files",
    }


def test_imports_point_only_down():
    """No module imports sideways or up the layer map, and every unit has a layer."""
    violations = layer_violations(import_graph())
    assert not violations, "\n".join(violations)


def test_no_import_cycles():
    """No modules import each other in a circle, not even through an import inside a function."""
    cycles = import_cycles(import_graph())
    assert not cycles, "\n".join(cycles)
