"""Framework weight layouts: exact round trips, PyTorch autograd, and the formulas that Keras,
ONNX and TensorFlow print in their documentation, written out here in NumPy."""

from __future__ import annotations

import ast
from pathlib import Path

import numpy as np
import pytest
from conftest import RTOL_TORCH_F64, rel_err

from lstm_symbolic.errors import UserError
from lstm_symbolic.gradcheck import random_problem
from lstm_symbolic.interop import conventions
from lstm_symbolic.interop.conventions import GATE_ORDERS, ConventionError, from_params, to_params

RTOL_DOCS = 1e-12
T, B, I, H = 5, 3, 4, 6


def sigmoid(z):
    return 1.0 / (1.0 + np.exp(-z))


def _problem(module, seed):
    params, xs, s0, g_hs, g_T = random_problem(module, T=T, B=B, input_size=I, hidden_size=H, seed=seed)
    return params, xs, s0


def _random(rng, **shapes):
    return {k: rng.uniform(-0.8, 0.8, s) for k, s in shapes.items()}


# ---- round trips --------------------------------------------------------------------------------
@pytest.mark.parametrize("framework, cell", list(GATE_ORDERS), ids="-".join)
def test_params_to_framework_and_back_is_exact(numpy_modules, framework, cell):
    params, _, _ = _problem(numpy_modules[cell], seed=1)
    options = {"forget_bias": 0.0} if framework == "tensorflow" else {}
    back = to_params(framework, from_params(framework, params, cell, **options), cell, **options)
    assert list(back) == list(params)
    assert all(np.array_equal(back[k], params[k]) for k in params)


def test_tensorflow_forget_bias_round_trip_is_exact_up_to_one_rounding(numpy_modules):
    params, _, _ = _problem(numpy_modules["lstm"], seed=2)
    back = to_params("tensorflow", from_params("tensorflow", params, "lstm"), "lstm")
    assert all(np.array_equal(back[k], params[k]) for k in params if k != "b_f")
    assert np.allclose(back["b_f"], params["b_f"], rtol=0, atol=4e-16)


@pytest.mark.parametrize("cell", ["lstm", "gru"])
def test_keras_weights_to_params_and_back_is_exact(rng, cell):
    G = 4 if cell == "lstm" else 3
    weights = _random(rng, kernel=(I, G * H), recurrent_kernel=(H, G * H), bias=(G * H,))
    again = from_params("keras", to_params("keras", weights, cell), cell)
    assert all(np.array_equal(again[k], weights[k]) for k in weights)


def test_split_biases_come_back_summed_on_the_input_side(rng):
    weights = _random(rng, weight_ih_l0=(3 * H, I), weight_hh_l0=(3 * H, H), bias_ih_l0=(3 * H,),
                      bias_hh_l0=(3 * H,))
    params = to_params("pytorch", weights, "gru-reset-after")
    again = from_params("pytorch", params, "gru-reset-after")
    assert np.array_equal(again["bias_ih_l0"][:2 * H], weights["bias_ih_l0"][:2 * H] + weights["bias_hh_l0"][:2 * H])
    assert np.array_equal(again["bias_ih_l0"][2 * H:], weights["bias_ih_l0"][2 * H:])
    assert np.array_equal(again["bias_hh_l0"], np.r_[np.zeros(2 * H), weights["bias_hh_l0"][2 * H:]])
    assert all(np.array_equal(to_params("pytorch", again, "gru-reset-after")[k], v) for k, v in params.items())


# ---- PyTorch: the converted state dict gives nn.LSTM / nn.GRU's outputs and gradients -------------
def _torch_run(torch, net, xs, s0, g_hs):
    x_t = torch.from_numpy(xs).requires_grad_()
    states = tuple(torch.from_numpy(s0[s][None]).requires_grad_() for s in ("h", "c") if s in s0)
    out, _ = net(x_t, states if len(states) == 2 else states[0])
    (out * torch.from_numpy(g_hs)).sum().backward()
    return out.detach().numpy(), x_t.grad.numpy(), [s.grad[0].numpy() for s in states]


@pytest.mark.parametrize("cell", ["lstm", "gru-reset-after"])
def test_pytorch_state_dict_gives_torch_outputs_and_gradients(numpy_modules, rng, cell):
    torch = pytest.importorskip("torch")
    torch.manual_seed(7)
    net = (torch.nn.LSTM if cell == "lstm" else torch.nn.GRU)(I, H, dtype=torch.float64)
    m = numpy_modules[cell]
    params = to_params("pytorch", net.state_dict(), cell)
    _, xs, s0 = _problem(m, seed=3)
    g_hs = rng.standard_normal((T, B, H))
    hs, _, cache = m.forward(params, xs, s0)
    grads, d_xs, d_s0 = m.backward(params, cache, g_hs)
    out, d_x_torch, d_states = _torch_run(torch, net, xs, s0, g_hs)
    assert rel_err(hs, out) < RTOL_TORCH_F64 and rel_err(d_xs, d_x_torch) < RTOL_TORCH_F64
    for got, want in zip([d_s0[s] for s in m.STATES], d_states, strict=True):
        assert rel_err(got, want) < RTOL_TORCH_F64
    as_torch = conventions.grads_to_framework("pytorch", grads, cell)  # tests/test_conventions_grads.py
    for key, p in net.named_parameters():
        assert rel_err(as_torch[key], p.grad.numpy()) < RTOL_TORCH_F64, key


# ---- Keras: LSTMCell / GRUCell as the Keras source and documentation write them ------------------
def keras_lstm(w, xs, h, c):
    """z = x kernel + h recurrent_kernel + bias; i, f, c, o = split(z); c = f c + i tanh(z_c)."""
    out = []
    for x in xs:
        z_i, z_f, z_c, z_o = np.split(x @ w["kernel"] + h @ w["recurrent_kernel"] + w["bias"], 4, axis=1)
        c = sigmoid(z_f) * c + sigmoid(z_i) * np.tanh(z_c)
        h = sigmoid(z_o) * np.tanh(c)
        out.append(h)
    return np.stack(out)


def keras_gru(w, xs, h, reset_after):
    """z, r, h blocks; reset_after: hh = tanh(x_h + r (h U_h + b_rec)); h = z h + (1 - z) hh."""
    b_in, b_rec = (w["bias"][0], w["bias"][1]) if reset_after else (w["bias"], np.zeros_like(w["bias"]))
    k_z, k_r, k_h = np.split(w["recurrent_kernel"], 3, axis=1)
    out = []
    for x in xs:
        x_z, x_r, x_h = np.split(x @ w["kernel"] + b_in, 3, axis=1)
        r_z, r_r, r_h = np.split(h @ w["recurrent_kernel"] + b_rec, 3, axis=1)
        z, r = sigmoid(x_z + r_z), sigmoid(x_r + r_r)
        hh = np.tanh(x_h + r * r_h) if reset_after else np.tanh(x_h + (r * h) @ k_h)
        h = z * h + (1 - z) * hh
        out.append(h)
    return np.stack(out)


@pytest.mark.parametrize("cell", ["lstm", "gru", "gru-reset-after"])
def test_keras_weights_follow_the_keras_formulas(numpy_modules, rng, cell):
    G = 4 if cell == "lstm" else 3
    bias = (2, G * H) if cell == "gru-reset-after" else (G * H,)
    w = _random(rng, kernel=(I, G * H), recurrent_kernel=(H, G * H), bias=bias)
    _, xs, s0 = _problem(numpy_modules[cell], seed=4)
    hs, _, _ = numpy_modules[cell].forward(to_params("keras", w, cell), xs, s0)
    want = keras_lstm(w, xs, s0["h"], s0["c"]) if cell == "lstm" else \
        keras_gru(w, xs, s0["h"], reset_after=cell == "gru-reset-after")
    assert rel_err(hs, want) < RTOL_DOCS


# ---- ONNX: the LSTM and GRU operator equations ---------------------------------------------------
def onnx_lstm(w, xs, h, c):
    """it = f(Xt Wi^T + Ht-1 Ri^T + Pi ⊙ Ct-1 + Wbi + Rbi), ft likewise, ct = g(...),
    Ct = ft ⊙ Ct-1 + it ⊙ ct, ot = f(... + Po ⊙ Ct + ...), Ht = ot ⊙ h(Ct); gates iofc."""
    Wi, Wo, Wf, Wc = np.split(w["W"][0], 4)
    Ri, Ro, Rf, Rc = np.split(w["R"][0], 4)
    Wbi, Wbo, Wbf, Wbc, Rbi, Rbo, Rbf, Rbc = np.split(w["B"][0], 8)
    Pi, Po, Pf = np.split(w["P"][0], 3) if "P" in w else (0, 0, 0)
    out = []
    for X in xs:
        it = sigmoid(X @ Wi.T + h @ Ri.T + Pi * c + Wbi + Rbi)
        ft = sigmoid(X @ Wf.T + h @ Rf.T + Pf * c + Wbf + Rbf)
        ct = np.tanh(X @ Wc.T + h @ Rc.T + Wbc + Rbc)
        c = ft * c + it * ct
        ot = sigmoid(X @ Wo.T + h @ Ro.T + Po * c + Wbo + Rbo)
        h = ot * np.tanh(c)
        out.append(h)
    return np.stack(out)


def onnx_gru(w, xs, h, linear_before_reset):
    """zt, rt as usual; ht = g(Xt Wh^T + (rt ⊙ Ht-1) Rh^T + Rbh + Wbh), or with linear_before_reset
    ht = g(Xt Wh^T + rt ⊙ (Ht-1 Rh^T + Rbh) + Wbh); Ht = (1 - zt) ⊙ ht + zt ⊙ Ht-1; gates zrh."""
    Wz, Wr, Wh = np.split(w["W"][0], 3)
    Rz, Rr, Rh = np.split(w["R"][0], 3)
    Wbz, Wbr, Wbh, Rbz, Rbr, Rbh = np.split(w["B"][0], 6)
    out = []
    for X in xs:
        zt = sigmoid(X @ Wz.T + h @ Rz.T + Wbz + Rbz)
        rt = sigmoid(X @ Wr.T + h @ Rr.T + Wbr + Rbr)
        if linear_before_reset:
            ht = np.tanh(X @ Wh.T + rt * (h @ Rh.T + Rbh) + Wbh)
        else:
            ht = np.tanh(X @ Wh.T + (rt * h) @ Rh.T + Rbh + Wbh)
        h = (1 - zt) * ht + zt * h
        out.append(h)
    return np.stack(out)


@pytest.mark.parametrize("cell", ["lstm", "lstm-peephole", "gru", "gru-reset-after"])
def test_onnx_weights_follow_the_onnx_operator_equations(numpy_modules, rng, cell):
    G = 3 if cell.startswith("gru") else 4
    w = _random(rng, W=(1, G * H, I), R=(1, G * H, H), B=(1, 2 * G * H))
    if cell == "lstm-peephole":
        w["P"] = rng.uniform(-1, 1, (1, 3 * H))
    _, xs, s0 = _problem(numpy_modules[cell], seed=5)
    hs, _, _ = numpy_modules[cell].forward(to_params("onnx", w, cell), xs, s0)
    want = onnx_gru(w, xs, s0["h"], cell == "gru-reset-after") if G == 3 else onnx_lstm(w, xs, s0["h"], s0["c"])
    assert rel_err(hs, want) < RTOL_DOCS


def test_onnx_second_direction_and_missing_optional_inputs(rng):
    w = _random(rng, W=(2, 4 * H, I), R=(2, 4 * H, H))
    params = to_params("onnx", w, "lstm-peephole", direction=1)
    assert np.array_equal(params["W_o"], w["W"][1, H:2 * H]) and not params["b_f"].any()
    assert not params["p_f"].any()


# ---- TensorFlow BasicLSTMCell ----------------------------------------------------------------------
def tf_basic_lstm(w, xs, h, c, forget_bias):
    """i, j, f, o = split([x, h] kernel + bias); c = c σ(f + forget_bias) + σ(i) tanh(j); h = tanh(c) σ(o)."""
    out = []
    for x in xs:
        i, j, f, o = np.split(np.concatenate([x, h], axis=1) @ w["kernel"] + w["bias"], 4, axis=1)
        c = c * sigmoid(f + forget_bias) + sigmoid(i) * np.tanh(j)
        h = np.tanh(c) * sigmoid(o)
        out.append(h)
    return np.stack(out)


@pytest.mark.parametrize("forget_bias", [1.0, 0.0, 2.5])
def test_tensorflow_basic_lstm_cell_follows_its_formula(numpy_modules, rng, forget_bias):
    w = _random(rng, kernel=(I + H, 4 * H), bias=(4 * H,))
    _, xs, s0 = _problem(numpy_modules["lstm"], seed=6)
    options = {} if forget_bias == 1.0 else {"forget_bias": forget_bias}
    hs, _, _ = numpy_modules["lstm"].forward(to_params("tensorflow", w, "lstm", **options), xs, s0)
    assert rel_err(hs, tf_basic_lstm(w, xs, s0["h"], s0["c"], forget_bias)) < RTOL_DOCS


# ---- errors -----------------------------------------------------------------------------------------
@pytest.mark.parametrize("call, needle", [
    (lambda w: to_params("caffe", w, "lstm"), "unknown framework 'caffe'"),
    (lambda w: to_params("pytorch", w, "gru"), "no pytorch layout for cell 'gru'"),
    (lambda w: to_params("pytorch", w, "no-such-cell"), "no pytorch layout for cell 'no-such-cell'"),
    (lambda w: to_params("pytorch", {k: v for k, v in w.items() if k != "bias_hh_l0"}, "lstm"),
     "missing 'bias_hh_l0'"),
    (lambda w: to_params("pytorch", {**w, "weight_ih_l0": w["weight_ih_l0"][:, :2].T}, "lstm"),
     "'weight_ih_l0' has shape (2, 24)"),
    (lambda w: to_params("pytorch", w, "lstm", layer=1), "missing 'weight_hh_l1'"),
    (lambda w: to_params("pytorch", w, "lstm", forget_bias=1.0), "unknown pytorch option 'forget_bias'"),
    (lambda w: to_params("keras", {"kernel": np.zeros((I, 3 * H)), "recurrent_kernel": np.zeros((H, 3 * H)),
                                   "bias": np.zeros((2, 3 * H))}, "gru"), "use cell gru-reset-after"),
    (lambda w: to_params("onnx", {"W": np.zeros((1, 4 * H, I)), "R": np.zeros((1, 4 * H, H)),
                                  "P": np.ones((1, 3 * H))}, "lstm"), "use lstm-peephole"),
    (lambda w: from_params("pytorch", {"W_f": np.zeros((H, I))}, "lstm"), "parameters missing: W_i"),
    (lambda w: from_params("pytorch", {**to_params("pytorch", w, "lstm"), "b_o": np.zeros(H + 1)}, "lstm"),
     "parameter b_o has shape (7,), expected (6,)"),
    (lambda w: to_params("onnx", {"W": np.zeros((1, 4 * H, I)), "R": np.zeros((1, 4 * H, H))}, "lstm", direction=1),
     "direction 1 out of range"),
])
def test_bad_weights_raise_one_clear_error(rng, call, needle):
    w = _random(rng, weight_ih_l0=(4 * H, I), weight_hh_l0=(4 * H, H), bias_ih_l0=(4 * H,), bias_hh_l0=(4 * H,))
    with pytest.raises(ConventionError) as info:
        call(w)
    assert needle in str(info.value) and isinstance(info.value, UserError)
    assert "\n" not in str(info.value)


@pytest.mark.parametrize("path", sorted(Path(conventions.__file__).parent.glob("*.py")), ids=lambda p: p.name)
def test_the_module_needs_numpy_only(path):
    tree = ast.parse(path.read_text())
    imported = {a.name.split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
    imported |= {n.module.split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.level == 0}
    assert imported <= {"__future__", "dataclasses", "functools", "numpy"}
