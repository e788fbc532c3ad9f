"""The built-ins without a framework module, against torch autograd implementations written here: xLSTM's
sLSTM (Beck et al. 2024) and the minimal GRU (Feng et al. 2024); and the sLSTM's stabiliser in float32."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import RTOL_TORCH_F64, rel_err

from lstm_symbolic.gradcheck import random_problem

torch = pytest.importorskip("torch")
T, B, I, H = 5, 3, 4, 6


def torch_slstm(p, x, s):
    """One step, as the issue writes it: z = tanh, ĩ raw, f = σ taken as log σ, o = σ; m the stabiliser."""
    pre = {g: x @ p[f"W_{g}"].T + s["h"] @ p[f"U_{g}"].T + p[f"b_{g}"] for g in "zifo"}
    z, i_pre, o = torch.tanh(pre["z"]), pre["i"], torch.sigmoid(pre["o"])
    log_f = torch.nn.functional.logsigmoid(pre["f"])
    m = torch.maximum(log_f + s["m"], i_pre)
    i, f = torch.exp(i_pre - m), torch.exp(log_f + s["m"] - m)
    c = f * s["c"] + i * z
    n = f * s["n"] + i
    return {"h": o * c / n, "c": c, "n": n, "m": m}


def torch_mingru(p, x, s):
    """z = σ(W_z x + b_z), h̃ = W_h x + b_h, h = (1 − z) h_prev + z h̃ (the sequential form)."""
    z = torch.sigmoid(x @ p["W_z"].T + p["b_z"])
    return {"h": (1 - z) * s["h"] + z * (x @ p["W_h"].T + p["b_h"])}


ORACLES = {"slstm": torch_slstm, "mingru": torch_mingru}


def _torch_sequence(step, params, xs, s0, g_hs, g_T):
    p = {k: torch.tensor(v, requires_grad=True) for k, v in params.items()}
    x = torch.tensor(xs, requires_grad=True)
    s = {k: torch.tensor(v, requires_grad=True) for k, v in s0.items()}
    state, hs = dict(s), []
    for t in range(xs.shape[0]):
        state = step(p, x[t], state)
        hs.append(state["h"])
    hs = torch.stack(hs)
    loss = (hs * torch.tensor(g_hs)).sum() + sum((state[k] * torch.tensor(g_T[k])).sum() for k in state)
    loss.backward()
    grads = {k: v.grad.numpy() for k, v in p.items()}
    return hs.detach().numpy(), {k: v.detach().numpy() for k, v in state.items()}, grads, x.grad.numpy(), \
        {k: v.grad.numpy() for k, v in s.items()}


def _start(s0, start):
    """``random``: random_problem's state (n may be negative); ``paper``: zeros with m_0 = −∞ (xLSTM's code
    sets m_1 = ĩ_1 while n is 0), which keeps n_t ≥ 1."""
    if start == "paper":
        s0 = {k: np.zeros_like(v) for k, v in s0.items()}
        if "m" in s0:
            s0["m"] = np.full_like(s0["m"], -np.inf)
    return s0


@pytest.mark.parametrize("start", ["random", "paper"])
@pytest.mark.parametrize("cell", list(ORACLES))
def test_generated_numpy_equals_torch_autograd(numpy_modules, cell, start):
    m = numpy_modules[cell]
    params, xs, s0, g_hs, g_T = random_problem(m, T=T, B=B, input_size=I, hidden_size=H, seed=5)
    s0 = _start(s0, start)
    hs, s_T, cache = m.forward(params, xs, s0)
    grads, d_xs, d_s0 = m.backward(params, cache, g_hs, g_T)
    want = _torch_sequence(ORACLES[cell], params, xs, s0, g_hs, g_T)
    assert rel_err(hs, want[0]) < RTOL_TORCH_F64
    for k in m.STATES:
        assert rel_err(s_T[k], want[1][k]) < RTOL_TORCH_F64, k
        assert rel_err(d_s0[k], want[4][k]) < RTOL_TORCH_F64, f"d_{k}0"
    assert set(grads) == set(want[2]) == set(m.PARAMS)
    for k in grads:
        assert rel_err(grads[k], want[2][k]) < RTOL_TORCH_F64, k
    assert rel_err(d_xs, want[3]) < RTOL_TORCH_F64


def test_mingru_has_no_recurrent_weights(numpy_modules):
    m = numpy_modules["mingru"]
    assert set(m.PARAMS) == {"W_z", "W_h", "b_z", "b_h"} and m.STATES == ("h",)


# ---- the stabiliser: pre-activations up to ±80 in float32 ---------------------------------------
def _extreme(module, dtype, seed, T=12, B=4, I=3, H=5):
    """Biases of ±76 and weights in ±1 on inputs in ±1 and h in [-1, 1]: every pre-activation within ±(76 + 4)
    of 0, the large ones of both signs in every gate; the start is xLSTM's (m_0 = −∞ as a float32 −1e30, since
    the C is compiled with -ffast-math, which assumes no infinities)."""
    rng = np.random.default_rng(seed)
    params = {}
    for g in "zifo":
        params[f"W_{g}"] = rng.uniform(-1, 1, (H, I)).astype(dtype)
        params[f"U_{g}"] = rng.uniform(-1, 1, (H, H)).astype(dtype)
        params[f"b_{g}"] = (76 * rng.choice([-1.0, 1.0], H)).astype(dtype)
    xs = rng.uniform(-1, 1, (T, B, I)).astype(dtype)
    s0 = {s: np.zeros((B, H), dtype) for s in module.STATES} | {"m": np.full((B, H), -1e30, dtype)}
    return params, xs, s0, rng.standard_normal((T, B, H)).astype(dtype)


def _all_finite(module, params, xs, s0, g_hs):
    hs, s_T, cache = module.forward(params, xs, s0)
    grads, d_xs, d_s0 = module.backward(params, cache, g_hs)
    arrays = {"hs": hs, "d_xs": d_xs} | {f"{k}_T": v for k, v in s_T.items()} | grads \
        | {f"d_{k}0": v for k, v in d_s0.items()}
    return hs, s_T, [k for k, v in arrays.items() if not np.isfinite(v).all()]


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_slstm_float32_stays_finite_at_pre_activations_of_80(numpy_modules, c_modules, seed):
    m = numpy_modules["slstm"]
    problem = _extreme(m, np.float32, seed)
    for module in (m, c_modules["slstm", "portable"], c_modules["slstm", "blas"]):
        hs, s_T, bad = _all_finite(module, *problem)
        assert not bad, bad
        assert np.abs(hs).max() <= 1 + 1e-6 and s_T["n"].min() >= 1  # h = o c / n, c / n an average of z's
    want = m.forward({k: v.astype(np.float64) for k, v in problem[0].items()}, problem[1].astype(np.float64),
                     {k: v.astype(np.float64) for k, v in problem[2].items()})[0]
    assert rel_err(hs, want) < 1e-4

