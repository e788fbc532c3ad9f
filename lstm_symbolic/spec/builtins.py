"""The built-in cells: each is a cell spec in ``specs/`` plus one line in the registry.

A built-in is loaded by the same code as a user's ``.toml`` spec, so everything a built-in
can do, a spec can do.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from pathlib import Path

from ..core.cells import Cell
from ..errors import UserError
from .load import load_spec

SPECS = Path(__file__).resolve().parent / "builtin"

BUILTIN_CELLS: dict[str, Callable[[], Cell]] = {
    name: partial(load_spec, SPECS / f"{name}.toml")
    for name in ("lstm", "lstm-peephole", "lstm-cifg", "lstm-proj", "gru", "gru-reset-after",
                 "rnn-tanh", "rnn-relu", "slstm", "mingru", "lstm-layernorm")
}


class UnknownCellError(UserError, ValueError):
    """A cell name that is no built-in cell (nor, where specs are taken, a spec file)."""


def load_cell(name: str, *, specs: bool = True) -> Cell:
    """A built-in cell by name, or (``specs``) a cell spec file (``.toml``); the one place that
    says a cell is unknown."""
    if name in BUILTIN_CELLS:
        return BUILTIN_CELLS[name]()
    if specs and name.endswith(".toml"):
        return load_spec(name)
    known = ", ".join(BUILTIN_CELLS)
    spec = ", or the path of a .toml cell spec" if specs else " (a built-in cell here)"
    raise UnknownCellError(f"unknown cell '{name}': use one of {known}{spec}")
