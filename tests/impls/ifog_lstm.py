"""A hand-written batched LSTM with one weight matrix, written for these tests in the style of
Karpathy's gist: examples are rows, a sequence is (T, batch, input), and WLSTM is
(1 + input + hidden, 4 * hidden): its first row the bias, then the rows for x, then for h; its
columns the gate blocks i, f, o, g.  Checked with the convention file examples/verify/ifog.toml."""

import numpy as np


def _sigmoid(z):
    return 1 / (1 + np.exp(-z))


def ifog_forward(X, WLSTM, c0, h0):
    T, B, D = X.shape
    H = WLSTM.shape[1] // 4
    Hin = np.zeros((T, B, 1 + D + H))
    IFOG = np.zeros((T, B, 4 * H))
    C, Hout = np.zeros((T, B, H)), np.zeros((T, B, H))
    prev_h, prev_c = h0, c0
    for t in range(T):
        Hin[t] = np.hstack((np.ones((B, 1)), X[t], prev_h))
        a = Hin[t] @ WLSTM
        IFOG[t, :, :3 * H] = _sigmoid(a[:, :3 * H])
        IFOG[t, :, 3 * H:] = np.tanh(a[:, 3 * H:])
        i, f, o, g = (IFOG[t, :, k * H:(k + 1) * H] for k in range(4))
        C[t] = f * prev_c + i * g
        Hout[t] = o * np.tanh(C[t])
        prev_h, prev_c = Hout[t], C[t]
    return Hout, C[-1], Hout[-1], (Hin, IFOG, C, c0, WLSTM)


def ifog_backward(dHout, cache, dcn, dhn):
    Hin, IFOG, C, c0, WLSTM = cache
    T, B, H = dHout.shape
    D = Hin.shape[2] - 1 - H
    dHin = np.zeros_like(Hin)
    dW = np.zeros_like(WLSTM)
    dh, dc = dhn.copy(), dcn.copy()
    for t in reversed(range(T)):
        i, f, o, g = (IFOG[t, :, k * H:(k + 1) * H] for k in range(4))
        dh = dh + dHout[t]
        tc = np.tanh(C[t])
        dc = dc + dh * o * (1 - tc ** 2)
        prev_c = C[t - 1] if t > 0 else c0
        da = np.hstack((dc * g * i * (1 - i), dc * prev_c * f * (1 - f), dh * tc * o * (1 - o),
                        dc * i * (1 - g ** 2)))
        dW += Hin[t].T @ da
        dHin[t] = da @ WLSTM.T
        dh, dc = dHin[t, :, 1 + D:], dc * f
    return dHin[:, :, 1:1 + D], dW, dc, dh
