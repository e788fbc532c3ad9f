"""The package is laid out as its pipeline, and imports go one way.

Each top-level module and each subpackage has a rank; a module may import from units of a lower rank,
and from modules of its own subpackage.  No two units share a rank, so no import runs sideways, and no
module imports another that imports it back (directly or through others), function-level imports included.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "lstm_symbolic"

# The pipeline, bottom to top (DESIGN.md): every top-level module and subpackage, in order.
ORDER = (
    "errors", "naming", "files", "core", "formula", "spec", "interop", "notation", "printing",
    "verify", "codegen", "article", "gradcheck", "pipeline", "cli", "__main__",
)
RANK = {unit: rank for rank, unit in enumerate(ORDER)}
TOP_LEVEL_MODULES = 8


def _module(path: Path) -> str:
    """``core/derive.py`` → ``core.derive``; ``files/__init__.py`` → ``files``."""
    parts = list(path.relative_to(PACKAGE).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path) -> set[str]:
    """The package modules ``path`` imports (relative imports, at any depth of the file)."""
    here = _module(path).split(".")
    package = here if path.name == "__init__.py" else here[:-1]
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.level >= 1:
            base = package[: len(package) - (node.level - 1)]
            module = base + (node.module.split(".") if node.module else [])
            targets = [module + [a.name] for a in node.names] if not node.module else [module]
            for target in targets:
                name = ".".join(target)
                if (PACKAGE / Path(*target)).with_suffix(".py").exists() or (PACKAGE / Path(*target)).is_dir():
                    found.add(name)
                elif target[:-1]:
                    found.add(".".join(target[:-1]))
    found.discard("")
    return found


MODULES = sorted(p for p in PACKAGE.rglob("*.py"))
GRAPH = {_module(p): _imports(p) for p in MODULES}


def _unit(module: str) -> str:
    return module.split(".")[0]


@pytest.mark.parametrize("path", MODULES, ids=lambda p: str(p.relative_to(PACKAGE)))
def test_imports_point_down(path):
    mine = _module(path)
    unit = _unit(mine) if mine else "__init__"
    assert unit in RANK or mine == "", f"{mine}: not in the pipeline order of tests/test_layers.py"
    for name in GRAPH[mine]:
        other = _unit(name)
        if other == unit:
            continue  # a sibling in the same subpackage
        assert RANK[other] < RANK[unit], f"{mine} ({unit}, rank {RANK[unit]}) imports {name} (rank {RANK[other]})"


def test_no_module_imports_one_that_imports_it_back():
    seen: dict[str, int] = {}

    def visit(module: str, trail: list[str]):
        if seen.get(module) == 1:
            raise AssertionError("import cycle: " + " -> ".join(trail[trail.index(module):] + [module]))
        if seen.get(module) == 2:
            return
        seen[module] = 1
        for name in sorted(GRAPH.get(module, ())):
            visit(name, trail + [module])
        seen[module] = 2

    for module in GRAPH:
        visit(module, [])


def test_the_top_folder_is_the_pipeline():
    modules = sorted(p.name for p in PACKAGE.glob("*.py"))
    packages = sorted(p.name for p in PACKAGE.iterdir() if (p / "__init__.py").exists())
    assert len(modules) <= TOP_LEVEL_MODULES, modules
    assert set(packages) | {m.removesuffix(".py") for m in modules} == set(ORDER) | {"__init__"}


def test_the_layer_test_sees_imports():
    """Guard: the graph is not empty, and a known import is found (derive reads the function registry)."""
    assert "core.functions" in GRAPH["core.derive"]
    assert "files" in GRAPH["files.manifest"]
    assert {"core.cells", "spec.builtins"} <= {m for deps in GRAPH.values() for m in deps}


# Sizes a maintainer can read (issue 16): no module over 300 lines, no template over 200, and the kernel
# emitted for the built-in lstm (its runtime apart) at most 400.
MAX_LINES = {".py": 300, ".j2": 200}


@pytest.mark.parametrize("suffix", sorted(MAX_LINES))
def test_no_module_or_template_is_too_long(suffix):
    long = {str(p.relative_to(PACKAGE)): n for p in PACKAGE.rglob(f"*{suffix}")
            if (n := len(p.read_text().splitlines())) > MAX_LINES[suffix]}
    assert long == {}, f"split these (at most {MAX_LINES[suffix]} lines)"


def test_the_emitted_lstm_kernel_is_short():
    assert len((PACKAGE.parent / "generated" / "c" / "lstm.c").read_text().splitlines()) <= 400
