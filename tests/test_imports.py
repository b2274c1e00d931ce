"""Imports point one way, and no module needs another to have been imported first.

1. Every module imports on its own in a fresh interpreter (a cycle that only works in one import
   order, or a module that leans on a side effect of another, fails here and names the module).
2. The import graph of the project, imports inside functions included, has no cycle; a failure
   prints the cycle.
3. The layers: the routing core and the PLC links depend on nothing else of the project; label
   reading only on the courier and routing-code rules of the routing core; the controller on all
   three; the simulated PLC is a peer built on the product, and no product module imports it;
   benchmarks (modules or packages named bench*) may import anything, and nothing of the product
   imports them.
"""
import ast
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from tests.conftest import REPO

PACKAGES = ("edge", "drivers", "vision", "fastpath", "sim_plc")
# Training the text model needs torch, which the product never installs (vision/textmodel/README.md).
TRAINING_ONLY = {"vision.textmodel.model", "vision.textmodel.train"}
# What each product package may import of the project, besides itself.
MAY_IMPORT = {
    "fastpath": set(),
    "drivers": set(),
    "vision": {"fastpath.couriers", "fastpath.routing_code", "fastpath.waybill", "fastpath.errors"},
    "edge": {"fastpath", "drivers", "vision"},
    "sim_plc": {"fastpath", "drivers", "vision", "edge"},
}


def _modules() -> dict[str, Path]:
    found = {}
    for package in PACKAGES:
        for path in sorted((REPO / package).rglob("*.py")):
            parts = path.relative_to(REPO).with_suffix("").parts
            found[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return found


MODULES = _modules()


def _is_bench(module: str) -> bool:
    return any(part.startswith("bench") or part.endswith("_bench") for part in module.split("."))


def _imports(module: str, path: Path) -> set[str]:
    """The project's modules that `module` imports anywhere in its text (functions included)."""
    def owner(name: str) -> str | None:
        while name and name not in MODULES:
            name = name.rpartition(".")[0]
        return name or None

    package = module.split(".") if path.name == "__init__.py" else module.split(".")[:-1]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(owner(alias.name) for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = ".".join(package[:len(package) - node.level + 1] + [node.module or ""]).strip(".") \
                if node.level else node.module
            for alias in node.names:       # `from pkg import module` imports the module itself
                found.add(owner(f"{base}.{alias.name}") if f"{base}.{alias.name}" in MODULES else owner(base))
    found.discard(None)
    found.discard(module)
    return found


GRAPH = {module: _imports(module, path) for module, path in MODULES.items()}


def _import_alone(module: str) -> tuple[str, int, str]:
    done = subprocess.run([sys.executable, "-c", f"import {module}"], cwd=REPO, capture_output=True, text=True,
                          timeout=120)
    return module, done.returncode, done.stderr.strip()


def test_every_module_imports_alone_in_a_fresh_interpreter():
    with ThreadPoolExecutor(2) as pool:
        results = list(pool.map(_import_alone, sorted(MODULES)))
    failed = []
    for module, code, err in results:
        if code and not (module in TRAINING_ONLY and "No module named 'torch'" in err):
            failed.append(f"{module}: {err.splitlines()[-1] if err else f'exit {code}'}")
    assert not failed, "modules that do not import on their own:\n" + "\n".join(failed)


def _cycle_through(start: str) -> list[str] | None:
    """A shortest import path from `start` back to itself, or None."""
    paths, seen = [[start]], {start}
    while paths:
        nxt = []
        for path in paths:
            for target in sorted(GRAPH[path[-1]]):
                if target == start:
                    return path + [start]
                if target not in seen:
                    seen.add(target)
                    nxt.append(path + [target])
        paths = nxt
    return None


def test_the_import_graph_has_no_cycle():
    cycles = {tuple(sorted(set(c))): c for c in map(_cycle_through, sorted(GRAPH)) if c}
    assert not cycles, "import cycles (close them by moving code to where it belongs, not by importing " \
        "inside a function):\n" + "\n".join(" -> ".join(c) for c in cycles.values())


def _allowed(module: str, target: str) -> bool:
    package, target_package = module.split(".")[0], target.split(".")[0]
    if package == target_package or _is_bench(module):
        return not (_is_bench(target) and not _is_bench(module))
    if _is_bench(target):
        return False
    return any(target == allowed or target.startswith(allowed + ".") for allowed in MAY_IMPORT[package])


def test_imports_point_one_way():
    wrong = [f"{module} imports {target}" for module in sorted(GRAPH) for target in sorted(GRAPH[module])
             if not _allowed(module, target)]
    assert not wrong, "imports against the layers (tests/test_imports.py says which way they point):\n" + \
        "\n".join(wrong)


@pytest.mark.parametrize("module, target, allowed", [
    ("edge.controller", "sim_plc.plc", False),
    ("drivers.link", "edge.alarms", False),
    ("fastpath.plan", "vision.waybill", False),
    ("edge.controller", "edge.bench.e2e", False),
    ("edge.bench.e2e", "sim_plc.plc", True),
    ("sim_plc.plc", "edge.line_geometry", True),
    ("vision.waybill", "fastpath.couriers", True),
    ("vision.textmodel.runtime", "fastpath.implementation", False),
])
def test_the_layer_rule_itself(module, target, allowed):
    assert _allowed(module, target) is allowed
