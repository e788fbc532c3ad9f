"""The built-in cells: each is a cell spec in ``specs/`` plus one line in the registry.

A built-in is loaded by the same code as a user's ``.toml`` spec, so everything a built-in
can do, a spec can do.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from pathlib import Path

from .cells import Cell
from .spec import load_spec

SPECS = Path(__file__).resolve().parent / "specs"

BUILTIN_CELLS: dict[str, Callable[[], Cell]] = {
    name: partial(load_spec, SPECS / f"{name}.toml")
    for name in ("lstm", "lstm-peephole", "lstm-cifg", "gru", "gru-reset-after")
}
