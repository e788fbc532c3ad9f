"""The built-in cells, one builder each, and the registry that names them."""

from __future__ import annotations

from collections.abc import Callable

import sympy as sp

from .cells import Cell, make_cell
from .functions import MatVec, sigmoid

H, I = ("hidden",), ("input",)
HH, HI = ("hidden", "hidden"), ("hidden", "input")


def _sym(names: str) -> tuple[sp.Symbol, ...]:
    return sp.symbols(names)


def lstm() -> Cell:
    """Seed 001's LSTM in the default notation (no peepholes)."""
    x, h_prev, c_prev = _sym("x h_prev c_prev")
    gates = {"f": sigmoid, "i": sigmoid, "c": sp.tanh, "o": sigmoid}
    params: dict[str, tuple[str, ...]] = {}
    for g in gates:
        params[f"W_{g}"] = HI
    for g in gates:
        params[f"U_{g}"] = HH
    for g in gates:
        params[f"b_{g}"] = H
    equations = []
    for g, act in gates.items():
        W, U, b = _sym(f"W_{g} U_{g} b_{g}")
        equations.append((f"z_{g}", MatVec(W, x) + MatVec(U, h_prev) + b))
        out = "c_tilde" if g == "c" else g
        equations.append((out, act(sp.Symbol(f"z_{g}"))))
    f, i, c_tilde, o, c = _sym("f i c_tilde o c")
    equations.append(("c", f * c_prev + i * c_tilde))
    equations.append(("h", o * sp.tanh(c)))
    return make_cell(
        "lstm",
        "LSTM with forget gate (seed 001): c = f*c_prev + i*c_tilde, h = o*tanh(c)",
        inputs={"x": I},
        states=("h", "c"),
        params=params,
        equations=equations,
    )


BUILTIN_CELLS: dict[str, Callable[[], Cell]] = {
    "lstm": lstm,
}
