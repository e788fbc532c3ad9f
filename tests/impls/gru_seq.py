"""A hand-written GRU over a whole sequence, written for these tests: examples are rows, xs is
(T, batch, input), Wx (input, 3H), Wh (hidden, 3H), b (3H,), gate blocks r, z, n;
h = (1 - z) * n + z * h_prev with n = tanh(x Wx_n + (r * h_prev) Wh_n + b_n).  `SLIP` plants one
mistake.  Checked with the convention file tests/impls/gru.toml and --cell gru."""

import numpy as np

SLIP = None


def _sigmoid(a):
    return 1 / (1 + np.exp(-a))


def gru_forward(xs, h0, Wx, Wh, b):
    H = h0.shape[1]
    hs, cache, h = [], [], h0
    for x in xs:
        ax, ah = x @ Wx + b, h @ Wh
        r = _sigmoid(ax[:, :H] + ah[:, :H])
        z = _sigmoid(ax[:, H:2 * H] + ah[:, H:2 * H])
        n = np.tanh(ax[:, 2 * H:] + (r * h) @ Wh[:, 2 * H:])
        cache.append((x, h, r, z, n))
        h = (1 - z) * n + z * h
        hs.append(h)
    return np.stack(hs), (cache, Wx, Wh)


def gru_backward(dhs, cache):
    steps, Wx, Wh = cache
    H = dhs.shape[2]
    dxs, dWx, dWh, db = np.zeros((len(steps), *steps[0][0].shape)), 0, 0, 0
    dh_next = np.zeros_like(dhs[0])
    for t in reversed(range(len(steps))):
        x, h, r, z, n = steps[t]
        dh = dhs[t] + dh_next
        dn = dh * (1 - z) * (1 - n ** 2)
        dz = dh * (h - n) * z * (1 - z)
        drh = dn @ Wh[:, 2 * H:].T
        dr = drh * h * r * (1 - r)
        dgates = np.hstack((dr, dz, dn))
        dxs[t] = dgates @ Wx.T
        dWx = dWx + x.T @ dgates
        dWh_t = np.hstack((h.T @ dr, h.T @ dz, (r * h).T @ dn))
        dWh = dWh + dWh_t
        db = db + dgates.sum(axis=0)
        dh_next = dh * z + drh * r + np.hstack((dr, dz)) @ Wh[:, :2 * H].T
        if SLIP == "no_carry_h":
            dh_next = 0 * dh_next
    return dxs, dh_next, dWx, dWh, db
