"""A hand-written LSTM in PyTorch's weight layout (convention `pytorch`), written for these tests:
one example per row, weight_ih (4H, D), weight_hh (4H, H), bias_ih and bias_hh (4H,), gate blocks
i, f, g, o (g the candidate), a sequence (T, batch, D).  `SLIP` plants one mistake; None is the
right code."""

import numpy as np

SLIP = None


def _sigmoid(a):
    return 1 / (1 + np.exp(-a))


def lstm_step_forward(x, h_prev, c_prev, weight_ih, weight_hh, bias_ih, bias_hh):
    H = h_prev.shape[1]
    a = x @ weight_ih.T + bias_ih + h_prev @ weight_hh.T + (0 if SLIP == "one_bias" else bias_hh)
    i, f = _sigmoid(a[:, :H]), _sigmoid(a[:, H:2 * H])
    g, o = np.tanh(a[:, 2 * H:3 * H]), _sigmoid(a[:, 3 * H:])
    c = f * c_prev + i * g
    h = o * np.tanh(c)
    return h, c, (x, h_prev, c_prev, i, f, g, o, c, weight_ih, weight_hh)


def lstm_step_backward(d_h, d_c, cache):
    x, h_prev, c_prev, i, f, g, o, c, weight_ih, weight_hh = cache
    dc = d_c + d_h * o * (1 - np.tanh(c) ** 2)
    di, df = dc * g * i * (1 - i), dc * c_prev * f * (1 - f)
    dg, do = dc * i * (1 - g ** 2), d_h * np.tanh(c) * o * (1 - o)
    if SLIP == "swap_blocks":
        di, df = df, di
    da = np.hstack((di, df, dg, do))
    db = da.sum(axis=0)
    return da @ weight_ih, da @ weight_hh, dc * f, da.T @ x, da.T @ h_prev, db, db


def lstm_forward(xs, h0, c0, weight_ih, weight_hh, bias_ih, bias_hh):
    h, c, hs, caches = h0, c0, [], []
    for x in xs:
        h, c, cache = lstm_step_forward(x, h, c, weight_ih, weight_hh, bias_ih, bias_hh)
        hs.append(h)
        caches.append(cache)
    return np.stack(hs), caches


def lstm_backward(d_hs, caches):
    dh, dc = np.zeros_like(d_hs[0]), np.zeros_like(d_hs[0])
    dxs, total = [], None
    for t in reversed(range(len(caches))):
        dx, dh, dc_prev, *grads = lstm_step_backward(dh + d_hs[t], dc, caches[t])
        dc = dc if SLIP == "c_not_carried" else dc_prev
        dxs.insert(0, dx)
        total = grads if total is None else [a + b for a, b in zip(total, grads, strict=True)]
    return (np.stack(dxs), dh, dc, *total)
