"""Imports go one way: functions → cells → derive → printing → emit → pipeline → cli."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "lstm_symbolic"

# A module may import only from modules of a lower rank (its own rank for siblings in a package).
RANK = {
    "errors": 0, "naming": 0, "escape": 0, "files": 0, "manifest": 7,
    "functions": 1, "cells": 2, "builtins": 3, "formula": 2, "spec": 3,
    "formula_values": 2, "formula_grammar": 2, "formula_transform": 2,
    "derive": 4, "jacobian": 4, "components": 5, "kernel": 5, "notation": 5, "profile_file": 5, "profiles": 5,
    "conventions": 5, "printing": 6, "layout": 6, "emit": 7, "emit_numpy": 8, "emit_c": 8, "document": 8,
    "article": 8, "publish": 8, "flow": 6,
    "verify": 8, "gradcheck": 8, "pipeline": 9, "cli": 10,
    "verify_names": 5, "verify_eval": 5, "verify_diagnose": 5, "verify_right": 7, "verify_check": 7,
    "verify_code": 7, "verify_child": 0, "verify_run": 1, "verify_convention": 5, "verify_calls": 7,
    "verify_mutants": 5, "verify_layout": 7, "verify_explain": 7,
    "__main__": 11, "__init__": 0,
}


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.level >= 1:
            base = (node.module or "").split(".")[0]
            if node.level == 2 or path.parent.name == "printing" and node.level == 1 and not base:
                found.add(base or "printing")
            elif node.level == 1:
                found.add(base or "__init__")
    return found


def _rank(path: Path) -> int:
    return RANK["printing"] if path.parent.name == "printing" else RANK[path.stem]


@pytest.mark.parametrize("path", sorted(PACKAGE.rglob("*.py")), ids=lambda p: p.name)
def test_imports_point_down(path):
    if path.parent.name == "templates":
        return
    mine = _rank(path)
    for name in _imports(path):
        if path.parent.name == "printing" and name in ("", "printing", "__init__"):
            continue
        assert RANK[name] <= mine, f"{path.name} (rank {mine}) imports {name} (rank {RANK[name]})"
