"""The built-in cell variants against independent implementations: Greff et al.'s appendix
(lstm-peephole), torch.nn.GRU (gru-reset-after), a hand-written GRU, finite differences."""

from __future__ import annotations

import re

import numpy as np
import pytest
import sympy as sp
from conftest import RTOL_FD, RTOL_TORCH_F64, rel_err

from lstm_symbolic import notation, pipeline
from lstm_symbolic.cli import main
from lstm_symbolic.core.components import NUMPY, evaluate, forward_env, numpy_value
from lstm_symbolic.core.jacobian import Diag, jacobian
from lstm_symbolic.gradcheck import check_module, random_problem

CELLS = [name for name, _ in pipeline.cell_summaries()]
VARIANTS = ("lstm-peephole", "lstm-cifg", "gru", "gru-reset-after", "rnn-tanh", "rnn-relu", "slstm", "mingru")
# Where a cell comes from, as `lstm-symbolic cells` prints it: a paper's year or a library.
REFERENCE = re.compile(r"\b(19|20)\d\d\b|PyTorch|torch\.nn|cuDNN")


def sigmoid(z):
    return 1.0 / (1.0 + np.exp(-z))


def test_every_variant_is_registered():
    assert set(VARIANTS) <= set(CELLS)


def test_cells_lists_every_built_in_with_its_reference(capsys):
    assert main(["cells"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [ln.split()[0] for ln in lines] == CELLS
    assert all(REFERENCE.search(ln) for ln in lines), [ln for ln in lines if not REFERENCE.search(ln)]


@pytest.mark.parametrize("name", CELLS)
def test_sequence_gradients_against_central_differences(numpy_modules, name):
    errors = check_module(numpy_modules[name], T=5, B=3, input_size=4, hidden_size=5, seed=11)
    assert set(errors) >= set(numpy_modules[name].PARAMS) | {"xs", "h0"}
    assert max(errors.values()) < RTOL_FD, errors


@pytest.mark.parametrize("name, params, states", [
    ("lstm-peephole", {f"{k}_{g}" for k in "WUb" for g in "fico"} | {"p_i", "p_f", "p_o"}, ("h", "c")),
    ("lstm-cifg", {f"{k}_{g}" for k in "WUb" for g in "ico"}, ("h", "c")),
    ("gru", {f"{k}_{g}" for k in "WUb" for g in "rzn"}, ("h",)),
    ("gru-reset-after", {f"{k}_{g}" for k in "WUb" for g in "rzn"} | {"b_hn"}, ("h",)),
    ("rnn-tanh", {"W", "U", "b"}, ("h",)),
    ("rnn-relu", {"W", "U", "b"}, ("h",)),
    ("slstm", {f"{k}_{g}" for k in "WUb" for g in "zifo"}, ("h", "c", "n", "m")),
    ("mingru", {"W_z", "W_h", "b_z", "b_h"}, ("h",)),
])
def test_parameters_and_states(numpy_modules, name, params, states):
    m = numpy_modules[name]
    assert set(m.PARAMS) == params and m.STATES == states
    assert all(m.PARAMS[p] == ("hidden",) for p in params if p.startswith(("b_", "p_")))


# ---- lstm-peephole: Greff et al., "LSTM: A Search Space Odyssey", appendix ---------------------
# Greff's names: block input z (ours c_tilde), gates i, f, o; W_* input, R_* recurrent weights.
GREFF = {"z": "c", "i": "i", "f": "f", "o": "o"}


def greff_forward(p, xs, y0, c0):
    """z̄ = W_z x + R_z y' + b_z; ī, f̄ add p ⊙ c'; c = z ⊙ i + c' ⊙ f; ō adds p_o ⊙ c; y = tanh(c) ⊙ o."""
    W, R, b = ({g: p[f"{k}_{ours}"] for g, ours in GREFF.items()} for k in "WUb")
    y, c, steps = y0, c0, []
    for x in xs:
        bar = {g: x @ W[g].T + y @ R[g].T + b[g] for g in "zifo"}
        bar["i"] = bar["i"] + p["p_i"] * c
        bar["f"] = bar["f"] + p["p_f"] * c
        z, i, f = np.tanh(bar["z"]), sigmoid(bar["i"]), sigmoid(bar["f"])
        c_new = z * i + c * f
        bar["o"] = bar["o"] + p["p_o"] * c_new
        o = sigmoid(bar["o"])
        steps.append(dict(x=x, y_prev=y, c_prev=c, z=z, i=i, f=f, o=o, c=c_new))
        y, c = np.tanh(c_new) * o, c_new
    return steps


def greff_backward(p, steps, deltas, d_yT, d_cT):
    """The appendix's BPTT, δ's of step t+1 carried explicitly; returns (grads, δx, δy0, δc0)."""
    W, R = ({g: p[f"{k}_{ours}"] for g, ours in GREFF.items()} for k in "WU")
    H = p["p_i"].shape[0]
    zero = np.zeros_like(steps[0]["c"])
    nxt = {g: zero for g in "zifo"} | {"f_gate": np.ones_like(zero)}  # δc^T = ... + d_cT
    d_c_next = d_cT
    grads = {name: np.zeros_like(v) for name, v in p.items()}
    d_xs = []
    for t in range(len(steps) - 1, -1, -1):
        s = steps[t]
        dy = deltas[t] + (d_yT if t == len(steps) - 1 else 0) + sum(nxt[g] @ R[g] for g in "zifo")
        d = {"o": dy * np.tanh(s["c"]) * s["o"] * (1 - s["o"])}
        dc = (dy * s["o"] * (1 - np.tanh(s["c"]) ** 2) + p["p_o"] * d["o"] + p["p_i"] * nxt["i"]
              + p["p_f"] * nxt["f"] + d_c_next * nxt["f_gate"])
        d["f"] = dc * s["c_prev"] * s["f"] * (1 - s["f"])
        d["i"] = dc * s["z"] * s["i"] * (1 - s["i"])
        d["z"] = dc * s["i"] * (1 - s["z"] ** 2)
        d_xs.append(sum(d[g] @ W[g] for g in "zifo"))
        for g, ours in GREFF.items():
            grads[f"W_{ours}"] += d[g].T @ s["x"]
            grads[f"U_{ours}"] += d[g].T @ s["y_prev"]
            grads[f"b_{ours}"] += d[g].sum(axis=0)
        grads["p_i"] += (s["c_prev"] * d["i"]).sum(axis=0)
        grads["p_f"] += (s["c_prev"] * d["f"]).sum(axis=0)
        grads["p_o"] += (s["c"] * d["o"]).sum(axis=0)
        nxt, d_c_next = d | {"f_gate": s["f"]}, dc
    d_y0 = sum(nxt[g] @ R[g] for g in "zifo")
    d_c0 = p["p_i"] * nxt["i"] + p["p_f"] * nxt["f"] + d_c_next * nxt["f_gate"]
    assert d_y0.shape[1] == H
    return grads, np.stack(d_xs[::-1]), d_y0, d_c0


def test_lstm_peephole_against_greff_appendix(numpy_modules):
    m = numpy_modules["lstm-peephole"]
    params, xs, s0, g_hs, g_T = random_problem(m, T=6, B=3, input_size=4, hidden_size=5, seed=21)
    params = {k: v * 2 for k, v in params.items()}  # larger peepholes: their paths matter
    hs, state_T, cache = m.forward(params, xs, s0)
    grads, d_xs, d_s0 = m.backward(params, cache, g_hs, g_T)

    steps = greff_forward(params, xs, s0["h"], s0["c"])
    want_hs = np.stack([np.tanh(s["c"]) * s["o"] for s in steps])
    assert rel_err(hs, want_hs) < 1e-13 and rel_err(state_T["c"], steps[-1]["c"]) < 1e-13
    want, want_dxs, want_dy0, want_dc0 = greff_backward(params, steps, g_hs, g_T["h"], g_T["c"])
    for name in m.PARAMS:
        assert rel_err(grads[name], want[name]) < RTOL_TORCH_F64, name
    assert rel_err(d_xs, want_dxs) < RTOL_TORCH_F64
    assert rel_err(d_s0["h"], want_dy0) < RTOL_TORCH_F64
    assert rel_err(d_s0["c"], want_dc0) < RTOL_TORCH_F64


# ---- GRUs ---------------------------------------------------------------------------------------
def gru_forward(p, xs, h0, reset_after):
    """Cho et al. (reset before U_n) or PyTorch's GRU (reset after), written out by hand."""
    h, hs = h0, []
    for x in xs:
        r = sigmoid(x @ p["W_r"].T + h @ p["U_r"].T + p["b_r"])
        z = sigmoid(x @ p["W_z"].T + h @ p["U_z"].T + p["b_z"])
        if reset_after:
            n = np.tanh(x @ p["W_n"].T + p["b_n"] + r * (h @ p["U_n"].T + p["b_hn"]))
        else:
            n = np.tanh(x @ p["W_n"].T + (r * h) @ p["U_n"].T + p["b_n"])
        h = (1 - z) * n + z * h
        hs.append(h)
    return np.stack(hs)


@pytest.mark.parametrize("name", ["gru", "gru-reset-after"])
def test_gru_forward_against_hand_written_numpy(numpy_modules, name):
    m = numpy_modules[name]
    params, xs, s0, _, _ = random_problem(m, T=5, seed=4)
    hs, state_T, _ = m.forward(params, xs, s0)
    want = gru_forward(params, xs, s0["h"], reset_after=name == "gru-reset-after")
    assert rel_err(hs, want) < 1e-13 and np.array_equal(state_T["h"], hs[-1])


def test_the_two_grus_differ(numpy_modules):
    params, xs, s0, _, _ = random_problem(numpy_modules["gru-reset-after"], T=3, seed=4)
    gru_params = {k: params[k] for k in numpy_modules["gru"].PARAMS}  # without b_hn: extra keys are refused
    before, _, _ = numpy_modules["gru"].forward(gru_params, xs, s0)
    after, _, _ = numpy_modules["gru-reset-after"].forward(params, xs, s0)
    assert rel_err(before, after) > 1e-3


TORCH_GRU = ("r", "z", "n")


def test_gru_reset_after_against_torch(numpy_modules):
    torch = pytest.importorskip("torch")
    m = numpy_modules["gru-reset-after"]
    T, B, I, H = 7, 4, 5, 3
    params, xs, s0, g_hs, g_T = random_problem(m, T=T, B=B, input_size=I, hidden_size=H, seed=8)
    hs, state_T, cache = m.forward(params, xs, s0)
    grads, d_xs, d_s0 = m.backward(params, cache, g_hs, g_T)

    net = torch.nn.GRU(I, H, dtype=torch.float64)
    b_ih = np.concatenate([params["b_r"] * 0.3, params["b_z"] * 0.6, params["b_n"]])
    b_hh = np.concatenate([params["b_r"] * 0.7, params["b_z"] * 0.4, params["b_hn"]])
    with torch.no_grad():
        net.weight_ih_l0.copy_(torch.from_numpy(np.concatenate([params[f"W_{g}"] for g in TORCH_GRU])))
        net.weight_hh_l0.copy_(torch.from_numpy(np.concatenate([params[f"U_{g}"] for g in TORCH_GRU])))
        net.bias_ih_l0.copy_(torch.from_numpy(b_ih))
        net.bias_hh_l0.copy_(torch.from_numpy(b_hh))
    x_t = torch.from_numpy(xs).requires_grad_()
    h0 = torch.from_numpy(s0["h"][None]).requires_grad_()
    out, h_n = net(x_t, h0)
    loss = (out * torch.from_numpy(g_hs)).sum() + (h_n[0] * torch.from_numpy(g_T["h"])).sum()
    loss.backward()

    assert rel_err(hs, out.detach().numpy()) < RTOL_TORCH_F64
    rows = {g: slice(k * H, (k + 1) * H) for k, g in enumerate(TORCH_GRU)}
    for g in TORCH_GRU:
        assert rel_err(grads[f"W_{g}"], net.weight_ih_l0.grad[rows[g]].numpy()) < RTOL_TORCH_F64
        assert rel_err(grads[f"U_{g}"], net.weight_hh_l0.grad[rows[g]].numpy()) < RTOL_TORCH_F64
        assert rel_err(grads[f"b_{g}"], net.bias_ih_l0.grad[rows[g]].numpy()) < RTOL_TORCH_F64
    assert rel_err(grads["b_hn"], net.bias_hh_l0.grad[rows["n"]].numpy()) < RTOL_TORCH_F64
    assert rel_err(d_xs, x_t.grad.numpy()) < RTOL_TORCH_F64
    assert rel_err(d_s0["h"], h0.grad[0].numpy()) < RTOL_TORCH_F64


# ---- step Jacobians against finite differences of one step ---------------------------------------
def _leaves(cell, rng, n):
    return {q.symbol: sp.Matrix(rng.uniform(-1, 1, (n, n if len(q.shape) == 2 else 1)))
            for q in cell.quantities if q.kind in ("input", "param")}


def _evaluate_jacobian(jac, env, n):
    total = sp.zeros(n, n)
    for term in jac.terms:
        m = sp.eye(n)
        for factor in term.factors:
            m = m * (sp.diag(*evaluate(factor.expr, env)) if isinstance(factor, Diag) else env[factor])
        total += m
    return np.array(total.evalf(), dtype=float)


def _central(fn, x0, n, eps=1e-6):
    cols = []
    for k in range(n):
        e = sp.zeros(n, 1)
        e[k] = eps
        cols.append(np.array(((fn(x0 + e) - fn(x0 - e)) / (2 * eps)).evalf(), dtype=float))
    return np.hstack(cols)


@pytest.mark.parametrize("name", ["gru", "gru-reset-after"])
def test_gru_jacobian_dh_dh_prev_against_finite_differences(name, rng):
    cell, n = pipeline.load_cell(name), 3
    leaves = _leaves(cell, rng, n)
    h0 = sp.Matrix(rng.uniform(-1, 1, (n, 1)))
    step = lambda h: forward_env(cell, {**leaves, sp.Symbol("h_prev"): h})  # noqa: E731
    jac = jacobian(cell, total=True)
    assert (jac.of, jac.wrt) == ("h", "h_prev") and "dh_t/dh_t-1" in pipeline.jacobian_label(cell, True)
    analytic = _evaluate_jacobian(jac, step(h0), n)
    fd = _central(lambda h: step(h)[sp.Symbol("h")], h0, n)
    assert np.allclose(analytic, fd, rtol=1e-7, atol=1e-9)


def test_lstm_peephole_total_jacobian_includes_the_output_gate_peephole(rng):
    """h_{t-1} = o_{t-1} ⊙ tanh(c_{t-1}) with o_{t-1} = σ(a + p_o ⊙ c_{t-1}): o_{t-1} moves too."""
    cell, n = pipeline.load_cell("lstm-peephole"), 3
    leaves = _leaves(cell, rng, n)
    a = sp.Matrix(rng.uniform(-1, 1, (n, 1)))  # the rest of z_o at step t-1, fixed
    p_o = leaves[sp.Symbol("p_o")]

    def o_of(c):
        return (a + p_o.multiply_elementwise(c)).applyfunc(lambda v: 1 / (1 + sp.exp(-v)))

    def step(c, h=None):
        h = o_of(c).multiply_elementwise(c.applyfunc(sp.tanh)) if h is None else h
        return forward_env(cell, {**leaves, sp.Symbol("c_prev"): c, sp.Symbol("h_prev"): h})

    c0 = sp.Matrix(rng.uniform(-1, 1, (n, 1)))
    env = step(c0)
    env[sp.Symbol("o_prev")] = o_of(c0)
    total = _evaluate_jacobian(jacobian(cell, total=True), env, n)
    assert np.allclose(total, _central(lambda c: step(c)[sp.Symbol("c")], c0, n), rtol=1e-7, atol=1e-9)
    h0 = env[sp.Symbol("h_prev")]
    partial = _evaluate_jacobian(jacobian(cell, total=False), env, n)
    assert np.allclose(partial, _central(lambda c: step(c, h0)[sp.Symbol("c")], c0, n), rtol=1e-7, atol=1e-9)
    without = _evaluate_jacobian(jacobian(cell, total=True), {**env, sp.Symbol("p_o"): sp.zeros(n, 1)}, n)
    assert not np.allclose(total, without, atol=1e-4)  # the p_o path is really there


def test_lstm_cifg_total_jacobian_against_finite_differences(rng):
    cell, n = pipeline.load_cell("lstm-cifg"), 3
    leaves = _leaves(cell, rng, n)
    o_prev = sp.Matrix(rng.uniform(0.1, 0.9, (n, 1)))

    def step(c):
        h = o_prev.multiply_elementwise(c.applyfunc(sp.tanh))
        return forward_env(cell, {**leaves, sp.Symbol("c_prev"): c, sp.Symbol("h_prev"): h})

    c0 = sp.Matrix(rng.uniform(-1, 1, (n, 1)))
    env = {**step(c0), sp.Symbol("o_prev"): o_prev}
    jac = jacobian(cell, total=True)
    assert [t.factors[1] for t in jac.terms if len(t.factors) == 3] == list(sp.symbols("U_i U_c"))
    analytic = _evaluate_jacobian(jac, env, n)
    assert np.allclose(analytic, _central(lambda c: step(c)[sp.Symbol("c")], c0, n), rtol=1e-7, atol=1e-9)


@pytest.mark.parametrize("name, needle", [("gru", "dh/dh_prev = diag(z)\n"),
                                          ("gru-reset-after", "dh_t/dh_t-1 (the output is the state"),
                                          ("lstm-peephole", "p_o*(1 - o_prev)")])
def test_cli_jacobian_of_the_variants(capsys, name, needle):
    assert main(["jacobian", name, "--total"]) == 0
    assert needle in capsys.readouterr().out


def test_slstm_total_jacobian_is_the_partial_one_and_matches_finite_differences(rng):
    """m is the memory; h_{t-1} = o c / n does not move with m_{t-1} (c_{t-1} and n_{t-1} both scale by
    exp(-m_{t-1})), so the terms through h_{t-1}, written in stored values of steps t-1 and t-2, vanish."""
    cell, n, S = pipeline.load_cell("slstm"), 3, sp.Symbol
    leaves = {q.symbol: rng.uniform(-1, 1, (n, n if len(q.shape) == 2 else 1))
              for q in cell.quantities if q.kind in ("input", "param")}
    before = {S(f"{s}_prev"): rng.uniform(-1, 1, (n, 1)) for s in "hcm"} | {S("n_prev"): rng.uniform(0.5, 1.5, (n, 1))}
    env1 = forward_env(cell, {**leaves, **before}, NUMPY)  # step t-1 (the same x: it does not matter here)
    c_pp, n_pp, m_pp = before[S("c_prev")], before[S("n_prev")], before[S("m_prev")]

    def step(m):
        """m_t from m_{t-1} = m, with h_{t-1} recomputed from it and c_{t-1}, n_{t-1} held at step t."""
        i, f = np.exp(env1[S("i_pre")] - m), np.exp(env1[S("log_f")] + m_pp - m)
        h = env1[S("o")] * (f * c_pp + i * env1[S("z")]) / (f * n_pp + i)
        return forward_env(cell, {**leaves, S("h_prev"): h, S("c_prev"): env1[S("c")], S("n_prev"): env1[S("n")],
                                  S("m_prev"): m}, NUMPY)

    m0 = env1[S("m")]
    env = {**step(m0), S("c_prev_prev"): c_pp, S("n_prev_prev"): n_pp}
    env |= {S(f"{q.name}_prev"): env1[q.symbol] for q in cell.quantities
            if q.kind == "intermediate" and q.name not in cell.states}
    jac = jacobian(cell, total=True)
    assert jac.terms == jacobian(cell, total=False).terms
    assert notation.get("default").latex("c_prev_prev") == "c_{t-2}"  # step t-1's own inputs, when they stay
    analytic = sum(np.linalg.multi_dot([np.eye(n)] * 2 + [np.diag(numpy_value(f.expr, env)[:, 0])
                                                          if isinstance(f, Diag) else env[f] for f in t.factors])
                   for t in jac.terms)
    eps, cols = 1e-6, []
    for k in range(n):
        e = np.zeros((n, 1))
        e[k] = eps
        cols.append((step(m0 + e)[S("m")] - step(m0 - e)[S("m")]) / (2 * eps))
    assert np.allclose(analytic, np.hstack(cols), rtol=1e-6, atol=1e-8)
