"""Independent oracles shared by the tests: PyTorch autograd on the same weights."""

from __future__ import annotations

import numpy as np
from conftest import RTOL_TORCH_F64, rel_err

from lstm_symbolic.gradcheck import random_problem

TORCH_LSTM_GATES = ("i", "f", "c", "o")  # torch's row blocks: i, f, g (= our c), o


def torch_lstm(torch, params, input_size, hidden_size):
    """``torch.nn.LSTM`` (float64) with our weights; the bias is split unevenly over the two biases."""
    net = torch.nn.LSTM(input_size, hidden_size, dtype=torch.float64)
    stack = lambda k: torch.from_numpy(np.concatenate([params[f"{k}_{g}"] for g in TORCH_LSTM_GATES]))  # noqa: E731
    with torch.no_grad():
        net.weight_ih_l0.copy_(stack("W"))
        net.weight_hh_l0.copy_(stack("U"))
        net.bias_ih_l0.copy_(stack("b") * 0.25)
        net.bias_hh_l0.copy_(stack("b") * 0.75)
    return net


def assert_lstm_matches_torch(torch, m, T=7, B=4, I=5, H=3, seed=3):
    """Outputs, last states and every gradient of module ``m`` against torch autograd, 1e-10 relative."""
    params, xs, state0, g_hs, g_T = random_problem(m, T=T, B=B, input_size=I, hidden_size=H, seed=seed)
    hs, state_T, cache = m.forward(params, xs, state0)
    grads, d_xs, d_state0 = m.backward(params, cache, g_hs, g_T)
    net = torch_lstm(torch, params, I, H)
    x_t = torch.from_numpy(xs).requires_grad_()
    h0, c0 = (torch.from_numpy(state0[s][None]).requires_grad_() for s in ("h", "c"))
    out, (h_n, c_n) = net(x_t, (h0, c0))
    loss = (out * torch.from_numpy(g_hs)).sum() + (h_n[0] * torch.from_numpy(g_T["h"])).sum() \
        + (c_n[0] * torch.from_numpy(g_T["c"])).sum()
    loss.backward()
    assert rel_err(hs, out.detach().numpy()) < RTOL_TORCH_F64
    assert rel_err(state_T["h"], h_n[0].detach().numpy()) < RTOL_TORCH_F64
    assert rel_err(state_T["c"], c_n[0].detach().numpy()) < RTOL_TORCH_F64
    for k, g in enumerate(TORCH_LSTM_GATES):
        rows = slice(k * H, (k + 1) * H)
        assert rel_err(grads[f"W_{g}"], net.weight_ih_l0.grad[rows].numpy()) < RTOL_TORCH_F64
        assert rel_err(grads[f"U_{g}"], net.weight_hh_l0.grad[rows].numpy()) < RTOL_TORCH_F64
        assert rel_err(grads[f"b_{g}"], net.bias_ih_l0.grad[rows].numpy()) < RTOL_TORCH_F64
    assert rel_err(d_xs, x_t.grad.numpy()) < RTOL_TORCH_F64
    assert rel_err(d_state0["h"], h0.grad[0].numpy()) < RTOL_TORCH_F64
    assert rel_err(d_state0["c"], c0.grad[0].numpy()) < RTOL_TORCH_F64


def assert_saturated_cell_stays_finite(m):
    """Inputs scaled by 1e4 saturate every gate: outputs and gradients stay finite, with no warning."""
    import warnings

    params, xs, s0, g_hs, g_T = random_problem(m, seed=2)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        _, _, cache = m.forward(params, xs * 1e4, s0)
        grads, d_xs, _ = m.backward(params, cache, g_hs, g_T)
    assert all(np.all(np.isfinite(g)) for g in grads.values()) and np.all(np.isfinite(d_xs))
