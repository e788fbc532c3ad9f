"""One LSTM step in PyTorch's weight layout (`verify-code FILE --convention pytorch`): one example
per row, weight_ih (4H, D), weight_hh (4H, H), bias_ih and bias_hh (4H,), gate blocks i, f, g, o.
It has a planted mistake: the backward stacks the gate gradients f, i where i, f belong."""

import numpy as np


def _sigmoid(a):
    return 1 / (1 + np.exp(-a))


def lstm_step_forward(x, h_prev, c_prev, weight_ih, weight_hh, bias_ih, bias_hh):
    H = h_prev.shape[1]
    a = x @ weight_ih.T + bias_ih + h_prev @ weight_hh.T + bias_hh
    i, f, g, o = _sigmoid(a[:, :H]), _sigmoid(a[:, H:2 * H]), np.tanh(a[:, 2 * H:3 * H]), _sigmoid(a[:, 3 * H:])
    c = f * c_prev + i * g
    h = o * np.tanh(c)
    return h, c, (x, h_prev, c_prev, i, f, g, o, c, weight_ih, weight_hh)


def lstm_step_backward(d_h, d_c, cache):
    x, h_prev, c_prev, i, f, g, o, c, weight_ih, weight_hh = cache
    dc = d_c + d_h * o * (1 - np.tanh(c) ** 2)
    di, df = dc * g * i * (1 - i), dc * c_prev * f * (1 - f)
    dg, do = dc * i * (1 - g ** 2), d_h * np.tanh(c) * o * (1 - o)
    da = np.hstack((df, di, dg, do))  # the mistake: i, f belong here
    db = da.sum(axis=0)
    return da @ weight_ih, da @ weight_hh, dc * f, da.T @ x, da.T @ h_prev, db, db
