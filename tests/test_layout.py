"""The array layout of the generated NumPy: folds and packed adjoints, on LSTM and GRU shapes.

The GRU cells here are local stand-ins (the built-in variants live in builtins.py): one with a
per-step operand (U_n @ (r * h_prev)) and one whose product is scaled (r * (U_n @ h_prev + b)).
"""

from __future__ import annotations

import warnings

import pytest
import sympy as sp
from conftest import RTOL_FD

from lstm_symbolic.codegen.kernel import build_kernel
from lstm_symbolic.codegen.layout import layout
from lstm_symbolic.codegen.numpy.emit import numpy_files
from lstm_symbolic.core.cells import make_cell
from lstm_symbolic.core.derive import derive
from lstm_symbolic.core.functions import MatVec, sigmoid
from lstm_symbolic.files import write_files
from lstm_symbolic.gradcheck import check_module, load_module
from lstm_symbolic.spec.builtins import BUILTIN_CELLS

H, I, HH, HI = ("hidden",), ("input",), ("hidden", "hidden"), ("hidden", "input")


def _gru(reset_after: bool):
    x, h_prev, z, r, n = sp.symbols("x h_prev z r n")
    W_z, W_r, W_n, U_z, U_r, U_n, b_z, b_r, b_n, b_hn = sp.symbols("W_z W_r W_n U_z U_r U_n b_z b_r b_n b_hn")
    if reset_after:
        a_n = MatVec(W_n, x) + b_n + r * (MatVec(U_n, h_prev) + b_hn)
        rh = []
    else:
        a_n = MatVec(W_n, x) + MatVec(U_n, sp.Symbol("rh")) + b_n
        rh = [("rh", r * h_prev)]
    equations = [("a_z", MatVec(W_z, x) + MatVec(U_z, h_prev) + b_z), ("z", sigmoid(sp.Symbol("a_z"))),
                 ("a_r", MatVec(W_r, x) + MatVec(U_r, h_prev) + b_r), ("r", sigmoid(sp.Symbol("a_r"))),
                 *rh, ("a_n", a_n), ("n", sp.tanh(sp.Symbol("a_n"))), ("h", (1 - z) * n + z * h_prev)]
    params = {"W_z": HI, "W_r": HI, "W_n": HI, "U_z": HH, "U_r": HH, "U_n": HH, "b_z": H, "b_r": H, "b_n": H}
    if reset_after:
        params["b_hn"] = H
    return make_cell("gru-ra" if reset_after else "gru-rb", "test GRU", inputs={"x": I}, states=("h",),
                     params=params, equations=equations)


def test_lstm_folds_everything_into_one_recurrent_product():
    lay = layout(build_kernel(derive(BUILTIN_CELLS["lstm"]())))
    (fold,) = lay.folds
    assert (fold.into.name, fold.source.name, fold.count) == ("h_prev", "x", 4)
    assert [b.name for b in lay.biases[0][1]] == ["b_f", "b_i", "b_c", "b_o"]
    (packed,) = lay.packed  # x and h_prev share d_z_f .. d_z_o
    assert [a.name for a in packed.adjoints] == ["d_z_f", "d_z_i", "d_z_c", "d_z_o"]
    z_f = next(st for st in lay.kernel.forward if getattr(st, "lhs", None) == sp.Symbol("z_f"))
    assert z_f.rhs == sp.Symbol("U_f_h_prev")


def test_gru_with_a_per_step_operand_views_one_packed_array():
    lay = layout(build_kernel(derive(_gru(reset_after=False))))
    assert len(lay.packed) == 1
    assert {(g.name, start) for g, _, start in lay.views} == {("x", 0), ("h_prev", 0), ("rh", 2)}
    assert {(f.into.name, f.into_start, f.source_start, f.count) for f in lay.folds} == {
        ("h_prev", 0, 0, 2), ("rh", 0, 2, 1)}


@pytest.mark.parametrize("reset_after", [False, True])
def test_gru_layouts_against_central_differences(tmp_path, reset_after):
    cell = _gru(reset_after)
    (path,) = write_files(numpy_files(build_kernel(derive(cell))), tmp_path)
    module = load_module(path)
    for sizes in (dict(T=4, B=3, input_size=4, hidden_size=5), dict(T=3, B=1, input_size=2, hidden_size=3)):
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            errors = check_module(module, **sizes)
        assert max(errors.values()) < RTOL_FD, errors
