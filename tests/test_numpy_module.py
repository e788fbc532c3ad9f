"""The generated NumPy module: finite differences, PyTorch autograd, dtypes, stability."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from conftest import RTOL_FD, RTOL_TORCH_F64, rel_err

from lstm_symbolic.gradcheck import check_module, random_problem

torch = pytest.importorskip("torch")

TORCH_GATES = ("i", "f", "c", "o")  # torch's row blocks: i, f, g (= our c), o


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


def _torch_lstm(params, H, I):
    lstm = torch.nn.LSTM(I, H, dtype=torch.float64)
    with torch.no_grad():
        lstm.weight_ih_l0.copy_(torch.from_numpy(np.concatenate([params[f"W_{g}"] for g in TORCH_GATES])))
        lstm.weight_hh_l0.copy_(torch.from_numpy(np.concatenate([params[f"U_{g}"] for g in TORCH_GATES])))
        bias = np.concatenate([params[f"b_{g}"] for g in TORCH_GATES])
        lstm.bias_ih_l0.copy_(torch.from_numpy(bias * 0.25))
        lstm.bias_hh_l0.copy_(torch.from_numpy(bias * 0.75))
    return lstm


def test_lstm_against_torch_autograd(numpy_modules):
    m = numpy_modules["lstm"]
    T, B, I, H = 7, 4, 5, 3
    params, xs, state0, g_hs, g_T = random_problem(m, T=T, B=B, input_size=I, hidden_size=H, seed=3)
    hs, state_T, cache = m.forward(params, xs, state0)
    grads, d_xs, d_state0 = m.backward(params, cache, g_hs, g_T)

    net = _torch_lstm(params, H, I)
    x_t = torch.from_numpy(xs).requires_grad_()
    h0 = torch.from_numpy(state0["h"][None]).requires_grad_()
    c0 = torch.from_numpy(state0["c"][None]).requires_grad_()
    out, (h_n, c_n) = net(x_t, (h0, c0))
    loss = (out * torch.from_numpy(g_hs)).sum() + (h_n[0] * torch.from_numpy(g_T["h"])).sum() \
        + (c_n[0] * torch.from_numpy(g_T["c"])).sum()
    loss.backward()

    assert rel_err(hs, out.detach().numpy()) < RTOL_TORCH_F64
    assert rel_err(state_T["c"], c_n[0].detach().numpy()) < RTOL_TORCH_F64
    for k, g in enumerate(TORCH_GATES):
        rows = slice(k * H, (k + 1) * H)
        assert rel_err(grads[f"W_{g}"], net.weight_ih_l0.grad[rows].numpy()) < RTOL_TORCH_F64
        assert rel_err(grads[f"U_{g}"], net.weight_hh_l0.grad[rows].numpy()) < RTOL_TORCH_F64
        assert rel_err(grads[f"b_{g}"], net.bias_ih_l0.grad[rows].numpy()) < RTOL_TORCH_F64
    assert rel_err(d_xs, x_t.grad.numpy()) < RTOL_TORCH_F64
    assert rel_err(d_state0["h"], h0.grad[0].numpy()) < RTOL_TORCH_F64
    assert rel_err(d_state0["c"], c0.grad[0].numpy()) < RTOL_TORCH_F64


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
    assert np.allclose(d_x, d_xs[0], rtol=1e-14) and np.allclose(d_state["c"], d_state0["c"], rtol=1e-14)


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
    m = numpy_modules["lstm"]
    params, xs, s0, g_hs, g_T = random_problem(m, seed=2)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        _, _, cache = m.forward(params, xs * 1e4, s0)
        grads, d_xs, _ = m.backward(params, cache, g_hs, g_T)
    assert all(np.all(np.isfinite(g)) for g in grads.values()) and np.all(np.isfinite(d_xs))
