"""A hand-written LSTM step in TensorFlow's BasicLSTMCell layout (convention `tensorflow`),
written for these tests: one example per row, kernel (D + H, 4H) acting on [x, h], bias (4H,),
gate blocks i, j, f, o (j the candidate) and forget_bias = 1.0 added to gate f.  `SLIP` plants
one mistake; None is the right code."""

import numpy as np

SLIP = None
FORGET_BIAS = 1.0


def _sigmoid(a):
    return 1 / (1 + np.exp(-a))


def lstm_step_forward(x, h_prev, c_prev, kernel, bias):
    H = h_prev.shape[1]
    a = np.hstack((x, h_prev)) @ kernel + bias
    forget = 0.0 if SLIP == "no_forget_bias" else FORGET_BIAS
    i, j = _sigmoid(a[:, :H]), np.tanh(a[:, H:2 * H])
    f, o = _sigmoid(a[:, 2 * H:3 * H] + forget), _sigmoid(a[:, 3 * H:])
    c = f * c_prev + i * j
    h = o * np.tanh(c)
    return h, c, (x, h_prev, c_prev, i, j, f, o, c, kernel)


def lstm_step_backward(d_h, d_c, cache):
    x, h_prev, c_prev, i, j, f, o, c, kernel = cache
    dc = d_c + d_h * o * (1 - np.tanh(c) ** 2)
    dj = dc * i * (1 - j ** 2)
    if SLIP == "sigma_for_tanh":
        dj = dc * i * j * (1 - j)
    da = np.hstack((dc * j * i * (1 - i), dj, dc * c_prev * f * (1 - f), d_h * np.tanh(c) * o * (1 - o)))
    dxh = da @ kernel.T
    D = x.shape[1]
    return dxh[:, :D], dxh[:, D:], dc * f, np.hstack((x, h_prev)).T @ da, da.sum(axis=0)
