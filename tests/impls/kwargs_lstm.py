"""A hand-written LSTM step backward in the `default` notation (convention `kwargs`: every input
of the notation as a keyword argument, a dict of gradients back), written for these tests; one
example per column.  `SLIP` plants one mistake; None is the right code."""

import numpy as np

SLIP = None


def lstm_backward(x, h_prev, c_prev, W_f, W_i, W_c, W_o, U_f, U_i, U_c, U_o, f, i, c_tilde, o, c, d_h,
                  d_c_next, **_):
    d_c = d_c_next + d_h * o * (1 - np.tanh(c) ** 2)
    d_c_prev = d_c * f
    if SLIP == "dc_before_update":
        d_c_prev = d_c_next * f
    if SLIP == "forgets_next":
        d_c_prev = (d_c - d_c_next) * f
    d = {"f": d_c * c_prev * f * (1 - f), "i": d_c * c_tilde * i * (1 - i),
         "c": d_c * i * (1 - c_tilde ** 2), "o": d_h * np.tanh(c) * o * (1 - o)}
    if SLIP == "sigma_for_tanh":
        d["c"] = d_c * i * c_tilde * (1 - c_tilde)
    if SLIP == "missing_derivative":
        d["o"] = d_h * np.tanh(c) * o
    if SLIP == "swap_gates":
        d["f"], d["i"] = d["i"], d["f"]
    W, U = {"f": W_f, "i": W_i, "c": W_c, "o": W_o}, {"f": U_f, "i": U_i, "c": U_c, "o": U_o}
    out = {"d_c_prev": d_c_prev, "d_x": sum(W[g].T @ d[g] for g in d), "d_h_prev": sum(U[g].T @ d[g] for g in d)}
    for g in d:
        out[f"d_W_{g}"] = d[g] @ x.T
        out[f"d_U_{g}"] = d[g] @ (c_prev if SLIP == "wrong_operand" else h_prev).T
        out[f"d_b_{g}"] = d[g].sum(axis=1, keepdims=True)
    if SLIP == "transposed":
        out["d_W_f"] = out["d_W_f"].T
    return out
