"""A hand-written LSTM in the style of the Sequence Models course (convention `ng`), written for
these tests: one example per column, per-gate weights on [a_prev; x], caches as tuples.
`SLIP` plants one mistake (the tests rewrite that line); None is the right code."""

import numpy as np

SLIP = None


def _sigmoid(z):
    return 1 / (1 + np.exp(-z))


def lstm_cell_forward(xt, a_prev, c_prev, parameters):
    p = parameters
    concat = np.concatenate((a_prev, xt), axis=0)
    ft = _sigmoid(p["Wf"] @ concat + p["bf"])
    it = _sigmoid(p["Wi"] @ concat + p["bi"])
    cct = np.tanh(p["Wc"] @ concat + p["bc"])
    ot = _sigmoid(p["Wo"] @ concat + p["bo"])
    c_next = ft * c_prev + it * cct
    a_next = ot * np.tanh(c_next)
    scores = p["Wy"] @ a_next + p["by"]
    yt = np.exp(scores) / np.sum(np.exp(scores), axis=0)
    return a_next, c_next, yt, (a_next, c_next, a_prev, c_prev, ft, it, cct, ot, xt, parameters)


def lstm_cell_backward(da_next, dc_next, cache):
    a_next, c_next, a_prev, c_prev, ft, it, cct, ot, xt, p = cache
    n_a = a_next.shape[0]
    dc = dc_next + da_next * ot * (1 - np.tanh(c_next) ** 2)
    dot = da_next * np.tanh(c_next) * ot * (1 - ot)
    dcct = dc * it * (1 - cct ** 2)
    if SLIP == "sigma_for_tanh":
        dcct = dc * it * cct * (1 - cct)
    dit = dc * cct * it * (1 - it)
    dft = dc * c_prev * ft * (1 - ft)
    if SLIP == "missing_derivative":
        dft = dc * c_prev * ft
    concat = np.concatenate((a_prev, xt), axis=0)
    d = {"f": dft, "i": dit, "c": dcct, "o": dot}
    grads = {f"dW{g}": d[g] @ concat.T for g in "fico"}
    grads.update({f"db{g}": np.sum(d[g], axis=1, keepdims=True) for g in "fico"})
    grads["da_prev"] = sum(p[f"W{g}"][:, :n_a].T @ d[g] for g in "fico")
    grads["dxt"] = sum(p[f"W{g}"][:, n_a:].T @ d[g] for g in "fico")
    grads["dc_prev"] = dc * ft
    if SLIP == "dc_before_update":
        grads["dc_prev"] = dc_next * ft
    return grads


def lstm_forward(x, a0, parameters):
    n_x, m, T_x = x.shape
    n_a = a0.shape[0]
    a = np.zeros((n_a, m, T_x))
    c = np.zeros((n_a, m, T_x))
    y = np.zeros((parameters["Wy"].shape[0], m, T_x))
    a_next, c_next, caches = a0, np.zeros_like(a0), []
    for t in range(T_x):
        a_next, c_next, yt, cache = lstm_cell_forward(x[:, :, t], a_next, c_next, parameters)
        a[:, :, t], c[:, :, t], y[:, :, t] = a_next, c_next, yt
        caches.append(cache)
    return a, y, c, (caches, x)


def lstm_backward(da, caches):
    caches, x = caches
    n_a, m, T_x = da.shape
    dx = np.zeros((x.shape[0], m, T_x))
    da_prevt = np.zeros((n_a, m))
    dc_prevt = np.zeros((n_a, m))
    total = None
    for t in reversed(range(T_x)):
        g = lstm_cell_backward(da[:, :, t] + da_prevt, dc_prevt, caches[t])
        dx[:, :, t] = g["dxt"]
        if SLIP != "no_carry_h":
            da_prevt = g["da_prev"]
        if SLIP != "no_carry_c":
            dc_prevt = g["dc_prev"]
        step = {k: v for k, v in g.items() if k[:2] in ("dW", "db")}
        if total is None or SLIP == "last_step_weights":
            total = step
        else:
            total = {k: total[k] + step[k] for k in total}
    return {"dx": dx, "da0": da_prevt, **total}
