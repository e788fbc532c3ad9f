"""A hand-written LSTM over a sequence in PyTorch's weight layout, written for these tests:
weight_ih (4H, input), weight_hh (4H, hidden), two biases (4H,), gate blocks i, f, g, o; xs is
(T, batch, input).  Checked with examples/verify/torch-layout.toml.  `SLIP = "one_bias"` forgets
bias_hh."""

import numpy as np

SLIP = None


def _sigmoid(a):
    return 1 / (1 + np.exp(-a))


def lstm_seq_forward(xs, h0, c0, weight_ih, weight_hh, bias_ih, bias_hh):
    H = h0.shape[1]
    h, c, hs, steps = h0, c0, [], []
    for x in xs:
        a = x @ weight_ih.T + bias_ih + h @ weight_hh.T + (0 if SLIP == "one_bias" else bias_hh)
        i, f, g, o = _sigmoid(a[:, :H]), _sigmoid(a[:, H:2 * H]), np.tanh(a[:, 2 * H:3 * H]), _sigmoid(a[:, 3 * H:])
        steps.append((x, h, c, i, f, g, o))
        c = f * c + i * g
        h = o * np.tanh(c)
        hs.append(h)
    return np.stack(hs), (h, c), (steps, weight_ih, weight_hh)


def lstm_seq_backward(d_hs, cache):
    steps, weight_ih, weight_hh = cache
    dW_ih, dW_hh, db = np.zeros_like(weight_ih), np.zeros_like(weight_hh), 0
    dxs = np.zeros((len(steps), *steps[0][0].shape))
    dh, dc = np.zeros_like(d_hs[0]), np.zeros_like(d_hs[0])
    for t in reversed(range(len(steps))):
        x, h_prev, c_prev, i, f, g, o = steps[t]
        c = f * c_prev + i * g
        dh = dh + d_hs[t]
        dc = dc + dh * o * (1 - np.tanh(c) ** 2)
        da = np.hstack((dc * g * i * (1 - i), dc * c_prev * f * (1 - f), dc * i * (1 - g ** 2),
                        dh * np.tanh(c) * o * (1 - o)))
        dxs[t] = da @ weight_ih
        dW_ih += da.T @ x
        dW_hh += da.T @ h_prev
        db = db + da.sum(axis=0)
        dh, dc = da @ weight_hh, dc * f
    return dxs, dh, dc, dW_ih, dW_hh, db, db
