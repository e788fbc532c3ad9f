"""A hand-written NumPy BPTT of the LSTM: the straightforward per-gate version.

What a competent user writes from the textbook equations (seed 001, default notation):
one matrix product per gate and operand, the gates kept per step in a list, the weight
gradients accumulated step by step.  The benchmark's reference for "what you would write
instead"; it takes the same parameter dictionary as the generated module.
"""

from __future__ import annotations

import numpy as np

GATES = ("f", "i", "c", "o")


def sigmoid(z):
    return 1.0 / (1.0 + np.exp(-z))


def forward(params, xs, state0=None):
    """xs (T, B, input) -> hs (T, B, hidden), (h_T, c_T), cache."""
    T, B, _ = xs.shape
    H = params["W_f"].shape[0]
    h = np.zeros((B, H), xs.dtype) if state0 is None else state0["h"]
    c = np.zeros((B, H), xs.dtype) if state0 is None else state0["c"]
    hs, steps = [], []
    for t in range(T):
        x = xs[t]
        f = sigmoid(x @ params["W_f"].T + h @ params["U_f"].T + params["b_f"])
        i = sigmoid(x @ params["W_i"].T + h @ params["U_i"].T + params["b_i"])
        g = np.tanh(x @ params["W_c"].T + h @ params["U_c"].T + params["b_c"])
        o = sigmoid(x @ params["W_o"].T + h @ params["U_o"].T + params["b_o"])
        c_new = f * c + i * g
        tc = np.tanh(c_new)
        h_new = o * tc
        steps.append((x, h, c, f, i, g, o, tc))
        h, c = h_new, c_new
        hs.append(h)
    return np.stack(hs), {"h": h, "c": c}, steps


def backward(params, steps, d_hs, d_state_T=None):
    """BPTT: (grads, d_xs, d_state0) given d_hs (T, B, hidden)."""
    grads = {k: np.zeros_like(v) for k, v in params.items()}
    dh_next = np.zeros_like(d_hs[0]) if d_state_T is None else d_state_T["h"]
    dc_next = np.zeros_like(d_hs[0]) if d_state_T is None else d_state_T["c"]
    d_xs = []
    for t in reversed(range(len(steps))):
        x, h_prev, c_prev, f, i, g, o, tc = steps[t]
        dh = d_hs[t] + dh_next
        do = dh * tc
        dc = dc_next + dh * o * (1 - tc**2)
        dz = {
            "f": dc * c_prev * f * (1 - f),
            "i": dc * g * i * (1 - i),
            "c": dc * i * (1 - g**2),
            "o": do * o * (1 - o),
        }
        dx = np.zeros_like(x)
        dh_next = np.zeros_like(h_prev)
        for k in GATES:
            grads[f"W_{k}"] += dz[k].T @ x
            grads[f"U_{k}"] += dz[k].T @ h_prev
            grads[f"b_{k}"] += dz[k].sum(axis=0)
            dx += dz[k] @ params[f"W_{k}"]
            dh_next += dz[k] @ params[f"U_{k}"]
        dc_next = dc * f
        d_xs.append(dx)
    return grads, np.stack(d_xs[::-1]), {"h": dh_next, "c": dc_next}
