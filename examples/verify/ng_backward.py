"""A hand-written LSTM step backward in the convention of Andrew Ng's Sequence Models
assignment, with one planted mistake: the candidate's derivative applies tanh to
cct, which is already tanh(.).  `lstm-symbolic verify-code` finds it and names the gate."""

import numpy as np


def lstm_cell_backward(da_next, dc_next, cache):
    (a_next, c_next, a_prev, c_prev, ft, it, cct, ot, xt, parameters) = cache
    n_a = a_next.shape[0]
    dc = dc_next + ot * (1 - np.tanh(c_next) ** 2) * da_next
    dot = da_next * np.tanh(c_next) * ot * (1 - ot)
    dcct = dc * it * (1 - np.tanh(cct) ** 2)  # planted mistake: should be (1 - cct ** 2)
    dit = dc * cct * it * (1 - it)
    dft = dc * c_prev * ft * (1 - ft)
    concat = np.concatenate((a_prev, xt), axis=0)
    gradients = {
        "dWf": dft @ concat.T, "dWi": dit @ concat.T, "dWc": dcct @ concat.T, "dWo": dot @ concat.T,
        "dbf": np.sum(dft, axis=1, keepdims=True), "dbi": np.sum(dit, axis=1, keepdims=True),
        "dbc": np.sum(dcct, axis=1, keepdims=True), "dbo": np.sum(dot, axis=1, keepdims=True),
    }
    W = {g: parameters[f"W{g}"] for g in "fico"}
    d = {"f": dft, "i": dit, "c": dcct, "o": dot}
    gradients["da_prev"] = sum(W[g][:, :n_a].T @ d[g] for g in "fico")
    gradients["dxt"] = sum(W[g][:, n_a:].T @ d[g] for g in "fico")
    gradients["dc_prev"] = dc * ft
    return gradients
