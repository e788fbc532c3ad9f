"""A hand-written LSTM step with one weight per gate and side, written for these tests: examples
are rows, W_x<g> is (input, hidden), W_h<g> (hidden, hidden), b_<g> (hidden,); the backward takes
what the forward returned as its cache.  Checked with examples/verify/per-gate.toml."""

import numpy as np

GATES = ("f", "i", "g", "o")


def _sigmoid(z):
    return 1 / (1 + np.exp(-z))


def step_forward(x, h, c, p):
    z = {g: x @ p["W_x" + g] + h @ p["W_h" + g] + p["b_" + g] for g in GATES}
    f, i, o, g = _sigmoid(z["f"]), _sigmoid(z["i"]), _sigmoid(z["o"]), np.tanh(z["g"])
    c_new = f * c + i * g
    h_new = o * np.tanh(c_new)
    return h_new, c_new, dict(x=x, h=h, c=c, f=f, i=i, o=o, g=g, c_new=c_new, p=p)


def step_backward(dh, dc_next, cache):
    k = cache
    tc = np.tanh(k["c_new"])
    dc = dc_next + dh * k["o"] * (1 - tc ** 2)
    dz = {"f": dc * k["c"] * k["f"] * (1 - k["f"]), "i": dc * k["g"] * k["i"] * (1 - k["i"]),
          "g": dc * k["i"] * (1 - k["g"] ** 2), "o": dh * tc * k["o"] * (1 - k["o"])}
    grads = {"x": sum(dz[g] @ k["p"]["W_x" + g].T for g in GATES),
             "h": sum(dz[g] @ k["p"]["W_h" + g].T for g in GATES), "c": dc * k["f"]}
    for g in GATES:
        grads["W_x" + g] = k["x"].T @ dz[g]
        grads["W_h" + g] = k["h"].T @ dz[g]
        grads["b_" + g] = dz[g].sum(axis=0)
    return grads
