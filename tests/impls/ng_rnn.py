"""A hand-written RNN in the style of the Sequence Models course (convention `ng`, rnn_*), written
for these tests: one example per column, a_next = tanh(Wax x + Waa a_prev + ba).
`SLIP` plants one mistake; None is the right code."""

import numpy as np

SLIP = None


def rnn_cell_forward(xt, a_prev, parameters):
    p = parameters
    a_next = np.tanh(p["Wax"] @ xt + p["Waa"] @ a_prev + p["ba"])
    scores = p["Wya"] @ a_next + p["by"]
    yt = np.exp(scores) / np.exp(scores).sum(axis=0)
    return a_next, yt, (a_next, a_prev, xt, parameters)


def rnn_cell_backward(da_next, cache):
    a_next, a_prev, xt, p = cache
    dz = da_next * (1 - a_next ** 2)
    if SLIP == "sigma_for_tanh":
        dz = da_next * a_next * (1 - a_next)
    return {"dxt": p["Wax"].T @ dz, "da_prev": p["Waa"].T @ dz, "dWax": dz @ xt.T, "dWaa": dz @ a_prev.T,
            "dba": dz.sum(axis=1, keepdims=True)}


def rnn_forward(x, a0, parameters):
    n_x, m, T = x.shape
    a = np.zeros((a0.shape[0], m, T))
    y = np.zeros((parameters["Wya"].shape[0], m, T))
    a_next, caches = a0, []
    for t in range(T):
        a_next, yt, cache = rnn_cell_forward(x[:, :, t], a_next, parameters)
        a[:, :, t], y[:, :, t] = a_next, yt
        caches.append(cache)
    return a, y, (caches, x)


def rnn_backward(da, caches):
    caches, x = caches
    n_a, m, T = da.shape
    dx = np.zeros((x.shape[0], m, T))
    da_prevt = np.zeros((n_a, m))
    total = {"dWax": 0, "dWaa": 0, "dba": 0}
    for t in reversed(range(T)):
        g = rnn_cell_backward(da[:, :, t] + da_prevt, caches[t])
        dx[:, :, t] = g["dxt"]
        if SLIP != "no_carry_h":
            da_prevt = g["da_prev"]
        total = {k: total[k] + g[k] for k in total}
    return {"dx": dx, "da0": da_prevt, **total}
