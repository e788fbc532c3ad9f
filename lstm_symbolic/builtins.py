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


def _gate_params(gates, extra: dict[str, tuple[str, ...]] | None = None) -> dict[str, tuple[str, ...]]:
    """W_<g> for every gate, then U_<g>, then b_<g>, then ``extra``: the declaration order."""
    params: dict[str, tuple[str, ...]] = {}
    for prefix, shape in (("W", HI), ("U", HH), ("b", H)):
        params.update({f"{prefix}_{g}": shape for g in gates})
    params.update(extra or {})
    return params


def _affine(g: str, operand: str = "h_prev") -> sp.Expr:
    """``W_g @ x + U_g @ operand + b_g``: a gate's pre-activation without extras."""
    W, U, b, x, v = _sym(f"W_{g} U_{g} b_{g} x {operand}")
    return MatVec(W, x) + MatVec(U, v) + b


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


def lstm_peephole() -> Cell:
    """Greff et al.'s vanilla LSTM: peepholes p_i, p_f on c_prev and p_o on the new c."""
    c_prev, f, i, c_tilde, o, c = _sym("c_prev f i c_tilde o c")
    p_i, p_f, p_o, z_f, z_i, z_c, z_o = _sym("p_i p_f p_o z_f z_i z_c z_o")
    equations = [
        ("z_f", _affine("f") + p_f * c_prev), ("f", sigmoid(z_f)),
        ("z_i", _affine("i") + p_i * c_prev), ("i", sigmoid(z_i)),
        ("z_c", _affine("c")), ("c_tilde", sp.tanh(z_c)),
        ("c", f * c_prev + i * c_tilde),
        ("z_o", _affine("o") + p_o * c), ("o", sigmoid(z_o)),
        ("h", o * sp.tanh(c)),
    ]
    return make_cell(
        "lstm-peephole",
        "LSTM with peepholes (Greff et al.): f, i read p_f*c_prev, p_i*c_prev; o reads p_o*c",
        inputs={"x": I},
        states=("h", "c"),
        params=_gate_params("fico", {"p_i": H, "p_f": H, "p_o": H}),
        equations=equations,
    )


def lstm_cifg() -> Cell:
    """Coupled input and forget gate: f = 1 - i, no forget-gate parameters."""
    c_prev, f, i, c_tilde, o, c, z_i, z_c, z_o = _sym("c_prev f i c_tilde o c z_i z_c z_o")
    equations = [
        ("z_i", _affine("i")), ("i", sigmoid(z_i)),
        ("f", 1 - i),
        ("z_c", _affine("c")), ("c_tilde", sp.tanh(z_c)),
        ("z_o", _affine("o")), ("o", sigmoid(z_o)),
        ("c", f * c_prev + i * c_tilde),
        ("h", o * sp.tanh(c)),
    ]
    return make_cell(
        "lstm-cifg",
        "LSTM with coupled input-forget gate (CIFG): f = 1 - i, c = f*c_prev + i*c_tilde",
        inputs={"x": I},
        states=("h", "c"),
        params=_gate_params("ico"),
        equations=equations,
    )


def _gru_gates() -> list[tuple[str, sp.Expr]]:
    """Reset gate r and update gate z, both reading x and h_prev."""
    z_r, z_z = _sym("z_r z_z")
    return [("z_r", _affine("r")), ("r", sigmoid(z_r)), ("z_z", _affine("z")), ("z", sigmoid(z_z))]


def _gru_output() -> tuple[str, sp.Expr]:
    z, n, h_prev = _sym("z n h_prev")
    return ("h", (1 - z) * n + z * h_prev)


def gru() -> Cell:
    """Cho et al. 2014: the reset gate scales h_prev before U_n (reset before)."""
    r, h_prev, z_n = _sym("r h_prev z_n")
    equations = _gru_gates() + [
        ("rh", r * h_prev),
        ("z_n", _affine("n", "rh")), ("n", sp.tanh(z_n)),
        _gru_output(),
    ]
    return make_cell(
        "gru",
        "GRU (Cho et al. 2014): n = tanh(W_n@x + U_n@(r*h_prev) + b_n), h = (1 - z)*n + z*h_prev",
        inputs={"x": I},
        states=("h",),
        params=_gate_params("rzn"),
        equations=equations,
    )


def gru_reset_after() -> Cell:
    """PyTorch/cuDNN GRU: the reset gate scales U_n @ h_prev + b_hn (reset after)."""
    r, x, h_prev, z_n, W_n, U_n, b_n, b_hn = _sym("r x h_prev z_n W_n U_n b_n b_hn")
    equations = _gru_gates() + [
        ("z_n", MatVec(W_n, x) + b_n + r * (MatVec(U_n, h_prev) + b_hn)), ("n", sp.tanh(z_n)),
        _gru_output(),
    ]
    return make_cell(
        "gru-reset-after",
        "GRU as in PyTorch/cuDNN: n = tanh(W_n@x + b_n + r*(U_n@h_prev + b_hn)), h = (1 - z)*n + z*h_prev",
        inputs={"x": I},
        states=("h",),
        params=_gate_params("rzn", {"b_hn": H}),
        equations=equations,
    )


BUILTIN_CELLS: dict[str, Callable[[], Cell]] = {
    "lstm": lstm,
    "lstm-peephole": lstm_peephole,
    "lstm-cifg": lstm_cifg,
    "gru": gru,
    "gru-reset-after": gru_reset_after,
}
