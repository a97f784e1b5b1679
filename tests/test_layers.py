"""The layers' import contract (README, Layout): each folder of simulator/ imports only the layers below it,
the core imports no driver, app or command, and no module imports itself back through others.

The contract lives in pyproject.toml (``[tool.importlinter]``) so ``lint-imports`` checks the same thing
by hand; this test runs it in the suite and fails with its report.  import-linter's ``acyclic_siblings``
compares a package's children only, so a cycle between a package's ``__init__`` and one of its own
modules (the dialects' registry and its implementations, once) is caught here, on grimp's module graph,
deferred imports included.
"""

from __future__ import annotations

import subprocess
import sys
import tomllib
from pathlib import Path

import grimp
import pytest

ROOT = Path(__file__).resolve().parent.parent
CONFIG = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"]


def contract(contract_id: str) -> dict[str, object]:
    return next(c for c in CONFIG["contracts"] if c["id"] == contract_id)


def test_the_import_contract_is_kept() -> None:
    run = subprocess.run(
        [sys.executable, "-c",
         "import sys; from importlinter.cli import lint_imports; sys.exit(lint_imports(no_cache=True, no_logo=True))"],
        check=False, cwd=ROOT, capture_output=True, text=True, timeout=240)
    assert run.returncode == 0, f"the import contract is broken (pyproject.toml, [tool.importlinter]):\n" \
                                f"{run.stdout}\n{run.stderr}"


def _layered() -> list[str]:
    """Every module the ``layers`` contract names, in any layer."""
    return [m.strip() for layer in contract("layers")["layers"]  # type: ignore[attr-defined]
            for m in layer.replace("|", ":").split(":")]


def test_every_folder_is_in_a_layer() -> None:
    """import-linter's ``exhaustive`` needs a container, and loadtests is not in simulator: so here. A folder or
    module added at simulator/'s root (or a second top-level package) must be given its place in the layers."""
    children = sorted({p.stem for p in (ROOT / "simulator").iterdir()
                       if (p.suffix == ".py" or (p / "__init__.py").exists()) and p.name != "__init__.py"})
    named = set(_layered())
    assert [f"simulator.{c}" for c in children if f"simulator.{c}" not in named] == []
    assert [p for p in CONFIG["root_packages"] if p != "simulator" and p not in named] == []


def test_the_contract_names_only_modules_that_exist() -> None:
    """A module renamed or moved must be renamed in the contract too (else it would guard nothing)."""
    graph = grimp.build_graph(*CONFIG["root_packages"], cache_dir=None)
    core = contract("core-pure")
    layered = _layered()
    listed = [m.strip() for m in [*core["source_modules"], *core["forbidden_modules"], *layered]  # type: ignore[misc]
              if m.strip().split(".")[0] in CONFIG["root_packages"]]
    assert [m for m in listed if m not in graph.modules] == []


def _cycles(graph: grimp.ImportGraph, ignored: set[tuple[str, str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan's, iteratively)."""
    edges = {m: sorted(t for t in graph.find_modules_directly_imported_by(m)
                       if t in graph.modules and not graph.is_module_squashed(t) and (m, t) not in ignored)
             for m in graph.modules if not graph.is_module_squashed(m)}
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    for root in sorted(edges):
        if root in index:
            continue
        work = [(root, iter(edges[root]))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(edges[child])))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    top = stack.pop()
                    on_stack.discard(top)
                    component.append(top)
                    if top == node:
                        break
                if len(component) > 1:
                    found.append(sorted(component))
    return found


def test_no_module_imports_itself_back() -> None:
    graph = grimp.build_graph(*CONFIG["root_packages"], include_external_packages=True, cache_dir=None)
    ignored = {tuple(part.strip() for part in expr.split("->"))
               for expr in contract("no-cycles").get("ignore_imports", [])}  # type: ignore[attr-defined]
    cycles = _cycles(graph, ignored)  # type: ignore[arg-type]
    lines = []
    for cycle in cycles:
        lines.append(" <-> ".join(cycle))
        for m in cycle:
            for t in sorted(graph.find_modules_directly_imported_by(m) & set(cycle)):
                for d in graph.get_import_details(importer=m, imported=t):
                    lines.append(f"    {m}:{d['line_number']}  {d['line_contents']}")
    assert not cycles, "import cycles (a deferred import is still one):\n" + "\n".join(lines)


@pytest.mark.parametrize("ignored", [set(), {("x", "y")}])
def test_the_cycle_finder_finds_a_cycle(ignored: set[tuple[str, str]]) -> None:
    graph = grimp.ImportGraph()
    for m in ("p", "p.a", "p.b", "p.c"):
        graph.add_module(m)
    graph.add_import(importer="p.a", imported="p.b")
    graph.add_import(importer="p.b", imported="p")
    graph.add_import(importer="p", imported="p.a")
    graph.add_import(importer="p", imported="p.c")
    assert _cycles(graph, ignored) == [["p", "p.a", "p.b"]]
    assert _cycles(graph, {("p", "p.a")}) == []


def test_no_dialect_capability_is_probed() -> None:
    """The optional capabilities are declared on the Dialect protocol (defaults in DialectBase): a caller reads
    ``dialect.supports_batches``, it never asks ``getattr(dialect, "supports_batches", False)``."""
    import ast

    from simulator.protocol.dialects import Dialect, DialectBase

    capabilities = {n for n in (*vars(DialectBase), *vars(Dialect)) if not n.startswith("_")} | {
        "encode_batch", "decode_batch", "encode_batch_response", "decode_batch_response", "encode_variant"}
    probes = []
    for folder in CONFIG["root_packages"]:
        for path in sorted((ROOT / folder).rglob("*.py")):
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
                if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) \
                        and node.func.id in ("getattr", "hasattr") and len(node.args) >= 2 \
                        and isinstance(node.args[1], ast.Constant) and node.args[1].value in capabilities:
                    probes.append(f"{path.relative_to(ROOT)}:{node.lineno} {ast.unparse(node)}")
    assert probes == []


CORE = sorted(contract("core-pure")["source_modules"])  # type: ignore[call-overload]


@pytest.mark.parametrize("module", CORE)
def test_importing_the_core_loads_no_driver_library(module: str) -> None:
    """What the contract says of the import graph, true of a running interpreter too: importing a core module (its
    package's ``__init__`` included, which the graph does not count) loads none of the forbidden libraries."""
    forbidden = sorted(m for m in contract("core-pure")["forbidden_modules"]  # type: ignore[attr-defined]
                       if m.split(".")[0] not in CONFIG["root_packages"])
    script = ("import importlib, pkgutil, sys\n"
              f"m = importlib.import_module({module!r})\n"
              "for info in pkgutil.walk_packages(getattr(m, '__path__', []), m.__name__ + '.'):\n"
              "    importlib.import_module(info.name)\n"
              f"print(sorted({{n.split('.')[0] for n in sys.modules}} & {set(forbidden)!r}))")
    run = subprocess.run([sys.executable, "-c", script], check=False, cwd=ROOT, capture_output=True, text=True,
                         timeout=60)
    assert run.returncode == 0, run.stderr
    assert run.stdout.strip() == "[]", f"importing {module} loads {run.stdout.strip()}"
