"""A hand-written GRU over a sequence in Keras' weight layout (convention `keras`, cell `gru`: a
GRU with reset_after=False), written for these tests: xs (batch, T, D), kernel (D, 3H),
recurrent_kernel (H, 3H), bias (3H,), gate blocks z, r, h; h = z * h_prev + (1 - z) * hh.
`SLIP` plants one mistake; None is the right code."""

import numpy as np

SLIP = None


def _sigmoid(a):
    return 1 / (1 + np.exp(-a))


def gru_forward(xs, h0, kernel, recurrent_kernel, bias):
    H = h0.shape[1]
    h, hs, steps = h0, [], []
    for t in range(xs.shape[1]):
        x = xs[:, t]
        ax, ah = x @ kernel + bias, h @ recurrent_kernel
        z = _sigmoid(ax[:, :H] + ah[:, :H])
        r = _sigmoid(ax[:, H:2 * H] + ah[:, H:2 * H])
        hh = np.tanh(ax[:, 2 * H:] + (r * h) @ recurrent_kernel[:, 2 * H:])
        steps.append((x, h, z, r, hh))
        h = z * hh + (1 - z) * h if SLIP == "z_flipped" else z * h + (1 - z) * hh
        hs.append(h)
    return np.stack(hs, axis=1), (steps, kernel, recurrent_kernel)


def gru_backward(d_hs, cache):
    steps, kernel, rec = cache
    H = rec.shape[0]
    dxs, dk, drk, db = [], 0, 0, 0
    dh_next = np.zeros_like(d_hs[:, 0])
    for t in reversed(range(len(steps))):
        x, h, z, r, hh = steps[t]
        dh = d_hs[:, t] + dh_next
        dhh = dh * (1 - z) * (1 - hh ** 2)
        dz = dh * (h - hh) * z * (1 - z)
        drh = dhh @ rec[:, 2 * H:].T
        dr = drh * h * r * (1 - r)
        da = np.hstack((dz, dr, dhh))
        dxs.insert(0, da @ kernel.T)
        dk = dk + x.T @ da
        drk = drk + np.hstack((h.T @ dz, h.T @ dr, (r * h).T @ dhh))
        db = db + da.sum(axis=0)
        dh_next = dh * z + drh * r + np.hstack((dz, dr)) @ rec[:, :2 * H].T
    return np.stack(dxs, axis=1), dh_next, dk, drk, db
