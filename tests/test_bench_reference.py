"""The benchmark's hand-written NumPy BPTT computes the same gradients as the generated module."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from conftest import RTOL_TORCH_F64, rel_err

from lstm_symbolic.gradcheck import load_module, random_problem

HAND = Path(__file__).resolve().parent.parent / "bench" / "hand_numpy.py"


def test_hand_numpy_agrees_with_the_generated_module(numpy_modules):
    m, hand = numpy_modules["lstm"], load_module(HAND)
    params, xs, state0, g_hs, g_T = random_problem(m, T=6, B=3, input_size=4, hidden_size=5, seed=11)
    hs, state_T, cache = m.forward(params, xs, state0)
    grads, d_xs, d_state0 = m.backward(params, cache, g_hs, g_T)
    hand_hs, hand_T, steps = hand.forward(params, xs, state0)
    hand_grads, hand_d_xs, hand_d0 = hand.backward(params, steps, g_hs, g_T)
    assert rel_err(hand_hs, hs) < RTOL_TORCH_F64 and rel_err(hand_T["c"], state_T["c"]) < RTOL_TORCH_F64
    assert max(rel_err(hand_grads[k], grads[k]) for k in m.PARAMS) < RTOL_TORCH_F64
    assert rel_err(hand_d_xs, d_xs) < RTOL_TORCH_F64
    assert all(rel_err(hand_d0[s], d_state0[s]) < RTOL_TORCH_F64 for s in m.STATES)
    assert np.all(np.isfinite(hand_d_xs))
