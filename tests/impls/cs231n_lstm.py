"""A hand-written LSTM in the style of the CS231n assignment (convention `cs231n`), written for
these tests: one example per row, stacked weights Wx (D, 4H), Wh (H, 4H), b (4H,), gate blocks
in the order i, f, o, g (`ORDER`).  `SLIP` plants one mistake; None is the right code."""

import numpy as np

SLIP = None
ORDER = "ifog"


def _sigmoid(z):
    return 1 / (1 + np.exp(-z))


def lstm_step_forward(x, prev_h, prev_c, Wx, Wh, b):
    H = prev_h.shape[1]
    a = x @ Wx + prev_h @ Wh + b
    block = {k: a[:, n * H:(n + 1) * H] for n, k in enumerate(ORDER)}
    i, f, o, g = _sigmoid(block["i"]), _sigmoid(block["f"]), _sigmoid(block["o"]), np.tanh(block["g"])
    next_c = f * prev_c + i * g
    next_h = o * np.tanh(next_c)
    return next_h, next_c, (x, prev_h, prev_c, Wx, Wh, i, f, o, g, next_c)


def lstm_step_backward(dnext_h, dnext_c, cache):
    x, prev_h, prev_c, Wx, Wh, i, f, o, g, next_c = cache
    tc = np.tanh(next_c)
    dc = dnext_c + dnext_h * o * (1 - tc ** 2)
    di, df, do = dc * g * i * (1 - i), dc * prev_c * f * (1 - f), dnext_h * tc * o * (1 - o)
    dg = dc * i * (1 - g ** 2)
    if SLIP == "sigma_for_tanh":
        dg = dc * i * g * (1 - g)
    if SLIP == "missing_derivative":
        df = dc * prev_c * f
    d = {"i": di, "f": df, "o": do, "g": dg}
    if SLIP == "swap_blocks":
        d["i"], d["f"] = df, di
    da = np.hstack([d[k] for k in ORDER])
    dWx, dWh, db = x.T @ da, prev_h.T @ da, da.sum(axis=0)
    if SLIP == "wrong_operand":
        dWh = prev_c.T @ da
    if SLIP == "transposed":
        dWx = dWx.T
    dprev_c = dc * f
    if SLIP == "dc_before_update":
        dprev_c = dnext_c * f
    return da @ Wx.T, da @ Wh.T, dprev_c, dWx, dWh, db


def lstm_forward(x, h0, Wx, Wh, b):
    N, T, _ = x.shape
    h = np.zeros((N, T, h0.shape[1]))
    prev_h, prev_c, caches = h0, np.zeros_like(h0), []
    for t in range(T):
        prev_h, prev_c, cache = lstm_step_forward(x[:, t], prev_h, prev_c, Wx, Wh, b)
        h[:, t] = prev_h
        caches.append(cache)
    return h, caches


def lstm_backward(dh, cache):
    N, T, H = dh.shape
    dx = np.zeros((N, T, cache[0][0].shape[1]))
    dprev_h, dprev_c = np.zeros((N, H)), np.zeros((N, H))
    dWx = dWh = db = 0
    for t in reversed(range(T)):
        dxt, dh_t, dc_t, dWx_t, dWh_t, db_t = lstm_step_backward(dh[:, t] + dprev_h, dprev_c, cache[t])
        dx[:, t] = dxt
        if SLIP != "no_carry_h":
            dprev_h = dh_t
        if SLIP != "no_carry_c":
            dprev_c = dc_t
        if SLIP == "last_step_weights":
            dWx, dWh, db = dWx_t, dWh_t, db_t
        else:
            dWx, dWh, db = dWx + dWx_t, dWh + dWh_t, db + db_t
    return dx, dprev_h, dWx, dWh, db
