"""The generated NumPy module: finite differences, PyTorch autograd, dtypes, stability."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from conftest import RTOL_FD, rel_err
from oracles import assert_lstm_matches_torch, assert_saturated_cell_stays_finite

from lstm_symbolic.gradcheck import check_module, random_problem


def test_api_shape(numpy_modules):
    m = numpy_modules["lstm"]
    assert m.STATES == ("h", "c")
    assert m.PARAMS["W_f"] == ("hidden", "input") and m.PARAMS["U_o"] == ("hidden", "hidden")
    assert m.PARAMS["b_c"] == ("hidden",)
    assert set(m.PARAMS) == {f"{k}_{g}" for k in "WUb" for g in "fico"}


@pytest.mark.parametrize("sizes", [dict(T=5, B=3, input_size=4, hidden_size=6),
                                   dict(T=5, B=1, input_size=7, hidden_size=2)])
def test_lstm_against_central_differences(numpy_modules, sizes):
    errors = check_module(numpy_modules["lstm"], **sizes)
    assert set(errors) >= {"W_f", "U_c", "b_o", "xs", "h0", "c0"}
    assert max(errors.values()) < RTOL_FD, errors


def test_lstm_against_torch_autograd(numpy_modules):
    torch = pytest.importorskip("torch")  # only this test needs it: the rest run without torch
    assert_lstm_matches_torch(torch, numpy_modules["lstm"])


def test_step_api_agrees_with_the_sequence_api(numpy_modules):
    m = numpy_modules["lstm"]
    params, xs, state0, g_hs, g_T = random_problem(m, T=1, seed=5)
    new_state, cache = m.step_forward(params, xs[0], state0)
    d_new = {"h": g_hs[0] + g_T["h"], "c": g_T["c"]}
    grads, d_x, d_state = m.step_backward(params, cache, d_new)
    hs, state_T, seq_cache = m.forward(params, xs, state0)
    seq_grads, d_xs, d_state0 = m.backward(params, seq_cache, g_hs, g_T)
    assert np.array_equal(new_state["h"], state_T["h"])
    assert all(np.allclose(grads[k], seq_grads[k], rtol=1e-14, atol=0) for k in m.PARAMS)
    assert np.allclose(d_x, d_xs[0], rtol=1e-14, atol=0)
    assert np.allclose(d_state["c"], d_state0["c"], rtol=1e-14, atol=0)


def test_float32_stays_float32_and_agrees_with_float64(numpy_modules):
    m = numpy_modules["lstm"]
    p64, xs, s0, g_hs, g_T = random_problem(m, seed=9)
    cast = lambda d: {k: v.astype(np.float32) for k, v in d.items()}  # noqa: E731
    hs32, _, cache32 = m.forward(cast(p64), xs.astype(np.float32), cast(s0))
    grads32, d_xs32, _ = m.backward(cast(p64), cache32, g_hs.astype(np.float32), cast(g_T))
    _, _, cache64 = m.forward(p64, xs, s0)
    grads64, _, _ = m.backward(p64, cache64, g_hs, g_T)
    assert hs32.dtype == np.float32 and d_xs32.dtype == np.float32
    assert all(grads32[k].dtype == np.float32 for k in m.PARAMS)
    assert max(rel_err(grads32[k], grads64[k]) for k in m.PARAMS) < 1e-4


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_sigmoid_is_finite_without_warnings_for_huge_arguments(numpy_modules, dtype):
    z = np.array([-1e4, -1e3, -90.0, 0.0, 90.0, 1e3, 1e4], dtype=dtype)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        s = numpy_modules["lstm"].sigmoid(z)
    assert s.dtype == dtype and np.all(np.isfinite(s))
    assert s[0] == 0.0 and s[-1] == 1.0 and s[3] == 0.5


def test_saturated_cell_stays_finite(numpy_modules):
    assert_saturated_cell_stays_finite(numpy_modules["lstm"])
